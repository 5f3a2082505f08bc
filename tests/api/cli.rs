//! The `videoflix` binary as an operator uses it.

use std::{io::Write as _, process::Stdio};

use serde_json::json;

use crate::helpers::{Backend, spawn_app};

fn videoflix() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_videoflix"));
    // Keep the machine's environment (and any .env) from steering the command under test.
    for var in [
        "JWT_SECRET",
        "DATABASE_URL",
        "REDIS_URL",
        "SMTP_URL",
        "VIDEOFLIX_DEV",
    ] {
        cmd.env_remove(var);
    }
    cmd.current_dir(std::env::temp_dir());
    cmd
}

#[test]
fn serve_refuses_to_start_without_a_real_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}/x.db?mode=rwc", dir.path().display());
    for secret in [
        None,
        Some(""),
        Some(videoflix::config::DEV_JWT_SECRET),
        Some("short"),
    ] {
        let mut cmd = videoflix();
        cmd.args(["serve", "--addr", "127.0.0.1:0", "--database-url", &db]);
        if let Some(secret) = secret {
            cmd.env("JWT_SECRET", secret);
        }
        let output = cmd.output().expect("run");
        assert!(!output.status.success(), "{secret:?} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("JWT_SECRET"), "{stderr}");
    }
}

#[test]
fn help_lists_every_setting_with_its_variable() {
    let output = videoflix().args(["serve", "--help"]).output().expect("run");
    let help = String::from_utf8_lossy(&output.stdout);
    for var in [
        "DATABASE_URL",
        "REDIS_URL",
        "SMTP_URL",
        "PUBLIC_URL",
        "FRONTEND_URL",
        "MEDIA_DIR",
        "JWT_SECRET",
        "CORS_ORIGINS",
        "ACCESS_TOKEN_TTL",
        "REFRESH_TOKEN_TTL",
        "THROTTLE_ENABLED",
        "THROTTLE_LOGIN_ACCOUNT",
        "THROTTLE_USER",
        "VIDEOFLIX_ADDR",
    ] {
        assert!(help.contains(var), "--help does not mention {var}");
    }
}

#[test]
fn help_never_prints_the_credentials_in_the_environment() {
    let output = videoflix()
        .args(["serve", "--help"])
        .env(
            "DATABASE_URL",
            "postgres://app:db-pass-123@db.internal/videoflix",
        )
        .env("REDIS_URL", "redis://:redis-pass-456@cache.internal:6379/")
        .env("SMTP_URL", "smtp://mailer:smtp-pass-789@mail.internal:587")
        .env("JWT_SECRET", "jwt-secret-0123456789abcdef0123456789")
        .output()
        .expect("run");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for secret in [
        "db-pass-123",
        "redis-pass-456",
        "smtp-pass-789",
        "jwt-secret-0123",
    ] {
        assert!(!help.contains(secret), "--help prints {secret}");
    }
}

#[tokio::test]
async fn createsuperuser_makes_an_admin_who_can_log_in() {
    let app = spawn_app(Backend::Embedded).await;
    let output = createsuperuser(&app, "Admin@Example.com", "Admin-Pass-2026");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let reply = app
        .post(
            "/login/",
            json!({"email": "admin@example.com", "password": "Admin-Pass-2026"}),
        )
        .await
        .expect(200);
    let mut auth = app.auth_client().await;
    let me = auth
        .get_me(crate::helpers::authed(
            videoflix::grpc::pb::GetMeRequest {},
            reply.body["token"].as_str().expect("token"),
        ))
        .await
        .expect("me")
        .into_inner();
    assert!(me.user.expect("user").is_superuser);

    // An existing account that is not active (never activated, or deactivated) is promoted,
    // activated and gets the password.
    app.post(
        "/register/",
        json!({"email": "later@example.com", "password": "Later-Pass-2026",
               "confirm_password": "Later-Pass-2026"}),
    )
    .await
    .expect(201);
    app.post(
        "/login/",
        json!({"email": "later@example.com", "password": "Later-Pass-2026"}),
    )
    .await
    .expect_error(400, "account");
    let output = createsuperuser(&app, "later@example.com", "Later-Admin-2026");
    assert!(output.status.success());
    app.post(
        "/login/",
        json!({"email": "later@example.com", "password": "Later-Admin-2026"}),
    )
    .await
    .expect(200);

    // A weak password is refused with the validator's reason.
    let output = createsuperuser(&app, "admin2@example.com", "password");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("too common"));
}

/// Runs `createsuperuser` for `app`'s database with `password` on standard input.
fn createsuperuser(
    app: &crate::helpers::TestApp,
    email: &str,
    password: &str,
) -> std::process::Output {
    let mut child = videoflix()
        .args([
            "createsuperuser",
            "--email",
            email,
            "--password-stdin",
            "--database-url",
            &app.settings.database_url,
            "--jwt-secret",
            "test-secret-0123456789-abcdefghijklmnop",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write");
    child.wait_with_output().expect("wait")
}

#[tokio::test]
async fn upload_sends_a_file_and_follows_its_transcode() {
    use crate::helpers::{AppOptions, Backend, spawn_app_with};
    let app = spawn_app_with(
        Backend::Embedded,
        AppOptions {
            args: vec![("--transcode-preset".into(), "veryfast".into())],
            ..Default::default()
        },
    )
    .await;
    let admin = crate::pipeline::admin(&app).await;
    let clips = crate::media::Clips::new();
    let clip = clips.clip("cli.mp4", "320x240", 1, false, &[]);
    let base = app.base.clone();
    let output = tokio::task::spawn_blocking(move || {
        videoflix()
            .args([
                "upload",
                clip.to_str().expect("utf-8"),
                "--title",
                "From the CLI",
            ])
            .args(["--genre", "drama", "--server", &base, "--token", &admin])
            .output()
            .expect("runs")
    })
    .await
    .expect("joined");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("is ready"), "{stdout}");
    let list = app
        .get_auth("/api/videos/", &crate::pipeline::admin_token_of(&app).await)
        .await
        .expect(200)
        .body;
    assert_eq!(list[0]["title"], "From the CLI");
    assert_eq!(list[0]["status"], "ready");
    assert_eq!(list[0]["genre"], "drama");

    // A refused upload is a failure with the server's reason.
    let text = clips.path("notes.mp4");
    std::fs::write(&text, "not a video").expect("write");
    let base = app.base.clone();
    let token = crate::pipeline::admin_token_of(&app).await;
    let output = tokio::task::spawn_blocking(move || {
        videoflix()
            .args(["upload", text.to_str().expect("utf-8"), "--title", "Nope"])
            .args(["--server", &base, "--token", &token])
            .output()
            .expect("runs")
    })
    .await
    .expect("joined");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("video_file"), "{stderr}");
}

/// The units in `deploy/`, checked as systemd reads them (where `systemd-analyze` is installed),
/// with the binary they start pointed at the one under test; and the flags they pass exist.
#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let dir = tempfile::TempDir::new().expect("dir");
    let mut units = Vec::new();
    for (template, instance) in [
        ("videoflix-serve@.service", "videoflix-serve@8001.service"),
        ("videoflix-worker@.service", "videoflix-worker@1.service"),
    ] {
        let text = std::fs::read_to_string(deploy.join(template)).expect("unit");
        let exec = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart=/usr/local/bin/videoflix "))
            .expect("ExecStart runs /usr/local/bin/videoflix");
        // The subcommand and flags of the unit are ones the binary knows.
        let mut args: Vec<&str> = exec.split_whitespace().collect();
        args.push("--help");
        let help = videoflix().args(&args).output().expect("videoflix");
        assert!(help.status.success(), "{template}: {exec}");
        let path = dir.path().join(instance);
        let text = text.replace("/usr/local/bin/videoflix", env!("CARGO_BIN_EXE_videoflix"));
        std::fs::write(&path, text).expect("write");
        units.push(path);
    }
    let Ok(verified) = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .args(&units)
        .output()
    else {
        eprintln!("systemd-analyze is not installed: the units' syntax is not checked");
        return;
    };
    let stderr = String::from_utf8_lossy(&verified.stderr);
    assert!(verified.status.success(), "{stderr}");
    // Unknown keys are only warned about: any message is a mistake in a unit.
    assert!(stderr.trim().is_empty(), "{stderr}");
}
