//! The renditions a video really has, kept as one JSON text column (`videos.renditions`).

use serde::{Deserialize, Serialize};

/// One rendition a transcode wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRendition {
    /// `360p`, `480p`, … or a small source's own size (`240p`).
    pub name: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Measured average bits per second (video and audio).
    pub bitrate: u64,
    /// Progressive MP4, relative to MEDIA_DIR.
    pub mp4: String,
    /// HLS media playlist, relative to MEDIA_DIR.
    pub playlist: String,
}

impl StoredRendition {
    /// The rung: the short side in pixels (the 360 of 360p, also for portrait sources).
    pub fn rung(&self) -> u32 {
        self.width.min(self.height)
    }
}

/// A video's renditions, smallest first; decoded from and encoded to the column's JSON text.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Renditions(pub Vec<StoredRendition>);

impl TryFrom<String> for Renditions {
    type Error = serde_json::Error;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        if text.is_empty() {
            return Ok(Self::default());
        }
        serde_json::from_str(&text).map(Self)
    }
}

impl From<Renditions> for String {
    fn from(list: Renditions) -> Self {
        list.to_json()
    }
}

impl Renditions {
    /// The column's text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "[]".to_owned())
    }

    /// The largest rendition.
    pub fn best(&self) -> Option<&StoredRendition> {
        self.0.iter().max_by_key(|r| r.rung())
    }

    /// The rendition whose MP4 is `mp4`.
    pub fn by_mp4(&self, mp4: &str) -> Option<&StoredRendition> {
        self.0.iter().find(|r| r.mp4 == mp4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendition(name: &str, width: u32, height: u32) -> StoredRendition {
        StoredRendition {
            name: name.to_owned(),
            width,
            height,
            bitrate: 1,
            mp4: format!("{name}.mp4"),
            playlist: format!("hls/{name}/index.m3u8"),
        }
    }

    #[test]
    fn the_column_text_round_trips_and_empty_means_none() {
        let list = Renditions(vec![
            rendition("360p", 640, 360),
            rendition("720p", 1280, 720),
        ]);
        let text = String::from(list.clone());
        assert_eq!(Renditions::try_from(text).ok(), Some(list));
        assert_eq!(
            Renditions::try_from(String::new()).ok(),
            Some(Renditions::default())
        );
        assert!(Renditions::try_from("{".to_owned()).is_err());
    }

    #[test]
    fn the_best_is_the_largest_short_side_also_for_portrait() {
        let list = Renditions(vec![
            rendition("360p", 360, 640),
            rendition("480p", 480, 854),
        ]);
        assert_eq!(list.best().map(|r| r.name.as_str()), Some("480p"));
        assert_eq!(Renditions::default().best(), None);
    }
}
