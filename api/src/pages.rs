//! Pagination of lists: `?limit=N&after=ID` (keyset, by id), and a `Link: <…>; rel="next"`
//! header (RFC 8288) when there may be more, so the body stays a plain JSON array.

use crate::ApiError;
use axum::http::{header, HeaderMap, HeaderValue};
use roomer_storage::Page;
use serde::Deserialize;
use std::str::FromStr;

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    limit: Option<usize>,
    after: Option<String>,
}

impl PageQuery {
    /// The page asked for, with ids parsed as `K`.
    pub fn page<K: FromStr>(&self) -> Result<Page<K>, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::BadRequest(format!(
                "limit must be 1 to {MAX_LIMIT}, got {limit}"
            )));
        }
        let after = self
            .after
            .as_deref()
            .map(|a| {
                a.parse()
                    .map_err(|_| ApiError::BadRequest(format!("after={a:?} is not an id")))
            })
            .transpose()?;
        Ok(Page { after, limit })
    }
}

/// The `Link` header to the next page, if this one was full.
pub fn next_link<K>(
    path: &str,
    page: &Page<K>,
    returned: usize,
    last_id: Option<String>,
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let (true, Some(last)) = (returned >= page.limit, last_id) {
        let encoded: String = url_escape(&last);
        let link = format!(
            "<{path}?limit={}&after={encoded}>; rel=\"next\"",
            page.limit
        );
        if let Ok(value) = HeaderValue::from_str(&link) {
            headers.insert(header::LINK, value);
        }
    }
    headers
}

/// Ids are digits or DPU ids (`A-Za-z0-9-_.`): nothing to escape but to be safe, anything
/// else is percent-encoded.
fn url_escape(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
