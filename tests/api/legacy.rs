//! The original frontend's contract: on the legacy account paths every client error is a 400 with
//! `{type, message}` (it reads an error body only of a 400 or 404), throttling stays 429, the
//! SimpleJWT path keeps 401, and gRPC keeps its own codes for the same mistakes.

use rstest::rstest;
use serde_json::json;
use tonic::Code;

use crate::helpers::{Backend, PASSWORD, spawn_app, spawn_app_with, with};
use videoflix::grpc::pb;

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn every_client_error_on_a_legacy_account_path_is_a_400_with_its_type(
    #[case] backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.active_user("owner@example.com", PASSWORD).await;
    let register =
        |email: &str| json!({"email": email, "password": PASSWORD, "confirm_password": PASSWORD});
    app.post("/register/", register("pending@example.com"))
        .await
        .expect(201);

    let cases = [
        ("/register/", register("OWNER@example.com"), "email"),
        ("/register/", register("not-an-email"), "email"),
        (
            "/login/",
            json!({"email": "owner@example.com", "password": "Wrong-Pass-123"}),
            "credentials",
        ),
        (
            "/login/",
            json!({"email": "nobody@example.com", "password": "Wrong-Pass-123"}),
            "credentials",
        ),
        (
            "/login/",
            json!({"email": "pending@example.com", "password": PASSWORD}),
            "account",
        ),
        (
            "/activate-account/",
            json!({"uid": "MQ", "token": "forged-token"}),
            "token",
        ),
        ("/resend-activation/", json!({"email": "nope"}), "email"),
        ("/reset-password/", json!({"email": "nope"}), "email"),
        (
            "/new-password/",
            json!({"uid": "MQ", "token": "forged-token", "new_password": PASSWORD,
                   "confirm_new_password": PASSWORD}),
            "token",
        ),
    ];
    for (path, body, kind) in cases {
        let reply = app.post(path, body.clone()).await;
        assert_eq!(reply.status, 400, "{path} {body}: {}", reply.text);
        assert_eq!(
            reply.body["type"],
            json!([kind]),
            "{path} {body}: {}",
            reply.text
        );
        assert!(
            reply.body["message"][0]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{path}: {}",
            reply.text
        );
    }

    // The SimpleJWT path answers as simplejwt does.
    app.post(
        "/jwt/",
        json!({"email": "owner@example.com", "password": "Wrong-Pass-123"}),
    )
    .await
    .expect_error(401, "credentials");

    // gRPC keeps its own semantics for the same mistakes.
    let mut auth = app.auth_client().await;
    let taken = auth
        .register(pb::RegisterRequest {
            email: "owner@example.com".to_owned(),
            password: PASSWORD.to_owned(),
            confirm_password: PASSWORD.to_owned(),
        })
        .await
        .expect_err("taken");
    assert_eq!(taken.code(), Code::AlreadyExists);
    let wrong = auth
        .login(pb::LoginRequest {
            email: "owner@example.com".to_owned(),
            password: "Wrong-Pass-123".to_owned(),
            remember_me: false,
        })
        .await
        .expect_err("wrong password");
    assert_eq!(wrong.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn throttling_on_a_legacy_account_path_stays_429_with_retry_after() {
    let app = spawn_app_with(
        Backend::Embedded,
        with(&[("--throttle-login-account", "1/min")]),
    )
    .await;
    app.active_user("owner@example.com", PASSWORD).await;
    let guess = json!({"email": "owner@example.com", "password": "Wrong-Pass-123"});
    app.post("/login/", guess.clone())
        .await
        .expect_error(400, "credentials");
    let throttled = app
        .post("/login/", guess)
        .await
        .expect_error(429, "throttled");
    assert!(throttled.headers.contains_key("retry-after"));
}
