//! A syntactically valid, normalised e-mail address.

use std::fmt;

use super::FieldError;

/// An e-mail address: trimmed, lower-cased, at most 254 characters, one `@`, a local part of at
/// most 64 characters and a dotted domain of letters, digits and hyphens.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Parses and normalises `raw`.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let invalid = || FieldError::new("email", "Enter a valid email address.");
        let value = raw.trim().to_lowercase();
        if value.is_empty() {
            return Err(FieldError::new("email", "This field may not be blank."));
        }
        if value.len() > 254 {
            return Err(invalid());
        }
        let (local, domain) = value.rsplit_once('@').ok_or_else(invalid)?;
        if local.is_empty() || local.len() > 64 || !valid_local(local) {
            return Err(invalid());
        }
        if !valid_domain(domain) {
            return Err(invalid());
        }
        Ok(Self(value))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the `@`.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(l, _)| l)
    }
}

fn valid_local(local: &str) -> bool {
    // Dot-atom form (RFC 5322 §3.4.1) as Django's EmailValidator accepts it; quoted local parts
    // are rare enough in practice that we reject them rather than carry their escaping rules.
    const SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-";
    !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || SPECIALS.contains(c))
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && !tld.chars().all(|c| c.is_ascii_digit()))
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("user@example.com", "user@example.com")]
    #[case("  User.Name+tag@Example.COM ", "user.name+tag@example.com")]
    #[case("a@b.co", "a@b.co")]
    #[case("o'brien@sub.domain.org", "o'brien@sub.domain.org")]
    fn valid_addresses_are_normalised(#[case] raw: &str, #[case] expected: &str) {
        assert_eq!(Email::parse(raw).map(|e| e.0), Ok(expected.to_owned()));
    }

    #[rstest]
    #[case("")]
    #[case("   ")]
    #[case("plainaddress")]
    #[case("@example.com")]
    #[case("user@")]
    #[case("user@localhost")]
    #[case("user@example..com")]
    #[case("user@-example.com")]
    #[case(".user@example.com")]
    #[case("us..er@example.com")]
    #[case("user name@example.com")]
    #[case("user@exa mple.com")]
    #[case("user@example.c")]
    #[case("user@123.456")]
    #[case("a@b@example.com")]
    #[case("user@example.com\n")]
    fn invalid_addresses_are_rejected(#[case] raw: &str) {
        // "\n" is trimmed, so the last case is actually valid; every other case must fail.
        if raw == "user@example.com\n" {
            assert!(Email::parse(raw).is_ok());
        } else {
            assert!(Email::parse(raw).is_err(), "{raw:?} was accepted");
        }
    }

    #[test]
    fn overlong_local_part_is_rejected() {
        let raw = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse(&raw).is_err());
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_is_idempotent(raw in "\\PC{0,80}") {
            if let Ok(email) = Email::parse(&raw) {
                let again = Email::parse(email.as_str());
                prop_assert_eq!(again.map(|e| e.0), Ok(email.0.clone()));
                prop_assert!(email.0.contains('@'));
            }
        }
    }
}
