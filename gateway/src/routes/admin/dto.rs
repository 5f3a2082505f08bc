//! Bodies and answers of the admin routes.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::pb;

/// An account as an administrator sees it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AdminUserDto {
    pub(super) id: i64,
    pub(super) email: String,
    pub(super) is_active: bool,
    pub(super) is_superuser: bool,
    pub(super) is_guest: bool,
    pub(super) phone: String,
    pub(super) address: String,
    /// RFC 3339.
    pub(super) created_at: String,
    /// RFC 3339, or null when never.
    pub(super) last_login: Option<String>,
}

impl From<pb::AdminUser> for AdminUserDto {
    fn from(u: pb::AdminUser) -> Self {
        Self {
            id: u.id,
            email: u.email,
            is_active: u.is_active,
            is_superuser: u.is_superuser,
            is_guest: u.is_guest,
            phone: u.phone,
            address: u.address,
            created_at: u.created_at,
            last_login: Some(u.last_login).filter(|s| !s.is_empty()),
        }
    }
}

/// One page of accounts.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserPageDto {
    pub(super) results: Vec<AdminUserDto>,
    /// Pass as `page_token` for the next page; null on the last.
    pub(super) next_page_token: Option<String>,
}

/// Query of `GET /api/admin/users/`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserParams {
    /// Part of the e-mail (case-insensitive).
    #[param(max_length = 254)]
    pub(super) search: Option<String>,
    /// Only active (`true`) or inactive (`false`) accounts.
    #[param(value_type = Option<bool>)]
    pub(super) is_active: Option<String>,
    /// Only superusers, or only others.
    #[param(value_type = Option<bool>)]
    pub(super) is_superuser: Option<String>,
    /// Only guests, or only others.
    #[param(value_type = Option<bool>)]
    pub(super) is_guest: Option<String>,
    /// 1–100 (default 20).
    #[param(value_type = Option<i32>, minimum = 1, maximum = 100)]
    pub(super) page_size: Option<String>,
    /// From `next_page_token`.
    pub(super) page_token: Option<String>,
}

/// Changes to an account; absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserPatchBody {
    pub(super) is_active: Option<bool>,
    pub(super) is_superuser: Option<bool>,
}

/// One run of a job.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobRunDto {
    pub(super) id: i64,
    pub(super) job: String,
    /// The due time it ran for (RFC 3339).
    pub(super) due_at: String,
    /// `schedule`, `catch-up` or `manual`.
    pub(super) trigger: String,
    pub(super) started_at: String,
    pub(super) finished_at: Option<String>,
    /// `running`, `ok` or `failed`.
    pub(super) outcome: String,
    pub(super) message: String,
    pub(super) process: String,
}

impl From<pb::JobRun> for JobRunDto {
    fn from(r: pb::JobRun) -> Self {
        Self {
            id: r.id,
            job: r.job,
            due_at: r.due_at,
            trigger: r.trigger,
            started_at: r.started_at,
            finished_at: Some(r.finished_at).filter(|s| !s.is_empty()),
            outcome: r.outcome,
            message: r.message,
            process: r.process,
        }
    }
}

/// A periodic job.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobDto {
    /// `export`, `purge-guests`, `clean-sessions` or `sweep`.
    pub(super) name: String,
    /// Six-field cron expression (seconds first).
    pub(super) schedule: String,
    pub(super) enabled: bool,
    /// RFC 3339; null while disabled.
    pub(super) next_due: Option<String>,
    pub(super) last_run: Option<JobRunDto>,
}

impl From<pb::Job> for JobDto {
    fn from(j: pb::Job) -> Self {
        Self {
            name: j.name,
            schedule: j.schedule,
            enabled: j.enabled,
            next_due: Some(j.next_due).filter(|s| !s.is_empty()),
            last_run: j.last_run.map(JobRunDto::from),
        }
    }
}

/// Changes to a job; absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct JobPatchBody {
    /// A six-field cron expression, e.g. `0 0 3 * * Mon`.
    #[schema(max_length = 200)]
    pub(super) schedule: Option<String>,
    pub(super) enabled: Option<bool>,
}

/// What `POST /api/admin/jobs/{name}/run/` did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunDto {
    /// The run; null when another process was running the job for this moment.
    pub(super) run: Option<JobRunDto>,
}

/// Query of `GET /api/admin/job-runs/`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunParams {
    /// Only this job.
    pub(super) job: Option<String>,
    /// 1–1000 (default 50).
    #[param(value_type = Option<i32>, minimum = 1, maximum = 1000)]
    pub(super) limit: Option<String>,
}

/// An export file.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ExportDto {
    pub(super) name: String,
    pub(super) bytes: i64,
    pub(super) created_at: String,
    /// Written by the schedule (retention applies to these only).
    pub(super) scheduled: bool,
    /// A full document with accounts, favorites and progress.
    pub(super) full: bool,
}

impl From<pb::Export> for ExportDto {
    fn from(e: pb::Export) -> Self {
        Self {
            name: e.name,
            bytes: e.bytes,
            created_at: e.created_at,
            scheduled: e.scheduled,
            full: e.full,
        }
    }
}

/// `POST /api/admin/exports/`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportBody {
    /// Also accounts, favorites and watch progress.
    #[serde(default)]
    pub(super) full: bool,
}

/// Query of `POST /api/admin/import/`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImportParams {
    /// `true`: only preview, write nothing.
    #[param(value_type = Option<bool>)]
    pub(super) dry_run: Option<String>,
}

/// Created / updated / unchanged records of one kind.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CountsDto {
    pub(super) created: i64,
    pub(super) updated: i64,
    pub(super) unchanged: i64,
}

/// One bad record of an import.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ImportErrorDto {
    pub(super) section: String,
    pub(super) index: i64,
    pub(super) id: Option<i64>,
    pub(super) field: String,
    pub(super) reason: String,
}

/// What an import did (or, dry, would do).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ImportDto {
    /// False when a record was bad: nothing was written, `errors` says why.
    pub(super) ok: bool,
    /// The changes were written.
    pub(super) applied: bool,
    pub(super) videos: Option<CountsDto>,
    pub(super) users: Option<CountsDto>,
    pub(super) favorites: Option<CountsDto>,
    pub(super) watch_progress: Option<CountsDto>,
    pub(super) errors: Vec<ImportErrorDto>,
}

/// An export file: the video array (`video_data_….json`) or a full document
/// (`full_data_….json`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum ExportDocument {
    /// One object per video.
    Videos(Vec<std::collections::HashMap<String, serde_json::Value>>),
    /// `{"format": "videoflix-full-export", "version": 1, "users": […], "videos": […], …}`.
    Full(std::collections::HashMap<String, serde_json::Value>),
}
