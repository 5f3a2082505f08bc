//! The media pipeline's core on generated clips: what its stories (and other files) share —
//! clips made with the ffmpeg CLI, a checked transcode, and the outputs decoded back to check.
//! The stories: the single-decode ladder with HLS, poster and thumbnails in `media_transcode`,
//! probing good and bad files in `media_probe`.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use tempfile::TempDir;
use videoflix::media::{self, Outputs, TranscodeOptions};

/// Runs the ffmpeg CLI (Debian package) to make a clip; arguments are fixed strings.
pub(crate) fn ffmpeg(args: &[&str], out: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .arg(out)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg {args:?}");
}

pub(crate) struct Clips {
    dir: TempDir,
}

impl Clips {
    pub(crate) fn new() -> Self {
        Self {
            dir: TempDir::new().expect("tempdir"),
        }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `seconds` of a test pattern at `size`, with a tone unless `silent`.
    pub(crate) fn clip(
        &self,
        name: &str,
        size: &str,
        seconds: u32,
        silent: bool,
        extra: &[&str],
    ) -> PathBuf {
        let out = self.path(name);
        let video = format!("testsrc2=size={size}:rate=30:duration={seconds}");
        let audio = format!("sine=frequency=440:sample_rate=44100:duration={seconds}");
        let mut args = vec!["-f", "lavfi", "-i", &video];
        if !silent {
            args.extend(["-f", "lavfi", "-i", &audio, "-c:a", "aac"]);
        }
        args.extend([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ]);
        args.extend(extra);
        ffmpeg(&args, &out);
        out
    }
}

pub(crate) fn transcoded(source: &Path) -> (TempDir, Outputs, media::Probe) {
    transcoded_with(source, "veryfast")
}

/// [`transcoded`] with another x264 preset (`ultrafast` keeps a 1080p ladder quick).
pub(crate) fn transcoded_with(source: &Path, preset: &str) -> (TempDir, Outputs, media::Probe) {
    let probe = media::probe(source, media::DEFAULT_MAX_PIXELS).expect("probe");
    let out = TempDir::new().expect("out");
    let options = TranscodeOptions {
        preset: preset.to_owned(),
        ..TranscodeOptions::default()
    };
    let mut steps = Vec::new();
    let outputs = media::transcode(
        source,
        out.path(),
        &probe,
        &options,
        &mut |p| steps.push(p.percent),
        &|| false,
    )
    .expect("transcode");
    assert_eq!(steps.first(), Some(&0.0));
    assert_eq!(steps.last(), Some(&100.0));
    assert!(steps.windows(2).all(|w| w[0] <= w[1]), "{steps:?}");
    (out, outputs, probe)
}

/// Decodes every frame of `path`'s video; returns (width, height, frames, has_audio, seconds).
pub(crate) fn decode_back(path: &Path) -> (u32, u32, usize, bool, f64) {
    use ffmpeg_next::{codec, format, media::Type, util::frame};
    let mut input = format::input(path).expect("open output");
    let (index, params) = {
        let s = input.streams().best(Type::Video).expect("video stream");
        (s.index(), s.parameters())
    };
    let has_audio = input.streams().best(Type::Audio).is_some();
    let seconds = input.duration() as f64 / 1_000_000.0;
    let mut decoder = codec::context::Context::from_parameters(params)
        .and_then(|c| c.decoder().video())
        .expect("decoder");
    let mut frame = frame::Video::empty();
    let (mut frames, mut size) = (0, (0, 0));
    for (stream, packet) in input.packets() {
        if stream.index() == index {
            decoder.send_packet(&packet).expect("decodes");
            while decoder.receive_frame(&mut frame).is_ok() {
                frames += 1;
                size = (frame.width(), frame.height());
            }
        }
    }
    decoder.send_eof().expect("eof");
    while decoder.receive_frame(&mut frame).is_ok() {
        frames += 1;
        size = (frame.width(), frame.height());
    }
    (size.0, size.1, frames, has_audio, seconds)
}

/// Width and height of a JPEG.
fn image_size(path: &Path) -> (u32, u32) {
    let input = ffmpeg_next::format::input(path).expect("image");
    let stream = input.streams().next().expect("stream");
    let params = stream.parameters();
    let decoder = ffmpeg_next::codec::context::Context::from_parameters(params)
        .and_then(|c| c.decoder().video())
        .expect("decoder");
    (decoder.width(), decoder.height())
}

pub(crate) fn check_outputs(
    dir: &Path,
    outputs: &Outputs,
    expect: &[(u32, u32)],
    audio: bool,
    seconds: f64,
) {
    let sizes: Vec<(u32, u32)> = outputs
        .renditions
        .iter()
        .map(|r| (r.rendition.width, r.rendition.height))
        .collect();
    assert_eq!(sizes, expect);
    let master = std::fs::read_to_string(dir.join(&outputs.master_playlist)).expect("master");
    assert!(master.starts_with("#EXTM3U"));
    for r in &outputs.renditions {
        // The MP4 plays: every frame decodes, at the right size, for the whole duration.
        let (w, h, frames, has_audio, duration) = decode_back(&dir.join(&r.mp4));
        assert_eq!((w, h), (r.rendition.width, r.rendition.height), "{}", r.mp4);
        assert_eq!(has_audio, audio, "{}", r.mp4);
        assert!((duration - seconds).abs() < 0.25, "{}: {duration}", r.mp4);
        assert!(frames as f64 >= seconds * 30.0 - 2.0, "{}: {frames}", r.mp4);
        // faststart: the index (moov) precedes the media data (mdat).
        let bytes = std::fs::read(dir.join(&r.mp4)).expect("mp4");
        let find = |tag: &[u8]| bytes.windows(4).position(|w| w == tag);
        assert!(find(b"moov") < find(b"mdat"), "{} is not faststart", r.mp4);
        // HLS: listed in the master, every referenced file exists, segments ≤ 4 s (+ a frame).
        let media = format!("{}/index.m3u8", r.rendition.name);
        assert!(master.contains(&media), "{master}");
        let playlist_path = dir.join(&r.playlist);
        let playlist = std::fs::read_to_string(&playlist_path).expect("playlist");
        assert!(playlist.contains("#EXT-X-ENDLIST"), "{playlist}");
        assert!(
            playlist.contains("#EXT-X-MAP:URI=\"init.mp4\""),
            "{playlist}"
        );
        let base = playlist_path.parent().expect("dir");
        assert!(base.join("init.mp4").is_file());
        let mut total = 0.0;
        for line in playlist.lines() {
            if let Some(len) = line.strip_prefix("#EXTINF:") {
                let len: f64 = len.trim_end_matches(',').parse().expect("duration");
                assert!(len <= 4.05, "segment of {len}s in {playlist}");
                total += len;
            } else if !line.starts_with('#') && !line.is_empty() {
                assert!(base.join(line).is_file(), "{line} missing");
            }
        }
        assert!((total - seconds).abs() < 0.25, "{total}");
    }
    // Poster and thumbnails.
    let poster = std::fs::read(dir.join(&outputs.poster)).expect("poster");
    assert_eq!(&poster[..2], &[0xFF, 0xD8], "poster is a JPEG");
    let vtt = std::fs::read_to_string(dir.join(&outputs.vtt)).expect("vtt");
    assert!(vtt.starts_with("WEBVTT"));
    let layout = outputs.sprite_layout;
    let vtt_dir = dir.join(&outputs.vtt).parent().expect("dir").to_path_buf();
    let mut cues = 0;
    for cue in vtt.split("\n\n").skip(1) {
        let mut lines = cue.lines();
        let times = lines.next().expect("times");
        assert!(times.contains(" --> "), "{cue}");
        let target = lines.next().expect("target");
        let (image, xywh) = target.split_once("#xywh=").expect("xywh");
        assert!(!image.starts_with('/'), "relative to the VTT: {image}");
        let sheet = vtt_dir.join(image);
        let (sw, sh) = image_size(&sheet);
        let v: Vec<u32> = xywh.split(',').map(|n| n.parse().expect("int")).collect();
        assert_eq!((v[2], v[3]), (layout.tile_width, layout.tile_height));
        assert!(
            v[0] + v[2] <= sw && v[1] + v[3] <= sh,
            "{target} outside {sw}x{sh}"
        );
        cues += 1;
    }
    assert_eq!(cues, (seconds / layout.interval).ceil() as usize, "{vtt}");
}
