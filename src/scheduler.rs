//! Periodic jobs (tokio-cron-scheduler, six-field cron with seconds first, UTC). Each job is
//! idempotent, so several processes running the scheduler at once do no harm.

use anyhow::Context as _;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::service::Accounts;

/// Every hour at minute 7: delete guests older than their lifetime.
pub const PURGE_GUESTS: &str = "0 7 * * * *";

/// Starts the scheduler with the periodic jobs; keep the handle alive while serving.
pub async fn start(accounts: Accounts) -> anyhow::Result<JobScheduler> {
    let scheduler = JobScheduler::new()
        .await
        .context("creating the scheduler")?;
    let job = Job::new_async(PURGE_GUESTS, move |_, _| {
        let accounts = accounts.clone();
        Box::pin(async move {
            if let Err(e) = accounts.purge_guests().await {
                tracing::error!(error = ?e, "purging guests failed");
            }
        })
    })
    .context("guest purge job")?;
    scheduler
        .add(job)
        .await
        .context("adding the guest purge job")?;
    scheduler.start().await.context("starting the scheduler")?;
    Ok(scheduler)
}
