//! Bearer tokens. Writes need an `admin` token; reads need a `read` or `admin` token unless
//! the server runs with public reads. Liveness, readiness, metrics and the API's own
//! description are open to all. The seed-compatible routes follow the same rules.
//!
//! A token is `roomer_` and 64 hex digits (256 random bits). Only its SHA-256 hash is
//! stored and looked up, so the token itself never rests anywhere but with its holder.

use crate::dashboard::{self, login};
use crate::{ApiError, AppState};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use roomer_storage::Role;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::time::Instant;

/// Routes anyone may call.
const OPEN: &[&str] = &["/healthz", "/readyz", "/metrics", "/openapi.json"];

/// A new token and the hash to store for it.
pub fn new_token() -> (String, String) {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let token = format!("roomer_{}", hex(&secret));
    let hash = hash(&token);
    (token, hash)
}

/// The stored form of a token.
pub fn hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Who may call what: reads open to all, or only to token holders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    pub public_read: bool,
}

/// Middleware: checks the bearer token against what the request needs.
pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let reading = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if OPEN.contains(&path)
        || path.starts_with("/docs")
        || dashboard::is_open(path)
        || (reading && state.access.public_read)
    {
        return next.run(request).await;
    }
    // A browser is sent to the login page rather than answered 401.
    let page = dashboard::is_page(path);
    // The scheme is case-insensitive (RFC 9110, section 11.1): `bearer` is `Bearer`.
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim_start().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    // The dashboard's cookie authorizes reads only, so no other site can write with it.
    let presented = bearer.or_else(|| {
        reading
            .then(|| login::token_in(request.headers()))
            .flatten()
    });
    let Some(token) = presented else {
        if page {
            return to_login();
        }
        return unauthorized("this route needs a bearer token (Authorization: Bearer roomer_…)");
    };
    let token = token.as_str();
    // Unknown tokens count against the client's address (`attempts`); without the peer's
    // address (a router called directly) there is no bound.
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip());
    let now = Instant::now();
    if let Some(wait) = client.and_then(|c| state.failed_tokens.blocked_for(c, now)) {
        return ApiError::TooManyAttempts(wait).into_response();
    }
    match state.store.token_role(&hash(token)).await {
        Ok(Some(Role::Admin)) => next.run(request).await,
        Ok(Some(Role::Read)) if reading => next.run(request).await,
        Ok(Some(Role::Read)) => {
            ApiError::Forbidden("a read token cannot change anything; use an admin token".into())
                .into_response()
        }
        Ok(None) => {
            if let Some(client) = client {
                state.failed_tokens.failed(client, now);
            }
            if page {
                return to_login();
            }
            unauthorized("unknown token")
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Sends a browser to the page that asks for a token.
fn to_login() -> Response {
    axum::response::Redirect::to(login::PATH).into_response()
}

fn unauthorized(why: &str) -> Response {
    let mut response = ApiError::Unauthorized(why.to_owned()).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"roomer\""),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let (a, hash_a) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert!(a.starts_with("roomer_") && a.len() == 7 + 64);
        assert_eq!(hash(&a), hash_a);
        assert!(!hash_a.contains(&a[7..]));
    }
}
