//! The embedded broker's logins, backed by the DPU registry in storage: DPU secrets are
//! checked against their stored hashes at every CONNECT, and a secret replaced or withdrawn
//! (by `roomer dpu credentials`, the API, or another process sharing the database) ends the
//! connections it opened within [`POLL_EVERY`].

use async_trait::async_trait;
use roomer_broker::{DpuSecrets, DpuSessions};
use roomer_occupancy::{DpuId, Timestamp};
use roomer_storage::Store;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the registry is asked which secrets changed.
pub const POLL_EVERY: Duration = Duration::from_secs(2);

/// DPU secrets as storage keeps them.
pub struct StoredSecrets(pub Arc<dyn Store>);

#[async_trait]
impl DpuSecrets for StoredSecrets {
    async fn check(&self, dpu: &str, secret: &str) -> Result<bool, String> {
        let Ok(dpu) = DpuId::new(dpu) else {
            return Ok(false);
        };
        self.0
            .check_dpu_secret(&dpu, secret)
            .await
            .map_err(|e| e.to_string())
    }
}

/// A random secret for Roomer's own components' broker account.
pub fn new_service_secret() -> String {
    roomer_storage::secrets::new_secret()
}

/// A secret that `Debug` does not show.
#[derive(Clone, PartialEq, Eq)]
pub struct Hidden(pub String);

impl std::fmt::Debug for Hidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(hidden)")
    }
}

/// Ends the broker connections of DPUs whose secret changed, until `shutdown`.
pub async fn follow_secret_changes(
    store: Arc<dyn Store>,
    sessions: DpuSessions,
    shutdown: CancellationToken,
) {
    // Changes from a little before now: a secret withdrawn while this process started.
    let mut since: Timestamp = chrono::Utc::now() - chrono::TimeDelta::seconds(10);
    // The changes already acted on at `since` itself (the poll includes that instant).
    let mut seen_at_since = HashSet::new();
    let mut ticks = tokio::time::interval(POLL_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let changed = match store.dpu_secrets_changed(since).await {
            Ok(changed) => changed,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read which DPU secrets changed; retrying");
                continue;
            }
        };
        for (dpu, at) in changed {
            if at == since && !seen_at_since.insert(dpu.clone()) {
                continue;
            }
            if at > since {
                since = at;
                seen_at_since = HashSet::from([dpu.clone()]);
            }
            tracing::info!(
                dpu = dpu.as_str(),
                "DPU secret changed: ending its connections"
            );
            sessions.end(dpu.as_str());
        }
    }
}

/// What `roomer dpu credentials` does.
#[derive(Clone, Debug)]
pub enum Action {
    Create(String),
    Revoke(String),
    List,
}

/// Runs `roomer dpu credentials`: a new secret is printed as stdout's last line (the only
/// time it is shown), with how to use it on stderr.
pub async fn credentials(store: Arc<dyn Store>, action: Action) -> anyhow::Result<()> {
    let dpu = |id: String| DpuId::new(id).map_err(anyhow::Error::from);
    match action {
        Action::Create(id) => {
            let dpu = dpu(id)?;
            let secret = store.issue_dpu_secret(&dpu).await?;
            eprintln!(
                "DPU {0}: MQTT user name {0}, client id {0}; the secret below replaces any \
                 earlier one, is not stored and will not be shown again",
                dpu.as_str()
            );
            println!("{secret}");
        }
        Action::Revoke(id) => {
            let dpu = dpu(id)?;
            anyhow::ensure!(
                store.revoke_dpu_secret(&dpu).await?,
                "DPU {} has no secret",
                dpu.as_str()
            );
            println!(
                "DPU {}: secret withdrawn; a running broker ends its connections within {:?}",
                dpu.as_str(),
                POLL_EVERY
            );
        }
        Action::List => {
            for (dpu, _) in store.dpu_secret_hashes().await? {
                println!("{}", dpu.as_str());
            }
        }
    }
    Ok(())
}

/// Runs `roomer broker` until `shutdown`: raises the open-files limit for its connections,
/// logs its meters every minute and, with logins required, checks DPU secrets against the
/// database at `database_url`.
pub async fn run_broker(
    config: roomer_broker::BrokerConfig,
    mode: roomer_broker::AuthMode,
    service_secret: Option<String>,
    database_url: &str,
    store_options: roomer_storage::StoreOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    crate::limits::raise_open_files_for(config.max_connections);
    tokio::spawn(crate::log_meters(
        crate::meters_of(None, true),
        crate::METERS_LOG_INTERVAL,
        shutdown.clone(),
    ));
    let store = match mode {
        roomer_broker::AuthMode::Off => None,
        roomer_broker::AuthMode::Required => {
            anyhow::ensure!(
                service_secret.is_some(),
                "with DPU logins required, set --mqtt-service-password (ROOMER_MQTT_SERVICE_PASSWORD): \
                 Roomer's workers and APIs log in with it as user `roomer`"
            );
            Some(
                roomer_storage::connect_with(database_url, store_options)
                    .await
                    .with_context(|| format!("opening the DPU registry in {database_url}"))?,
            )
        }
    };
    let access = roomer_broker::Access {
        mode,
        service_secret,
        dpu_secrets: store
            .clone()
            .map(|store| Arc::new(StoredSecrets(store)) as Arc<dyn DpuSecrets>),
    };
    let broker = tokio::task::spawn_blocking(move || {
        roomer_broker::EmbeddedBroker::start_with(config, access)
    })
    .await?
    .context("starting the MQTT broker")?;
    if let Some(store) = store {
        tokio::spawn(follow_secret_changes(
            store,
            broker.dpu_sessions(),
            shutdown.clone(),
        ));
    }
    shutdown.cancelled().await;
    tokio::task::spawn_blocking(move || broker.shutdown()).await?;
    Ok(())
}

/// Reads a file of DPU secrets, one `DPU_ID SECRET` a line (blank lines and `#` comments
/// skipped), for simulated DPUs to log in with.
pub fn read_secrets_file(
    path: &std::path::Path,
) -> anyhow::Result<std::collections::HashMap<String, String>> {
    use anyhow::Context as _;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading DPU secrets from {}", path.display()))?;
    let mut secrets = std::collections::HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(dpu), Some(secret), None) = (fields.next(), fields.next(), fields.next()) else {
            anyhow::bail!(
                "{}, line {}: expected `DPU_ID SECRET`",
                path.display(),
                n + 1
            );
        };
        secrets.insert(dpu.to_owned(), secret.to_owned());
    }
    Ok(secrets)
}
