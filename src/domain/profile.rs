//! Free-text profile fields with sane bounds.

use super::FieldError;

/// A phone number as users type it: digits, spaces and `+ - ( ) . /`, at most 32 characters
/// (empty clears it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    /// Parses a phone number.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let value = raw.trim();
        // Checked as sent: what the API documents is exactly what is accepted.
        if raw.chars().count() > 32 {
            return Err(FieldError::new(
                "phone",
                "Ensure this field has no more than 32 characters.",
            ));
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().\\/".contains(c))
        {
            return Err(FieldError::new(
                "phone",
                "Enter a valid phone number (digits, spaces and + - ( ) . / only).",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// The number as text.
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A postal address: at most 255 characters, no control characters except line breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address(String);

impl Address {
    /// Parses an address.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let value = raw.trim();
        if raw.chars().count() > 255 {
            return Err(FieldError::new(
                "address",
                "Ensure this field has no more than 255 characters.",
            ));
        }
        if raw
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r')
        {
            return Err(FieldError::new(
                "address",
                "The address contains control characters.",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// The address as text.
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A change of the caller's profile: the fields given, each parsed (None = keep).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileChange {
    /// New phone ('' clears it).
    pub phone: Option<Phone>,
    /// New address ('' clears it).
    pub address: Option<Address>,
}

impl ProfileChange {
    /// Parses the fields given, reporting every bad one.
    pub fn parse(phone: Option<&str>, address: Option<&str>) -> Result<Self, Vec<FieldError>> {
        let phone = phone.map(Phone::parse).transpose();
        let address = address.map(Address::parse).transpose();
        match (phone, address) {
            (Ok(phone), Ok(address)) => Ok(Self { phone, address }),
            (phone, address) => Err([phone.err(), address.err()].into_iter().flatten().collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_and_addresses_are_bounded() {
        assert!(Phone::parse("+49 (0) 30 1234-567").is_ok());
        assert!(Phone::parse("").is_ok());
        assert!(Phone::parse("call me").is_err());
        assert!(Phone::parse(&"1".repeat(33)).is_err());
        assert!(Address::parse("Main St 1\n12345 Town").is_ok());
        assert!(Address::parse("a\u{0}b").is_err());
        assert!(Address::parse(&"x".repeat(256)).is_err());
    }
}
