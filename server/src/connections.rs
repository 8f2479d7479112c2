//! The local server's connection loop: axum's router served by hyper with the limits a
//! server on a shared network needs, so that a slow or hostile client cannot hold it:
//! a deadline for a request's headers, a deadline for its body, and a cap on open
//! connections (one over the cap is closed as soon as it is accepted).

use bazaar_shared::settings::{InvalidSetting, Source};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, Sleep};

/// The limits of the connection loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// From the first byte of a request (or of an idle kept-alive connection) to the end of
    /// its headers.
    pub header_read_timeout: Duration,
    /// From the end of a request's headers to the end of its body.
    pub body_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            max_connections: 512,
        }
    }
}

impl Limits {
    /// The limits from `BAZAAR_HEADER_READ_TIMEOUT_SECS`, `BAZAAR_BODY_READ_TIMEOUT_SECS` and
    /// `BAZAAR_MAX_CONNECTIONS` (each a positive whole number; unset for the default).
    pub fn from_source(source: &Source) -> Result<Self, InvalidSetting> {
        let defaults = Self::default();
        let seconds = |name: &str, default: Duration| -> Result<Duration, InvalidSetting> {
            source
                .number(name, 1..=1_000_000, default.as_secs())
                .map(Duration::from_secs)
        };
        Ok(Self {
            header_read_timeout: seconds(
                "BAZAAR_HEADER_READ_TIMEOUT_SECS",
                defaults.header_read_timeout,
            )?,
            body_read_timeout: seconds(
                "BAZAAR_BODY_READ_TIMEOUT_SECS",
                defaults.body_read_timeout,
            )?,
            max_connections: source.number(
                "BAZAAR_MAX_CONNECTIONS",
                1..=1_000_000,
                defaults.max_connections,
            )?,
        })
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves; then stops
/// accepting, lets every open connection finish its request, and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stopping, stop) = watch::channel(false);
    tokio::pin!(shutdown);
    while let Some((stream, remote)) = accept(&listener, shutdown.as_mut()).await {
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                limit = limits.max_connections,
                "connection limit reached; a new connection was closed"
            );
            drop(stream);
            continue;
        };
        spawn_connection(stream, remote, router.clone(), limits, stop.clone(), slot);
    }
    drop(listener);
    let _ = stopping.send(true);
    // Every connection holds a slot until it ends: having them all means all have ended.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// The next connection, or `None` once `shutdown` resolves.
async fn accept(
    listener: &TcpListener,
    mut shutdown: Pin<&mut impl Future<Output = ()>>,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            () = shutdown.as_mut() => return None,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => return Some(accepted),
                // A connection that failed before it was accepted, or out of descriptors
                // for a moment: keep serving the others.
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// Serves one connection on its own task, within the header and body deadlines, until it
/// ends or `stop` asks every connection to finish its request; its `slot` is freed then.
fn spawn_connection(
    stream: TcpStream,
    remote: SocketAddr,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    slot: OwnedSemaphorePermit,
) {
    let body_timeout = limits.body_read_timeout;
    let service =
        tower::ServiceExt::map_request(router, move |request: hyper::Request<Incoming>| {
            let (mut parts, body) = request.into_parts();
            parts.extensions.insert(ConnectInfo(remote));
            hyper::Request::from_parts(parts, DeadlineBody::new(body, body_timeout))
        });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    tokio::spawn(async move {
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        tokio::pin!(connection);
        let served = tokio::select! {
            served = connection.as_mut() => served,
            _ = stop.changed() => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(error) = served {
            tracing::debug!(%error, "connection ended with an error");
        }
        drop(slot);
    });
}

/// A request body that fails once its deadline passes: a client trickling its body byte by
/// byte is cut off after the body read timeout, however steadily it trickles.
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(Instant::now() + timeout)),
        }
    }
}

impl Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the request body was not received within the body read timeout",
            ))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
