//! Account use cases: registration and activation, login (password and guest), token refresh and
//! logout, password reset, and the caller's profile. Transport-agnostic: the gRPC layer parses
//! requests into the arguments below and maps [`AppError`] to statuses.

use std::net::IpAddr;

use url::Url;

use crate::{
    config::Settings,
    domain::{Address, Email, FieldError, Password, Phone, Rate, Uid, UserId},
    error::{AppError, AppResult},
    mail::{Mailer, Template},
    ratelimit::{Mode, RateLimiter},
    security::{Hasher, LinkPurpose, Tokens, hash_refresh_token, new_refresh_token},
    store::{NewUser, ProfileUpdate, RefreshUse, SessionRecord, Store, Timestamp, UserRecord},
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

    // ---- registration ------------------------------------------------------------------------

    /// Creates an inactive account and mails its activation link.
    #[tracing::instrument(skip_all)]
    pub async fn register(
        &self,
        client: ClientInfo,
        email: &str,
        password: &str,
        confirm_password: &str,
    ) -> AppResult<UserRecord> {
        self.limiter
            .check(
                &format!("register:ip:{}", client.key()),
                self.limits.register,
                Mode::Consume,
            )
            .await?;
        let email = Email::parse(email);
        let mut errors: Vec<FieldError> = Vec::new();
        let password = match &email {
            Ok(email) => Password::new(
                password,
                confirm_password,
                email,
                "password",
                "confirm_password",
            )
            .map_err(|e| errors.extend(e.0))
            .ok(),
            Err(e) => {
                errors.push(e.clone());
                None
            }
        };
        let (Ok(email), Some(password), true) = (email, password, errors.is_empty()) else {
            return Err(AppError::Validation(errors));
        };
        if email.as_str() == GUEST_LOGIN_EMAIL
            || email
                .as_str()
                .rsplit_once('@')
                .is_some_and(|(_, domain)| domain.eq_ignore_ascii_case(&self.guest_domain))
        {
            return Err(AppError::field(
                "email",
                "This address is reserved for guest access; use your own e-mail address.",
            ));
        }
        let hash = self.hasher.hash(password.expose()).await?;
        let user = self
            .store
            .create_user(NewUser {
                email: &email,
                password_hash: &hash,
                is_active: false,
                is_superuser: false,
                is_guest: false,
            })
            .await?;
        tracing::info!(user_id = %user.id, "account registered");
        self.send_activation(&user);
        Ok(user)
    }

    /// Activates an account from its link.
    #[tracing::instrument(skip_all)]
    pub async fn activate(&self, uid: &str, token: &str) -> AppResult<()> {
        let user = self.user_from_link(uid).await?;
        if !self.tokens.verify_link(
            LinkPurpose::Activation,
            user.user_id(),
            &activation_state(&user),
            token,
            self.activation_ttl,
        ) {
            return Err(AppError::InvalidLink);
        }
        if user.is_active || !self.store.activate_user(user.user_id()).await? {
            return Err(AppError::AlreadyActive);
        }
        tracing::info!(user_id = %user.id, "account activated");
        Ok(())
    }

    /// Sends a fresh activation link to an inactive account; silent otherwise.
    #[tracing::instrument(skip_all)]
    pub async fn resend_activation(&self, client: ClientInfo, email: &str) -> AppResult<()> {
        let email = Email::parse(email)?;
        self.limit_mail("activation", client, &email).await?;
        if let Some(user) = self.store.user_by_email(&email).await?
            && !user.is_active
            && !user.is_guest
        {
            self.send_activation(&user);
        }
        Ok(())
    }

    fn send_activation(&self, user: &UserRecord) {
        let token = self.tokens.issue_link(
            LinkPurpose::Activation,
            user.user_id(),
            &activation_state(user),
        );
        let link = self.link("activate-account", user.user_id(), &token);
        self.mailer
            .send_later(&user.email, Template::Activation { link });
    }

    // ---- login -------------------------------------------------------------------------------

    /// Logs in with e-mail and password. The guest e-mail logs in as a new guest, whatever the
    /// password.
    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        client: ClientInfo,
        email: &str,
        password: &str,
        remember_me: bool,
    ) -> AppResult<LoginOutcome> {
        if email.trim().eq_ignore_ascii_case(GUEST_LOGIN_EMAIL) {
            return self.guest_login(client).await;
        }
        let email = Email::parse(email)?;
        if password.is_empty() {
            return Err(AppError::field("password", "This field may not be blank."));
        }
        let ip = client.key();
        // Attempts count per account *and address*, and per address, so nobody elsewhere can
        // lock an account's owner out. They are counted *before* the (slow) password check, so a
        // burst of parallel guesses cannot all slip past the limit; a success clears the count.
        let account_key = format!("login:acct:{email}:ip:{ip}");
        let address_key = format!("login:ip:{ip}");
        // Guessing one account from many addresses: once the account's failures from everywhere
        // are over their limit, an address that has failed on it recently waits, while one that
        // has not (its owner) still gets its attempt.
        let failures_key = format!("login:acct-failures:{email}");
        let failed_here_key = format!("login:acct-failed:{email}:ip:{ip}");
        if self
            .limiter
            .check(&failures_key, self.limits.login_account_all, Mode::Peek)
            .await
            .is_err()
        {
            // Counted now (a success clears it), so parallel attempts get one guess, not a
            // burst.
            self.limiter
                .check(&failed_here_key, FAILED_HERE, Mode::Consume)
                .await?;
        }
        self.limit_both(
            (&account_key, self.limits.login_account),
            (&address_key, self.limits.login_address),
        )
        .await?;
        let user = self.store.user_by_email(&email).await?;
        let verified = match &user {
            Some(user) => self.hasher.verify(password, &user.password_hash).await?,
            None => {
                self.hasher.verify_decoy(password).await?;
                false
            }
        };
        let user = match (user, verified) {
            (Some(user), true) => user,
            _ => {
                // The error never says which part was wrong.
                tracing::info!("failed login");
                // Bookkeeping only: the attempt was already limited above.
                let _ = self
                    .limiter
                    .check(&failures_key, self.limits.login_account_all, Mode::Consume)
                    .await;
                let _ = self
                    .limiter
                    .check(&failed_here_key, FAILED_HERE, Mode::Consume)
                    .await;
                return Err(AppError::InvalidCredentials);
            }
        };
        if !user.is_active {
            return Err(AppError::AccountInactive);
        }
        self.limiter.reset(&account_key).await;
        self.limiter.reset(&failed_here_key).await;
        let ttl = if remember_me {
            self.remember_me_ttl
        } else {
            self.refresh_ttl
        };
        let tokens = self
            .start_session(&user, ttl, Some(&user.password_hash))
            .await?;
        self.store.touch_last_login(user.user_id()).await?;
        tracing::info!(user_id = %user.id, "login");
        Ok(LoginOutcome { tokens, user })
    }

    /// Creates a temporary guest account and logs it in.
    #[tracing::instrument(skip_all)]
    pub async fn guest_login(&self, client: ClientInfo) -> AppResult<LoginOutcome> {
        self.limiter
            .check(
                &format!("guest:ip:{}", client.key()),
                self.limits.guest,
                Mode::Consume,
            )
            .await?;
        let mut attempts = 0;
        let user = loop {
            let email = Email::parse(&format!(
                "videoflix-{}@{}",
                random_suffix(),
                self.guest_domain
            ))
            .map_err(|e| AppError::Internal(anyhow::anyhow!("guest e-mail domain: {e}")))?;
            match self
                .store
                .create_user(NewUser {
                    email: &email,
                    password_hash: "",
                    is_active: true,
                    is_superuser: false,
                    is_guest: true,
                })
                .await
            {
                Ok(user) => break user,
                Err(AppError::EmailTaken) if attempts < 5 => attempts += 1,
                Err(e) => return Err(e),
            }
        };
        let tokens = self.start_session(&user, self.guest_ttl, None).await?;
        tracing::info!(user_id = %user.id, "guest login");
        Ok(LoginOutcome { tokens, user })
    }

    /// Starts a session. With `checked_hash`, only if the password is still the one just
    /// verified: a login racing a password reset must not outlive the reset.
    async fn start_session(
        &self,
        user: &UserRecord,
        ttl_secs: u64,
        checked_hash: Option<&str>,
    ) -> AppResult<IssuedTokens> {
        let now = Timestamp::now();
        let session = SessionRecord {
            id: hex::encode(rand::random::<[u8; 16]>()),
            user_id: user.id,
            created_at: now,
            expires_at: now.plus_secs(ttl_secs),
            revoked_at: None,
        };
        let refresh = new_refresh_token();
        if !self
            .store
            .create_session(&session, &hash_refresh_token(&refresh), checked_hash)
            .await?
        {
            return Err(AppError::InvalidCredentials);
        }
        Ok(IssuedTokens {
            access: self.tokens.issue_access(user.user_id(), &session.id)?,
            refresh,
            expires_in: self.tokens.access_ttl_secs(),
        })
    }

    /// Rotates a refresh token. A reused token revokes its session.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(
        &self,
        client: ClientInfo,
        refresh_token: &str,
    ) -> AppResult<IssuedTokens> {
        let refresh_token = refresh_token.trim();
        if refresh_token.is_empty() {
            return Err(AppError::field("refresh", "This field may not be blank."));
        }
        self.limiter
            .check(
                &format!("refresh:ip:{}", client.key()),
                self.limits.refresh,
                Mode::Consume,
            )
            .await?;
        let next = new_refresh_token();
        match self
            .store
            .rotate_refresh(
                &hash_refresh_token(refresh_token),
                &hash_refresh_token(&next),
            )
            .await?
        {
            RefreshUse::Fresh(session) if session.is_alive(Timestamp::now()) => {
                let user = self
                    .store
                    .user_by_id(session.user_id)
                    .await?
                    .filter(|u| u.is_active)
                    .ok_or(AppError::Unauthenticated("The refresh token is invalid."))?;
                Ok(IssuedTokens {
                    access: self.tokens.issue_access(user.user_id(), &session.id)?,
                    refresh: next,
                    expires_in: self.tokens.access_ttl_secs(),
                })
            }
            RefreshUse::Fresh(_) => Err(AppError::Unauthenticated(
                "The session has ended. Please log in again.",
            )),
            RefreshUse::Reused(session_id) => {
                self.sessions.invalidate_session(&session_id).await;
                tracing::warn!("refresh token reused; session revoked");
                Err(AppError::Unauthenticated(
                    "The refresh token was already used; the session has been revoked.",
                ))
            }
            RefreshUse::Unknown => Err(AppError::Unauthenticated("The refresh token is invalid.")),
        }
    }

    /// Validates an access token and loads its caller; the session must still be alive.
    pub async fn authenticate(&self, access_token: &str) -> AppResult<Caller> {
        let claims = self.tokens.verify_access(access_token)?;
        let user_id = claims
            .user_id()
            .ok_or(AppError::Unauthenticated("The access token is invalid."))?;
        let now = Timestamp::now();
        let usable = |(session, user): &(SessionRecord, UserRecord)| {
            session.user_id == user_id && session.is_alive(now) && user.is_active
        };
        if let Some(entry) = self.sessions.get(&claims.sid)
            && usable(&entry)
        {
            return Ok(Caller {
                user: entry.1.clone(),
                session_id: entry.0.id.clone(),
            });
        }
        let generation = self.sessions.generation();
        let entry = self
            .store
            .session_with_user(&claims.sid)
            .await?
            .filter(|e| usable(e))
            .ok_or(AppError::Unauthenticated(
                "The session has ended. Please log in again.",
            ))?;
        let caller = Caller {
            user: entry.1.clone(),
            session_id: entry.0.id.clone(),
        };
        self.sessions
            .insert(&claims.sid, std::sync::Arc::new(entry), generation);
        Ok(caller)
    }

    /// Ends the caller's session; a guest account is deleted. Returns whether it was a guest.
    #[tracing::instrument(skip_all)]
    pub async fn logout(&self, caller: &Caller) -> AppResult<bool> {
        self.store.revoke_session(&caller.session_id).await?;
        self.sessions.invalidate_session(&caller.session_id).await;
        if caller.user.is_guest {
            self.store.delete_user(caller.user.user_id()).await?;
            self.sessions.invalidate_user(caller.user.id).await;
            tracing::info!(user_id = %caller.user.id, "guest logged out and deleted");
            return Ok(true);
        }
        tracing::info!(user_id = %caller.user.id, "logout");
        Ok(false)
    }

    /// Deletes guests older than the guest lifetime; returns how many.
    pub async fn purge_guests(&self) -> AppResult<u64> {
        let removed = self
            .store
            .purge_guests(Timestamp::now().minus_secs(self.guest_ttl))
            .await?;
        if removed > 0 {
            self.sessions.invalidate_all().await;
            tracing::info!(removed, "expired guest accounts purged");
        }
        Ok(removed)
    }

    // ---- password reset ----------------------------------------------------------------------

    /// Mails a reset link if the account exists; the outcome is the same either way.
    #[tracing::instrument(skip_all)]
    pub async fn request_password_reset(&self, client: ClientInfo, email: &str) -> AppResult<()> {
        let email = Email::parse(email)?;
        self.limit_mail("reset", client, &email).await?;
        if let Some(user) = self.store.user_by_email(&email).await?
            && !user.is_guest
        {
            let token = self.tokens.issue_link(
                LinkPurpose::PasswordReset,
                user.user_id(),
                &reset_state(&user),
            );
            let link = self.link("reset-password", user.user_id(), &token);
            self.mailer
                .send_later(&user.email, Template::PasswordReset { link });
        }
        Ok(())
    }

    /// Sets a new password from a reset link and revokes every session of the account.
    #[tracing::instrument(skip_all)]
    pub async fn confirm_password_reset(
        &self,
        uid: &str,
        token: &str,
        new_password: &str,
        confirm_new_password: &str,
    ) -> AppResult<()> {
        let user = self.user_from_link(uid).await?;
        if !self.tokens.verify_link(
            LinkPurpose::PasswordReset,
            user.user_id(),
            &reset_state(&user),
            token,
            self.reset_ttl,
        ) {
            return Err(AppError::InvalidLink);
        }
        let email = Email::parse(&user.email)?;
        let password = Password::new(
            new_password,
            confirm_new_password,
            &email,
            "new_password",
            "confirm_new_password",
        )?;
        let hash = self.hasher.hash(password.expose()).await?;
        // Guarded by the old hash: of two racing uses of one link, only the first wins.
        if !self
            .store
            .change_password(user.user_id(), &user.password_hash, &hash)
            .await?
        {
            return Err(AppError::InvalidLink);
        }
        self.sessions.invalidate_user(user.id).await;
        tracing::info!(user_id = %user.id, "password reset; sessions revoked");
        Ok(())
    }

    // ---- profile -----------------------------------------------------------------------------

    /// Updates phone and/or address.
    pub async fn update_me(
        &self,
        caller: &Caller,
        phone: Option<&str>,
        address: Option<&str>,
    ) -> AppResult<UserRecord> {
        let phone = phone.map(Phone::parse);
        let address = address.map(Address::parse);
        let errors: Vec<FieldError> = [
            phone.as_ref().and_then(|p| p.as_ref().err().cloned()),
            address.as_ref().and_then(|a| a.as_ref().err().cloned()),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let update = ProfileUpdate {
            phone: phone.and_then(Result::ok).map(Phone::into_inner),
            address: address.and_then(Result::ok).map(Address::into_inner),
        };
        let user = self
            .store
            .update_profile(caller.user.user_id(), &update)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        self.sessions.invalidate_user(user.id).await;
        Ok(user)
    }

    // ---- helpers -----------------------------------------------------------------------------

    async fn user_from_link(&self, uid: &str) -> AppResult<UserRecord> {
        let uid = Uid::parse(uid).map_err(|_| AppError::InvalidLink)?;
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
