//! Catalog search text: stored text and queries folded the same way, so a search matches
//! regardless of case, accents and spacing, identically on both databases.

use unicode_normalization::{UnicodeNormalization as _, char::is_combining_mark};

use super::FieldError;

/// Longest search a client may send, in characters.
pub const MAX_SEARCH_CHARS: usize = 100;

/// Folds `text` for search: compatibility decomposition, lower case (decomposed again: a
/// lower-case letter may be precomposed) with the combining marks
/// dropped ("Café" → "cafe", "ﬁ" → "fi"), runs of white space as one space, trimmed.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text
        .nfkd()
        .flat_map(char::to_lowercase)
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
    {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    out
}

/// A client's search, folded ([`fold`]); never empty. Matches a video whose folded title and
/// description contain it as a substring (partial words included; `%`, `_` and quotes are
/// ordinary characters).
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct SearchQuery(String);

impl SearchQuery {
    /// Parses the `search` parameter: None when blank; control characters and more than
    /// [`MAX_SEARCH_CHARS`] characters are refused.
    pub fn parse(raw: &str) -> Result<Option<Self>, FieldError> {
        if raw.chars().any(char::is_control) {
            return Err(FieldError::new(
                "search",
                "The search text contains control characters.",
            ));
        }
        if raw.trim().chars().count() > MAX_SEARCH_CHARS {
            return Err(FieldError::new(
                "search",
                format!("The search text is longer than {MAX_SEARCH_CHARS} characters."),
            ));
        }
        let folded = fold(raw);
        Ok((!folded.is_empty()).then_some(Self(folded)))
    }

    /// The folded text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Length in characters.
    pub fn chars(&self) -> usize {
        self.0.chars().count()
    }

    /// How well a video whose folded title is `title` matches, best first: 0 the whole title,
    /// 1 the title's start, 2 the start of a later word of the title, 3 elsewhere in the
    /// title, [`WORST_RANK`] only in the description. The store computes the same in SQL.
    pub fn rank(&self, title: &str) -> i64 {
        let q = self.as_str();
        if title == q {
            0
        } else if title.starts_with(q) {
            1
        } else if format!(" {title}").contains(&format!(" {q}")) {
            2
        } else if title.contains(q) {
            3
        } else {
            WORST_RANK
        }
    }
}

/// The rank of a match in the description only.
pub const WORST_RANK: i64 = 4;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn folding_ignores_case_accents_and_spacing() {
        assert_eq!(
            fold("  Crème   BRÛLÉE\tà la\nMinute "),
            "creme brulee a la minute"
        );
        assert_eq!(fold("ﬁlm Ⅻ"), "film xii");
        assert_eq!(fold("Straße 100%_off"), "straße 100%_off");
        assert_eq!(fold(""), "");
    }

    #[test]
    fn blank_searches_are_none_and_bad_ones_are_refused() {
        assert_eq!(SearchQuery::parse("   "), Ok(None));
        assert_eq!(
            SearchQuery::parse(" Café ").map(|q| q.map(|q| q.0)),
            Ok(Some("cafe".to_owned()))
        );
        assert!(SearchQuery::parse("a\u{0}b").is_err());
        assert!(SearchQuery::parse(&"x".repeat(101)).is_err());
        assert!(SearchQuery::parse(&"x".repeat(100)).is_ok());
    }

    proptest! {
        #[test]
        fn folding_is_idempotent(raw in "\\PC{0,40}") {
            let once = fold(&raw);
            prop_assert_eq!(fold(&once), once);
        }
    }
}
