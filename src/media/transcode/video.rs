//! The video path: one filter graph (rotate, split, scale per rendition, poster, sprites), one
//! H.264 encoder per rendition whose packets go to an MP4 and an HLS muxer, and the JPEGs.

use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
};

use ffmpeg_next::{
    self as ffmpeg, Dictionary, Packet, Rational, codec, encoder, filter, format, picture,
    util::frame,
};

use super::{
    MAX_SHEETS, MediaError, RenditionFiles, TranscodeOptions, muxer, past, path_text, rate_of,
    write_to,
};
use crate::{
    media::{Rendition, SpriteLayout},
    numeric::{to_i64, to_u32, to_usize},
};

/// One rendition's encoder and its two muxers.
pub(super) struct VideoOut {
    pub(super) files: RenditionFiles,
    sink: String,
    pub(super) encoder: encoder::Video,
    time_base: Rational,
    frame_duration: i64,
    pub(super) muxers: Vec<format::context::Output>,
}

/// Opens one encoder and two muxers per rendition (folders included), the audio stream in each
/// muxer when there is audio.
pub(super) fn open_outputs(
    out_dir: &Path,
    renditions: &[Rendition],
    time_base: Rational,
    fps: f64,
    options: &TranscodeOptions,
    audio: Option<&encoder::Audio>,
) -> Result<Vec<VideoOut>, MediaError> {
    let gop = to_u32((fps * f64::from(options.segment_seconds)).round()).max(1);
    let hls_dir = out_dir.join("hls");
    let mut outs = Vec::new();
    for (i, rendition) in renditions.iter().enumerate() {
        let encoder = open_x264(rendition, time_base, fps, gop, options)?;
        let time_base = encoder.time_base();
        let frame_duration = to_i64((1.0 / fps / f64::from(time_base)).round().max(1.0));
        let mp4 = format!("{}.mp4", rendition.name);
        let playlist_dir = hls_dir.join(&rendition.name);
        fs::create_dir_all(&playlist_dir)?;
        let playlist = format!("hls/{}/index.m3u8", rendition.name);
        let mut mp4_options = Dictionary::new();
        mp4_options.set("movflags", "+faststart");
        let mut hls_options = Dictionary::new();
        hls_options.set("hls_time", &options.segment_seconds.to_string());
        hls_options.set("hls_playlist_type", "vod");
        hls_options.set("hls_segment_type", "fmp4");
        hls_options.set("hls_flags", "independent_segments");
        hls_options.set("hls_fmp4_init_filename", "init.mp4");
        hls_options.set(
            "hls_segment_filename",
            &path_text(&playlist_dir.join("segment-%05d.m4s"))?,
        );
        let muxers = vec![
            muxer(&out_dir.join(&mp4), "mp4", &encoder, audio, mp4_options)?,
            muxer(
                &out_dir.join(&playlist),
                "hls",
                &encoder,
                audio,
                hls_options,
            )?,
        ];
        outs.push(VideoOut {
            files: RenditionFiles {
                rendition: rendition.clone(),
                mp4,
                playlist,
                average_bandwidth: 0,
                peak_bandwidth: 0,
                codecs: String::new(),
            },
            sink: format!("out{i}"),
            encoder,
            time_base,
            frame_duration,
            muxers,
        });
    }
    Ok(outs)
}

/// Decoded video frames into the filter graph, which is built for the first frame (its size
/// and pixel format); frames past the probed duration are dropped.
pub(super) struct VideoFeed<'a> {
    pub(super) graph: Option<filter::Graph>,
    pub(super) time_base: Rational,
    pub(super) rotation: u32,
    pub(super) renditions: &'a [Rendition],
    pub(super) largest: &'a Rendition,
    pub(super) layout: &'a SpriteLayout,
    pub(super) poster_at: f64,
    /// The video's start time in seconds.
    pub(super) start: f64,
    pub(super) last_frame_at: f64,
    pub(super) frame_seconds: f64,
    /// Where the frames fed so far end, in seconds from the start.
    pub(super) end: f64,
}

impl VideoFeed<'_> {
    /// Feeds `decoded` and encodes what comes out; the frame's time in seconds from the start,
    /// when it has one and was not dropped.
    pub(super) fn push(
        &mut self,
        decoded: &mut frame::Video,
        outs: &mut [VideoOut],
        sinks: &mut Sinks,
    ) -> Result<Option<f64>, MediaError> {
        let pts = decoded.timestamp();
        decoded.set_pts(pts);
        if past(pts, self.time_base, self.start, self.last_frame_at) {
            return Ok(None);
        }
        let graph = match &mut self.graph {
            Some(graph) => graph,
            None => self.graph.insert(video_graph(
                decoded,
                self.time_base,
                self.rotation,
                self.renditions,
                self.largest,
                self.layout,
                self.poster_at,
            )?),
        };
        if let Some(mut source) = graph.get("in") {
            source.source().add(decoded)?;
        }
        pull_video(graph, outs, sinks)?;
        Ok(pts.map(|pts| {
            let seconds = pts as f64 * f64::from(self.time_base) - self.start;
            self.end = self.end.max(seconds + self.frame_seconds);
            seconds
        }))
    }
}

/// Poster and sprite bookkeeping while frames come out of the graph.
pub(super) struct Sinks {
    pub(super) poster: Option<String>,
    pub(super) sprites: Vec<String>,
    pub(super) out_dir: PathBuf,
}

fn video_graph(
    first: &frame::Video,
    time_base: Rational,
    rotation: u32,
    renditions: &[Rendition],
    largest: &Rendition,
    layout: &SpriteLayout,
    poster_at: f64,
) -> Result<filter::Graph, MediaError> {
    let mut graph = filter::Graph::new();
    let pix = first
        .format()
        .descriptor()
        .map(|d| d.name())
        .ok_or(MediaError::NotAVideo("unknown pixel format".to_owned()))?;
    let sar = first.aspect_ratio();
    let sar = if sar.numerator() > 0 && sar.denominator() > 0 {
        sar
    } else {
        Rational(1, 1)
    };
    let args = format!(
        "video_size={}x{}:pix_fmt={pix}:time_base={}/{}:pixel_aspect={}/{}",
        first.width(),
        first.height(),
        time_base.numerator(),
        time_base.denominator(),
        sar.numerator(),
        sar.denominator(),
    );
    let buffer = filter::find("buffer").ok_or(ffmpeg::Error::FilterNotFound)?;
    let buffersink = filter::find("buffersink").ok_or(ffmpeg::Error::FilterNotFound)?;
    graph.add(&buffer, "in", &args)?;
    for i in 0..renditions.len() {
        graph.add(&buffersink, &format!("out{i}"), "")?;
    }
    graph.add(&buffersink, "poster", "")?;
    graph.add(&buffersink, "sprites", "")?;
    let rotate = match rotation {
        90 => "transpose=clock,",
        180 => "hflip,vflip,",
        270 => "transpose=cclock,",
        _ => "",
    };
    let branches = renditions.len() + 2;
    let mut spec = format!("[in]{rotate}split={branches}");
    for i in 0..branches {
        let _ = write!(spec, "[s{i}]");
    }
    for (i, r) in renditions.iter().enumerate() {
        let _ = write!(
            spec,
            ";[s{i}]scale={}:{}:flags=bicubic,setsar=1,format=yuv420p[out{i}]",
            r.width, r.height
        );
    }
    let p = renditions.len();
    let _ = write!(
        spec,
        ";[s{p}]select='eq(n,0)+eq(prev_selected_n,0)*gte(t,{poster_at:.3})',scale={}:{},setsar=1,format=yuvj420p[poster]",
        largest.width, largest.height
    );
    let _ = write!(
        spec,
        ";[s{}]fps=fps=1/{}:round=down:eof_action=pass,scale={}:{},setsar=1,format=yuvj420p,tile={}x{}[sprites]",
        p + 1,
        layout.interval,
        layout.tile_width,
        layout.tile_height,
        layout.columns,
        layout.rows
    );
    let mut parser = graph.output("in", 0)?;
    for i in 0..renditions.len() {
        parser = parser.input(&format!("out{i}"), 0)?;
    }
    parser
        .input("poster", 0)?
        .input("sprites", 0)?
        .parse(&spec)?;
    graph.validate()?;
    Ok(graph)
}

pub(super) fn pull_video(
    graph: &mut filter::Graph,
    outs: &mut [VideoOut],
    sinks: &mut Sinks,
) -> Result<(), MediaError> {
    let mut filtered = frame::Video::empty();
    for out in outs.iter_mut() {
        while let Some(mut sink) = graph.get(&out.sink) {
            if sink.sink().frame(&mut filtered).is_err() {
                break;
            }
            filtered.set_kind(picture::Type::None);
            out.encoder.send_frame(&filtered)?;
            write_video_packets(out)?;
        }
    }
    while let Some(mut sink) = graph.get("poster") {
        if sink.sink().frame(&mut filtered).is_err() {
            break;
        }
        // The first frame, then the one at the poster time if the video gets there (at most
        // two frames come this way): the later one wins.
        fs::write(sinks.out_dir.join("poster.jpg"), jpeg(&filtered)?)?;
        sinks.poster = Some("poster.jpg".to_owned());
    }
    while let Some(mut sink) = graph.get("sprites") {
        if sink.sink().frame(&mut filtered).is_err() {
            break;
        }
        if sinks.sprites.len() >= MAX_SHEETS {
            continue;
        }
        let name = format!("thumbs/sprite-{:03}.jpg", sinks.sprites.len());
        fs::write(sinks.out_dir.join(&name), jpeg(&filtered)?)?;
        sinks.sprites.push(name);
    }
    Ok(())
}

pub(super) fn write_video_packets(out: &mut VideoOut) -> Result<(), MediaError> {
    let mut packet = Packet::empty();
    while out.encoder.receive_packet(&mut packet).is_ok() {
        // libx264 leaves packet durations at 0; HLS segmenting needs them.
        if packet.duration() == 0 {
            packet.set_duration(out.frame_duration);
        }
        for muxer in &mut out.muxers {
            write_to(muxer, &packet, 0, out.time_base)?;
        }
    }
    Ok(())
}

fn open_x264(
    rendition: &Rendition,
    time_base: Rational,
    fps: f64,
    gop: u32,
    options: &TranscodeOptions,
) -> Result<encoder::Video, MediaError> {
    let codec = encoder::find_by_name("libx264").ok_or(ffmpeg::Error::EncoderNotFound)?;
    let mut encoder = codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()?;
    encoder.set_width(rendition.width);
    encoder.set_height(rendition.height);
    encoder.set_format(format::Pixel::YUV420P);
    encoder.set_time_base(time_base);
    encoder.set_frame_rate(Some(rate_of(fps)));
    encoder.set_bit_rate(rendition.video_kbps as usize * 1000);
    encoder.set_gop(gop);
    // Closed GOPs: FFmpeg's libx264 wrapper turns x264's open GOP on unless told otherwise, and
    // an open-GOP keyframe is a non-IDR I slice whose leading B-frames reference the previous
    // segment, so a player switching renditions into it cannot decode it.
    encoder.set_flags(codec::Flags::GLOBAL_HEADER | codec::Flags::CLOSED_GOP);
    let mut dictionary = Dictionary::new();
    dictionary.set("preset", &options.preset);
    dictionary.set("forced-idr", "1");
    // An IDR frame exactly every segment and nowhere else: segments align across renditions
    // and each one decodes on its own.
    // Two threads per encoder: the four encoders keep the cores busy already, and every
    // further thread costs frame buffers (memory) without adding speed.
    dictionary.set(
        "x264-params",
        &format!(
            "keyint={gop}:min-keyint={gop}:scenecut=0:open-gop=0:rc-lookahead={}:threads=2",
            options.lookahead
        ),
    );
    Ok(encoder.open_with(dictionary)?)
}

/// A frame encoded as a JPEG file's bytes.
fn jpeg(frame: &frame::Video) -> Result<Vec<u8>, MediaError> {
    let codec = encoder::find(codec::Id::MJPEG).ok_or(ffmpeg::Error::EncoderNotFound)?;
    let mut encoder = codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()?;
    encoder.set_width(frame.width());
    encoder.set_height(frame.height());
    encoder.set_format(format::Pixel::YUVJ420P);
    encoder.set_time_base(Rational(1, 25));
    // About 1.5 bits per pixel: sharp thumbnails at a modest size.
    let bits = f64::from(frame.width()) * f64::from(frame.height()) * 1.5 * 25.0;
    encoder.set_bit_rate(to_usize(bits));
    let mut encoder = encoder.open_as(codec)?;
    let mut image = frame.clone();
    image.set_pts(Some(0));
    image.set_kind(picture::Type::I);
    encoder.send_frame(&image)?;
    encoder.send_eof()?;
    let mut packet = Packet::empty();
    let mut out = Vec::new();
    while encoder.receive_packet(&mut packet).is_ok() {
        if let Some(data) = packet.data() {
            out.extend_from_slice(data);
        }
    }
    if out.is_empty() {
        return Err(MediaError::Ffmpeg(ffmpeg::Error::InvalidData));
    }
    Ok(out)
}
