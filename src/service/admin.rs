//! What the original's Django admin did, for superusers: accounts, job schedules and runs,
//! export files and imports. Every method checks the caller first.

use std::collections::HashMap;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use super::{Accounts, Caller};
use crate::{
    backup::{Backups, Imported, Written, is_export_name},
    domain::UserId,
    error::{AppError, AppResult},
    jobs::{JobName, JobStatus, Jobs, RunOutcome, Schedule},
    store::{JobRunRow, Store, Timestamp, UserFilter, UserRecord},
};

/// Accounts listed per page at most.
pub const MAX_USERS_PAGE: i64 = 100;

/// An export file in the export folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportFile {
    /// File name.
    pub name: String,
    /// Size.
    pub bytes: u64,
    /// Last written.
    pub created_at: Timestamp,
    /// Written by the schedule.
    pub scheduled: bool,
    /// A full document.
    pub full: bool,
}

/// Changes to an account.
#[derive(Clone, Copy, Debug, Default)]
pub struct UserPatch {
    /// Activate or deactivate.
    pub is_active: Option<bool>,
    /// Make or remove a superuser.
    pub is_superuser: Option<bool>,
}

/// The admin use cases; cheap to clone.
#[derive(Clone)]
pub struct Admin {
    store: Store,
    accounts: Accounts,
    jobs: Jobs,
    backups: Backups,
}

impl Admin {
    /// Over the given services.
    pub fn new(store: Store, accounts: Accounts, jobs: Jobs, backups: Backups) -> Self {
        Self {
            store,
            accounts,
            jobs,
            backups,
        }
    }

    /// One page of accounts and the token of the next (empty on the last).
    pub async fn list_users(
        &self,
        caller: &Caller,
        filter: &UserFilter,
        page_size: i64,
        page_token: &str,
    ) -> AppResult<(Vec<UserRecord>, String)> {
        caller.require_superuser()?;
        let after = if page_token.is_empty() {
            0
        } else {
            URL_SAFE_NO_PAD
                .decode(page_token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.strip_prefix("u:").and_then(|n| n.parse::<i64>().ok()))
                .filter(|n| *n >= 0)
                .ok_or_else(|| AppError::field("page_token", "Invalid page token."))?
        };
        let size = page_size.clamp(1, MAX_USERS_PAGE);
        let mut users = self.store.list_users(filter, after, size + 1).await?;
        let next = if i64::try_from(users.len()).unwrap_or(i64::MAX) > size {
            users.truncate(usize::try_from(size).unwrap_or(usize::MAX));
            users
                .last()
                .map(|u| URL_SAFE_NO_PAD.encode(format!("u:{}", u.id)))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok((users, next))
    }

    /// One account.
    pub async fn user(&self, caller: &Caller, id: UserId) -> AppResult<UserRecord> {
        caller.require_superuser()?;
        self.store
            .user_by_id(id)
            .await?
            .ok_or(AppError::NotFound("User"))
    }

    /// Applies `patch`; the last active superuser stays one.
    pub async fn update_user(
        &self,
        caller: &Caller,
        id: UserId,
        patch: UserPatch,
    ) -> AppResult<UserRecord> {
        let user = self.user(caller, id).await?;
        let loses_power = user.is_superuser
            && user.is_active
            && (patch.is_active == Some(false) || patch.is_superuser == Some(false));
        if loses_power && self.store.other_active_superusers(id).await? == 0 {
            return Err(AppError::Refused(
                "This is the last active superuser: make another one first.",
            ));
        }
        if let Some(active) = patch.is_active {
            self.store.set_user_active(id, active).await?;
        }
        if let Some(superuser) = patch.is_superuser {
            self.store.set_superuser(id, superuser).await?;
        }
        // Sessions verified earlier carry the old flags.
        self.accounts.forget_cached_sessions().await;
        self.user(caller, id).await
    }

    /// Deletes an account; its videos stay, without uploader. The last superuser stays.
    pub async fn delete_user(&self, caller: &Caller, id: UserId) -> AppResult<()> {
        let user = self.user(caller, id).await?;
        if user.is_superuser && self.store.other_active_superusers(id).await? == 0 {
            return Err(AppError::Refused(
                "This is the last active superuser: make another one first.",
            ));
        }
        self.store.delete_user(id).await?;
        self.accounts.forget_cached_sessions().await;
        Ok(())
    }

    /// Every job.
    pub async fn jobs(&self, caller: &Caller) -> AppResult<Vec<JobStatus>> {
        caller.require_superuser()?;
        self.jobs.status().await
    }

    /// Changes a job's schedule and/or whether it runs.
    pub async fn update_job(
        &self,
        caller: &Caller,
        job: JobName,
        schedule: Option<Schedule>,
        enabled: Option<bool>,
    ) -> AppResult<JobStatus> {
        caller.require_superuser()?;
        if let Some(schedule) = &schedule {
            self.jobs.set_schedule(job, schedule).await?;
        }
        if let Some(enabled) = enabled {
            self.jobs.set_enabled(job, enabled).await?;
        }
        self.jobs
            .status()
            .await?
            .into_iter()
            .find(|j| j.row.name == job.as_str())
            .ok_or(AppError::NotFound("Job"))
    }

    /// Runs a job now.
    pub async fn run_job(&self, caller: &Caller, job: JobName) -> AppResult<RunOutcome> {
        caller.require_superuser()?;
        self.jobs.run_now(job).await
    }

    /// The newest runs.
    pub async fn job_runs(
        &self,
        caller: &Caller,
        job: Option<JobName>,
        limit: i64,
    ) -> AppResult<Vec<JobRunRow>> {
        caller.require_superuser()?;
        self.jobs.runs(job, limit.clamp(1, 1000)).await
    }

    /// The export files, newest first.
    pub async fn exports(&self, caller: &Caller) -> AppResult<Vec<ExportFile>> {
        caller.require_superuser()?;
        let scheduled: std::collections::HashSet<String> = self
            .store
            .exports()
            .await?
            .into_iter()
            .filter(|e| e.scheduled)
            .map(|e| e.file_name)
            .collect();
        let mut files = Vec::new();
        let Ok(mut entries) = tokio::fs::read_dir(self.backups.dir()).await else {
            return Ok(files);
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let Ok(meta) = entry.metadata().await else {
                continue;
            };
            if !is_export_name(&name) || !meta.is_file() {
                continue;
            }
            let created_at = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| Timestamp::from_micros(i64::try_from(d.as_micros()).unwrap_or(0)))
                .unwrap_or_else(Timestamp::now);
            files.push(ExportFile {
                scheduled: scheduled.contains(&name),
                full: name.starts_with("full_data_"),
                bytes: meta.len(),
                created_at,
                name,
            });
        }
        files.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.name.cmp(&a.name)));
        Ok(files)
    }

    /// Writes an export now (on demand: retention leaves it alone).
    pub async fn create_export(&self, caller: &Caller, full: bool) -> AppResult<Written> {
        caller.require_superuser()?;
        Ok(self.backups.export(None, full).await?)
    }

    /// Opens the export `name` for reading (a name from [`Admin::exports`]; nothing else).
    pub async fn open_export(&self, caller: &Caller, name: &str) -> AppResult<tokio::fs::File> {
        caller.require_superuser()?;
        if !is_export_name(name) {
            return Err(AppError::NotFound("Export"));
        }
        match tokio::fs::File::open(self.backups.dir().join(name)).await {
            Ok(file) => Ok(file),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(AppError::NotFound("Export")),
            Err(e) => Err(AppError::Internal(e.into())),
        }
    }

    /// Checks and (unless `dry_run`) applies an export.
    pub async fn import(
        &self,
        caller: &Caller,
        bytes: &[u8],
        dry_run: bool,
        user_map: &HashMap<i64, i64>,
    ) -> AppResult<Imported> {
        caller.require_superuser()?;
        Ok(self.backups.import(bytes, dry_run, user_map).await?)
    }
}
