//! The media pipeline's core on generated clips: probing good and bad files, and the
//! single-decode ladder with HLS, poster and thumbnails, decoded back to check.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use tempfile::TempDir;
use videoflix::media::{self, MediaError, Outputs, TranscodeOptions};

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

fn transcoded(source: &Path) -> (TempDir, Outputs, media::Probe) {
    transcoded_with(source, "veryfast")
}

/// [`transcoded`] with another x264 preset (`ultrafast` keeps a 1080p ladder quick).
fn transcoded_with(source: &Path, preset: &str) -> (TempDir, Outputs, media::Probe) {
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
fn decode_back(path: &Path) -> (u32, u32, usize, bool, f64) {
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

fn check_outputs(dir: &Path, outputs: &Outputs, expect: &[(u32, u32)], audio: bool, seconds: f64) {
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

#[test]
fn a_clip_with_audio_gets_its_ladder_hls_poster_and_thumbnails() {
    let clips = Clips::new();
    let source = clips.clip("a.mp4", "854x480", 3, false, &[]);
    let (out, outputs, probe) = transcoded(&source);
    assert!(probe.has_audio);
    assert!((probe.duration - 3.0).abs() < 0.1, "{}", probe.duration);
    check_outputs(out.path(), &outputs, &[(640, 360), (854, 480)], true, 3.0);
}

#[test]
fn a_1080p_source_gets_all_four_rungs_cut_at_the_same_segment_boundary() {
    let clips = Clips::new();
    // 5 s: one whole 4 s segment, then the rest, in every rung.
    let source = clips.clip("full.mp4", "1920x1080", 5, false, &[]);
    let (out, outputs, _) = transcoded_with(&source, "ultrafast");
    check_outputs(
        out.path(),
        &outputs,
        &[(640, 360), (854, 480), (1280, 720), (1920, 1080)],
        true,
        5.0,
    );
    for r in &outputs.renditions {
        let playlist = std::fs::read_to_string(out.path().join(&r.playlist)).expect("playlist");
        let lengths: Vec<f64> = playlist
            .lines()
            .filter_map(|l| l.strip_prefix("#EXTINF:"))
            .map(|l| l.trim_end_matches(',').parse().expect("length"))
            .collect();
        assert_eq!(lengths.len(), 2, "{}: {playlist}", r.rendition.name);
        assert!(
            (lengths[0] - 4.0).abs() < 0.04,
            "{}: {lengths:?}",
            r.rendition.name
        );
    }
}

#[test]
fn small_silent_portrait_and_four_by_three_sources() {
    let clips = Clips::new();
    // Below 360p, no audio: one rendition at its own size.
    let small = clips.clip("small.mp4", "320x240", 2, true, &[]);
    let (out, outputs, probe) = transcoded(&small);
    assert!(!probe.has_audio);
    check_outputs(out.path(), &outputs, &[(320, 240)], false, 2.0);

    // Coded 640x360, displayed turned a quarter: the outputs are upright portrait.
    let landscape = clips.clip("landscape.mp4", "640x360", 2, false, &[]);
    let portrait = clips.path("portrait.mp4");
    // FFmpeg 5.1 writes the display matrix from this tag when stream-copying.
    let input = landscape.to_str().expect("utf-8 path");
    ffmpeg(
        &["-i", input, "-c", "copy", "-metadata:s:v:0", "rotate=90"],
        &portrait,
    );
    let probe = media::probe(&portrait, media::DEFAULT_MAX_PIXELS).expect("probe");
    assert_eq!(probe.rotation % 180, 90, "{probe:?}");
    assert_eq!(probe.display_size(), (360, 640));
    let (out, outputs, _) = transcoded(&portrait);
    check_outputs(out.path(), &outputs, &[(360, 640)], true, 2.0);

    // Anamorphic: 720x480 coded with 32:27 pixels is 853x480 on screen (16:9).
    let anamorphic = clips.clip("dvd.mp4", "720x480", 2, false, &["-vf", "setsar=32/27"]);
    let probe = media::probe(&anamorphic, media::DEFAULT_MAX_PIXELS).expect("probe");
    assert_eq!(probe.pixel_aspect, (32, 27));
    assert_eq!(probe.display_size(), (853, 480));
    let (out, outputs, _) = transcoded(&anamorphic);
    // 853 is odd: the even size not above it.
    check_outputs(out.path(), &outputs, &[(640, 360), (852, 480)], true, 2.0);

    // WebM: VP9 and Opus in a millisecond clock.
    let webm = clips.path("w.webm");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30:duration=2",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=2",
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-c:a",
            "libopus",
        ],
        &webm,
    );
    let (out, outputs, probe) = transcoded(&webm);
    assert!((probe.fps - 30.0).abs() < 0.5, "{probe:?}");
    check_outputs(out.path(), &outputs, &[(320, 240)], true, 2.0);

    // Matroska counts time in milliseconds: the audio must keep its timing.
    let matroska = clips.clip("mk.mkv", "640x360", 2, false, &[]);
    let (out, outputs, probe) = transcoded(&matroska);
    assert!(probe.has_audio);
    check_outputs(out.path(), &outputs, &[(640, 360)], true, 2.0);

    let four_three = clips.clip("43.mp4", "640x480", 2, false, &[]);
    let (out, outputs, _) = transcoded(&four_three);
    check_outputs(out.path(), &outputs, &[(480, 360), (640, 480)], true, 2.0);
}

#[test]
fn files_that_are_not_videos_are_refused_by_the_probe() {
    let clips = Clips::new();
    let good = clips.clip("good.mp4", "320x240", 1, false, &[]);
    let bytes = std::fs::read(&good).expect("clip");

    let empty = clips.path("empty.mp4");
    std::fs::write(&empty, b"").expect("write");
    let text = clips.path("x.mp4");
    std::fs::write(&text, "this is not a video\n".repeat(100)).expect("write");
    let truncated = clips.path("truncated.mp4");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).expect("write");
    let noise = clips.path("noise.mp4");
    std::fs::write(
        &noise,
        (0..50_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect::<Vec<u8>>(),
    )
    .expect("write");
    let audio_only = clips.path("tone.m4a");
    ffmpeg(
        &["-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac"],
        &audio_only,
    );
    let image = clips.path("still.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240",
            "-frames:v",
            "1",
            "-c:v",
            "mjpeg",
            "-f",
            "image2",
        ],
        &image,
    );
    // A playlist naming another (real) video: FFmpeg must not follow it.
    let playlist = clips.path("playlist.mp4");
    std::fs::write(
        &playlist,
        format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{}\n#EXT-X-ENDLIST\n",
            good.display()
        ),
    )
    .expect("write");
    for path in [
        &empty,
        &text,
        &truncated,
        &noise,
        &audio_only,
        &image,
        &playlist,
    ] {
        match media::probe(path, media::DEFAULT_MAX_PIXELS) {
            Err(MediaError::NotAVideo(_)) => {}
            other => panic!("{} probed as {other:?}", path.display()),
        }
    }
    assert!(media::probe(&good, media::DEFAULT_MAX_PIXELS).is_ok());
}

#[test]
fn one_and_two_frame_videos_transcode() {
    let clips = Clips::new();
    for frames in ["1", "2"] {
        let source = clips.path(&format!("{frames}-frames.mp4"));
        ffmpeg(
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x240:rate=25",
                "-frames:v",
                frames,
                "-c:v",
                "libx264",
                "-pix_fmt",
                "yuv420p",
            ],
            &source,
        );
        let (out, outputs, _) = transcoded(&source);
        let (w, h, decoded, _, _) = decode_back(&out.path().join(&outputs.renditions[0].mp4));
        assert_eq!((w, h), (320, 240));
        assert_eq!(decoded.to_string(), frames, "every frame is in the output");
        assert!(out.path().join(&outputs.poster).is_file(), "a poster");
        assert_eq!(outputs.sprites.len(), 1, "a sprite sheet");
        let vtt = std::fs::read_to_string(out.path().join(&outputs.vtt)).expect("vtt");
        assert!(vtt.contains("sprite-000.jpg#xywh=0,0,"), "{vtt}");
    }
}

#[test]
fn a_timestamp_jump_past_the_duration_is_not_filled_with_thumbnails() {
    let clips = Clips::new();
    // Four frames at 0–0.12 s and a fifth at 100,000 s, the container's duration patched to 1 s:
    // filled with copies, the thumbnail branch would write sprite sheets without end.
    let gap = clips.path("gap.mkv");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-frames:v",
            "5",
            "-vf",
            "setpts='if(eq(N,4),100000/TB,PTS)'",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-bf",
            "0",
        ],
        &gap,
    );
    let mut bytes = std::fs::read(&gap).expect("mkv");
    // Segment Info's Duration: EBML ID 0x4489, an 8-byte float in milliseconds.
    let at = bytes
        .windows(3)
        .position(|w| w == [0x44, 0x89, 0x88])
        .expect("a duration element");
    bytes[at + 3..at + 11].copy_from_slice(&1000.0f64.to_be_bytes());
    std::fs::write(&gap, &bytes).expect("patch");

    let started = std::time::Instant::now();
    let (out, outputs, probe) = transcoded(&gap);
    assert!((probe.duration - 1.0).abs() < 0.01, "{}", probe.duration);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(outputs.sprites.len(), 1, "{:?}", outputs.sprites);
    let written: u64 = walk(out.path())
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    assert!(written < 5 << 20, "{written} bytes written");
}

/// Every file below `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn a_huge_declared_picture_is_refused_by_the_probe() {
    let clips = Clips::new();
    // 198 KB that declares 8192×8192: decoding it would take hundreds of megabytes.
    let huge = clips.path("huge.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=gray:size=8192x8192:rate=1:duration=1",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ],
        &huge,
    );
    match media::probe(&huge, media::DEFAULT_MAX_PIXELS) {
        Err(MediaError::NotAVideo(why)) => assert!(why.contains("8192×8192"), "{why}"),
        other => panic!("probed as {other:?}"),
    }
    // The limit is a setting: a smaller one refuses a 640×360 source too.
    let small = clips.clip("small.mp4", "640x360", 1, true, &[]);
    assert!(media::probe(&small, 640 * 360).is_ok());
    assert!(matches!(
        media::probe(&small, 640 * 360 - 1),
        Err(MediaError::NotAVideo(_))
    ));
}

#[test]
fn a_stopped_transcode_ends_with_cancelled() {
    let clips = Clips::new();
    let source = clips.clip("a.mp4", "640x360", 2, false, &[]);
    let probe = media::probe(&source, media::DEFAULT_MAX_PIXELS).expect("probe");
    let out = TempDir::new().expect("out");
    let result = media::transcode(
        &source,
        out.path(),
        &probe,
        &TranscodeOptions::default(),
        &mut |_| {},
        &|| true,
    );
    assert!(matches!(result, Err(MediaError::Cancelled)), "{result:?}");
}

/// Mean luma of the left and right halves of the first frame of `path`'s video.
fn left_right_luma(path: &Path) -> (f64, f64) {
    use ffmpeg_next::{codec, media::Type, util::frame};
    let mut input = ffmpeg_next::format::input(path).expect("open");
    let (index, params) = {
        let s = input.streams().best(Type::Video).expect("video");
        (s.index(), s.parameters())
    };
    let mut decoder = codec::context::Context::from_parameters(params)
        .and_then(|c| c.decoder().video())
        .expect("decoder");
    let mut frame = frame::Video::empty();
    for (stream, packet) in input.packets() {
        if stream.index() != index {
            continue;
        }
        decoder.send_packet(&packet).expect("decodes");
        if decoder.receive_frame(&mut frame).is_ok() {
            break;
        }
    }
    if frame.width() == 0 {
        decoder.send_eof().expect("eof");
        decoder.receive_frame(&mut frame).expect("a frame");
    }
    let (w, h, stride) = (
        frame.width() as usize,
        frame.height() as usize,
        frame.stride(0),
    );
    let luma = frame.data(0);
    let (mut left, mut right) = (0u64, 0u64);
    for y in 0..h {
        for x in 0..w {
            let v = u64::from(luma[y * stride + x]);
            if x < w / 2 {
                left += v;
            } else {
                right += v;
            }
        }
    }
    let half = (w / 2 * h) as f64;
    (left as f64 / half, right as f64 / half)
}

#[test]
fn rotation_turns_the_picture_as_players_do() {
    let clips = Clips::new();
    // Coded landscape, white top half, black bottom half; displayed a quarter turn.
    let coded = clips.path("coded.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "color=black:size=640x360:rate=30:duration=1,drawbox=x=0:y=0:w=640:h=180:color=white:t=fill",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ],
        &coded,
    );
    let rotated = clips.path("rotated.mp4");
    let input = coded.to_str().expect("utf-8 path");
    ffmpeg(
        &["-i", input, "-c", "copy", "-metadata:s:v:0", "rotate=90"],
        &rotated,
    );
    // The oracle: the ffmpeg CLI, which rotates by the display matrix as players do, puts the
    // coded top on the left here.
    let reference = clips.path("reference.mp4");
    let input = rotated.to_str().expect("utf-8 path");
    ffmpeg(
        &["-i", input, "-c:v", "libx264", "-preset", "ultrafast"],
        &reference,
    );
    let (ref_left, ref_right) = left_right_luma(&reference);
    assert!(
        ref_left > 200.0 && ref_right < 50.0,
        "{ref_left} {ref_right}"
    );

    let (out, outputs, _) = transcoded(&rotated);
    let (left, right) = left_right_luma(&out.path().join(&outputs.renditions[0].mp4));
    assert!(
        left > 200.0 && right < 50.0,
        "ours: left {left}, right {right}"
    );
}
