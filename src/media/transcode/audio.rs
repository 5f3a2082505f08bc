//! The audio path: decoded and encoded once to AAC; the same packets go to every muxer.

use ffmpeg_next::{
    self as ffmpeg, ChannelLayout, Packet, Rational, codec, encoder, filter, format, media,
    util::frame,
};

use super::{MediaError, VideoOut, write_to};

pub(super) struct AudioPath {
    pub(super) index: usize,
    /// Time base of the stream: decoded frames carry timestamps in it.
    time_base: Rational,
    pub(super) decoder: codec::decoder::Audio,
    pub(super) encoder: encoder::Audio,
    pub(super) graph: Option<filter::Graph>,
}

impl AudioPath {
    /// The input's best audio track, when FFmpeg can decode it: an audio track it cannot is
    /// left out, and the video still plays, silent.
    pub(super) fn open(
        input: &format::context::Input,
        kbps: u32,
    ) -> Result<Option<Self>, MediaError> {
        let Some(stream) = input.streams().best(media::Type::Audio) else {
            return Ok(None);
        };
        match codec::context::Context::from_parameters(stream.parameters())
            .and_then(|c| c.decoder().audio())
        {
            Ok(decoder) => Ok(Some(Self {
                index: stream.index(),
                time_base: stream.time_base(),
                decoder,
                encoder: open_aac(kbps)?,
                graph: None,
            })),
            Err(e) => {
                tracing::warn!(error = %e, "undecodable audio track left out");
                Ok(None)
            }
        }
    }

    /// Drains decoder, filter and encoder into `outs` at the end of the input.
    pub(super) fn finish(&mut self, outs: &mut [VideoOut]) -> Result<(), MediaError> {
        self.decoder.send_eof()?;
        audio_frames(self, outs)?;
        if let Some(mut source) = self.graph.as_mut().and_then(|g| g.get("in")) {
            source.source().flush()?;
        }
        pull_audio(self, outs)?;
        self.encoder.send_eof()?;
        write_audio_packets(self, outs)
    }
}

pub(super) fn audio_frames(audio: &mut AudioPath, outs: &mut [VideoOut]) -> Result<(), MediaError> {
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
