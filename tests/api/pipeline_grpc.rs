//! The media pipeline over gRPC: upload, status stream and chunked download, and messages over
//! the size limit.

use std::time::Duration;

use tokio_stream::StreamExt as _;
use tonic::Code;
use videoflix::grpc::pb;

use crate::{
    helpers::{Backend, authed, spawn_app_with},
    media::Clips,
    pipeline::{admin, options},
};

#[tokio::test]
async fn grpc_upload_status_stream_and_chunked_download() {
    let app = spawn_app_with(Backend::Embedded, options(&[])).await;
    let token = admin(&app).await;
    let clips = Clips::new();
    let bytes = std::fs::read(clips.clip("g.mp4", "320x240", 2, true, &[])).expect("clip");
    let mut client = app.video_client().await;

    let header = pb::UploadVideoRequest {
        payload: Some(pb::upload_video_request::Payload::Header(
            pb::UploadHeader {
                metadata: Some(pb::VideoMetadata {
                    title: "Over gRPC".to_owned(),
                    ..Default::default()
                }),
                file_name: "g.mp4".to_owned(),
                size_bytes: i64::try_from(bytes.len()).expect("size"),
            },
        )),
    };
    let mut messages = vec![header];
    for chunk in bytes.chunks(64 * 1024) {
        messages.push(pb::UploadVideoRequest {
            payload: Some(pb::upload_video_request::Payload::Chunk(chunk.to_vec())),
        });
    }
    let video = client
        .upload_video(authed(tokio_stream::iter(messages), &token))
        .await
        .expect("upload")
        .into_inner()
        .video
        .expect("video");
    assert_eq!(video.status, pb::VideoStatus::Pending as i32);

    let mut stream = client
        .watch_transcode_status(authed(
            pb::WatchTranscodeStatusRequest { video_id: video.id },
            &token,
        ))
        .await
        .expect("watch")
        .into_inner();
    let mut last = None;
    let watch = async {
        while let Some(event) = stream.next().await {
            last = Some(event.expect("event"));
        }
    };
    tokio::time::timeout(Duration::from_secs(120), watch)
        .await
        .expect("in time");
    let last = last.expect("events");
    assert_eq!(last.status, pb::VideoStatus::Ready as i32, "{last:?}");

    // Bytes with no metadata at all: refused, nothing kept.
    let headless = vec![pb::UploadVideoRequest {
        payload: Some(pb::upload_video_request::Payload::Chunk(
            bytes[..1000].to_vec(),
        )),
    }];
    let status = client
        .upload_video(authed(tokio_stream::iter(headless), &token))
        .await
        .expect_err("no metadata");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    // StreamVideo: the whole original, in order, then from an offset.
    let mut download = client
        .stream_video(authed(
            pb::StreamVideoRequest {
                video_id: video.id,
                rendition: pb::Rendition::Original as i32,
                offset: 0,
            },
            &token,
        ))
        .await
        .expect("stream")
        .into_inner();
    let mut got = Vec::new();
    while let Some(chunk) = download.next().await {
        let chunk = chunk.expect("chunk");
        assert_eq!(chunk.offset, i64::try_from(got.len()).expect("len"));
        assert_eq!(chunk.total_size, i64::try_from(bytes.len()).expect("len"));
        got.extend_from_slice(&chunk.data);
    }
    assert_eq!(got, bytes);
    let status = client
        .stream_video(authed(
            pb::StreamVideoRequest {
                video_id: video.id,
                rendition: pb::Rendition::Rendition1080p as i32,
                offset: 0,
            },
            &token,
        ))
        .await
        .expect_err("no 1080p of a 240p source");
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .stream_video(authed(
            pb::StreamVideoRequest {
                video_id: video.id,
                rendition: pb::Rendition::Original as i32,
                offset: i64::try_from(bytes.len()).expect("len") + 1,
            },
            &token,
        ))
        .await
        .expect_err("past the end");
    assert_eq!(status.code(), Code::OutOfRange);
}

#[tokio::test]
async fn messages_over_the_limit_are_resource_exhausted_naming_it() {
    let app = spawn_app_with(Backend::Embedded, options(&[])).await;
    let token = admin(&app).await;
    let mut client = app.video_client().await;
    // A unary request over 4 MiB (a 5 MiB search text).
    let status = client
        .list_videos(authed(
            pb::ListVideosRequest {
                search: "x".repeat(5 << 20),
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect_err("too large");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("4194304 bytes"), "{status:?}");
    // An upload chunk over 4 MiB.
    let messages = vec![
        pb::UploadVideoRequest {
            payload: Some(pb::upload_video_request::Payload::Header(
                pb::UploadHeader {
                    metadata: Some(pb::VideoMetadata {
                        title: "Big chunk".to_owned(),
                        ..Default::default()
                    }),
                    file_name: "big.mp4".to_owned(),
                    size_bytes: 0,
                },
            )),
        },
        pb::UploadVideoRequest {
            payload: Some(pb::upload_video_request::Payload::Chunk(vec![0u8; 5 << 20])),
        },
    ];
    let status = client
        .upload_video(authed(tokio_stream::iter(messages), &token))
        .await
        .expect_err("too large");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("4194304 bytes"), "{status:?}");
    // Nothing was kept.
    let incoming = app.settings.media_dir.join("incoming");
    let left = std::fs::read_dir(&incoming).map_or(0, |d| d.count());
    assert_eq!(left, 0, "no .part left in {}", incoming.display());
}
