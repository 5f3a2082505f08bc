//! Building the application from [`Settings`]: backends chosen once ([`Services`]), then the
//! one-port server ([`Application`]) that tests also spawn on port 0.

use std::{net::SocketAddr, time::Duration};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic_health::server::HealthReporter;

pub use crate::services::Services;
use crate::{
    config::Settings,
    grpc::{self, AdminGrpc, AuthGrpc, Authn, Gate, VideoGrpc, pb},
    security::MediaSigner,
    service::Playback,
    web,
};

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
        crate::monitoring::init();
        let services = Services::connect(&settings, migrate).await?;
        let (health, routes) = grpc_routes(&settings, &services).await?;
        let router = web::app(&settings, routes, services.clone())?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let port = listener.local_addr()?.port();
        let workers = settings
            .runs_worker()
            .then_some(settings.worker_concurrency);
        let limits = connection_limits(&settings);
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
        let grace = self.limits.shutdown_grace;
        let pipeline = self.services.pipeline.clone();
        let stop = async move {
            stop.await;
            // Status streams and workers stop at once; open requests get the grace period.
            pipeline.shutdown();
        };
        let result = crate::serve::serve(self.listener, self.router, self.limits, stop)
            .await
            .context("serving");
        watcher.abort();
        stop_workers(&self.services.pipeline, workers, grace).await;
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

/// Stops `workers` (see [`crate::service::Pipeline::shutdown`]): they end their jobs within
/// the grace period, then whatever is left is cut.
pub async fn stop_workers(
    pipeline: &crate::service::Pipeline,
    workers: Vec<tokio::task::JoinHandle<()>>,
    grace: Duration,
) {
    pipeline.shutdown();
    for mut worker in workers {
        if tokio::time::timeout(grace, &mut worker).await.is_err() {
            tracing::warn!("a worker did not stop within the grace period");
            worker.abort();
        }
    }
}

/// Waits for SIGINT or SIGTERM.
pub async fn wait_for_shutdown() {
    shutdown_signal().await;
}

/// Keeps the gRPC health status in step with the database and Redis.
async fn watch_health(services: Services, health: HealthReporter) {
    let mut serving = true;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
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

/// Waits for SIGINT or SIGTERM; a second one then ends the process at once (exit code 130).
async fn shutdown_signal() {
    signal().await;
    tracing::info!("shutting down (a second signal exits at once)");
    tokio::spawn(async {
        signal().await;
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    });
}

async fn signal() {
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
}

/// The gRPC services, each behind the authentication layer, with health and reflection.
async fn grpc_routes(
    settings: &Settings,
    services: &Services,
) -> anyhow::Result<(HealthReporter, Routes)> {
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
    let playback = Playback::new(
        services.catalog.clone(),
        services.pipeline.hub().clone(),
        settings.media_dir.clone(),
        MediaSigner::new(settings.signing_secret()),
        settings.public_url.clone(),
    )
    .with_stall_timeout(Duration::from_secs(settings.write_stall_timeout.max(1)));
    let video = VideoGrpc::new(
        services.catalog.clone(),
        services.pipeline.clone(),
        playback,
    );
    let admin = AdminGrpc::new(services.admin.clone());
    // Every call is authenticated once, here, before its handler runs.
    let authn = Authn::new(
        services.accounts.clone(),
        services.catalog.clone(),
        settings.trust_proxy_headers,
    );
    let routes = Routes::new(authn.wrap(
        Gate::Optional,
        pb::auth_service_server::AuthServiceServer::new(auth),
    ))
    .add_service(authn.wrap(
        Gate::Throttled,
        pb::video_service_server::VideoServiceServer::new(video),
    ))
    .add_service(authn.wrap(
        Gate::Throttled,
        pb::admin_service_server::AdminServiceServer::new(admin),
    ))
    .add_service(health_service)
    .add_service(reflection().build_v1().context("reflection v1")?)
    .add_service(reflection().build_v1alpha().context("reflection v1alpha")?)
    .prepare();
    Ok((health, routes))
}

/// How many connections the server holds and how long it waits for them.
fn connection_limits(settings: &Settings) -> crate::serve::ConnectionLimits {
    crate::serve::ConnectionLimits {
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
        write_stall_timeout: Duration::from_secs(settings.write_stall_timeout.max(1)),
        shutdown_grace: Duration::from_secs(settings.shutdown_grace),
    }
}
