//! Store conformance: the same story against SQLite and PostgreSQL.

use rstest::rstest;
use videoflix::{
    domain::Email,
    error::AppError,
    store::{NewUser, ProfileUpdate, RefreshUse, SessionRecord, Timestamp},
};

use crate::helpers::{Backend, spawn_app};

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn the_store_behaves_the_same_on_both_databases(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let store = &app.services.store;
    let email = Email::parse("store@example.com").expect("email");
    let new = NewUser {
        email: &email,
        password_hash: "hash",
        is_active: false,
        is_superuser: false,
        is_guest: false,
    };
    let user = store.create_user(new.clone()).await.expect("create");
    assert!(matches!(
        store.create_user(new).await,
        Err(AppError::EmailTaken)
    ));
    assert!(store.activate_user(user.user_id()).await.expect("activate"));
    assert!(!store.activate_user(user.user_id()).await.expect("again"));

    // Timestamps round-trip exactly.
    let fetched = store
        .user_by_email(&email)
        .await
        .expect("get")
        .expect("some");
    assert_eq!(fetched.created_at, user.created_at);

    let updated = store
        .update_profile(
            user.user_id(),
            &ProfileUpdate {
                phone: Some("123".into()),
                address: None,
            },
        )
        .await
        .expect("update")
        .expect("some");
    assert_eq!(
        (updated.phone.as_str(), updated.address.as_str()),
        ("123", "")
    );

    // Sessions and refresh rotation.
    let now = Timestamp::now();
    let session = SessionRecord {
        id: "s1".into(),
        user_id: user.id,
        created_at: now,
        expires_at: now.plus_secs(60),
        revoked_at: None,
    };
    assert!(
        store
            .create_session(&session, "r1", Some("hash"))
            .await
            .expect("session")
    );
    assert!(
        matches!(store.rotate_refresh("r1", "r2").await.expect("rotate"), RefreshUse::Fresh(s) if s.id == "s1")
    );
    assert!(matches!(
        store.rotate_refresh("r2", "r3").await.expect("rotate"),
        RefreshUse::Fresh(_)
    ));
    assert!(matches!(
        store.rotate_refresh("nope", "x").await.expect("rotate"),
        RefreshUse::Unknown
    ));
    assert!(matches!(
        store.rotate_refresh("r1", "r4").await.expect("reuse"),
        RefreshUse::Reused(ref s) if s == "s1"
    ));
    let revoked = store.session("s1").await.expect("get").expect("some");
    assert!(!revoked.is_alive(Timestamp::now()));

    // Password change is guarded by the old hash and revokes sessions.
    let s2 = SessionRecord {
        id: "s2".into(),
        ..session
    };
    assert!(
        !store
            .create_session(
                &SessionRecord {
                    id: "s3".into(),
                    ..s2.clone()
                },
                "q0",
                Some("stale")
            )
            .await
            .expect("guarded")
    );
    assert!(
        store
            .create_session(&s2, "q1", None)
            .await
            .expect("session")
    );
    assert!(
        !store
            .change_password(user.user_id(), "wrong", "new")
            .await
            .expect("guarded")
    );
    assert!(
        store
            .change_password(user.user_id(), "hash", "new")
            .await
            .expect("change")
    );
    assert!(
        !store
            .session("s2")
            .await
            .expect("get")
            .expect("some")
            .is_alive(Timestamp::now())
    );

    // Deleting a user removes its sessions.
    assert!(store.delete_user(user.user_id()).await.expect("delete"));
    assert!(store.session("s2").await.expect("get").is_none());
    store.ping().await.expect("ping");
}
