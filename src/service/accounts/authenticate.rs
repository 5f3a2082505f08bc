//! Authentication of calls: the access token, then the session it names — from memory when
//! this process holds it under the current stamps, else from the database.

use crate::{
    domain::UserId,
    error::{AppError, AppResult},
    ratelimit::{Mode, RateLimiter},
    store::{SessionRecord, Timestamp, UserRecord},
};

use super::{
    super::admission::{self, Prefetch},
    Accounts, Caller,
};

const ENDED: AppError = AppError::Unauthenticated("The session has ended. Please log in again.");

impl Accounts {
    /// Validates an access token and loads its caller; the session must still be alive. What
    /// `prefetch` names for the token's user (cache scopes, rate limits) is read and charged
    /// with the session check: with sessions shared through Redis, all of it in one round trip.
    pub async fn authenticate(
        &self,
        access_token: &str,
        prefetch: impl FnOnce(UserId) -> Prefetch,
    ) -> AppResult<Caller> {
        let claims = self.tokens.verify_access(access_token)?;
        let user_id = claims
            .user_id()
            .ok_or(AppError::Unauthenticated("The access token is invalid."))?;
        let prefetch = prefetch(user_id);
        if let Some((redis, stamps)) = self.sessions.stamp_keys(&claims.sid, user_id)
            && let Some(cells) = self.limiter.redis_cells(&prefetch.limits)
        {
            let scopes: Vec<&str> = prefetch.scopes.iter().map(String::as_str).collect();
            let version_keys = self.cache.version_keys(&scopes).unwrap_or_default();
            match admission::admit(&redis, &stamps, &version_keys, &cells).await {
                Ok(admitted) => {
                    let entry = match self.sessions.get_stamped(&claims.sid, &admitted.stamp) {
                        Some(entry) => entry,
                        None => {
                            let entry = std::sync::Arc::new(self.load_session(&claims.sid).await?);
                            self.sessions.insert_stamped(
                                &claims.sid,
                                entry.clone(),
                                &admitted.stamp,
                            );
                            entry
                        }
                    };
                    let (session, user) = &*entry;
                    if !usable(session, user, user_id) {
                        return Err(ENDED);
                    }
                    if admitted.wait_ms > 0 {
                        return Err(RateLimiter::refused(admitted.wait_ms));
                    }
                    let versions = (!version_keys.is_empty())
                        .then(|| self.cache.versions_read(&scopes, admitted.versions));
                    return Ok(Caller {
                        user: user.clone(),
                        session_id: session.id.clone(),
                        versions,
                    });
                }
                Err(e) => {
                    // Nothing this process loaded before is trusted until Redis answers again.
                    tracing::debug!(error = %e, "admission script failed; reading the database");
                    self.sessions.forget_local();
                }
            }
        }
        let caller = self.authenticate_here(&claims.sid, user_id).await?;
        for limit in &prefetch.limits {
            self.limiter
                .check(&limit.key, limit.rate, Mode::Consume)
                .await?;
        }
        Ok(caller)
    }

    /// The session check without shared stamps: this process's cache (single process) or the
    /// database.
    async fn authenticate_here(&self, sid: &str, user_id: UserId) -> AppResult<Caller> {
        let caller = |(session, user): &(SessionRecord, UserRecord)| Caller {
            user: user.clone(),
            session_id: session.id.clone(),
            versions: None,
        };
        if let Some(entry) = self.sessions.get(sid)
            && usable(&entry.0, &entry.1, user_id)
        {
            return Ok(caller(&entry));
        }
        let generation = self.sessions.generation();
        let entry = self.load_session(sid).await?;
        if !usable(&entry.0, &entry.1, user_id) {
            return Err(ENDED);
        }
        let answer = caller(&entry);
        self.sessions
            .insert(sid, std::sync::Arc::new(entry), generation);
        Ok(answer)
    }

    async fn load_session(&self, sid: &str) -> AppResult<(SessionRecord, UserRecord)> {
        self.store.session_with_user(sid).await?.ok_or(ENDED)
    }
}

/// Whether `session` still admits calls of `user_id`.
fn usable(session: &SessionRecord, user: &UserRecord, user_id: UserId) -> bool {
    session.user_id == user_id && session.is_alive(Timestamp::now()) && user.is_active
}
