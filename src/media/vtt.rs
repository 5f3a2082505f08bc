//! Preview thumbnails: the sprite-sheet layout and its WebVTT index (`sprite.jpg#xywh=x,y,w,h`,
//! the form Plyr and video.js read).

use std::fmt::Write as _;

/// Thumbnails stay under about this many per video.
pub(crate) const MAX_TILES: f64 = 200.0;

/// How thumbnails are laid out on sheets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpriteLayout {
    /// Tiles per row.
    pub columns: u32,
    /// Rows per sheet.
    pub rows: u32,
    /// Tile width in pixels.
    pub tile_width: u32,
    /// Tile height in pixels.
    pub tile_height: u32,
    /// Seconds between thumbnails.
    pub interval: f64,
}

impl SpriteLayout {
    /// Tiles on one sheet.
    pub fn per_sheet(&self) -> u32 {
        self.columns * self.rows
    }
}

/// Seconds between thumbnails for a video of `duration` seconds: a whole number of seconds (at
/// least 1) from a fixed set, the smallest that keeps the count under `MAX_TILES` (200).
pub fn thumbnail_interval(duration: f64) -> f64 {
    const CHOICES: [f64; 12] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
    ];
    CHOICES
        .into_iter()
        .find(|i| duration / i <= MAX_TILES)
        .unwrap_or_else(|| (duration / MAX_TILES).ceil())
}

/// The WebVTT index of `tiles` thumbnails on sheets named by `sheet_name(n)` (paths relative to
/// the VTT file), for a video of `duration` seconds.
pub fn vtt(
    layout: &SpriteLayout,
    tiles: u32,
    duration: f64,
    sheet_name: impl Fn(u32) -> String,
) -> String {
    let mut out = String::from("WEBVTT\n");
    for k in 0..tiles {
        let start = f64::from(k) * layout.interval;
        if start >= duration && k > 0 {
            break;
        }
        let end = (start + layout.interval).min(duration.max(start + 0.001));
        let sheet = k / layout.per_sheet();
        let index = k % layout.per_sheet();
        let x = (index % layout.columns) * layout.tile_width;
        let y = (index / layout.columns) * layout.tile_height;
        let _ = write!(
            out,
            "\n{} --> {}\n{}#xywh={x},{y},{},{}\n",
            timestamp(start),
            timestamp(end),
            sheet_name(sheet),
            layout.tile_width,
            layout.tile_height,
        );
    }
    out
}

/// `HH:MM:SS.mmm` (hours grow past two digits if they must).
fn timestamp(seconds: f64) -> String {
    // Rounded to whole milliseconds; negative or NaN input is clamped to zero.
    let millis = crate::numeric::to_u64((seconds.max(0.0) * 1000.0).round());
    let (h, rest) = (millis / 3_600_000, millis % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, ms) = (rest / 1000, rest % 1000);
    format!("{h:02}:{m:02}:{s:02}.{ms:03}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_cover_any_length() {
        assert_eq!(timestamp(0.0), "00:00:00.000");
        assert_eq!(timestamp(61.5), "00:01:01.500");
        assert_eq!(timestamp(3600.0 * 2.0 + 59.9994), "02:00:59.999");
        assert_eq!(timestamp(3600.0 * 123.0), "123:00:00.000");
    }

    #[test]
    fn long_films_stay_under_two_hundred_tiles() {
        assert_eq!(thumbnail_interval(3.0), 1.0);
        assert_eq!(thumbnail_interval(200.0), 1.0);
        assert_eq!(thumbnail_interval(201.0), 2.0);
        for duration in [90.0 * 60.0, 3.0 * 3600.0, 48.0 * 3600.0] {
            assert!(
                duration / thumbnail_interval(duration) <= MAX_TILES,
                "{duration}"
            );
        }
    }

    #[test]
    fn cues_address_tiles_across_sheets() {
        let layout = SpriteLayout {
            columns: 2,
            rows: 2,
            tile_width: 320,
            tile_height: 180,
            interval: 5.0,
        };
        let text = vtt(&layout, 5, 23.0, |n| format!("sprite-{n:03}.jpg"));
        let cues: Vec<&str> = text.split("\n\n").skip(1).collect();
        assert_eq!(cues.len(), 5);
        assert_eq!(
            cues[0],
            "00:00:00.000 --> 00:00:05.000\nsprite-000.jpg#xywh=0,0,320,180"
        );
        assert_eq!(
            cues[3],
            "00:00:15.000 --> 00:00:20.000\nsprite-000.jpg#xywh=320,180,320,180"
        );
        assert_eq!(
            cues[4].trim_end(),
            "00:00:20.000 --> 00:00:23.000\nsprite-001.jpg#xywh=0,0,320,180"
        );
        assert!(text.starts_with("WEBVTT\n"));
    }
}
