//! Joined `hybrid-agent`s and their join tokens: the registry the `agents`
//! driver reads its hosts from.
//!
//! A join token is single-use and short-lived, stored only as its SHA-256;
//! joining consumes it, signs the agent's CSR with the service's CA and
//! records the agent with the fingerprint of the certificate it got — the
//! only certificate hybrid-host will accept from that host. Revoking an
//! agent keeps its record (so its name cannot silently come back with the
//! old certificate) and makes the driver stop talking to it.
//!
//! May depend on: [`crate::objects`], [`crate::store`],
//! [`crate::security`] (the agents' CA), [`crate::driver`] (it serves the
//! driver's [`crate::driver::agents::Registry`]) and [`crate::clock`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hybrid_api::agent::{Agent, JoinRequest, JoinResponse, JoinToken};
use hybrid_api::{ProvisioningState, codes};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::clock;
use crate::driver::agents::{RegisteredAgent, Registry};
use crate::objects::record::tx as rec;
use crate::objects::{Error, Kind, Reason, Record, Refusal};
use crate::security::agent_ca::{self, AgentCa};
use crate::security::tokens;
use crate::store::{ObjectKind, Store};

/// Default lifetime of a join token.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// The longest a join token may live.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Join tokens start with this, so a leaked one is recognisable.
const TOKEN_PREFIX: &str = "hyj_";

/// What is stored about a joined agent.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AgentSpec {
    pub endpoint: String,
    pub certificate_sha256: String,
}

impl Kind for AgentSpec {
    const KIND: ObjectKind = ObjectKind::Agent;
}

/// An agent's state over time.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentInternal {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

type AgentRecord = Record<AgentSpec, AgentInternal>;

/// An unused join token (the record's id carries its hash).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TokenSpec {
    pub expires_at: String,
}

impl Kind for TokenSpec {
    const KIND: ObjectKind = ObjectKind::AgentToken;
}

fn agent_id(name: &str) -> String {
    format!("/agents/{name}")
}

fn token_id(token: &str) -> String {
    tokens::hashed_id("/agent-tokens", token)
}

fn record<S, I>(id: String, name: String, spec: S, internal: I) -> Record<S, I> {
    let now = clock::now();
    Record {
        id,
        parent: None,
        name,
        spec,
        internal,
        etag: clock::new_etag(),
        provisioning_state: ProvisioningState::Succeeded,
        current_operation: None,
        created_at: now.clone(),
        updated_at: now,
    }
}

fn view(r: &AgentRecord) -> Agent {
    Agent {
        id: r.id.clone(),
        name: r.name.clone(),
        endpoint: r.spec.endpoint.clone(),
        certificate_sha256: r.spec.certificate_sha256.clone(),
        state: match r.internal.revoked_at {
            Some(_) => "revoked",
            None => "active",
        }
        .to_string(),
        joined_at: r.created_at.clone(),
    }
}

/// Mints a single-use join token that expires after `ttl`.
pub async fn mint_token(store: &Arc<dyn Store>, ttl: Duration) -> Result<JoinToken, Error> {
    if ttl.is_zero() || ttl > MAX_TOKEN_TTL {
        return Err(Refusal::invalid_field(
            "ttl_seconds",
            format!(
                "ttl_seconds {} is out of range: a join token lives 1 to {} seconds",
                ttl.as_secs(),
                MAX_TOKEN_TTL.as_secs()
            ),
        )
        .into());
    }
    let token = format!("{TOKEN_PREFIX}{}", clock::random_hex(24));
    let expires = OffsetDateTime::now_utc() + ttl;
    let expires_at = expires
        .format(&Rfc3339)
        .map_err(|e| Error::Internal(e.to_string()))?;
    let r = record(
        token_id(&token),
        "join-token".to_string(),
        TokenSpec {
            expires_at: expires_at.clone(),
        },
        crate::objects::NoInternal {},
    );
    store
        .write(false, move |tx| -> Result<_, Error> {
            rec::put(tx, &r)?;
            Ok(())
        })
        .await?;
    Ok(JoinToken { token, expires_at })
}

fn unauthenticated(message: impl Into<String>) -> Error {
    Refusal::new(Reason::Unauthenticated, codes::UNAUTHORIZED, message).into()
}

/// The host part of an `https://HOST:PORT` endpoint, or a refusal naming it.
fn endpoint_host(endpoint: &str) -> Result<String, Refusal> {
    let bad = || {
        Refusal::invalid_field(
            "endpoint",
            format!(
                "endpoint {endpoint:?} is not an https://HOST:PORT address where hybrid-host can reach the agent"
            ),
        )
    };
    let rest = endpoint.strip_prefix("https://").ok_or_else(bad)?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains('/') || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(bad());
    }
    Ok(host.to_string())
}

/// `POST /v1/agents/join`: consumes the join token (`bearer`), signs the
/// agent's CSR and records the agent, all in one transaction.
pub async fn join(
    store: &Arc<dyn Store>,
    ca: Arc<AgentCa>,
    bearer: Option<String>,
    req: JoinRequest,
) -> Result<JoinResponse, Error> {
    let Some(token) = bearer.filter(|t| t.starts_with(TOKEN_PREFIX)) else {
        return Err(unauthenticated(
            "joining needs a join token as the bearer token (hybrid-host agent-token create)",
        ));
    };
    if let Err(e) = hybrid_api::validate::dns_label("name", &req.name) {
        return Err(Refusal::invalid_field("name", e.message).into());
    }
    if req.name == "join" {
        return Err(Refusal::invalid_field(
            "name",
            "name \"join\" is reserved (POST /v1/agents/join is the join route); choose another host name",
        )
        .into());
    }
    for (field, value, max) in [
        (
            "endpoint",
            &req.endpoint,
            hybrid_api::limits::MAX_AGENT_ENDPOINT,
        ),
        ("csr_pem", &req.csr_pem, hybrid_api::limits::MAX_CSR_PEM),
    ] {
        if let Err(e) = hybrid_api::limits::check_len(field, value, max) {
            return Err(Refusal::invalid_field(field, e.message).into());
        }
    }
    let host = endpoint_host(&req.endpoint)?;
    store
        .write(false, move |tx| -> Result<_, Error> {
            let tid = token_id(&token);
            let Some(t) = rec::get::<TokenSpec, crate::objects::NoInternal>(tx, &tid)? else {
                return Err(unauthenticated(
                    "the join token is unknown or was already used; mint a new one with `hybrid-host agent-token create`",
                ));
            };
            // Single use: consumed whether or not the rest succeeds.
            tx.delete_object(ObjectKind::AgentToken, &tid)?;
            let expired = OffsetDateTime::parse(&t.spec.expires_at, &Rfc3339)
                .map_or(true, |at| at <= OffsetDateTime::now_utc());
            if expired {
                return Err(unauthenticated(format!(
                    "the join token expired at {}; mint a new one with `hybrid-host agent-token create`",
                    t.spec.expires_at
                )));
            }
            let id = agent_id(&req.name);
            if let Some(old) = rec::get::<AgentSpec, AgentInternal>(tx, &id)?
                && old.internal.revoked_at.is_none()
            {
                return Err(Refusal::conflict(
                    codes::CONFLICT,
                    format!(
                        "agent {} has already joined (at {}, from {}); revoke it first (POST /v1/agents/{}/revoke) to join a new one under that name",
                        req.name, old.created_at, old.spec.endpoint, req.name
                    ),
                )
                .target("name")
                .into());
            }
            let certificate_pem = ca.sign_agent(&req.name, &host, &req.csr_pem).map_err(|e| match e {
                agent_ca::AgentCaError::Csr(m) => Error::from(Refusal::invalid_field("csr_pem", m)),
                other => Error::Internal(other.to_string()),
            })?;
            let certificate_sha256 = agent_ca::fingerprint(&certificate_pem)
                .ok_or_else(|| Error::Internal("cannot read back the signed certificate".into()))?;
            rec::put(
                tx,
                &record(
                    id,
                    req.name.clone(),
                    AgentSpec {
                        endpoint: req.endpoint.clone(),
                        certificate_sha256,
                    },
                    AgentInternal::default(),
                ),
            )?;
            Ok(JoinResponse {
                certificate_pem,
                ca_pem: ca.ca_pem().to_string(),
            })
        })
        .await
}

/// Every agent that ever joined, by name.
pub async fn list(store: &Arc<dyn Store>) -> Result<Vec<Agent>, Error> {
    store
        .view(|tx| -> Result<_, Error> {
            Ok(rec::list::<AgentSpec, AgentInternal>(tx, None)?
                .iter()
                .map(view)
                .collect())
        })
        .await
}

/// One agent.
pub async fn get(store: &Arc<dyn Store>, name: &str) -> Result<Agent, Error> {
    let id = agent_id(name);
    let name = name.to_string();
    store
        .view(move |tx| -> Result<_, Error> {
            rec::get::<AgentSpec, AgentInternal>(tx, &id)?
                .map(|r| view(&r))
                .ok_or_else(|| Refusal::not_found(format!("agent {name} does not exist")).into())
        })
        .await
}

/// Revokes an agent: hybrid-host no longer trusts its certificate, its host
/// goes `Down`. Idempotent.
pub async fn revoke(store: &Arc<dyn Store>, name: &str) -> Result<Agent, Error> {
    let id = agent_id(name);
    let name = name.to_string();
    store
        .write(false, move |tx| -> Result<_, Error> {
            let Some(mut r) = rec::get::<AgentSpec, AgentInternal>(tx, &id)? else {
                return Err(Refusal::not_found(format!("agent {name} does not exist")).into());
            };
            if r.internal.revoked_at.is_none() {
                let now = clock::now();
                r.internal.revoked_at = Some(now.clone());
                r.updated_at = now;
                r.etag = clock::new_etag();
                rec::put(tx, &r)?;
                tracing::warn!(agent = %name, "agent revoked");
            }
            Ok(view(&r))
        })
        .await
}

/// The registry the agents driver reads, over the store (so every replica
/// sees the same agents).
pub struct StoreRegistry {
    pub store: Arc<dyn Store>,
}

#[async_trait]
impl Registry for StoreRegistry {
    async fn agents(&self) -> Result<Vec<RegisteredAgent>, String> {
        self.store
            .view(|tx| -> Result<_, Error> {
                Ok(rec::list::<AgentSpec, AgentInternal>(tx, None)?
                    .into_iter()
                    .map(|r| RegisteredAgent {
                        name: r.name,
                        endpoint: r.spec.endpoint,
                        certificate_sha256: r.spec.certificate_sha256,
                        revoked: r.internal.revoked_at.is_some(),
                    })
                    .collect())
            })
            .await
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_must_be_https_host_port() {
        assert_eq!(endpoint_host("https://10.0.0.1:9443").unwrap(), "10.0.0.1");
        assert_eq!(
            endpoint_host("https://h1.example:9443/").unwrap(),
            "h1.example"
        );
        assert_eq!(endpoint_host("https://[::1]:9443").unwrap(), "::1");
        for bad in [
            "http://a:1",
            "https://a",
            "https://a:0",
            "https://:1",
            "https://a/b:1",
        ] {
            let e = endpoint_host(bad).unwrap_err();
            assert_eq!(e.error.target.as_deref(), Some("endpoint"), "{bad}");
            assert!(e.error.message.contains(bad), "{bad}: {}", e.error.message);
        }
    }

    #[test]
    fn tokens_are_stored_by_hash_only() {
        let id = token_id("hyj_abc");
        assert!(id.starts_with("/agent-tokens/") && !id.contains("abc"));
        assert_eq!(id.len(), "/agent-tokens/".len() + 64);
    }
}
