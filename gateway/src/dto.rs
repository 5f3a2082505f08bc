//! REST bodies, in the legacy API's JSON shapes (not proto-JSON: numeric ids, plain strings).
//! Request fields default to empty so a missing field is reported by the service's validation,
//! naming the field, instead of as a deserialisation error.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::pb;

/// A user as the REST API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct UserDto {
    /// Numeric id.
    pub id: i64,
    /// E-mail address.
    pub email: String,
    /// Phone number (may be empty).
    pub phone: String,
    /// Postal address (may be empty).
    pub address: String,
}

impl From<pb::User> for UserDto {
    fn from(u: pb::User) -> Self {
        Self {
            id: u.id,
            email: u.email,
            phone: u.phone,
            address: u.address,
        }
    }
}

/// `POST /register/`
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterBody {
    /// E-mail address (normalised to lower case).
    #[serde(default)]
    #[schema(example = "jane@example.com")]
    pub email: String,
    /// At least 8 characters, not all digits, not common, not similar to the e-mail.
    #[serde(default)]
    #[schema(example = "correct-horse-battery")]
    pub password: String,
    /// Must equal `password`.
    #[serde(default)]
    #[schema(example = "correct-horse-battery")]
    pub confirm_password: String,
}

/// Answer of `POST /register/`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegisterResponse {
    /// The new user's id.
    pub id: i64,
    /// The normalised e-mail.
    pub email: String,
    /// What happens next.
    pub message: String,
}

/// `POST /activate-account/` and the parts of a link.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ActivateBody {
    /// `uid` segment of the link.
    #[serde(default)]
    pub uid: String,
    /// `token` segment of the link.
    #[serde(default)]
    pub token: String,
}

/// A plain confirmation.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageResponse {
    /// Human-readable message.
    pub message: String,
}

/// A body holding only an e-mail.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmailBody {
    /// E-mail address.
    #[serde(default)]
    #[schema(example = "jane@example.com")]
    pub email: String,
}

/// `POST /login/`
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginBody {
    /// E-mail address; `guest@videoflix.com` logs in as a new guest.
    #[serde(default)]
    #[schema(example = "jane@example.com")]
    pub email: String,
    /// Password (may be omitted for the guest e-mail).
    #[serde(default)]
    pub password: Option<String>,
    /// Keep the session alive longer.
    #[serde(default)]
    pub remember_me: Option<bool>,
    /// Ignored (sent by the legacy demo button).
    #[allow(dead_code)]
    #[serde(default)]
    pub username: Option<String>,
}

/// Answer of `POST /login/` and `POST /guest-login/`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// Access token: send as `Authorization: Token <token>` or `Bearer <token>`.
    pub token: String,
    /// Refresh token for `POST /jwt/refresh/`.
    pub refresh: String,
    /// Seconds until `token` expires.
    pub expires_in: i64,
    /// The user's e-mail.
    pub email: String,
    /// The user's id.
    pub user_id: i64,
    /// Whether this is a temporary guest account.
    pub is_guest: bool,
    /// The user.
    pub user: UserDto,
}

impl LoginResponse {
    pub(crate) fn new(tokens: Option<pb::TokenPair>, user: Option<pb::User>) -> Self {
        let tokens = tokens.unwrap_or_default();
        let user = user.unwrap_or_default();
        Self {
            token: tokens.access_token,
            refresh: tokens.refresh_token,
            expires_in: tokens.expires_in,
            email: user.email.clone(),
            user_id: user.id,
            is_guest: user.is_guest,
            user: user.into(),
        }
    }
}

/// Answer of `DELETE /logout/` for a regular account.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogoutResponse {
    /// Always true.
    pub ok: bool,
    /// Human-readable message.
    pub message: String,
}

/// `POST /new-password/`
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewPasswordBody {
    /// `uid` segment of the reset link.
    #[serde(default)]
    pub uid: String,
    /// `token` segment of the reset link.
    #[serde(default)]
    pub token: String,
    /// The new password (same rules as registration).
    #[serde(default)]
    pub new_password: String,
    /// Must equal `new_password`.
    #[serde(default)]
    pub confirm_new_password: String,
}

/// `POST /jwt/`
#[derive(Debug, Deserialize, ToSchema)]
pub struct JwtBody {
    /// E-mail address.
    #[serde(default)]
    pub email: String,
    /// Password.
    #[serde(default)]
    pub password: String,
}

/// `POST /jwt/refresh/`
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshBody {
    /// The current refresh token (single use).
    #[serde(default)]
    pub refresh: String,
}

/// An access/refresh pair.
#[derive(Debug, Serialize, ToSchema)]
pub struct JwtPair {
    /// Access token (JWT).
    pub access: String,
    /// New refresh token; the one sent is now spent.
    pub refresh: String,
}

/// `PATCH /api/me/`: fields to change (absent or null = unchanged, "" = clear).
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateMeBody {
    /// Phone number: digits, spaces and `+ - ( ) . /`, at most 32 characters.
    #[serde(default)]
    pub phone: Option<String>,
    /// Postal address, at most 255 characters.
    #[serde(default)]
    pub address: Option<String>,
}
