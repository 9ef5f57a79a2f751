//! The dashboard: HTML pages rendered on the server (maud, checked at compile time), a
//! stylesheet and one small script, all compiled into the binary. Nothing is fetched from
//! another origin, so it works on a building's network without internet access, and
//! `cargo build` needs no JavaScript toolchain.
//!
//! # Layout
//! - this file: the routes, the frame every page shares, the assets and the security headers.
//! - `overview`: `/`, every space as a tree with its live count and utilization.
//! - `space`: `/ui/spaces/{id}`, a space's history chart, count at a moment, CSV download.
//! - `chart`: the history chart, as inline SVG.
//! - `dpus`: `/ui/dpus` and `/ui/dpus/{id}`, sensors and the messages ingestion refused.
//! - `login`: `/ui/login`, where a read token is given once and kept in a session cookie.
//! - `reference`: `/docs`, the API reference rendered from the OpenAPI document.
//! - `assets/`: `dashboard.css` and `live.js` (live counts from the SSE routes).
//!
//! Pages read storage directly, as the JSON routes do: the overview is one query however many
//! spaces the building has.

mod chart;
mod dpus;
pub(crate) mod login;
mod overview;
pub(crate) mod reference;
mod space;

use crate::{ApiError, AppState};
use axum::extract::Path;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, TimeZone};
use maud::{html, Markup, DOCTYPE};

const CSS: &str = include_str!("assets/dashboard.css");
const SCRIPT: &str = include_str!("assets/live.js");

/// Where pages other than the overview live; `/` is the overview.
pub const PREFIX: &str = "/ui/";

/// Whether `path` is one of the dashboard's pages (which send a browser to the login page
/// rather than answer 401).
pub fn is_page(path: &str) -> bool {
    path == "/" || (path.starts_with(PREFIX) && !is_open(path))
}

/// Whether `path` is open to anyone: the login page and the assets.
pub fn is_open(path: &str) -> bool {
    path == login::PATH || path == login::LOGOUT || path.starts_with("/ui/assets/")
}

/// The dashboard's routes; `/docs` is added by the router, beside the OpenAPI document.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/ui/spaces/{id}", get(space::page))
        .route("/ui/dpus", get(dpus::list))
        .route("/ui/dpus/{id}", get(dpus::one))
        .route(login::PATH, get(login::form).post(login::submit))
        .route(login::LOGOUT, post(login::logout))
        .route("/ui/assets/{file}", get(asset))
        // A 1,000-space overview is about 380 KB of markup and 30 KB gzipped.
        .layer(tower_http::compression::CompressionLayer::new())
}

/// `GET /ui/assets/{file}`
async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    let (body, kind) = match file.as_str() {
        "dashboard.css" => (CSS, "text/css; charset=utf-8"),
        "live.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        _ => return Err(ApiError::NotFound(format!("no asset {file:?}"))),
    };
    Ok((
        [
            (header::CONTENT_TYPE, kind),
            // The assets change with the binary; `no-cache` revalidates rather than refetches.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response())
}

/// Which entry of the navigation a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Building,
    Dpus,
    Api,
    None,
}

/// A whole page: `body` inside the frame every page shares; with `sign_out` (reads need a
/// token here) a button that forgets the token.
pub(crate) fn frame(title: &str, section: Section, sign_out: bool, body: Markup) -> Markup {
    let nav = [
        (Section::Building, "/", "Building"),
        (Section::Dpus, "/ui/dpus", "DPUs"),
        (Section::Api, "/docs", "API"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Roomer" }
                link rel="stylesheet" href="/ui/assets/dashboard.css";
                script src="/ui/assets/live.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "Roomer" }
                    nav aria-label="Main" {
                        @for (entry, href, label) in nav {
                            @if entry == section {
                                a href=(href) aria-current="page" { (label) }
                            } @else {
                                a href=(href) { (label) }
                            }
                        }
                    }
                    @if sign_out {
                        form.logout method="post" action=(login::LOGOUT) {
                            button type="submit" { "Forget token" }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// A page as a response, with the headers every page carries: a content security policy that
/// allows nothing but this origin (no inline script, no other site), no framing, no sniffing.
pub(crate) fn respond(status: StatusCode, page: Markup) -> Response {
    const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
         frame-ancestors 'none'";
    let mut response = (status, page).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An error as a page (a browser asked), with the message the JSON routes would give.
pub(crate) fn error_page(error: ApiError) -> Response {
    if let ApiError::Internal(cause) = &error {
        tracing::error!(error = %cause, "page failed");
    }
    let status = error.status();
    // What a JSON client would read in `detail`: never internals.
    let message = error.to_string();
    respond(
        status,
        frame(
            "Error",
            Section::None,
            false,
            html! {
                h1 { (status.canonical_reason().unwrap_or("Error")) }
                p.error role="alert" { (message) }
                p { a href="/" { "Back to the building" } }
            },
        ),
    )
}

/// `t` in `tz`, to the second, as people read it.
pub(crate) fn local_time<Tz: TimeZone>(t: DateTime<chrono::Utc>, tz: &Tz) -> String
where
    Tz::Offset: std::fmt::Display,
{
    t.with_timezone(tz).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// An element that shows `t` as UTC and carries it machine-readable.
pub(crate) fn time_utc(t: Option<DateTime<chrono::Utc>>) -> Markup {
    match t {
        Some(t) => {
            html! { time datetime=(t.to_rfc3339()) { (local_time(t, &chrono::Utc)) " UTC" } }
        }
        None => html! { span.muted { "never" } },
    }
}
