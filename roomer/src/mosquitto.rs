//! An external Mosquitto secured from Roomer's DPU registry: `roomer dpu credentials
//! mosquitto` writes its password file and ACL file, so that the DPUs log in with the same
//! secrets as on the embedded broker, and the same rules hold:
//! - each DPU writes and reads only `dpus/{its id}/…` (`pattern … dpus/%u/#`);
//! - only Roomer's account (`roomer`) reads every DPU's topics and writes `spaces/…`, where
//!   the counts are published;
//! - anyone else is refused (the Mosquitto configuration sets `allow_anonymous false`).
//!
//! The password file holds the hashes storage keeps, in Mosquitto's own `$7$` form, plus
//! one for the `roomer` account made from its password here; no DPU secret is ever needed.
//! Both files are replaced whole (written beside, then renamed), so a Mosquitto reloading
//! them (`kill -HUP`) never reads half a file. Rerun the command after issuing or
//! withdrawing a secret, then reload Mosquitto.

use anyhow::Context;
use roomer_broker::access::SERVICE_USER;
use roomer_storage::{secrets, Store};
use std::path::Path;
use std::sync::Arc;

/// The ACL: the same for every registry, since its rules are patterns over user names.
pub const ACL: &str = "\
# Written by `roomer dpu credentials mosquitto`.
# Roomer's own account: reads what DPUs send, publishes counts on spaces/#.
user roomer
topic readwrite #

# Every DPU (user name = its id): its own topics only.
pattern readwrite dpus/%u/#
";

/// Writes the password file (Roomer's account and every DPU with a secret) and the ACL;
/// returns how many DPUs the password file holds.
pub async fn write_files(
    store: Arc<dyn Store>,
    service_password: &str,
    passwd: &Path,
    acl: &Path,
) -> anyhow::Result<usize> {
    let dpus = store.dpu_secret_hashes().await?;
    let mut lines = format!(
        "{SERVICE_USER}:{}\n",
        secrets::hash_secret(service_password)
    );
    for (dpu, hash) in &dpus {
        anyhow::ensure!(
            dpu.as_str() != SERVICE_USER,
            "DPU {SERVICE_USER:?} would share a user name with Roomer's own account"
        );
        lines.push_str(&format!("{}:{hash}\n", dpu.as_str()));
    }
    replace(passwd, &lines)?;
    replace(acl, ACL)?;
    Ok(dpus.len())
}

/// Replaces `path` with `contents`, readable by its owner only: written beside, then renamed.
fn replace(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut beside = path.as_os_str().to_owned();
    beside.push(".new");
    let beside = std::path::PathBuf::from(beside);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&beside)
        .with_context(|| format!("writing {}", beside.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&beside, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}
