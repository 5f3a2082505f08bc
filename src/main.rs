//! `videoflix`: the server and its administration commands.

use std::{io::BufRead as _, net::SocketAddr, process::ExitCode};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use videoflix::{
    config::{Settings, default_addr},
    domain::{Email, Password},
    startup::{Application, Services},
    store::NewUser,
    telemetry,
};

/// Videoflix video-streaming backend: gRPC, gRPC-web and REST on one port.
///
/// Every setting can be given as a flag, an environment variable or a line in `.env`.
#[derive(Parser)]
#[command(name = "videoflix", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (migrates the database first unless --no-migrate).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "VIDEOFLIX_ADDR", default_value_t = default_addr())]
        addr: SocketAddr,
        /// Do not apply migrations at start.
        #[arg(long)]
        no_migrate: bool,
        #[command(flatten)]
        settings: Box<Settings>,
    },
    /// Run transcode workers (no HTTP): with Redis, any number of these share the job queue.
    Worker {
        /// Transcodes run at once (default WORKER_CONCURRENCY).
        #[arg(long)]
        concurrency: Option<usize>,
        #[command(flatten)]
        settings: Box<Settings>,
    },
    /// Upload a video to a server over gRPC and follow its transcode (superusers).
    Upload(videoflix::cli::upload::UploadArgs),
    /// Download a rendition over gRPC StreamVideo (prints the throughput).
    Download(videoflix::cli::download::DownloadArgs),
    /// Print a signed URL of a stored media file (path relative to MEDIA_DIR).
    MediaUrl {
        /// e.g. videos/7/<generation>/360p.mp4
        path: String,
        #[command(flatten)]
        settings: Box<Settings>,
    },
    /// Transcode a file into a folder here, as a worker would (no server; for trying settings
    /// and for benchmarks).
    Transcode {
        /// The source video.
        input: std::path::PathBuf,
        /// An empty or new folder for the outputs.
        output: std::path::PathBuf,
        /// x264 preset.
        #[arg(long, default_value = "medium")]
        preset: String,
        /// HLS segment length in seconds.
        #[arg(long, default_value_t = 4)]
        segment_seconds: u32,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        #[command(flatten)]
        settings: Box<Settings>,
    },
    /// Create an administrator (or promote an existing account and set its password).
    Createsuperuser {
        /// E-mail of the administrator.
        #[arg(long)]
        email: String,
        /// Read the password from the first line of standard input (else one is generated and
        /// printed).
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        settings: Box<Settings>,
    },
    /// Delete expired guest accounts now (the server also does this hourly).
    PurgeGuests {
        #[command(flatten)]
        settings: Box<Settings>,
    },
    /// Export the catalog to `video_data_YYYY-MM-DD_HH-MM-SS.json` (UTC) in EXPORT_DIR.
    ExportVideoData {
        /// Folder to write into (default EXPORT_DIR).
        #[arg(long)]
        output: Option<std::path::PathBuf>,
        /// Also accounts (with password hashes), favorites and watch progress, as one
        /// versioned document for disaster recovery.
        #[arg(long)]
        full: bool,
        #[command(flatten)]
        settings: Box<Settings>,
    },
    /// The periodic jobs: list them (schedule, next due time, last run), or change one.
    Jobs {
        #[command(subcommand)]
        action: Option<JobsAction>,
        #[command(flatten)]
        settings: Box<Settings>,
    },
    /// Import an export (either format): checked whole first, then written in one transaction.
    ImportVideoData {
        /// The export file.
        file: std::path::PathBuf,
        /// Print what would change and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Uploader id of the file and the account here it stands for (`OLD=NEW`; repeatable).
        #[arg(long = "map-user", value_parser = parse_user_map)]
        map_user: Vec<(i64, i64)>,
        #[command(flatten)]
        settings: Box<Settings>,
    },
}

#[derive(Subcommand)]
enum JobsAction {
    /// Give a job a new schedule (six-field cron, seconds first), e.g. `set export "0 0 3 * * Mon"`.
    Set { name: String, schedule: String },
    /// Run a job now, once (recorded like a scheduled run).
    Run { name: String },
    /// Stop running a job on its schedule.
    Disable { name: String },
    /// Run a job on its schedule again.
    Enable { name: String },
    /// The newest runs (of one job, or of all).
    Runs {
        name: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

fn parse_user_map(raw: &str) -> Result<(i64, i64), String> {
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

// The request path allocates many small strings (JSON, protobuf); mimalloc handles that
// pattern markedly better than glibc's malloc under concurrency (see bench/).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    telemetry::init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve {
            addr,
            no_migrate,
            settings,
        } => {
            if settings.dev {
                tracing::warn!("--dev: using the built-in JWT secret; never do this in production");
            }
            tracing::info!(backends = settings.describe_backends(), "starting");
            let app = Application::build(*settings, addr, !no_migrate).await?;
            app.run_until_stopped().await
        }
        Command::Worker {
            concurrency,
            settings,
        } => {
            if settings.redis_url.is_none() {
                tracing::warn!(
                    "no REDIS_URL: this worker only finishes the unfinished videos it finds at \
                     start; `serve` runs its own worker for new uploads"
                );
            }
            let services = Services::connect(&settings, true).await?;
            let concurrency = concurrency.unwrap_or(settings.worker_concurrency).max(1);
            let workers = videoflix::startup::start_workers(&services.pipeline, concurrency).await;
            let mut scheduler = videoflix::scheduler::start(services.jobs.clone()).await?;
            videoflix::startup::wait_for_shutdown().await;
            let _ = scheduler.shutdown().await;
            for worker in workers {
                worker.abort();
            }
            services.store.close().await;
            Ok(())
        }
        Command::Upload(args) => videoflix::cli::upload::run(args).await,
        Command::Download(args) => videoflix::cli::download::run(args).await,
        Command::MediaUrl { path, settings } => {
            let signer = videoflix::security::MediaSigner::new(settings.signing_secret());
            let signed = signer
                .sign(&path, videoflix::security::MediaSigner::current_expiry())
                .context("not a servable media path (videos/<id>/<folder>/…)")?;
            println!("{}", settings.public_url.join(&format!("media/{signed}"))?);
            Ok(())
        }
        Command::Transcode {
            input,
            output,
            preset,
            segment_seconds,
        } => {
            let started = std::time::Instant::now();
            let outputs = tokio::task::spawn_blocking(move || {
                std::fs::create_dir_all(&output)?;
                let probe = videoflix::media::probe(&input, videoflix::media::DEFAULT_MAX_PIXELS)?;
                let options = videoflix::media::TranscodeOptions {
                    preset,
                    segment_seconds,
                    ..Default::default()
                };
                videoflix::media::transcode(&input, &output, &probe, &options, &mut |_| {}, &|| {
                    false
                })
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
        Command::Migrate { settings } => {
            let services = Services::connect(&settings, true).await?;
            services.store.close().await;
            println!("migrations applied ({})", services.store.backend_name());
            Ok(())
        }
        Command::Createsuperuser {
            email,
            password_stdin,
            settings,
        } => create_superuser(&settings, &email, password_stdin).await,
        Command::ExportVideoData {
            output,
            full,
            settings,
        } => {
            let services = Services::connect(&settings, true).await?;
            let written = services.backups.export(output.as_deref(), full).await;
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
        Command::ImportVideoData {
            file,
            dry_run,
            map_user,
            settings,
        } => import(&settings, &file, dry_run, map_user).await,
        Command::Jobs { action, settings } => {
            let services = Services::connect(&settings, true).await?;
            let result = jobs(&services.jobs, action).await;
            services.store.close().await;
            result
        }
        Command::PurgeGuests { settings } => {
            let services = Services::connect(&settings, true).await?;
            let removed = services.accounts.purge_guests().await?;
            println!("{removed} expired guest account(s) deleted");
            Ok(())
        }
    }
}

async fn jobs(jobs: &videoflix::jobs::Jobs, action: Option<JobsAction>) -> anyhow::Result<()> {
    use videoflix::{backup::rfc3339, jobs::JobName};
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
            let schedule = videoflix::jobs::Schedule::parse(&schedule)
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            jobs.set_schedule(job, &schedule).await?;
            println!("{job}: {}", schedule.as_str());
        }
        Some(JobsAction::Run { name: job }) => match jobs.run_now(name(&job)?).await? {
            videoflix::jobs::RunOutcome::Ran(run) => {
                println!("{job}: {} {}", run.outcome, run.message);
                anyhow::ensure!(run.outcome == "ok", "{job} failed");
            }
            videoflix::jobs::RunOutcome::AlreadyTaken => println!("{job}: already running"),
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

async fn import(
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
        videoflix::backup::Imported::Rejected(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            anyhow::bail!(
                "{} bad record(s) in {}; nothing was written",
                errors.len(),
                file.display()
            )
        }
        videoflix::backup::Imported::Done(preview) => {
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

async fn create_superuser(
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
    services.store.close().await;
    println!("superuser {email} ready (id {})", user.id);
    if generated {
        println!("generated password: {}", password.expose());
    }
    Ok(())
}
