//! Kubeconfig issuance: a fresh client certificate signed by the
//! cluster's CA, in a kubeconfig document, recorded in the audit log.
//!
//! The private key exists only in the answer: it is generated here and
//! never stored or logged. The audit record is written in the same
//! transaction that reads the CA key, so no credential leaves the service
//! unrecorded.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hybrid_api::kubeconfig::{
    ADMIN_TTL_SECONDS, AuditEntry, DEFAULT_USER_TTL_SECONDS, Kubeconfig, KubeconfigKind,
    KubeconfigRequest, MAX_USER_TTL_SECONDS, MIN_USER_TTL_SECONDS,
};
use hybrid_api::{ProvisioningState, codes, operation_kinds};
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use super::ClusterRecord;
use super::certs::{self, ClientIdentity};
use crate::objects::record::tx as rec;
use crate::objects::{Error, Refusal};
use crate::security::audit;
use crate::store::{StoreError, Tx};

/// Kubernetes user of an `admin` credential (with group `system:masters`).
const ADMIN_USER: &str = "hybrid-admin";
const MASTERS_GROUP: &str = "system:masters";

fn invalid(target: &str, message: String) -> Refusal {
    Refusal::invalid_field(target, message)
}

/// The credential's lifetime in seconds, or why the request is wrong.
fn lifetime(req: &KubeconfigRequest) -> Result<u64, Refusal> {
    match (req.kind, req.ttl_seconds) {
        (KubeconfigKind::Admin, None) => Ok(ADMIN_TTL_SECONDS),
        (KubeconfigKind::Admin, Some(ttl)) => Err(invalid(
            "ttl_seconds",
            format!(
                "ttl_seconds is {ttl}, but it applies only to kind \"user\": an admin credential \
                 always lives {ADMIN_TTL_SECONDS} s (one year); leave ttl_seconds out"
            ),
        )),
        (KubeconfigKind::User, None) => Ok(DEFAULT_USER_TTL_SECONDS),
        (KubeconfigKind::User, Some(ttl))
            if (MIN_USER_TTL_SECONDS..=MAX_USER_TTL_SECONDS).contains(&ttl) =>
        {
            Ok(ttl)
        }
        (KubeconfigKind::User, Some(ttl)) => Err(invalid(
            "ttl_seconds",
            format!(
                "ttl_seconds is {ttl}; it must be from {MIN_USER_TTL_SECONDS} to \
                 {MAX_USER_TTL_SECONDS} seconds (5 minutes to 24 hours)"
            ),
        )),
    }
}

/// Refuses a cluster whose API server is not there to talk to.
fn check_ready(tx: &dyn Tx, c: &ClusterRecord) -> Result<(), Error> {
    let state = c.provisioning_state;
    if state == ProvisioningState::Deleting {
        return Err(Refusal::conflict(
            codes::CONFLICT,
            format!(
                "cluster {} is being deleted (provisioning_state Deleting); no kubeconfig is \
                 issued for it",
                c.name
            ),
        )
        .into());
    }
    let last_op = match c.current_operation.as_deref() {
        Some(id) => tx.operation(id)?,
        None => None,
    };
    // A failed or canceled create leaves a cluster that never came up; a
    // failed update leaves one that runs and may well be needed to debug.
    let create_failed = matches!(
        state,
        ProvisioningState::Failed | ProvisioningState::Canceled
    ) && last_op.is_some_and(|op| op.kind == operation_kinds::CLUSTER_CREATE);
    let creating = matches!(
        state,
        ProvisioningState::Accepted | ProvisioningState::Pending | ProvisioningState::Provisioning
    );
    if create_failed {
        return Err(Refusal::conflict(
            codes::CONFLICT,
            format!(
                "cluster {} was never created: its creation failed (provisioning_state {}); \
                 apply it again, then ask for a kubeconfig",
                c.name,
                state.as_str()
            ),
        )
        .into());
    }
    if creating || c.internal.ca_certificate.is_none() {
        return Err(Refusal::conflict(
            codes::CONFLICT,
            format!(
                "cluster {} is still being created (provisioning_state {}); a kubeconfig can be \
                 issued once its creation has succeeded",
                c.name,
                state.as_str()
            ),
        )
        .into());
    }
    Ok(())
}

/// A kubeconfig document (YAML). Every value is written as a double-quoted
/// scalar in JSON syntax, which YAML reads the same way, so no value can
/// break the document whatever characters it holds.
fn kubeconfig_yaml(
    cluster: &str,
    user: &str,
    server: &str,
    ca: &str,
    cert: &str,
    key: &str,
) -> String {
    let q = |s: &str| serde_json::Value::from(s).to_string();
    let b64 = |s: &str| q(&BASE64.encode(s));
    let (cluster, user) = (q(cluster), q(user));
    let lines = [
        "apiVersion: v1".to_string(),
        "kind: Config".to_string(),
        "clusters:".to_string(),
        format!("- name: {cluster}"),
        "  cluster:".to_string(),
        format!("    server: {}", q(server)),
        format!("    certificate-authority-data: {}", b64(ca)),
        "users:".to_string(),
        format!("- name: {user}"),
        "  user:".to_string(),
        format!("    client-certificate-data: {}", b64(cert)),
        format!("    client-key-data: {}", b64(key)),
        "contexts:".to_string(),
        format!("- name: {cluster}"),
        "  context:".to_string(),
        format!("    cluster: {cluster}"),
        format!("    user: {user}"),
        format!("current-context: {cluster}"),
        "preferences: {}".to_string(),
    ];
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// Issues a kubeconfig of cluster `name` for `actor` (who is recorded in
/// the audit log with it, in this transaction).
pub fn issue(
    tx: &mut dyn Tx,
    name: &str,
    req: &KubeconfigRequest,
    actor: &str,
) -> Result<(Kubeconfig, AuditEntry), Error> {
    let ttl = lifetime(req)?;
    let serial = certs::new_serial();
    let username = match req.kind {
        KubeconfigKind::Admin => ADMIN_USER.to_string(),
        // Unique per credential, so the API server's own audit log names
        // which credential was used.
        KubeconfigKind::User => format!("user-{}", &hex::encode(serial)[..12]),
    };
    let id = hybrid_api::cluster_id(name);
    let Some(c): Option<ClusterRecord> = rec::get(tx, &id)? else {
        return Err(Refusal::not_found(format!("cluster {name} not found")).into());
    };
    check_ready(tx, &c)?;
    let corrupt = |what: &str| StoreError::Corrupt(format!("cluster {id}: {what}"));
    let ca_cert = c
        .internal
        .ca_certificate
        .clone()
        .ok_or_else(|| corrupt("no CA certificate"))?;
    let vip = c
        .internal
        .vip
        .clone()
        .ok_or_else(|| corrupt("no API-server VIP"))?;
    let ca_key = tx
        .secret(&id, "ca_key")?
        .ok_or_else(|| corrupt("a CA certificate but no CA key"))?;
    let issued = certs::client_cert(
        &ca_cert,
        &ca_key,
        &ClientIdentity {
            username: &username,
            group: (req.kind == KubeconfigKind::Admin).then_some(MASTERS_GROUP),
            lifetime: time::Duration::seconds(i64::try_from(ttl).unwrap_or(i64::MAX)),
        },
        serial,
    )
    .map_err(|e| corrupt(&format!("issuing a client certificate: {e}")))?;
    let expires_at = issued
        .not_after
        .format(&Rfc3339)
        .map_err(|e| corrupt(&format!("certificate expiry: {e}")))?;
    let host = format!("https://{vip}:6443");
    let record = audit::entry(
        actor,
        audit::KUBECONFIG_ISSUE,
        &id,
        json!({
            "kind": req.kind.as_str(),
            "username": username,
            "serial": issued.serial,
            "expires_at": expires_at,
        }),
    );
    tx.insert_audit(&record)?;
    let user_entry = format!("{}-{username}", c.name);
    let kubeconfig = Kubeconfig {
        kubeconfig: kubeconfig_yaml(
            &c.name,
            &user_entry,
            &host,
            &ca_cert,
            &issued.pem.cert,
            &issued.pem.key,
        ),
        cluster_id: id,
        kind: req.kind,
        host,
        cluster_ca_certificate: ca_cert,
        client_certificate: issued.pem.cert,
        client_key: issued.pem.key,
        username,
        serial: issued.serial,
        expires_at,
    };
    Ok((kubeconfig, record))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(kind: KubeconfigKind, ttl: Option<u64>) -> KubeconfigRequest {
        KubeconfigRequest {
            kind,
            ttl_seconds: ttl,
        }
    }

    #[test]
    fn lifetimes_follow_the_kind_and_the_range() {
        assert_eq!(
            lifetime(&req(KubeconfigKind::Admin, None)),
            Ok(ADMIN_TTL_SECONDS)
        );
        assert_eq!(lifetime(&req(KubeconfigKind::User, None)), Ok(3600));
        assert_eq!(lifetime(&req(KubeconfigKind::User, Some(300))), Ok(300));
        assert_eq!(
            lifetime(&req(KubeconfigKind::User, Some(86_400))),
            Ok(86_400)
        );
        for (r, needle) in [
            (
                req(KubeconfigKind::User, Some(299)),
                "ttl_seconds is 299; it must be from 300 to 86400",
            ),
            (
                req(KubeconfigKind::User, Some(86_401)),
                "ttl_seconds is 86401",
            ),
            (
                req(KubeconfigKind::Admin, Some(600)),
                "applies only to kind \"user\"",
            ),
        ] {
            let f = lifetime(&r).unwrap_err();
            assert_eq!(f.reason, crate::objects::Reason::Invalid);
            assert_eq!(f.error.code, codes::INVALID_FIELD);
            assert_eq!(f.error.target.as_deref(), Some("ttl_seconds"));
            assert!(f.error.message.contains(needle), "{}", f.error.message);
        }
    }

    #[test]
    fn yaml_quotes_every_value() {
        let y = kubeconfig_yaml(
            "c1",
            "c1-user-1",
            "https://10.0.0.200:6443",
            "CA",
            "CERT",
            "KEY",
        );
        assert!(
            y.contains("- name: \"c1\"\n  cluster:\n    server: \"https://10.0.0.200:6443\"\n"),
            "{y}"
        );
        assert!(
            y.contains(&format!("client-key-data: \"{}\"", BASE64.encode("KEY"))),
            "{y}"
        );
        assert!(y.contains("current-context: \"c1\"\n"), "{y}");
        assert!(y.contains("    user: \"c1-user-1\"\n"), "{y}");
    }
}
