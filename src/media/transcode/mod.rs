//! The transcode: the source is decoded ONCE. One filter graph rotates the decoded frames, splits
//! them and scales one branch per rendition, plus a poster branch and a thumbnail branch
//! (`fps` + `tile` make the sprite sheets). Each rendition has one H.264 encoder whose packets
//! go to two muxers, a faststart MP4 and an HLS (fMP4) playlist; the audio is encoded once to AAC
//! and the same packets are muxed into every output. A fixed GOP of `segment_seconds` (no scene
//! cut keyframes) keeps HLS segments aligned across renditions, so players can switch.
//!
//! FFmpeg's scaler and codec contexts are not `Send`: a transcode runs on one thread from start
//! to end (the worker gives each job a blocking thread).

mod audio;
mod bounds;
mod video;

use std::{fs, path::Path};

use ffmpeg_next::{
    self as ffmpeg, Dictionary, Packet, Rational, codec, encoder, format, media, util::frame,
};

use self::{
    audio::{AudioPath, audio_frames},
    bounds::Bounds,
    video::{Sinks, VideoFeed, VideoOut, open_outputs, pull_video, write_video_packets},
};
use super::{
    LadderStep, MediaError, Probe, Rendition, SpriteLayout, hls, plan, thumbnail_interval, vtt,
};
use crate::numeric::{to_i32, to_i64, to_u32};

/// Encoder settings of a transcode.
#[derive(Clone, Debug)]
pub struct TranscodeOptions {
    /// The ladder to pick renditions from.
    pub ladder: Vec<LadderStep>,
    /// HLS segment length and keyframe interval, in seconds.
    pub segment_seconds: u32,
    /// AAC bitrate in kbit/s.
    pub audio_kbps: u32,
    /// x264 preset.
    pub preset: String,
    /// Frames x264 looks ahead for rate control. Four encoders at x264's default (40 at
    /// `medium`) need ~930 MB on a 1080p source; 10 keeps a transcode under 600 MB.
    pub lookahead: u32,
}

impl Default for TranscodeOptions {
    fn default() -> Self {
        Self {
            ladder: super::default_ladder(),
            segment_seconds: 4,
            audio_kbps: 128,
            preset: "medium".to_owned(),
            lookahead: 10,
        }
    }
}

/// Where a transcode is.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// 0–100.
    pub percent: f64,
    /// What it is doing.
    pub step: &'static str,
}

/// One rendition's files.
#[derive(Clone, Debug, PartialEq)]
pub struct RenditionFiles {
    /// Size and bitrate.
    pub rendition: Rendition,
    /// Progressive MP4, relative to the output folder.
    pub mp4: String,
    /// HLS media playlist, relative to the output folder.
    pub playlist: String,
    /// Measured average bits per second over the HLS segments (video and audio).
    pub average_bandwidth: u64,
    /// Measured bits per second of the busiest segment.
    pub peak_bandwidth: u64,
    /// RFC 6381 codecs of the rendition, e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: String,
}

/// What a transcode wrote (paths relative to its output folder).
#[derive(Clone, Debug, PartialEq)]
pub struct Outputs {
    /// Seconds, as probed.
    pub duration: f64,
    /// One entry per rendition, smallest first.
    pub renditions: Vec<RenditionFiles>,
    /// HLS master playlist.
    pub master_playlist: String,
    /// Poster JPEG.
    pub poster: String,
    /// Thumbnail index.
    pub vtt: String,
    /// Sprite sheets, in order.
    pub sprites: Vec<String>,
    /// Layout of the sprites.
    pub sprite_layout: SpriteLayout,
}

const SPRITE_COLUMNS: u32 = 10;
const SPRITE_ROWS: u32 = 10;
const TILE_WIDTH: u32 = 320;
/// Sprite sheets a job writes at most: the interval keeps a film under ~200 tiles (2 sheets).
const MAX_SHEETS: usize = 4;
/// How often (in packets) the job checks its output size and time.
const BOUNDS_EVERY: usize = 256;

/// The source's video track, opened for decoding.
struct Input {
    context: format::context::Input,
    index: usize,
    time_base: Rational,
    /// The stream's start time in seconds.
    start: f64,
    decoder: codec::decoder::Video,
}

impl Input {
    fn open(path: &Path) -> Result<Self, MediaError> {
        let context = super::open(path).map_err(|e| MediaError::NotAVideo(e.to_string()))?;
        let (index, time_base, start, params) = {
            let stream = context
                .streams()
                .best(media::Type::Video)
                .ok_or_else(|| MediaError::NotAVideo("no video stream".to_owned()))?;
            let start = if stream.start_time() == ffmpeg::ffi::AV_NOPTS_VALUE {
                0.0
            } else {
                stream.start_time() as f64 * f64::from(stream.time_base())
            };
            (
                stream.index(),
                stream.time_base(),
                start,
                stream.parameters(),
            )
        };
        let mut codec_context = codec::context::Context::from_parameters(params)?;
        codec_context.set_threading(codec::threading::Config {
            kind: codec::threading::Type::Frame,
            count: 0,
            ..Default::default()
        });
        Ok(Self {
            context,
            index,
            time_base,
            start,
            decoder: codec_context.decoder().video()?,
        })
    }
}

/// One transcode under way: the decoders, the graph feed and every output.
struct Run<'a> {
    source: Input,
    audio: Option<AudioPath>,
    feed: VideoFeed<'a>,
    outs: Vec<VideoOut>,
    sinks: Sinks,
}

impl Run<'_> {
    /// Decodes every packet into the outputs, reporting progress; stops when `stop` says so or
    /// the job's bounds are exceeded.
    fn decode(
        &mut self,
        bounds: &Bounds,
        duration: f64,
        progress: &mut dyn FnMut(Progress),
        stop: &dyn Fn() -> bool,
    ) -> Result<(), MediaError> {
        let mut decoded = frame::Video::empty();
        let mut last_percent = -1.0;
        for (n, (stream, packet)) in self.source.context.packets().enumerate() {
            if stop() {
                return Err(MediaError::Cancelled);
            }
            if n % BOUNDS_EVERY == 0 {
                bounds.check(&self.sinks.out_dir)?;
            }
            if stream.index() == self.source.index {
                if self.source.decoder.send_packet(&packet).is_err() {
                    // A damaged packet: skip it, as players do.
                    continue;
                }
                while self.source.decoder.receive_frame(&mut decoded).is_ok() {
                    let fed = self
                        .feed
                        .push(&mut decoded, &mut self.outs, &mut self.sinks)?;
                    if let Some(seconds) = fed {
                        let percent = (seconds / duration * 100.0).clamp(0.0, 99.0);
                        if percent - last_percent >= 1.0 {
                            last_percent = percent;
                            progress(Progress {
                                percent,
                                step: "transcoding",
                            });
                        }
                    }
                }
            } else if let Some(audio) = self.audio.as_mut().filter(|a| a.index == stream.index()) {
                if audio.decoder.send_packet(&packet).is_err() {
                    continue;
                }
                audio_frames(audio, &mut self.outs)?;
            }
        }
        Ok(())
    }

    /// Drains decoders, filters, encoders and muxers; returns where the video track ends
    /// (seconds from the start; the container's duration may include audio beyond it).
    fn drain(&mut self) -> Result<f64, MediaError> {
        let mut decoded = frame::Video::empty();
        self.source.decoder.send_eof()?;
        // With frame threading a short video's frames (all of a one- or two-frame one) come out
        // only now: the graph may not exist yet.
        while self.source.decoder.receive_frame(&mut decoded).is_ok() {
            self.feed
                .push(&mut decoded, &mut self.outs, &mut self.sinks)?;
        }
        let video_end = self.feed.end;
        let graph = self
            .feed
            .graph
            .as_mut()
            .ok_or_else(|| MediaError::NotAVideo("no video frames".to_owned()))?;
        if let Some(mut source) = graph.get("in") {
            // End the stream where its last frame ends, not where it starts: the thumbnail
            // branch's `fps` needs that to take a one-frame video's frame.
            let end = to_i64(
                ((video_end + self.source.start) / f64::from(self.source.time_base)).round(),
            );
            source.source().close(end)?;
        }
        pull_video(graph, &mut self.outs, &mut self.sinks)?;
        for out in &mut self.outs {
            out.encoder.send_eof()?;
            write_video_packets(out)?;
        }
        if let Some(audio) = self.audio.as_mut() {
            audio.finish(&mut self.outs)?;
        }
        for out in &mut self.outs {
            for muxer in &mut out.muxers {
                muxer.write_trailer()?;
            }
        }
        Ok(video_end)
    }
}

/// Transcodes `input` (already probed as `probe`) into `out_dir`, which must exist and be
/// empty. `progress` is called as decoding advances; `stop` is polled between packets.
pub fn transcode(
    input: &Path,
    out_dir: &Path,
    probe: &Probe,
    options: &TranscodeOptions,
    progress: &mut dyn FnMut(Progress),
    stop: &dyn Fn() -> bool,
) -> Result<Outputs, MediaError> {
    super::init();
    let (display_w, display_h) = probe.display_size();
    let renditions = plan(&options.ladder, display_w, display_h);
    let largest = renditions
        .last()
        .cloned()
        .ok_or_else(|| MediaError::NotAVideo("no usable size".to_owned()))?;
    let source = Input::open(input)?;
    let audio = AudioPath::open(&source.context, options.audio_kbps)?;
    let fps = if probe.fps > 0.0 && probe.fps.is_finite() {
        probe.fps
    } else {
        25.0
    };
    let outs = open_outputs(
        out_dir,
        &renditions,
        source.time_base,
        fps,
        options,
        audio.as_ref().map(|a| &a.encoder),
    )?;
    let layout = sprite_layout(probe, display_w, display_h);
    fs::create_dir_all(out_dir.join("thumbs"))?;
    // A quarter in, at most 10 s, and never past the last frame (a one-frame video's poster is
    // its frame).
    let poster_at = source.start
        + (probe.duration * 0.25)
            .min(10.0)
            .min(probe.duration - 1.0 / fps)
            .max(0.0);
    let bounds = Bounds::new(input, probe, options);
    let mut run = Run {
        feed: VideoFeed {
            graph: None,
            time_base: source.time_base,
            rotation: probe.rotation,
            renditions: &renditions,
            largest: &largest,
            layout: &layout,
            poster_at,
            start: source.start,
            last_frame_at: bounds.last_frame_at,
            frame_seconds: 1.0 / fps,
            end: 0.0,
        },
        source,
        audio,
        outs,
        sinks: Sinks {
            poster: None,
            sprites: Vec::new(),
            out_dir: out_dir.to_path_buf(),
        },
    };
    progress(Progress {
        percent: 0.0,
        step: "transcoding",
    });
    run.decode(&bounds, probe.duration, progress, stop)?;
    progress(Progress {
        percent: 99.0,
        step: "finishing",
    });
    let video_end = run.drain()?;
    let has_audio = run.audio.is_some();
    let outputs = index(
        out_dir, run.outs, run.sinks, has_audio, fps, layout, video_end, probe,
    )?;
    progress(Progress {
        percent: 100.0,
        step: "done",
    });
    Ok(outputs)
}

/// The sprite sheets' layout: tiles of the display's aspect, one per thumbnail interval.
fn sprite_layout(probe: &Probe, display_w: u32, display_h: u32) -> SpriteLayout {
    let tile_height = even(to_u32(
        (f64::from(TILE_WIDTH) * f64::from(display_h) / f64::from(display_w.max(1))).round(),
    ));
    SpriteLayout {
        columns: SPRITE_COLUMNS,
        rows: SPRITE_ROWS,
        tile_width: TILE_WIDTH,
        tile_height,
        interval: thumbnail_interval(probe.duration),
    }
}

/// Writes the master playlist (from what was really written) and the thumbnails' index.
#[allow(clippy::too_many_arguments)]
fn index(
    out_dir: &Path,
    mut outs: Vec<VideoOut>,
    sinks: Sinks,
    has_audio: bool,
    fps: f64,
    layout: SpriteLayout,
    video_end: f64,
    probe: &Probe,
) -> Result<Outputs, MediaError> {
    for out in &mut outs {
        hls::measure(out_dir, &mut out.files, has_audio)?;
    }
    let files: Vec<&RenditionFiles> = outs.iter().map(|o| &o.files).collect();
    fs::write(out_dir.join("hls/master.m3u8"), hls::master(&files, fps))?;
    let poster = sinks
        .poster
        .ok_or_else(|| MediaError::NotAVideo("no frame for a poster".to_owned()))?;
    let sprites = sinks.sprites;
    // The fps filter lets one frame through per interval from the start; the last sheet is
    // partly filled.
    let video_duration = if video_end > 0.0 {
        video_end
    } else {
        probe.duration
    };
    let tiles = to_u32(((video_duration - 0.001) / layout.interval).ceil())
        .max(1)
        .min(u32::try_from(sprites.len()).unwrap_or(0) * layout.per_sheet());
    let vtt_text = vtt(&layout, tiles, video_duration, |n| {
        sprites
            .get(n as usize)
            .and_then(|p| p.rsplit('/').next())
            .unwrap_or_default()
            .to_owned()
    });
    fs::write(out_dir.join("thumbs/thumbnails.vtt"), vtt_text)?;
    Ok(Outputs {
        duration: probe.duration,
        renditions: outs.into_iter().map(|o| o.files).collect(),
        master_playlist: "hls/master.m3u8".to_owned(),
        poster,
        vtt: "thumbs/thumbnails.vtt".to_owned(),
        sprites,
        sprite_layout: layout,
    })
}

fn write_to(
    muxer: &mut format::context::Output,
    packet: &Packet,
    stream: usize,
    from: Rational,
) -> Result<(), MediaError> {
    let to = muxer
        .stream(stream)
        .map(|s| s.time_base())
        .ok_or(ffmpeg::Error::StreamNotFound)?;
    let mut copy = packet.clone();
    copy.set_stream(stream);
    copy.set_position(-1);
    copy.rescale_ts(from, to);
    copy.write_interleaved(muxer)?;
    Ok(())
}

fn muxer(
    path: &Path,
    format_name: &str,
    video: &encoder::Video,
    audio: Option<&encoder::Audio>,
    options: Dictionary,
) -> Result<format::context::Output, MediaError> {
    let mut output = format::output_as(path, format_name)?;
    {
        let mut stream = output.add_stream(encoder::find(codec::Id::H264))?;
        stream.set_parameters(video);
        stream.set_time_base(video.time_base());
    }
    if let Some(audio) = audio {
        let mut stream = output.add_stream(encoder::find(codec::Id::AAC))?;
        stream.set_parameters(audio);
        stream.set_time_base(audio.time_base());
    }
    output.write_header_with(options)?;
    Ok(output)
}

fn rate_of(fps: f64) -> Rational {
    // NTSC rates (29.97…) as their exact fractions, else milli-precision.
    let thousandths = (fps * 1001.0).round();
    if (thousandths / 1000.0 - (thousandths / 1000.0).round()).abs() < 1e-9 && fps.fract() != 0.0 {
        Rational(to_i32(thousandths), 1001)
    } else {
        Rational(to_i32((fps * 1000.0).round()), 1000)
    }
}

/// Whether a frame at `pts` lies past `last` seconds from the start (a timestamp jump).
fn past(pts: Option<i64>, time_base: Rational, start: f64, last: f64) -> bool {
    pts.is_some_and(|pts| pts as f64 * f64::from(time_base) - start > last)
}

fn even(n: u32) -> u32 {
    (n & !1).max(2)
}

fn path_text(path: &Path) -> Result<String, MediaError> {
    path.to_str().map(str::to_owned).ok_or_else(|| {
        MediaError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "non UTF-8 media path",
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_past_the_duration_are_told_apart() {
        let tb = Rational(1, 1000);
        assert!(!past(Some(900), tb, 0.0, 1.1));
        assert!(past(Some(100_000_000), tb, 0.0, 1.1));
        assert!(!past(None, tb, 0.0, 1.1));
    }
}
