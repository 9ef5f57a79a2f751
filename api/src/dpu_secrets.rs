//! DPU secrets for the embedded broker, for provisioning tools: `POST` issues one (shown in
//! that answer only; storage keeps a hash), `DELETE` withdraws it. Both need an admin token.
//! A running `roomer serve` ends the connections of a DPU whose secret changed within a few
//! seconds, and refuses the old secret at once.

use crate::error::Problem;
use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use roomer_occupancy::DpuId;
use serde::Serialize;

/// A DPU's new login for the embedded broker.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DpuCredentials {
    pub dpu_id: DpuId,
    /// The MQTT user name: the DPU's id. Its client id must be the same (or empty).
    pub username: String,
    /// The MQTT password. Shown only here; it replaces any earlier secret of this DPU.
    pub secret: String,
}

fn dpu_id(raw: &str) -> Result<DpuId, ApiError> {
    DpuId::new(raw).map_err(|e| ApiError::BadRequest(format!("DPU id {raw:?}: {e}")))
}

/// `POST /api/v1/dpus/{id}/credentials`: a new secret for the DPU (which need not be declared
/// yet), replacing any earlier one.
#[utoipa::path(post, path = "/api/v1/dpus/{id}/credentials", tag = "dpus", params(("id" = String, Path, description = "DPU id")), responses((status = 201, body = DpuCredentials, description = "the secret, shown only now"), (status = 400, description = "not a DPU id", body = Problem)))]
pub async fn create_credentials(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<(StatusCode, Json<DpuCredentials>), ApiError> {
    let id = dpu_id(&raw_id)?;
    let secret = state.store.issue_dpu_secret(&id).await?;
    tracing::info!(dpu = %id.as_str(), "DPU secret issued over the API");
    let credentials = DpuCredentials {
        username: id.as_str().to_owned(),
        dpu_id: id,
        secret,
    };
    Ok((StatusCode::CREATED, Json(credentials)))
}

/// `DELETE /api/v1/dpus/{id}/credentials`: withdraws the DPU's secret.
#[utoipa::path(delete, path = "/api/v1/dpus/{id}/credentials", tag = "dpus", params(("id" = String, Path, description = "DPU id")), responses((status = 204, description = "withdrawn"), (status = 404, description = "the DPU has no secret", body = Problem)))]
pub async fn delete_credentials(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = dpu_id(&raw_id)?;
    if state.store.revoke_dpu_secret(&id).await? {
        tracing::info!(dpu = %id.as_str(), "DPU secret withdrawn over the API");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("DPU {raw_id:?} has no secret")))
    }
}
