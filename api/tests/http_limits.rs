//! What the API answers to requests a well-behaved client would not send: an auth scheme in
//! another case (valid), bodies too large or without their content type, names too long.

mod common;

use common::{spawn_app, status_and_code as answer, token};
use roomer_storage::Role;

#[tokio::test]
async fn the_bearer_scheme_is_read_in_any_case() {
    let app = spawn_app().await;
    let read = token(app.store.as_ref(), Role::Read).await;
    let plain = reqwest::Client::new();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let request = plain
            .get(format!("{}/api/v1/spaces", app.base))
            .header("authorization", format!("{scheme} {read}"));
        assert_eq!(answer(request).await, (200, String::new()), "{scheme}");
    }
    for header in [
        format!("Basic {read}"),
        format!("Bearer{read}"),
        read.clone(),
    ] {
        let request = plain
            .get(format!("{}/api/v1/spaces", app.base))
            .header("authorization", &header);
        assert_eq!(answer(request).await.0, 401, "{header}");
    }
}

#[tokio::test]
async fn a_body_too_large_is_413_and_one_without_its_content_type_415() {
    let app = spawn_app().await;
    let space = format!("{}/api/v1/spaces/7", app.base);
    let huge = serde_json::json!({ "name": "x".repeat(roomer_api::MAX_BODY) });
    assert_eq!(
        answer(app.http.put(&space).json(&huge)).await,
        (413, "payload_too_large".into())
    );
    let bare = app.http.put(&space).body(r#"{"name": "Room"}"#);
    assert_eq!(answer(bare).await, (415, "unsupported_media_type".into()));
    let history = format!("{}/api/v1/dpus/283/installations", app.base);
    let periods: Vec<_> = (0..5_000)
        .map(|_| serde_json::json!({"doorway": 1, "from": "2018-01-01T00:00:00Z"}))
        .collect();
    assert_eq!(
        answer(app.http.put(&history).json(&periods)).await,
        (413, "payload_too_large".into())
    );
    let crossing = format!("{}/dpu/283/", app.base);
    let padded = [("timestamp", "2018-02-26T16:00:00Z"), ("direction", "1")]
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .chain([format!("padding={}", "x".repeat(roomer_api::MAX_BODY))])
        .collect::<Vec<_>>()
        .join("&");
    let request = app
        .http
        .post(&crossing)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(padded);
    assert_eq!(answer(request).await, (413, "payload_too_large".into()));
    // Nothing of the refused writes was stored.
    assert_eq!(app.get("/api/v1/spaces/7").await.0, 404);
    assert_eq!(app.store.totals().await.unwrap().crossings, 0);
}

#[tokio::test]
async fn names_longer_than_the_bound_are_refused() {
    let app = spawn_app().await;
    let longest = "é".repeat(roomer_occupancy::layout::MAX_NAME);
    let space = format!("{}/api/v1/spaces/7", app.base);
    let ok = app
        .http
        .put(&space)
        .json(&serde_json::json!({ "name": longest }));
    assert_eq!(answer(ok).await.0, 200);
    let long = format!("{longest}x");
    let too_long = app
        .http
        .put(&space)
        .json(&serde_json::json!({ "name": long }));
    assert_eq!(answer(too_long).await, (422, "invalid".into()));
    let doorway = format!("{}/api/v1/doorways/9", app.base);
    let body = serde_json::json!({ "name": long, "exiting_to": 0, "entering_to": 7 });
    assert_eq!(
        answer(app.http.put(&doorway).json(&body)).await,
        (422, "invalid".into())
    );
    assert_eq!(
        app.get("/api/v1/spaces/7").await.1["name"],
        longest.as_str()
    );
    assert_eq!(app.get("/api/v1/doorways/9").await.0, 404);
}

/// Clients that hold connections without finishing a request are cut off: one that sends
/// nothing, one that trickles its headers, one that sits idle after a request, one that
/// trickles its body. A complete request is answered as usual.
#[tokio::test]
async fn connections_that_send_no_whole_request_in_time_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::time::{sleep, timeout, Duration};

    let app = spawn_app().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = roomer_api::AppState::new(app.store.clone(), Duration::from_secs(300));
    let limit = Duration::from_secs(1);
    tokio::spawn(roomer_api::serve_router(
        listener,
        roomer_api::router(state),
        limit,
        None,
        std::future::pending(),
    ));
    /// Reads until the server closes the connection; fails if it is still open after 10 s.
    async fn closed_by_server(mut tcp: TcpStream, what: &str) -> Vec<u8> {
        let mut seen = Vec::new();
        let read = timeout(Duration::from_secs(10), tcp.read_to_end(&mut seen)).await;
        assert!(read.is_ok(), "{what}: still open after 10 s");
        seen
    }

    let silent = TcpStream::connect(addr).await.unwrap();
    assert!(closed_by_server(silent, "silent").await.is_empty());

    let mut trickle = TcpStream::connect(addr).await.unwrap();
    let trickling = tokio::spawn(async move {
        let _ = trickle
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await;
        for _ in 0..40 {
            if trickle.write_all(b"X").await.is_err() {
                break;
            }
            sleep(Duration::from_millis(250)).await;
        }
        trickle
    });
    // The writer stops at the first failed write, or after 10 s.
    let trickle = trickling.await.unwrap();
    let seen = closed_by_server(trickle, "trickled headers").await;
    assert!(!String::from_utf8_lossy(&seen).contains("200 OK"));

    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let seen = closed_by_server(idle, "idle after a request").await;
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200 OK"));

    let admin = token(app.store.as_ref(), Role::Admin).await;
    let mut body = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PUT /api/v1/spaces/9 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"na"
    );
    body.write_all(head.as_bytes()).await.unwrap();
    let seen = closed_by_server(body, "trickled body").await;
    assert!(!String::from_utf8_lossy(&seen).contains("200 OK"));
    assert_eq!(app.get("/api/v1/spaces/9").await.0, 404, "nothing stored");
}
