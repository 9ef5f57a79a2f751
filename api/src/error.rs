//! The API's one error type, answered as RFC 9457 problem details
//! (`application/problem+json`): `type`, `title`, `status`, `detail`, plus `code`, a stable
//! machine-readable name of the problem. Internal causes are logged, never sent.

use axum::extract::rejection::JsonRejection;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use problem_details::ProblemDetails;
use roomer_storage::StoreError;
use serde::Serialize;

/// The media type of every error this API answers.
pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    /// Well-formed, but not something that can be applied (an invalid installation history).
    #[error("{0}")]
    Unprocessable(String),
    /// No token, or one that does not exist.
    #[error("{0}")]
    Unauthorized(String),
    /// A token that does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// A part this route needs is not configured or not reachable.
    #[error("{0}")]
    Unavailable(String),
    /// A body larger than the route takes.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A body without the content type the route takes.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Too many failed token attempts from this client; it may try again after this long.
    #[error("too many failed token attempts from this address; try again in {} s", .0.as_secs().max(1))]
    TooManyAttempts(std::time::Duration),
    /// Logged with its cause; the client sees only that something went wrong.
    #[error("internal error")]
    Internal(StoreError),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(what.to_string()),
            StoreError::InUse(why) => Self::Conflict(why.to_string()),
            StoreError::Layout(why) => Self::Unprocessable(why.to_string()),
            other => Self::Internal(other),
        }
    }
}

/// An error as this API answers it (`application/problem+json`, RFC 9457); for the OpenAPI
/// document.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// The HTTP status.
    status: u16,
    /// The status's reason phrase.
    title: String,
    /// What went wrong, for a person.
    detail: String,
    /// What went wrong, for a program: `not_found`, `bad_request`, `conflict`, `invalid`,
    /// `method_not_allowed`, `payload_too_large`, `unsupported_media_type`, `unauthorized`,
    /// `forbidden`, `too_many_attempts`, `unavailable`, `internal`.
    code: String,
}

/// The extension member every problem carries.
#[derive(Serialize)]
struct Code {
    code: &'static str,
}

impl ApiError {
    /// A JSON body that could not be read, as its own status says: 413 for one too large,
    /// 415 for one without `Content-Type: application/json`, 400 for anything else
    /// (`expected` says what the route takes).
    pub(crate) fn from_json(rejection: &JsonRejection, expected: &str) -> Self {
        let detail = format!("expected {expected}: {}", rejection.body_text());
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge(detail),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType(detail),
            _ => Self::BadRequest(detail),
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::BadRequest(_) => "bad_request",
            Self::Conflict(_) => "conflict",
            Self::Unprocessable(_) => "invalid",
            Self::Unavailable(_) => "unavailable",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::TooManyAttempts(_) => "too_many_attempts",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            tracing::error!(error = %cause, "request failed");
        }
        let mut response = problem(self.status(), self.code(), self.to_string());
        if let Self::TooManyAttempts(wait) = &self {
            let seconds = wait.as_secs().max(1).to_string();
            if let Ok(value) = header::HeaderValue::from_str(&seconds) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// What a handler that panicked answers (tower-http's `CatchPanicLayer`): 500 problem
/// details, and one ERROR line with the panic's message; never the internals.
pub fn panicked(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    tracing::error!(panic = %message, "request handler panicked");
    problem(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error".to_owned(),
    )
}

fn problem(status: StatusCode, code: &'static str, detail: String) -> Response {
    ProblemDetails::from_status_code(status)
        .with_detail(detail)
        .with_extensions(Code { code })
        .into_response()
}

/// Middleware: turns every other error response — axum's own rejections (a query string or
/// body that does not parse), 405, a panic caught upstream — into problem details too, so
/// clients meet one error format.
pub async fn problems_everywhere(response: Response) -> Response {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    // The dashboard's pages answer errors as pages of their own.
    let is_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem || is_page {
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let detail = match String::from_utf8_lossy(&body).trim() {
        // Whatever produced a server error may have put internals in its body.
        _ if status.is_server_error() => "internal error".to_owned(),
        "" => status.canonical_reason().unwrap_or("error").to_owned(),
        text => text.to_owned(),
    };
    let code = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let mut answer = problem(status, code, detail);
    // Keep what else the original said (`Allow` on a 405, say), but not its body's type.
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tower_http::catch_panic::CatchPanicLayer;

    /// A handler that panics answers 500 problem details, the connection is not dropped, and
    /// the next request is served.
    #[tokio::test]
    async fn a_panicking_handler_answers_500_problem_details() {
        let app = axum::Router::new()
            .route(
                "/boom",
                get(|| async {
                    if true {
                        panic!("a bug in a handler");
                    }
                    "unreachable"
                }),
            )
            .route("/fine", get(|| async { "fine" }))
            .layer(CatchPanicLayer::custom(panicked))
            .layer(axum::middleware::map_response(problems_everywhere));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let client = reqwest::Client::new();

        let boom = client
            .get(format!("http://{addr}/boom"))
            .send()
            .await
            .unwrap();
        assert_eq!(boom.status(), 500);
        let body: serde_json::Value = boom.json().await.unwrap();
        assert_eq!(body["code"], "internal");
        assert_eq!(body["detail"], "internal error", "no internals: {body}");
        let fine = client
            .get(format!("http://{addr}/fine"))
            .send()
            .await
            .unwrap();
        assert_eq!(fine.text().await.unwrap(), "fine");
    }
}
