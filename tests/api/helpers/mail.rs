//! The test SMTP server: a real SMTP server on a random local port that keeps every message
//! it receives, and the received mail decoded (subject, bodies, links).

use std::{
    net::TcpListener,
    sync::{Arc, Mutex},
    time::Duration,
};

/// A received e-mail.
#[derive(Clone, Debug)]
pub struct ReceivedMail {
    /// Envelope recipients.
    pub to: Vec<String>,
    /// Raw RFC 5322 message.
    pub raw: Vec<u8>,
}

impl ReceivedMail {
    /// Decoded subject.
    pub fn subject(&self) -> String {
        mail_parser::MessageParser::default()
            .parse(&self.raw)
            .and_then(|m| m.subject().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Decoded text/plain body.
    pub fn text(&self) -> String {
        mail_parser::MessageParser::default()
            .parse(&self.raw)
            .and_then(|m| m.body_text(0).map(|t| t.into_owned()))
            .unwrap_or_default()
    }

    /// Decoded text/html body.
    pub fn html(&self) -> String {
        mail_parser::MessageParser::default()
            .parse(&self.raw)
            .and_then(|m| m.body_html(0).map(|t| t.into_owned()))
            .unwrap_or_default()
    }

    /// `(uid, token)` of the first `…/{route}/{uid}/{token}/` link in the text body.
    pub fn link_parts(&self, route: &str) -> (String, String) {
        let text = self.text();
        let marker = format!("/{route}/");
        let start = text
            .find(&marker)
            .unwrap_or_else(|| panic!("no {route} link in mail: {text}"))
            + marker.len();
        let rest: Vec<&str> = text[start..].splitn(3, '/').collect();
        (rest[0].to_owned(), rest[1].to_owned())
    }
}

/// SMTP handler storing every message.
#[derive(Clone, Default)]
struct Collector {
    inbox: Arc<Mutex<Vec<ReceivedMail>>>,
    to: Vec<String>,
    data: Vec<u8>,
}

impl mailin_embedded::Handler for Collector {
    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        to: &[String],
    ) -> mailin_embedded::Response {
        self.to = to.to_vec();
        self.data.clear();
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> mailin_embedded::Response {
        if let Ok(mut inbox) = self.inbox.lock() {
            inbox.push(ReceivedMail {
                to: std::mem::take(&mut self.to),
                raw: std::mem::take(&mut self.data),
            });
        }
        mailin_embedded::response::OK
    }
}

/// A real SMTP server on a random local port, on its own thread.
#[derive(Clone)]
pub struct MailServer {
    pub port: u16,
    inbox: Arc<Mutex<Vec<ReceivedMail>>>,
}

impl MailServer {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind smtp");
        let port = listener.local_addr().expect("smtp addr").port();
        let collector = Collector::default();
        let inbox = collector.inbox.clone();
        std::thread::spawn(move || {
            let mut server = mailin_embedded::Server::new(collector);
            server.with_name("test.smtp").with_tcp_listener(listener);
            if let Err(e) = server.serve() {
                eprintln!("test SMTP server stopped: {e}");
            }
        });
        Self { port, inbox }
    }

    /// Every message received so far.
    pub fn all(&self) -> Vec<ReceivedMail> {
        self.inbox.lock().map(|i| i.clone()).unwrap_or_default()
    }

    /// Messages to `recipient`.
    pub fn to(&self, recipient: &str) -> Vec<ReceivedMail> {
        self.all()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(recipient)))
            .collect()
    }

    /// Waits (up to 10 s) for the `n`-th message to `recipient` (1-based) and returns it.
    pub async fn wait_for(&self, recipient: &str, n: usize) -> ReceivedMail {
        for _ in 0..200 {
            let mails = self.to(recipient);
            if mails.len() >= n {
                return mails[n - 1].clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "no mail #{n} to {recipient} within 10 s; got {:?}",
            self.all().len()
        );
    }
}
