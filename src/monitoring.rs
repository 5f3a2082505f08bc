//! Metrics in the Prometheus text format (`GET /metrics`): the `metrics` facade, recorded where
//! things happen, rendered by `metrics-exporter-prometheus`. The recorder is process-wide and
//! installed once; gauges that describe state (database pool, queue) are read at scrape time.

use std::{sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::services::Services;

/// Request latency buckets, in seconds: 1 ms to 30 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Transcode duration buckets, in seconds: 1 s to an hour.
const TRANSCODE_BUCKETS: &[f64] = &[1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's recorder, installed on first use (None if another recorder was installed).
fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("videoflix_request_duration_seconds".to_owned()),
                    LATENCY_BUCKETS,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("videoflix_transcode_duration_seconds".to_owned()),
                        TRANSCODE_BUCKETS,
                    )
                });
            match builder.and_then(PrometheusBuilder::install_recorder) {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// Installs the recorder (at start-up, so the first requests are counted).
pub fn init() {
    let _ = handle();
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "videoflix_requests_total",
        "Requests answered, by protocol (grpc, rest, media, other), route or method, and status"
    );
    describe_histogram!(
        "videoflix_request_duration_seconds",
        Unit::Seconds,
        "Time to the response head, by protocol and route or method"
    );
    describe_counter!(
        "videoflix_cache_requests_total",
        "Response-cache lookups, by result (hit, miss)"
    );
    describe_counter!(
        "videoflix_rate_limited_total",
        "Requests refused by a rate limit"
    );
    describe_counter!(
        "videoflix_transcode_jobs_total",
        "Transcode jobs ended, by outcome (ready, retry, failed, stopped, released at shutdown)"
    );
    describe_histogram!(
        "videoflix_transcode_duration_seconds",
        Unit::Seconds,
        "Time a transcode job ran, by outcome"
    );
    describe_counter!(
        "videoflix_media_bytes_total",
        Unit::Bytes,
        "Bytes of media files answered from /media (by Content-Length)"
    );
    describe_gauge!(
        "videoflix_active_streams",
        "Open StreamVideo downloads and status watchers (gRPC and SSE), by kind"
    );
    describe_gauge!(
        "videoflix_db_connections",
        "Database pool connections, by state (in_use, idle)"
    );
    describe_gauge!(
        "videoflix_queue_jobs",
        "Transcode jobs in the queue (waiting or running)"
    );
    describe_gauge!(
        "videoflix_queue_oldest_job_age_seconds",
        Unit::Seconds,
        "Age of the oldest job in the queue (0 when empty)"
    );
}

/// The current metrics, with the state gauges of `services` read now.
pub async fn render(services: &Services) -> String {
    let Some(handle) = handle() else {
        return String::new();
    };
    let (size, idle) = services.store.pool_stats();
    metrics::gauge!("videoflix_db_connections", "state" => "in_use")
        .set(f64::from(size.saturating_sub(idle)));
    metrics::gauge!("videoflix_db_connections", "state" => "idle").set(f64::from(idle));
    if let Ok(depth) = services.pipeline.queue_depth().await {
        metrics::gauge!("videoflix_queue_jobs").set(depth.jobs as f64);
        metrics::gauge!("videoflix_queue_oldest_job_age_seconds")
            .set(depth.oldest.map_or(0.0, |age| age.as_secs_f64()));
    }
    handle.render()
}

tokio::task_local! {
    /// The id of the request this task serves (set around each request by the front).
    static REQUEST_ID: String;
}

/// Runs `future` as part of request `id`.
pub(crate) async fn with_request_id<F: std::future::Future>(id: String, future: F) -> F::Output {
    REQUEST_ID.scope(id, future).await
}

/// The id of the request being served, if any (a job enqueued by it carries the id on).
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// One answered request.
pub(crate) fn request(protocol: &'static str, route: String, status: String, took: Duration) {
    metrics::counter!(
        "videoflix_requests_total",
        "protocol" => protocol,
        "route" => route.clone(),
        "status" => status
    )
    .increment(1);
    metrics::histogram!(
        "videoflix_request_duration_seconds",
        "protocol" => protocol,
        "route" => route
    )
    .record(took.as_secs_f64());
}

/// A response-cache lookup.
pub(crate) fn cache_lookup(hit: bool) {
    let result = if hit { "hit" } else { "miss" };
    metrics::counter!("videoflix_cache_requests_total", "result" => result).increment(1);
}

/// A page index built (a list's total and positions, read from every row of the list).
pub(crate) fn page_index_built() {
    metrics::counter!("videoflix_page_index_builds_total").increment(1);
}

/// A request refused by a rate limit.
pub(crate) fn rate_limited() {
    metrics::counter!("videoflix_rate_limited_total").increment(1);
}

/// A transcode job that ended with `outcome` after `took`.
pub(crate) fn transcode_ended(outcome: &'static str, took: Duration) {
    metrics::counter!("videoflix_transcode_jobs_total", "outcome" => outcome).increment(1);
    metrics::histogram!("videoflix_transcode_duration_seconds", "outcome" => outcome)
        .record(took.as_secs_f64());
}

/// Media bytes answered.
pub(crate) fn media_bytes(bytes: u64) {
    metrics::counter!("videoflix_media_bytes_total").increment(bytes);
}

/// Counts an open stream of `kind` until dropped.
pub(crate) struct OpenStream(&'static str);

impl OpenStream {
    /// A stream of `kind` (`download` or `status`) opens.
    pub(crate) fn new(kind: &'static str) -> Self {
        metrics::gauge!("videoflix_active_streams", "kind" => kind).increment(1.0);
        Self(kind)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::gauge!("videoflix_active_streams", "kind" => self.0).decrement(1.0);
    }
}
