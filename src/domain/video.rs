//! Catalog values: the video id, genres, languages and processing status. Each closed set has
//! one wire name per value, used in JSON, in the database and in events alike.

use std::{fmt, str::FromStr};

use super::FieldError;

/// Declares a closed set of wire names (`"action"`) with parsing and display.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $(#[doc = concat!("`", $wire, "`")] $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The JSON / database form.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $wire),+ }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = ();

            fn from_str(s: &str) -> Result<Self, ()> {
                match s { $($wire => Ok(Self::$variant),)+ _ => Err(()) }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                raw.parse().map_err(|()| {
                    serde::de::Error::custom(format!(
                        concat!("unknown ", stringify!($name), " {:?}"),
                        raw
                    ))
                })
            }
        }
    };
}

pub(crate) use wire_enum;

positive_id!(
    /// Primary key of a video.
    VideoId,
    "video"
);

wire_enum!(
    /// Genre of a video.
    Genre {
        Documentary = "documentary",
        Action = "action",
        Horror = "horror",
        Drama = "drama",
        Technic = "technic",
    }
);

wire_enum!(
    /// Spoken language of a video.
    Language {
        French = "french",
        English = "english",
        German = "german",
    }
);

wire_enum!(
    /// Where a video's media stands.
    VideoStatus {
        Pending = "pending",
        Processing = "processing",
        Ready = "ready",
        Failed = "failed",
    }
);

impl VideoStatus {
    /// Whether nothing follows (the transcode succeeded or gave up).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Ready | Self::Failed)
    }
}

impl Genre {
    /// Parses an optional genre: empty means none.
    pub fn parse_optional(raw: &str) -> Result<Option<Self>, FieldError> {
        parse_optional(raw, "genre", Self::ALL)
    }
}

impl Language {
    /// Parses an optional language: empty means none.
    pub fn parse_optional(raw: &str) -> Result<Option<Self>, FieldError> {
        parse_optional(raw, "language", Self::ALL)
    }
}

fn parse_optional<T: FromStr + Copy + fmt::Display>(
    raw: &str,
    field: &'static str,
    all: &[T],
) -> Result<Option<T>, FieldError> {
    let raw = raw.trim().to_lowercase();
    if raw.is_empty() || raw == "none" {
        return Ok(None);
    }
    raw.parse().map(Some).map_err(|_| {
        let choices: Vec<String> = all.iter().map(ToString::to_string).collect();
        FieldError::new(
            field,
            format!(
                "\"{raw}\" is not a valid choice. Choose one of: {}.",
                choices.join(", ")
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genres_and_languages_parse_their_wire_names_or_none() {
        assert_eq!(Genre::parse_optional("Action"), Ok(Some(Genre::Action)));
        assert_eq!(Genre::parse_optional(""), Ok(None));
        assert!(Genre::parse_optional("comedy").is_err());
        assert_eq!(
            Language::parse_optional("german"),
            Ok(Some(Language::German))
        );
        assert!(Language::parse_optional("klingon").is_err());
    }

    #[test]
    fn wire_names_round_trip_through_json_and_unknown_ones_are_refused() {
        for status in VideoStatus::ALL {
            let json = serde_json::to_string(status).expect("json");
            assert_eq!(json, format!("\"{status}\""));
            assert_eq!(
                serde_json::from_str::<VideoStatus>(&json).ok(),
                Some(*status)
            );
        }
        assert!(serde_json::from_str::<Genre>("\"comedy\"").is_err());
    }

    #[test]
    fn video_ids_are_positive() {
        assert_eq!(VideoId::parse(7, "id").map(VideoId::get), Ok(7));
        assert!(VideoId::parse(0, "id").is_err());
        assert!(VideoId::parse(-1, "video_id").is_err());
    }
}
