//! Open files: each MQTT connection is one. Linux starts most processes with a soft limit of
//! 1,024 open files, far below a fleet's worth, while the hard limit an administrator sets is
//! usually much higher; the broker raises its soft limit to the hard one at start, and says
//! when even that cannot hold `--broker-max-connections`.

/// Files the process needs besides its connections: the database, logs, HTTP clients.
const RESERVE: u64 = 256;

/// Raises the soft limit on open files as far as the hard limit allows and returns it; warns
/// when it cannot hold `connections` connections.
pub fn raise_open_files_for(connections: usize) -> Option<u64> {
    let raised = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the open-files limit");
            return None;
        }
    };
    let needed = connections as u64 + RESERVE;
    if raised < needed {
        tracing::warn!(
            open_files = raised,
            needed,
            "the open-files limit cannot hold --broker-max-connections: raise the hard limit \
             (systemd: LimitNOFILE=; shell: ulimit -Hn) or lower --broker-max-connections; \
             connections beyond it wait until others close"
        );
    } else {
        tracing::info!(open_files = raised, "open-files limit");
    }
    Some(raised)
}
