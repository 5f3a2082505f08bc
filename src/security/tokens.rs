//! Token formats.
//!
//! - Access tokens: HS256 JWTs naming the user (`sub`) and the session (`sid`); every request
//!   also checks that the session is alive, so logout and revocation take effect at once.
//! - Refresh tokens: 32 random bytes, base64url; only their SHA-256 is stored.
//! - Link tokens (activation, password reset): `{timestamp base36}-{HMAC-SHA256 hex}` over the
//!   purpose, the user id and a fingerprint of the account state the link is meant to change
//!   (as Django's `PasswordResetTokenGenerator`), so a link dies once it has done its job.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{domain::UserId, error::AppError, store::Timestamp};

const ISSUER: &str = "videoflix";

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// User id, as a string (RFC 7519).
    pub sub: String,
    /// Session id.
    pub sid: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Issuer, always `videoflix`.
    pub iss: String,
    /// Token kind, always `access`.
    pub typ: String,
}

impl AccessClaims {
    /// The user the token belongs to.
    pub fn user_id(&self) -> Option<UserId> {
        self.sub.parse().ok().map(UserId::from_db)
    }
}

/// What a link token is for; part of the signed message so one kind cannot pass for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// Account activation.
    Activation,
    /// Password reset.
    PasswordReset,
}

impl LinkPurpose {
    fn tag(self) -> &'static str {
        match self {
            Self::Activation => "activation",
            Self::PasswordReset => "password-reset",
        }
    }
}

/// Signs and checks every token kind with the configured secret.
#[derive(Clone)]
pub struct Tokens {
    secret: Vec<u8>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    access_ttl_secs: u64,
}

impl Tokens {
    /// Keys from `secret`; access tokens live `access_ttl_secs`.
    pub fn new(secret: &str, access_ttl_secs: u64) -> Self {
        // jsonwebtoken panics at the first signature if no crypto provider is installed, and
        // picks none when two crate features are on: choose ours explicitly, once.
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
        Self {
            secret: secret.as_bytes().to_vec(),
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            access_ttl_secs,
        }
    }

    /// Seconds an access token lives.
    pub fn access_ttl_secs(&self) -> u64 {
        self.access_ttl_secs
    }

    /// A signed access token for `user` in `session`.
    pub fn issue_access(&self, user: UserId, session: &str) -> Result<String, AppError> {
        let now = Timestamp::now().0.timestamp();
        let claims = AccessClaims {
            sub: user.to_string(),
            sid: session.to_owned(),
            iat: now,
            exp: now.saturating_add(i64::try_from(self.access_ttl_secs).unwrap_or(i64::MAX / 2)),
            iss: ISSUER.to_owned(),
            typ: "access".to_owned(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("signing an access token: {e}")))
    }

    /// Checks signature, expiry, issuer and kind of an access token.
    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, AppError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    AppError::Unauthenticated("The access token has expired.")
                }
                _ => AppError::Unauthenticated("The access token is invalid."),
            })?;
        if data.claims.typ != "access" {
            return Err(AppError::Unauthenticated("The access token is invalid."));
        }
        Ok(data.claims)
    }

    /// A link token for `user`, bound to `state` (a fingerprint of what the link changes).
    pub fn issue_link(&self, purpose: LinkPurpose, user: UserId, state: &str) -> String {
        self.link_at(purpose, user, state, Timestamp::now().0.timestamp())
    }

    fn link_at(&self, purpose: LinkPurpose, user: UserId, state: &str, ts: i64) -> String {
        let ts = ts.max(0).unsigned_abs();
        format!(
            "{}-{}",
            to_base36(ts),
            hex::encode(self.link_mac(purpose, user, state, ts))
        )
    }

    /// Whether `token` was issued for `user` and `state` less than `ttl_secs` ago.
    pub fn verify_link(
        &self,
        purpose: LinkPurpose,
        user: UserId,
        state: &str,
        token: &str,
        ttl_secs: u64,
    ) -> bool {
        let Some((ts_part, mac_part)) = token.trim().split_once('-') else {
            return false;
        };
        let (Some(ts), Ok(mac)) = (from_base36(ts_part), hex::decode(mac_part)) else {
            return false;
        };
        let now = Timestamp::now().0.timestamp().max(0).unsigned_abs();
        if ts > now.saturating_add(60) || now.saturating_sub(ts) > ttl_secs {
            return false;
        }
        let Ok(mut expected) = Hmac::<Sha256>::new_from_slice(&self.secret) else {
            return false;
        };
        expected.update(&link_message(purpose, user, state, ts));
        // verify_slice compares in constant time.
        expected.verify_slice(&mac).is_ok()
    }

    fn link_mac(&self, purpose: LinkPurpose, user: UserId, state: &str, ts: u64) -> Vec<u8> {
        match Hmac::<Sha256>::new_from_slice(&self.secret) {
            Ok(mut mac) => {
                mac.update(&link_message(purpose, user, state, ts));
                mac.finalize().into_bytes().to_vec()
            }
            // HMAC accepts keys of any length; this arm is unreachable in practice.
            Err(_) => Vec::new(),
        }
    }
}

fn link_message(purpose: LinkPurpose, user: UserId, state: &str, ts: u64) -> Vec<u8> {
    format!("videoflix|{}|{}|{ts}|{state}", purpose.tag(), user.get()).into_bytes()
}

/// A new random refresh token.
pub fn new_refresh_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored for a refresh token.
pub fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn to_base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if n == 0 {
        return "0".into();
    }
    let mut out = Vec::new();
    while n > 0 {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn from_base36(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 13 {
        return None;
    }
    u64::from_str_radix(s, 36).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::new("0123456789abcdef0123456789abcdef", 3600)
    }

    #[test]
    fn access_tokens_round_trip_and_reject_tampering() {
        let t = tokens();
        let jwt = t.issue_access(UserId::from_db(7), "sess").expect("sign");
        let claims = t.verify_access(&jwt).expect("valid");
        assert_eq!(
            (claims.user_id(), claims.sid.as_str()),
            (Some(UserId::from_db(7)), "sess")
        );
        let other = Tokens::new("another-secret-another-secret-xx", 3600);
        assert!(other.verify_access(&jwt).is_err());
        assert!(t.verify_access("not.a.jwt").is_err());
    }

    #[test]
    fn link_tokens_bind_purpose_user_state_and_time() {
        let t = tokens();
        let token = t.issue_link(LinkPurpose::Activation, UserId::from_db(1), "inactive");
        assert!(t.verify_link(
            LinkPurpose::Activation,
            UserId::from_db(1),
            "inactive",
            &token,
            60
        ));
        assert!(!t.verify_link(
            LinkPurpose::PasswordReset,
            UserId::from_db(1),
            "inactive",
            &token,
            60
        ));
        assert!(!t.verify_link(
            LinkPurpose::Activation,
            UserId::from_db(2),
            "inactive",
            &token,
            60
        ));
        assert!(!t.verify_link(
            LinkPurpose::Activation,
            UserId::from_db(1),
            "active",
            &token,
            60
        ));
        let old = Timestamp::now().0.timestamp() - 120;
        let expired = t.link_at(LinkPurpose::Activation, UserId::from_db(1), "inactive", old);
        assert!(!t.verify_link(
            LinkPurpose::Activation,
            UserId::from_db(1),
            "inactive",
            &expired,
            60
        ));
        for garbage in ["", "-", "zzzzzzzzzzzzzzzzz-00", "abc-xyz", "1-"] {
            assert!(!t.verify_link(
                LinkPurpose::Activation,
                UserId::from_db(1),
                "inactive",
                garbage,
                60
            ));
        }
    }

    #[test]
    fn base36_round_trips() {
        for n in [0, 1, 35, 36, 1_700_000_000] {
            assert_eq!(from_base36(&to_base36(n)), Some(n));
        }
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let (a, b) = (new_refresh_token(), new_refresh_token());
        assert_ne!(a, b);
        assert_eq!(hash_refresh_token(&a).len(), 64);
    }
}
