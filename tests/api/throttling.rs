//! Rate limits on the account flows, per account and per address, shared across processes when
//! Redis is configured.

use rstest::rstest;
use serde_json::json;
use tonic::Code;
use tonic_types::StatusExt;
use videoflix::grpc::pb;

use crate::helpers::{Backend, PASSWORD, spawn_app_with, spawn_peer, with};

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn failed_logins_lock_the_account_with_retry_after(#[case] backend: Backend) {
    let app = spawn_app_with(backend, with(&[("--throttle-login-account", "3/min")])).await;
    app.active_user("victim@example.com", PASSWORD).await;
    for _ in 0..3 {
        app.post(
            "/login/",
            json!({"email": "victim@example.com", "password": "Nope-nope-1"}),
        )
        .await
        .expect_error(400, "credentials");
    }
    let locked = app
        .post(
            "/login/",
            json!({"email": "victim@example.com", "password": PASSWORD}),
        )
        .await
        .expect_error(429, "throttled");
    let retry_after: u64 = locked
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After header");
    assert!((1..=60).contains(&retry_after), "{retry_after}");

    // Over gRPC: RESOURCE_EXHAUSTED with RetryInfo.
    let mut auth = app.auth_client().await;
    let status = auth
        .login(pb::LoginRequest {
            email: "victim@example.com".into(),
            password: PASSWORD.into(),
            remember_me: false,
        })
        .await
        .expect_err("locked");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(status.get_error_details().retry_info().is_some());

    // Other accounts are unaffected.
    app.active_user("bystander@example.com", PASSWORD).await;
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn failed_logins_are_limited_per_address_and_mail_flows_too(#[case] backend: Backend) {
    let app = spawn_app_with(
        backend,
        with(&[
            ("--throttle-login-address", "4/min"),
            ("--throttle-register", "2/min"),
            ("--throttle-mail", "2/min"),
        ]),
    )
    .await;
    for i in 0..4 {
        app.post(
            "/login/",
            json!({"email": format!("u{i}@example.com"), "password": "Nope-nope-1"}),
        )
        .await
        .expect_error(400, "credentials");
    }
    app.post(
        "/login/",
        json!({"email": "u9@example.com", "password": "Nope-nope-1"}),
    )
    .await
    .expect_error(429, "throttled");

    for i in 0..2 {
        app.post(
            "/register/",
            json!({"email": format!("r{i}@example.com"), "password": PASSWORD, "confirm_password": PASSWORD}),
        )
        .await
        .expect(201);
    }
    app.post(
        "/register/",
        json!({"email": "r3@example.com", "password": PASSWORD, "confirm_password": PASSWORD}),
    )
    .await
    .expect_error(429, "throttled");

    for _ in 0..2 {
        app.post("/reset-password/", json!({"email": "r0@example.com"}))
            .await
            .expect(200);
    }
    app.post("/reset-password/", json!({"email": "r1@example.com"}))
        .await
        .expect_error(429, "throttled");
    // Activation mails have their own budget: a spent reset budget does not block them.
    for _ in 0..2 {
        app.post("/resend-activation/", json!({"email": "r1@example.com"}))
            .await
            .expect(200);
    }
    app.post("/resend-activation/", json!({"email": "r2@example.com"}))
        .await
        .expect_error(429, "throttled");
}

#[tokio::test]
async fn parallel_guesses_cannot_outrun_the_account_limit() {
    let app = spawn_app_with(
        Backend::Embedded,
        with(&[("--throttle-login-account", "3/min")]),
    )
    .await;
    app.active_user("target@example.com", PASSWORD).await;
    let guesses = (0..12).map(|i| {
        let app = &app;
        async move {
            app.post(
                "/login/",
                json!({"email": "target@example.com", "password": format!("Guess-{i}-xyz")}),
            )
            .await
            .status
            .as_u16()
        }
    });
    let statuses = futures::future::join_all(guesses).await;
    let wrong = statuses.iter().filter(|s| **s == 400).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((wrong, throttled), (3, 9), "{statuses:?}");
}

#[tokio::test]
async fn limits_are_shared_by_every_process_of_a_deployment() {
    let args = &[("--throttle-login-account", "2/min")];
    let first = spawn_app_with(Backend::Real, with(args)).await;
    let second = spawn_peer(&first, with(args).args).await;
    first.active_user("shared@example.com", PASSWORD).await;

    first
        .post(
            "/login/",
            json!({"email": "shared@example.com", "password": "Nope-nope-1"}),
        )
        .await
        .expect_error(400, "credentials");
    second
        .post(
            "/login/",
            json!({"email": "shared@example.com", "password": "Nope-nope-1"}),
        )
        .await
        .expect_error(400, "credentials");
    first
        .post(
            "/login/",
            json!({"email": "shared@example.com", "password": PASSWORD}),
        )
        .await
        .expect_error(429, "throttled");
    second
        .post(
            "/login/",
            json!({"email": "shared@example.com", "password": PASSWORD}),
        )
        .await
        .expect_error(429, "throttled");
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn throttle_enabled_false_turns_every_limit_off(#[case] backend: Backend) {
    let app = spawn_app_with(
        backend,
        with(&[
            ("--throttle-enabled", "false"),
            ("--throttle-login-account", "1/hour"),
        ]),
    )
    .await;
    for _ in 0..4 {
        app.post(
            "/login/",
            json!({"email": "x@example.com", "password": "Nope-nope-1"}),
        )
        .await
        .expect_error(400, "credentials");
    }
}

#[tokio::test]
async fn the_default_limits_throttle_a_brute_force_attack() {
    // The shipped default: 5 failed logins per account per minute.
    let defaults = videoflix::config::Settings::from_args(["videoflix"]).expect("defaults");
    assert_eq!(
        defaults.throttle_login_account,
        "5/min".parse().expect("rate")
    );
    let app = spawn_app_with(
        Backend::Embedded,
        with(&[("--throttle-login-account", "5/min")]),
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let reply = app
            .post(
                "/login/",
                json!({"email": "target@example.com", "password": "Guess-123456"}),
            )
            .await;
        statuses.push(reply.status.as_u16());
    }
    assert_eq!(statuses, vec![400, 400, 400, 400, 400, 429, 429]);
}
