//! Concurrent writes lose nothing: `If-Match` (REST) and `etag` (gRPC UpdateVideo) refuse a
//! change to a video that changed since it was read, and two admins changing different fields
//! at the same moment both keep their change — on SQLite and on PostgreSQL.

use rstest::rstest;
use serde_json::{Value, json};
use tonic::Code;
use videoflix::grpc::pb;

use crate::{
    catalog::{admin_token, create},
    helpers::{Backend, TestApp, authed, spawn_app},
};

/// PATCH `/api/videos/{id}/` with `body`, and `If-Match` when given: (status, ETag, body).
async fn patch(
    app: &TestApp,
    token: &str,
    id: i64,
    body: Value,
    if_match: Option<&str>,
) -> (u16, Option<String>, Value) {
    let mut request = app
        .http
        .patch(format!("{}/api/videos/{id}/", app.base))
        .header("authorization", format!("Token {token}"))
        .json(&body);
    if let Some(tag) = if_match {
        request = request.header("if-match", tag);
    }
    let response = request.send().await.expect("patch");
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .map(|v| v.to_str().expect("ascii").to_owned());
    (status, etag, response.json().await.unwrap_or(Value::Null))
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn a_change_to_a_video_that_changed_since_it_was_read_is_refused(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_token(&app).await;
    let id = create(&app, &admin, json!({"title": "Versioned"})).await["id"]
        .as_i64()
        .expect("id");
    let read = app
        .http
        .get(format!("{}/api/videos/{id}/", app.base))
        .header("authorization", format!("Token {admin}"))
        .send()
        .await
        .expect("get");
    let seen = read.headers()["etag"].to_str().expect("ascii").to_owned();

    // The tag the GET gave: accepted; the answer carries the next one.
    let (status, next, body) =
        patch(&app, &admin, id, json!({"title": "First"}), Some(&seen)).await;
    assert_eq!(status, 200, "{body}");
    let next = next.expect("an ETag");
    // The same old tag again: the video changed since, 412 naming why.
    let (status, _, body) = patch(&app, &admin, id, json!({"title": "Lost"}), Some(&seen)).await;
    assert_eq!(status, 412, "{body}");
    assert_eq!(body["type"], json!(["etag"]), "{body}");
    // A bad body is a 400 whatever its precondition says.
    let (status, _, body) = patch(&app, &admin, id, json!({"title": ""}), Some(&seen)).await;
    assert_eq!(status, 400, "{body}");
    // The new tag works; a tag that is none of ours never matches; `*` is no condition.
    let (status, _, _) = patch(&app, &admin, id, json!({"author": "A"}), Some(&next)).await;
    assert_eq!(status, 200);
    let (status, _, _) = patch(
        &app,
        &admin,
        id,
        json!({"author": "B"}),
        Some("\"nonsense\""),
    )
    .await;
    assert_eq!(status, 412);
    let (status, _, body) = patch(&app, &admin, id, json!({"author": "C"}), Some("*")).await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["title"].clone(), body["author"].clone()),
        (json!("First"), json!("C"))
    );

    // gRPC: the etag of GetVideo, then ABORTED once it is stale.
    let mut client = app.video_client().await;
    let got = client
        .get_video(authed(
            pb::GetVideoRequest {
                id,
                ..Default::default()
            },
            &admin,
        ))
        .await
        .expect("get")
        .into_inner();
    let update = |etag: String| pb::UpdateVideoRequest {
        id,
        metadata: Some(pb::VideoMetadata {
            title: "Over gRPC".into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["title".into()],
        }),
        etag,
    };
    let updated = client
        .update_video(authed(update(got.etag.clone()), &admin))
        .await
        .expect("fresh etag")
        .into_inner();
    assert!(!updated.etag.is_empty());
    let stale = client
        .update_video(authed(update(got.etag), &admin))
        .await
        .expect_err("stale etag");
    assert_eq!(stale.code(), Code::Aborted, "{stale:?}");
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_admins_changing_different_fields_at_once_both_keep_their_change(
    #[case] backend: Backend,
) {
    let app = spawn_app(backend).await;
    let admin = admin_token(&app).await;
    let id = create(&app, &admin, json!({"title": "Shared"})).await["id"]
        .as_i64()
        .expect("id");
    for round in 0..8 {
        let title = format!("Title {round}");
        let description = format!("Description {round}");
        let (a, b) = tokio::join!(
            patch(&app, &admin, id, json!({"title": title}), None),
            patch(&app, &admin, id, json!({"description": description}), None),
        );
        assert_eq!((a.0, b.0), (200, 200), "{a:?} {b:?}");
        let video = app
            .get_auth(&format!("/api/videos/{id}/"), &admin)
            .await
            .expect(200)
            .body;
        assert_eq!(
            (video["title"].clone(), video["description"].clone()),
            (json!(title), json!(description)),
            "round {round}"
        );
    }
}
