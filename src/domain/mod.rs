//! Domain types: every value from a client is parsed once into one of these, so code past the
//! transport edge never handles a raw e-mail, password, id, status or genre string; rows,
//! events and jobs carry them too.

/// Declares a primary key: a positive integer, parsed once at the edge (`parse`), made by the
/// store from its rows (`from_db`), shown as its number.
macro_rules! positive_id {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize,
            serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            /// A client's id for `field`: ids are positive.
            pub fn parse(raw: i64, field: &'static str) -> Result<Self, $crate::domain::FieldError> {
                if raw > 0 {
                    Ok(Self(raw))
                } else {
                    Err($crate::domain::FieldError::new(
                        field,
                        concat!("A positive ", $what, " id is required."),
                    ))
                }
            }

            /// An id the database (or a token this server signed) handed out.
            pub(crate) fn from_db(raw: i64) -> Self {
                Self(raw)
            }

            /// The number.
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

mod email;
mod listing;
mod media;
mod meta;
mod password;
mod profile;
mod rate;
mod search;
mod time;
mod user;
mod video;

pub use email::Email;
pub use listing::{Ordering, PageToken};
pub use media::{Media, Renditions, Rung, RungFiles, StoredRendition};
pub use meta::{RawVideoMeta, VideoMeta};
pub use password::{Password, PasswordError};
pub use profile::{Address, Phone, ProfileChange};
pub use rate::Rate;
pub use search::{MAX_SEARCH_CHARS, SearchQuery, WORST_RANK, fold as fold_search};
pub use time::Timestamp;
pub use user::{Uid, UserId};
pub use video::{Genre, Language, VideoId, VideoStatus};

/// A value a client sent that does not parse; names the field and says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// Wire name of the field, e.g. `email`.
    pub field: &'static str,
    /// Human-readable reason, fit to show to the user.
    pub message: String,
}

impl FieldError {
    /// A new error for `field`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}
