//! `/ui/login`: when reads need a token, the dashboard asks for one once and keeps it in a
//! cookie for the browser session, so that no token ever appears in a URL and the live
//! stream (an `EventSource`, which cannot send headers) is authorized too.
//!
//! The cookie is `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's page
//! sends it) and `Secure` when Roomer serves HTTPS itself. It authorizes reads only: a write
//! still needs an `Authorization` header (see `auth`), so a forged form cannot use it.

use super::{frame, respond, Section};
use crate::auth::hash;
use crate::listen::OverTls;
use crate::{ApiError, AppState};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use cookie::{Cookie, SameSite};
use maud::{html, Markup};
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Instant;

pub const PATH: &str = "/ui/login";
pub const LOGOUT: &str = "/ui/logout";
/// The cookie that carries a dashboard's read token.
pub const COOKIE: &str = "roomer_token";

/// The token in a request's cookies, if any.
pub fn token_in(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_owned())
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

/// `GET /ui/login`
pub async fn form(State(state): State<AppState>) -> Response {
    respond(StatusCode::OK, page(state.access.public_read, None))
}

fn page(public_read: bool, error: Option<&str>) -> Markup {
    frame(
        "Sign in",
        Section::None,
        false,
        html! {
            h1 { "Read token" }
            @if public_read {
                p { "Reads are public on this server: no token is needed. " a href="/" { "Go to the building" } }
            } @else {
                p { "This server shows counts to token holders only. A read token is made with "
                    code { "roomer token create --role read --name NAME" } "." }
            }
            @if let Some(error) = error {
                p.error role="alert" { (error) }
            }
            form.login method="post" action=(PATH) {
                label for="token" { "Token" }
                input #token type="password" name="token" autocomplete="off" required
                    placeholder="roomer_…" autofocus;
                button type="submit" { "Open the dashboard" }
            }
            p.muted { "The token is kept in a cookie until the browser closes, never in the address." }
        },
    )
}

/// `POST /ui/login`: checks the token and keeps it in the session cookie.
pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    tls: Option<Extension<OverTls>>,
    Form(login): Form<LoginForm>,
) -> Response {
    // A browser says where a form came from; only this origin's own login form may sign in.
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if site.is_some_and(|s| s != "same-origin" && s != "none") {
        return respond(
            StatusCode::FORBIDDEN,
            page(
                state.access.public_read,
                Some("Sign in from this server's own page."),
            ),
        );
    }
    let client = peer.map(|Extension(ConnectInfo(p))| p.ip());
    let now = Instant::now();
    if let Some(wait) = client.and_then(|c| state.failed_tokens.blocked_for(c, now)) {
        return super::error_page(ApiError::TooManyAttempts(wait));
    }
    let token = login.token.trim();
    match state.store.token_role(&hash(token)).await {
        Ok(Some(_)) => {
            let cookie = Cookie::build((COOKIE, token.to_owned()))
                .path("/")
                .http_only(true)
                .same_site(SameSite::Strict)
                .secure(tls.is_some())
                .build();
            redirect_with_cookie("/", &cookie)
        }
        Ok(None) => {
            if let Some(client) = client {
                state.failed_tokens.failed(client, now);
            }
            respond(
                StatusCode::UNAUTHORIZED,
                page(
                    state.access.public_read,
                    Some("That token is not known here."),
                ),
            )
        }
        Err(e) => super::error_page(e.into()),
    }
}

/// `POST /ui/logout`: forgets the cookie.
pub async fn logout() -> Response {
    let mut gone = Cookie::build((COOKIE, "")).path("/").build();
    gone.make_removal();
    redirect_with_cookie(PATH, &gone)
}

fn redirect_with_cookie(to: &'static str, cookie: &Cookie<'_>) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_found_among_other_cookies() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; roomer_token=roomer_abc; other=1"),
        );
        assert_eq!(token_in(&headers).as_deref(), Some("roomer_abc"));
        assert_eq!(token_in(&HeaderMap::new()), None);
    }
}
