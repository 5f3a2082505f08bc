//! Job schedules, job runs (one per job and due time) and the exports the scheduler wrote.

use super::{Store, Timestamp};
use crate::error::AppResult;

/// A stored schedule.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct JobRow {
    /// Job name (`export`, …).
    pub name: String,
    /// Six-field cron expression.
    pub schedule: String,
    /// Whether it runs on its schedule.
    pub enabled: bool,
    /// When the schedule was last set.
    pub updated_at: Timestamp,
}

/// A recorded run.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct JobRunRow {
    /// Fencing token: only the run holding it may finish it.
    pub id: i64,
    /// Job name.
    pub job: String,
    /// The due time it ran for (the time of the request for a manual run).
    pub due_at: Timestamp,
    /// `schedule`, `catch-up` or `manual`.
    pub trigger: String,
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
    /// `running`, `ok` or `failed`.
    pub outcome: String,
    /// What it did, or why it failed.
    pub message: String,
    /// Which process ran it.
    pub process: String,
}

/// An export file the scheduler or an operator wrote.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ExportRow {
    /// File name inside the export folder.
    pub file_name: String,
    /// Written by the schedule (retention applies) or on demand.
    pub scheduled: bool,
    /// A `--full` document.
    pub full_data: bool,
    /// Videos in it.
    pub videos: i64,
    /// Size in bytes.
    pub bytes: i64,
    /// When it was written.
    pub created_at: Timestamp,
}

const RUN_COLUMNS: &str =
    "id, job, due_at, trigger, started_at, finished_at, outcome, message, process";

impl Store {
    /// Adds `name` with `schedule` unless it exists (an operator's change is kept).
    pub async fn seed_job(&self, name: &str, schedule: &str) -> AppResult<()> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO jobs (name, schedule, enabled, updated_at) VALUES ($1, $2, TRUE, $3) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(schedule)
            .bind(Timestamp::now())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Every schedule, by name.
    pub async fn jobs(&self) -> AppResult<Vec<JobRow>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as::<_, JobRow>(
                "SELECT name, schedule, enabled, updated_at FROM jobs ORDER BY name",
            )
            .fetch_all(pool)
            .await?
        }))
    }

    /// Sets a job's schedule; false if there is no such job.
    pub async fn set_job_schedule(&self, name: &str, schedule: &str) -> AppResult<bool> {
        let n = on_pool!(self, pool => {
            sqlx::query("UPDATE jobs SET schedule = $1, updated_at = $2 WHERE name = $3")
                .bind(schedule)
                .bind(Timestamp::now())
                .bind(name)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Turns a job's schedule on or off; false if there is no such job.
    pub async fn set_job_enabled(&self, name: &str, enabled: bool) -> AppResult<bool> {
        let n = on_pool!(self, pool => {
            sqlx::query("UPDATE jobs SET enabled = $1, updated_at = $2 WHERE name = $3")
                .bind(enabled)
                .bind(Timestamp::now())
                .bind(name)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Records the start of `job` for `due_at`, unless a run for it exists: the run's id (its
    /// fencing token) when this caller is the one to run it.
    pub async fn claim_job_run(
        &self,
        job: &str,
        due_at: Timestamp,
        trigger: &str,
        process: &str,
    ) -> AppResult<Option<i64>> {
        let row: Option<(i64,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "INSERT INTO job_runs (job, due_at, trigger, started_at, process) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job, due_at) DO NOTHING RETURNING id",
            )
            .bind(job)
            .bind(due_at)
            .bind(trigger)
            .bind(Timestamp::now())
            .bind(process)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|(id,)| id))
    }

    /// Ends run `id` (only while it is running) with `outcome` and `message`.
    pub async fn finish_job_run(&self, id: i64, outcome: &str, message: &str) -> AppResult<bool> {
        let n = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE job_runs SET finished_at = $1, outcome = $2, message = $3 \
                 WHERE id = $4 AND outcome = 'running'",
            )
            .bind(Timestamp::now())
            .bind(outcome)
            .bind(message)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// The newest `limit` runs, of `job` or of all, newest first.
    pub async fn job_runs(&self, job: Option<&str>, limit: i64) -> AppResult<Vec<JobRunRow>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM job_runs WHERE (CAST($1 AS TEXT) IS NULL OR job = CAST($1 AS TEXT)) \
             ORDER BY started_at DESC, id DESC LIMIT $2"
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as::<_, JobRunRow>(sqlx::AssertSqlSafe(sql))
                .bind(job)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Records an export file.
    pub async fn record_export(&self, row: &ExportRow) -> AppResult<()> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO exports (file_name, scheduled, full_data, videos, bytes, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (file_name) DO NOTHING",
            )
            .bind(&row.file_name)
            .bind(row.scheduled)
            .bind(row.full_data)
            .bind(row.videos)
            .bind(row.bytes)
            .bind(row.created_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Recorded exports, newest first.
    pub async fn exports(&self) -> AppResult<Vec<ExportRow>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as::<_, ExportRow>(
                "SELECT file_name, scheduled, full_data, videos, bytes, created_at FROM exports \
                 ORDER BY created_at DESC, file_name DESC",
            )
            .fetch_all(pool)
            .await?
        }))
    }

    /// Forgets an export file (after deleting it).
    pub async fn forget_export(&self, file_name: &str) -> AppResult<()> {
        on_pool!(self, pool => {
            sqlx::query("DELETE FROM exports WHERE file_name = $1")
                .bind(file_name)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Deletes sessions that ended (expired or revoked) before `cutoff`; their refresh tokens go
    /// with them.
    pub async fn purge_sessions(&self, cutoff: Timestamp) -> AppResult<u64> {
        Ok(on_pool!(self, pool => {
            sqlx::query(
                "DELETE FROM sessions WHERE expires_at < $1 \
                 OR (revoked_at IS NOT NULL AND revoked_at < $1)",
            )
            .bind(cutoff)
            .execute(pool)
            .await?
            .rows_affected()
        }))
    }
}
