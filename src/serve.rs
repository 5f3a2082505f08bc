//! The accept loop and connection handling: hyper (HTTP/1.1 and HTTP/2 on one port) with the
//! timers `axum::serve` leaves off, and limits so that no client, however slow or numerous, can
//! take the server's connections or file descriptors.
//!
//! - a request's headers must arrive within `header_read_timeout` (also on a kept-alive
//!   connection: an idle one is closed when the next request does not start in time);
//! - HTTP/2 connections are pinged and closed when the peer stops answering;
//! - at most `max_connections` connections, and `max_per_address` from one address (an IPv6
//!   client by its /64): a new connection over either is closed at once, so a flood from one
//!   address leaves room for everyone else;
//! - an accept error such as EMFILE (out of file descriptors) backs off instead of spinning.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, extract::ConnectInfo};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto::Builder,
    service::TowerToHyperService,
};
use tokio::net::TcpListener;
use tower::ServiceExt as _;

use crate::service::ClientInfo;

/// How long open connections may finish their requests at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

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
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.http2_keep_alive))
        .keep_alive_timeout(limits.http2_keep_alive);
    let builder = Arc::new(builder);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM: nothing to accept with until a
                    // connection closes; wait instead of spinning (and flooding the log). Any
                    // other error concerns that one connection only.
                    if matches!(e.raw_os_error(), Some(12 | 23 | 24 | 105)) {
                        tracing::warn!(error = %e, "accept failed; backing off");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    } else {
                        tracing::debug!(error = %e, "accept failed");
                    }
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
        let service = router.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(peer));
                request.map(axum::body::Body::new)
            },
        );
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(tcp), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop((permit, slot));
        });
    }
    drop(listener);
    // Requests in flight may finish; a stream that would not end (an SSE watcher) is cut after
    // the grace period.
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the grace period; closing them");
    }
    Ok(())
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
