//! User identifiers, and the `uid` form used in e-mailed links.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use super::FieldError;

positive_id!(
    /// Primary key of a user.
    UserId,
    "user"
);

/// A user id as it appears in activation and reset links: Django's
/// `urlsafe_base64_encode(force_bytes(pk))`, so links from the old backend keep their shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uid(pub UserId);

impl Uid {
    /// Decodes a link's `uid` segment.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let invalid = || FieldError::new("uid", "Invalid activation or reset link.");
        let bytes = URL_SAFE_NO_PAD
            .decode(raw.trim().trim_end_matches('='))
            .map_err(|_| invalid())?;
        let text = std::str::from_utf8(&bytes).map_err(|_| invalid())?;
        if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit()) || text.len() > 19 {
            return Err(invalid());
        }
        text.parse()
            .map(|id| Self(UserId::from_db(id)))
            .map_err(|_| invalid())
    }

    /// Encodes for a link.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.0.to_string())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn matches_django_encoding() {
        // Django: urlsafe_base64_encode(b"1") == "MQ", b"42" == "NDI"
        assert_eq!(Uid(UserId::from_db(1)).encode(), "MQ");
        assert_eq!(Uid(UserId::from_db(42)).encode(), "NDI");
        assert_eq!(Uid::parse("NDI"), Ok(Uid(UserId::from_db(42))));
    }

    #[test]
    fn garbage_is_rejected() {
        for raw in ["", "!!", "YWJj", "LTE"] {
            assert!(Uid::parse(raw).is_err(), "{raw}");
        }
    }

    proptest! {
        #[test]
        fn round_trips(id in 0i64..i64::MAX) {
            prop_assert_eq!(Uid::parse(&Uid(UserId::from_db(id)).encode()), Ok(Uid(UserId::from_db(id))));
        }

        #[test]
        fn never_panics(raw in "\\PC{0,40}") {
            let _ = Uid::parse(&raw);
        }
    }
}
