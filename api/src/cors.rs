//! Cross-origin reads and writes for dashboards served from another origin than the API.
//!
//! Off unless origins are configured (`--cors-origin`): a browser then lets a page from one of
//! them call the API with its `Authorization` header. The preflight (`OPTIONS` with
//! `Access-Control-Request-Method`) is answered before the token check, since browsers send
//! it without credentials; the request that follows is checked as any other.

use axum::http::{header, HeaderValue, Method};
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Which origins may call the API from a browser: exact origins (`https://dash.example.com`),
/// or `*` for any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CorsOrigins(Vec<HeaderValue>);

/// An origin that cannot be one.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an origin: use scheme://host[:port] (no path), or * for any")]
pub struct BadOrigin(String);

impl CorsOrigins {
    /// Parses origins such as `https://dash.example.com` or `http://localhost:3000`.
    pub fn parse<S: AsRef<str>>(origins: &[S]) -> Result<Self, BadOrigin> {
        let mut parsed = Vec::new();
        for origin in origins.iter().map(AsRef::as_ref).map(str::trim) {
            let bad = || BadOrigin(origin.to_owned());
            if origin != "*" {
                let (scheme, rest) = origin.split_once("://").ok_or_else(bad)?;
                let host_ok = !rest.is_empty()
                    && !rest.contains(|c: char| c == '/' || c.is_whitespace() || c == '?');
                if !matches!(scheme, "http" | "https") || !host_ok {
                    return Err(bad());
                }
            }
            parsed.push(HeaderValue::from_str(origin).map_err(|_| bad())?);
        }
        Ok(Self(parsed))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The layer that answers preflights and marks answers for these origins.
    pub(crate) fn layer(&self) -> Option<CorsLayer> {
        if self.0.is_empty() {
            return None;
        }
        let origins = if self.0.iter().any(|o| o == "*") {
            AllowOrigin::any()
        } else {
            AllowOrigin::list(self.0.clone())
        };
        Some(
            CorsLayer::new()
                .allow_origin(origins)
                .allow_methods([Method::GET, Method::PUT, Method::POST, Method::DELETE])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
                .expose_headers([header::LINK])
                .max_age(Duration::from_secs(3600)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_and_host_only() {
        assert!(
            CorsOrigins::parse(&["https://dash.example.com", "http://localhost:3000", "*"]).is_ok()
        );
        for bad in [
            "dash.example.com",
            "ftp://x",
            "https://",
            "https://x/path",
            "https://a b",
        ] {
            assert!(CorsOrigins::parse(&[bad]).is_err(), "{bad}");
        }
    }
}
