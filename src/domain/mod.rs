//! Domain types: every value from a client is parsed once into one of these, so code past the
//! transport edge never handles a raw e-mail, password, id, status or genre string; rows,
//! events and jobs carry them too.

mod email;
mod listing;
mod media;
mod meta;
mod password;
mod profile;
mod rate;
mod time;
mod user;
mod video;

pub use email::Email;
pub use listing::{Ordering, PageToken};
pub use media::{Media, Renditions, Rung, RungFiles, StoredRendition};
pub use meta::{RawVideoMeta, VideoMeta};
pub use password::{Password, PasswordError};
pub use profile::{Address, Phone};
pub use rate::Rate;
pub use time::Timestamp;
pub use user::{Uid, UserId};
pub use video::{Genre, Language, VideoId, VideoStatus};

/// A value a client sent that does not parse; names the field and says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// Wire name of the field, e.g. `email`.
    pub field: &'static str,
    /// Human-readable reason, fit to show to the user.
    pub message: String,
}

impl FieldError {
    /// A new error for `field`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}
