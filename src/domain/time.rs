//! [`Timestamp`]: a UTC instant with the microsecond precision both databases keep.

use chrono::{DateTime, TimeZone, Utc};

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

    /// This instant plus `micros` microseconds (saturating).
    pub fn plus_micros(&self, micros: i64) -> Self {
        Self::from_micros(self.micros().saturating_add(micros))
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
