//! `videoflix`: the server and its administration commands.

use std::{net::SocketAddr, process::ExitCode};

use clap::{Parser, Subcommand};
use videoflix::{
    cli::admin::{self, JobsAction, parse_user_map},
    config::{Settings, default_addr},
    startup::{Application, Services},
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
        } => admin::worker(&settings, concurrency).await,
        Command::Upload(args) => videoflix::cli::upload::run(args).await,
        Command::Download(args) => videoflix::cli::download::run(args).await,
        Command::MediaUrl { path, settings } => admin::media_url(&settings, &path),
        Command::Transcode {
            input,
            output,
            preset,
            segment_seconds,
        } => admin::transcode(input, output, preset, segment_seconds).await,
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
        } => admin::create_superuser(&settings, &email, password_stdin).await,
        Command::ExportVideoData {
            output,
            full,
            settings,
        } => admin::export(&settings, output.as_deref(), full).await,
        Command::ImportVideoData {
            file,
            dry_run,
            map_user,
            settings,
        } => admin::import(&settings, &file, dry_run, map_user).await,
        Command::Jobs { action, settings } => admin::jobs_command(&settings, action).await,
        Command::PurgeGuests { settings } => {
            let services = Services::connect(&settings, true).await?;
            let removed = services.accounts.purge_guests().await?;
            println!("{removed} expired guest account(s) deleted");
            Ok(())
        }
    }
}
