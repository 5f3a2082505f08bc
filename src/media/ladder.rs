//! The rendition ladder: which sizes and bitrates a source gets.

use crate::domain::Rung;

/// One rung of the configured ladder: a short-side size and its video bitrate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LadderStep {
    /// Short side in pixels (the "360" of 360p; the width of a portrait video).
    pub size: u32,
    /// Video bitrate in kbit/s.
    pub video_kbps: u32,
}

/// The original's ladder, one step per [`Rung`]: 360p 800k, 480p 1200k, 720p 2500k, 1080p
/// 5000k.
pub fn default_ladder() -> Vec<LadderStep> {
    Rung::ALL
        .iter()
        .map(|rung| LadderStep {
            size: rung.short_side(),
            video_kbps: rung.video_kbps(),
        })
        .collect()
}

/// One output size of a source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendition {
    /// `360p`, `480p`, … (the short side).
    pub name: String,
    /// Output width (even).
    pub width: u32,
    /// Output height (even).
    pub height: u32,
    /// Video bitrate in kbit/s.
    pub video_kbps: u32,
}

/// The renditions of a source displayed at `width`×`height` (after rotation): every step not
/// larger than the source (never upscaled), aspect ratio kept, even dimensions; a source smaller
/// than the smallest step gets one rendition at its own size.
pub fn plan(ladder: &[LadderStep], width: u32, height: u32) -> Vec<Rendition> {
    let short = width.min(height);
    let mut steps: Vec<LadderStep> = ladder.to_vec();
    steps.sort_by_key(|s| s.size);
    steps.dedup_by_key(|s| s.size);
    let fitting: Vec<LadderStep> = steps.iter().copied().filter(|s| s.size <= short).collect();
    let chosen = if fitting.is_empty() {
        steps
            .first()
            .map(|s| LadderStep {
                size: short,
                video_kbps: s.video_kbps,
            })
            .into_iter()
            .collect()
    } else {
        fitting
    };
    chosen
        .into_iter()
        .filter(|s| s.size >= 2)
        .map(|step| {
            let size = even(step.size);
            let (w, h) = if width >= height {
                (scaled(width, size, height).min(even(width)), size)
            } else {
                (size, scaled(height, size, width).min(even(height)))
            };
            Rendition {
                name: format!("{size}p"),
                width: w,
                height: h,
                video_kbps: step.video_kbps,
            }
        })
        .collect()
}

/// `long` scaled by `short_to / short_from`, rounded to an even number (at least 2).
fn scaled(long: u32, short_to: u32, short_from: u32) -> u32 {
    let exact = f64::from(long) * f64::from(short_to) / f64::from(short_from.max(1));
    let rounded = (exact / 2.0).round() * 2.0;
    even(crate::numeric::to_u32(rounded))
}

fn even(n: u32) -> u32 {
    (n & !1).max(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(w: u32, h: u32) -> Vec<(String, u32, u32)> {
        plan(&default_ladder(), w, h)
            .into_iter()
            .map(|r| (r.name, r.width, r.height))
            .collect()
    }

    #[test]
    fn a_1080p_source_gets_the_whole_ladder() {
        assert_eq!(
            sizes(1920, 1080),
            vec![
                ("360p".to_owned(), 640, 360),
                ("480p".to_owned(), 854, 480),
                ("720p".to_owned(), 1280, 720),
                ("1080p".to_owned(), 1920, 1080),
            ]
        );
    }

    #[test]
    fn sources_are_never_upscaled() {
        assert_eq!(
            sizes(854, 480),
            vec![("360p".to_owned(), 640, 360), ("480p".to_owned(), 854, 480)]
        );
        assert_eq!(sizes(320, 240), vec![("240p".to_owned(), 320, 240)]);
        assert_eq!(sizes(321, 181), vec![("180p".to_owned(), 320, 180)]);
    }

    #[test]
    fn portrait_and_four_by_three_keep_their_aspect() {
        assert_eq!(
            sizes(360, 640),
            vec![("360p".to_owned(), 360, 640)],
            "portrait: the short side is the width"
        );
        assert_eq!(
            sizes(640, 480),
            vec![("360p".to_owned(), 480, 360), ("480p".to_owned(), 640, 480)]
        );
    }
}
