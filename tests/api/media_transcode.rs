//! The single-decode ladder on generated clips: HLS, poster and thumbnails decoded back to
//! check, odd sources (small, silent, portrait, anamorphic, WebM, Matroska, 4:3, one or two
//! frames, a timestamp jump, rotation), and a stopped transcode.

use std::path::{Path, PathBuf};

use tempfile::TempDir;
use videoflix::media::{self, MediaError, TranscodeOptions};

use crate::media::{Clips, check_outputs, decode_back, ffmpeg, transcoded, transcoded_with};

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
