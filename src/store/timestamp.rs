//! [`Timestamp`]: a UTC instant stored as `TIMESTAMPTZ` in PostgreSQL and as integer microseconds
//! in SQLite. sqlx would store chrono values in SQLite as RFC 3339 text with a varying number of
//! fractional digits, which does not compare correctly in SQL; integers do.

use chrono::{DateTime, TimeZone, Utc};
use sqlx::{Database, Decode, Encode, Postgres, Sqlite, Type, encode::IsNull, error::BoxDynError};

/// A UTC instant with microsecond precision (what both databases keep).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    /// The current time, truncated to microseconds so a round trip through either database is
    /// exact.
    pub fn now() -> Self {
        Self::from_micros(Utc::now().timestamp_micros())
    }

    /// From microseconds since the Unix epoch.
    pub fn from_micros(micros: i64) -> Self {
        Self(Utc.timestamp_micros(micros).single().unwrap_or_default())
    }

    /// Microseconds since the Unix epoch.
    pub fn micros(&self) -> i64 {
        self.0.timestamp_micros()
    }

    /// This instant plus `secs` seconds (saturating).
    pub fn plus_secs(&self, secs: u64) -> Self {
        let delta = i64::try_from(secs)
            .unwrap_or(i64::MAX / 2_000_000)
            .saturating_mul(1_000_000);
        Self::from_micros(self.micros().saturating_add(delta))
    }

    /// This instant minus `secs` seconds (saturating).
    pub fn minus_secs(&self, secs: u64) -> Self {
        let delta = i64::try_from(secs)
            .unwrap_or(i64::MAX / 2_000_000)
            .saturating_mul(1_000_000);
        Self::from_micros(self.micros().saturating_sub(delta))
    }
}

impl Type<Postgres> for Timestamp {
    fn type_info() -> <Postgres as Database>::TypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for Timestamp {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        <DateTime<Utc> as Encode<Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Timestamp {
    fn decode(value: <Postgres as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let dt = <DateTime<Utc> as Decode<Postgres>>::decode(value)?;
        Ok(Self::from_micros(dt.timestamp_micros()))
    }
}

impl Type<Sqlite> for Timestamp {
    fn type_info() -> <Sqlite as Database>::TypeInfo {
        <i64 as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &<Sqlite as Database>::TypeInfo) -> bool {
        <i64 as Type<Sqlite>>::compatible(ty)
    }
}

impl Encode<'_, Sqlite> for Timestamp {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        <i64 as Encode<Sqlite>>::encode_by_ref(&self.micros(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Timestamp {
    fn decode(value: <Sqlite as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Self::from_micros(<i64 as Decode<Sqlite>>::decode(value)?))
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.micros())
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        i64::deserialize(d).map(Self::from_micros)
    }
}
