//! `videoflix upload`: uploads a file over gRPC with a progress bar, then follows the transcode
//! with a second one until the video is ready or failed.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::io::AsyncReadExt as _;
use tokio_stream::StreamExt as _;
use tonic::{
    Request,
    metadata::{Ascii, MetadataValue},
    transport::Channel,
};

use crate::grpc::pb::{
    self, auth_service_client::AuthServiceClient, upload_video_request::Payload,
    video_service_client::VideoServiceClient,
};

/// Bytes per upload message.
const CHUNK: usize = 256 * 1024;

/// What to upload, where, as whom.
#[derive(Debug, clap::Args)]
pub struct UploadArgs {
    /// The video file.
    pub file: PathBuf,
    /// Title of the video.
    #[arg(long)]
    pub title: String,
    /// Description.
    #[arg(long, default_value = "")]
    pub description: String,
    /// Author.
    #[arg(long, default_value = "")]
    pub author: String,
    /// documentary, action, horror, drama or technic.
    #[arg(long, default_value = "")]
    pub genre: String,
    /// french, english or german.
    #[arg(long, default_value = "")]
    pub language: String,
    /// The server's gRPC address.
    #[arg(
        long,
        env = "VIDEOFLIX_SERVER",
        default_value = "http://127.0.0.1:8000"
    )]
    pub server: String,
    /// An access token of a superuser (else log in with --email).
    #[arg(long, env = "VIDEOFLIX_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Log in as this superuser; the password is read from the first line of standard input.
    #[arg(long)]
    pub email: Option<String>,
    /// Do not wait for the transcode.
    #[arg(long)]
    pub no_wait: bool,
}

/// Runs the upload; fails when the server refuses it or the transcode fails.
pub async fn run(args: UploadArgs) -> anyhow::Result<()> {
    let channel = Channel::from_shared(args.server.clone())
        .context("--server is not a URL")?
        .connect()
        .await
        .with_context(|| format!("connecting to {}", args.server))?;
    let bearer = bearer(&args, &channel).await?;
    let mut client = VideoServiceClient::new(channel);
    let video = upload(&mut client, &args, &bearer).await?;
    println!("uploaded: video {} \"{}\"", video.id, video.title);
    if args.no_wait {
        return Ok(());
    }
    follow_transcode(&mut client, video.id, bearer).await
}

/// The `authorization` value: `--token`, else the token of logging in as `--email`.
async fn bearer(args: &UploadArgs, channel: &Channel) -> anyhow::Result<MetadataValue<Ascii>> {
    let token = match (&args.token, &args.email) {
        (Some(token), _) => token.clone(),
        (None, Some(email)) => login(channel.clone(), email).await?,
        (None, None) => bail!("give --token (or VIDEOFLIX_TOKEN) or --email"),
    };
    format!("Bearer {token}")
        .parse()
        .context("the token is not a valid header value")
}

/// Streams the header, then the file, with a progress bar; the video the server created.
async fn upload(
    client: &mut VideoServiceClient<Channel>,
    args: &UploadArgs,
    bearer: &MetadataValue<Ascii>,
) -> anyhow::Result<pb::Video> {
    let file = tokio::fs::File::open(&args.file)
        .await
        .with_context(|| format!("opening {}", args.file.display()))?;
    let size = file.metadata().await?.len();
    let header = upload_header(args, size)?;
    let bar = progress_bar(
        size,
        "uploading   [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    );
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let reader = tokio::spawn(send_file(file, header, tx, bar.clone()));
    let mut request = Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    request
        .metadata_mut()
        .insert("authorization", bearer.clone());
    let response = client.upload_video(request).await;
    reader.await.context("reading the file")??;
    bar.finish();
    response
        .map_err(describe)?
        .into_inner()
        .video
        .context("the server answered no video")
}

/// The first message of the upload: the video's metadata and the file's name and size.
fn upload_header(args: &UploadArgs, size: u64) -> anyhow::Result<pb::UploadVideoRequest> {
    let genre = enum_value(&args.genre, pb::Genre::from_str_name, "GENRE_", "genre")?;
    let language = enum_value(
        &args.language,
        pb::Language::from_str_name,
        "LANGUAGE_",
        "language",
    )?;
    Ok(pb::UploadVideoRequest {
        payload: Some(Payload::Header(pb::UploadHeader {
            metadata: Some(pb::VideoMetadata {
                title: args.title.clone(),
                description: args.description.clone(),
                author: args.author.clone(),
                genre,
                language,
            }),
            file_name: args
                .file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            size_bytes: i64::try_from(size).unwrap_or(0),
        })),
    })
}

/// Sends `header`, then the file in [`CHUNK`]s, advancing `bar`. A closed channel means the
/// request has ended (the server's answer says why), so the send stops without an error.
async fn send_file(
    mut file: tokio::fs::File,
    header: pb::UploadVideoRequest,
    tx: tokio::sync::mpsc::Sender<pb::UploadVideoRequest>,
    bar: ProgressBar,
) -> std::io::Result<()> {
    if tx.send(header).await.is_err() {
        return Ok(());
    }
    loop {
        let mut buf = vec![0u8; CHUNK];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        buf.truncate(n);
        bar.inc(n as u64);
        let message = pb::UploadVideoRequest {
            payload: Some(Payload::Chunk(buf)),
        };
        if tx.send(message).await.is_err() {
            return Ok(());
        }
    }
}

/// Follows the transcode of `video_id` with a progress bar until it is ready or has failed.
async fn follow_transcode(
    client: &mut VideoServiceClient<Channel>,
    video_id: i64,
    bearer: MetadataValue<Ascii>,
) -> anyhow::Result<()> {
    let bar = progress_bar(100, "transcoding [{bar:40}] {pos:>3}% {msg}");
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut request = Request::new(pb::WatchTranscodeStatusRequest { video_id });
    request.metadata_mut().insert("authorization", bearer);
    let mut events = client
        .watch_transcode_status(request)
        .await
        .map_err(describe)?
        .into_inner();
    while let Some(event) = events.next().await {
        let event = event.map_err(describe)?;
        bar.set_position(crate::numeric::to_u64(event.percent.clamp(0.0, 100.0)));
        bar.set_message(event.step.clone());
        match pb::VideoStatus::try_from(event.status) {
            Ok(pb::VideoStatus::Ready) => {
                bar.finish_with_message("ready");
                println!("video {video_id} is ready");
                return Ok(());
            }
            Ok(pb::VideoStatus::Failed) => {
                bar.abandon_with_message("failed");
                bail!("transcoding failed: {}", event.reason);
            }
            _ => {}
        }
    }
    bar.abandon();
    bail!("the status stream ended before the video was ready")
}

/// A bar of `len` steps drawn by `template` (the default bar should the template not parse).
fn progress_bar(len: u64, template: &str) -> ProgressBar {
    ProgressBar::new(len).with_style(
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    )
}

async fn login(channel: Channel, email: &str) -> anyhow::Result<String> {
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("reading the password from standard input")?;
    let response = AuthServiceClient::new(channel)
        .login(pb::LoginRequest {
            email: email.to_owned(),
            password: password.trim_end_matches(['\r', '\n']).to_owned(),
            remember_me: false,
        })
        .await
        .map_err(describe)?
        .into_inner();
    response
        .tokens
        .map(|t| t.access_token)
        .context("the server answered no token")
}

/// `action` → `GENRE_ACTION` → its wire value; '' → unspecified.
fn enum_value<E: Into<i32>>(
    text: &str,
    parse: fn(&str) -> Option<E>,
    prefix: &str,
    what: &str,
) -> anyhow::Result<i32> {
    if text.is_empty() {
        return Ok(0);
    }
    parse(&format!("{prefix}{}", text.to_uppercase()))
        .map(Into::into)
        .with_context(|| format!("unknown {what} {text:?}"))
}

/// A server error as one line: its message and, for a refused field, which one.
fn describe(status: tonic::Status) -> anyhow::Error {
    use tonic_types::StatusExt as _;
    let fields: Vec<String> = status
        .get_error_details()
        .bad_request()
        .map(|b| {
            b.field_violations
                .iter()
                .map(|v| format!("{}: {}", v.field, v.description))
                .collect()
        })
        .unwrap_or_default();
    if fields.is_empty() {
        anyhow::anyhow!("{:?}: {}", status.code(), status.message())
    } else {
        anyhow::anyhow!("{:?}: {}", status.code(), fields.join("; "))
    }
}
