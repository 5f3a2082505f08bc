//! Catalog routes: `/api/videos/…` reads ([`read`]), admin writes and uploads ([`write`]), and
//! the caller's own favorites, progress and status stream ([`mine`]). The gateway translates
//! text into the contract's types; what values mean is the service's to decide.

pub(crate) mod mine;
pub(crate) mod read;
pub(crate) mod write;

use axum::http::Uri;

use crate::{
    ApiError,
    dto::{VideoDto, genre_name, language_name},
    pb,
};

type ApiResult<T> = Result<T, ApiError>;

pub(super) fn bad(field: &str, message: &str) -> ApiError {
    ApiError::field(field, message)
}

/// An integer parameter, exactly (present but empty, or padded, is not an integer).
pub(super) fn parse_i64(raw: Option<&str>, field: &str) -> ApiResult<Option<i64>> {
    match raw {
        None => Ok(None),
        Some(s) => s
            .parse::<i64>()
            .map(Some)
            .map_err(|_| bad(field, "A valid integer is required.")),
    }
}

pub(super) fn parse_bool(raw: Option<&str>, field: &str) -> ApiResult<bool> {
    match raw {
        None | Some("" | "false" | "False" | "0" | "no") => Ok(false),
        Some("true" | "True" | "1" | "yes") => Ok(true),
        Some(_) => Err(bad(field, "Must be true or false.")),
    }
}

pub(super) fn parse_time(
    raw: Option<&str>,
    field: &str,
) -> ApiResult<Option<prost_types::Timestamp>> {
    let Some(s) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let parsed = chrono::DateTime::parse_from_rfc3339(s)
        .map(|dt| dt.with_timezone(&chrono::Utc))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        })
        .map_err(|_| bad(field, "Enter a valid date/time (RFC 3339 or YYYY-MM-DD)."))?;
    Ok(Some(prost_types::Timestamp {
        seconds: parsed.timestamp(),
        nanos: i32::try_from(parsed.timestamp_subsec_nanos()).unwrap_or(0),
    }))
}

/// The contract's value of a genre name: its exact wire name (as the original's choice field:
/// `drama`, not `Drama`), `""` for none, and for anything else a value no genre has, so the
/// service refuses it as it refuses it from any client.
pub(super) fn genre_value(raw: Option<&str>) -> i32 {
    let Some(s) = raw.filter(|s| !s.is_empty()) else {
        return pb::Genre::Unspecified as i32;
    };
    pb::Genre::from_str_name(&format!("GENRE_{}", s.to_uppercase()))
        .filter(|g| *g != pb::Genre::Unspecified && genre_name(*g as i32).as_deref() == Some(s))
        .map_or(-1, |g| g as i32)
}

/// The contract's value of a language name (see [`genre_value`]).
pub(super) fn language_value(raw: Option<&str>) -> i32 {
    let Some(s) = raw.filter(|s| !s.is_empty()) else {
        return pb::Language::Unspecified as i32;
    };
    pb::Language::from_str_name(&format!("LANGUAGE_{}", s.to_uppercase()))
        .filter(|l| {
            *l != pb::Language::Unspecified && language_name(*l as i32).as_deref() == Some(s)
        })
        .map_or(-1, |l| l as i32)
}

/// A path's video id: an integer (which ids exist is the service's answer).
pub(super) fn video_id(raw: &str) -> ApiResult<i64> {
    raw.trim()
        .parse::<i64>()
        .map_err(|_| bad("id", "A valid integer id is required."))
}

/// Absolute URL of this request under `base` (PUBLIC_URL) with `page` replaced (DRF's
/// `next`/`previous`). The client's `Host` header is never used: `Host: evil.example` must not
/// make the links point elsewhere.
pub(super) fn page_url(base: &str, uri: &Uri, page: i64) -> String {
    let mut pairs: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
                .filter(|(k, _)| *k != "page" && !k.is_empty())
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    pairs.push(("page".to_owned(), page.to_string()));
    let query: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{base}{}?{}", uri.path(), query.join("&"))
}

/// Every page of a cursor-paged list, as one array. A video that moved behind the cursor
/// meanwhile (edited, with `updated_at` ordering) is kept once, where it was first seen.
pub(super) async fn all_pages<F, Fut>(mut page: F) -> ApiResult<Vec<VideoDto>>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<pb::Video>, String), tonic::Status>>,
{
    let (first, next) = page(String::new()).await?;
    more_pages(first, next, page).await
}

/// The first page and every page after `token`, as one array (see [`all_pages`]).
pub(super) async fn more_pages<F, Fut>(
    first: Vec<pb::Video>,
    mut token: String,
    mut page: F,
) -> ApiResult<Vec<VideoDto>>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<pb::Video>, String), tonic::Status>>,
{
    let mut seen = std::collections::HashSet::new();
    let mut all: Vec<VideoDto> = first
        .into_iter()
        .filter(|v| seen.insert(v.id))
        .map(VideoDto::from)
        .collect();
    while !token.is_empty() {
        let (videos, next) = page(token).await?;
        all.extend(
            videos
                .into_iter()
                .filter(|v| seen.insert(v.id))
                .map(VideoDto::from),
        );
        token = next;
    }
    Ok(all)
}
