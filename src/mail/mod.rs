//! Outgoing e-mail: SMTP through lettre when `SMTP_URL` is set, otherwise `.eml` files in an
//! outbox folder (with the link logged, so a developer can click it). Messages are sent in the
//! background with retries so a slow or flaky SMTP server never slows or fails the request.

mod templates;

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
};

pub use templates::Template;

/// Sends mail; cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    pending: Arc<Pending>,
}

/// Messages queued and not yet delivered or given up on.
#[derive(Default)]
struct Pending {
    count: AtomicUsize,
    drained: tokio::sync::Notify,
}

/// One queued message; dropping it (delivered, given up, or the task cancelled) uncounts it.
struct Queued(Arc<Pending>);

impl Drop for Queued {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.drained.notify_waiters();
        }
    }
}

#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(AsyncFileTransport<Tokio1Executor>, PathBuf),
}

impl Mailer {
    /// SMTP when `smtp_url` is given, else an outbox folder.
    pub async fn new(smtp_url: Option<&str>, outbox: PathBuf, from: &str) -> anyhow::Result<Self> {
        let from: Mailbox = from.parse().context("parsing MAIL_FROM")?;
        let transport = match smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .context("parsing SMTP_URL")?
                    .timeout(Some(Duration::from_secs(20)))
                    .build(),
            ),
            None => {
                tokio::fs::create_dir_all(&outbox)
                    .await
                    .with_context(|| format!("creating the mail outbox {}", outbox.display()))?;
                Transport::Outbox(AsyncFileTransport::new(&outbox), outbox)
            }
        };
        Ok(Self {
            transport,
            from,
            pending: Arc::default(),
        })
    }

    /// Queues `template` for `to` and returns at once; delivery is retried in the background.
    pub fn send_later(&self, to: &str, template: Template) {
        let mailer = self.clone();
        let to = to.to_owned();
        self.pending.count.fetch_add(1, Ordering::AcqRel);
        let queued = Queued(self.pending.clone());
        tokio::spawn(async move {
            let _queued = queued;
            let mut delay = Duration::from_millis(500);
            for attempt in 1..=4 {
                match mailer.send(&to, &template).await {
                    Ok(()) => return,
                    Err(e) if attempt < 4 => {
                        tracing::warn!(error = ?e, attempt, "sending mail failed; retrying");
                        tokio::time::sleep(delay).await;
                        delay *= 4;
                    }
                    Err(e) => tracing::error!(error = ?e, "sending mail failed; giving up"),
                }
            }
        });
    }

    /// Resolves once every queued message was delivered or given up on (so a test can assert
    /// that nothing was sent).
    pub async fn drained(&self) {
        loop {
            let notified = self.pending.drained.notified();
            tokio::pin!(notified);
            // Registered before the count is read, so a last delivery in between still wakes it.
            notified.as_mut().enable();
            if self.pending.count.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Sends `template` to `to` now.
    pub async fn send(&self, to: &str, template: &Template) -> anyhow::Result<()> {
        let to: Mailbox = to.parse().context("recipient address")?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(template.subject())
            .multipart(MultiPart::alternative_plain_html(
                template.text(),
                template.html(),
            ))
            .context("building the message")?;
        match &self.transport {
            Transport::Smtp(smtp) => {
                smtp.send(message).await.context("SMTP delivery")?;
            }
            Transport::Outbox(file, dir) => {
                let id = file.send(message).await.context("writing to the outbox")?;
                tracing::info!(
                    file = %dir.join(format!("{id}.eml")).display(),
                    link = template.link(),
                    "mail written to the outbox (no SMTP_URL configured)"
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_smtp_a_queued_mail_lands_in_the_outbox_with_its_link() {
        let dir = tempfile::tempdir().expect("dir");
        let outbox = dir.path().join("outbox");
        let mailer = Mailer::new(None, outbox.clone(), "Videoflix <noreply@videoflix.test>")
            .await
            .expect("mailer");
        let link = "http://frontend.test/activate-account/MQ/abc-123/".to_owned();

        mailer.send_later(
            "jane@example.com",
            Template::Activation { link: link.clone() },
        );
        tokio::time::timeout(Duration::from_secs(10), mailer.drained())
            .await
            .expect("drained");

        let files: Vec<_> = std::fs::read_dir(&outbox)
            .expect("outbox")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(files[0].extension().and_then(|e| e.to_str()), Some("eml"));
        let text = std::fs::read_to_string(&files[0]).expect("eml");
        assert!(text.contains("To: jane@example.com"), "{text}");
        // Quoted-printable may wrap the link; its parts are there.
        assert!(text.contains("abc-123"), "{text}");
    }
}
