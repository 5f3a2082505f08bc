//! Account bodies: registration, activation, login, tokens, the profile.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::pb;

/// A user as the REST API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub(crate) struct UserDto {
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
pub(crate) struct RegisterBody {
    /// E-mail address (trimmed and normalised to lower case).
    #[serde(default)]
    #[schema(example = "jane@example.com", required = true, format = Email, max_length = 254)]
    pub email: String,
    /// 8 to 4096 characters, not all digits, not a common password, not similar to the
    /// e-mail.
    #[serde(default)]
    #[schema(
        example = "correct-horse-battery",
        required = true,
        min_length = 8,
        max_length = 4096
    )]
    pub password: String,
    /// Must equal `password`.
    #[serde(default)]
    #[schema(
        example = "correct-horse-battery",
        required = true,
        min_length = 8,
        max_length = 4096
    )]
    pub confirm_password: String,
}

/// Answer of `POST /register/`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RegisterResponse {
    /// The new user's id.
    pub id: i64,
    /// The normalised e-mail.
    pub email: String,
    /// What happens next.
    pub message: String,
}

/// `POST /activate-account/` and the parts of a link.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct ActivateBody {
    /// `uid` segment of the link.
    #[serde(default)]
    #[schema(required = true, min_length = 1)]
    pub uid: String,
    /// `token` segment of the link.
    #[serde(default)]
    #[schema(required = true, min_length = 1)]
    pub token: String,
}

/// A plain confirmation.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MessageResponse {
    /// Human-readable message.
    pub message: String,
}

/// A body holding only an e-mail.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct EmailBody {
    /// E-mail address.
    #[serde(default)]
    #[schema(example = "jane@example.com", required = true, format = Email, max_length = 254)]
    pub email: String,
}

/// `POST /login/`
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct LoginBody {
    /// E-mail address; `guest@videoflix.com` logs in as a new guest.
    #[serde(default)]
    #[schema(example = "jane@example.com", required = true, format = Email, max_length = 254)]
    pub email: String,
    /// Password (may be omitted for the guest e-mail).
    #[serde(default)]
    #[schema(max_length = 4096)]
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
pub(crate) struct LoginResponse {
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
pub(crate) struct LogoutResponse {
    /// Always true.
    pub ok: bool,
    /// Human-readable message.
    pub message: String,
}

/// `POST /new-password/`
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct NewPasswordBody {
    /// `uid` segment of the reset link.
    #[serde(default)]
    #[schema(required = true, min_length = 1)]
    pub uid: String,
    /// `token` segment of the reset link.
    #[serde(default)]
    #[schema(required = true, min_length = 1)]
    pub token: String,
    /// The new password (same rules as registration).
    #[serde(default)]
    #[schema(required = true, min_length = 8, max_length = 4096)]
    pub new_password: String,
    /// Must equal `new_password`.
    #[serde(default)]
    #[schema(required = true, min_length = 8, max_length = 4096)]
    pub confirm_new_password: String,
}

/// `POST /jwt/`
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct JwtBody {
    /// E-mail address.
    #[serde(default)]
    #[schema(required = true, format = Email, max_length = 254)]
    pub email: String,
    /// Password.
    #[serde(default)]
    #[schema(required = true, min_length = 1, max_length = 4096)]
    pub password: String,
}

/// `POST /jwt/refresh/`
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct RefreshBody {
    /// The current refresh token (single use).
    #[serde(default)]
    #[schema(required = true, min_length = 1)]
    pub refresh: String,
}

/// An access/refresh pair.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JwtPair {
    /// Access token (JWT).
    pub access: String,
    /// New refresh token; the one sent is now spent.
    pub refresh: String,
}

/// `PATCH /api/me/`: fields to change (absent or null = unchanged, "" = clear).
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct UpdateMeBody {
    /// Phone number: digits, spaces and `+ - ( ) . /`, at most 32 characters (surrounding
    /// spaces are trimmed).
    #[serde(default)]
    #[schema(pattern = r"^[0-9 +\-().\\/]*$", max_length = 32)]
    pub phone: Option<String>,
    /// Postal address, at most 255 characters (surrounding white space is trimmed), no control characters but
    /// line breaks.
    #[serde(default)]
    #[schema(
        pattern = r"^[^\u0000-\u0009\u000B\u000C\u000E-\u001F\u007F-\u009F]*$",
        max_length = 255
    )]
    pub address: Option<String>,
}
