//! Real `videoflix serve` and `videoflix worker` processes of a test app's deployment: the
//! binary, started with the app's own flags (its database, Redis prefix, folders and mail
//! server), logging JSON lines that the test reads.

use std::{
    io::BufRead as _,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::Value;

use super::TestApp;

/// A running `videoflix` process; killed when dropped.
pub struct Process {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    /// `http://127.0.0.1:<port>` of a `serve` process.
    pub base: String,
}

impl Process {
    /// `videoflix serve` on a free port with `app`'s flags and `extra` (which override them);
    /// returns once it listens.
    pub async fn serve(app: &TestApp, extra: &[(&str, &str)]) -> Self {
        let mut process = Self::spawn(app, &["serve", "--addr", "127.0.0.1:0"], extra);
        let listening = process
            .wait_for_log("listening", Duration::from_secs(60), |line| {
                line["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("listening"))
            })
            .await;
        let port = listening["fields"]["port"].as_u64().expect("port");
        process.base = format!("http://127.0.0.1:{port}");
        process
    }

    /// `videoflix worker` with `app`'s flags and `extra`; returns once its workers run.
    pub async fn worker(app: &TestApp, extra: &[(&str, &str)]) -> Self {
        let process = Self::spawn(app, &["worker"], extra);
        process
            .wait_for_log("the workers", Duration::from_secs(60), |line| {
                line["fields"]["message"] == "transcode workers running"
            })
            .await;
        process
    }

    fn spawn(app: &TestApp, command: &[&str], extra: &[(&str, &str)]) -> Self {
        let mut flags = app.flags.clone();
        for (flag, value) in extra {
            flags.retain(|(f, _)| f != flag);
            flags.push(((*flag).to_owned(), (*value).to_owned()));
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_videoflix"));
        cmd.args(command);
        for (flag, value) in &flags {
            cmd.arg(flag);
            if !value.is_empty() {
                cmd.arg(value);
            }
        }
        let mut child = cmd
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LOG_FORMAT", "json")
            // PROCESS_LOG (a RUST_LOG filter) shows more of the processes when debugging a test.
            .env(
                "RUST_LOG",
                std::env::var("PROCESS_LOG").unwrap_or_else(|_| "info,sqlx=warn".to_owned()),
            )
            .current_dir(app.settings.media_dir.parent().expect("the app's folder"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start videoflix");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if let Ok(mut lines) = sink.lock() {
                    lines.push(line);
                }
            }
        });
        Self {
            child,
            lines,
            base: String::new(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. "TERM", "KILL").
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal}");
    }

    /// Waits (bounded) for the process to exit.
    pub async fn exit_within(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running after {within:?}:\n{}",
                self.tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The log lines so far that are JSON objects.
    pub fn logs(&self) -> Vec<Value> {
        self.lines
            .lock()
            .map(|lines| {
                lines
                    .iter()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Log lines whose message is `message`.
    pub fn logged(&self, message: &str) -> Vec<Value> {
        self.logs()
            .into_iter()
            .filter(|l| l["fields"]["message"] == message)
            .collect()
    }

    /// Encoder runs of video `id` this (worker) process logged.
    pub fn encoder_runs(&self, id: i64) -> usize {
        self.logged("transcoding")
            .iter()
            .filter(|l| l["fields"]["video_id"].as_str() == Some(id.to_string().as_str()))
            .count()
    }

    /// Waits (bounded) for a log line matching `found`; panics with the log's tail when the
    /// process exits first or time is up.
    pub async fn wait_for_log(
        &self,
        what: &str,
        within: Duration,
        found: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.logs().into_iter().find(|l| found(l)) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no log line for {what} within {within:?}:\n{}",
                self.tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last log lines, for failure messages.
    pub fn tail(&self) -> String {
        let lines = self.lines.lock().map(|l| l.clone()).unwrap_or_default();
        let start = lines.len().saturating_sub(30);
        lines[start..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
