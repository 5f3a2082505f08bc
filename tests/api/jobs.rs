//! Scheduled jobs: each due time runs once across processes, schedules change without a
//! restart, a missed export is caught up once, and retention spares files it did not write.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use videoflix::{
    jobs::{JobName, RunOutcome, Schedule},
    store::JobRunRow,
};

use crate::helpers::{Backend, TestApp, redis_url, spawn_app, spawn_app_with, spawn_peer, with};

fn export_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| videoflix::backup::is_export_name(n))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

async fn export_runs(app: &TestApp) -> Vec<JobRunRow> {
    app.services
        .jobs
        .runs(Some(JobName::Export), 1000)
        .await
        .expect("runs")
}

/// Waits (bounded) until `done` holds for the export runs.
async fn wait_for_runs(
    app: &TestApp,
    what: &str,
    done: impl Fn(&[JobRunRow]) -> bool,
) -> Vec<JobRunRow> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let runs = export_runs(app).await;
        if done(&runs) {
            return runs;
        }
        assert!(Instant::now() < deadline, "{what}: {runs:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_export_runs_once_across_two_servers_and_a_worker() {
    let first = spawn_app(Backend::Real).await;
    let second = spawn_peer(&first, Vec::new()).await;
    let dir = first.settings.export_dir.clone();
    let mut worker = std::process::Command::new(env!("CARGO_BIN_EXE_videoflix"));
    worker
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .args(["worker", "--database-url", &first.settings.database_url])
        .args([
            "--redis-url",
            &redis_url(),
            "--redis-prefix",
            &first.settings.redis_prefix,
        ])
        .args(["--export-dir", &dir.display().to_string()])
        .args([
            "--media-dir",
            &first.settings.media_dir.display().to_string(),
        ])
        .args(["--jwt-secret", "test-secret-0123456789-abcdefghijklmnop"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut worker = KillOnDrop(worker.spawn().expect("worker"));

    // Every two seconds from now on, set on one process: the others follow without a restart.
    first
        .services
        .jobs
        .set_schedule(
            JobName::Export,
            &Schedule::parse("*/2 * * * * *").expect("schedule"),
        )
        .await
        .expect("set");
    wait_for_runs(&first, "four finished runs", |runs| {
        runs.iter().filter(|r| r.outcome == "ok").count() >= 4
    })
    .await;
    assert!(
        worker.0.try_wait().expect("wait").is_none(),
        "the worker died"
    );
    first
        .services
        .jobs
        .set_enabled(JobName::Export, false)
        .await
        .expect("disable");
    // Let a run that started before the switch finish, then count.
    let runs = wait_for_runs(&first, "no run left running", |runs| {
        runs.iter().all(|r| r.outcome != "running")
    })
    .await;

    let mut due: Vec<_> = runs.iter().map(|r| r.due_at).collect();
    due.dedup();
    assert_eq!(due.len(), runs.len(), "a due time ran twice: {runs:#?}");
    assert!(
        runs.iter()
            .all(|r| r.outcome == "ok" && r.trigger == "schedule"),
        "{runs:#?}"
    );
    assert!(
        runs.iter().all(|r| r.due_at.micros() % 2_000_000 == 0),
        "{runs:#?}"
    );
    // One file per run: no process exported a due time it did not hold.
    assert_eq!(
        export_files(&dir).len(),
        runs.len(),
        "{:?}",
        export_files(&dir)
    );
    drop(second);
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[rstest::rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_weekly_export_is_caught_up_once_at_start_up(#[case] backend: Backend) {
    let first = spawn_app(backend).await;
    // The weekly schedule has existed for a month, and no run was recorded: every process was
    // down at the last due time.
    set_schedule_age(&first, 30 * 24 * 3600).await;

    let started = spawn_peer(&first, Vec::new()).await;
    let runs = wait_for_runs(&started, "a catch-up run", |runs| {
        runs.iter().any(|r| r.outcome == "ok")
    })
    .await;
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0].trigger, "catch-up");
    let due = Schedule::parse("0 0 6 * * Sun")
        .expect("schedule")
        .previous(videoflix::store::Timestamp::now(), chrono_tz::UTC);
    assert_eq!(Some(runs[0].due_at), due);

    // Another process starting later does not run it again.
    let later = spawn_peer(&first, Vec::new()).await;
    later.services.jobs.tick().await;
    assert_eq!(export_runs(&first).await.len(), 1);
    assert_eq!(export_files(&first.settings.export_dir).len(), 1);
}

/// Moves the export schedule's "last set" time `secs` into the past.
async fn set_schedule_age(app: &TestApp, secs: u64) {
    let when = videoflix::store::Timestamp::now().minus_secs(secs);
    let url = &app.settings.database_url;
    if app.backend == Backend::Real {
        let pool = sqlx::PgPool::connect(url).await.expect("postgres");
        sqlx::query("UPDATE jobs SET updated_at = $1 WHERE name = 'export'")
            .bind(when.0)
            .execute(&pool)
            .await
            .expect("update");
    } else {
        let pool = sqlx::SqlitePool::connect(url).await.expect("sqlite");
        sqlx::query("UPDATE jobs SET updated_at = $1 WHERE name = 'export'")
            .bind(when.micros())
            .execute(&pool)
            .await
            .expect("update");
    }
}

#[tokio::test]
async fn retention_keeps_the_newest_scheduled_exports_and_nothing_else_is_touched() {
    let app = spawn_app_with(Backend::Embedded, with(&[("--export-keep", "2")])).await;
    let dir = app.settings.export_dir.clone();
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("notes.json"), b"[]").expect("a file of the operator's");
    let by_hand = app
        .services
        .backups
        .export(None, false)
        .await
        .expect("an export on demand");

    let mut written = Vec::new();
    for _ in 0..3 {
        match app
            .services
            .jobs
            .run_now(JobName::Export)
            .await
            .expect("run")
        {
            RunOutcome::Ran(run) => {
                assert_eq!(run.outcome, "ok", "{run:?}");
                written.push(run.message.split(':').next().expect("file").to_owned());
            }
            RunOutcome::AlreadyTaken => panic!("a manual run was refused"),
        }
    }

    let left = export_files(&dir);
    let by_hand = by_hand
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_owned();
    assert!(
        left.contains(&by_hand),
        "an on-demand export was deleted: {left:?}"
    );
    assert!(
        !left.contains(&written[0]),
        "the oldest scheduled export stayed: {left:?}"
    );
    assert!(
        left.contains(&written[1]) && left.contains(&written[2]),
        "{left:?}"
    );
    assert!(
        dir.join("notes.json").exists(),
        "an operator's file was deleted"
    );
}

#[tokio::test]
async fn the_jobs_command_lists_changes_and_refuses_bad_schedules() {
    let app = spawn_app(Backend::Embedded).await;
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_videoflix"))
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .arg("jobs")
            .args(["--database-url", &app.settings.database_url])
            .args([
                "--export-dir",
                &app.settings.export_dir.display().to_string(),
            ])
            .args(["--jwt-secret", "test-secret-0123456789-abcdefghijklmnop"])
            .args(args)
            .output()
            .expect("run")
    };
    let bad = run(&["set", "export", "0 0 25 * * *"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("out of bounds"),
        "{bad:?}"
    );
    assert!(run(&["set", "export", "0 0 3 * * Mon"]).status.success());
    assert!(run(&["disable", "sweep"]).status.success());
    let ran = run(&["run", "purge-guests"]);
    assert!(
        String::from_utf8_lossy(&ran.stdout).contains("purge-guests: ok"),
        "{ran:?}"
    );

    let list = String::from_utf8_lossy(&run(&[]).stdout).into_owned();
    let line = |job: &str| {
        list.lines()
            .find(|l| l.starts_with(job))
            .unwrap_or_else(|| panic!("no {job} in {list}"))
            .to_owned()
    };
    assert!(line("export").contains("0 0 3 * * Mon"), "{list}");
    assert!(
        line("export ").contains("T03:00:00"),
        "next due on Monday 03:00: {list}"
    );
    assert!(line("sweep").contains(" no "), "{list}");
    assert!(line("purge-guests").contains("ok (manual)"), "{list}");
}

/// Makes the account `email` look created `secs` ago.
async fn age_account(app: &TestApp, email: &str, secs: u64) {
    let when = videoflix::store::Timestamp::now().minus_secs(secs);
    let url = &app.settings.database_url;
    if app.backend == Backend::Real {
        let pool = sqlx::PgPool::connect(url).await.expect("postgres");
        sqlx::query("UPDATE users SET created_at = $1 WHERE email = $2")
            .bind(when.0)
            .bind(email)
            .execute(&pool)
            .await
            .expect("update");
    } else {
        let pool = sqlx::SqlitePool::connect(url).await.expect("sqlite");
        sqlx::query("UPDATE users SET created_at = $1 WHERE email = $2")
            .bind(when.micros())
            .bind(email)
            .execute(&pool)
            .await
            .expect("update");
    }
}

async fn guest(app: &TestApp) -> String {
    app.post("/guest-login/", serde_json::json!({}))
        .await
        .expect(200)
        .body["email"]
        .as_str()
        .expect("email")
        .to_owned()
}

async fn exists(app: &TestApp, email: &str) -> bool {
    let email = videoflix::domain::Email::parse(email).expect("email");
    app.services
        .store
        .user_by_email(&email)
        .await
        .expect("query")
        .is_some()
}

#[rstest::rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn guests_past_their_lifetime_are_purged_by_the_job_and_the_command(
    #[case] backend: Backend,
) {
    let app = spawn_app_with(backend, with(&[("--guest-ttl", "3600")])).await;
    let (young, just_alive, expired, also_expired) = (
        guest(&app).await,
        guest(&app).await,
        guest(&app).await,
        guest(&app).await,
    );
    age_account(&app, &just_alive, 3590).await;
    age_account(&app, &expired, 3610).await;
    age_account(&app, &also_expired, 7200).await;

    // The scheduled job, run now.
    match app
        .services
        .jobs
        .run_now(JobName::PurgeGuests)
        .await
        .expect("run")
    {
        RunOutcome::Ran(run) => {
            assert_eq!(run.outcome, "ok");
            assert_eq!(run.message, "2 expired guest account(s) deleted");
        }
        RunOutcome::AlreadyTaken => panic!("refused"),
    }
    assert!(exists(&app, &young).await && exists(&app, &just_alive).await);
    assert!(!exists(&app, &expired).await && !exists(&app, &also_expired).await);

    // The command, with the same settings.
    age_account(&app, &just_alive, 4000).await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_videoflix"))
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .args(["purge-guests", "--database-url", &app.settings.database_url])
        .args(["--guest-ttl", "3600"])
        .args([
            "--export-dir",
            &app.settings.export_dir.display().to_string(),
        ])
        .args(["--jwt-secret", "test-secret-0123456789-abcdefghijklmnop"])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("1 expired guest account(s) deleted"),
        "{stdout} {output:?}"
    );
    assert!(exists(&app, &young).await);
    assert!(!exists(&app, &just_alive).await);
}
