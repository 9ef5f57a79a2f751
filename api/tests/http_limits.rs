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
    let longest = "é".repeat(roomer_api::MAX_NAME);
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
