//! The backends of a process ([`Services`]), chosen once from the settings; the server
//! ([`crate::startup`]), the web front ([`crate::web`]) and the commands all take them from here.

use std::time::Duration;

use anyhow::Context as _;

use crate::{
    cache::Cache,
    config::Settings,
    kv::Redis,
    mail::Mailer,
    media::TranscodeOptions,
    queue::JobQueue,
    ratelimit::RateLimiter,
    security::Tokens,
    service::{Accounts, Catalog, Pipeline, PipelineConfig, SessionCache, StatusHub, VideoLimits},
    store::Store,
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
            settings.database_connections(),
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
        Self::wire(settings, store, redis).await
    }

    /// Builds the use cases over the connected backends.
    async fn wire(settings: &Settings, store: Store, redis: Option<Redis>) -> anyhow::Result<Self> {
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
            (Some(redis), true) => {
                Cache::redis(redis.clone(), cache_ttl, crate::cache::MEMORY_BYTES)
            }
            (None, true) => Cache::memory(cache_ttl, crate::cache::MEMORY_BYTES),
        };
        let store = store.with_cache(cache.clone());
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
        // Verified sessions are kept in memory by a single process, or by several when Redis
        // tells each call whether they are still good; PostgreSQL alone cannot.
        let sessions = match &redis {
            Some(redis) => SessionCache::shared(redis.clone()),
            None if !settings.is_postgres() => SessionCache::local(),
            None => SessionCache::disabled(),
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
        let pipeline = Pipeline::new(store.clone(), queue, hub, pipeline_config(settings));
        let backups = crate::backup::Backups::new(store.clone(), settings.export_dir.clone());
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

/// The pipeline's settings.
fn pipeline_config(settings: &Settings) -> PipelineConfig {
    PipelineConfig {
        media_dir: settings.media_dir.clone(),
        upload_limit: settings.upload_max_bytes,
        max_pixels: settings.media_max_pixels,
        upload_idle: Duration::from_secs(settings.upload_idle_timeout.max(1)),
        max_attempts: settings.transcode_max_attempts,
        retry_delay: Duration::from_secs(settings.transcode_retry_delay),
        // A live job refreshes its claim every 2 s; half the visibility timeout (at least 4 s)
        // tells a dead one, and is always reached before its queue entry is reclaimed.
        stale_after: Duration::from_secs((settings.job_visibility_timeout.max(5) / 2).max(4)),
        transcode: TranscodeOptions {
            segment_seconds: settings.hls_segment_seconds,
            preset: settings.transcode_preset.clone(),
            ..TranscodeOptions::default()
        },
    }
}
