//! A deadline for a request body as a whole. tower-http's `RequestBodyTimeout` restarts its
//! timer with every frame, so a client trickling one byte a second would never meet it; here
//! the clock starts when the request arrives and the body fails once it has run out.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use axum::body::Bytes;
use http_body::{Frame, SizeHint};

/// The error a body gives once its deadline has passed.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub Duration);

impl std::fmt::Display for BodyDeadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body did not arrive within {} s",
            self.0.as_secs()
        )
    }
}

impl std::error::Error for BodyDeadline {}

/// Whether `error` (or one of its causes) is a passed body deadline.
pub fn is_body_deadline(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<BodyDeadline>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// `body`, failing with [`BodyDeadline`] if it has not ended within `limit` from now.
pub fn limit<B>(body: B, limit: Duration) -> Deadline<B> {
    Deadline {
        body,
        sleep: Box::pin(tokio::time::sleep(limit)),
        limit,
        done: false,
    }
}

/// A body with a deadline (see [`limit`]).
pub struct Deadline<B> {
    body: B,
    sleep: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
    done: bool,
}

impl<B> http_body::Body for Deadline<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        // Bytes already here are taken before the clock is looked at.
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            if frame.is_none() {
                self.done = true;
            }
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.done = true;
                Poll::Ready(Some(Err(Box::new(BodyDeadline(self.limit)))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt as _;

    #[tokio::test(start_paused = true)]
    async fn a_body_that_keeps_trickling_still_meets_its_deadline() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, axum::BoxError>>(1);
        tokio::spawn(async move {
            // One byte every half second, for ever (a timer reset per frame never fires).
            while tx
                .send(Ok(Frame::data(Bytes::from_static(b"x"))))
                .await
                .is_ok()
            {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        let body = Body::new(http_body_util::StreamBody::new(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ));
        let started = tokio::time::Instant::now();
        let error = Body::new(limit(body, Duration::from_secs(3)))
            .collect()
            .await
            .expect_err("the deadline");
        assert!(is_body_deadline(&error), "{error}");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(3) && took < Duration::from_secs(4),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn a_body_within_its_deadline_arrives_whole() {
        let body = Body::new(limit(Body::from("hello"), Duration::from_secs(1)));
        let bytes = body.collect().await.expect("the body").to_bytes();
        assert_eq!(&bytes[..], b"hello");
    }
}
