//! The transcode: the source is decoded ONCE. One filter graph rotates the decoded frames, splits
//! them and scales one branch per rendition, plus a poster branch and a thumbnail branch
//! (`fps` + `tile` make the sprite sheets). Each rendition has one H.264 encoder whose packets
//! go to two muxers, a faststart MP4 and an HLS (fMP4) playlist; the audio is encoded once to AAC
//! and the same packets are muxed into every output. A fixed GOP of `segment_seconds` (no scene
//! cut keyframes) keeps HLS segments aligned across renditions, so players can switch.
//!
//! FFmpeg's scaler and codec contexts are not `Send`: a transcode runs on one thread from start
//! to end (the worker gives each job a blocking thread).

use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
};

use ffmpeg_next::{
    self as ffmpeg, ChannelLayout, Dictionary, Packet, Rational, codec, encoder, filter, format,
    media, picture, util::frame,
};

use super::{
    LadderStep, MediaError, Probe, Rendition, SpriteLayout, hls, plan, thumbnail_interval, vtt,
};

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

/// What a job may spend on a source: bytes written and wall time, both from the probed
/// duration (and, for bytes, the source's size), so a crafted file cannot fill the disk or hold
/// a worker for ever.
struct Bounds {
    max_bytes: u64,
    deadline: std::time::Instant,
    /// Frames after this (seconds from the start) are dropped: a timestamp jump past the
    /// probed duration is not filled with copies.
    last_frame_at: f64,
}

impl Bounds {
    fn new(input: &Path, probe: &Probe, options: &TranscodeOptions) -> Self {
        let ladder_kbps: u64 = options
            .ladder
            .iter()
            .map(|s| u64::from(s.video_kbps) + u64::from(options.audio_kbps))
            .sum();
        // A declared duration can be anything: at most a few days counts.
        let seconds = probe.duration.clamp(1.0, 400_000.0);
        // Four times what the ladder's bitrates make of the duration, or of the source, plus
        // room for posters, sprites and playlists.
        let by_duration = (ladder_kbps as f64 * 1000.0 / 8.0 * seconds * 4.0) as u64;
        let by_source = fs::metadata(input).map_or(0, |m| m.len()).saturating_mul(4);
        Self {
            max_bytes: by_duration.max(by_source) + (64 << 20),
            deadline: std::time::Instant::now()
                + std::time::Duration::from_secs_f64(120.0 + seconds * 20.0),
            last_frame_at: probe.duration + (probe.duration * 0.1).max(1.0),
        }
    }

    fn check(&self, out_dir: &Path) -> Result<(), MediaError> {
        if std::time::Instant::now() > self.deadline {
            return Err(MediaError::Exceeded(
                "it took far longer than its duration allows".to_owned(),
            ));
        }
        let written = dir_size(out_dir);
        if written > self.max_bytes {
            return Err(MediaError::Exceeded(format!(
                "its outputs grew past {} MB",
                self.max_bytes >> 20
            )));
        }
        Ok(())
    }
}

/// Bytes of the files below `dir`.
fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => pending.push(entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

struct VideoOut {
    files: RenditionFiles,
    sink: String,
    encoder: encoder::Video,
    time_base: Rational,
    frame_duration: i64,
    muxers: Vec<format::context::Output>,
}

struct AudioPath {
    index: usize,
    /// Time base of the stream: decoded frames carry timestamps in it.
    time_base: Rational,
    decoder: codec::decoder::Audio,
    encoder: encoder::Audio,
    graph: Option<filter::Graph>,
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
    let mut ictx = super::open(input).map_err(|e| MediaError::NotAVideo(e.to_string()))?;
    let (video_index, video_tb, start_seconds, video_params) = {
        let stream = ictx
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
    let mut video_decoder = {
        let mut context = codec::context::Context::from_parameters(video_params)?;
        context.set_threading(codec::threading::Config {
            kind: codec::threading::Type::Frame,
            count: 0,
            ..Default::default()
        });
        context.decoder().video()?
    };

    // Audio: decoded and encoded once.
    // An audio track FFmpeg cannot decode is left out: the video still plays, silent.
    let mut audio = match ictx.streams().best(media::Type::Audio) {
        Some(stream) => match codec::context::Context::from_parameters(stream.parameters())
            .and_then(|c| c.decoder().audio())
        {
            Ok(decoder) => Some(AudioPath {
                index: stream.index(),
                time_base: stream.time_base(),
                decoder,
                encoder: open_aac(options.audio_kbps)?,
                graph: None,
            }),
            Err(e) => {
                tracing::warn!(error = %e, "undecodable audio track left out");
                None
            }
        },
        None => None,
    };

    // Encoders and muxers, one encoder and two muxers per rendition.
    let fps = if probe.fps > 0.0 && probe.fps.is_finite() {
        probe.fps
    } else {
        25.0
    };
    let gop = ((fps * f64::from(options.segment_seconds)).round() as u32).max(1);
    let hls_dir = out_dir.join("hls");
    fs::create_dir_all(&hls_dir)?;
    let mut outs = Vec::new();
    for (i, rendition) in renditions.iter().enumerate() {
        let encoder = open_x264(rendition, video_tb, fps, gop, options)?;
        let time_base = encoder.time_base();
        let frame_duration = (1.0 / fps / f64::from(time_base)).round().max(1.0) as i64;
        let mp4 = format!("{}.mp4", rendition.name);
        let playlist_dir = hls_dir.join(&rendition.name);
        fs::create_dir_all(&playlist_dir)?;
        let playlist = format!("hls/{}/index.m3u8", rendition.name);
        let mut muxers = Vec::new();
        let mut mp4_options = Dictionary::new();
        mp4_options.set("movflags", "+faststart");
        muxers.push(muxer(
            &out_dir.join(&mp4),
            "mp4",
            &encoder,
            audio.as_ref().map(|a| &a.encoder),
            mp4_options,
        )?);
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
        muxers.push(muxer(
            &out_dir.join(&playlist),
            "hls",
            &encoder,
            audio.as_ref().map(|a| &a.encoder),
            hls_options,
        )?);
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

    let interval = thumbnail_interval(probe.duration);
    let tile_height = even(
        (f64::from(TILE_WIDTH) * f64::from(display_h) / f64::from(display_w.max(1))).round() as u32,
    );
    let layout = SpriteLayout {
        columns: SPRITE_COLUMNS,
        rows: SPRITE_ROWS,
        tile_width: TILE_WIDTH,
        tile_height,
        interval,
    };
    let thumbs_dir = out_dir.join("thumbs");
    fs::create_dir_all(&thumbs_dir)?;
    // A quarter in, at most 10 s, and never past the last frame (a one-frame video's poster is
    // its frame).
    let poster_at = start_seconds
        + (probe.duration * 0.25)
            .min(10.0)
            .min(probe.duration - 1.0 / fps)
            .max(0.0);

    let bounds = Bounds::new(input, probe, options);
    let mut feed = VideoFeed {
        graph: None,
        time_base: video_tb,
        rotation: probe.rotation,
        renditions: &renditions,
        largest: &largest,
        layout: &layout,
        poster_at,
        start: start_seconds,
        last_frame_at: bounds.last_frame_at,
        frame_seconds: 1.0 / fps,
        end: 0.0,
    };
    let mut state = Sinks {
        poster: None,
        sprites: Vec::new(),
        out_dir: out_dir.to_path_buf(),
    };
    let mut decoded = frame::Video::empty();
    let mut last_percent = -1.0;
    progress(Progress {
        percent: 0.0,
        step: "transcoding",
    });
    for (n, (stream, packet)) in ictx.packets().enumerate() {
        if stop() {
            return Err(MediaError::Cancelled);
        }
        if n % BOUNDS_EVERY == 0 {
            bounds.check(out_dir)?;
        }
        if stream.index() == video_index {
            if video_decoder.send_packet(&packet).is_err() {
                // A damaged packet: skip it, as players do.
                continue;
            }
            while video_decoder.receive_frame(&mut decoded).is_ok() {
                if let Some(seconds) = feed.push(&mut decoded, &mut outs, &mut state)? {
                    let percent = (seconds / probe.duration * 100.0).clamp(0.0, 99.0);
                    if percent - last_percent >= 1.0 {
                        last_percent = percent;
                        progress(Progress {
                            percent,
                            step: "transcoding",
                        });
                    }
                }
            }
        } else if let Some(audio) = audio.as_mut().filter(|a| a.index == stream.index()) {
            if audio.decoder.send_packet(&packet).is_err() {
                continue;
            }
            audio_frames(audio, &mut outs)?;
        }
    }

    // Drain: decoders, filters, encoders, muxers.
    progress(Progress {
        percent: 99.0,
        step: "finishing",
    });
    video_decoder.send_eof()?;
    // With frame threading a short video's frames (all of a one- or two-frame one) come out
    // only now: the graph may not exist yet.
    while video_decoder.receive_frame(&mut decoded).is_ok() {
        feed.push(&mut decoded, &mut outs, &mut state)?;
    }
    // Where the video track ends (the container's duration may include audio beyond it).
    let video_end = feed.end;
    let mut graph = feed
        .graph
        .ok_or_else(|| MediaError::NotAVideo("no video frames".to_owned()))?;
    if let Some(mut source) = graph.get("in") {
        // End the stream where its last frame ends, not where it starts: the thumbnail
        // branch's `fps` needs that to take a one-frame video's frame.
        let end = ((video_end + start_seconds) / f64::from(video_tb)).round() as i64;
        source.source().close(end)?;
    }
    pull_video(&mut graph, &mut outs, &mut state)?;
    for out in &mut outs {
        out.encoder.send_eof()?;
        write_video_packets(out)?;
    }
    if let Some(audio) = audio.as_mut() {
        audio.decoder.send_eof()?;
        audio_frames(audio, &mut outs)?;
        if let Some(mut source) = audio.graph.as_mut().and_then(|g| g.get("in")) {
            source.source().flush()?;
        }
        pull_audio(audio, &mut outs)?;
        audio.encoder.send_eof()?;
        write_audio_packets(audio, &mut outs)?;
    }
    for out in &mut outs {
        for muxer in &mut out.muxers {
            muxer.write_trailer()?;
        }
    }

    // Master playlist (from what was really written), thumbnails index.
    for out in &mut outs {
        hls::measure(out_dir, &mut out.files, audio.is_some())?;
    }
    let files: Vec<&RenditionFiles> = outs.iter().map(|o| &o.files).collect();
    fs::write(hls_dir.join("master.m3u8"), hls::master(&files, fps))?;
    let poster = state
        .poster
        .ok_or_else(|| MediaError::NotAVideo("no frame for a poster".to_owned()))?;
    let sprites = state.sprites;
    // The fps filter lets one frame through per interval from the start; the last sheet is
    // partly filled.
    let video_duration = if video_end > 0.0 {
        video_end
    } else {
        probe.duration
    };
    let tiles = (((video_duration - 0.001) / interval).ceil() as u32)
        .max(1)
        .min(u32::try_from(sprites.len()).unwrap_or(0) * layout.per_sheet());
    let vtt_text = vtt(&layout, tiles, video_duration, |n| {
        sprites
            .get(n as usize)
            .and_then(|p| p.rsplit('/').next())
            .unwrap_or_default()
            .to_owned()
    });
    fs::write(thumbs_dir.join("thumbnails.vtt"), vtt_text)?;
    progress(Progress {
        percent: 100.0,
        step: "done",
    });
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

/// Decoded video frames into the filter graph, which is built for the first frame (its size
/// and pixel format); frames past the probed duration are dropped.
struct VideoFeed<'a> {
    graph: Option<filter::Graph>,
    time_base: Rational,
    rotation: u32,
    renditions: &'a [Rendition],
    largest: &'a Rendition,
    layout: &'a SpriteLayout,
    poster_at: f64,
    /// The video's start time in seconds.
    start: f64,
    last_frame_at: f64,
    frame_seconds: f64,
    /// Where the frames fed so far end, in seconds from the start.
    end: f64,
}

impl VideoFeed<'_> {
    /// Feeds `decoded` and encodes what comes out; the frame's time in seconds from the start,
    /// when it has one and was not dropped.
    fn push(
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
struct Sinks {
    poster: Option<String>,
    sprites: Vec<String>,
    out_dir: PathBuf,
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

fn pull_video(
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

fn write_video_packets(out: &mut VideoOut) -> Result<(), MediaError> {
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

fn audio_frames(audio: &mut AudioPath, outs: &mut [VideoOut]) -> Result<(), MediaError> {
    let mut decoded = frame::Audio::empty();
    while audio.decoder.receive_frame(&mut decoded).is_ok() {
        let pts = decoded.timestamp();
        decoded.set_pts(pts);
        if audio.graph.is_none() {
            audio.graph = Some(audio_graph(&decoded, audio.time_base, &audio.encoder)?);
        }
        if let Some(mut source) = audio.graph.as_mut().and_then(|g| g.get("in")) {
            source.source().add(&decoded)?;
        }
        pull_audio(audio, outs)?;
    }
    Ok(())
}

fn pull_audio(audio: &mut AudioPath, outs: &mut [VideoOut]) -> Result<(), MediaError> {
    let mut filtered = frame::Audio::empty();
    loop {
        let Some(mut sink) = audio.graph.as_mut().and_then(|g| g.get("out")) else {
            return Ok(());
        };
        if sink.sink().frame(&mut filtered).is_err() {
            return Ok(());
        }
        audio.encoder.send_frame(&filtered)?;
        write_audio_packets(audio, outs)?;
    }
}

fn write_audio_packets(audio: &mut AudioPath, outs: &mut [VideoOut]) -> Result<(), MediaError> {
    let mut packet = Packet::empty();
    let time_base = audio.encoder.time_base();
    while audio.encoder.receive_packet(&mut packet).is_ok() {
        for out in outs.iter_mut() {
            for muxer in &mut out.muxers {
                write_to(muxer, &packet, 1, time_base)?;
            }
        }
    }
    Ok(())
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

fn audio_graph(
    first: &frame::Audio,
    stream_time_base: Rational,
    encoder: &encoder::Audio,
) -> Result<filter::Graph, MediaError> {
    let mut graph = filter::Graph::new();
    let time_base = if stream_time_base.numerator() > 0 && stream_time_base.denominator() > 0 {
        stream_time_base
    } else {
        Rational(1, i32::try_from(first.rate()).unwrap_or(48_000))
    };
    let layout = if first.channel_layout().bits() == 0 {
        ChannelLayout::default(i32::from(first.channels()))
    } else {
        first.channel_layout()
    };
    let args = format!(
        "time_base={}/{}:sample_rate={}:sample_fmt={}:channel_layout=0x{:x}",
        time_base.numerator(),
        time_base.denominator(),
        first.rate(),
        first.format().name(),
        layout.bits()
    );
    let abuffer = filter::find("abuffer").ok_or(ffmpeg::Error::FilterNotFound)?;
    let abuffersink = filter::find("abuffersink").ok_or(ffmpeg::Error::FilterNotFound)?;
    graph.add(&abuffer, "in", &args)?;
    graph.add(&abuffersink, "out", "")?;
    let spec = format!(
        "aresample={rate},aformat=sample_fmts={fmt}:channel_layouts=stereo",
        rate = encoder.rate(),
        fmt = encoder.format().name()
    );
    graph.output("in", 0)?.input("out", 0)?.parse(&spec)?;
    graph.validate()?;
    if let Some(mut sink) = graph.get("out") {
        sink.sink().set_frame_size(encoder.frame_size());
    }
    Ok(graph)
}

fn open_aac(kbps: u32) -> Result<encoder::Audio, MediaError> {
    let codec = encoder::find(codec::Id::AAC).ok_or(ffmpeg::Error::EncoderNotFound)?;
    let mut encoder = codec::context::Context::new_with_codec(codec)
        .encoder()
        .audio()?;
    encoder.set_rate(48_000);
    encoder.set_channel_layout(ChannelLayout::STEREO);
    encoder.set_format(format::Sample::F32(format::sample::Type::Planar));
    encoder.set_bit_rate(kbps as usize * 1000);
    encoder.set_time_base(Rational(1, 48_000));
    // Both muxers (MP4 and HLS) want codec headers out of band.
    encoder.set_flags(codec::Flags::GLOBAL_HEADER);
    Ok(encoder.open_as(codec)?)
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
    encoder.set_bit_rate(bits as usize);
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

fn rate_of(fps: f64) -> Rational {
    // NTSC rates (29.97…) as their exact fractions, else milli-precision.
    let thousandths = (fps * 1001.0).round();
    if (thousandths / 1000.0 - (thousandths / 1000.0).round()).abs() < 1e-9 && fps.fract() != 0.0 {
        Rational(thousandths as i32, 1001)
    } else {
        Rational((fps * 1000.0).round() as i32, 1000)
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
    fn a_job_past_its_output_budget_or_deadline_stops_with_the_reason() {
        let dir = tempfile::TempDir::new().expect("dir");
        fs::create_dir_all(dir.path().join("hls")).expect("mkdir");
        fs::write(dir.path().join("hls/segment.m4s"), vec![0u8; 4096]).expect("write");
        let within = Bounds {
            max_bytes: 1 << 20,
            deadline: std::time::Instant::now() + std::time::Duration::from_secs(60),
            last_frame_at: 1.0,
        };
        assert!(within.check(dir.path()).is_ok());
        let too_big = Bounds {
            max_bytes: 1024,
            ..within
        };
        assert!(
            matches!(too_big.check(dir.path()), Err(MediaError::Exceeded(why)) if why.contains("grew past"))
        );
        let too_long = Bounds {
            max_bytes: 1 << 20,
            deadline: std::time::Instant::now() - std::time::Duration::from_secs(1),
            last_frame_at: 1.0,
        };
        assert!(
            matches!(too_long.check(dir.path()), Err(MediaError::Exceeded(why)) if why.contains("longer"))
        );
    }

    #[test]
    fn frames_past_the_duration_are_told_apart() {
        let tb = Rational(1, 1000);
        assert!(!past(Some(900), tb, 0.0, 1.1));
        assert!(past(Some(100_000_000), tb, 0.0, 1.1));
        assert!(!past(None, tb, 0.0, 1.1));
    }
}
