//! Periodic jobs: which there are, their schedules (stored in the database, six-field cron with
//! seconds first, in `SCHEDULE_TZ`), and the runner that runs each due time exactly once however
//! many processes are up.

mod runner;

use std::{fmt, str::FromStr};

use chrono::{DateTime, Utc};
use croner::{
    Cron,
    parser::{CronParser, Seconds},
};

pub use runner::{JobStatus, Jobs, RunOutcome};

use crate::{domain::FieldError, store::Timestamp};

/// The periodic jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobName {
    /// The catalog export (weekly by default; a missed one is caught up once).
    Export,
    /// Deletes guests older than their lifetime.
    PurgeGuests,
    /// Deletes ended sessions and their refresh tokens.
    CleanSessions,
    /// Re-enqueues unfinished transcodes and removes upload and job debris.
    Sweep,
}

impl JobName {
    /// Every job.
    pub const ALL: [Self; 4] = [
        Self::Export,
        Self::PurgeGuests,
        Self::CleanSessions,
        Self::Sweep,
    ];

    /// The stored and command-line name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Export => "export",
            Self::PurgeGuests => "purge-guests",
            Self::CleanSessions => "clean-sessions",
            Self::Sweep => "sweep",
        }
    }

    /// Whether a due time missed while no process was up is run once at start-up.
    pub fn catches_up(self) -> bool {
        matches!(self, Self::Export)
    }

    /// The schedule a new installation starts with.
    pub fn default_schedule(self, export: &str) -> String {
        match self {
            Self::Export => export.to_owned(),
            Self::PurgeGuests => "0 7 * * * *".to_owned(),
            Self::CleanSessions => "0 17 * * * *".to_owned(),
            Self::Sweep => "0 */5 * * * *".to_owned(),
        }
    }
}

impl fmt::Display for JobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobName {
    type Err = FieldError;

    fn from_str(raw: &str) -> Result<Self, FieldError> {
        Self::ALL
            .into_iter()
            .find(|j| j.as_str() == raw)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|j| j.as_str()).collect();
                FieldError::new(
                    "job",
                    format!("no job {raw:?}; the jobs are {}", names.join(", ")),
                )
            })
    }
}

/// A valid six-field cron expression (`sec min hour day-of-month month day-of-week`).
#[derive(Clone, Debug)]
pub struct Schedule {
    text: String,
    cron: Cron,
}

impl Schedule {
    /// Parses `raw`; the error says what is wrong.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let text = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.split(' ').count() != 6 {
            return Err(FieldError::new(
                "schedule",
                format!(
                    "{raw:?} is not a six-field cron expression (seconds minutes hours \
                     day-of-month month day-of-week, e.g. \"0 0 6 * * Sun\")"
                ),
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .build()
            .parse(&text)
            .map_err(|e| FieldError::new("schedule", format!("{raw:?}: {e}")))?;
        // A pattern that never matches (30 February) would make every lookup search for ever.
        if cron.find_next_occurrence(&Utc::now(), false).is_err() {
            return Err(FieldError::new(
                "schedule",
                format!("{raw:?} never comes due"),
            ));
        }
        Ok(Self { text, cron })
    }

    /// The expression, normalised.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The latest due time at or before `now`, in `tz` (whole seconds: the same due time for
    /// every process that asks within that second or later).
    pub fn previous(&self, now: Timestamp, tz: chrono_tz::Tz) -> Option<Timestamp> {
        let local = whole_second(now).with_timezone(&tz);
        self.cron
            .find_previous_occurrence(&local, true)
            .ok()
            .map(|t| to_timestamp(t.with_timezone(&Utc)))
    }

    /// The first due time after `now`, in `tz`.
    pub fn next(&self, now: Timestamp, tz: chrono_tz::Tz) -> Option<Timestamp> {
        let local = whole_second(now).with_timezone(&tz);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| to_timestamp(t.with_timezone(&Utc)))
    }
}

fn whole_second(t: Timestamp) -> DateTime<Utc> {
    Timestamp::from_micros(t.micros().div_euclid(1_000_000) * 1_000_000).0
}

fn to_timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp::from_micros(t.timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_need_six_fields_that_can_come_due() {
        assert!(Schedule::parse("0 0 6 * * Sun").is_ok());
        assert_eq!(
            Schedule::parse("  0  0 3 * *   Mon ").map(|s| s.as_str().to_owned()),
            Ok("0 0 3 * * Mon".to_owned())
        );
        for bad in [
            "",
            "0 6 * * Sun",
            "0 0 25 * * *",
            "a b c d e f",
            "0 0 0 30 2 *",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn due_times_follow_the_time_zone() {
        let sunday_6 = Schedule::parse("0 0 6 * * Sun").expect("schedule");
        // Wednesday 2026-12-02 12:00 UTC.
        let now = Timestamp(
            DateTime::parse_from_rfc3339("2026-12-02T12:00:00Z")
                .expect("time")
                .with_timezone(&Utc),
        );
        let utc = sunday_6.previous(now, chrono_tz::UTC).expect("due");
        assert_eq!(utc.0.to_rfc3339(), "2026-11-29T06:00:00+00:00");
        let berlin = sunday_6
            .previous(now, chrono_tz::Europe::Berlin)
            .expect("due");
        assert_eq!(berlin.0.to_rfc3339(), "2026-11-29T05:00:00+00:00");
        let next = sunday_6.next(now, chrono_tz::UTC).expect("next");
        assert_eq!(next.0.to_rfc3339(), "2026-12-06T06:00:00+00:00");
        // Every caller within a second, whatever its fraction, sees the same due time.
        let every_second = Schedule::parse("* * * * * *").expect("schedule");
        let a = every_second.previous(now.plus_secs(0), chrono_tz::UTC);
        let b = every_second.previous(
            Timestamp::from_micros(now.micros() + 999_999),
            chrono_tz::UTC,
        );
        assert_eq!(a, b);
        assert_eq!(a, Some(now));
    }
}
