//! Runs the jobs when due. Every process ticks once a second; a due time is run by the one
//! process that records it first in `job_runs` (a unique key on job and due time, taken after a
//! Redis lock when Redis is up), so it runs exactly once however many processes tick. The run's
//! id is its fencing token: only its holder may finish it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use super::{JobName, Schedule};
use crate::{
    backup::{Backups, is_export_name},
    error::{AppError, AppResult},
    kv::Redis,
    service::{Accounts, Pipeline},
    store::{ExportRow, JobRow, JobRunRow, Store, Timestamp},
};

/// A due time further back than this is not run by a job that does not catch up (a tick that
/// came late still runs it).
const LATE_TICK_SECS: u64 = 60;

/// How long a Redis lock on a due time lives (a run longer than that still holds its row).
const LOCK_MS: u64 = 10 * 60 * 1000;

/// Ended sessions are kept this long (seconds), then deleted with their refresh tokens.
const ENDED_SESSIONS_KEPT: u64 = 24 * 3600;

/// A job with its schedule, next due time and last run.
#[derive(Clone, Debug)]
pub struct JobStatus {
    /// The stored schedule.
    pub row: JobRow,
    /// The next due time (none while disabled).
    pub next_due: Option<Timestamp>,
    /// The newest run.
    pub last_run: Option<JobRunRow>,
}

/// What asking for a run did.
#[derive(Clone, Debug, PartialEq)]
pub enum RunOutcome {
    /// This process ran it: the recorded run.
    Ran(JobRunRow),
    /// Another process had already taken this due time.
    AlreadyTaken,
}

/// The scheduler's use cases; cheap to clone.
#[derive(Clone)]
pub struct Jobs {
    store: Store,
    redis: Option<Redis>,
    backups: Backups,
    accounts: Accounts,
    pipeline: Pipeline,
    tz: chrono_tz::Tz,
    export_keep: usize,
    process: String,
    started: Timestamp,
    /// The due time each job was last looked at, so a tick asks the database once per due time.
    seen: Arc<Mutex<HashMap<JobName, Timestamp>>>,
}

impl Jobs {
    /// The runner of this process.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        redis: Option<Redis>,
        backups: Backups,
        accounts: Accounts,
        pipeline: Pipeline,
        tz: chrono_tz::Tz,
        export_keep: usize,
    ) -> Self {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        Self {
            store,
            redis,
            backups,
            accounts,
            pipeline,
            tz,
            export_keep,
            process: format!(
                "{host}:{}:{}",
                std::process::id(),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            started: Timestamp::now(),
            seen: Arc::default(),
        }
    }

    /// Stores the default schedules of jobs that have none yet.
    pub async fn seed(&self, export_schedule: &Schedule) -> AppResult<()> {
        for job in JobName::ALL {
            self.store
                .seed_job(
                    job.as_str(),
                    &job.default_schedule(export_schedule.as_str()),
                )
                .await?;
        }
        Ok(())
    }

    /// Runs every job whose due time has come and that no process has run yet.
    pub async fn tick(&self) {
        let now = Timestamp::now();
        let rows = match self.store.jobs().await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "reading the job schedules failed");
                return;
            }
        };
        for row in rows.into_iter().filter(|r| r.enabled) {
            let (Ok(job), Ok(schedule)) =
                (row.name.parse::<JobName>(), Schedule::parse(&row.schedule))
            else {
                continue;
            };
            let Some(due) = schedule.previous(now, self.tz) else {
                continue;
            };
            if let Ok(mut seen) = self.seen.lock() {
                if seen.get(&job) == Some(&due) {
                    continue;
                }
                seen.insert(job, due);
            }
            // Due times before the schedule was set never count; a job that does not catch up
            // runs only a due time that has just passed.
            let recent = due >= now.minus_secs(LATE_TICK_SECS);
            if due < row.updated_at || !(recent || job.catches_up()) {
                continue;
            }
            let trigger = if due < self.started {
                "catch-up"
            } else {
                "schedule"
            };
            if let Err(e) = self.run(job, due, trigger).await {
                // Not recorded (the database was away): look at this due time again next tick.
                tracing::warn!(job = %job, error = %e, "job run failed to start");
                if let Ok(mut seen) = self.seen.lock() {
                    seen.remove(&job);
                }
            }
        }
    }

    /// Runs `job` now, once, recorded as a manual run.
    pub async fn run_now(&self, job: JobName) -> AppResult<RunOutcome> {
        self.run(job, Timestamp::now(), "manual").await
    }

    async fn run(&self, job: JobName, due: Timestamp, trigger: &str) -> AppResult<RunOutcome> {
        if !self.lock(job, due).await {
            return Ok(RunOutcome::AlreadyTaken);
        }
        let claimed = self
            .store
            .claim_job_run(job.as_str(), due, trigger, &self.process)
            .await;
        let Some(id) = (match claimed {
            Ok(id) => id,
            Err(e) => {
                // Nothing recorded: let whoever tries next (this process too) take the lock.
                self.unlock(job, due).await;
                return Err(e);
            }
        }) else {
            return Ok(RunOutcome::AlreadyTaken);
        };
        tracing::info!(job = %job, due = %crate::backup::rfc3339(due), trigger, "job started");
        let (outcome, message) = match self.execute(job).await {
            Ok(message) => ("ok", message),
            Err(e) => {
                tracing::error!(job = %job, error = %e, "job failed");
                ("failed", e.to_string())
            }
        };
        self.store.finish_job_run(id, outcome, &message).await?;
        tracing::info!(job = %job, outcome, message, "job finished");
        let run = self
            .store
            .job_runs(Some(job.as_str()), 20)
            .await?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("job run {id} vanished")))?;
        Ok(RunOutcome::Ran(run))
    }

    /// With Redis: a lock on the due time, so processes do not all race to the database. Without
    /// Redis, or while it is away, the database's unique key alone decides.
    async fn lock(&self, job: JobName, due: Timestamp) -> bool {
        let Some(redis) = &self.redis else {
            return true;
        };
        let key = redis.key(&format!("job:{}:{}", job.as_str(), due.micros()));
        let taken = redis
            .bounded(async {
                let mut conn = redis.conn().await?;
                let set: Option<String> = redis::cmd("SET")
                    .arg(&key)
                    .arg(&self.process)
                    .arg("NX")
                    .arg("PX")
                    .arg(LOCK_MS)
                    .query_async(&mut *conn)
                    .await
                    .map_err(|e| AppError::Unavailable(format!("redis: {e}")))?;
                Ok(set.is_some())
            })
            .await;
        taken.unwrap_or(true)
    }

    /// Releases this process's lock on a due time (best effort).
    async fn unlock(&self, job: JobName, due: Timestamp) {
        let Some(redis) = &self.redis else {
            return;
        };
        let key = redis.key(&format!("job:{}:{}", job.as_str(), due.micros()));
        let _ = redis
            .bounded(async {
                let mut conn = redis.conn().await?;
                redis::Script::new(
                    "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                     return redis.call('DEL', KEYS[1]) else return 0 end",
                )
                .key(&key)
                .arg(&self.process)
                .invoke_async::<i64>(&mut *conn)
                .await
                .map_err(|e| AppError::Unavailable(format!("redis: {e}")))
            })
            .await;
    }

    async fn execute(&self, job: JobName) -> anyhow::Result<String> {
        match job {
            JobName::Export => self.export().await,
            JobName::PurgeGuests => {
                let n = self.accounts.purge_guests().await?;
                Ok(format!("{n} expired guest account(s) deleted"))
            }
            JobName::CleanSessions => {
                let cutoff = Timestamp::now().minus_secs(ENDED_SESSIONS_KEPT);
                let n = self.store.purge_sessions(cutoff).await?;
                Ok(format!("{n} ended session(s) deleted"))
            }
            JobName::Sweep => {
                let n = self.pipeline.sweep().await?;
                self.pipeline.clean_debris().await;
                Ok(format!("{n} unfinished transcode(s) re-enqueued"))
            }
        }
    }

    /// The scheduled export, then retention: the newest `EXPORT_KEEP` scheduled exports stay.
    async fn export(&self) -> anyhow::Result<String> {
        let written = self.backups.export(None, false).await?;
        let name = written
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        self.store
            .record_export(&ExportRow {
                file_name: name.clone(),
                scheduled: true,
                full_data: false,
                videos: i64::try_from(written.videos).unwrap_or(i64::MAX),
                bytes: i64::try_from(written.bytes).unwrap_or(i64::MAX),
                created_at: Timestamp::now(),
            })
            .await?;
        let mut removed = 0;
        let scheduled = self
            .store
            .exports()
            .await?
            .into_iter()
            .filter(|e| e.scheduled);
        for old in scheduled.skip(self.export_keep.max(1)) {
            // Only a file this exporter names, directly inside the export folder.
            if is_export_name(&old.file_name) {
                let path = self.backups.dir().join(&old.file_name);
                match tokio::fs::remove_file(&path).await {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(file = %path.display(), error = %e, "retention");
                        continue;
                    }
                }
            }
            self.store.forget_export(&old.file_name).await?;
        }
        Ok(format!(
            "{name}: {} videos; {removed} old export(s) removed",
            written.videos
        ))
    }

    /// Every job with its schedule, next due time and last run.
    pub async fn status(&self) -> AppResult<Vec<JobStatus>> {
        let now = Timestamp::now();
        let mut out = Vec::new();
        for row in self.store.jobs().await? {
            let next_due = if row.enabled {
                Schedule::parse(&row.schedule)
                    .ok()
                    .and_then(|s| s.next(now, self.tz))
            } else {
                None
            };
            let last_run = self
                .store
                .job_runs(Some(&row.name), 1)
                .await?
                .into_iter()
                .next();
            out.push(JobStatus {
                row,
                next_due,
                last_run,
            });
        }
        Ok(out)
    }

    /// Sets `job`'s schedule (takes effect on the next tick of every process).
    pub async fn set_schedule(&self, job: JobName, schedule: &Schedule) -> AppResult<()> {
        self.store
            .set_job_schedule(job.as_str(), schedule.as_str())
            .await?;
        Ok(())
    }

    /// Turns `job`'s schedule on or off.
    pub async fn set_enabled(&self, job: JobName, enabled: bool) -> AppResult<()> {
        self.store.set_job_enabled(job.as_str(), enabled).await?;
        Ok(())
    }

    /// The newest runs, of `job` or of all.
    pub async fn runs(&self, job: Option<JobName>, limit: i64) -> AppResult<Vec<JobRunRow>> {
        self.store.job_runs(job.map(JobName::as_str), limit).await
    }
}
