//! The admin API (`AdminService`, `/api/admin/…`) over gRPC and REST, with its refusals.

use reqwest::Method;
use serde_json::{Value, json};
use tonic::Code;
use videoflix::grpc::pb::{self, admin_service_client::AdminServiceClient};

use crate::helpers::{Backend, TestApp, authed, spawn_app};

async fn admin_client(app: &TestApp) -> AdminServiceClient<tonic::transport::Channel> {
    AdminServiceClient::connect(app.base.clone())
        .await
        .expect("grpc connect")
}

/// (superuser token, viewer token, guest token, viewer id).
async fn people(app: &TestApp) -> (String, String, String, i64) {
    let admin = crate::pipeline::admin(app).await;
    let viewer = app
        .active_user("viewer@example.com", "Viewer-Pass-2026")
        .await;
    let guest = app.post("/guest-login/", json!({})).await.expect(200).body["token"]
        .as_str()
        .expect("guest token")
        .to_owned();
    let me = app.get_auth("/api/me/", &viewer).await.expect(200);
    let viewer_id = me.body["id"].as_i64().expect("id");
    (admin, viewer, guest, viewer_id)
}

#[rstest::rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn only_superusers_reach_the_admin_api(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, viewer, guest, viewer_id) = people(&app).await;
    let mut client = admin_client(&app).await;
    for token in [&viewer, &guest] {
        let refused = client
            .list_users(authed(pb::ListUsersRequest::default(), token))
            .await
            .expect_err("a non-superuser listed users");
        assert_eq!(refused.code(), Code::PermissionDenied);
        let refused = client
            .run_job(authed(
                pb::RunJobRequest {
                    name: "export".into(),
                },
                token,
            ))
            .await
            .expect_err("a non-superuser ran a job");
        assert_eq!(refused.code(), Code::PermissionDenied);
        for (method, path) in [
            (Method::GET, "/api/admin/users/".to_owned()),
            (Method::DELETE, format!("/api/admin/users/{viewer_id}/")),
            (Method::GET, "/api/admin/jobs/".to_owned()),
            (Method::POST, "/api/admin/jobs/export/run/".to_owned()),
            (Method::GET, "/api/admin/exports/".to_owned()),
        ] {
            app.call(method, &path, None, Some(token)).await.expect(403);
        }
    }
    let anonymous = client
        .list_jobs(pb::ListJobsRequest {})
        .await
        .expect_err("anonymous");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    app.call(Method::GET, "/api/admin/jobs/", None, None)
        .await
        .expect(401);
    // The viewer still exists.
    assert!(
        app.services
            .store
            .user_by_id(videoflix::domain::UserId::parse(viewer_id, "id").expect("id"))
            .await
            .expect("db")
            .is_some()
    );
}

#[rstest::rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn superusers_manage_accounts_but_never_remove_the_last_superuser(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, viewer, _, viewer_id) = people(&app).await;
    let mut client = admin_client(&app).await;

    // List, search, filter (REST and gRPC).
    let all = app.get_auth("/api/admin/users/", &admin).await.expect(200);
    assert_eq!(
        all.body["results"].as_array().map(Vec::len),
        Some(3),
        "{}",
        all.body
    );
    let found = app
        .get_auth("/api/admin/users/?search=VIEWER&is_guest=false", &admin)
        .await
        .expect(200);
    let emails: Vec<&str> = found.body["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|u| u["email"].as_str())
        .collect();
    assert_eq!(emails, ["viewer@example.com"]);
    let guests = client
        .list_users(authed(
            pb::ListUsersRequest {
                is_guest: Some(true),
                ..Default::default()
            },
            &admin,
        ))
        .await
        .expect("guests")
        .into_inner();
    assert_eq!(guests.users.len(), 1);
    assert!(guests.users[0].is_guest);
    // Pages of one.
    let first = app
        .get_auth("/api/admin/users/?page_size=1", &admin)
        .await
        .expect(200);
    let token = first.body["next_page_token"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let second = app
        .get_auth(
            &format!("/api/admin/users/?page_size=1&page_token={token}"),
            &admin,
        )
        .await
        .expect(200);
    assert_ne!(
        first.body["results"][0]["id"],
        second.body["results"][0]["id"]
    );
    app.get_auth("/api/admin/users/?page_token=bogus", &admin)
        .await
        .expect_error(400, "page_token");

    // Get, deactivate (the viewer's token stops working at once), reactivate, promote.
    let got = client
        .get_user(authed(pb::GetUserRequest { id: viewer_id }, &admin))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.user.map(|u| u.email), Some("viewer@example.com".into()));
    let off = app
        .call(
            Method::PATCH,
            &format!("/api/admin/users/{viewer_id}/"),
            Some(json!({"is_active": false})),
            Some(&admin),
        )
        .await
        .expect(200);
    assert_eq!(off.body["is_active"], false);
    app.get_auth("/api/me/", &viewer).await.expect(401);
    let on = client
        .update_user(authed(
            pb::UpdateUserRequest {
                id: viewer_id,
                is_active: Some(true),
                is_superuser: Some(true),
            },
            &admin,
        ))
        .await
        .expect("update")
        .into_inner()
        .user
        .expect("user");
    assert!(on.is_active && on.is_superuser);
    app.call(
        Method::PATCH,
        &format!("/api/admin/users/{viewer_id}/"),
        Some(json!({"bogus": 1})),
        Some(&admin),
    )
    .await
    .expect(400);

    // Two superusers: one may go. Then the last one may neither go nor be demoted.
    let admin_id = app.get_auth("/api/me/", &admin).await.expect(200).body["id"]
        .as_i64()
        .expect("id");
    app.call(
        Method::DELETE,
        &format!("/api/admin/users/{viewer_id}/"),
        None,
        Some(&admin),
    )
    .await
    .expect(204);
    let last = client
        .delete_user(authed(pb::DeleteUserRequest { id: admin_id }, &admin))
        .await
        .expect_err("the last superuser was deleted");
    assert_eq!(last.code(), Code::FailedPrecondition, "{last:?}");
    app.call(
        Method::PATCH,
        &format!("/api/admin/users/{admin_id}/"),
        Some(json!({"is_superuser": false})),
        Some(&admin),
    )
    .await
    .expect(400);
    let me = app
        .get_auth(&format!("/api/admin/users/{admin_id}/"), &admin)
        .await
        .expect(200);
    assert_eq!(me.body["is_superuser"], true);
    app.get_auth("/api/admin/users/999999/", &admin)
        .await
        .expect(404);
    app.get_auth("/api/admin/users/abc/", &admin)
        .await
        .expect(400);
}

#[rstest::rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn superusers_run_jobs_and_move_exports_in_and_out(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _, _, _) = people(&app).await;
    let mut client = admin_client(&app).await;

    // Jobs: list, reschedule, refuse a bad schedule, run, list runs.
    let jobs = app.get_auth("/api/admin/jobs/", &admin).await.expect(200);
    let names: Vec<&str> = jobs
        .body
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|j| j["name"].as_str())
        .collect();
    assert_eq!(names, ["clean-sessions", "export", "purge-guests", "sweep"]);
    let changed = app
        .call(
            Method::PATCH,
            "/api/admin/jobs/export/",
            Some(json!({"schedule": "0 0 3 * * Mon"})),
            Some(&admin),
        )
        .await
        .expect(200);
    assert_eq!(changed.body["schedule"], "0 0 3 * * Mon");
    assert!(
        changed.body["next_due"]
            .as_str()
            .is_some_and(|t| t.contains("T03:00:00")),
        "{}",
        changed.body
    );
    app.call(
        Method::PATCH,
        "/api/admin/jobs/export/",
        Some(json!({"schedule": "0 0 25 * * *"})),
        Some(&admin),
    )
    .await
    .expect_error(400, "schedule");
    app.call(
        Method::PATCH,
        "/api/admin/jobs/nope/",
        Some(json!({"enabled": false})),
        Some(&admin),
    )
    .await
    .expect_error(400, "job");
    let disabled = client
        .update_job(authed(
            pb::UpdateJobRequest {
                name: "sweep".into(),
                schedule: None,
                enabled: Some(false),
            },
            &admin,
        ))
        .await
        .expect("disable")
        .into_inner()
        .job
        .expect("job");
    assert!(!disabled.enabled && disabled.next_due.is_empty());
    let ran = app
        .call(
            Method::POST,
            "/api/admin/jobs/export/run/",
            None,
            Some(&admin),
        )
        .await
        .expect(200);
    assert_eq!(ran.body["run"]["outcome"], "ok", "{}", ran.body);
    assert_eq!(ran.body["run"]["trigger"], "manual");
    let listed = client
        .list_jobs(authed(pb::ListJobsRequest {}, &admin))
        .await
        .expect("jobs")
        .into_inner();
    let export = listed
        .jobs
        .iter()
        .find(|j| j.name == "export")
        .expect("export");
    assert_eq!(
        export.last_run.as_ref().map(|r| r.outcome.as_str()),
        Some("ok")
    );
    let again = client
        .run_job(authed(
            pb::RunJobRequest {
                name: "purge-guests".into(),
            },
            &admin,
        ))
        .await
        .expect("run")
        .into_inner();
    assert_eq!(again.run.map(|r| r.outcome), Some("ok".into()));
    // Only the manual run: the hourly purge may also have ticked meanwhile.
    let rest_runs = app
        .get_auth("/api/admin/job-runs/?job=purge-guests&limit=10", &admin)
        .await
        .expect(200);
    assert_eq!(rest_runs.body[0]["trigger"], "manual", "{}", rest_runs.body);
    assert!(
        rest_runs
            .body
            .as_array()
            .into_iter()
            .flatten()
            .all(|r| r["job"] == "purge-guests"),
        "{}",
        rest_runs.body
    );
    app.get_auth("/api/admin/job-runs/?limit=0", &admin)
        .await
        .expect_error(400, "limit");
    let runs = client
        .list_job_runs(authed(
            pb::ListJobRunsRequest {
                job: "export".into(),
                limit: 0,
            },
            &admin,
        ))
        .await
        .expect("runs")
        .into_inner();
    assert_eq!(runs.runs.len(), 1);

    // Exports: create (gRPC), list (REST), download (both), refuse other paths.
    let created = client
        .create_export(authed(pb::CreateExportRequest { full: true }, &admin))
        .await
        .expect("export")
        .into_inner()
        .export
        .expect("export");
    assert!(created.full && created.name.starts_with("full_data_"));
    let by_rest = app
        .call(
            Method::POST,
            "/api/admin/exports/",
            Some(json!({})),
            Some(&admin),
        )
        .await
        .expect(201);
    assert_eq!(by_rest.body["full"], false);
    let by_grpc = client
        .list_exports(authed(pb::ListExportsRequest {}, &admin))
        .await
        .expect("exports")
        .into_inner();
    assert_eq!(by_grpc.exports.len(), 3);
    let list = app
        .get_auth("/api/admin/exports/", &admin)
        .await
        .expect(200);
    let listed: Vec<(String, bool)> = list
        .body
        .as_array()
        .expect("exports")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or_default().to_owned(),
                e["scheduled"] == true,
            )
        })
        .collect();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(
        listed.contains(&(created.name.clone(), false)),
        "{listed:?}"
    );
    assert!(
        listed
            .iter()
            .any(|(n, scheduled)| n.starts_with("video_data_") && *scheduled),
        "{listed:?}"
    );
    let file = app
        .get_auth(&format!("/api/admin/exports/{}/", created.name), &admin)
        .await
        .expect(200);
    assert_eq!(
        file.body["format"], "videoflix-full-export",
        "{}",
        file.text
    );
    let mut stream = client
        .download_export(authed(
            pb::DownloadExportRequest {
                name: created.name.clone(),
            },
            &admin,
        ))
        .await
        .expect("download")
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.message().await.expect("chunk") {
        bytes.extend_from_slice(&chunk.data);
    }
    assert_eq!(bytes, file.text.as_bytes());
    for name in [
        "..%2F..%2Fetc%2Fpasswd",
        "notes.json",
        "video_data_2026-01-01_00-00-00.json",
    ] {
        app.get_auth(&format!("/api/admin/exports/{name}/"), &admin)
            .await
            .expect(404);
    }

    // Import: a bad record is listed and nothing is written; a dry run previews; then apply.
    let video = |id: i64, genre: &str| json!({"id": id, "title": "Imported", "genre": genre, "uploaded_at": "2026-01-01T00:00:00Z"});
    let bad = app
        .http
        .post(format!("{}/api/admin/import/", app.base))
        .header("authorization", format!("Token {admin}"))
        .json(&json!([video(900, "drama"), video(901, "western")]))
        .send()
        .await
        .expect("import");
    assert_eq!(bad.status(), 200);
    let bad: Value = bad.json().await.expect("json");
    assert_eq!(bad["ok"], false);
    assert_eq!(bad["errors"][0]["id"], 901);
    assert_eq!(bad["errors"][0]["field"], "genre");
    let good = serde_json::to_vec(&json!([video(900, "drama")])).expect("json");
    let dry = client
        .import_video_data(authed(
            pb::ImportVideoDataRequest {
                data: good.clone(),
                dry_run: true,
                user_map: Default::default(),
            },
            &admin,
        ))
        .await
        .expect("dry run")
        .into_inner();
    assert!(dry.ok && !dry.applied);
    assert_eq!(dry.videos.map(|c| c.created), Some(1));
    app.get_auth("/api/videos/900/", &admin).await.expect(404);
    let applied = app
        .http
        .post(format!("{}/api/admin/import/?dry_run=false", app.base))
        .header("authorization", format!("Token {admin}"))
        .header("content-type", "application/json")
        .body(good)
        .send()
        .await
        .expect("import");
    let applied: Value = applied.json().await.expect("json");
    assert_eq!(applied["applied"], true, "{applied}");
    assert_eq!(applied["videos"]["created"], 1);
    app.get_auth("/api/videos/900/", &admin).await.expect(200);
}
