//! The account lifecycle over gRPC, with rich error details.

use rstest::rstest;
use tonic::Code;
use tonic_types::StatusExt;
use videoflix::grpc::pb;

use crate::helpers::{Backend, PASSWORD, authed, spawn_app};

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn the_full_account_lifecycle_works_over_grpc(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let mut auth = app.auth_client().await;
    let email = "grpc.user@example.com";

    let registered = auth
        .register(pb::RegisterRequest {
            email: email.into(),
            password: PASSWORD.into(),
            confirm_password: PASSWORD.into(),
        })
        .await
        .expect("register")
        .into_inner();
    assert_eq!(
        registered.user.as_ref().map(|u| u.email.as_str()),
        Some(email)
    );

    let (uid, token) = app
        .mail
        .wait_for(email, 1)
        .await
        .link_parts("activate-account");
    auth.activate_account(pb::ActivateAccountRequest {
        uid: uid.clone(),
        token: token.clone(),
    })
    .await
    .expect("activate");
    let again = auth
        .activate_account(pb::ActivateAccountRequest { uid, token })
        .await
        .expect_err("second activation");
    assert_eq!(again.code(), Code::FailedPrecondition);
    let info = again.get_error_details();
    assert_eq!(
        info.error_info().map(|i| i.reason.as_str()),
        Some("ACCOUNT_ALREADY_ACTIVE")
    );

    let login = auth
        .login(pb::LoginRequest {
            email: email.into(),
            password: PASSWORD.into(),
            remember_me: true,
        })
        .await
        .expect("login")
        .into_inner();
    let tokens = login.tokens.expect("tokens");
    assert_eq!(tokens.token_type, "Bearer");

    let me = auth
        .get_me(authed(pb::GetMeRequest {}, &tokens.access_token))
        .await
        .expect("me")
        .into_inner();
    assert_eq!(me.user.map(|u| u.email), Some(email.to_owned()));

    let updated = auth
        .update_me(authed(
            pb::UpdateMeRequest {
                phone: String::new(),
                address: "Elm Street 13".into(),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["address".into()],
                }),
            },
            &tokens.access_token,
        ))
        .await
        .expect("update")
        .into_inner();
    assert_eq!(
        updated.user.map(|u| u.address),
        Some("Elm Street 13".to_owned())
    );

    let bad_mask = auth
        .update_me(authed(
            pb::UpdateMeRequest {
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["email".into()],
                }),
                ..Default::default()
            },
            &tokens.access_token,
        ))
        .await
        .expect_err("email is not updatable");
    assert_eq!(bad_mask.code(), Code::InvalidArgument);

    let refreshed = auth
        .refresh_token(pb::RefreshTokenRequest {
            refresh_token: tokens.refresh_token.clone(),
        })
        .await
        .expect("refresh")
        .into_inner()
        .tokens
        .expect("tokens");

    auth.logout(authed(pb::LogoutRequest {}, &refreshed.access_token))
        .await
        .expect("logout");
    let rejected = auth
        .get_me(authed(pb::GetMeRequest {}, &refreshed.access_token))
        .await
        .expect_err("revoked");
    assert_eq!(rejected.code(), Code::Unauthenticated);
    let rejected = auth
        .get_me(authed(pb::GetMeRequest {}, &tokens.access_token))
        .await
        .expect_err("revoked");
    assert_eq!(rejected.code(), Code::Unauthenticated);
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn grpc_errors_carry_field_violations(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let mut auth = app.auth_client().await;
    let status = auth
        .register(pb::RegisterRequest {
            email: "bad".into(),
            password: "123".into(),
            confirm_password: "123".into(),
        })
        .await
        .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    let details = status.get_error_details();
    let fields: Vec<String> = details
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default();
    assert_eq!(fields, vec!["email"]);

    let status = auth
        .register(pb::RegisterRequest {
            email: "ok@example.com".into(),
            password: "123".into(),
            confirm_password: "1234".into(),
        })
        .await
        .expect_err("invalid");
    let fields: Vec<String> = status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default();
    assert!(
        fields.contains(&"password".to_owned()) && fields.contains(&"confirm_password".to_owned()),
        "{fields:?}"
    );

    let status = auth
        .login(pb::LoginRequest {
            email: "nobody@example.com".into(),
            password: "whatever-123".into(),
            remember_me: false,
        })
        .await
        .expect_err("no account");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(
        status
            .get_error_details()
            .error_info()
            .map(|i| i.reason.clone()),
        Some("INVALID_CREDENTIALS".to_owned())
    );

    let status = auth
        .get_me(pb::GetMeRequest {})
        .await
        .expect_err("anonymous");
    assert_eq!(status.code(), Code::Unauthenticated);

    // VideoService is reachable and authenticates before anything else.
    let mut video = app.video_client().await;
    let status = video
        .list_videos(pb::ListVideosRequest::default())
        .await
        .expect_err("anonymous");
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn guest_login_over_grpc_is_deleted_at_logout(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let mut auth = app.auth_client().await;
    let guest = auth
        .guest_login(pb::GuestLoginRequest {})
        .await
        .expect("guest")
        .into_inner();
    let user = guest.user.expect("user");
    assert!(user.is_guest);
    let access = guest.tokens.expect("tokens").access_token;
    let bye = auth
        .logout(authed(pb::LogoutRequest {}, &access))
        .await
        .expect("logout")
        .into_inner();
    assert!(bye.guest_deleted);
    let gone = app
        .services
        .store
        .user_by_id(videoflix::domain::UserId::parse(user.id, "id").expect("id"))
        .await
        .expect("query");
    assert!(gone.is_none());
}
