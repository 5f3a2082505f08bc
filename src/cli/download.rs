//! `videoflix download`: a rendition over gRPC `StreamVideo`, to a file, with its throughput.

use std::{path::PathBuf, time::Instant};

use anyhow::{Context as _, bail};
use tokio::io::AsyncWriteExt as _;
use tokio_stream::StreamExt as _;
use tonic::{Request, transport::Channel};

use crate::grpc::pb::{self, video_service_client::VideoServiceClient};

/// What to download.
#[derive(Debug, clap::Args)]
pub struct DownloadArgs {
    /// The video id.
    pub video_id: i64,
    /// original, 360p, 480p, 720p or 1080p.
    #[arg(long, default_value = "original")]
    pub rendition: String,
    /// Where to write it (`-` discards the bytes: for measuring).
    #[arg(long, short)]
    pub output: PathBuf,
    /// Start at this byte.
    #[arg(long, default_value_t = 0)]
    pub offset: i64,
    /// The server's gRPC address.
    #[arg(
        long,
        env = "VIDEOFLIX_SERVER",
        default_value = "http://127.0.0.1:8000"
    )]
    pub server: String,
    /// An access token.
    #[arg(long, env = "VIDEOFLIX_TOKEN", hide_env_values = true)]
    pub token: String,
}

/// Streams the rendition; prints size, time and throughput.
pub async fn run(args: DownloadArgs) -> anyhow::Result<()> {
    let rendition = match args.rendition.as_str() {
        "original" => pb::Rendition::Original,
        "360p" => pb::Rendition::Rendition360p,
        "480p" => pb::Rendition::Rendition480p,
        "720p" => pb::Rendition::Rendition720p,
        "1080p" => pb::Rendition::Rendition1080p,
        other => bail!("unknown rendition {other:?}"),
    };
    let channel = Channel::from_shared(args.server.clone())
        .context("--server is not a URL")?
        .connect()
        .await
        .with_context(|| format!("connecting to {}", args.server))?;
    let mut request = Request::new(pb::StreamVideoRequest {
        video_id: args.video_id,
        rendition: rendition as i32,
        offset: args.offset,
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", args.token)
            .parse()
            .context("the token is not a valid header value")?,
    );
    let started = Instant::now();
    let mut stream = VideoServiceClient::new(channel)
        .max_decoding_message_size(8 << 20)
        .stream_video(request)
        .await
        .map_err(|s| anyhow::anyhow!("{:?}: {}", s.code(), s.message()))?
        .into_inner();
    let mut file = if args.output.as_os_str() == "-" {
        None
    } else {
        Some(
            tokio::fs::File::create(&args.output)
                .await
                .with_context(|| format!("creating {}", args.output.display()))?,
        )
    };
    let mut received: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|s| anyhow::anyhow!("{:?}: {}", s.code(), s.message()))?;
        received += chunk.data.len() as u64;
        if let Some(file) = file.as_mut() {
            file.write_all(&chunk.data).await?;
        }
    }
    if let Some(mut file) = file {
        file.flush().await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{received} bytes in {seconds:.3} s: {:.1} MB/s",
        received as f64 / seconds.max(1e-9) / 1e6
    );
    Ok(())
}
