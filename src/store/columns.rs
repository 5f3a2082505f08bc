//! How domain values are stored: ids as integers, closed sets (genre, language, status) as
//! their wire names. Rows decode straight into the domain types, so nothing above the store
//! handles a raw status string or a bare id.

use sqlx::{Database, Decode, Encode, Type, encode::IsNull, error::BoxDynError};

use crate::domain::{Genre, Language, UserId, VideoId, VideoStatus};

/// An id column: an integer, decoded into its domain type.
macro_rules! id_column {
    ($($ty:ty),+) => {$(
        impl<DB: Database> Type<DB> for $ty
        where
            i64: Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <i64 as Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <i64 as Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: Database> Encode<'q, DB> for $ty
        where
            i64: Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as Database>::ArgumentBuffer,
            ) -> Result<IsNull, BoxDynError> {
                self.get().encode_by_ref(buf)
            }
        }

        impl<'r, DB: Database> Decode<'r, DB> for $ty
        where
            i64: Decode<'r, DB>,
        {
            fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                <i64 as Decode<DB>>::decode(value).map(Self::from_db)
            }
        }
    )+};
}

/// A closed-set column: its wire name as text; a name this build does not know is a decode
/// error, not a silent default.
macro_rules! text_column {
    ($($ty:ty),+) => {$(
        impl<DB: Database> Type<DB> for $ty
        where
            String: Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <String as Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <String as Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: Database> Encode<'q, DB> for $ty
        where
            String: Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as Database>::ArgumentBuffer,
            ) -> Result<IsNull, BoxDynError> {
                self.as_str().to_owned().encode(buf)
            }
        }

        impl<'r, DB: Database> Decode<'r, DB> for $ty
        where
            String: Decode<'r, DB>,
        {
            fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                let text = <String as Decode<DB>>::decode(value)?;
                text.parse().map_err(|()| {
                    format!(concat!("unknown ", stringify!($ty), " {:?} in the database"), text)
                        .into()
                })
            }
        }
    )+};
}

id_column!(VideoId, UserId);
text_column!(Genre, Language, VideoStatus);
