//! Who may connect to the embedded broker, and what each client may publish and read.
//!
//! rumqttd 0.20 has no topic ACLs, so every rule is enforced in front of it, where each
//! packet passes anyway ([`crate::front`]): a CONNECT is checked before the router sees it,
//! and a PUBLISH or SUBSCRIBE outside what its client may is stopped before it reaches the
//! router. Three kinds of client:
//! - **Roomer's own components** log in as [`SERVICE_USER`] with the service secret: they
//!   may do anything. Client ids starting with [`RESERVED_CLIENT_PREFIX`] are theirs alone,
//!   so nobody else can take over an ingest worker's session (or its place in acknowledging
//!   after store).
//! - **A DPU** logs in with its id as username and the secret issued for it. It publishes
//!   and subscribes only under `dpus/{its id}/`, and its client id is its id (or empty).
//! - **Anyone**, when DPU authentication is off: every topic except Roomer's own
//!   (`spaces/…`, where the counts are published), if a service secret is set.
//!
//! Refusals are answered as MQTT says (CONNACK 5 "not authorized", whatever was wrong, as
//! Mosquitto answers; SUBACK 0x80), logged with the reason and counted in
//! [`meters`](crate::meters); a denied PUBLISH closes its connection without an
//! acknowledgement, so a misconfigured DPU keeps the message rather than losing it.

use async_trait::async_trait;
use rand::RngCore;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tokio::sync::broadcast;

/// The username of Roomer's own components.
pub const SERVICE_USER: &str = "roomer";
/// Client ids that only Roomer's own components may use.
pub const RESERVED_CLIENT_PREFIX: &str = "roomer-";
/// Roomer's own topics: only its components publish here.
const ROOMER_TOPICS: &str = roomer_occupancy::topics::SPACE_PREFIX;
/// Revocations kept for connections that have not looked yet.
const REVOCATIONS_BUFFER: usize = 1024;

/// Whether DPUs must log in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// Every client logs in: DPUs with their secret, Roomer's components as [`SERVICE_USER`].
    Required,
    /// Anyone may connect without a login (on a trusted network).
    Off,
}

/// Checks a DPU's secret (Roomer's DPU registry, in storage).
#[async_trait]
pub trait DpuSecrets: Send + Sync + 'static {
    /// Whether `secret` is the current secret of DPU `dpu`; `Err` when that cannot be told
    /// now (the database is unreachable), which refuses the client as "server unavailable".
    async fn check(&self, dpu: &str, secret: &str) -> Result<bool, String>;
}

/// What the broker admits.
#[derive(Clone)]
pub struct Access {
    pub mode: AuthMode,
    /// The [`SERVICE_USER`] account's secret. Set, it reserves Roomer's topics and client ids
    /// to that account; unset (only with [`AuthMode::Off`]), the broker is open to all, and
    /// the account has a random secret only the broker's own health probe knows.
    pub service_secret: Option<String>,
    /// Where DPU secrets are checked; without it no DPU can log in.
    pub dpu_secrets: Option<Arc<dyn DpuSecrets>>,
}

impl Access {
    /// No logins and no reserved topics: the broker as it is without security settings.
    pub fn open() -> Self {
        Self {
            mode: AuthMode::Off,
            service_secret: None,
            dpu_secrets: None,
        }
    }
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("mode", &self.mode)
            .field("service_secret", &self.service_secret.as_ref().map(|_| "…"))
            .field("dpu_secrets", &self.dpu_secrets.is_some())
            .finish()
    }
}

/// Ends DPUs' connections when their secrets change: a handle for whoever watches the DPU
/// registry (see [`EmbeddedBroker::dpu_sessions`](crate::EmbeddedBroker::dpu_sessions)).
#[derive(Clone)]
pub struct DpuSessions(pub(crate) Arc<Gatekeeper>);

impl DpuSessions {
    /// Ends every connection DPU `dpu` has open; it may connect again with a current secret.
    pub fn end(&self, dpu: &str) {
        self.0.revoke(dpu);
    }
}

/// Who a connection is, once its CONNECT passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Identity {
    Service,
    Dpu(String),
    Anonymous,
}

/// Why a CONNECT is refused by the access rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Denial {
    /// No login, or a wrong one.
    BadLogin,
    /// A login that may not use this client id or last-will topic.
    NotAuthorized,
    /// DPU secrets cannot be checked now.
    Unavailable,
}

/// The access rules of one broker, shared by its listeners across restarts.
pub(crate) struct Gatekeeper {
    mode: AuthMode,
    reserved: bool,
    service_secret: String,
    dpu_secrets: Option<Arc<dyn DpuSecrets>>,
    revoked: broadcast::Sender<String>,
}

impl Gatekeeper {
    pub(crate) fn new(access: Access) -> Self {
        let reserved = access.service_secret.is_some();
        let service_secret = access.service_secret.unwrap_or_else(random_secret);
        Self {
            mode: access.mode,
            reserved,
            service_secret,
            dpu_secrets: access.dpu_secrets,
            revoked: broadcast::channel(REVOCATIONS_BUFFER).0,
        }
    }

    /// What the broker's own health probe logs in with.
    pub(crate) fn probe_login(&self) -> (&str, &str) {
        (SERVICE_USER, &self.service_secret)
    }

    /// Who a CONNECT with this client id, login and last-will topic is, or why it is refused.
    pub(crate) async fn admit(
        &self,
        client_id: &str,
        login: Option<(&str, &str)>,
        will_topic: Option<&[u8]>,
    ) -> Result<Identity, Denial> {
        let identity = match login {
            Some((SERVICE_USER, secret)) => {
                if !bool::from(secret.as_bytes().ct_eq(self.service_secret.as_bytes())) {
                    return Err(Denial::BadLogin);
                }
                return Ok(Identity::Service);
            }
            None if self.mode == AuthMode::Off => Identity::Anonymous,
            // With authentication off, a DPU's login is not needed and not checked.
            Some(_) if self.mode == AuthMode::Off => Identity::Anonymous,
            None => return Err(Denial::BadLogin),
            Some((dpu, secret)) => {
                let Some(secrets) = &self.dpu_secrets else {
                    return Err(Denial::BadLogin);
                };
                match secrets.check(dpu, secret).await {
                    Ok(true) => Identity::Dpu(dpu.to_owned()),
                    Ok(false) => return Err(Denial::BadLogin),
                    Err(_) => return Err(Denial::Unavailable),
                }
            }
        };
        let own_id = match &identity {
            Identity::Dpu(dpu) => client_id.is_empty() || client_id == dpu,
            _ => !(self.reserved && client_id.starts_with(RESERVED_CLIENT_PREFIX)),
        };
        let own_will = will_topic.is_none_or(|topic| self.may_publish(&identity, topic));
        if own_id && own_will {
            Ok(identity)
        } else {
            Err(Denial::NotAuthorized)
        }
    }

    /// Whether `identity` may publish to `topic`.
    pub(crate) fn may_publish(&self, identity: &Identity, topic: &[u8]) -> bool {
        match identity {
            Identity::Service => true,
            Identity::Dpu(dpu) => under_own_prefix(dpu, topic),
            Identity::Anonymous => !(self.reserved && topic.starts_with(ROOMER_TOPICS.as_bytes())),
        }
    }

    /// Whether `identity` may subscribe to `filter`: a DPU only to filters that match
    /// nothing outside `dpus/{its id}/`.
    pub(crate) fn may_subscribe(&self, identity: &Identity, filter: &str) -> bool {
        match identity {
            Identity::Service | Identity::Anonymous => true,
            Identity::Dpu(dpu) => under_own_prefix(dpu, filter.as_bytes()),
        }
    }

    /// Whether `identity` may act for Roomer (as an ingest worker acknowledging stored
    /// messages): its own components, or anyone when nothing is reserved.
    pub(crate) fn trusted(&self, identity: &Identity) -> bool {
        *identity == Identity::Service || !self.reserved
    }

    /// Ends the connections of `dpu` (its secret was replaced or withdrawn).
    pub(crate) fn revoke(&self, dpu: &str) {
        // No receiver: no connection is open.
        let _ = self.revoked.send(dpu.to_owned());
    }

    /// Revocations from now on, for one connection to watch.
    pub(crate) fn revocations(&self) -> broadcast::Receiver<String> {
        self.revoked.subscribe()
    }
}

/// Whether `topic` lies under `dpus/{dpu}/` (a filter's wildcards are plain bytes here, so
/// `dpus/+/…` does not).
fn under_own_prefix(dpu: &str, topic: &[u8]) -> bool {
    topic
        .strip_prefix(roomer_occupancy::topics::DPU_PREFIX.as_bytes())
        .and_then(|rest| rest.strip_prefix(dpu.as_bytes()))
        .is_some_and(|rest| rest.starts_with(b"/"))
}

fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct OneDpu;

    #[async_trait]
    impl DpuSecrets for OneDpu {
        async fn check(&self, dpu: &str, secret: &str) -> Result<bool, String> {
            match dpu {
                "down" => Err("database unreachable".into()),
                _ => Ok(dpu == "283" && secret == "s3cret"),
            }
        }
    }

    fn required() -> Gatekeeper {
        Gatekeeper::new(Access {
            mode: AuthMode::Required,
            service_secret: Some("service".into()),
            dpu_secrets: Some(Arc::new(OneDpu)),
        })
    }

    #[tokio::test]
    async fn logins_decide_who_a_client_is() {
        let gate = required();
        let dpu = Some(("283", "s3cret"));
        assert_eq!(
            gate.admit("283", dpu, None).await,
            Ok(Identity::Dpu("283".into()))
        );
        assert_eq!(
            gate.admit("", dpu, None).await,
            Ok(Identity::Dpu("283".into()))
        );
        let service = Some((SERVICE_USER, "service"));
        assert_eq!(
            gate.admit("roomer-ingest", service, None).await,
            Ok(Identity::Service)
        );
        let refused = [
            ("283", None, Denial::BadLogin),
            ("283", Some(("283", "guess")), Denial::BadLogin),
            ("423", Some(("423", "s3cret")), Denial::BadLogin),
            ("x", Some((SERVICE_USER, "guess")), Denial::BadLogin),
            ("down", Some(("down", "s3cret")), Denial::Unavailable),
            // A DPU may not take another's client id, nor a component's.
            ("423", dpu, Denial::NotAuthorized),
            ("roomer-ingest", dpu, Denial::NotAuthorized),
        ];
        for (client_id, login, denial) in refused {
            assert_eq!(gate.admit(client_id, login, None).await, Err(denial));
        }
        // Nor leave a last will on a topic it may not publish to.
        let will = Some(&b"spaces/1/count"[..]);
        assert_eq!(
            gate.admit("283", dpu, will).await,
            Err(Denial::NotAuthorized)
        );
        let own_will = Some(&b"dpus/283/status"[..]);
        assert!(gate.admit("283", dpu, own_will).await.is_ok());
    }

    #[tokio::test]
    async fn with_authentication_off_anyone_connects_but_roomers_own_stay_reserved() {
        let gate = Gatekeeper::new(Access {
            mode: AuthMode::Off,
            ..Access {
                service_secret: Some("service".into()),
                ..Access::open()
            }
        });
        assert_eq!(gate.admit("x", None, None).await, Ok(Identity::Anonymous));
        assert_eq!(
            gate.admit("x", Some(("283", "anything")), None).await,
            Ok(Identity::Anonymous)
        );
        assert_eq!(
            gate.admit("x", Some((SERVICE_USER, "guess")), None).await,
            Err(Denial::BadLogin)
        );
        assert_eq!(
            gate.admit("roomer-ingest", None, None).await,
            Err(Denial::NotAuthorized)
        );
        assert!(!gate.may_publish(&Identity::Anonymous, b"spaces/1/count"));
        assert!(gate.may_publish(&Identity::Anonymous, b"dpus/283/crossings"));
        // Without a service secret nothing is reserved.
        let open = Gatekeeper::new(Access::open());
        assert!(open.admit("roomer-ingest", None, None).await.is_ok());
        assert!(open.may_publish(&Identity::Anonymous, b"spaces/1/count"));
    }

    #[test]
    fn a_dpu_publishes_and_reads_only_under_its_own_topics() {
        let gate = required();
        let dpu = Identity::Dpu("283".into());
        assert!(gate.may_publish(&dpu, b"dpus/283/crossings"));
        assert!(gate.may_publish(&dpu, b"dpus/283/status"));
        for topic in [
            &b"dpus/423/crossings"[..],
            b"dpus/2830/crossings",
            b"dpus/283",
            b"spaces/1/count",
            b"other",
        ] {
            assert!(!gate.may_publish(&dpu, topic), "{topic:?}");
        }
        assert!(gate.may_subscribe(&dpu, "dpus/283/commands"));
        assert!(gate.may_subscribe(&dpu, "dpus/283/+"));
        assert!(gate.may_subscribe(&dpu, "dpus/283/#"));
        for filter in [
            "#",
            "dpus/#",
            "dpus/+/crossings",
            "dpus/423/#",
            "dpus/283",
            "spaces/+/count",
            "$share/g/dpus/283/x",
        ] {
            assert!(!gate.may_subscribe(&dpu, filter), "{filter}");
        }
        assert!(gate.may_subscribe(&Identity::Service, "#"));
        assert!(gate.may_publish(&Identity::Service, b"spaces/1/count"));
    }
}
