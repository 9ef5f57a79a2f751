//! Dashboards on another origin: with `--cors-origin`, a browser's preflight is answered
//! before the token check and answers carry `Access-Control-Allow-Origin` for the origins
//! configured; the token rules stay as they are. Without it, no CORS header at all.

mod common;

use common::{spawn_app_with, token};
use roomer_api::cors::CorsOrigins;
use roomer_storage::Role;

const DASHBOARD: &str = "https://dash.example.com";

async fn preflight(base: &str, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{base}/api/v1/spaces/1"))
        .header("origin", origin)
        .header("access-control-request-method", "PUT")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap()
}

fn allowed_origin(response: &reqwest::Response) -> Option<&str> {
    response
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn a_configured_origin_may_call_the_api_with_its_token() {
    let app = spawn_app_with(|state| roomer_api::AppState {
        cors: CorsOrigins::parse(&[DASHBOARD]).unwrap(),
        ..state
    })
    .await;
    let answer = preflight(&app.base, DASHBOARD).await;
    assert!(answer.status().is_success(), "{}", answer.status());
    assert_eq!(allowed_origin(&answer), Some(DASHBOARD));
    let headers = answer.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(headers.contains("authorization") && headers.contains("content-type"));

    let other = preflight(&app.base, "https://elsewhere.example").await;
    assert_eq!(allowed_origin(&other), None);

    // The token rules are unchanged; the answers are readable by the dashboard's page.
    let plain = reqwest::Client::new();
    let url = format!("{}/api/v1/spaces", app.base);
    let anonymous = plain
        .get(&url)
        .header("origin", DASHBOARD)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(allowed_origin(&anonymous), Some(DASHBOARD));
    let read = token(app.store.as_ref(), Role::Read).await;
    let with_token = plain
        .get(&url)
        .header("origin", DASHBOARD)
        .bearer_auth(&read)
        .send()
        .await
        .unwrap();
    assert_eq!(with_token.status(), 200);
    assert_eq!(allowed_origin(&with_token), Some(DASHBOARD));
}

#[tokio::test]
async fn without_configured_origins_there_are_no_cors_headers() {
    let app = common::spawn_app().await;
    let answer = preflight(&app.base, DASHBOARD).await;
    assert_eq!(
        answer.status(),
        401,
        "a preflight is a request like any other"
    );
    assert_eq!(allowed_origin(&answer), None);
}
