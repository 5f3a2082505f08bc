//! The catalog over REST and gRPC: queries, admin writes, per-user state, caching, throttling.

use reqwest::Method;
use rstest::rstest;
use serde_json::{Value, json};
use tonic::Code;
use videoflix::{domain::Email, grpc::pb, store::NewUser};

use crate::helpers::{
    AppOptions, Backend, PASSWORD, TestApp, authed, spawn_app, spawn_app_with, spawn_peer,
};

/// Creates an active superuser directly in the store and logs in.
pub(crate) async fn admin_token(app: &TestApp) -> String {
    let email = Email::parse("admin@example.com").expect("email");
    let hash = app
        .services
        .accounts
        .hasher()
        .hash(PASSWORD)
        .await
        .expect("hash");
    app.services
        .store
        .create_user(NewUser {
            email: &email,
            password_hash: &hash,
            is_active: true,
            is_superuser: true,
            is_guest: false,
        })
        .await
        .expect("admin");
    app.login("admin@example.com", PASSWORD).await
}

async fn guest_token(app: &TestApp) -> String {
    let reply = app.post("/guest-login/", json!({})).await.expect(200);
    reply.body["token"].as_str().expect("token").to_owned()
}

async fn create(app: &TestApp, admin: &str, body: Value) -> Value {
    app.call(Method::POST, "/api/videos/", Some(body), Some(admin))
        .await
        .expect(201)
        .body
}

fn titles(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|v| v["title"].as_str().expect("title").to_owned())
        .collect()
}

/// Six videos, created oldest first.
async fn seed(app: &TestApp, admin: &str) -> Vec<i64> {
    let specs = [
        (
            "Ocean Deep",
            "A documentary about the OCEAN floor",
            "documentary",
            "english",
        ),
        ("Fast Cars", "Action on wheels", "action", "german"),
        ("Night Shift", "Horror in a hospital", "horror", "english"),
        ("Family Ties", "A quiet drama", "drama", "french"),
        (
            "Rust in Production",
            "How engines are built",
            "technic",
            "german",
        ),
        ("Untitled Short", "No genre at all", "", ""),
    ];
    let mut ids = Vec::new();
    for (title, description, genre, language) in specs {
        let video = create(
            app,
            admin,
            json!({"title": title, "description": description, "author": "Videoflix",
                   "genre": genre, "language": language}),
        )
        .await;
        ids.push(video["id"].as_i64().expect("id"));
    }
    ids
}

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
async fn only_superusers_write_and_writes_are_validated(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_token(&app).await;
    let user = guest_token(&app).await;
    let body = json!({"title": "T", "genre": "drama"});
    app.call(
        Method::POST,
        "/api/videos/",
        Some(body.clone()),
        Some(&user),
    )
    .await
    .expect_error(403, "permission");
    let video = create(
        &app,
        &admin,
        json!({"title": "Original", "description": "d", "genre": "drama", "language": "english"}),
    )
    .await;
    let id = video["id"].as_i64().expect("id");
    let path = format!("/api/videos/{id}/");
    for method in [Method::PUT, Method::PATCH] {
        app.call(method, &path, Some(body.clone()), Some(&user))
            .await
            .expect_error(403, "permission");
    }
    app.call(Method::DELETE, &path, None, Some(&user))
        .await
        .expect_error(403, "permission");
    app.call(Method::PATCH, &path, Some(json!({})), Some(&user))
        .await
        .expect_error(403, "permission");
    // An empty PATCH by an admin changes nothing.
    let same = app
        .call(Method::PATCH, &path, Some(json!({})), Some(&admin))
        .await
        .expect(200);
    assert_eq!(same.body["updated_at"], video["updated_at"]);

    // Validation names the field.
    for (body, kind) in [
        (json!({}), "title"),
        (json!({"title": "x".repeat(151)}), "title"),
        (
            json!({"title": "ok", "description": "d".repeat(1001)}),
            "description",
        ),
        (json!({"title": "ok", "author": "a".repeat(151)}), "author"),
        (json!({"title": "ok", "genre": "comedy"}), "genre"),
        (json!({"title": "ok", "language": "latin"}), "language"),
        (json!({"title": 42}), "title"),
    ] {
        app.call(Method::POST, "/api/videos/", Some(body), Some(&admin))
            .await
            .expect_error(400, kind);
    }

    // A multipart form of the fields works; a file part is refused clearly, nothing created.
    let form = reqwest::multipart::Form::new()
        .text("title", "From a form")
        .text("genre", "action");
    let response = app
        .http
        .post(format!("{}/api/videos/", app.base))
        .header("authorization", format!("Token {admin}"))
        .multipart(form)
        .send()
        .await
        .expect("multipart");
    assert_eq!(response.status(), 201);
    let form = reqwest::multipart::Form::new()
        .text("title", "With file")
        .part(
            "video_file",
            reqwest::multipart::Part::bytes(vec![0u8; 16]).file_name("x.mp4"),
        );
    let response = app
        .http
        .post(format!("{}/api/videos/", app.base))
        .header("authorization", format!("Token {admin}"))
        .multipart(form)
        .send()
        .await
        .expect("multipart");
    // Sixteen zero bytes are not a video.
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["type"], json!(["video_file"]), "{body}");

    // Warm the cache, then PATCH: the list shows the change at once.
    app.get_auth("/api/videos/", &user).await.expect(200);
    let patched = app
        .call(
            Method::PATCH,
            &path,
            Some(json!({"title": "Renamed"})),
            Some(&admin),
        )
        .await
        .expect(200);
    assert_eq!(
        (
            patched.body["title"].as_str(),
            patched.body["genre"].as_str()
        ),
        (Some("Renamed"), Some("drama"))
    );
    assert!(
        titles(&app.get_auth("/api/videos/", &user).await.expect(200).body)
            .contains(&"Renamed".to_owned())
    );
    let cleared = app
        .call(
            Method::PATCH,
            &path,
            Some(json!({"genre": null})),
            Some(&admin),
        )
        .await
        .expect(200);
    assert_eq!(cleared.body["genre"], Value::Null);
    assert_eq!(cleared.body["title"], "Renamed");
    // PUT replaces everything: missing fields become empty, title is required.
    app.call(
        Method::PUT,
        &path,
        Some(json!({"description": "x"})),
        Some(&admin),
    )
    .await
    .expect_error(400, "title");
    let put = app
        .call(
            Method::PUT,
            &path,
            Some(json!({"title": "Replaced"})),
            Some(&admin),
        )
        .await
        .expect(200);
    assert_eq!(
        (
            put.body["description"].as_str(),
            put.body["language"].clone()
        ),
        (Some(""), Value::Null)
    );
    assert_ne!(put.body["updated_at"], video["updated_at"]);

    // Delete: 204, then gone everywhere, also from the cached lists.
    app.call(Method::DELETE, &path, None, Some(&admin))
        .await
        .expect(204);
    app.get_auth(&path, &user)
        .await
        .expect_error(404, "not_found");
    app.call(Method::DELETE, &path, None, Some(&admin))
        .await
        .expect_error(404, "not_found");
    assert!(
        !titles(&app.get_auth("/api/videos/", &user).await.expect(200).body)
            .contains(&"Replaced".to_owned())
    );
    app.call(
        Method::PATCH,
        "/api/videos/999999/",
        Some(json!({"title": "x"})),
        Some(&admin),
    )
    .await
    .expect_error(404, "not_found");
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn favorites_and_progress_belong_to_each_user(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_token(&app).await;
    let ids = seed(&app, &admin).await;
    let alice = guest_token(&app).await;
    let bob = guest_token(&app).await;

    // Both warm the shared cache first.
    app.get_auth("/api/videos/", &alice).await.expect(200);
    app.get_auth("/api/videos/", &bob).await.expect(200);
    let fav = app
        .call(
            Method::POST,
            &format!("/api/videos/{}/favorite/", ids[2]),
            None,
            Some(&alice),
        )
        .await
        .expect(200);
    assert_eq!(fav.body["is_favorite"], true);
    let is_fav = |list: &Value, id: i64| {
        list.as_array()
            .expect("array")
            .iter()
            .find(|v| v["id"] == id)
            .map(|v| v["is_favorite"].clone())
    };
    let for_alice = app.get_auth("/api/videos/", &alice).await.expect(200).body;
    let for_bob = app.get_auth("/api/videos/", &bob).await.expect(200).body;
    assert_eq!(is_fav(&for_alice, ids[2]), Some(json!(true)));
    assert_eq!(is_fav(&for_bob, ids[2]), Some(json!(false)));
    assert_eq!(
        titles(
            &app.get_auth("/api/videos/?is_favorite=true", &alice)
                .await
                .expect(200)
                .body
        ),
        ["Night Shift"]
    );
    assert_eq!(
        app.get_auth("/api/videos/?is_favorite=true", &bob)
            .await
            .expect(200)
            .body,
        json!([])
    );
    assert_eq!(
        titles(
            &app.get_auth("/api/favorites/", &alice)
                .await
                .expect(200)
                .body
        ),
        ["Night Shift"]
    );
    app.call(
        Method::POST,
        "/api/videos/999999/favorite/",
        None,
        Some(&alice),
    )
    .await
    .expect_error(404, "not_found");
    app.call(
        Method::DELETE,
        &format!("/api/videos/{}/favorite", ids[2]),
        None,
        Some(&alice),
    )
    .await
    .expect(204);
    assert_eq!(
        app.get_auth("/api/favorites/", &alice)
            .await
            .expect(200)
            .body,
        json!([])
    );

    // Watch progress and "continue watching".
    let saved = app
        .call(
            Method::PUT,
            &format!("/api/videos/{}/progress/", ids[0]),
            Some(json!({"position": 42.5})),
            Some(&alice),
        )
        .await
        .expect(200);
    assert_eq!(saved.body["position"], 42.5);
    let cont = app
        .get_auth("/api/continue-watching/", &alice)
        .await
        .expect(200)
        .body;
    assert_eq!(titles(&cont), ["Ocean Deep"]);
    assert_eq!(cont[0]["progress"], 42.5);
    assert_eq!(
        app.get_auth("/api/continue-watching", &bob)
            .await
            .expect(200)
            .body,
        json!([])
    );
    for (body, kind) in [
        (json!({}), "position"),
        (json!({"position": -1}), "position_seconds"),
    ] {
        app.call(
            Method::PUT,
            &format!("/api/videos/{}/progress/", ids[0]),
            Some(body),
            Some(&alice),
        )
        .await
        .expect_error(400, kind);
    }
    app.call(
        Method::PUT,
        "/api/videos/999999/progress/",
        Some(json!({"position": 1})),
        Some(&alice),
    )
    .await
    .expect_error(404, "not_found");
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
async fn viewers_see_who_uploaded_a_video_but_not_their_personal_data(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_token(&app).await;
    app.call(
        Method::PATCH,
        "/api/me/",
        Some(json!({"phone": "+49 30 1234", "address": "Main St 1"})),
        Some(&admin),
    )
    .await
    .expect(200);
    let video = create(&app, &admin, json!({"title": "Mine"})).await;
    let id = video["id"].as_i64().expect("id");
    let admin_id = video["uploaded_by"]["id"].clone();
    assert_eq!(video["uploaded_by"]["email"], "admin@example.com");

    let guest = guest_token(&app).await;
    for path in [
        format!("/api/videos/{id}/"),
        "/api/videos/".to_owned(),
        "/api/videos/recent_videos/".to_owned(),
    ] {
        let body = app.get_auth(&path, &guest).await.expect(200).body;
        let text = body.to_string();
        assert!(
            !text.contains("admin@example.com")
                && !text.contains("1234")
                && !text.contains("Main St"),
            "{path}: {text}"
        );
        let shown = if body.is_array() {
            body[0].clone()
        } else {
            body
        };
        assert_eq!(shown["uploaded_by"]["id"], admin_id, "{path}");
    }
    let mut client = app.video_client().await;
    let grpc = client
        .get_video(authed(
            pb::GetVideoRequest {
                id,
                if_none_match: String::new(),
            },
            &guest,
        ))
        .await
        .expect("get")
        .into_inner()
        .video
        .and_then(|v| v.uploaded_by)
        .expect("uploader");
    assert_eq!(
        (
            grpc.email.as_str(),
            grpc.phone.as_str(),
            grpc.address.as_str()
        ),
        ("", "", "")
    );
    // A superuser still sees them (and the cache keeps viewers' and admins' answers apart).
    let seen = app
        .get_auth(&format!("/api/videos/{id}/"), &admin)
        .await
        .expect(200)
        .body;
    assert_eq!(seen["uploaded_by"]["email"], "admin@example.com");
    assert_eq!(seen["uploaded_by"]["phone"], "+49 30 1234");
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
