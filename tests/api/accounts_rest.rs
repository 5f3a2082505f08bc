//! The account lifecycle over the legacy REST API: the whole lifecycle, registration and its
//! refusals, activation links and their resending. Sessions are in `accounts_sessions`.

use reqwest::Method;
use rstest::rstest;
use serde_json::json;

use crate::helpers::{Backend, PASSWORD, spawn_app};

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn the_full_account_lifecycle_works_over_rest(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let email = "Jane.Doe@Example.com";

    // Register: created inactive, normalised e-mail, activation mail sent.
    let reply = app
        .post(
            "/register/",
            json!({"email": email, "password": PASSWORD, "confirm_password": PASSWORD}),
        )
        .await
        .expect(201);
    assert_eq!(reply.body["email"], "jane.doe@example.com");
    let mail = app.mail.wait_for("jane.doe@example.com", 1).await;
    assert_eq!(mail.subject(), "Confirm your email");
    assert!(
        mail.text()
            .contains("http://frontend.test/activate-account/")
    );
    assert!(
        mail.html()
            .contains("href=\"http://frontend.test/activate-account/")
    );

    // Not active yet.
    app.post("/login/", json!({"email": email, "password": PASSWORD}))
        .await
        .expect_error(400, "account");

    // Activate from the link.
    let (uid, token) = mail.link_parts("activate-account");
    let reply = app
        .post("/activate-account/", json!({"uid": uid, "token": token}))
        .await
        .expect(200);
    assert!(reply.body["message"].is_string());

    // Login (without the trailing slash, as the legacy frontend sometimes calls it).
    let reply = app
        .post("/login", json!({"email": email, "password": PASSWORD}))
        .await
        .expect(200);
    let access = reply.body["token"].as_str().expect("token").to_owned();
    let refresh = reply.body["refresh"].as_str().expect("refresh").to_owned();
    assert_eq!(reply.body["email"], "jane.doe@example.com");
    assert_eq!(reply.body["expires_in"], 86_400);
    assert_eq!(reply.body["user"]["email"], "jane.doe@example.com");

    // Me, with both authorization schemes.
    let me = app.get_auth("/api/me/", &access).await.expect(200);
    assert_eq!(
        me.body,
        json!({"id": me.body["id"], "email": "jane.doe@example.com", "phone": "", "address": ""})
    );
    let bearer = app
        .http
        .get(format!("{}/api/me", app.base))
        .header("authorization", format!("Bearer {access}"))
        .send()
        .await
        .expect("request");
    assert_eq!(bearer.status(), 200);

    // Update the profile partially.
    let updated = app
        .call(
            Method::PATCH,
            "/api/me/",
            Some(json!({"phone": "+49 30 1234567"})),
            Some(&access),
        )
        .await
        .expect(200);
    assert_eq!(updated.body["phone"], "+49 30 1234567");
    assert_eq!(updated.body["address"], "");
    let updated = app
        .call(
            Method::PATCH,
            "/api/me",
            Some(json!({"address": "Main St 1, Berlin"})),
            Some(&access),
        )
        .await
        .expect(200);
    assert_eq!(updated.body["phone"], "+49 30 1234567");
    assert_eq!(updated.body["address"], "Main St 1, Berlin");

    // Refresh rotates; the new access token works.
    let pair = app
        .post("/jwt/refresh/", json!({"refresh": refresh}))
        .await
        .expect(200);
    let access2 = pair.body["access"].as_str().expect("access").to_owned();
    let refresh2 = pair.body["refresh"].as_str().expect("refresh").to_owned();
    assert_ne!(refresh2, refresh);
    app.get_auth("/api/me/", &access2).await.expect(200);

    // Logout: 200 {ok, message}; every token of the session dies at once.
    let reply = app
        .call(Method::DELETE, "/logout/", None, Some(&access2))
        .await
        .expect(200);
    assert_eq!(reply.body["ok"], true);
    assert!(reply.body["message"].is_string());
    app.get_auth("/api/me/", &access2)
        .await
        .expect_error(401, "token");
    app.get_auth("/api/me/", &access)
        .await
        .expect_error(401, "token");
    app.post("/jwt/refresh/", json!({"refresh": refresh2}))
        .await
        .expect_error(401, "token");

    // A new login still works.
    app.login(email, PASSWORD).await;
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn activation_links_are_single_use_and_tamper_proof(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.post(
        "/register/",
        json!({"email": "sam@example.com", "password": PASSWORD, "confirm_password": PASSWORD}),
    )
    .await
    .expect(201);
    let (uid, token) = app
        .mail
        .wait_for("sam@example.com", 1)
        .await
        .link_parts("activate-account");

    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('0') { '1' } else { '0' });
    for (uid, token) in [
        (uid.as_str(), tampered.as_str()),
        ("Zm9v", token.as_str()),
        ("", ""),
        ("!!!", "x"),
        ("OTk5OTk5", token.as_str()),
    ] {
        app.post("/activate-account/", json!({"uid": uid, "token": token}))
            .await
            .expect_error(400, "token");
    }

    app.post("/activate-account/", json!({"uid": uid, "token": token}))
        .await
        .expect(200);
    let again = app
        .post("/activate-account/", json!({"uid": uid, "token": token}))
        .await
        .expect_error(400, "account");
    assert!(again.text.contains("already active"), "{}", again.text);

    // A resend for an active account sends nothing.
    app.post("/resend-activation/", json!({"email": "sam@example.com"}))
        .await
        .expect(200);
    app.mail_drained().await;
    assert_eq!(app.mail.to("sam@example.com").len(), 1);
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn resend_activation_mails_a_fresh_working_link(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.post(
        "/register/",
        json!({"email": "kim@example.com", "password": PASSWORD, "confirm_password": PASSWORD}),
    )
    .await
    .expect(201);
    app.mail.wait_for("kim@example.com", 1).await;
    let reply = app
        .post("/resend-activation", json!({"email": "KIM@example.com"}))
        .await
        .expect(200);
    // The same answer for an unknown address: no enumeration.
    let unknown = app
        .post(
            "/resend-activation/",
            json!({"email": "nobody@example.com"}),
        )
        .await
        .expect(200);
    assert_eq!(reply.body, unknown.body);
    let (uid, token) = app
        .mail
        .wait_for("kim@example.com", 2)
        .await
        .link_parts("activate-account");
    app.post("/activate-account/", json!({"uid": uid, "token": token}))
        .await
        .expect(200);
    assert!(app.mail.to("nobody@example.com").is_empty());
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn registration_rejects_bad_input_naming_the_field(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let cases = [
        (
            json!({"email": "not-an-email", "password": PASSWORD, "confirm_password": PASSWORD}),
            "email",
            "valid email",
        ),
        (
            json!({"password": PASSWORD, "confirm_password": PASSWORD}),
            "email",
            "blank",
        ),
        (
            json!({"email": "a@example.com", "password": "short1", "confirm_password": "short1"}),
            "password",
            "too short",
        ),
        (
            json!({"email": "a@example.com", "password": "12345678901", "confirm_password": "12345678901"}),
            "password",
            "entirely numeric",
        ),
        (
            json!({"email": "a@example.com", "password": "password123", "confirm_password": "password123"}),
            "password",
            "too common",
        ),
        (
            json!({"email": "jonathan.smith@example.com", "password": "jonathansmith", "confirm_password": "jonathansmith"}),
            "password",
            "too similar",
        ),
        (
            json!({"email": "a@example.com", "password": PASSWORD, "confirm_password": "other-Password-9"}),
            "password",
            "do not match",
        ),
        (json!({"email": "a@example.com"}), "password", "blank"),
    ];
    for (body, kind, needle) in cases {
        let reply = app
            .post("/register/", body.clone())
            .await
            .expect_error(400, kind);
        assert!(
            reply.text.to_lowercase().contains(needle),
            "{body}: expected {needle:?} in {}",
            reply.text
        );
        assert!(reply.body["fields"].is_object(), "{}", reply.text);
    }

    // Duplicate (case-insensitive) → 400, as the original answered (gRPC: ALREADY_EXISTS).
    app.post(
        "/register/",
        json!({"email": "dup@example.com", "password": PASSWORD, "confirm_password": PASSWORD}),
    )
    .await
    .expect(201);
    app.post(
        "/register/",
        json!({"email": "DUP@example.com", "password": PASSWORD, "confirm_password": PASSWORD}),
    )
    .await
    .expect_error(400, "email");

    // Malformed JSON and wrong content type are clear 4xx in the same shape.
    let raw = app
        .http
        .post(format!("{}/register/", app.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(raw.status(), 400);
    let body: serde_json::Value = raw.json().await.expect("json");
    assert_eq!(body["type"], json!(["request"]));
    let raw = app
        .http
        .post(format!("{}/login/", app.base))
        .body("email=a")
        .send()
        .await
        .expect("request");
    assert_eq!(raw.status(), 415);
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn the_guest_addresses_cannot_be_registered(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    for email in [
        "guest@videoflix.com",
        "videoflix-abc123@guest.videoflix.com",
    ] {
        app.post(
            "/register/",
            json!({"email": email, "password": PASSWORD, "confirm_password": PASSWORD}),
        )
        .await
        .expect_error(400, "email");
    }
}
