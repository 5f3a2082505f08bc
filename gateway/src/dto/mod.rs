//! REST bodies, in the legacy API's JSON shapes (not proto-JSON: numeric ids, plain strings).
//! Request fields default to empty so a missing field is reported by the service's validation,
//! naming the field, instead of as a deserialisation error.

mod account;
mod video;

pub(crate) use account::*;
pub(crate) use video::*;

use crate::pb;

/// A string schema with exactly these values (utoipa's enum derive cannot name `""`).
macro_rules! string_choice {
    ($(#[$meta:meta])* $name:ident: $description:literal, [$($value:literal),+ $(,)?]) => {
        $(#[$meta])*
        #[doc = $description]
        pub(crate) struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($value),+]))
                    .description(Some($description))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use string_choice;

string_choice!(GenreName: "A genre's wire name (`\"\"`: none).",
    ["documentary", "action", "horror", "drama", "technic", ""]);
string_choice!(LanguageName: "A language's wire name (`\"\"`: none).",
    ["french", "english", "german", ""]);

/// RFC 3339 text of a protobuf timestamp.
pub(crate) fn rfc3339(ts: Option<prost_types::Timestamp>) -> String {
    ts.and_then(|t| {
        chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
    })
    .map(|dt| dt.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
    .unwrap_or_default()
}

/// Wire name of a genre enum value, or None.
pub(crate) fn genre_name(value: i32) -> Option<String> {
    match pb::Genre::try_from(value).ok()? {
        pb::Genre::Unspecified => None,
        g => Some(g.as_str_name().trim_start_matches("GENRE_").to_lowercase()),
    }
}

/// Wire name of a language enum value, or None.
pub(crate) fn language_name(value: i32) -> Option<String> {
    match pb::Language::try_from(value).ok()? {
        pb::Language::Unspecified => None,
        l => Some(
            l.as_str_name()
                .trim_start_matches("LANGUAGE_")
                .to_lowercase(),
        ),
    }
}

/// `pending`, `processing`, … of a wire status ('' when unknown).
pub(crate) fn status_name(status: i32) -> String {
    match pb::VideoStatus::try_from(status) {
        Ok(pb::VideoStatus::Unspecified) | Err(_) => String::new(),
        Ok(s) => s
            .as_str_name()
            .trim_start_matches("VIDEO_STATUS_")
            .to_lowercase(),
    }
}
