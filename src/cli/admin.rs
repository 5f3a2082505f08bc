//! Administration commands of the `videoflix` binary: they run against the backends of the
//! settings they are given (database, Redis, media folder), not through a server.

use std::io::BufRead as _;

use anyhow::Context as _;
use clap::Subcommand;

use crate::{
    config::Settings,
    domain::{Email, Password},
    services::Services,
    store::NewUser,
};

/// What `videoflix jobs` does (nothing: list the jobs).
#[derive(Subcommand)]
pub enum JobsAction {
    /// Give a job a new schedule (six-field cron, seconds first), e.g. `set export "0 0 3 * * Mon"`.
    Set {
        /// The job.
        name: String,
        /// Six-field cron expression.
        schedule: String,
    },
    /// Run a job now, once (recorded like a scheduled run).
    Run {
        /// The job.
        name: String,
    },
    /// Stop running a job on its schedule.
    Disable {
        /// The job.
        name: String,
    },
    /// Run a job on its schedule again.
    Enable {
        /// The job.
        name: String,
    },
    /// The newest runs (of one job, or of all).
    Runs {
        /// Only this job's runs.
        name: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

/// Parses `--map-user OLD=NEW` (two positive user ids).
pub fn parse_user_map(raw: &str) -> Result<(i64, i64), String> {
    let (old, new) = raw
        .split_once('=')
        .ok_or_else(|| format!("expected OLD=NEW, got {raw:?}"))?;
    let id = |s: &str| {
        s.trim()
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| format!("{s:?} is not a user id"))
    };
    Ok((id(old)?, id(new)?))
}

/// `videoflix worker`: transcode workers and the scheduler, until SIGINT/SIGTERM.
pub async fn worker(settings: &Settings, concurrency: Option<usize>) -> anyhow::Result<()> {
    if settings.redis_url.is_none() {
        tracing::warn!(
            "no REDIS_URL: this worker only finishes the unfinished videos it finds at start; \
             `serve` runs its own worker for new uploads"
        );
    }
    let services = Services::connect(settings, true).await?;
    let concurrency = concurrency.unwrap_or(settings.worker_concurrency).max(1);
    let workers = crate::startup::start_workers(&services.pipeline, concurrency).await;
    let mut scheduler = crate::scheduler::start(services.jobs.clone()).await?;
    crate::startup::wait_for_shutdown().await;
    let grace = std::time::Duration::from_secs(settings.shutdown_grace);
    crate::startup::stop_workers(&services.pipeline, workers, grace).await;
    let _ = scheduler.shutdown().await;
    services.store.close().await;
    Ok(())
}

/// `videoflix media-url`: a signed URL of a stored media path.
pub fn media_url(settings: &Settings, path: &str) -> anyhow::Result<()> {
    let signer = crate::security::MediaSigner::new(settings.signing_secret());
    let signed = signer
        .sign(path, crate::security::MediaSigner::current_expiry())
        .context("not a servable media path (videos/<id>/<folder>/…)")?;
    println!("{}", settings.public_url.join(&format!("media/{signed}"))?);
    Ok(())
}

/// `videoflix transcode`: one file through the ladder, outside any server.
pub async fn transcode(
    input: std::path::PathBuf,
    output: std::path::PathBuf,
    preset: String,
    segment_seconds: u32,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let outputs = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&output)?;
        let probe = crate::media::probe(&input, crate::media::DEFAULT_MAX_PIXELS)?;
        let options = crate::media::TranscodeOptions {
            preset,
            segment_seconds,
            ..Default::default()
        };
        crate::media::transcode(&input, &output, &probe, &options, &mut |_| {}, &|| false)
            .map_err(anyhow::Error::from)
    })
    .await??;
    for r in &outputs.renditions {
        println!(
            "{} {}x{} {} kbit/s: {} + {}",
            r.rendition.name,
            r.rendition.width,
            r.rendition.height,
            r.rendition.video_kbps,
            r.mp4,
            r.playlist
        );
    }
    println!(
        "{} sprites, {}, {}; {:.1} s of video in {:.2} s",
        outputs.sprites.len(),
        outputs.poster,
        outputs.vtt,
        outputs.duration,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `videoflix export-video-data`.
pub async fn export(
    settings: &Settings,
    output: Option<&std::path::Path>,
    full: bool,
) -> anyhow::Result<()> {
    let services = Services::connect(settings, true).await?;
    let written = services.backups.export(output, full).await;
    services.store.close().await;
    let written = written?;
    println!(
        "{} ({} videos{})",
        written.path.display(),
        written.videos,
        if full {
            format!(
                ", {} users, {} favorites, {} progress",
                written.users, written.favorites, written.progress
            )
        } else {
            String::new()
        }
    );
    Ok(())
}

/// `videoflix jobs`: connects, runs `action`, disconnects.
pub async fn jobs_command(settings: &Settings, action: Option<JobsAction>) -> anyhow::Result<()> {
    let services = Services::connect(settings, true).await?;
    let result = jobs(&services.jobs, action).await;
    services.store.close().await;
    result
}

async fn jobs(jobs: &crate::jobs::Jobs, action: Option<JobsAction>) -> anyhow::Result<()> {
    use crate::{backup::rfc3339, jobs::JobName};
    let name = |raw: &str| {
        raw.parse::<JobName>()
            .map_err(|e| anyhow::anyhow!("{}", e.message))
    };
    match action {
        None => {
            println!(
                "{:<15} {:<8} {:<18} {:<28} last run",
                "job", "enabled", "schedule", "next due"
            );
            for job in jobs.status().await? {
                let last = job.last_run.map_or_else(
                    || "never".to_owned(),
                    |r| {
                        format!(
                            "{} {} ({}) {}",
                            rfc3339(r.started_at),
                            r.outcome,
                            r.trigger,
                            r.message
                        )
                    },
                );
                println!(
                    "{:<15} {:<8} {:<18} {:<28} {last}",
                    job.row.name,
                    if job.row.enabled { "yes" } else { "no" },
                    job.row.schedule,
                    job.next_due.map_or_else(|| "-".to_owned(), rfc3339),
                );
            }
        }
        Some(JobsAction::Set {
            name: job,
            schedule,
        }) => {
            let job = name(&job)?;
            let schedule = crate::jobs::Schedule::parse(&schedule)
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            jobs.set_schedule(job, &schedule).await?;
            println!("{job}: {}", schedule.as_str());
        }
        Some(JobsAction::Run { name: job }) => match jobs.run_now(name(&job)?).await? {
            crate::jobs::RunOutcome::Ran(run) => {
                println!("{job}: {} {}", run.outcome, run.message);
                anyhow::ensure!(run.outcome == "ok", "{job} failed");
            }
            crate::jobs::RunOutcome::AlreadyTaken => println!("{job}: already running"),
        },
        Some(JobsAction::Disable { name: job }) => {
            jobs.set_enabled(name(&job)?, false).await?;
            println!("{job}: disabled");
        }
        Some(JobsAction::Enable { name: job }) => {
            jobs.set_enabled(name(&job)?, true).await?;
            println!("{job}: enabled");
        }
        Some(JobsAction::Runs { name: job, limit }) => {
            let job = job.as_deref().map(name).transpose()?;
            for r in jobs.runs(job, limit.clamp(1, 1000)).await? {
                println!(
                    "{} {:<15} due {} {} ({}) {} [{}]",
                    r.id,
                    r.job,
                    rfc3339(r.due_at),
                    r.outcome,
                    r.trigger,
                    r.message,
                    r.process
                );
            }
        }
    }
    Ok(())
}

/// `videoflix import-video-data`.
pub async fn import(
    settings: &Settings,
    file: &std::path::Path,
    dry_run: bool,
    map_user: Vec<(i64, i64)>,
) -> anyhow::Result<()> {
    let bytes = tokio::fs::read(file)
        .await
        .with_context(|| format!("reading {}", file.display()))?;
    let services = Services::connect(settings, true).await?;
    let outcome = services
        .backups
        .import(&bytes, dry_run, &map_user.into_iter().collect())
        .await;
    services.store.close().await;
    match outcome? {
        crate::backup::Imported::Rejected(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            anyhow::bail!(
                "{} bad record(s) in {}; nothing was written",
                errors.len(),
                file.display()
            )
        }
        crate::backup::Imported::Done(preview) => {
            let verb = if dry_run { "would be" } else { "" };
            for (what, c) in [
                ("videos", preview.videos),
                ("users", preview.users),
                ("favorites", preview.favorites),
                ("watch progress", preview.progress),
            ] {
                if c.created + c.updated + c.unchanged > 0 || what == "videos" {
                    println!(
                        "{what}: {} created, {} updated, {} unchanged{}",
                        c.created,
                        c.updated,
                        c.unchanged,
                        if verb.is_empty() {
                            String::new()
                        } else {
                            format!(" ({verb})")
                        }
                    );
                }
            }
            if dry_run {
                println!("dry run: nothing was written");
            } else if settings.redis_url.is_none() {
                println!(
                    "note: without Redis a running server's catalog cache shows the change within \
                     CACHE_TTL"
                );
            }
            Ok(())
        }
    }
}

/// `videoflix createsuperuser`: creates or promotes an account, with a given or generated
/// password.
pub async fn create_superuser(
    settings: &Settings,
    email: &str,
    password_stdin: bool,
) -> anyhow::Result<()> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let (password, generated) = if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        (line.trim_end_matches(['\r', '\n']).to_owned(), false)
    } else {
        (hex::encode(rand::random::<[u8; 12]>()), true)
    };
    let password =
        Password::new(&password, &password, &email, "password", "password").map_err(|e| {
            anyhow::anyhow!(
                "{}",
                e.0.iter()
                    .map(|f| f.message.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        })?;
    let services = Services::connect(settings, true).await?;
    let hash = services.accounts.hasher().hash(password.expose()).await?;
    let user = match services.store.user_by_email(&email).await? {
        Some(existing) => {
            services
                .store
                .set_password(existing.user_id(), &hash)
                .await?;
            existing
        }
        None => {
            services
                .store
                .create_user(NewUser {
                    email: &email,
                    password_hash: &hash,
                    is_active: true,
                    is_superuser: true,
                    is_guest: false,
                })
                .await?
        }
    };
    services.store.set_superuser(user.user_id(), true).await?;
    // Processes that keep verified sessions (shared through Redis) see the promotion at once.
    services.accounts.forget_cached_sessions().await;
    services.store.close().await;
    println!("superuser {email} ready (id {})", user.id);
    if generated {
        println!("generated password: {}", password.expose());
    }
    Ok(())
}
