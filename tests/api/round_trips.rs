//! What a cached read costs on PostgreSQL + Redis: one Redis command and no database query.
//! The session check, the rate limits and the cache versions travel in one script; entries
//! this process already read are kept in memory under the versions they were read at.

use std::time::Duration;

use futures::StreamExt;
use sqlx::{Connection, Executor, PgConnection};

use crate::{
    catalog::{admin_token, guest_token, seed},
    helpers::{Backend, TestApp, postgres_admin_url, redis_url, spawn_app, spawn_peer},
};

/// Allows or refuses new connections to `app`'s database and ends the open ones.
async fn database_reachable(app: &TestApp, reachable: bool) {
    let name = url::Url::parse(&app.settings.database_url)
        .expect("database url")
        .path()
        .trim_start_matches('/')
        .to_owned();
    let mut conn = PgConnection::connect(&postgres_admin_url())
        .await
        .expect("admin connection");
    conn.execute(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS {reachable}"
    )))
    .await
    .expect("alter database");
    if !reachable {
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
            .bind(&name)
            .execute(&mut conn)
            .await
            .expect("end the app's connections");
    }
}

/// The commands the Redis at `url` received for keys under `prefix` while `work` ran (commands
/// run by scripts excluded): MONITOR is read until a marker command sent after `work` shows up.
pub(crate) async fn commands_during(
    url: &str,
    prefix: &str,
    work: impl std::future::Future<Output = ()>,
) -> Vec<String> {
    let client = redis::Client::open(url).expect("redis url");
    let mut monitor = client
        .get_async_monitor()
        .await
        .expect("monitor")
        .into_on_message::<String>();
    work.await;
    let marker = format!("{prefix}:end-of-test-{}", uuid::Uuid::new_v4().simple());
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let _: Option<String> = redis::cmd("GET")
        .arg(&marker)
        .query_async(&mut conn)
        .await
        .expect("marker");
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = monitor.next().await {
            if line.contains(&marker) {
                break;
            }
            if line.contains(prefix) && !line.contains(" lua]") {
                seen.push(line);
            }
        }
    })
    .await
    .expect("the marker shows up on MONITOR");
    seen
}

#[tokio::test]
async fn a_cached_read_costs_one_redis_call_and_no_database_query() {
    let app = spawn_app(Backend::Real).await;
    let admin = admin_token(&app).await;
    let ids = seed(&app, &admin).await;
    let user = guest_token(&app).await;
    let paths = [
        "/api/videos/".to_owned(),
        format!("/api/videos/{}/", ids[0]),
        "/api/videos/?search=cars&page_size=2".to_owned(),
    ];
    let mut first = Vec::new();
    for path in &paths {
        first.push(app.get_auth(path, &user).await.expect(200).text);
    }

    database_reachable(&app, false).await;
    const ROUNDS: usize = 3;
    let prefix = app.settings.redis_prefix.clone();
    let commands = commands_during(&redis_url(), &prefix, async {
        for _ in 0..ROUNDS {
            for (path, before) in paths.iter().zip(&first) {
                let again = app.get_auth(path, &user).await.expect(200);
                assert_eq!(&again.text, before, "{path}");
            }
        }
    })
    .await;
    // What is not cached needs the database: refused connections answer 503, not 500.
    app.get_auth("/api/videos/?search=nowhere", &user)
        .await
        .expect(503);
    database_reachable(&app, true).await;
    app.get_auth("/api/videos/?search=nowhere", &user)
        .await
        .expect(200);

    // One admission script per read; no other command touches a session, cache or limit key
    // (background work such as the job queue may run meanwhile).
    let admissions = commands
        .iter()
        .filter(|c| c.contains(":auth:s:"))
        .collect::<Vec<_>>();
    assert_eq!(admissions.len(), ROUNDS * paths.len(), "{commands:#?}");
    assert!(
        admissions.iter().all(|c| c.contains("\"EVALSHA\"")),
        "{admissions:#?}"
    );
    let others = commands
        .iter()
        .filter(|c| !c.contains(":auth:s:"))
        .filter(|c| c.contains(":cache:") || c.contains(":rl:") || c.contains(":auth:"))
        .collect::<Vec<_>>();
    assert!(others.is_empty(), "{others:#?}");
}

#[tokio::test]
async fn revocations_reach_a_process_that_holds_the_session_in_memory() {
    let first = spawn_app(Backend::Real).await;
    let second = spawn_peer(&first, Vec::new()).await;
    let admin = admin_token(&first).await;
    let viewer = first
        .active_user("held@example.com", "Str0ng!Passw0rd")
        .await;
    let videos = |token: String| {
        let second = &second;
        async move { second.get_auth("/api/videos/", &token).await }
    };
    // The second process loads both sessions once and then serves them from memory.
    for _ in 0..2 {
        videos(viewer.clone()).await.expect(200);
        videos(admin.clone()).await.expect(200);
    }

    // An admin on the first process deactivates the viewer: refused at once on the second.
    let me = first.get_auth("/api/me/", &viewer).await.expect(200);
    let id = me.body["id"].as_i64().expect("id");
    first
        .call(
            reqwest::Method::PATCH,
            &format!("/api/admin/users/{id}/"),
            Some(serde_json::json!({"is_active": false})),
            Some(&admin),
        )
        .await
        .expect(200);
    videos(viewer.clone()).await.expect_error(401, "token");

    // A user's logout ends that session only: the admin's, held too, still works.
    videos(admin.clone()).await.expect(200);
    first
        .call(reqwest::Method::DELETE, "/logout/", None, Some(&admin))
        .await
        .expect(200);
    videos(admin).await.expect_error(401, "token");
}
