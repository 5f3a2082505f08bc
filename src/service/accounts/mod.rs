//! Account use cases: registration and activation ([`registration`]), login, refresh and logout
//! ([`sessions`]), password reset ([`reset`]) and the caller's profile ([`profile`]).
//! Transport-agnostic: the gRPC layer parses requests into the arguments below and maps
//! [`AppError`] to statuses.

mod authenticate;
mod profile;
mod registration;
mod reset;
mod sessions;

pub use sessions::Login;

use std::net::IpAddr;

use url::Url;

use crate::{
    cache::{Cache, Versions},
    config::Settings,
    domain::{Email, Rate, Uid, UserId},
    error::{AppError, AppResult},
    mail::Mailer,
    ratelimit::{Mode, RateLimiter},
    security::{Hasher, Tokens},
    store::{Store, UserRecord},
};

use super::SessionCache;

/// The e-mail the legacy frontend's demo button logs in with.
pub const GUEST_LOGIN_EMAIL: &str = "guest@videoflix.com";

/// An authenticated caller: the user and the session its token belongs to.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The user, as loaded for this request.
    pub user: UserRecord,
    /// The session id (`sid` claim).
    pub session_id: String,
    /// The versions of the cache scopes this call reads, when they were read with its
    /// session check (several processes sharing Redis).
    pub versions: Option<Versions>,
}

impl Caller {
    /// Refuses a caller who is not a superuser (PERMISSION_DENIED / 403).
    pub fn require_superuser(&self) -> AppResult<()> {
        if self.user.is_superuser {
            Ok(())
        } else {
            Err(AppError::PermissionDenied(
                "You do not have permission to perform this action.",
            ))
        }
    }
}

/// Tokens handed out at login and refresh.
#[derive(Clone, Debug)]
pub struct IssuedTokens {
    /// JWT access token.
    pub access: String,
    /// Opaque refresh token.
    pub refresh: String,
    /// Access-token lifetime in seconds.
    pub expires_in: u64,
}

/// A successful login.
#[derive(Clone, Debug)]
pub struct LoginOutcome {
    /// Tokens of the new session.
    pub tokens: IssuedTokens,
    /// The logged-in user.
    pub user: UserRecord,
}

/// Request context that matters to account rules.
#[derive(Clone, Copy, Debug)]
pub struct ClientInfo {
    /// Client address, when known (rate limits per address).
    pub ip: Option<IpAddr>,
}

impl ClientInfo {
    /// This client in per-address limits: its IPv4 address, or its IPv6 /64 (one subscriber's
    /// network: a client there can pick from endless addresses).
    pub fn key(&self) -> String {
        match self.ip {
            None => "unknown".to_owned(),
            Some(IpAddr::V4(v4)) => v4.to_string(),
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = v6.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
        }
    }
}

/// How long an address that failed a login on an account counts as failing there: one
/// failure per 15 minutes.
const FAILED_HERE: Rate = Rate {
    limit: 1,
    period: std::time::Duration::from_secs(900),
};

/// Limits the account flows apply.
#[derive(Clone, Copy, Debug)]
struct Limits {
    login_account: Rate,
    login_account_all: Rate,
    login_address: Rate,
    register: Rate,
    refresh: Rate,
    mail: Rate,
    guest: Rate,
}

/// Account use cases; cheap to clone.
#[derive(Clone)]
pub struct Accounts {
    store: Store,
    hasher: Hasher,
    tokens: Tokens,
    mailer: Mailer,
    limiter: RateLimiter,
    limits: Limits,
    sessions: SessionCache,
    cache: Cache,
    frontend_url: Url,
    guest_domain: String,
    activation_ttl: u64,
    reset_ttl: u64,
    refresh_ttl: u64,
    remember_me_ttl: u64,
    guest_ttl: u64,
}

impl Accounts {
    /// Wires the use cases to their dependencies.
    pub fn new(
        settings: &Settings,
        store: Store,
        tokens: Tokens,
        mailer: Mailer,
        limiter: RateLimiter,
        sessions: SessionCache,
        cache: Cache,
    ) -> Self {
        Self {
            store,
            hasher: Hasher::new(settings.hash_concurrency),
            tokens,
            mailer,
            limiter,
            limits: Limits {
                login_account: settings.throttle_login_account,
                login_account_all: settings.throttle_login_account_all,
                login_address: settings.throttle_login_address,
                register: settings.throttle_register,
                refresh: settings.throttle_refresh,
                mail: settings.throttle_mail,
                guest: settings.throttle_anon,
            },
            sessions,
            cache,
            frontend_url: settings.frontend_url.clone(),
            guest_domain: settings.guest_email_domain.clone(),
            activation_ttl: settings.activation_token_ttl,
            reset_ttl: settings.reset_token_ttl,
            refresh_ttl: settings.refresh_token_ttl,
            remember_me_ttl: settings.remember_me_ttl,
            guest_ttl: settings.guest_ttl,
        }
    }

    /// The password hasher (also used by `createsuperuser`).
    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    /// The mailer (tests wait on it to see that nothing more is sent).
    pub fn mailer(&self) -> &Mailer {
        &self.mailer
    }

    /// Drops every verified session kept in memory, after an account's flags changed outside
    /// this service (the next call reads the account again).
    pub async fn forget_cached_sessions(&self) {
        self.sessions.invalidate_all().await;
    }

    // ---- helpers -----------------------------------------------------------------------------

    async fn user_from_link(&self, uid: Uid) -> AppResult<UserRecord> {
        self.store
            .user_by_id(uid.0)
            .await?
            .filter(|u| !u.is_guest)
            .ok_or(AppError::InvalidLink)
    }

    /// Limits one mail flow (`activation` or `reset`) per address and per account.
    async fn limit_mail(&self, flow: &str, client: ClientInfo, email: &Email) -> AppResult<()> {
        self.limit_both(
            (
                &format!("mail:{flow}:ip:{}", client.key()),
                self.limits.mail,
            ),
            (&format!("mail:{flow}:acct:{email}"), self.limits.mail),
        )
        .await
    }

    /// Counts a request against two limits, but only if both still admit it (a request refused
    /// by one must not use up the other's budget).
    async fn limit_both(&self, first: (&str, Rate), second: (&str, Rate)) -> AppResult<()> {
        self.limiter.check(first.0, first.1, Mode::Peek).await?;
        self.limiter.check(second.0, second.1, Mode::Peek).await?;
        self.limiter.check(first.0, first.1, Mode::Consume).await?;
        self.limiter.check(second.0, second.1, Mode::Consume).await
    }

    fn link(&self, route: &str, user: UserId, token: &str) -> String {
        format!(
            "{}{route}/{}/{token}/",
            self.frontend_url,
            Uid(user).encode()
        )
    }
}

/// What an activation link is bound to: it dies if the e-mail or password changes.
fn activation_state(user: &UserRecord) -> String {
    format!("{}|{}", user.email, user.password_hash)
}

/// What a reset link is bound to: it dies when the password changes or the user logs in.
fn reset_state(user: &UserRecord) -> String {
    format!(
        "{}|{}|{}",
        user.password_hash,
        user.last_login.map_or(0, |t| t.micros()),
        user.is_active
    )
}

fn random_suffix() -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..6)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_and_v4_mapped_ones_by_v4() {
        let key = |ip: &str| {
            ClientInfo {
                ip: ip.parse().ok(),
            }
            .key()
        };
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::2"));
        assert_eq!(key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(ClientInfo { ip: None }.key(), "unknown");
    }
}
