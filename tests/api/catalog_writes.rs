//! Catalog writes and per-user state: only superusers write and writes are validated,
//! favourites and progress belong to each user, and viewers see who uploaded a video but not
//! their personal data.

use reqwest::Method;
use rstest::rstest;
use serde_json::{Value, json};
use videoflix::grpc::pb;

use crate::{
    catalog::{admin_token, create, guest_token, seed, titles},
    helpers::{Backend, authed, spawn_app},
};

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
