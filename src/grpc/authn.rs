//! Authentication once per call: a tower layer in front of each gRPC service reads the bearer
//! token and the client's address from the HTTP request, authenticates — and for the catalog
//! and admin services throttles, by user or, without a valid token, by address — and hands the
//! handler the caller in the request's extensions ([`caller`]). No handler authenticates.

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
};

use tonic::{
    Status, body::Body, metadata::MetadataMap, server::NamedService,
    transport::server::TcpConnectInfo,
};
use tower::Service;

use super::context::{bearer, client_of};
use crate::{
    error::AppError,
    service::{Accounts, Caller, Catalog},
};

/// What a service asks of its callers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Every call needs a caller; each is throttled (catalog and admin).
    Throttled,
    /// Calls may be anonymous; a token, when sent, is checked (accounts: login is anonymous,
    /// logout is not, and each handler says which it needs through `caller`).
    Optional,
}

/// A token that was sent and refused, kept for the handler that needs a caller.
#[derive(Clone)]
struct Refused(Status);

/// The layer's state: how to authenticate and throttle.
#[derive(Clone)]
pub struct Authn {
    accounts: Accounts,
    catalog: Catalog,
    trust_proxy: bool,
}

impl Authn {
    /// Authenticates through `accounts`, throttles through `catalog`'s limits.
    pub fn new(accounts: Accounts, catalog: Catalog, trust_proxy: bool) -> Self {
        Self {
            accounts,
            catalog,
            trust_proxy,
        }
    }

    /// `service` behind this gate.
    pub fn wrap<S>(&self, gate: Gate, service: S) -> Authenticated<S> {
        Authenticated {
            inner: service,
            authn: self.clone(),
            gate,
        }
    }

    /// Authenticates `request`; Err is the answer to send instead of calling the service.
    async fn admit(&self, gate: Gate, request: &mut http::Request<Body>) -> Result<(), Status> {
        let metadata = MetadataMap::from_headers(request.headers().clone());
        let peer = request
            .extensions()
            .get::<TcpConnectInfo>()
            .and_then(TcpConnectInfo::remote_addr);
        // A throttled call is charged per user with its session check, unless the gateway
        // charged it with the first page of the same REST request.
        let charge = gate == Gate::Throttled
            && request
                .extensions()
                .get::<videoflix_gateway::AlreadyThrottled>()
                .is_none();
        let outcome = match bearer(&metadata) {
            Ok(token) => {
                self.accounts
                    .authenticate(token, |user| self.catalog.prefetch(user, charge))
                    .await
            }
            Err(e) => Err(e),
        };
        match gate {
            Gate::Optional => {
                match outcome {
                    Ok(caller) => {
                        request.extensions_mut().insert(caller);
                    }
                    // No header at all is an anonymous call; anything else was a token.
                    Err(e) if metadata.get("authorization").is_some() => {
                        request.extensions_mut().insert(Refused(e.into()));
                    }
                    Err(_) => {}
                }
                Ok(())
            }
            Gate::Throttled => {
                let caller = self.throttled(&metadata, peer, outcome).await?;
                request.extensions_mut().insert(caller);
                Ok(())
            }
        }
    }

    /// A user was charged with the session check; an anonymous or bad-token call is charged
    /// per address.
    async fn throttled(
        &self,
        metadata: &MetadataMap,
        peer: Option<SocketAddr>,
        outcome: Result<Caller, AppError>,
    ) -> Result<Caller, AppError> {
        match outcome {
            Ok(caller) => Ok(caller),
            Err(e @ AppError::RateLimited { .. }) => Err(e),
            Err(e) => {
                self.catalog
                    .throttle_anonymous(client_of(metadata, peer, self.trust_proxy))
                    .await?;
                Err(e)
            }
        }
    }
}

/// The caller the layer authenticated for `request`, or why there is none.
pub(crate) fn caller<T>(request: &tonic::Request<T>) -> Result<Caller, Status> {
    if let Some(caller) = request.extensions().get::<Caller>() {
        return Ok(caller.clone());
    }
    if let Some(Refused(status)) = request.extensions().get::<Refused>() {
        return Err(status.clone());
    }
    Err(AppError::Unauthenticated("Authentication credentials were not provided.").into())
}

/// A gRPC service behind an [`Authn`] gate.
#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    authn: Authn,
    gate: Gate,
}

impl<S: NamedService> NamedService for Authenticated<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for Authenticated<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        // The service polled ready is the one that serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (authn, gate) = (self.authn.clone(), self.gate);
        Box::pin(async move {
            match authn.admit(gate, &mut request).await {
                Ok(()) => inner.call(request).await,
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}
