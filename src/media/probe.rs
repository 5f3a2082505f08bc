//! Probing: is a file a decodable video, and what is in it.

use std::path::Path;

use ffmpeg_next::{self as ffmpeg, codec, format, media, util::frame};

use super::MediaError;

/// What a probe learned about a source.
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    /// Seconds.
    pub duration: f64,
    /// Coded width of the video stream.
    pub width: u32,
    /// Coded height of the video stream.
    pub height: u32,
    /// Clockwise rotation to apply for display: 0, 90, 180 or 270.
    pub rotation: u32,
    /// Pixel aspect ratio (width, height) of the coded frames: 1:1 unless anamorphic.
    pub pixel_aspect: (u32, u32),
    /// Frames per second (average).
    pub fps: f64,
    /// Whether there is an audio stream.
    pub has_audio: bool,
    /// Video codec name.
    pub video_codec: String,
}

impl Probe {
    /// Width and height as displayed: anamorphic pixels made square (the width scaled), then
    /// rotated.
    pub fn display_size(&self) -> (u32, u32) {
        let (num, den) = self.pixel_aspect;
        let width = if num > 0 && den > 0 && num != den {
            let exact = f64::from(self.width) * f64::from(num) / f64::from(den);
            crate::numeric::to_u32(exact.round()).max(1)
        } else {
            self.width
        };
        if self.rotation % 180 == 90 {
            (self.height, width)
        } else {
            (width, self.height)
        }
    }
}

/// How many packets a probe reads, at most, looking for one decodable frame.
const PROBE_PACKETS: usize = 500;

/// The largest picture accepted by default: 8K UHD (7680×4320), 33,177,600 pixels.
pub const DEFAULT_MAX_PIXELS: u64 = 7680 * 4320;

/// Opens `path` and decodes its first video frame. Anything that is not a video FFmpeg can
/// decode (text, a truncated or corrupt file, audio only, a still image) is `NotAVideo`, and so
/// is a picture of more than `max_pixels` — refused from the stream's declared size, before a
/// frame is decoded (a tiny file can declare a huge picture and take gigabytes to decode).
pub fn probe(path: &Path, max_pixels: u64) -> Result<Probe, MediaError> {
    super::init();
    let mut input = super::open(path).map_err(|_| not_video("unknown or corrupt format"))?;
    let stream = VideoStream::best(&input)?;
    // Audio counts only if it can be decoded (else the video is kept, silent).
    let has_audio = input.streams().best(media::Type::Audio).is_some_and(|s| {
        codec::context::Context::from_parameters(s.parameters())
            .and_then(|c| c.decoder().audio())
            .is_ok()
    });
    let mut decoder = video_decoder(stream.parameters, stream.duration, max_pixels)?;
    let codec_name = decoder
        .codec()
        .map(|c| c.name().to_owned())
        .unwrap_or_default();
    let frame = first_frame(&mut input, &mut decoder, stream.index)?;
    too_large(frame.width(), frame.height(), max_pixels)?;
    let container = input.duration();
    let duration = if container > 0 {
        container as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE)
    } else if stream.duration > 0 {
        stream.duration as f64 * f64::from(stream.time_base)
    } else {
        0.0
    };
    if duration <= 0.0 {
        return Err(not_video("no duration"));
    }
    Ok(Probe {
        duration,
        width: frame.width(),
        height: frame.height(),
        rotation: stream.rotation,
        pixel_aspect: pixel_aspect(&frame),
        fps: stream.fps.unwrap_or(25.0),
        has_audio,
        video_codec: codec_name,
    })
}

/// A source refused by the probe, and why.
fn not_video(why: &str) -> MediaError {
    MediaError::NotAVideo(why.to_owned())
}

/// What the probe keeps of the best video stream, which itself borrows the input.
struct VideoStream {
    index: usize,
    parameters: codec::Parameters,
    time_base: ffmpeg::Rational,
    fps: Option<f64>,
    rotation: u32,
    /// In `time_base` units; 0 or less when unknown.
    duration: i64,
}

impl VideoStream {
    fn best(input: &format::context::Input) -> Result<Self, MediaError> {
        let stream = input
            .streams()
            .best(media::Type::Video)
            .ok_or_else(|| not_video("no video stream"))?;
        // The average rate, else the base rate; a "rate" above 240 is a timestamp clock (WebM
        // reports 1000), not frames.
        let sane = |r: Option<f64>| r.filter(|f| *f > 0.0 && *f <= 240.0);
        let fps = sane(rational(stream.avg_frame_rate())).or(sane(rational(stream.rate())));
        Ok(Self {
            index: stream.index(),
            parameters: stream.parameters(),
            time_base: stream.time_base(),
            fps,
            rotation: rotation(&stream),
            duration: stream.duration(),
        })
    }
}

/// A decoder for the video stream, refused before any frame is decoded when its declared picture
/// exceeds `max_pixels` or it is a still image (a JPEG renamed .mp4 demuxes as a one-frame
/// "video").
fn video_decoder(
    parameters: codec::Parameters,
    stream_duration: i64,
    max_pixels: u64,
) -> Result<codec::decoder::Video, MediaError> {
    let decoder = codec::context::Context::from_parameters(parameters)
        .and_then(|c| c.decoder().video())
        .map_err(|_| not_video("no decoder for the video stream"))?;
    too_large(decoder.width(), decoder.height(), max_pixels)?;
    if matches!(
        decoder.id(),
        codec::Id::MJPEG | codec::Id::PNG | codec::Id::BMP | codec::Id::GIF | codec::Id::WEBP
    ) && stream_duration <= 1
    {
        return Err(not_video("a still image"));
    }
    Ok(decoder)
}

/// The first frame of stream `index` within [`PROBE_PACKETS`] packets (then whatever the
/// decoder still holds once drained): a file whose video does not decode is no video.
fn first_frame(
    input: &mut format::context::Input,
    decoder: &mut codec::decoder::Video,
    index: usize,
) -> Result<frame::Video, MediaError> {
    let mut frame = frame::Video::empty();
    let mut decoded = false;
    for (stream, packet) in input.packets().take(PROBE_PACKETS) {
        if stream.index() != index {
            continue;
        }
        if decoder.send_packet(&packet).is_err() {
            continue;
        }
        if decoder.receive_frame(&mut frame).is_ok() {
            decoded = true;
            break;
        }
    }
    if !decoded {
        let _ = decoder.send_eof();
        decoded = decoder.receive_frame(&mut frame).is_ok();
    }
    if !decoded || frame.width() == 0 || frame.height() == 0 {
        return Err(not_video("no decodable video frame"));
    }
    Ok(frame)
}

/// The frame's sample aspect ratio, 1:1 when it is unset or invalid.
fn pixel_aspect(frame: &frame::Video) -> (u32, u32) {
    let sar = frame.aspect_ratio();
    match (
        u32::try_from(sar.numerator()),
        u32::try_from(sar.denominator()),
    ) {
        (Ok(num), Ok(den)) if num > 0 && den > 0 => (num, den),
        _ => (1, 1),
    }
}

fn rational(r: ffmpeg::Rational) -> Option<f64> {
    (r.numerator() > 0 && r.denominator() > 0).then(|| f64::from(r))
}

/// The clockwise display rotation from a stream's display matrix (0 when there is none), as
/// FFmpeg's `av_display_rotation_get` computes it, rounded to a quarter turn.
fn rotation(stream: &format::stream::Stream) -> u32 {
    for side in stream.side_data() {
        if side.kind() != codec::packet::side_data::Type::DisplayMatrix {
            continue;
        }
        let data = side.data();
        if data.len() < 36 {
            return 0;
        }
        let m = |i: usize| {
            let bytes = [
                data[4 * i],
                data[4 * i + 1],
                data[4 * i + 2],
                data[4 * i + 3],
            ];
            f64::from(i32::from_ne_bytes(bytes))
        };
        let scale0 = m(0).hypot(m(3));
        let scale1 = m(1).hypot(m(4));
        if scale0 == 0.0 || scale1 == 0.0 {
            return 0;
        }
        // av_display_rotation_get returns the negation of this angle; the ffmpeg CLI negates it
        // again to get the clockwise turn that displays the frame upright.
        let clockwise = (m(1) / scale1)
            .atan2(m(0) / scale0)
            .to_degrees()
            .rem_euclid(360.0);
        let quarter = crate::numeric::to_u32((clockwise / 90.0).round()) % 4;
        return quarter * 90;
    }
    0
}

/// `NotAVideo` for a picture above `max_pixels`.
fn too_large(width: u32, height: u32, max_pixels: u64) -> Result<(), MediaError> {
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(MediaError::NotAVideo(format!(
            "{width}×{height}, more than the {max_pixels} pixels accepted"
        )));
    }
    Ok(())
}
