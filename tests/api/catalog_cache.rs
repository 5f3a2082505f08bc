//! Catalog caching and throttling: a write on one process is seen at once by another,
//! conditional reads (ETag, 304) and running without a cache, and the per-user and
//! per-address throttle of the video endpoints.

use reqwest::Method;
use rstest::rstest;
use serde_json::{Value, json};
use tonic::Code;
use videoflix::grpc::pb;

use crate::{
    catalog::{admin_token, guest_token, seed, titles},
    helpers::{AppOptions, Backend, TestApp, authed, spawn_app, spawn_app_with, spawn_peer},
};

#[tokio::test]
async fn a_write_on_one_process_is_seen_at_once_by_another() {
    let first = spawn_app(Backend::Real).await;
    let second = spawn_peer(&first, Vec::new()).await;
    let admin = admin_token(&first).await;
    let ids = seed(&first, &admin).await;
    let user = guest_token(&second).await;
    // The second process caches the list and the video.
    let before = second.get_auth("/api/videos/", &user).await.expect(200);
    assert!(titles(&before.body).contains(&"Fast Cars".to_owned()));
    second
        .get_auth(&format!("/api/videos/{}/", ids[1]), &user)
        .await
        .expect(200);

    first
        .call(
            Method::PATCH,
            &format!("/api/videos/{}/", ids[1]),
            Some(json!({"title": "Faster Cars"})),
            Some(&admin),
        )
        .await
        .expect(200);
    let after = second.get_auth("/api/videos/", &user).await.expect(200);
    assert!(
        titles(&after.body).contains(&"Faster Cars".to_owned()),
        "{}",
        after.text
    );

    first
        .call(
            Method::DELETE,
            &format!("/api/videos/{}/", ids[1]),
            None,
            Some(&admin),
        )
        .await
        .expect(204);
    second
        .get_auth(&format!("/api/videos/{}/", ids[1]), &user)
        .await
        .expect_error(404, "not_found");
    let after = second
        .get_auth("/api/videos/categorized_videos/", &user)
        .await
        .expect(200);
    assert_eq!(after.body["action"], json!([]));
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn video_endpoints_are_throttled_per_user_and_per_address(#[case] backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions {
            args: vec![
                ("--throttle-user".into(), "3/min".into()),
                ("--throttle-anon".into(), "2/min".into()),
            ],
            share_with: None,
            shipped_limits: false,
        },
    )
    .await;
    let user = guest_token(&app).await;
    for _ in 0..3 {
        app.get_auth("/api/videos/", &user).await.expect(200);
    }
    let limited = app
        .get_auth("/api/videos/", &user)
        .await
        .expect_error(429, "throttled");
    assert!(limited.headers.contains_key("retry-after"));
    let mut video = app.video_client().await;
    let status = video
        .list_videos(authed(pb::ListVideosRequest::default(), &user))
        .await
        .expect_err("throttled");
    assert_eq!(status.code(), Code::ResourceExhausted);

    // Anonymous calls are counted per address.
    for _ in 0..2 {
        app.call(Method::GET, "/api/videos/", None, None)
            .await
            .expect_error(401, "token");
    }
    app.call(Method::GET, "/api/videos/", None, None)
        .await
        .expect_error(429, "throttled");
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn a_whole_list_answer_is_charged_to_the_throttle_once(#[case] backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions {
            args: vec![("--throttle-user".into(), "3/min".into())],
            share_with: None,
            shipped_limits: false,
        },
    )
    .await;
    let admin = admin_token(&app).await;
    let me = app.get_auth("/api/me/", &admin).await.expect(200).body;
    let uploader =
        videoflix::domain::UserId::parse(me["id"].as_i64().expect("id"), "id").expect("id");
    // 250 videos: the REST whole list walks three gRPC pages of 100 internally.
    for n in 0..250 {
        let meta = videoflix::domain::VideoMeta::parse(&videoflix::domain::RawVideoMeta {
            title: &format!("Film {n}"),
            ..Default::default()
        })
        .expect("meta");
        app.services
            .store
            .create_video(&meta, uploader)
            .await
            .expect("video");
    }
    let user = guest_token(&app).await;
    for _ in 0..3 {
        let list = app.get_auth("/api/videos/", &user).await.expect(200).body;
        assert_eq!(list.as_array().map(Vec::len), Some(250));
    }
    app.get_auth("/api/videos/", &user)
        .await
        .expect_error(429, "throttled");
}

/// GET with a token and optional `If-None-Match`: (status, ETag, body text).
async fn conditional_get(
    app: &TestApp,
    path: &str,
    token: &str,
    if_none_match: Option<&str>,
) -> (u16, Option<String>, String) {
    let mut request = app
        .http
        .get(format!("{}{path}", app.base))
        .header("authorization", format!("Token {token}"));
    if let Some(tag) = if_none_match {
        request = request.header("if-none-match", tag);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, etag, response.text().await.expect("body"))
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn conditional_reads_answer_304_until_anything_shown_changes(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_token(&app).await;
    let ids = seed(&app, &admin).await;
    let user = guest_token(&app).await;
    let other = guest_token(&app).await;
    let video = format!("/api/videos/{}/", ids[1]);

    for path in [
        "/api/videos/",
        "/api/videos/?page_size=2&page=2",
        "/api/videos/recent_videos/",
        "/api/videos/categorized_videos/",
        video.as_str(),
    ] {
        let (status, etag, body) = conditional_get(&app, path, &user, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        let etag = etag.unwrap_or_else(|| panic!("{path} has no ETag"));
        assert!(etag.starts_with("W/\""), "{etag}");
        let (status, again, empty) = conditional_get(&app, path, &user, Some(&etag)).await;
        assert_eq!((status, empty.as_str()), (304, ""), "{path}");
        assert_eq!(again.as_deref(), Some(etag.as_str()));
        // Unconditional again: the same bytes (the gateway's kept copy, revalidated).
        let (status, _, same) = conditional_get(&app, path, &user, None).await;
        assert_eq!((status, same), (200, body), "{path}");
        // An etag is the caller's own: another user gets the full answer.
        let (status, _, _) = conditional_get(&app, path, &other, Some(&etag)).await;
        assert_eq!(status, 200, "{path}");
    }

    // The caller's favorites are part of what is shown.
    let (_, etag, _) = conditional_get(&app, "/api/videos/", &user, None).await;
    let etag = etag.expect("etag");
    app.call(
        Method::POST,
        &format!("/api/videos/{}/favorite/", ids[1]),
        None,
        Some(&user),
    )
    .await
    .expect(200);
    let (status, changed, body) = conditional_get(&app, "/api/videos/", &user, Some(&etag)).await;
    assert_eq!(status, 200);
    assert_ne!(changed.as_deref(), Some(etag.as_str()));
    let list: Value = serde_json::from_str(&body).expect("json");
    let favorite = list
        .as_array()
        .expect("array")
        .iter()
        .find(|v| v["id"] == json!(ids[1]))
        .expect("video");
    assert_eq!(favorite["is_favorite"], json!(true));
    // Another user's favorite changes nothing for this one.
    let etag = changed.expect("etag");
    app.call(
        Method::POST,
        &format!("/api/videos/{}/favorite/", ids[2]),
        None,
        Some(&other),
    )
    .await
    .expect(200);
    let (status, _, _) = conditional_get(&app, "/api/videos/", &user, Some(&etag)).await;
    assert_eq!(status, 304);

    // Any catalog write changes it; the kept copy is not served.
    app.call(
        Method::PATCH,
        &video,
        Some(json!({"title": "Faster Cars"})),
        Some(&admin),
    )
    .await
    .expect(200);
    let (status, _, body) = conditional_get(&app, "/api/videos/", &user, Some(&etag)).await;
    assert_eq!(status, 200);
    assert!(body.contains("Faster Cars"), "{body}");
    let (status, _, body) = conditional_get(&app, "/api/videos/", &user, None).await;
    assert_eq!(status, 200);
    assert!(body.contains("Faster Cars"), "{body}");

    // A deleted video is gone at once, not served from a kept copy.
    let (_, etag, _) = conditional_get(&app, &video, &user, None).await;
    app.call(Method::DELETE, &video, None, Some(&admin))
        .await
        .expect(204);
    let (status, _, _) = conditional_get(&app, &video, &user, etag.as_deref()).await;
    assert_eq!(status, 404);
    let (status, _, _) = conditional_get(&app, &video, &user, None).await;
    assert_eq!(status, 404);

    // Nonsense tags are just not matched; a bad token is still refused.
    let (status, _, _) = conditional_get(&app, "/api/videos/", &user, Some("*")).await;
    assert_eq!(status, 200);
    let (status, _, _) = conditional_get(&app, "/api/videos/", "forged", Some("W/\"x\"")).await;
    assert_eq!(status, 401);

    // gRPC: the same validator, as fields.
    let mut client = app.video_client().await;
    let first = client
        .list_videos(authed(pb::ListVideosRequest::default(), &user))
        .await
        .expect("list")
        .into_inner();
    assert!(!first.etag.is_empty() && !first.not_modified);
    let again = client
        .list_videos(authed(
            pb::ListVideosRequest {
                if_none_match: first.etag.clone(),
                ..Default::default()
            },
            &user,
        ))
        .await
        .expect("list")
        .into_inner();
    assert!(again.not_modified && again.videos.is_empty());
    assert_eq!(again.etag, first.etag);
    // Invalid input is still refused, whatever the tag.
    let status = client
        .list_videos(authed(
            pb::ListVideosRequest {
                if_none_match: first.etag,
                ordering: "sideways".to_owned(),
                ..Default::default()
            },
            &user,
        ))
        .await
        .expect_err("bad ordering");
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn without_a_cache_there_is_no_etag_and_every_read_is_full() {
    let app = spawn_app_with(
        Backend::Embedded,
        AppOptions {
            args: vec![("--cache-enabled".to_owned(), "false".to_owned())],
            ..Default::default()
        },
    )
    .await;
    let admin = admin_token(&app).await;
    let ids = seed(&app, &admin).await;
    let user = guest_token(&app).await;
    app.call(
        Method::POST,
        &format!("/api/videos/{}/favorite/", ids[0]),
        None,
        Some(&user),
    )
    .await
    .expect(200);
    let (status, etag, body) = conditional_get(&app, "/api/videos/", &user, Some("W/\"x\"")).await;
    assert_eq!((status, etag), (200, None));
    let list: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(list.as_array().map(Vec::len), Some(ids.len()));
    let favorites: Vec<i64> = list
        .as_array()
        .expect("array")
        .iter()
        .filter(|v| v["is_favorite"] == json!(true))
        .map(|v| v["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(favorites, vec![ids[0]]);
}
