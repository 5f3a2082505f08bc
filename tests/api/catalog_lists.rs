//! Catalog queries over REST and gRPC: listing, filtering, search, ordering and pages, and
//! gRPC pages that stay stable while videos are added.

use reqwest::Method;
use rstest::rstest;
use serde_json::{Value, json};
use tonic::Code;
use videoflix::grpc::pb;

use crate::{
    catalog::{admin_token, guest_token, seed, titles},
    helpers::{Backend, authed, spawn_app},
};

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn the_catalog_lists_filters_searches_orders_and_pages(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_token(&app).await;
    let ids = seed(&app, &admin).await;
    let user = guest_token(&app).await;

    // Newest first by default, as a bare array with exactly the legacy fields (plus ours).
    let all = app.get_auth("/api/videos/", &user).await.expect(200);
    assert_eq!(titles(&all.body)[0], "Untitled Short");
    assert_eq!(all.body.as_array().map(Vec::len), Some(6));
    let first = &all.body[0];
    for field in [
        "id",
        "title",
        "description",
        "author",
        "genre",
        "language",
        "uploaded_at",
        "updated_at",
        "uploaded_by",
        "is_favorite",
        "duration",
        "video_file",
        "poster",
        "vtt_file",
        "video_file_hd360",
        "video_file_hd480",
        "video_file_hd720",
        "video_file_hd1080",
        "status",
        "hls",
    ] {
        assert!(first.get(field).is_some(), "missing {field}: {first}");
    }
    assert_eq!(first["genre"], Value::Null);
    assert_eq!(first["status"], "pending");
    assert_eq!(first["video_file"], "");
    // A viewer sees who uploaded it, not their e-mail.
    assert!(first["uploaded_by"]["id"].is_i64());
    assert_eq!(first["uploaded_by"]["email"], "");
    assert!(
        chrono::DateTime::parse_from_rfc3339(first["uploaded_at"].as_str().expect("ts")).is_ok()
    );

    let get = |query: &'static str| {
        let app = &app;
        let user = user.clone();
        async move { app.get_auth(&format!("/api/videos/?{query}"), &user).await }
    };
    assert_eq!(
        titles(&get("genre=drama").await.expect(200).body),
        ["Family Ties"]
    );
    assert_eq!(
        titles(&get("language=german").await.expect(200).body),
        ["Rust in Production", "Fast Cars"]
    );
    assert_eq!(
        titles(&get("search=OCEAN").await.expect(200).body),
        ["Ocean Deep"]
    );
    assert_eq!(
        titles(&get("search=engines").await.expect(200).body),
        ["Rust in Production"]
    );
    assert_eq!(
        titles(&get("search=100%25").await.expect(200).body),
        Vec::<String>::new()
    );
    assert_eq!(
        titles(&get("ordering=uploaded_at").await.expect(200).body)[0],
        "Ocean Deep"
    );
    assert_eq!(
        get("uploaded_at=2000-01-01")
            .await
            .expect(200)
            .body
            .as_array()
            .map(Vec::len),
        Some(6)
    );
    assert_eq!(
        get("uploaded_at=2999-01-01T00:00:00Z")
            .await
            .expect(200)
            .body,
        json!([])
    );
    let admin_id = all.body[0]["uploaded_by"]["id"].as_i64().expect("id");
    assert_eq!(
        app.get_auth(&format!("/api/videos/?uploaded_by={admin_id}"), &user)
            .await
            .expect(200)
            .body
            .as_array()
            .map(Vec::len),
        Some(6)
    );

    // Bad parameters name themselves.
    get("genre=comedy").await.expect_error(400, "genre");
    get("language=klingon").await.expect_error(400, "language");
    get("ordering=title").await.expect_error(400, "ordering");
    get("uploaded_by=abc")
        .await
        .expect_error(400, "uploaded_by");
    get("uploaded_at=yesterday")
        .await
        .expect_error(400, "uploaded_at");
    // Page sizes follow the service's one rule on both transports: negative is an error, 0
    // the default, above 100 the maximum.
    get("page_size=-1").await.expect_error(400, "page_size");
    let capped = get("page_size=1000").await.expect(200);
    assert_eq!(capped.body["results"].as_array().map(Vec::len), Some(6));
    assert_eq!(capped.body["next"], Value::Null);
    get("page_size=2&page=0")
        .await
        .expect_error(404, "not_found");

    // DRF-style pages.
    let page1 = get("page_size=4").await.expect(200);
    assert_eq!(page1.body["count"], 6);
    assert_eq!(page1.body["previous"], Value::Null);
    assert!(
        page1.body["next"]
            .as_str()
            .expect("next")
            .contains("page=2")
    );
    assert_eq!(page1.body["results"].as_array().map(Vec::len), Some(4));
    // Links start at PUBLIC_URL, whatever Host the client sends.
    let spoofed = app
        .http
        .get(format!("{}/api/videos/?page_size=4", app.base))
        .header("host", "evil.example")
        .header("authorization", format!("Token {user}"))
        .send()
        .await
        .expect("page")
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(
        spoofed["next"], "http://127.0.0.1/api/videos/?page_size=4&page=2",
        "{spoofed}"
    );
    let page2 = get("page_size=4&page=2").await.expect(200);
    assert_eq!(page2.body["next"], Value::Null);
    assert!(
        page2.body["previous"]
            .as_str()
            .expect("previous")
            .contains("page=1")
    );
    assert_eq!(page2.body["results"].as_array().map(Vec::len), Some(2));
    get("page_size=4&page=3")
        .await
        .expect_error(404, "not_found");

    // One video; unknown and malformed ids.
    let one = app
        .get_auth(&format!("/api/videos/{}/", ids[0]), &user)
        .await
        .expect(200);
    assert_eq!(one.body["title"], "Ocean Deep");
    app.get_auth(&format!("/api/videos/{}", ids[1]), &user)
        .await
        .expect(200);
    app.get_auth("/api/videos/999999/", &user)
        .await
        .expect_error(404, "not_found");
    app.get_auth("/api/videos/abc/", &user)
        .await
        .expect_error(400, "id");

    // Recent: five newest, optionally without one.
    let recent = app
        .get_auth("/api/videos/recent_videos/", &user)
        .await
        .expect(200);
    assert_eq!(recent.body.as_array().map(Vec::len), Some(5));
    let recent = app
        .get_auth(
            &format!("/api/videos/recent_videos/?to_exclude_id={}", ids[5]),
            &user,
        )
        .await
        .expect(200);
    assert_eq!(titles(&recent.body)[0], "Rust in Production");
    app.get_auth("/api/videos/recent_videos/?to_exclude_id=x", &user)
        .await
        .expect_error(400, "to_exclude_id");

    // Categorized: every genre present, newest first.
    let cat = app
        .get_auth("/api/videos/categorized_videos", &user)
        .await
        .expect(200);
    for genre in ["drama", "documentary", "technic", "horror", "action"] {
        assert_eq!(cat.body[genre].as_array().map(Vec::len), Some(1), "{genre}");
    }

    // Anonymous callers are refused.
    app.call(Method::GET, "/api/videos/", None, None)
        .await
        .expect_error(401, "token");
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn grpc_pages_stay_stable_while_videos_are_added(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_token(&app).await;
    let mut video = app.video_client().await;
    let mut originals = Vec::new();
    for i in 0..7 {
        let created = video
            .create_video(authed(
                pb::CreateVideoRequest {
                    metadata: Some(pb::VideoMetadata {
                        title: format!("Video {i}"),
                        genre: pb::Genre::Drama as i32,
                        ..Default::default()
                    }),
                },
                &admin,
            ))
            .await
            .expect("create")
            .into_inner();
        originals.push(created.video.expect("video").id);
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut inserted = false;
    loop {
        let page = video
            .list_videos(authed(
                pb::ListVideosRequest {
                    page_size: 3,
                    page_token: token.clone(),
                    ..Default::default()
                },
                &admin,
            ))
            .await
            .expect("list")
            .into_inner();
        seen.extend(page.videos.iter().map(|v| v.id));
        if !inserted {
            // New uploads arrive between pages: they sort before the cursor, so the pages
            // that follow neither repeat nor skip anything.
            for title in ["Late 1", "Late 2"] {
                video
                    .create_video(authed(
                        pb::CreateVideoRequest {
                            metadata: Some(pb::VideoMetadata {
                                title: title.into(),
                                ..Default::default()
                            }),
                        },
                        &admin,
                    ))
                    .await
                    .expect("create");
            }
            inserted = true;
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    originals.reverse();
    assert_eq!(seen, originals);

    // Errors are INVALID_ARGUMENT naming the field; unknown ids NOT_FOUND; anonymous refused.
    for request in [
        pb::ListVideosRequest {
            page_token: "garbage".into(),
            ..Default::default()
        },
        pb::ListVideosRequest {
            ordering: "title".into(),
            ..Default::default()
        },
        pb::ListVideosRequest {
            page_size: -1,
            ..Default::default()
        },
        pb::ListVideosRequest {
            genre: 99,
            ..Default::default()
        },
    ] {
        let status = video
            .list_videos(authed(request, &admin))
            .await
            .expect_err("invalid");
        assert_eq!(status.code(), Code::InvalidArgument);
    }
    let status = video
        .get_video(authed(
            pb::GetVideoRequest {
                id: 424_242,
                ..Default::default()
            },
            &admin,
        ))
        .await
        .expect_err("missing");
    assert_eq!(status.code(), Code::NotFound);
    let status = video
        .update_video(authed(
            pb::UpdateVideoRequest {
                id: originals[0],
                metadata: None,
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["uploaded_by".into()],
                }),
                etag: String::new(),
            },
            &admin,
        ))
        .await
        .expect_err("bad mask");
    assert_eq!(status.code(), Code::InvalidArgument);
    let guest = guest_token(&app).await;
    let status = video
        .delete_video(authed(pb::DeleteVideoRequest { id: originals[0] }, &guest))
        .await
        .expect_err("not admin");
    assert_eq!(status.code(), Code::PermissionDenied);
    let categorized = video
        .list_categorized_videos(authed(pb::ListCategorizedVideosRequest::default(), &guest))
        .await
        .expect("categorized")
        .into_inner();
    assert_eq!(categorized.categories.len(), 5);
}
