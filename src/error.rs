//! [`AppError`]: every failure a use case can report, and the one exhaustive mapping to a gRPC
//! [`tonic::Status`] with `google.rpc` rich details. The REST gateway maps those statuses to HTTP
//! in its own single place, so both transports always agree.

use std::{collections::HashMap, time::Duration};

use tonic::Code;
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::domain::{FieldError, PasswordError};

/// Domain reported in `google.rpc.ErrorInfo`.
pub const ERROR_DOMAIN: &str = "videoflix";

/// A failure of a use case. Client errors name what was wrong; internal errors carry their cause
/// for the log and answer with an opaque message.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// One or more request fields are invalid (INVALID_ARGUMENT / 400).
    #[error("invalid request: {0:?}")]
    Validation(Vec<FieldError>),
    /// E-mail or password is wrong; deliberately says neither (UNAUTHENTICATED / 401).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The account exists but was never activated (FAILED_PRECONDITION / 400).
    #[error("account not activated")]
    AccountInactive,
    /// Activation was asked for an account that is already active (FAILED_PRECONDITION / 400).
    #[error("account already active")]
    AlreadyActive,
    /// Registration with an e-mail that has an account (ALREADY_EXISTS / 409).
    #[error("email already registered")]
    EmailTaken,
    /// An e-mailed link's uid/token is invalid, used or expired (INVALID_ARGUMENT / 400).
    #[error("invalid or expired link")]
    InvalidLink,
    /// No, a malformed, an expired or a revoked token (UNAUTHENTICATED / 401).
    #[error("unauthenticated: {0}")]
    Unauthenticated(&'static str),
    /// Authenticated, but not allowed (PERMISSION_DENIED / 403).
    #[error("permission denied: {0}")]
    PermissionDenied(&'static str),
    /// The request would break a rule of the current state, e.g. removing the last superuser
    /// (FAILED_PRECONDITION / 400).
    #[error("refused: {0}")]
    Refused(&'static str),
    /// A position past the end of what exists, e.g. a stream offset past a file's end
    /// (OUT_OF_RANGE / 400).
    #[error("out of range: {0}")]
    OutOfRange(String),
    /// An update named a version of the video that is no longer current (ABORTED; REST 412).
    #[error("the video changed since it was read")]
    EtagMismatch,
    /// The named resource does not exist (NOT_FOUND / 404).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Too many requests; retry after the given delay (RESOURCE_EXHAUSTED / 429).
    #[error("rate limited for {retry_after:?}")]
    RateLimited {
        /// When the client may try again.
        retry_after: Duration,
    },
    /// An upload is larger than allowed (RESOURCE_EXHAUSTED with reason PAYLOAD_TOO_LARGE / 413).
    #[error("upload larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The media disk has no room for the bytes (RESOURCE_EXHAUSTED with reason STORAGE_FULL /
    /// 507); what was written of them is removed.
    #[error("storage full: {0}")]
    StorageFull(String),
    /// A dependency (database, Redis, mail) is down (UNAVAILABLE / 503).
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A gRPC message over the size limit (RESOURCE_EXHAUSTED / 413).
    #[error("message too large")]
    MessageTooLarge,
    /// A bug or an unexpected I/O failure (INTERNAL / 500).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// A validation error on one field.
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }
}

impl From<FieldError> for AppError {
    fn from(e: FieldError) -> Self {
        Self::Validation(vec![e])
    }
}

impl From<PasswordError> for AppError {
    fn from(e: PasswordError) -> Self {
        Self::Validation(e.0)
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Self::Unavailable(format!("database: {e}"))
            }
            sqlx::Error::Database(ref db) if is_busy(db.as_ref()) => {
                Self::Unavailable(format!("database busy: {e}"))
            }
            other => Self::Internal(anyhow::Error::new(other).context("database query")),
        }
    }
}

/// Whether a database error means "busy, try again": SQLite's BUSY and LOCKED (with their
/// extended codes), PostgreSQL's lock_not_available, too_many_connections, admin_shutdown and
/// cannot_connect_now.
fn is_busy(error: &dyn sqlx::error::DatabaseError) -> bool {
    let code = error.code();
    if error
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
    {
        postgres_busy(code.as_deref())
    } else {
        sqlite_busy(code.as_deref())
    }
}

fn sqlite_busy(code: Option<&str>) -> bool {
    // The primary result code is the low byte of an extended one.
    code.and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| matches!(c & 0xff, 5 | 6))
}

fn postgres_busy(code: Option<&str>) -> bool {
    // Connection exceptions (08…), lock_not_available, too_many_connections, shutdowns and
    // restarts, a database not accepting connections (55000 at connect), serialization
    // failures and deadlocks: all answered "try again".
    code.is_some_and(|c| {
        c.starts_with("08")
            || matches!(
                c,
                "55P03" | "53300" | "55000" | "57P01" | "57P02" | "57P03" | "40001" | "40P01"
            )
    })
}

/// The frontend's error category (`{"type": [...]}`) of a request field: the legacy categories
/// for the account fields, the field's own name otherwise.
fn field_type(field: &'static str) -> &'static str {
    match field {
        "email" => "email",
        "password" | "confirm_password" | "new_password" | "confirm_new_password" => "password",
        "uid" | "token" | "refresh" | "refresh_token" => "token",
        other => other,
    }
}

impl From<AppError> for tonic::Status {
    fn from(err: AppError) -> Self {
        let mut details = ErrorDetails::new();
        let (code, message, reason, kind): (Code, String, &str, &str) = match &err {
            AppError::Validation(fields) => {
                details.set_bad_request(
                    fields
                        .iter()
                        .map(|f| FieldViolation::new(f.field, f.message.clone()))
                        .collect::<Vec<_>>(),
                );
                let first = fields.first();
                let message = fields
                    .iter()
                    .map(|f| f.message.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                (
                    Code::InvalidArgument,
                    message,
                    "INVALID_ARGUMENT",
                    first.map_or("request", |f| field_type(f.field)),
                )
            }
            AppError::InvalidCredentials => (
                Code::Unauthenticated,
                "Invalid email or password.".into(),
                "INVALID_CREDENTIALS",
                "credentials",
            ),
            AppError::AccountInactive => (
                Code::FailedPrecondition,
                "Your account is not activated yet. Please check your email for the activation link."
                    .into(),
                "ACCOUNT_INACTIVE",
                "account",
            ),
            AppError::AlreadyActive => (
                Code::FailedPrecondition,
                "This account is already active. You can log in.".into(),
                "ACCOUNT_ALREADY_ACTIVE",
                "account",
            ),
            AppError::EmailTaken => {
                details.set_bad_request(vec![FieldViolation::new(
                    "email",
                    "An account with this email already exists.",
                )]);
                (
                    Code::AlreadyExists,
                    "An account with this email already exists.".into(),
                    "EMAIL_TAKEN",
                    "email",
                )
            }
            AppError::InvalidLink => {
                details.set_bad_request(vec![FieldViolation::new(
                    "token",
                    "The link is invalid, was already used or has expired.",
                )]);
                (
                    Code::InvalidArgument,
                    "The link is invalid, was already used or has expired.".into(),
                    "INVALID_LINK",
                    "token",
                )
            }
            AppError::Unauthenticated(why) => (
                Code::Unauthenticated,
                (*why).to_owned(),
                "UNAUTHENTICATED",
                "token",
            ),
            AppError::PermissionDenied(why) => (
                Code::PermissionDenied,
                (*why).to_owned(),
                "PERMISSION_DENIED",
                "permission",
            ),
            AppError::Refused(why) => (
                Code::FailedPrecondition,
                (*why).to_owned(),
                "REFUSED",
                "state",
            ),
            AppError::OutOfRange(why) => (
                Code::OutOfRange,
                why.clone(),
                "OUT_OF_RANGE",
                "range",
            ),
            AppError::EtagMismatch => (
                Code::Aborted,
                "The video changed since it was read: read it again, then retry the change."
                    .into(),
                videoflix_gateway::REASON_ETAG_MISMATCH,
                "etag",
            ),
            AppError::NotFound(what) => (
                Code::NotFound,
                format!("{what} not found."),
                "NOT_FOUND",
                "not_found",
            ),
            AppError::RateLimited { retry_after } => {
                details.set_retry_info(Some(*retry_after));
                (
                    Code::ResourceExhausted,
                    format!(
                        "Request was throttled. Expected available in {} seconds.",
                        retry_after.as_secs().max(1)
                    ),
                    "RATE_LIMITED",
                    "throttled",
                )
            }
            AppError::TooLarge { limit } => (
                Code::ResourceExhausted,
                format!("The file is larger than the limit of {limit} bytes."),
                videoflix_gateway::REASON_PAYLOAD_TOO_LARGE,
                "too_large",
            ),
            AppError::StorageFull(cause) => {
                tracing::error!(%cause, "the media disk is full");
                (
                    Code::ResourceExhausted,
                    "The server has no room for the file right now; nothing was stored. Please \
                     try again later."
                        .into(),
                    videoflix_gateway::REASON_STORAGE_FULL,
                    "storage",
                )
            }
            AppError::MessageTooLarge => (
                Code::ResourceExhausted,
                "A message is larger than the limit of 4 MiB (4194304 bytes); upload files in \
                 smaller chunks."
                    .into(),
                videoflix_gateway::REASON_PAYLOAD_TOO_LARGE,
                "too_large",
            ),
            AppError::Unavailable(cause) => {
                tracing::warn!(%cause, "dependency unavailable");
                details.set_retry_info(Some(std::time::Duration::from_secs(1)));
                (
                    Code::Unavailable,
                    "The service is temporarily unavailable. Please try again.".into(),
                    "UNAVAILABLE",
                    "server",
                )
            }
            AppError::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error");
                (
                    Code::Internal,
                    "Internal server error.".into(),
                    "INTERNAL",
                    "server",
                )
            }
        };
        details.set_error_info(
            reason,
            ERROR_DOMAIN,
            HashMap::from([("type".to_owned(), kind.to_owned())]),
        );
        tonic::Status::with_error_details(code, message, details)
    }
}

/// Result of a use case.
pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_errors_carry_field_violations_and_type() {
        let status = tonic::Status::from(AppError::field("email", "Enter a valid email address."));
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let bad = details.bad_request().expect("bad request detail");
        assert_eq!(bad.field_violations[0].field, "email");
        let info = details.error_info().expect("error info");
        assert_eq!(info.metadata.get("type").map(String::as_str), Some("email"));
    }

    #[test]
    fn busy_databases_are_told_apart_from_other_failures() {
        for busy in ["5", "6", "261", "517", "262"] {
            assert!(sqlite_busy(Some(busy)), "{busy}");
        }
        for other in ["19", "2067", "1", "11"] {
            assert!(!sqlite_busy(Some(other)), "{other}");
        }
        for busy in [
            "55P03", "53300", "55000", "57P01", "57P03", "08006", "40P01",
        ] {
            assert!(postgres_busy(Some(busy)), "{busy}");
        }
        for other in ["23505", "42P01", "5"] {
            assert!(!postgres_busy(Some(other)), "{other}");
        }
        assert!(!sqlite_busy(None) && !postgres_busy(None));
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let status = tonic::Status::from(AppError::Internal(anyhow::anyhow!("secret path /x")));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("secret"));
    }

    #[test]
    fn throttling_carries_retry_info() {
        let status = tonic::Status::from(AppError::RateLimited {
            retry_after: Duration::from_secs(7),
        });
        assert_eq!(status.code(), Code::ResourceExhausted);
        let retry = status.get_error_details().retry_info().cloned();
        assert_eq!(
            retry.and_then(|r| r.retry_delay),
            Some(Duration::from_secs(7))
        );
    }
}
