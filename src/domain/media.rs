//! A video's media, described once: the ladder's rungs ([`Rung`], with their sizes and bitrates),
//! the renditions a transcode really wrote, and the files of a video ([`Media`]). The store, the
//! pipeline, the ladder planner and both transports read these; a new rung is a new [`Rung`]
//! value (and its column in the migrations).

use serde::{Deserialize, Serialize};

use super::video::wire_enum;

wire_enum!(
    /// A rung of the rendition ladder, by its short side.
    Rung {
        P360 = "360p",
        P480 = "480p",
        P720 = "720p",
        P1080 = "1080p",
    }
);

impl Rung {
    /// Short side in pixels (the 360 of 360p; the width of a portrait video).
    pub fn short_side(self) -> u32 {
        match self {
            Self::P360 => 360,
            Self::P480 => 480,
            Self::P720 => 720,
            Self::P1080 => 1080,
        }
    }

    /// The original's video bitrate of the rung, in kbit/s.
    pub fn video_kbps(self) -> u32 {
        match self {
            Self::P360 => 800,
            Self::P480 => 1200,
            Self::P720 => 2500,
            Self::P1080 => 5000,
        }
    }

    /// The `videos` column holding the rung's progressive MP4 (the original's `hd360` …).
    pub fn column(self) -> &'static str {
        match self {
            Self::P360 => "hd360",
            Self::P480 => "hd480",
            Self::P720 => "hd720",
            Self::P1080 => "hd1080",
        }
    }

    /// The rung a written rendition fills: its own, or the smallest for a source below it.
    pub fn of_rendition(name: &str) -> Self {
        name.parse().unwrap_or(Self::P360)
    }
}

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
    /// The short side in pixels (the 360 of 360p, also for portrait sources).
    pub fn short_side(&self) -> u32 {
        self.width.min(self.height)
    }
}

/// A video's renditions, smallest first; stored as one JSON text column.
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
        self.0.iter().max_by_key(|r| r.short_side())
    }

    /// The rendition whose MP4 is `mp4`.
    pub fn by_mp4(&self, mp4: &str) -> Option<&StoredRendition> {
        self.0.iter().find(|r| r.mp4 == mp4)
    }
}

/// The files of a video, relative to MEDIA_DIR ('' where there is none).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Media {
    /// The uploaded original.
    pub video_file: String,
    /// Poster JPEG.
    pub poster: String,
    /// Thumbnails WebVTT (sprite sheets beside it).
    pub vtt_file: String,
    /// HLS master playlist.
    pub hls: String,
    /// The progressive MP4 of each rung, in [`Rung::ALL`] order.
    pub rungs: RungFiles,
    /// Every rendition written.
    pub renditions: Renditions,
}

/// One file per [`Rung`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RungFiles(std::collections::BTreeMap<Rung, String>);

impl RungFiles {
    /// The rung's file ('' when it has none).
    pub fn get(&self, rung: Rung) -> &str {
        self.0.get(&rung).map_or("", String::as_str)
    }

    /// Sets the rung's file.
    pub fn set(&mut self, rung: Rung, path: String) {
        self.0.insert(rung, path);
    }
}

impl Media {
    /// The media of a finished transcode: `renditions` (paths relative to MEDIA_DIR) fill their
    /// rungs (a source below the smallest rung fills the smallest).
    pub fn finished(
        video_file: String,
        poster: String,
        vtt_file: String,
        hls: String,
        renditions: Vec<StoredRendition>,
    ) -> Self {
        let mut rungs = RungFiles::default();
        for r in &renditions {
            rungs.set(Rung::of_rendition(&r.name), r.mp4.clone());
        }
        Self {
            video_file,
            poster,
            vtt_file,
            hls,
            rungs,
            renditions: Renditions(renditions),
        }
    }

    /// The best file there is, largest rung first, then the original.
    pub fn best_file(&self) -> Option<(Option<Rung>, &str)> {
        Rung::ALL
            .iter()
            .rev()
            .map(|rung| (Some(*rung), self.rungs.get(*rung)))
            .chain([(None, self.video_file.as_str())])
            .find(|(_, path)| !path.is_empty())
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

    #[test]
    fn renditions_fill_their_rungs_and_a_small_source_the_smallest() {
        let media = Media::finished(
            "source".into(),
            String::new(),
            String::new(),
            String::new(),
            vec![rendition("360p", 640, 360), rendition("720p", 1280, 720)],
        );
        assert_eq!(media.rungs.get(Rung::P360), "360p.mp4");
        assert_eq!(media.rungs.get(Rung::P480), "");
        assert_eq!(media.rungs.get(Rung::P720), "720p.mp4");
        assert_eq!(media.best_file(), Some((Some(Rung::P720), "720p.mp4")));
        let small = Media::finished(
            "source".into(),
            String::new(),
            String::new(),
            String::new(),
            vec![rendition("240p", 320, 240)],
        );
        assert_eq!(small.rungs.get(Rung::P360), "240p.mp4");
        let none = Media {
            video_file: "source".into(),
            ..Media::default()
        };
        assert_eq!(none.best_file(), Some((None, "source")));
    }

    #[test]
    fn every_rung_has_its_own_column_and_a_rising_size_and_bitrate() {
        let columns: std::collections::HashSet<_> = Rung::ALL.iter().map(|r| r.column()).collect();
        assert_eq!(columns.len(), Rung::ALL.len());
        assert!(Rung::ALL.windows(2).all(
            |w| w[0].short_side() < w[1].short_side() && w[0].video_kbps() < w[1].video_kbps()
        ));
    }
}
