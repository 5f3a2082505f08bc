//! A new password that passed the same checks as Django's default validators.

use std::{collections::HashSet, fmt, io::Read, sync::LazyLock};

use super::{Email, FieldError};

/// Minimum length, as Django's `MinimumLengthValidator`.
pub(crate) const MIN_LENGTH: usize = 8;
/// Upper bound so nobody can make the server hash megabytes.
pub(crate) const MAX_LENGTH: usize = 4096;
/// Django's `UserAttributeSimilarityValidator` default.
const MAX_SIMILARITY: f64 = 0.7;

/// Django's list of 20,000 common passwords (BSD-3-Clause, see `data/common-passwords.LICENSE`).
static COMMON: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let gz = include_bytes!("data/common-passwords.txt.gz");
    let mut text = String::new();
    // The file is part of the binary: failing to inflate it is a build defect caught by the
    // unit tests below, so an empty set here is never silently shipped.
    if flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .is_err()
    {
        return HashSet::new();
    }
    text.lines().map(|l| l.trim().to_owned()).collect()
});

/// A password accepted for a new or changed credential. Its text is never printed.
#[derive(Clone)]
pub struct Password(String);

/// Why a new password was refused: every failed rule, for the field named in `field`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordError(pub Vec<FieldError>);

impl Password {
    /// Checks `password` (and that `confirm` matches) for the account `email`. `field` and
    /// `confirm_field` are the wire names to blame, e.g. `password` / `confirm_password`.
    pub fn new(
        password: &str,
        confirm: &str,
        email: &Email,
        field: &'static str,
        confirm_field: &'static str,
    ) -> Result<Self, PasswordError> {
        let mut errors = Vec::new();
        if password.is_empty() {
            errors.push(FieldError::new(field, "This field may not be blank."));
            return Err(PasswordError(errors));
        }
        if password.chars().count() > MAX_LENGTH {
            errors.push(FieldError::new(
                field,
                format!(
                    "This password is too long. It must contain at most {MAX_LENGTH} characters."
                ),
            ));
            return Err(PasswordError(errors));
        }
        if password != confirm {
            errors.push(FieldError::new(confirm_field, "Passwords do not match."));
        }
        if too_similar(password, email) {
            errors.push(FieldError::new(
                field,
                "The password is too similar to the email.",
            ));
        }
        if password.chars().count() < MIN_LENGTH {
            errors.push(FieldError::new(
                field,
                format!(
                    "This password is too short. It must contain at least {MIN_LENGTH} characters."
                ),
            ));
        }
        if COMMON.contains(&password.trim().to_lowercase()) {
            errors.push(FieldError::new(field, "This password is too common."));
        }
        if password.chars().all(|c| c.is_ascii_digit()) {
            errors.push(FieldError::new(field, "This password is entirely numeric."));
        }
        if errors.is_empty() {
            Ok(Self(password.to_owned()))
        } else {
            Err(PasswordError(errors))
        }
    }

    /// The plaintext, for hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// Django's rule: compare with the whole e-mail and each of its `\W+`-separated parts, using
/// difflib's `quick_ratio`, skipping parts so short that similarity is meaningless.
fn too_similar(password: &str, email: &Email) -> bool {
    let password = password.to_lowercase();
    let value = email.as_str();
    let mut parts: Vec<&str> = value
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|p| !p.is_empty())
        .collect();
    parts.push(value);
    parts.into_iter().any(|part| {
        !exceeds_maximum_length_ratio(&password, part)
            && quick_ratio(&password, part) >= MAX_SIMILARITY
    })
}

fn exceeds_maximum_length_ratio(password: &str, value: &str) -> bool {
    let pwd_len = password.chars().count() as f64;
    let value_len = value.chars().count() as f64;
    let length_bound_similarity = MAX_SIMILARITY / 2.0 * pwd_len;
    pwd_len >= 10.0 * value_len && value_len < length_bound_similarity
}

/// difflib's `SequenceMatcher.quick_ratio`: 2·|multiset intersection| / (|a| + |b|).
fn quick_ratio(a: &str, b: &str) -> f64 {
    let total = a.chars().count() + b.chars().count();
    if total == 0 {
        return 1.0;
    }
    let mut available: std::collections::HashMap<char, usize> = std::collections::HashMap::new();
    for c in b.chars() {
        *available.entry(c).or_default() += 1;
    }
    let mut matches = 0usize;
    for c in a.chars() {
        if let Some(n) = available.get_mut(&c)
            && *n > 0
        {
            *n -= 1;
            matches += 1;
        }
    }
    2.0 * matches as f64 / total as f64
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn email() -> Email {
        Email::parse("jane.doe@example.com").expect("valid")
    }

    fn messages(pw: &str, confirm: &str) -> Vec<String> {
        match Password::new(pw, confirm, &email(), "password", "confirm_password") {
            Ok(_) => vec![],
            Err(PasswordError(errors)) => errors.into_iter().map(|e| e.message).collect(),
        }
    }

    #[test]
    fn common_password_list_is_loaded() {
        assert!(COMMON.len() > 19_000);
        assert!(COMMON.contains("password"));
    }

    #[test]
    fn a_strong_password_is_accepted() {
        assert!(
            messages(
                "correct horse battery staple",
                "correct horse battery staple"
            )
            .is_empty()
        );
    }

    #[rstest]
    #[case("short1x", "too short")]
    #[case("12345678901", "entirely numeric")]
    #[case("password", "too common")]
    #[case("Password", "too common")]
    #[case("jane.doe@example", "too similar")]
    #[case("example.com!", "too similar")]
    fn weak_passwords_are_rejected(#[case] pw: &str, #[case] reason: &str) {
        let errors = messages(pw, pw);
        assert!(
            errors.iter().any(|m| m.contains(reason)),
            "{pw}: {errors:?}"
        );
    }

    #[test]
    fn mismatched_confirmation_blames_the_confirm_field() {
        let err = Password::new(
            "Sup3r-secret!",
            "other",
            &email(),
            "password",
            "confirm_password",
        )
        .expect_err("mismatch");
        assert_eq!(err.0[0].field, "confirm_password");
    }

    #[test]
    fn debug_output_hides_the_password() {
        let pw = Password::new("Sup3r-secret!", "Sup3r-secret!", &email(), "p", "c").expect("ok");
        assert!(!format!("{pw:?}").contains("Sup3r"));
    }

    #[test]
    fn quick_ratio_matches_difflib() {
        // difflib.SequenceMatcher(a="abcd", b="bcde").quick_ratio() == 0.75
        assert!((quick_ratio("abcd", "bcde") - 0.75).abs() < 1e-9);
        assert!((quick_ratio("", "") - 1.0).abs() < 1e-9);
    }
}
