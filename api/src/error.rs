//! The API's one error type.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use roomer_storage::StoreError;
use serde_json::json;

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
    /// Logged with its cause; the client sees only that something went wrong.
    #[error("internal error")]
    Internal(#[from] StoreError),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            tracing::error!(error = %cause, "request failed");
        }
        let status = self.status();
        let body = json!({ "error": self.to_string(), "status": status.as_u16() });
        (status, Json(body)).into_response()
    }
}
