//! Catalog values: genres, languages, processing status, validated metadata, list ordering and
//! the opaque page token.

use std::{fmt, str::FromStr};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use super::FieldError;

/// Declares a closed set of wire names (`"action"`) with parsing and display.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The JSON / database form.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $wire),+ }
            }
        }

        impl FromStr for $name {
            type Err = ();

            fn from_str(s: &str) -> Result<Self, ()> {
                match s { $($wire => Ok(Self::$variant),)+ _ => Err(()) }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

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

/// Trimmed text of bounded length. Length and characters are checked on the text as sent, so
/// the API's documented `maxLength` and pattern say exactly what is accepted.
fn bounded(
    raw: &str,
    field: &'static str,
    max: usize,
    required: bool,
) -> Result<String, FieldError> {
    let value = raw.trim();
    if required && value.is_empty() {
        return Err(FieldError::new(field, "This field may not be blank."));
    }
    if raw.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("Ensure this field has no more than {max} characters."),
        ));
    }
    if raw
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(FieldError::new(
            field,
            "This field contains control characters.",
        ));
    }
    Ok(value.to_owned())
}

/// Validated, writable metadata of a video.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoMeta {
    /// 1–150 characters.
    pub title: String,
    /// Up to 1000 characters.
    pub description: String,
    /// Up to 150 characters.
    pub author: String,
    /// Genre, if any.
    pub genre: Option<Genre>,
    /// Language, if any.
    pub language: Option<Language>,
}

/// Raw metadata as a client sent it.
#[derive(Clone, Debug, Default)]
pub struct RawVideoMeta<'a> {
    /// Title.
    pub title: &'a str,
    /// Description.
    pub description: &'a str,
    /// Author.
    pub author: &'a str,
    /// Genre wire name or empty.
    pub genre: &'a str,
    /// Language wire name or empty.
    pub language: &'a str,
}

impl VideoMeta {
    /// Validates every field, reporting all errors at once.
    pub fn parse(raw: &RawVideoMeta<'_>) -> Result<Self, Vec<FieldError>> {
        let title = bounded(raw.title, "title", 150, true);
        let description = bounded(raw.description, "description", 1000, false);
        let author = bounded(raw.author, "author", 150, false);
        let genre = Genre::parse_optional(raw.genre);
        let language = Language::parse_optional(raw.language);
        match (title, description, author, genre, language) {
            (Ok(title), Ok(description), Ok(author), Ok(genre), Ok(language)) => Ok(Self {
                title,
                description,
                author,
                genre,
                language,
            }),
            (t, d, a, g, l) => Err([t.err(), d.err(), a.err(), g.err(), l.err()]
                .into_iter()
                .flatten()
                .collect()),
        }
    }

    /// Text the search matches: lower-cased title and description.
    pub fn search_text(&self) -> String {
        format!("{} {}", self.title, self.description).to_lowercase()
    }
}

/// Sort order of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Ordering {
    /// Newest upload first (default).
    #[default]
    UploadedDesc,
    /// Oldest upload first.
    UploadedAsc,
    /// Most recently updated first.
    UpdatedDesc,
    /// Least recently updated first.
    UpdatedAsc,
}

impl Ordering {
    /// Parses `uploaded_at`, `-uploaded_at`, `updated_at`, `-updated_at` (empty = default).
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        match raw.trim() {
            "" | "-uploaded_at" => Ok(Self::UploadedDesc),
            "uploaded_at" => Ok(Self::UploadedAsc),
            "-updated_at" => Ok(Self::UpdatedDesc),
            "updated_at" => Ok(Self::UpdatedAsc),
            other => Err(FieldError::new(
                "ordering",
                format!(
                    "\"{other}\" is not a valid ordering. Use uploaded_at, -uploaded_at, \
                     updated_at or -updated_at."
                ),
            )),
        }
    }

    /// Wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UploadedDesc => "-uploaded_at",
            Self::UploadedAsc => "uploaded_at",
            Self::UpdatedDesc => "-updated_at",
            Self::UpdatedAsc => "updated_at",
        }
    }

    /// Sorted column.
    pub fn column(self) -> &'static str {
        match self {
            Self::UploadedDesc | Self::UploadedAsc => "uploaded_at",
            Self::UpdatedDesc | Self::UpdatedAsc => "updated_at",
        }
    }

    /// Whether newest comes first.
    pub fn descending(self) -> bool {
        matches!(self, Self::UploadedDesc | Self::UpdatedDesc)
    }
}

/// Where the next page starts: after the row with this sort value and id (keyset pagination,
/// so pages stay stable while videos are inserted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PageToken {
    /// The ordering the token was made for.
    pub ordering: Ordering,
    /// Sort value (microseconds) of the last row of the previous page.
    pub micros: i64,
    /// Id of that row.
    pub id: i64,
}

impl PageToken {
    /// Opaque text form.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "v1|{}|{}|{}",
            self.ordering.as_str(),
            self.micros,
            self.id
        ))
    }

    /// Parses a token made for `ordering`.
    pub fn parse(raw: &str, ordering: Ordering) -> Result<Self, FieldError> {
        let invalid = || FieldError::new("page_token", "Invalid page token.");
        let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let parts: Vec<&str> = text.split('|').collect();
        let [version, order, micros, id] = parts.as_slice() else {
            return Err(invalid());
        };
        if *version != "v1" || Ordering::parse(order).map_err(|_| invalid())? != ordering {
            return Err(FieldError::new(
                "page_token",
                "The page token belongs to another ordering.",
            ));
        }
        let micros: i64 = micros.parse().map_err(|_| invalid())?;
        // Within years 1..=9999, as any real row is.
        if !(-62_135_596_800_000_000..=253_402_300_799_999_999).contains(&micros) {
            return Err(invalid());
        }
        Ok(Self {
            ordering,
            micros,
            id: id.parse().map_err(|_| invalid())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

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
    fn metadata_reports_every_bad_field() {
        let long = "x".repeat(151);
        let errors = VideoMeta::parse(&RawVideoMeta {
            title: "",
            description: &"d".repeat(1001),
            author: &long,
            genre: "comedy",
            language: "english",
        })
        .expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, vec!["title", "description", "author", "genre"]);
    }

    #[test]
    fn page_tokens_round_trip_and_are_bound_to_their_ordering() {
        let token = PageToken {
            ordering: Ordering::UpdatedAsc,
            micros: 1_700_000_000_000_000,
            id: 42,
        };
        assert_eq!(
            PageToken::parse(&token.encode(), Ordering::UpdatedAsc),
            Ok(token)
        );
        assert!(PageToken::parse(&token.encode(), Ordering::UploadedDesc).is_err());
        assert!(PageToken::parse("garbage!", Ordering::UpdatedAsc).is_err());
    }

    proptest! {
        #[test]
        fn page_token_parsing_never_panics(raw in "\\PC{0,60}") {
            let _ = PageToken::parse(&raw, Ordering::UploadedDesc);
        }
    }
}
