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
    // Every limit at one per hour, then switched off: nothing answers 429.
    let one = "1/hour";
    let app = spawn_app_with(
        backend,
        with(&[
            ("--throttle-enabled", "false"),
            ("--throttle-login-account", one),
            ("--throttle-login-account-all", one),
            ("--throttle-login-address", one),
            ("--throttle-register", one),
            ("--throttle-refresh", one),
            ("--throttle-mail", one),
            ("--throttle-anon", one),
            ("--throttle-user", one),
            ("--throttle-user-day", one),
        ]),
    )
    .await;
    let token = app.active_user("user@example.com", PASSWORD).await;
    for n in 0..3 {
        // Failed logins (per account, account-wide, per address).
        app.post(
            "/login/",
            json!({"email": "x@example.com", "password": "Nope-nope-1"}),
        )
        .await
        .expect_error(400, "credentials");
        // Registrations and mail flows.
        let email = format!("new{n}@example.com");
        app.post(
            "/register/",
            json!({"email": email, "password": PASSWORD, "confirm_password": PASSWORD}),
        )
        .await
        .expect(201);
        app.post("/reset-password/", json!({"email": "user@example.com"}))
            .await
            .expect(200);
        // Token rotations.
        let pair = app
            .post(
                "/jwt/",
                json!({"email": "user@example.com", "password": PASSWORD}),
            )
            .await
            .expect(200);
        app.post("/jwt/refresh/", json!({"refresh": pair.body["refresh"]}))
            .await
            .expect(200);
        // Catalog calls by a user and by an anonymous caller.
        app.get_auth("/api/videos/", &token).await.expect(200);
        app.call(reqwest::Method::GET, "/api/videos/", None, None)
            .await
            .expect(401);
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
        crate::helpers::AppOptions {
            shipped_limits: true,
            ..Default::default()
        },
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

/// A REST client whose connections come from `source` (any 127.0.0.0/8 address reaches the
/// server on 127.0.0.1).
fn client_from(source: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(source))
        .build()
        .expect("client")
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn an_attacker_elsewhere_cannot_lock_the_owner_out(#[case] backend: Backend) {
    let app = spawn_app_with(
        backend,
        with(&[
            ("--throttle-login-account", "5/min"),
            ("--throttle-login-account-all", "6/hour"),
        ]),
    )
    .await;
    app.active_user("owner@example.com", PASSWORD).await;
    let login = |client: reqwest::Client, password: &'static str| {
        let url = format!("{}/login/", app.base);
        async move {
            client
                .post(url)
                .json(&json!({"email": "owner@example.com", "password": password}))
                .send()
                .await
                .expect("login")
                .status()
                .as_u16()
        }
    };
    // The attacker on 127.0.0.2 guesses until it is throttled (5/min per account and address).
    let attacker = client_from([127, 0, 0, 2]);
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(login(attacker.clone(), "Guess-123456").await);
    }
    assert_eq!(statuses, vec![400, 400, 400, 400, 400, 429, 429]);
    // The owner on 127.0.0.3 gets in at once, on the web path and the SimpleJWT one.
    let owner = client_from([127, 0, 0, 3]);
    assert_eq!(login(owner.clone(), PASSWORD).await, 200);
    let jwt = owner
        .post(format!("{}/jwt/", app.base))
        .json(&json!({"email": "owner@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("jwt");
    assert_eq!(jwt.status(), 200);
    // Guessing from many addresses: past the account's limit (6 failures from anywhere), an
    // address that failed waits; a fresh one (the owner's) still logs in.
    let second = client_from([127, 0, 0, 4]);
    assert_eq!(login(second.clone(), "Guess-654321").await, 400);
    assert_eq!(login(second, "Guess-654321").await, 429);
    assert_eq!(login(client_from([127, 0, 0, 5]), PASSWORD).await, 200);
}

#[rstest]
#[case::rest(true)]
#[case::grpc(false)]
#[tokio::test]
async fn a_forged_first_forwarded_for_line_does_not_dodge_the_address_limit(#[case] rest: bool) {
    let app = spawn_app_with(
        Backend::Embedded,
        with(&[
            ("--trust-proxy-headers", ""),
            ("--throttle-login-address", "2/min"),
        ]),
    )
    .await;
    let mut statuses = Vec::new();
    for i in 0..3 {
        // The client forges a first line; the proxy (HAProxy `option forwardfor`) adds its own.
        let forged = format!("6.6.6.{i}");
        let email = format!("nobody{i}@example.com");
        let status = if rest {
            app.http
                .post(format!("{}/login/", app.base))
                .header("x-forwarded-for", &forged)
                .header("x-forwarded-for", "10.1.1.1")
                .json(&json!({"email": email, "password": "Guess-123456"}))
                .send()
                .await
                .expect("login")
                .status()
                .as_u16()
        } else {
            let mut request = tonic::Request::new(pb::LoginRequest {
                email,
                password: "Guess-123456".to_owned(),
                remember_me: false,
            });
            let metadata = request.metadata_mut();
            metadata.append("x-forwarded-for", forged.parse().expect("ascii"));
            metadata.append("x-forwarded-for", "10.1.1.1".parse().expect("ascii"));
            match app.auth_client().await.login(request).await {
                Ok(_) => 200,
                Err(status) if status.code() == Code::ResourceExhausted => 429,
                Err(_) => 400,
            }
        };
        statuses.push(status);
    }
    assert_eq!(
        statuses,
        vec![400, 400, 429],
        "the proxy's entry is the client"
    );
}

#[tokio::test]
async fn refresh_token_guesses_are_throttled_per_address() {
    let app = spawn_app_with(Backend::Embedded, with(&[("--throttle-refresh", "2/min")])).await;
    let mut statuses = Vec::new();
    for i in 0..3 {
        let reply = app
            .post("/jwt/refresh/", json!({"refresh": format!("guess-{i}")}))
            .await;
        statuses.push(reply.status.as_u16());
    }
    assert_eq!(statuses, vec![401, 401, 429]);
}
