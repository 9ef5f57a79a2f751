//! The dashboard over plain HTTP: its pages and assets come from this server alone, a browser
//! without a token is sent to the login page, the token it gives is kept in a cookie that
//! authorizes reads and nothing else, and the overview of a 1,000-space building is one page.

mod common;

use common::{spawn_app, token, App};
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use roomer_storage::Role;

/// A client that sends nothing by itself and follows no redirect.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

async fn page(app: &App, path: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = browser().get(format!("{}{path}", app.base));
    if let Some(token) = cookie {
        request = request.header("cookie", format!("roomer_token={token}"));
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn every_page_and_asset_comes_from_this_server_alone() {
    let app = spawn_app().await;
    let read = token(app.store.as_ref(), Role::Read).await;
    for path in [
        "/",
        "/ui/spaces/1",
        "/ui/spaces/1?from=2018-02-26&to=2018-02-27&interval=1h&at=2018-02-26T12:00",
        "/ui/dpus",
        "/ui/dpus/283",
        "/ui/login",
        "/docs",
        "/ui/assets/dashboard.css",
        "/ui/assets/live.js",
    ] {
        let response = page(&app, path, Some(&read)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let is_page = !path.starts_with("/ui/assets/");
        if is_page {
            let policy = response.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(policy.contains("default-src 'none'"), "{path}: {policy}");
            assert!(policy.contains("script-src 'self'"), "{path}: {policy}");
        }
        let body = response.text().await.unwrap();
        // No address of another site: no CDN, no font service, nothing that needs internet.
        assert!(!body.contains("http://"), "{path} names another site");
        assert!(!body.contains("https://"), "{path} names another site");
        if is_page {
            assert!(
                body.contains(r#"<script src="/ui/assets/live.js""#),
                "{path}"
            );
        }
    }
}

#[tokio::test]
async fn the_api_reference_lists_every_route_of_the_openapi_document() {
    let app = spawn_app().await;
    let html = page(&app, "/docs", None).await.text().await.unwrap();
    let (_, spec) = app.get("/openapi.json").await;
    for path in spec["paths"].as_object().unwrap().keys() {
        assert!(html.contains(&format!("<code>{path}</code>")), "{path}");
    }
}

#[tokio::test]
async fn a_browser_without_a_token_is_sent_to_the_login_page() {
    let app = spawn_app().await;
    for path in ["/", "/ui/spaces/1", "/ui/dpus"] {
        let response = page(&app, path, None).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(response.headers()["location"], "/ui/login");
        let response = page(&app, path, Some("roomer_unknown")).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
    }
    // JSON clients still get 401 problem details.
    let response = page(&app, "/api/v1/spaces", None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

async fn login(app: &App, token: &str, site: &str) -> reqwest::Response {
    browser()
        .post(format!("{}/ui/login", app.base))
        .header("sec-fetch-site", site)
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_token_given_once_is_kept_in_a_cookie_no_script_and_no_other_site_can_use() {
    let app = spawn_app().await;
    let read = token(app.store.as_ref(), Role::Read).await;

    let refused = login(&app, "roomer_unknown", "same-origin").await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.headers().get("set-cookie").is_none());
    assert!(refused.text().await.unwrap().contains("not known"));

    // A form posted from another site is refused whatever it holds.
    let forged = login(&app, &read, "cross-site").await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(forged.headers().get("set-cookie").is_none());

    let accepted = login(&app, &read, "same-origin").await;
    assert_eq!(accepted.status(), StatusCode::SEE_OTHER);
    assert_eq!(accepted.headers()["location"], "/");
    let cookie = accepted.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with(&format!("roomer_token={read}")),
        "{cookie}"
    );
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    // Plain HTTP here: the cookie is marked Secure only when Roomer serves HTTPS itself.
    assert!(!cookie.contains("Secure"), "{cookie}");

    // The cookie opens the pages and the read routes, live stream included …
    assert_eq!(page(&app, "/", Some(&read)).await.status(), StatusCode::OK);
    let spaces = page(&app, "/api/v1/spaces", Some(&read)).await;
    assert_eq!(spaces.status(), StatusCode::OK);
    // … but never a write, even an admin's: a forged form cannot change anything.
    let admin = token(app.store.as_ref(), Role::Admin).await;
    let write = browser()
        .put(format!("{}/api/v1/spaces/9", app.base))
        .header("cookie", format!("roomer_token={admin}"))
        .json(&serde_json::json!({"name": "Forged"}))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), StatusCode::UNAUTHORIZED);

    let out = browser()
        .post(format!("{}/ui/logout", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let removal = out.headers()["set-cookie"].to_str().unwrap();
    assert!(removal.starts_with("roomer_token=;"), "{removal}");
    assert!(removal.contains("Max-Age=0"), "{removal}");
}

#[tokio::test]
async fn an_unknown_space_or_a_bad_range_is_said_on_the_page() {
    let app = spawn_app().await;
    let read = token(app.store.as_ref(), Role::Read).await;
    let missing = page(&app, "/ui/spaces/77", Some(&read)).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(missing
        .text()
        .await
        .unwrap()
        .contains("space 77 does not exist"));

    let backwards = page(
        &app,
        "/ui/spaces/1?from=2018-02-27T00:00&to=2018-02-26T00:00&interval=1h",
        Some(&read),
    )
    .await;
    assert_eq!(backwards.status(), StatusCode::OK);
    let html = backwards.text().await.unwrap();
    assert!(html.contains("must be after start_time"), "{html}");
}

#[tokio::test]
async fn a_building_of_a_thousand_spaces_is_one_page_of_a_thousand_rows() {
    let app = spawn_app().await;
    let layout = roomer_occupancy::testkit::floors_of_rooms(10, 99, 12);
    app.store.apply_layout(&layout).await.unwrap();
    let read = token(app.store.as_ref(), Role::Read).await;
    let html = page(&app, "/", Some(&read)).await.text().await.unwrap();
    // The example building's three spaces, and the thousand more.
    assert_eq!(html.matches(r#"<div class="space""#).count(), 3 + 1000);
    assert_eq!(
        html.matches("<meter").count(),
        990,
        "every room has a capacity"
    );
    assert_eq!(
        html.matches(r#"role="group""#).count(),
        10,
        "a branch per floor"
    );
    // A browser that accepts gzip gets it: a tenth of the bytes.
    let zipped = browser()
        .get(format!("{}/", app.base))
        .header("cookie", format!("roomer_token={read}"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    let sent = zipped.bytes().await.unwrap().len();
    assert!(
        sent * 5 < html.len(),
        "{sent} bytes gzipped of {}",
        html.len()
    );
}

#[tokio::test]
async fn only_a_server_that_needs_tokens_offers_to_forget_one() {
    let private = spawn_app().await;
    let read = token(private.store.as_ref(), Role::Read).await;
    let html = page(&private, "/", Some(&read)).await.text().await.unwrap();
    assert!(html.contains(r#"action="/ui/logout""#));
    let public = common::spawn_app_with(|mut state| {
        state.access.public_read = true;
        state
    })
    .await;
    for path in ["/", "/ui/dpus", "/docs"] {
        let html = page(&public, path, None).await.text().await.unwrap();
        assert!(!html.contains("/ui/logout"), "{path}");
    }
}
