//! Bearer tokens: writes need an admin token, reads a read token unless reads are public;
//! the seed-compatible routes follow the same rules.

mod common;

use common::{spawn_app, token};
use roomer_storage::Role;

async fn status(
    app: &common::App,
    method: &str,
    path: &str,
    bearer: Option<&str>,
) -> (u16, String) {
    let mut request =
        reqwest::Client::new().request(method.parse().unwrap(), format!("{}{path}", app.base));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    if method == "POST" {
        request = request.form(&[("timestamp", "2018-02-26T16:00:00Z"), ("direction", "1")]);
    }
    if method == "PUT" {
        request = request.json(&serde_json::json!({"name": "Room"}));
    }
    common::status_and_code(request).await
}

#[tokio::test]
async fn writes_need_an_admin_token_and_reads_a_token() {
    let app = spawn_app().await;
    let read = token(app.store.as_ref(), Role::Read).await;
    let admin = token(app.store.as_ref(), Role::Admin).await;
    let cases = [
        ("GET", "/api/v1/spaces", None, 401, "unauthorized"),
        ("GET", "/space/1/count/", None, 401, "unauthorized"),
        (
            "GET",
            "/api/v1/spaces",
            Some("roomer_not-a-token"),
            401,
            "unauthorized",
        ),
        ("GET", "/api/v1/spaces", Some(read.as_str()), 200, ""),
        ("GET", "/space/1/count/", Some(read.as_str()), 200, ""),
        (
            "PUT",
            "/api/v1/spaces/5",
            Some(read.as_str()),
            403,
            "forbidden",
        ),
        ("POST", "/dpu/283/", Some(read.as_str()), 403, "forbidden"),
        ("POST", "/dpu/283/", None, 401, "unauthorized"),
        ("PUT", "/api/v1/spaces/5", Some(admin.as_str()), 200, ""),
        ("POST", "/dpu/283/", Some(admin.as_str()), 201, ""),
        // Open to all: liveness, readiness, metrics, the API's description.
        ("GET", "/healthz", None, 200, ""),
        ("GET", "/readyz", None, 200, ""),
        ("GET", "/metrics", None, 200, ""),
        ("GET", "/openapi.json", None, 200, ""),
    ];
    for (method, path, bearer, expected, code) in cases {
        let (got, got_code) = status(&app, method, path, bearer).await;
        assert_eq!(
            (got, got_code.as_str()),
            (expected, code),
            "{method} {path} with {bearer:?}"
        );
    }
    let unauthorized = reqwest::get(format!("{}/api/v1/spaces", app.base))
        .await
        .unwrap();
    assert_eq!(
        unauthorized.headers()["www-authenticate"],
        "Bearer realm=\"roomer\""
    );
}

/// A client that keeps presenting unknown tokens is held off with 429 and `Retry-After`
/// before its tokens are looked up, even a valid one; a request without a token is not
/// (that other clients are not held off is `attempts`' unit test).
#[tokio::test]
async fn a_client_guessing_tokens_is_held_off() {
    let app = spawn_app().await;
    let read = token(app.store.as_ref(), Role::Read).await;
    let url = format!("{}/api/v1/spaces", app.base);
    let plain = reqwest::Client::new();
    let attempt = |bearer: String| plain.get(&url).bearer_auth(bearer);
    for n in 0..20 {
        let guess = format!("roomer_{n:064x}");
        let answer = common::status_and_code(attempt(guess)).await;
        assert_eq!(answer, (401, "unauthorized".into()), "guess {n}");
    }
    let held = attempt(read.clone()).send().await.unwrap();
    assert_eq!(held.status(), 429);
    let wait: u64 = held.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    let body: serde_json::Value = held.json().await.unwrap();
    assert_eq!(body["code"], "too_many_attempts");
    let no_token = common::status_and_code(plain.get(&url)).await;
    assert_eq!(no_token, (401, "unauthorized".into()));
}
