//! Certificates that never lapse: what the service knows about a cluster's
//! certificates ([`CertificateState`], kept in the cluster record), the
//! background renewer that queues a `cluster.rotate_certificates`
//! operation for every cluster whose certificates are due (at start-up
//! too, which covers certificates that expired while the service or the
//! cluster was down), `POST /v1/clusters/{name}/rotate-certificates`
//! ([`request`]), and the operation's work ([`CertificateLifecycle`]).
//!
//! Replica-safe: whether a rotation is due, and queueing it, happen in one
//! store transaction (writes are serialised, on PostgreSQL by an advisory
//! lock), and the queued rotation is remembered in the record
//! ([`CertificateState::pending`]), so however many replicas look, a
//! cluster gets one rotation at a time. The rotation itself is one
//! transaction too: new certificates, keys (sealed secrets), record, audit
//! record and the operation's end commit together or not at all.
//!
//! How rotated certificates reach the VMs: the sim datacenter has nothing
//! to deliver (it applies at once). A VM of the agents driver receives the
//! CA certificate once, in the bootstrap document of its creation; nothing
//! delivers a renewed certificate to a running VM today, so it reaches the
//! VMs created afterwards (scale-up, upgrade, repair). The guide says so.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hybrid_api::certificates::{
    ClusterCertificates, RENEW_FRACTION, RENEW_MIN_DAYS, RotateCertificatesAccepted,
};
use hybrid_api::{ApiError, Operation, ProvisioningState, codes, operation_kinds};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::certs;
use super::{ClusterInternal, ClusterRecord};
use crate::clock::{self, Clock};
use crate::objects::outcome::{new_operation, queue};
use crate::objects::record::tx as rec;
use crate::objects::{Error, Refusal};
use crate::operations::{Context, Ended, Lifecycle, Operations, log_failure};
use crate::security::audit;
use crate::store::{Store, StoreError, Tx};

/// How often the renewer looks at every cluster by default.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(3600);
/// … and with a test clock, so a test that moves time on sees the renewal
/// within a second.
pub const TEST_CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// Secret names of a cluster's PKI (sealed in the store).
pub const CA_KEY: &str = "ca_key";
pub const APISERVER_KEY: &str = "apiserver_key";
pub const APISERVER_CERT: &str = "apiserver_cert";

/// Audit action of a renewal or rotation.
pub const AUDIT_ACTION: &str = operation_kinds::CLUSTER_ROTATE_CERTIFICATES;
/// The actor of renewals the service starts by itself.
pub const SERVICE_ACTOR: &str = "hybrid-host";

/// What the service knows about a cluster's certificates (times in Unix
/// seconds). Never a key: those are sealed secrets.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct CertificateState {
    pub ca_not_before: i64,
    pub ca_not_after: i64,
    pub apiserver_not_before: i64,
    pub apiserver_not_after: i64,
    #[serde(default)]
    pub last_rotated: Option<i64>,
    #[serde(default)]
    pub ca_rotated_at: Option<i64>,
    /// The rotation queued for the cluster, if any.
    #[serde(default)]
    pub pending: Option<PendingRotation>,
}

/// A queued rotation: its operation and what it is to do.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PendingRotation {
    pub operation: String,
    pub rotate_ca: bool,
    /// Why: `requested`, `expiring` or `expired`.
    pub reason: String,
    /// Who asked (the audit record's actor).
    pub actor: String,
}

/// When a certificate valid from `not_before` to `not_after` is due for
/// renewal: once less than [`RENEW_FRACTION`] of its lifetime or less
/// than [`RENEW_MIN_DAYS`] days is left, whichever comes first.
pub fn renew_after(not_before: i64, not_after: i64) -> i64 {
    let lifetime = (not_after - not_before).max(0);
    // Truncation is fine: a second either way does not matter.
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let fraction = (lifetime as f64 * RENEW_FRACTION) as i64;
    not_after - fraction.max(RENEW_MIN_DAYS * 86_400)
}

fn unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

fn rfc3339(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .map(clock::rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

impl CertificateState {
    /// The state of freshly issued certificates (PEMs), never rotated.
    pub fn issued(ca_pem: &str, apiserver_pem: &str) -> Result<Self, certs::ValidityError> {
        let (ca_nb, ca_na) = certs::validity(ca_pem)?;
        let (srv_nb, srv_na) = certs::validity(apiserver_pem)?;
        Ok(CertificateState {
            ca_not_before: unix(ca_nb),
            ca_not_after: unix(ca_na),
            apiserver_not_before: unix(srv_nb),
            apiserver_not_after: unix(srv_na),
            last_rotated: None,
            ca_rotated_at: None,
            pending: None,
        })
    }

    fn ca_due(&self, now: i64) -> bool {
        now >= renew_after(self.ca_not_before, self.ca_not_after)
    }

    fn apiserver_due(&self, now: i64) -> bool {
        now >= renew_after(self.apiserver_not_before, self.apiserver_not_after)
    }

    /// Why the certificates need renewing at `now`, if they do.
    pub fn due(&self, now: i64) -> Option<&'static str> {
        if now >= self.ca_not_after.min(self.apiserver_not_after) {
            Some("expired")
        } else if self.ca_due(now) || self.apiserver_due(now) {
            Some("expiring")
        } else {
            None
        }
    }

    /// `status.certificates`.
    pub fn view(&self) -> ClusterCertificates {
        ClusterCertificates {
            ca_not_after: rfc3339(self.ca_not_after),
            apiserver_not_after: rfc3339(self.apiserver_not_after),
            not_after: rfc3339(self.ca_not_after.min(self.apiserver_not_after)),
            renew_after: rfc3339(renew_after(self.ca_not_before, self.ca_not_after).min(
                renew_after(self.apiserver_not_before, self.apiserver_not_after),
            )),
            last_rotated: self.last_rotated.map(rfc3339),
            ca_rotated_at: self.ca_rotated_at.map(rfc3339),
            rotation_operation: self.pending.as_ref().map(|p| p.operation.clone()),
        }
    }
}

fn corrupt(id: &str, what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("cluster {id}: {what}"))
}

/// The cluster's certificate state; worked out from the stored
/// certificates for a cluster created before the service kept it.
fn state_of(tx: &dyn Tx, c: &ClusterRecord) -> Result<Option<CertificateState>, StoreError> {
    if let Some(s) = &c.internal.certificates {
        return Ok(Some(s.clone()));
    }
    let Some(ca) = &c.internal.ca_certificate else {
        return Ok(None);
    };
    let Some(server) = tx.secret(&c.id, APISERVER_CERT)? else {
        return Err(corrupt(
            &c.id,
            "a CA certificate but no API-server certificate",
        ));
    };
    CertificateState::issued(ca, &server)
        .map(Some)
        .map_err(|e| corrupt(&c.id, e))
}

/// Queues a rotation of `c` (its record is updated, not yet stored).
fn queue_rotation(
    tx: &mut dyn Tx,
    c: &mut ClusterRecord,
    state: &mut CertificateState,
    rotate_ca: bool,
    reason: &str,
    actor: &str,
) -> Result<Operation, StoreError> {
    let op = new_operation(operation_kinds::CLUSTER_ROTATE_CERTIFICATES, &c.id);
    tx.insert_operation(&op, &c.id, &queue::cluster(&c.name))?;
    state.pending = Some(PendingRotation {
        operation: op.id.clone(),
        rotate_ca,
        reason: reason.to_string(),
        actor: actor.to_string(),
    });
    c.internal.certificates = Some(state.clone());
    Ok(op)
}

/// The queued rotation of `state`, while its operation still runs.
fn running_rotation(
    tx: &dyn Tx,
    state: &CertificateState,
) -> Result<Option<Operation>, StoreError> {
    let Some(p) = &state.pending else {
        return Ok(None);
    };
    Ok(tx
        .operation(&p.operation)?
        .filter(|op| !op.status.is_terminal()))
}

/// `POST /v1/clusters/{name}/rotate-certificates`: queues a rotation (or
/// joins the one already queued, making it replace the CA too if asked).
pub fn request(
    tx: &mut dyn Tx,
    name: &str,
    rotate_ca: bool,
    actor: &str,
) -> Result<RotateCertificatesAccepted, Error> {
    let id = hybrid_api::cluster_id(name);
    let Some(mut c): Option<ClusterRecord> = rec::get(tx, &id)? else {
        return Err(Refusal::not_found(format!("cluster {name} not found")).into());
    };
    if c.provisioning_state == ProvisioningState::Deleting {
        return Err(Refusal::conflict(
            codes::CONFLICT,
            format!(
                "cluster {name} is being deleted (provisioning_state Deleting); its \
                 certificates are not rotated"
            ),
        )
        .into());
    }
    let Some(mut state) = state_of(tx, &c)? else {
        return Err(Refusal::conflict(
            codes::CONFLICT,
            format!(
                "cluster {name} has no certificates yet (provisioning_state {}): they are \
                 issued while it is created; rotate them once its creation has succeeded",
                c.provisioning_state.as_str()
            ),
        )
        .into());
    };
    let operation = match running_rotation(tx, &state)? {
        Some(op) => {
            if let Some(p) = state.pending.as_mut() {
                p.rotate_ca |= rotate_ca;
            }
            c.internal.certificates = Some(state.clone());
            op
        }
        None => queue_rotation(tx, &mut c, &mut state, rotate_ca, "requested", actor)?,
    };
    rec::put(tx, &c)?;
    let rotate_ca = state.pending.as_ref().is_some_and(|p| p.rotate_ca);
    let message = if rotate_ca {
        format!(
            "the CA of cluster {name} is replaced by one on a new key: every kubeconfig \
             issued before this rotation stops working once operation {} has succeeded; \
             issue them again (e.g. re-apply hybrid_kubeconfig)",
            operation.id
        )
    } else {
        format!(
            "the certificates of cluster {name} are renewed on the CA's key: kubeconfigs \
             issued so far keep working"
        )
    };
    Ok(RotateCertificatesAccepted {
        operation,
        rotate_ca,
        kubeconfigs_must_be_reissued: rotate_ca,
        message,
    })
}

/// Queues a renewal for every cluster whose certificates are due at `now`
/// and have none queued; returns how many it queued.
pub fn queue_due(tx: &mut dyn Tx, now: i64) -> Result<usize, StoreError> {
    let mut queued = 0;
    for mut c in rec::list::<hybrid_api::ClusterSpec, ClusterInternal>(tx, None)? {
        if c.provisioning_state == ProvisioningState::Deleting {
            continue;
        }
        let Some(mut state) = state_of(tx, &c)? else {
            continue;
        };
        if running_rotation(tx, &state)?.is_some() {
            continue;
        }
        match state.due(now) {
            Some(reason) => {
                let op = queue_rotation(tx, &mut c, &mut state, false, reason, SERVICE_ACTOR)?;
                tracing::info!(cluster = %c.name, operation = %op.id, reason, "queued a certificate renewal");
                queued += 1;
            }
            // Remember what was worked out, so views need no secret.
            None if c.internal.certificates.is_none() => {
                c.internal.certificates = Some(state);
            }
            None => continue,
        }
        rec::put(tx, &c)?;
    }
    Ok(queued)
}

/// One look at every cluster: queues what is due and wakes the worker.
pub async fn check(
    store: &Arc<dyn Store>,
    operations: &Operations,
    clock: &Clock,
) -> Result<usize, StoreError> {
    let now = clock.now_utc().unix_timestamp();
    let queued = store
        .write(false, move |tx| -> Result<_, StoreError> {
            queue_due(tx, now)
        })
        .await?;
    if queued > 0 {
        operations.wake();
    }
    Ok(queued)
}

/// The background renewer: looks at once (certificates that expired while
/// the service was down) and then every `interval`, until `shutdown`.
pub fn spawn_renewer(
    store: Arc<dyn Store>,
    operations: Arc<Operations>,
    clock: Clock,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = check(&store, &operations, &clock).await {
                // The next look retries.
                tracing::error!(error = %e, "cannot check the clusters' certificates");
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
    })
}

/// The lifecycle of `cluster.rotate_certificates` operations.
pub struct CertificateLifecycle {
    pub clock: Clock,
}

#[async_trait]
impl Lifecycle for CertificateLifecycle {
    fn kinds(&self) -> &'static [&'static str] {
        &[operation_kinds::CLUSTER_ROTATE_CERTIFICATES]
    }

    async fn execute(&self, ctx: &Context, op: &Operation) -> Ended {
        let now = self.clock.now_utc();
        let op2 = op.clone();
        let registry = ctx.registry.clone();
        let done = ctx
            .store
            .write(false, move |tx| -> Result<_, StoreError> {
                let outcome = rotate(tx, &op2, now)?;
                let error = outcome.as_ref().err().cloned();
                tx.finish_operation(&op2.id, error.as_ref())?;
                registry.completed(tx, &op2, error.is_none())?;
                Ok(outcome)
            })
            .await;
        match done {
            Ok(Ok(record)) => {
                audit::log(&record);
                Ended::Succeeded
            }
            Ok(Err(error)) => {
                log_failure(op, Some(&error));
                Ended::Failed
            }
            Err(e) => {
                tracing::error!(operation = %op.id, error = %e, "store failure while rotating certificates; will retry");
                Ended::Retry
            }
        }
    }
}

/// Renews or rotates the certificates of `op`'s cluster at `now`, in the
/// transaction that ends `op`; the audit record it wrote, or why it failed.
fn rotate(
    tx: &mut dyn Tx,
    op: &Operation,
    now: OffsetDateTime,
) -> Result<Result<hybrid_api::kubeconfig::AuditEntry, ApiError>, StoreError> {
    let fail = |m: String| Ok(Err(ApiError::new(codes::CONFLICT, m)));
    let Some(mut c): Option<ClusterRecord> = rec::get(tx, &op.target)? else {
        return fail(format!(
            "cluster {} no longer exists; there are no certificates to rotate",
            op.target
        ));
    };
    let Some(mut state) = state_of(tx, &c)? else {
        return fail(format!("cluster {} has no certificates yet", c.name));
    };
    let pending = state
        .pending
        .take()
        .filter(|p| p.operation == op.id)
        .unwrap_or_else(|| PendingRotation {
            operation: op.id.clone(),
            rotate_ca: false,
            reason: "requested".to_string(),
            actor: SERVICE_ACTOR.to_string(),
        });
    let ca_cert = c
        .internal
        .ca_certificate
        .clone()
        .ok_or_else(|| corrupt(&c.id, "no CA certificate"))?;
    let ca_key = tx
        .secret(&c.id, CA_KEY)?
        .ok_or_else(|| corrupt(&c.id, "a CA certificate but no CA key"))?;
    let vip = c.internal.vip.clone().unwrap_or_default();
    let pki = |e: rcgen::Error| corrupt(&c.id, format!("certificate generation: {e}"));
    let t = unix(now);
    // A new CA when asked; the same CA issued again on its key when it is
    // due itself (nothing it signed stops working); else the CA as it is.
    let (ca, ca_change) = if pending.rotate_ca {
        (
            certs::new_cluster_ca_at(&c.name, now).map_err(pki)?,
            "new_key",
        )
    } else if state.ca_due(t) {
        (
            certs::renew_cluster_ca_at(&c.name, &ca_key, now).map_err(pki)?,
            "renewed_on_same_key",
        )
    } else {
        (
            certs::Pem {
                cert: ca_cert,
                key: ca_key,
            },
            "unchanged",
        )
    };
    let server = certs::apiserver_cert_at(&ca, &c.name, &vip, now).map_err(pki)?;
    let mut fresh =
        CertificateState::issued(&ca.cert, &server.cert).map_err(|e| corrupt(&c.id, e))?;
    fresh.last_rotated = Some(t);
    fresh.ca_rotated_at = if pending.rotate_ca {
        Some(t)
    } else {
        state.ca_rotated_at
    };
    if pending.rotate_ca {
        tx.put_secret(&c.id, CA_KEY, &ca.key)?;
    }
    tx.put_secret(&c.id, APISERVER_KEY, &server.key)?;
    tx.put_secret(&c.id, APISERVER_CERT, &server.cert)?;
    c.internal.ca_certificate = Some(ca.cert);
    c.internal.certificates = Some(fresh.clone());
    rec::put(tx, &c)?;
    let record = audit::entry(
        &pending.actor,
        AUDIT_ACTION,
        &c.id,
        json!({
            "operation": op.id,
            "reason": pending.reason,
            "rotate_ca": pending.rotate_ca,
            "ca": ca_change,
            "kubeconfigs_must_be_reissued": pending.rotate_ca,
            "ca_not_after": rfc3339(fresh.ca_not_after),
            "apiserver_not_after": rfc3339(fresh.apiserver_not_after),
            "previous_not_after": rfc3339(state.ca_not_after.min(state.apiserver_not_after)),
        }),
    );
    tx.insert_audit(&record)?;
    Ok(Ok(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn renewal_starts_at_a_fifth_of_the_lifetime_or_thirty_days() {
        // One year: a fifth (73 days) is more than 30 days.
        assert_eq!(renew_after(0, 365 * DAY), 292 * DAY);
        // Ten years: two years before.
        assert_eq!(renew_after(0, 3650 * DAY), 2920 * DAY);
        // 60 days: 30 days beat a fifth (12 days).
        assert_eq!(renew_after(0, 60 * DAY), 30 * DAY);
    }

    #[test]
    fn due_says_why() {
        let s = CertificateState {
            ca_not_before: 0,
            ca_not_after: 3650 * DAY,
            apiserver_not_before: 0,
            apiserver_not_after: 365 * DAY,
            last_rotated: None,
            ca_rotated_at: None,
            pending: None,
        };
        assert_eq!(s.due(100 * DAY), None);
        assert_eq!(s.due(300 * DAY), Some("expiring"));
        assert_eq!(s.due(400 * DAY), Some("expired"));
        assert!(!s.ca_due(400 * DAY));
        assert!(s.ca_due(3000 * DAY));
        let v = s.view();
        assert_eq!(v.not_after, v.apiserver_not_after);
        assert_eq!(v.renew_after, rfc3339(292 * DAY));
        assert!(v.last_rotated.is_none() && v.rotation_operation.is_none());
    }
}
