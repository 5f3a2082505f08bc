//! A write deadline for a connection: when the peer stops reading (our socket buffer full) and
//! a write makes no progress for the deadline, the write fails and hyper closes the connection.
//! So a client that never reads a media file or an SSE stream holds its connection, its task
//! and the response's buffered bytes for that long at most, not forever. (An HTTP/2 stream the
//! peer does not read stops at its flow-control window without a pending write; a download ends
//! itself then, see `Playback::stream`.)

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `inner` with a deadline on every write that cannot proceed.
pub(super) struct WriteDeadline<T> {
    inner: T,
    timeout: Duration,
    /// Armed while a write is pending; cleared by any write that goes through.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> WriteDeadline<T> {
    pub(super) fn new(inner: T, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// After the inner write returned `Pending`: pending until the deadline, then an error.
    fn stall<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let timeout = self.timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The inner write's outcome: bytes taken end a stall; while it is pending the deadline
    /// applies.
    fn written(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match polled {
            Poll::Pending => self.stall(cx),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.written(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.written(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    /// A flush that goes through says nothing about the peer reading (a socket's is a no-op):
    /// only a pending one is timed.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.stall(cx),
            ready => ready,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_write_the_peer_does_not_read_fails_after_the_deadline() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let mut ours = WriteDeadline::new(ours, Duration::from_secs(5));
        // The peer reads nothing: the buffer fills and the next write waits, then fails.
        let started = tokio::time::Instant::now();
        let result = ours.write_all(&[0u8; 4096]).await;
        let error = result.expect_err("the write must fail");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        let mut first = [0u8; 1024];
        assert_eq!(theirs.read(&mut first).await.ok(), Some(1024));
    }

    #[tokio::test(start_paused = true)]
    async fn flushes_between_pending_writes_do_not_reset_the_deadline() {
        let (ours, _theirs) = tokio::io::duplex(1024);
        let mut ours = WriteDeadline::new(ours, Duration::from_secs(5));
        ours.write_all(&[0u8; 1024]).await.expect("fits the buffer");
        let started = tokio::time::Instant::now();
        // As hyper does: try to write, flush, try again — the peer never reads.
        let mut error = None;
        for _ in 0..20 {
            let write = tokio::time::timeout(Duration::from_secs(1), ours.write(&[0u8; 64])).await;
            match write {
                Ok(Err(e)) => {
                    error = Some(e);
                    break;
                }
                Ok(Ok(n)) => panic!("{n} bytes went through a full buffer"),
                Err(_) => ours.flush().await.expect("a flush of the duplex"),
            }
        }
        let error = error.expect("no deadline within 20 s of flushes");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(
            started.elapsed() <= Duration::from_secs(6),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_reading_is_never_cut() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let mut ours = WriteDeadline::new(ours, Duration::from_secs(5));
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let mut total = 0;
            // 512 bytes every 4 s: slower than the writer, never silent for 5 s.
            while total < 8192 {
                tokio::time::sleep(Duration::from_secs(4)).await;
                total += theirs.read(&mut buf).await.unwrap_or(0);
            }
            total
        });
        ours.write_all(&[0u8; 8192])
            .await
            .expect("every byte goes through");
        drop(ours);
        assert!(reader.await.is_ok_and(|n| n >= 8192));
    }

    #[tokio::test]
    async fn a_tcp_peer_that_never_reads_is_cut_after_the_deadline() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let _peer = socket.connect(address).await.expect("connect");
        let (accepted, _) = listener.accept().await.expect("accept");
        let mut ours = WriteDeadline::new(accepted, Duration::from_millis(500));
        let started = std::time::Instant::now();
        let chunk = vec![0u8; 1 << 20];
        let mut sent = 0usize;
        let error = loop {
            match ours.write(&chunk).await {
                Ok(n) => sent += n,
                Err(e) => break e,
            }
            assert!(
                sent < 64 << 20,
                "{sent} bytes taken by a peer that reads nothing"
            );
        };
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}
