//! `videoflix.v1.AdminService`: accounts, jobs, exports and imports, for superusers.

use std::pin::Pin;

use tokio::io::AsyncReadExt as _;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::{
    authn::caller,
    pb::{self, admin_service_server::AdminService},
};
use crate::{
    backup::{Counts, Imported, rfc3339},
    domain::UserId,
    error::AppError,
    jobs::{JobName, JobStatus, RunOutcome, Schedule},
    service::{Admin, Caller, UserPatch},
    store::{JobRunRow, UserFilter, UserRecord},
};

/// Bytes per `DownloadExport` message.
const CHUNK: usize = 64 * 1024;

/// gRPC face of [`Admin`].
#[derive(Clone)]
pub struct AdminGrpc {
    admin: Admin,
}

impl AdminGrpc {
    /// Serves `admin`.
    pub fn new(admin: Admin) -> Self {
        Self { admin }
    }

    /// The authenticated caller, refused unless a superuser, before anything else.
    fn superuser<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let caller = caller(request)?;
        caller.require_superuser()?;
        Ok(caller)
    }
}

fn user_id(id: i64) -> Result<UserId, AppError> {
    Ok(UserId::parse(id, "id")?)
}

fn job_name(raw: &str) -> Result<JobName, AppError> {
    raw.parse::<JobName>().map_err(AppError::from)
}

fn user_pb(u: UserRecord) -> pb::AdminUser {
    pb::AdminUser {
        id: u.id.get(),
        email: u.email,
        is_active: u.is_active,
        is_superuser: u.is_superuser,
        is_guest: u.is_guest,
        phone: u.phone,
        address: u.address,
        created_at: rfc3339(u.created_at),
        last_login: u.last_login.map(rfc3339).unwrap_or_default(),
    }
}

fn run_pb(r: JobRunRow) -> pb::JobRun {
    pb::JobRun {
        id: r.id,
        job: r.job,
        due_at: rfc3339(r.due_at),
        trigger: r.trigger,
        started_at: rfc3339(r.started_at),
        finished_at: r.finished_at.map(rfc3339).unwrap_or_default(),
        outcome: r.outcome,
        message: r.message,
        process: r.process,
    }
}

fn job_pb(j: JobStatus) -> pb::Job {
    pb::Job {
        name: j.row.name,
        schedule: j.row.schedule,
        enabled: j.row.enabled,
        next_due: j.next_due.map(rfc3339).unwrap_or_default(),
        last_run: j.last_run.map(run_pb),
    }
}

fn counts_pb(c: Counts) -> Option<pb::ImportCounts> {
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    Some(pb::ImportCounts {
        created: n(c.created),
        updated: n(c.updated),
        unchanged: n(c.unchanged),
    })
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<pb::DownloadExportResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AdminService for AdminGrpc {
    type DownloadExportStream = ChunkStream;

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let caller = self.superuser(&request)?;
        let r = request.into_inner();
        if r.search.chars().count() > 254 {
            return Err(AppError::field(
                "search",
                "Ensure this field has no more than 254 characters.",
            )
            .into());
        }
        if !(0..=100).contains(&r.page_size) {
            return Err(AppError::field("page_size", "Must be between 1 and 100.").into());
        }
        let filter = UserFilter {
            search: r.search.trim().to_lowercase(),
            is_active: r.is_active,
            is_superuser: r.is_superuser,
            is_guest: r.is_guest,
        };
        let size = if r.page_size == 0 {
            20
        } else {
            i64::from(r.page_size)
        };
        let (users, next) = self
            .admin
            .list_users(&caller, &filter, size, &r.page_token)
            .await?;
        Ok(Response::new(pb::ListUsersResponse {
            users: users.into_iter().map(user_pb).collect(),
            next_page_token: next,
        }))
    }

    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::GetUserResponse>, Status> {
        let caller = self.superuser(&request)?;
        let id = user_id(request.get_ref().id)?;
        let user = self.admin.user(&caller, id).await?;
        Ok(Response::new(pb::GetUserResponse {
            user: Some(user_pb(user)),
        }))
    }

    async fn update_user(
        &self,
        request: Request<pb::UpdateUserRequest>,
    ) -> Result<Response<pb::UpdateUserResponse>, Status> {
        let caller = self.superuser(&request)?;
        let r = request.into_inner();
        let id = user_id(r.id)?;
        let patch = UserPatch {
            is_active: r.is_active,
            is_superuser: r.is_superuser,
        };
        let user = self.admin.update_user(&caller, id, patch).await?;
        Ok(Response::new(pb::UpdateUserResponse {
            user: Some(user_pb(user)),
        }))
    }

    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        let caller = self.superuser(&request)?;
        let id = user_id(request.get_ref().id)?;
        self.admin.delete_user(&caller, id).await?;
        Ok(Response::new(pb::DeleteUserResponse {}))
    }

    async fn list_jobs(
        &self,
        request: Request<pb::ListJobsRequest>,
    ) -> Result<Response<pb::ListJobsResponse>, Status> {
        let caller = self.superuser(&request)?;
        let jobs = self.admin.jobs(&caller).await?;
        Ok(Response::new(pb::ListJobsResponse {
            jobs: jobs.into_iter().map(job_pb).collect(),
        }))
    }

    async fn update_job(
        &self,
        request: Request<pb::UpdateJobRequest>,
    ) -> Result<Response<pb::UpdateJobResponse>, Status> {
        let caller = self.superuser(&request)?;
        let r = request.into_inner();
        let job = job_name(&r.name)?;
        let schedule = r
            .schedule
            .as_deref()
            .map(Schedule::parse)
            .transpose()
            .map_err(AppError::from)?;
        let status = self
            .admin
            .update_job(&caller, job, schedule, r.enabled)
            .await?;
        Ok(Response::new(pb::UpdateJobResponse {
            job: Some(job_pb(status)),
        }))
    }

    async fn run_job(
        &self,
        request: Request<pb::RunJobRequest>,
    ) -> Result<Response<pb::RunJobResponse>, Status> {
        let caller = self.superuser(&request)?;
        let job = job_name(&request.get_ref().name)?;
        let run = match self.admin.run_job(&caller, job).await? {
            RunOutcome::Ran(run) => Some(run_pb(run)),
            RunOutcome::AlreadyTaken => None,
        };
        Ok(Response::new(pb::RunJobResponse { run }))
    }

    async fn list_job_runs(
        &self,
        request: Request<pb::ListJobRunsRequest>,
    ) -> Result<Response<pb::ListJobRunsResponse>, Status> {
        let caller = self.superuser(&request)?;
        let r = request.into_inner();
        let job = if r.job.is_empty() {
            None
        } else {
            Some(job_name(&r.job)?)
        };
        if !(0..=1000).contains(&r.limit) {
            return Err(AppError::field("limit", "Must be between 1 and 1000.").into());
        }
        let limit = if r.limit == 0 { 50 } else { i64::from(r.limit) };
        let runs = self.admin.job_runs(&caller, job, limit).await?;
        Ok(Response::new(pb::ListJobRunsResponse {
            runs: runs.into_iter().map(run_pb).collect(),
        }))
    }

    async fn list_exports(
        &self,
        request: Request<pb::ListExportsRequest>,
    ) -> Result<Response<pb::ListExportsResponse>, Status> {
        let caller = self.superuser(&request)?;
        let files = self.admin.exports(&caller).await?;
        Ok(Response::new(pb::ListExportsResponse {
            exports: files
                .into_iter()
                .map(|f| pb::Export {
                    name: f.name,
                    bytes: i64::try_from(f.bytes).unwrap_or(i64::MAX),
                    created_at: rfc3339(f.created_at),
                    scheduled: f.scheduled,
                    full: f.full,
                })
                .collect(),
        }))
    }

    async fn create_export(
        &self,
        request: Request<pb::CreateExportRequest>,
    ) -> Result<Response<pb::CreateExportResponse>, Status> {
        let caller = self.superuser(&request)?;
        let full = request.get_ref().full;
        let written = self.admin.create_export(&caller, full).await?;
        let name = written
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        Ok(Response::new(pb::CreateExportResponse {
            export: Some(pb::Export {
                name,
                bytes: i64::try_from(written.bytes).unwrap_or(i64::MAX),
                created_at: rfc3339(crate::store::Timestamp::now()),
                scheduled: false,
                full,
            }),
        }))
    }

    async fn download_export(
        &self,
        request: Request<pb::DownloadExportRequest>,
    ) -> Result<Response<Self::DownloadExportStream>, Status> {
        let caller = self.superuser(&request)?;
        let mut file = self
            .admin
            .open_export(&caller, &request.get_ref().name)
            .await?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        // A producer that stops when the client goes (the channel closes).
        tokio::spawn(async move {
            let mut buf = vec![0u8; CHUNK];
            loop {
                let message = match file.read(&mut buf).await {
                    Ok(0) => return,
                    Ok(n) => Ok(pb::DownloadExportResponse {
                        data: buf[..n].to_vec(),
                    }),
                    Err(e) => Err(Status::from(AppError::Internal(e.into()))),
                };
                let failed = message.is_err();
                if tx.send(message).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn import_video_data(
        &self,
        request: Request<pb::ImportVideoDataRequest>,
    ) -> Result<Response<pb::ImportVideoDataResponse>, Status> {
        let caller = self.superuser(&request)?;
        let r = request.into_inner();
        if let Some((old, new)) = r.user_map.iter().find(|(o, n)| **o < 1 || **n < 1) {
            return Err(AppError::field(
                "user_map",
                format!("{old} → {new}: user ids are positive."),
            )
            .into());
        }
        let user_map = r.user_map.into_iter().collect();
        let outcome = self
            .admin
            .import(&caller, &r.data, r.dry_run, &user_map)
            .await?;
        Ok(Response::new(match outcome {
            Imported::Done(p) => pb::ImportVideoDataResponse {
                ok: true,
                applied: !r.dry_run,
                videos: counts_pb(p.videos),
                users: counts_pb(p.users),
                favorites: counts_pb(p.favorites),
                watch_progress: counts_pb(p.progress),
                errors: Vec::new(),
            },
            Imported::Rejected(errors) if errors.iter().any(|e| e.section == "file") => {
                let reason = errors
                    .into_iter()
                    .map(|e| e.reason)
                    .collect::<Vec<_>>()
                    .join(" ");
                return Err(AppError::field("data", reason).into());
            }
            Imported::Rejected(errors) => pb::ImportVideoDataResponse {
                ok: false,
                applied: false,
                videos: None,
                users: None,
                favorites: None,
                watch_progress: None,
                errors: errors
                    .into_iter()
                    .map(|e| pb::ImportError {
                        section: e.section.to_owned(),
                        index: i64::try_from(e.index).unwrap_or(i64::MAX),
                        id: e.id.unwrap_or(0),
                        field: e.field,
                        reason: e.reason,
                    })
                    .collect(),
            },
        }))
    }
}
