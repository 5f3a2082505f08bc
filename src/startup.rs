//! Building the application from [`Settings`]: backends chosen once ([`Services`]), then the
//! one-port server ([`Application`]) that tests also spawn on port 0.

use std::{net::SocketAddr, time::Duration};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic_health::server::HealthReporter;

use crate::{
    cache::Cache,
    config::Settings,
    grpc::{self, AdminGrpc, AuthGrpc, VideoGrpc, pb},
    kv::Redis,
    mail::Mailer,
    media::TranscodeOptions,
    queue::JobQueue,
    ratelimit::RateLimiter,
    security::{MediaSigner, Tokens},
    service::{Accounts, Catalog, Pipeline, PipelineConfig, SessionCache, StatusHub, VideoLimits},
    store::Store,
    web,
};

/// Every backend of a process, chosen from the settings: the rest of the code never asks
/// whether Redis or SMTP is configured.
#[derive(Clone)]
pub struct Services {
    /// Database.
    pub store: Store,
    /// Redis, when configured.
    pub redis: Option<Redis>,
    /// Account use cases.
    pub accounts: Accounts,
    /// Catalog use cases.
    pub catalog: Catalog,
    /// Uploads, transcode jobs and workers.
    pub pipeline: Pipeline,
    /// Catalog export and import.
    pub backups: crate::backup::Backups,
    /// The periodic jobs.
    pub jobs: crate::jobs::Jobs,
    /// The admin functions.
    pub admin: crate::service::Admin,
}

impl Services {
    /// Connects every backend (and migrates the database when `migrate` is set).
    pub async fn connect(settings: &Settings, migrate: bool) -> anyhow::Result<Self> {
        settings.validate()?;
        let store = Store::connect(
            settings.database_kind()?,
            &settings.database_url,
            settings.database_max_connections,
            std::time::Duration::from_millis(settings.database_busy_timeout_ms),
        )
        .await?;
        if migrate {
            store.migrate().await.context("applying migrations")?;
        }
        let redis = match &settings.redis_url {
            Some(url) => Some(
                Redis::connect(
                    url,
                    &settings.redis_prefix,
                    Duration::from_millis(settings.redis_timeout_ms.max(1)),
                )
                .await?,
            ),
            None => None,
        };
        let limiter = match &redis {
            Some(redis) => RateLimiter::redis(redis.clone(), settings.throttle_enabled),
            None => RateLimiter::memory(settings.throttle_enabled),
        };
        let mailer = Mailer::new(
            settings.smtp_url.as_deref(),
            settings.mail_outbox_dir.clone(),
            &settings.mail_from,
        )
        .await?;
        let tokens = Tokens::new(settings.signing_secret(), settings.access_token_ttl);
        let cache_ttl = Duration::from_secs(settings.cache_ttl.max(1));
        let cache = match (&redis, settings.cache_enabled) {
            (_, false) => Cache::disabled(),
            (Some(redis), true) => Cache::redis(redis.clone(), cache_ttl),
            (None, true) => Cache::memory(cache_ttl, 10_000),
        };
        let catalog = Catalog::new(
            store.clone(),
            cache.clone(),
            limiter.clone(),
            VideoLimits {
                anon: settings.throttle_anon,
                user: settings.throttle_user,
                user_day: settings.throttle_user_day,
            },
            settings.media_dir.clone(),
        );
        // Only a single-process deployment can keep verified sessions in memory and still
        // revoke them at once; with PostgreSQL or Redis several processes may serve.
        let sessions = if redis.is_none() && !settings.is_postgres() {
            SessionCache::local()
        } else {
            SessionCache::disabled()
        };
        let accounts = Accounts::new(
            settings,
            store.clone(),
            tokens,
            mailer,
            limiter,
            sessions,
            cache.clone(),
        );
        let queue = match &redis {
            Some(redis) => JobQueue::redis(
                redis.clone(),
                Duration::from_secs(settings.job_visibility_timeout.max(5)),
            ),
            None => JobQueue::memory(),
        };
        let hub = StatusHub::new(redis.clone());
        hub.start();
        let pipeline = Pipeline::new(
            store.clone(),
            cache.clone(),
            queue,
            hub,
            PipelineConfig {
                media_dir: settings.media_dir.clone(),
                upload_limit: settings.upload_max_bytes,
                max_pixels: settings.media_max_pixels,
                upload_idle: Duration::from_secs(settings.upload_idle_timeout.max(1)),
                max_attempts: settings.transcode_max_attempts,
                retry_delay: Duration::from_secs(settings.transcode_retry_delay),
                // A live job refreshes its claim every 2 s; half the visibility timeout (at least
                // 4 s) tells a dead one, and is always reached before its queue entry is
                // reclaimed.
                stale_after: Duration::from_secs(
                    (settings.job_visibility_timeout.max(5) / 2).max(4),
                ),
                transcode: TranscodeOptions {
                    segment_seconds: settings.hls_segment_seconds,
                    preset: settings.transcode_preset.clone(),
                    ..TranscodeOptions::default()
                },
            },
        );
        let backups =
            crate::backup::Backups::new(store.clone(), cache.clone(), settings.export_dir.clone());
        let jobs = crate::jobs::Jobs::new(
            store.clone(),
            redis.clone(),
            backups.clone(),
            accounts.clone(),
            pipeline.clone(),
            settings.schedule_tz,
            settings.export_keep,
        );
        let export_schedule = crate::jobs::Schedule::parse(&settings.export_schedule)
            .map_err(|e| anyhow::anyhow!("EXPORT_SCHEDULE: {}", e.message))?;
        jobs.seed(&export_schedule)
            .await
            .context("storing the default job schedules")?;
        let admin = crate::service::Admin::new(
            store.clone(),
            accounts.clone(),
            jobs.clone(),
            backups.clone(),
        );
        Ok(Self {
            store,
            redis,
            accounts,
            catalog,
            pipeline,
            backups,
            jobs,
            admin,
        })
    }
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    limits: crate::serve::ConnectionLimits,
    router: axum::Router,
    services: Services,
    health: HealthReporter,
    port: u16,
    workers: Option<usize>,
}

impl Application {
    /// Connects the backends, migrates (unless `migrate` is false) and binds `addr` (port 0
    /// picks a free port).
    pub async fn build(
        settings: Settings,
        addr: SocketAddr,
        migrate: bool,
    ) -> anyhow::Result<Self> {
        let services = Services::connect(&settings, migrate).await?;
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_serving::<pb::auth_service_server::AuthServiceServer<AuthGrpc>>()
            .await;
        health
            .set_serving::<pb::video_service_server::VideoServiceServer<VideoGrpc>>()
            .await;
        health
            .set_serving::<pb::admin_service_server::AdminServiceServer<AdminGrpc>>()
            .await;
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(grpc::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let auth = AuthGrpc::new(services.accounts.clone(), settings.trust_proxy_headers);
        let video = VideoGrpc::new(
            services.accounts.clone(),
            services.catalog.clone(),
            services.pipeline.clone(),
            settings.media_dir.clone(),
            MediaSigner::new(settings.signing_secret()),
            settings.public_url.clone(),
            settings.trust_proxy_headers,
        );
        let routes = Routes::new(pb::auth_service_server::AuthServiceServer::new(auth))
            .add_service(pb::video_service_server::VideoServiceServer::new(video))
            .add_service(pb::admin_service_server::AdminServiceServer::new(
                AdminGrpc::new(
                    services.accounts.clone(),
                    services.catalog.clone(),
                    services.admin.clone(),
                    settings.trust_proxy_headers,
                ),
            ))
            .add_service(health_service)
            .add_service(reflection().build_v1().context("reflection v1")?)
            .add_service(reflection().build_v1alpha().context("reflection v1alpha")?)
            .prepare();
        let router = web::app(&settings, routes, services.clone())?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let port = listener.local_addr()?.port();
        let workers = settings
            .runs_worker()
            .then_some(settings.worker_concurrency);
        let limits = crate::serve::ConnectionLimits {
            max_connections: settings.max_connections.max(1),
            // Behind a trusted proxy every connection comes from the proxy: a per-address
            // limit would be one limit for all users (per-client limits are the rate limits).
            max_per_address: if settings.trust_proxy_headers {
                usize::MAX
            } else {
                settings.max_connections_per_address.max(1)
            },
            header_read_timeout: Duration::from_secs(settings.header_read_timeout.max(1)),
            http2_keep_alive: Duration::from_secs(settings.http2_keep_alive.max(1)),
            idle_timeout: Duration::from_secs(settings.idle_timeout.max(1)),
        };
        Ok(Self {
            listener,
            router,
            services,
            health,
            port,
            workers,
            limits,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The backends, for tests and commands.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Serves until SIGINT/SIGTERM, with the scheduler and the health watcher running.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` resolves (a test stops the app it spawned this way), then lets open
    /// requests finish and stops the workers and the scheduler.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let scheduler = crate::scheduler::start(self.services.jobs.clone()).await?;
        let watcher = tokio::spawn(watch_health(self.services.clone(), self.health));
        let workers = match self.workers {
            Some(n) => start_workers(&self.services.pipeline, n).await,
            None => Vec::new(),
        };
        tracing::info!(
            port = self.port,
            backend = self.services.store.backend_name(),
            "listening (gRPC, gRPC-web, REST on one port)"
        );
        let result = crate::serve::serve(self.listener, self.router, self.limits, stop)
            .await
            .context("serving");
        watcher.abort();
        for worker in workers {
            worker.abort();
        }
        let mut scheduler = scheduler;
        let _ = scheduler.shutdown().await;
        self.services.store.close().await;
        result
    }
}

/// Re-enqueues unfinished transcodes, then starts `concurrency` workers.
pub async fn start_workers(
    pipeline: &crate::service::Pipeline,
    concurrency: usize,
) -> Vec<tokio::task::JoinHandle<()>> {
    pipeline.clean_debris().await;
    if let Err(e) = pipeline.sweep().await {
        tracing::warn!(error = %e, "start-up sweep failed; unfinished videos wait for the next");
    }
    tracing::info!(concurrency, "transcode workers running");
    pipeline.spawn_workers(concurrency)
}

/// Waits for SIGINT or SIGTERM.
pub async fn wait_for_shutdown() {
    shutdown_signal().await;
}

/// Keeps the gRPC health status in step with the database and Redis.
async fn watch_health(services: Services, health: HealthReporter) {
    let mut serving = true;
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let ok = web::readiness(&services).await;
        if ok != serving {
            serving = ok;
            let status = if ok {
                tonic_health::ServingStatus::Serving
            } else {
                tonic_health::ServingStatus::NotServing
            };
            tracing::warn!(?status, "health changed");
            for name in [
                "",
                "videoflix.v1.AuthService",
                "videoflix.v1.VideoService",
                "videoflix.v1.AdminService",
            ] {
                health.set_service_status(name, status).await;
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
