//! List order and the opaque keyset page token.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use super::{FieldError, VideoId};

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
    /// Best search match first ([`super::SearchQuery::rank`]), then newest upload: the order
    /// of a search that asks for none.
    Relevance,
}

impl Ordering {
    /// The order of a list with `search`, whose client asked for `raw`: relevance when the
    /// client asked for none.
    pub fn for_request(raw: &str, searching: bool) -> Result<Self, FieldError> {
        if searching && raw.trim().is_empty() {
            return Ok(Self::Relevance);
        }
        Self::parse(raw)
    }

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
            Self::Relevance => "relevance",
        }
    }

    /// Sorted column (after the rank, for [`Ordering::Relevance`]).
    pub fn column(self) -> &'static str {
        match self {
            Self::UploadedDesc | Self::UploadedAsc | Self::Relevance => "uploaded_at",
            Self::UpdatedDesc | Self::UpdatedAsc => "updated_at",
        }
    }

    /// Whether newest comes first.
    pub fn descending(self) -> bool {
        matches!(
            self,
            Self::UploadedDesc | Self::UpdatedDesc | Self::Relevance
        )
    }
}

/// Where the next page starts: after the row with this sort value and id (keyset pagination,
/// so pages stay stable while videos are inserted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PageToken {
    /// The ordering the token was made for.
    pub ordering: Ordering,
    /// Search rank of the last row of the previous page (0 unless [`Ordering::Relevance`]).
    pub rank: i64,
    /// Sort value (microseconds) of that row.
    pub micros: i64,
    /// Id of that row.
    pub id: VideoId,
}

impl PageToken {
    /// Opaque text form (`v1|ordering|micros|id`, and `|rank` for relevance).
    pub fn encode(&self) -> String {
        let mut text = format!("v1|{}|{}|{}", self.ordering.as_str(), self.micros, self.id);
        if self.ordering == Ordering::Relevance {
            text.push_str(&format!("|{}", self.rank));
        }
        URL_SAFE_NO_PAD.encode(text)
    }

    /// Parses a token made for `ordering`.
    pub fn parse(raw: &str, ordering: Ordering) -> Result<Self, FieldError> {
        let invalid = || FieldError::new("page_token", "Invalid page token.");
        let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let parts: Vec<&str> = text.split('|').collect();
        let (version, order, micros, id, rank) = match parts.as_slice() {
            [version, order, micros, id] => (*version, *order, *micros, *id, "0"),
            [version, order, micros, id, rank] if ordering == Ordering::Relevance => {
                (*version, *order, *micros, *id, *rank)
            }
            _ => return Err(invalid()),
        };
        let token_ordering = match order {
            "relevance" => Ordering::Relevance,
            other => Ordering::parse(other).map_err(|_| invalid())?,
        };
        if version != "v1" || token_ordering != ordering {
            return Err(FieldError::new(
                "page_token",
                "The page token belongs to another ordering.",
            ));
        }
        let micros: i64 = micros.parse().map_err(|_| invalid())?;
        let rank: i64 = rank.parse().map_err(|_| invalid())?;
        if !(0..=super::search::WORST_RANK).contains(&rank) {
            return Err(invalid());
        }
        // Within years 1..=9999, as any real row is.
        if !(-62_135_596_800_000_000..=253_402_300_799_999_999).contains(&micros) {
            return Err(invalid());
        }
        Ok(Self {
            ordering,
            rank,
            micros,
            id: id
                .parse()
                .ok()
                .and_then(|id| VideoId::parse(id, "page_token").ok())
                .ok_or_else(invalid)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn page_tokens_round_trip_and_are_bound_to_their_ordering() {
        let token = PageToken {
            ordering: Ordering::UpdatedAsc,
            rank: 0,
            micros: 1_700_000_000_000_000,
            id: VideoId::from_db(42),
        };
        assert_eq!(
            PageToken::parse(&token.encode(), Ordering::UpdatedAsc),
            Ok(token)
        );
        assert!(PageToken::parse(&token.encode(), Ordering::UploadedDesc).is_err());
        let ranked = PageToken {
            ordering: Ordering::Relevance,
            rank: 3,
            ..token
        };
        assert_eq!(
            PageToken::parse(&ranked.encode(), Ordering::Relevance),
            Ok(ranked)
        );
        assert!(PageToken::parse(&ranked.encode(), Ordering::UploadedDesc).is_err());
        assert!(PageToken::parse(&token.encode(), Ordering::Relevance).is_err());
        assert!(PageToken::parse("garbage!", Ordering::UpdatedAsc).is_err());
    }

    proptest! {
        #[test]
        fn page_token_parsing_never_panics(raw in "\\PC{0,60}") {
            let _ = PageToken::parse(&raw, Ordering::UploadedDesc);
        }
    }
}
