//! The one periodic timer (tokio-cron-scheduler): once a second it asks [`Jobs`] to run what is
//! due. Schedules live in the database, so a change takes effect on the next tick without a
//! restart, and each due time runs once across every `serve` and `worker` process.

use anyhow::Context as _;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::jobs::Jobs;

/// Every second.
const TICK: &str = "* * * * * *";

/// Starts ticking; keep the handle alive while serving, shut it down to stop.
pub async fn start(jobs: Jobs) -> anyhow::Result<JobScheduler> {
    let scheduler = JobScheduler::new()
        .await
        .context("creating the scheduler")?;
    // A tick that is still running (a long export) is not started again: the next one starts
    // once it is done.
    let busy = std::sync::Arc::new(tokio::sync::Mutex::new(()));
    let job = Job::new_async(TICK, move |_, _| {
        let jobs = jobs.clone();
        let busy = busy.clone();
        Box::pin(async move {
            if let Ok(_running) = busy.try_lock() {
                jobs.tick().await;
            }
        })
    })
    .context("the scheduler tick")?;
    scheduler.add(job).await.context("adding the tick")?;
    scheduler.start().await.context("starting the scheduler")?;
    Ok(scheduler)
}
