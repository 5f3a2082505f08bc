//! Sessions over the legacy REST API: login errors that reveal nothing, one-click guests,
//! password reset, refresh-token reuse, bad tokens on protected paths, and a logout seen by
//! another process.

use reqwest::Method;
use rstest::rstest;
use serde_json::json;

use crate::helpers::{Backend, PASSWORD, spawn_app, spawn_peer};

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn login_errors_do_not_reveal_whether_an_account_exists(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.active_user("real@example.com", PASSWORD).await;
    let wrong_password = app
        .post(
            "/login/",
            json!({"email": "real@example.com", "password": "Wrong-Pass-123"}),
        )
        .await
        .expect_error(400, "credentials");
    let no_account = app
        .post(
            "/login/",
            json!({"email": "ghost@example.com", "password": "Wrong-Pass-123"}),
        )
        .await
        .expect_error(400, "credentials");
    assert_eq!(wrong_password.body, no_account.body);
    app.post("/login/", json!({"email": "real@example.com"}))
        .await
        .expect_error(400, "password");
    app.post("/login/", json!({"email": "nope", "password": "x"}))
        .await
        .expect_error(400, "email");
    // SimpleJWT-style endpoint.
    let pair = app
        .post(
            "/jwt/",
            json!({"email": "real@example.com", "password": PASSWORD}),
        )
        .await
        .expect(200);
    assert!(pair.body["access"].is_string() && pair.body["refresh"].is_string());
    app.post(
        "/jwt/",
        json!({"email": "real@example.com", "password": "nope-nope-1"}),
    )
    .await
    .expect_error(401, "credentials");
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn guests_log_in_with_one_click_and_vanish_at_logout(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    // The legacy demo button sends {email, username} and no password.
    let reply = app
        .post(
            "/login/",
            json!({"email": "guest@videoflix.com", "username": "guest"}),
        )
        .await
        .expect(200);
    let token = reply.body["token"].as_str().expect("token").to_owned();
    let email = reply.body["email"].as_str().expect("email").to_owned();
    assert!(
        email.starts_with("videoflix-") && email.ends_with("@guest.videoflix.com"),
        "{email}"
    );
    assert_eq!(reply.body["is_guest"], true);
    let user_id = reply.body["user_id"].as_i64().expect("id");
    app.get_auth("/api/me/", &token).await.expect(200);

    // Any password works for the guest e-mail too, and each click is a new guest.
    let other = app
        .post(
            "/login/",
            json!({"email": "Guest@Videoflix.com", "password": "whatever"}),
        )
        .await
        .expect(200);
    assert_ne!(other.body["email"], reply.body["email"]);
    let third = app.post("/guest-login/", json!({})).await.expect(200);
    assert_eq!(third.body["is_guest"], true);

    // Logout deletes the guest: 204, token dead, account gone.
    let bye = app
        .call(Method::DELETE, "/logout", None, Some(&token))
        .await
        .expect(204);
    assert!(bye.text.is_empty());
    app.get_auth("/api/me/", &token)
        .await
        .expect_error(401, "token");
    let gone = app
        .services
        .store
        .user_by_id(videoflix::domain::UserId::parse(user_id, "id").expect("id"))
        .await
        .expect("query");
    assert!(gone.is_none());

    // Guests cannot reset a password (no mail, for a guest that still exists), and old guests
    // are purged.
    let live = other.body["email"].as_str().expect("a live guest's e-mail");
    app.post("/reset-password/", json!({"email": live}))
        .await
        .expect(200);
    let purged = app
        .services
        .store
        .purge_guests(videoflix::store::Timestamp::now().plus_secs(1))
        .await
        .expect("purge");
    assert_eq!(purged, 2);
    app.mail_drained().await;
    assert!(app.mail.all().is_empty());
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn password_reset_works_once_and_ends_every_session(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let email = "reset@example.com";
    let old_token = app.active_user(email, PASSWORD).await;
    // Use the session first, so any in-memory copy of it must be dropped by the reset.
    app.get_auth("/api/me/", &old_token).await.expect(200);

    // Same answer for an unknown e-mail, and no mail for it.
    let known = app
        .post("/reset-password/", json!({"email": email}))
        .await
        .expect(200);
    let unknown = app
        .post("/reset-password", json!({"email": "nobody@example.com"}))
        .await
        .expect(200);
    assert_eq!(known.body, unknown.body);
    app.post("/reset-password/", json!({"email": "bad"}))
        .await
        .expect_error(400, "email");

    let mail = app.mail.wait_for(email, 2).await;
    assert_eq!(mail.subject(), "Reset your password");
    app.mail_drained().await;
    assert!(
        app.mail.to("nobody@example.com").is_empty(),
        "a mail to an unknown address"
    );
    let (uid, token) = mail.link_parts("reset-password");

    // Weak or mismatched passwords are refused, naming the field; the link survives.
    app.post(
        "/new-password/",
        json!({"uid": uid, "token": token, "new_password": "123", "confirm_new_password": "123"}),
    )
    .await
    .expect_error(400, "password");
    app.post(
        "/new-password/",
        json!({"uid": uid, "token": token, "new_password": "Brand-New-Pass-42", "confirm_new_password": "Other-Pass-42x"}),
    )
    .await
    .expect_error(400, "password");

    let new_password = "Brand-New-Pass-42";
    app.post(
        "/new-password/",
        json!({"uid": uid, "token": token, "new_password": new_password, "confirm_new_password": new_password}),
    )
    .await
    .expect(200);

    // Old sessions are revoked, the old password is dead, the new one works.
    app.get_auth("/api/me/", &old_token)
        .await
        .expect_error(401, "token");
    app.post("/login/", json!({"email": email, "password": PASSWORD}))
        .await
        .expect_error(400, "credentials");
    app.login(email, new_password).await;

    // The link cannot be used again.
    app.post(
        "/new-password/",
        json!({"uid": uid, "token": token, "new_password": "Third-Pass-777", "confirm_new_password": "Third-Pass-777"}),
    )
    .await
    .expect_error(400, "token");
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn reusing_a_spent_refresh_token_revokes_the_session(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.active_user("rot@example.com", PASSWORD).await;
    let pair = app
        .post(
            "/jwt/",
            json!({"email": "rot@example.com", "password": PASSWORD}),
        )
        .await
        .expect(200);
    let first = pair.body["refresh"].as_str().expect("refresh").to_owned();
    let next = app
        .post("/jwt/refresh/", json!({"refresh": first}))
        .await
        .expect(200);
    let second = next.body["refresh"].as_str().expect("refresh").to_owned();
    let access = next.body["access"].as_str().expect("access").to_owned();
    app.get_auth("/api/me/", &access).await.expect(200);

    // Replay of the spent token: refused, and the whole family dies.
    app.post("/jwt/refresh/", json!({"refresh": first}))
        .await
        .expect_error(401, "token");
    app.post("/jwt/refresh/", json!({"refresh": second}))
        .await
        .expect_error(401, "token");
    app.get_auth("/api/me/", &access)
        .await
        .expect_error(401, "token");

    app.post("/jwt/refresh/", json!({"refresh": "garbage"}))
        .await
        .expect_error(401, "token");
    app.post("/jwt/refresh/", json!({}))
        .await
        .expect_error(400, "token");
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn protected_paths_reject_missing_malformed_and_forged_tokens(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.call(Method::GET, "/api/me/", None, None)
        .await
        .expect_error(401, "token");
    app.call(Method::DELETE, "/logout/", None, None)
        .await
        .expect_error(401, "token");
    for header in [
        "Token",
        "Basic abc",
        "Bearer not.a.jwt",
        "Token eyJhbGciOiJIUzI1NiJ9.e30.x",
    ] {
        let response = app
            .http
            .get(format!("{}/api/me/", app.base))
            .header("authorization", header)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 401, "{header}");
    }
    // A token signed with another secret.
    let other = videoflix::security::Tokens::new("another-secret-another-secret-xyz", 60);
    let forged = other
        .issue_access(
            videoflix::domain::UserId::parse(1, "id").expect("id"),
            "nope",
        )
        .expect("sign");
    app.get_auth("/api/me/", &forged)
        .await
        .expect_error(401, "token");

    // Bad profile input is refused, naming the field.
    let token = app.active_user("me@example.com", PASSWORD).await;
    app.call(
        Method::PATCH,
        "/api/me/",
        Some(json!({"phone": "call me maybe"})),
        Some(&token),
    )
    .await
    .expect_error(400, "phone");
    app.call(
        Method::PATCH,
        "/api/me/",
        Some(json!({"address": "x".repeat(300)})),
        Some(&token),
    )
    .await
    .expect_error(400, "address");
    // Unknown paths and methods answer JSON too.
    app.call(Method::GET, "/nope/", None, None)
        .await
        .expect_error(404, "not_found");
    app.call(Method::GET, "/login/", None, None)
        .await
        .expect_error(405, "request");
}

#[tokio::test]
async fn a_logout_on_one_process_is_seen_at_once_by_another() {
    let first = spawn_app(Backend::Real).await;
    let second = spawn_peer(&first, Vec::new()).await;
    let token = first.active_user("multi@example.com", PASSWORD).await;
    // The second process verifies (and caches) the session.
    second.get_auth("/api/me/", &token).await.expect(200);
    second.get_auth("/api/me/", &token).await.expect(200);

    // A profile change on the first process shows on the second at once.
    first
        .call(
            Method::PATCH,
            "/api/me/",
            Some(json!({"phone": "12345"})),
            Some(&token),
        )
        .await
        .expect(200);
    let me = second.get_auth("/api/me/", &token).await.expect(200);
    assert_eq!(me.body["phone"], "12345");

    // Logout on the first process: the second refuses the token immediately.
    first
        .call(Method::DELETE, "/logout/", None, Some(&token))
        .await
        .expect(200);
    second
        .get_auth("/api/me/", &token)
        .await
        .expect_error(401, "token");
}
