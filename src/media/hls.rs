//! The HLS master playlist, written from what the transcode really produced: each variant's
//! measured bandwidth (peak and average over its segments), its RFC 6381 `CODECS` read from the
//! encoder's own `avcC` record, its resolution and frame rate (Apple's HLS authoring rules; hls.js
//! and Safari choose variants from these).

use crate::numeric::to_u64;
use std::{fmt::Write as _, fs, path::Path};

use super::{MediaError, transcode::RenditionFiles};

/// The AAC encoder is FFmpeg's native one, which writes AAC-LC (object type 2).
const AAC_LC: &str = "mp4a.40.2";

/// Fills in `files`' measured bandwidths and codecs from its playlist, segments and init
/// segment under `out_dir`.
pub(crate) fn measure(
    out_dir: &Path,
    files: &mut RenditionFiles,
    with_audio: bool,
) -> Result<(), MediaError> {
    let playlist_path = out_dir.join(&files.playlist);
    let folder = playlist_path.parent().unwrap_or(out_dir);
    let playlist = fs::read_to_string(&playlist_path)?;
    let mut total_bits = 0.0;
    let mut total_seconds = 0.0;
    let mut peak: f64 = 0.0;
    for (seconds, segment) in segments(&playlist) {
        let bits = fs::metadata(folder.join(segment))?.len() as f64 * 8.0;
        total_bits += bits;
        total_seconds += seconds;
        if seconds > 0.0 {
            peak = peak.max(bits / seconds);
        }
    }
    let average = if total_seconds > 0.0 {
        total_bits / total_seconds
    } else {
        0.0
    };
    files.average_bandwidth = to_u64(average.round());
    files.peak_bandwidth = to_u64(peak.max(average).round());
    let init = fs::read(folder.join("init.mp4"))?;
    let video = avc_codec(&init).ok_or_else(|| {
        MediaError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no avcC record in the HLS init segment",
        ))
    })?;
    files.codecs = if with_audio {
        format!("{video},{AAC_LC}")
    } else {
        video
    };
    Ok(())
}

/// `(duration, segment URI)` of each segment of a media playlist.
fn segments(playlist: &str) -> Vec<(f64, &str)> {
    let mut out = Vec::new();
    let mut duration = None;
    for line in playlist.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            duration = rest
                .split(',')
                .next()
                .and_then(|d| d.trim().parse::<f64>().ok());
        } else if !line.is_empty() && !line.starts_with('#') {
            out.push((duration.take().unwrap_or(0.0), line));
        }
    }
    out
}

/// `avc1.PPCCLL` from the first `avcC` box in an MP4 (profile, constraint flags, level).
pub(crate) fn avc_codec(mp4: &[u8]) -> Option<String> {
    let at = mp4.windows(4).position(|w| w == b"avcC")?;
    // avcC: configurationVersion (1), then profile_idc, constraint flags, level_idc.
    let record = mp4.get(at + 4..at + 8)?;
    if record[0] != 1 {
        return None;
    }
    Some(format!(
        "avc1.{:02x}{:02x}{:02x}",
        record[1], record[2], record[3]
    ))
}

/// The master playlist of `variants` (smallest first) at `fps` frames per second.
pub(crate) fn master(variants: &[&RenditionFiles], fps: f64) -> String {
    let mut master = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for v in variants {
        let r = &v.rendition;
        let _ = write!(
            master,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\",\
             RESOLUTION={}x{},FRAME-RATE={fps:.3}\n{}/index.m3u8\n",
            v.peak_bandwidth.max(1),
            v.average_bandwidth.max(1),
            v.codecs,
            r.width,
            r.height,
            r.name
        );
    }
    master
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::Rendition;

    #[test]
    fn segments_pair_each_uri_with_its_duration() {
        let playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"init.mp4\"\n\
                        #EXTINF:4.000000,\nsegment-00000.m4s\n#EXTINF:1.500000,\n\
                        segment-00001.m4s\n#EXT-X-ENDLIST\n";
        assert_eq!(
            segments(playlist),
            vec![(4.0, "segment-00000.m4s"), (1.5, "segment-00001.m4s")]
        );
    }

    #[test]
    fn the_codec_string_comes_from_the_avcc_record() {
        let mut mp4 = b"....stsd....avc1....".to_vec();
        mp4.extend_from_slice(b"avcC\x01\x64\x00\x1f\xff");
        assert_eq!(avc_codec(&mp4).as_deref(), Some("avc1.64001f"));
        assert_eq!(avc_codec(b"no record here"), None);
        assert_eq!(avc_codec(b"avcC\x00\x64\x00\x1f"), None, "unknown version");
    }

    #[test]
    fn the_master_names_every_attribute_players_choose_by() {
        let files = RenditionFiles {
            rendition: Rendition {
                name: "480p".to_owned(),
                width: 854,
                height: 480,
                video_kbps: 1200,
            },
            mp4: "480p.mp4".to_owned(),
            playlist: "hls/480p/index.m3u8".to_owned(),
            average_bandwidth: 1_000_000,
            peak_bandwidth: 1_400_000,
            codecs: "avc1.64001e,mp4a.40.2".to_owned(),
        };
        assert_eq!(
            master(&[&files], 25.0),
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=1400000,AVERAGE-BANDWIDTH=1000000,\
             CODECS=\"avc1.64001e,mp4a.40.2\",RESOLUTION=854x480,FRAME-RATE=25.000\n\
             480p/index.m3u8\n"
        );
    }
}
