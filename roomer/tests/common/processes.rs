//! Real processes for the tests that need them: a Mosquitto of the test's own, and `roomer`
//! subcommands run as an operator would run them (and killed as a crash would kill them).

use roomer_storage::testing::eventually;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const ROOMER: &str = env!("CARGO_BIN_EXE_roomer");

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs a `roomer` subcommand to completion against `database_url`, with `envs` set; fails
/// the test if it fails. Its output.
pub fn run_roomer(
    database_url: &str,
    args: &[&str],
    envs: &[(&str, &str)],
) -> std::process::Output {
    let output = Command::new(ROOMER)
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "roomer {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Waits until something accepts TCP connections on `port`.
pub async fn wait_for_port(what: &str, port: u16) {
    eventually(what, Duration::from_secs(20), || async move {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
            .map(|_| ())
    })
    .await;
}

/// How many unacknowledged messages the tests' Mosquitto sends one client at most.
pub const MOSQUITTO_INFLIGHT: usize = 100;

/// A Mosquitto with its own config, free port and persistence directory; killed on drop.
pub struct Mosquitto {
    child: Child,
    pub port: u16,
    /// The MQTT-over-TLS listener of [`Mosquitto::start_secured`].
    pub tls_port: Option<u16>,
    log: std::path::PathBuf,
}

/// What a secured Mosquitto checks logins and topics against, and presents over TLS.
pub struct Secured<'a> {
    pub password_file: &'a Path,
    pub acl_file: &'a Path,
    pub cert: &'a Path,
    pub key: &'a Path,
}

impl Mosquitto {
    /// Starts the `mosquitto` binary that `TEST_MOSQUITTO` names, open to anyone.
    pub async fn start(dir: &Path) -> Self {
        Self::start_with(dir, None).await
    }

    /// A Mosquitto that refuses anonymous clients and checks `secured`'s password and ACL
    /// files, with a second listener for MQTT over TLS.
    pub async fn start_secured(dir: &Path, secured: Secured<'_>) -> Self {
        Self::start_with(dir, Some(secured)).await
    }

    async fn start_with(dir: &Path, secured: Option<Secured<'_>>) -> Self {
        let binary =
            std::env::var("TEST_MOSQUITTO").expect("TEST_MOSQUITTO names the mosquitto binary");
        let port = free_port();
        let tls_port = secured.as_ref().map(|_| free_port());
        let security = match &secured {
            None => "allow_anonymous true\n".to_owned(),
            Some(s) => format!(
                "allow_anonymous false\npassword_file {}\nacl_file {}\n\
                 listener {} 127.0.0.1\ncertfile {}\nkeyfile {}\n",
                s.password_file.display(),
                s.acl_file.display(),
                tls_port.unwrap(),
                s.cert.display(),
                s.key.display(),
            ),
        };
        let config = dir.join("mosquitto.conf");
        // `user root` only matters when started as root (as in CI): Mosquitto would otherwise
        // switch to its own user and could not write the test's persistence directory.
        // Unlimited queues: a persistent session keeps everything its worker has not acked.
        std::fs::write(
            &config,
            format!(
                "listener {port} 127.0.0.1\n{security}user root\n\
                 persistence true\npersistence_location {}/\n\
                 max_queued_messages 0\nmax_queued_bytes 0\n\
                 max_inflight_messages {MOSQUITTO_INFLIGHT}\n\
                 log_dest file {}/mosquitto.log\nlog_type all\n",
                dir.display(),
                dir.display()
            ),
        )
        .unwrap();
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("TEST_MOSQUITTO={binary} cannot be started: {e}"));
        wait_for_port("mosquitto to listen", port).await;
        if let Some(tls_port) = tls_port {
            wait_for_port("mosquitto to listen over TLS", tls_port).await;
        }
        Self {
            child,
            port,
            tls_port,
            log: dir.join("mosquitto.log"),
        }
    }

    /// How many lines of Mosquitto's log (`log_type all`) contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains(needle))
            .count()
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `roomer` process with its log in `log`; killed (SIGKILL) on drop.
pub struct RoomerProcess {
    pub child: Child,
}

impl RoomerProcess {
    pub fn spawn(args: &[&str], database_url: &str, log: &Path) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(ROOMER)
            .args(args)
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", "info,rumqttd=off")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Self { child }
    }

    /// `roomer ingest` against an external broker, with small batches so that a kill lands
    /// between many commits, and any `extra` flags.
    pub fn ingest(
        mqtt_url: &str,
        client_id: &str,
        shared_group: Option<&str>,
        database_url: &str,
        log: &Path,
        extra: &[&str],
    ) -> Self {
        let mut args = vec![
            "ingest",
            "--mqtt-url",
            mqtt_url,
            "--client-id",
            client_id,
            "--batch-size",
            "20",
            "--batch-wait",
            "5ms",
        ];
        if let Some(group) = shared_group {
            args.extend(["--shared-group", group]);
        }
        args.extend(extra);
        Self::spawn(&args, database_url, log)
    }

    /// SIGKILL: no drain, no clean disconnect — a crash.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for RoomerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
