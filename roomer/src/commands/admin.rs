//! The administrative commands: applying a layout file, bearer tokens, the schema and
//! TimescaleDB's settings. Each connects, does one thing and says what it did.

use anyhow::Context;
use roomer_occupancy::Layout;
use roomer_storage::{Role, StoreOptions, TimescaleSettings, TokenSelector};
use std::path::Path;

async fn connect(
    database_url: &str,
    options: StoreOptions,
) -> anyhow::Result<std::sync::Arc<dyn roomer_storage::Store>> {
    Ok(roomer_storage::connect_with(database_url, options).await?)
}

/// `roomer layout apply FILE`: what was applied and what changed.
pub async fn apply_layout(
    database_url: &str,
    options: StoreOptions,
    file: &Path,
) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let layout = Layout::from_toml(&text).with_context(|| format!("in {}", file.display()))?;
    let store = connect(database_url, options).await?;
    let report = store.apply_layout(&layout).await?;
    Ok(format!(
        "applied {}: {} spaces, {} doorways, {} DPUs; {} changes, {} crossings re-attributed",
        file.display(),
        layout.spaces.len(),
        layout.doorways.len(),
        layout.dpus.len(),
        report.changed,
        report.reattributed
    ))
}

/// `roomer token create`: a new token (shown only now; only its hash is stored).
pub async fn create_token(
    database_url: &str,
    options: StoreOptions,
    role: &str,
    name: &str,
) -> anyhow::Result<(String, Role)> {
    let store = connect(database_url, options).await?;
    let role = Role::parse(role).context("role")?;
    let (token, hash) = roomer_api::auth::new_token();
    store.create_token(&hash, role, name).await?;
    Ok((token, role))
}

/// `roomer token list`: a line per token (id, role, created, name).
pub async fn list_tokens(database_url: &str, options: StoreOptions) -> anyhow::Result<Vec<String>> {
    let store = connect(database_url, options).await?;
    Ok(store
        .tokens()
        .await?
        .into_iter()
        .map(|token| {
            format!(
                "{}  {:<5}  {}  {}",
                token.id,
                token.role.as_str(),
                token.created_at.to_rfc3339(),
                token.name
            )
        })
        .collect())
}

/// `roomer token revoke`: how many were revoked; none is an error.
pub async fn revoke_tokens(
    database_url: &str,
    options: StoreOptions,
    selector: TokenSelector,
) -> anyhow::Result<u64> {
    let store = connect(database_url, options).await?;
    let revoked = store.revoke_tokens(&selector).await?;
    anyhow::ensure!(revoked > 0, "no token matched");
    Ok(revoked)
}

/// `roomer migrate`: brings the schema up to date (connecting does) and, with TimescaleDB,
/// applies `settings`; what the database runs with now.
pub async fn migrate(
    database_url: &str,
    options: StoreOptions,
    settings: &TimescaleSettings,
) -> anyhow::Result<Vec<String>> {
    let store = connect(database_url, options).await?;
    let mut lines = vec![format!("{database_url} is up to date")];
    let status = if settings.is_empty() {
        store.timescale().await?
    } else {
        let status = store.configure_timescale(settings).await?;
        anyhow::ensure!(
            status.is_some(),
            "TimescaleDB settings given, but {database_url} does not use TimescaleDB"
        );
        status
    };
    lines.push(match status {
        Some(status) => status.to_string(),
        None => "no TimescaleDB: plain tables, no compression or retention".into(),
    });
    Ok(lines)
}
