//! The accept loop and connection handling: hyper (HTTP/1.1 and HTTP/2 on one port) with the
//! timers `axum::serve` leaves off, and limits so that no client, however slow or numerous, can
//! take the server's connections or file descriptors.
//!
//! - a request's headers must arrive within `header_read_timeout` (also on a kept-alive
//!   connection: an idle one is closed when the next request does not start in time);
//! - HTTP/2 connections are pinged and closed when the peer stops answering, and a connection
//!   with no request open for `idle_timeout` is closed (GOAWAY on HTTP/2) even if it answers;
//! - at most `max_connections` connections, and `max_per_address` from one address (an IPv6
//!   client by its /64): a new connection over either is closed at once, so a flood from one
//!   address leaves room for everyone else;
//! - a write that a peer leaves unread for `write_stall_timeout` closes the connection
//!   (`serve/stall.rs`), and an HTTP/2 stream queues at most 128 KiB for a peer;
//! - an accept error such as EMFILE (out of file descriptors) backs off instead of spinning.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, extract::ConnectInfo};
use http_body_util::BodyExt as _;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto::Builder,
    service::TowerToHyperService,
};
use tokio::net::TcpListener;
use tower::ServiceExt as _;

use crate::service::ClientInfo;

mod stall;

/// Connection limits and timeouts (from the settings).
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Connections from one address (IPv6: one /64) at once.
    pub max_per_address: usize,
    /// Time for a request's headers to arrive.
    pub header_read_timeout: Duration,
    /// Interval of HTTP/2 keep-alive pings (a peer that does not answer one within it is gone).
    pub http2_keep_alive: Duration,
    /// Time a connection may stay open with no request in progress.
    pub idle_timeout: Duration,
    /// How long a write may wait for a peer that stopped reading before the connection closes.
    pub write_stall_timeout: Duration,
    /// How long open connections may finish their requests at shutdown.
    pub shutdown_grace: Duration,
}

/// Open connections per client key.
#[derive(Clone, Default)]
struct PerAddress(Arc<Mutex<HashMap<String, usize>>>);

impl PerAddress {
    /// Counts a connection from `key` if it is within `max`; the guard uncounts it.
    fn admit(&self, key: String, max: usize) -> Option<AddressSlot> {
        let mut open = self.0.lock().ok()?;
        let count = open.entry(key.clone()).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            open: self.clone(),
            key,
        })
    }
}

/// One counted connection.
struct AddressSlot {
    open: PerAddress,
    key: String,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.open.0.lock()
            && let Some(count) = open.get_mut(&self.key)
        {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// hyper's server side with its timers: the header-read timeout for HTTP/1, keep-alive pings for
/// HTTP/2.
fn connection_builder(limits: &ConnectionLimits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.http2_keep_alive))
        .keep_alive_timeout(limits.http2_keep_alive)
        // What one HTTP/2 stream may have queued for a peer that does not read it.
        .max_send_buf_size(STREAM_SEND_BUFFER);
    builder
}

/// Bytes queued per HTTP/2 stream for sending (hyper's default is 400 KiB): a stream whose peer
/// stopped reading holds at most this much (plus one chunk) until its connection goes.
const STREAM_SEND_BUFFER: usize = 128 * 1024;

/// After a failed accept. EMFILE, ENFILE, ENOBUFS, ENOMEM: nothing to accept with until a
/// connection closes; wait instead of spinning (and flooding the log). Any other error concerns
/// that one connection only.
async fn accept_failed(e: &std::io::Error) {
    if matches!(e.raw_os_error(), Some(12 | 23 | 24 | 105)) {
        tracing::warn!(error = %e, "accept failed; backing off");
        tokio::time::sleep(Duration::from_millis(100)).await;
    } else {
        tracing::debug!(error = %e, "accept failed");
    }
}

/// The router for one connection from `peer`: each request carries the peer address and counts
/// as open on `activity` until its response body is done or dropped.
fn tracked(
    router: Router,
    peer: SocketAddr,
    activity: Activity,
) -> impl tower::Service<
    axum::http::Request<hyper::body::Incoming>,
    Response = axum::http::Response<axum::body::Body>,
    Error = std::convert::Infallible,
    Future = impl std::future::Future<
        Output = Result<axum::http::Response<axum::body::Body>, std::convert::Infallible>,
    > + Send,
> + Clone {
    tower::service_fn(
        move |mut request: axum::http::Request<hyper::body::Incoming>| {
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
            let request = request.map(axum::body::Body::new);
            let open = activity.open();
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await?;
                Ok::<_, std::convert::Infallible>(response.map(move |body| {
                    axum::body::Body::new(body.map_frame(move |frame| {
                        let _open = &open;
                        frame
                    }))
                }))
            }
        },
    )
}

/// Serves `router` on `listener` until `shutdown` resolves; connections still open then finish
/// their requests (in-flight requests are not cut).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let global = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let per_address = PerAddress::default();
    let builder = Arc::new(connection_builder(&limits));
    let (stopping, _) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = global.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached; closing a new connection");
            continue;
        };
        let key = ClientInfo {
            ip: Some(peer.ip()),
        }
        .key();
        let Some(slot) = per_address.admit(key, limits.max_per_address) else {
            tracing::warn!(ip = %address_of(peer.ip()), "per-address connection limit reached");
            continue;
        };
        if let Err(e) = tcp.set_nodelay(true) {
            // Without TCP_NODELAY, small HTTP/2 frames wait ~40 ms for delayed ACKs.
            tracing::debug!(error = %e, "TCP_NODELAY");
        }
        let activity = Activity::new();
        let service = tracked(router.clone(), peer, activity.clone());
        let connection = builder
            .serve_connection_with_upgrades(
                TokioIo::new(stall::WriteDeadline::new(tcp, limits.write_stall_timeout)),
                TowerToHyperService::new(service),
            )
            .into_owned();
        let mut stopping = stopping.subscribe();
        let idle_timeout = limits.idle_timeout;
        tokio::spawn(async move {
            tokio::pin!(connection);
            let mut closing = false;
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    // Idle (no request open for `idle_timeout`), or the server stops: no new
                    // requests (HTTP/2 GOAWAY); open ones finish.
                    () = activity.idle(idle_timeout), if !closing => {
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    _ = stopping.changed(), if !closing => {
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                    }
                }
            }
            drop((permit, slot));
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    // Requests in flight may finish; a stream that would not end (an SSE watcher) is cut after
    // the grace period. Every connection holds a permit until it has ended.
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.shutdown_grace, global.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the grace period; closing them");
    }
    Ok(())
}

/// The requests open on one connection, and when the last one ended.
#[derive(Clone)]
struct Activity(Arc<Mutex<(usize, tokio::time::Instant)>>);

/// One open request; dropping it ends the request.
struct Open(Activity);

impl Activity {
    fn new() -> Self {
        Self(Arc::new(Mutex::new((0, tokio::time::Instant::now()))))
    }

    fn open(&self) -> Open {
        if let Ok(mut state) = self.0.lock() {
            state.0 += 1;
        }
        Open(self.clone())
    }

    /// Resolves once no request has been open for `timeout`.
    async fn idle(&self, timeout: Duration) {
        loop {
            let (open, since) = self
                .0
                .lock()
                .map(|s| *s)
                .unwrap_or((0, tokio::time::Instant::now()));
            let until = since + timeout;
            if open == 0 && tokio::time::Instant::now() >= until {
                return;
            }
            // While a request is open, look again after a full period.
            let wake = if open == 0 {
                until
            } else {
                tokio::time::Instant::now() + timeout
            };
            tokio::time::sleep_until(wake).await;
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if let Ok(mut state) = (self.0).0.lock() {
            state.0 = state.0.saturating_sub(1);
            state.1 = tokio::time::Instant::now();
        }
    }
}

fn address_of(ip: IpAddr) -> String {
    ClientInfo { ip: Some(ip) }.key()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_address_slots_are_counted_and_given_back() {
        let open = PerAddress::default();
        let first = open.admit("a".into(), 2).expect("first");
        let second = open.admit("a".into(), 2).expect("second");
        assert!(
            open.admit("a".into(), 2).is_none(),
            "the third from one address"
        );
        assert!(open.admit("b".into(), 2).is_some(), "another address");
        drop(first);
        assert!(open.admit("a".into(), 2).is_some(), "a slot given back");
        drop(second);
    }
}
