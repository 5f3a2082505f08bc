//! The catalog over REST and gRPC: what its stories share (an admin, a guest, seeded videos).
//! The stories: queries in `catalog_lists`, admin writes and per-user state in
//! `catalog_writes`, caching and throttling in `catalog_cache`.

use reqwest::Method;
use serde_json::{Value, json};
use videoflix::{domain::Email, store::NewUser};

use crate::helpers::{PASSWORD, TestApp};

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

pub(crate) async fn guest_token(app: &TestApp) -> String {
    let reply = app.post("/guest-login/", json!({})).await.expect(200);
    reply.body["token"].as_str().expect("token").to_owned()
}

pub(crate) async fn create(app: &TestApp, admin: &str, body: Value) -> Value {
    app.call(Method::POST, "/api/videos/", Some(body), Some(admin))
        .await
        .expect(201)
        .body
}

pub(crate) fn titles(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|v| v["title"].as_str().expect("title").to_owned())
        .collect()
}

/// Six videos, created oldest first.
pub(crate) async fn seed(app: &TestApp, admin: &str) -> Vec<i64> {
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
