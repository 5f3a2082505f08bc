//! Validated, writable metadata of a video.

use super::{FieldError, Genre, Language};

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

    /// Text the search matches: title and description, folded ([`super::fold_search`]).
    pub fn search_text(&self) -> String {
        super::fold_search(&format!("{} {}", self.title, self.description))
    }

    /// The folded title, which search results are ranked by.
    pub fn search_title(&self) -> String {
        super::fold_search(&self.title)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
