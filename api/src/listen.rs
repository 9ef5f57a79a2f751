//! Serving a router on a bound listener, with the timeouts `axum::serve` lacks.
//!
//! `axum::serve` sets no timer on its connections, so a client that opens a connection and
//! sends nothing, or trickles its headers a byte at a time, holds it for ever (a handful of
//! such clients exhausts a server's sockets). Here every connection is HTTP/1.1 with a
//! header-read timeout, which also closes a keep-alive connection idle between requests,
//! and a request body must arrive within the same time (`RequestBodyTimeoutLayer`). Shutdown
//! is graceful as `axum::serve`'s: stop accepting, let the requests in flight finish.
//!
//! With a TLS acceptor the same connections are served as HTTPS (rustls), the handshake
//! bounded by the same timeout.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// Marks a request that came over HTTPS (served here, not by a proxy in front), so that the
/// dashboard's cookie can be marked `Secure`.
#[derive(Clone, Copy, Debug)]
pub struct OverTls;

/// How long a client may take to send a request's headers, or its body, and how long a
/// keep-alive connection may sit idle.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `router` on `listener` until `shutdown` completes, closing connections that take
/// longer than `timeout` to send a request (or sit idle that long between requests); over
/// TLS with `tls`.
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    timeout: Duration,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router.layer(RequestBodyTimeoutLayer::new(timeout));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(timeout);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(%error, "accepting an HTTP connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let over_tls = tls.is_some();
        let service = TowerToHyperService::new(tower::ServiceExt::map_request(
            router,
            move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                if over_tls {
                    request.extensions_mut().insert(OverTls);
                }
                request
            },
        ));
        let (http, watcher, tls) = (http.clone(), graceful.watcher(), tls.clone());
        tokio::spawn(async move {
            let served = match tls {
                None => {
                    watcher
                        .watch(http.serve_connection(TokioIo::new(tcp), service))
                        .await
                }
                Some(acceptor) => match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => serve_on(watcher, &http, stream, service).await,
                    Ok(Err(error)) => {
                        tracing::debug!(%error, %peer, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                },
            };
            if let Err(error) = served {
                tracing::debug!(%error, %peer, "HTTP connection ended");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

async fn serve_on<S, Svc>(
    watcher: hyper_util::server::graceful::Watcher,
    http: &hyper::server::conn::http1::Builder,
    stream: S,
    service: Svc,
) -> hyper::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    Svc: hyper::service::HttpService<Incoming> + Send + 'static,
    Svc::Future: Send + 'static,
    Svc::ResBody: Send + 'static,
    <Svc::ResBody as hyper::body::Body>::Data: Send,
    <Svc::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    watcher
        .watch(http.serve_connection(TokioIo::new(stream), service))
        .await
}
