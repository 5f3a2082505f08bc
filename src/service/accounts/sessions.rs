//! Logins (password and guest), sessions, token refresh, authentication of calls, logout and
//! the guest purge.

use crate::{
    domain::Email,
    error::{AppError, AppResult},
    ratelimit::Mode,
    security::{hash_refresh_token, new_refresh_token},
    store::{NewUser, RefreshUse, SessionRecord, Timestamp, UserRecord},
};

use super::{
    Accounts, Caller, ClientInfo, FAILED_HERE, GUEST_LOGIN_EMAIL, IssuedTokens, LoginOutcome,
    random_suffix,
};

/// What a login names: the demo button's guest, or an account with its password.
#[derive(Clone)]
pub enum Login {
    /// The guest e-mail: a new guest account, whatever the password.
    Guest,
    /// An account.
    Account {
        /// Its e-mail.
        email: Email,
        /// The password as typed (checked against the stored hash, never parsed).
        password: String,
    },
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Guest => f.write_str("Guest"),
            Self::Account { email, .. } => write!(f, "Account({})", email.as_str()),
        }
    }
}

impl Login {
    /// A login form's e-mail and password.
    pub fn parse(email: &str, password: &str) -> AppResult<Self> {
        if email.trim().eq_ignore_ascii_case(GUEST_LOGIN_EMAIL) {
            return Ok(Self::Guest);
        }
        let email = Email::parse(email)?;
        if password.is_empty() {
            return Err(AppError::field("password", "This field may not be blank."));
        }
        Ok(Self::Account {
            email,
            password: password.to_owned(),
        })
    }
}

impl Accounts {
    /// Logs in with e-mail and password. The guest e-mail logs in as a new guest, whatever the
    /// password.
    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        client: ClientInfo,
        login: Login,
        remember_me: bool,
    ) -> AppResult<LoginOutcome> {
        let (email, password) = match login {
            Login::Guest => return self.guest_login(client).await,
            Login::Account { email, password } => (email, password),
        };
        let password = password.as_str();
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
}
