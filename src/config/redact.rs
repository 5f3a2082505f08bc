//! `Debug` of [`Settings`] without its secrets.

use std::fmt;

use super::Settings;

impl fmt::Debug for Settings {
    // Hand-written so secrets and credentials in URLs never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field(
                "database",
                &if self.is_postgres() {
                    "postgres"
                } else {
                    "sqlite"
                },
            )
            .field("redis", &self.redis_url.as_ref().map(|_| "[redacted]"))
            .field("smtp", &self.smtp_url.as_ref().map(|_| "[redacted]"))
            .field("public_url", &self.public_url.as_str())
            .field("frontend_url", &self.frontend_url.as_str())
            .field("media_dir", &self.media_dir)
            .field("web_dir", &self.web_dir)
            .field("jwt_secret", &"[redacted]")
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "[redacted]"),
            )
            .field("dev", &self.dev)
            .field("throttle_enabled", &self.throttle_enabled)
            .finish_non_exhaustive()
    }
}
