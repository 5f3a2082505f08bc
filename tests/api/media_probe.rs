//! The probe on generated files: files that are not videos and huge declared pictures are
//! refused.

use videoflix::media::{self, MediaError};

use crate::media::{Clips, ffmpeg};

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
