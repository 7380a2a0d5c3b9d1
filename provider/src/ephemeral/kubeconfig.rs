//! `hybrid_kubeconfig` ephemeral resource (Terraform ≥ 1.10): a kubeconfig
//! with a fresh client certificate signed by the cluster's CA, issued by the
//! service on every open and never written to plan or state.
//!
//! There is nothing to renew or release: a certificate cannot be extended
//! (a longer-lived one would be a new credential) and the cluster has no
//! revocation list, so `renew_at` is never set and `close` only notes the
//! end. The private data is the cluster id and the serial, no secret.

use async_trait::async_trait;
use hybrid_api::cluster;
use hybrid_api::kubeconfig::{
    ADMIN_TTL_SECONDS, DEFAULT_USER_TTL_SECONDS, Kubeconfig, KubeconfigKind, KubeconfigRequest,
    MAX_USER_TTL_SECONDS, MIN_USER_TTL_SECONDS,
};
use hybrid_cty::Value;
use serde::{Deserialize, Serialize};

use crate::client::{ClientError, HostClient};
use crate::errors;
use crate::framework::model::{self, Attr};
use crate::framework::schema::Attribute;
use crate::framework::{
    AttrPath, Diagnostics, EphemeralResource, Opened, Schema, ToValue, validators,
};

pub struct KubeconfigEphemeral;

/// What `renew` and `close` get back: enough to name the credential.
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
struct Private {
    cluster_id: String,
    serial: String,
}

fn id_rule(id: &str) -> Result<(), String> {
    match cluster::parse_cluster_id(id) {
        Some(_) => Ok(()),
        None => Err(format!(
            "cluster_id is {id:?}; it must be a cluster id, /clusters/<name> (e.g. \
             hybrid_cluster.example.id)"
        )),
    }
}

fn kind_of(text: &str) -> Option<KubeconfigKind> {
    match text {
        "admin" => Some(KubeconfigKind::Admin),
        "user" => Some(KubeconfigKind::User),
        _ => None,
    }
}

crate::model! {
    /// The configuration and the result object: the schema's attributes.
    pub(crate) struct KubeconfigModel {
        pub cluster_id: Attr<String>,
        pub kind: Attr<String>,
        pub ttl_seconds: Attr<i64>,
        pub kubeconfig_raw: Attr<String>,
        pub host: Attr<String>,
        pub cluster_ca_certificate: Attr<String>,
        pub client_certificate: Attr<String>,
        pub client_key: Attr<String>,
        pub username: Attr<String>,
        pub serial: Attr<String>,
        pub expires_at: Attr<String>,
    }
}

/// The result object: the configuration as given plus the credential.
fn result(config: &KubeconfigModel, k: &Kubeconfig) -> KubeconfigModel {
    let text = |s: &str| Attr::Known(s.to_string());
    KubeconfigModel {
        cluster_id: config.cluster_id.clone(),
        kind: text(k.kind.as_str()),
        ttl_seconds: config.ttl_seconds.clone(),
        kubeconfig_raw: text(&k.kubeconfig),
        host: text(&k.host),
        cluster_ca_certificate: text(&k.cluster_ca_certificate),
        client_certificate: text(&k.client_certificate),
        client_key: text(&k.client_key),
        username: text(&k.username),
        serial: text(&k.serial),
        expires_at: text(&k.expires_at),
    }
}

/// Where a refusal belongs: the service's field path when it names one,
/// otherwise the cluster (not found, still being created, being deleted).
fn report(diags: &mut Diagnostics, id: &str, error: &ClientError) {
    let summary = format!("Cannot issue a kubeconfig for cluster {id}");
    match error {
        ClientError::Api { error: api, .. } if api.target.is_none() => {
            diags.error_at(AttrPath::attr("cluster_id"), summary, api.message.clone());
        }
        other => errors::report(diags, &summary, other),
    }
}

#[async_trait]
impl EphemeralResource<HostClient> for KubeconfigEphemeral {
    fn type_name(&self) -> &'static str {
        "hybrid_kubeconfig"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "A kubeconfig for a cluster, issued when Terraform opens it: a new client \
             certificate signed by the cluster's CA, the API-server endpoint and the CA. \
             Ephemeral: it is never stored in the plan or the state. Every issuance is \
             recorded in the service's audit log.",
            vec![
                Attribute::string("cluster_id")
                    .required()
                    .validator(validators::string_rule(id_rule))
                    .description("Id of the cluster, `/clusters/<name>`."),
                Attribute::string("kind")
                    .required()
                    .validator(validators::one_of(&["admin", "user"]))
                    .description(format!(
                        "`admin`: user `hybrid-admin` in group `system:masters` (full control \
                         of the cluster), valid {} days. `user`: a user `user-<serial>` with no \
                         group (it can do only what RBAC grants it), valid `ttl_seconds`.",
                        ADMIN_TTL_SECONDS / 86_400
                    )),
                Attribute::number("ttl_seconds")
                    .optional()
                    .validator(validators::int_between(
                        MIN_USER_TTL_SECONDS as i64,
                        MAX_USER_TTL_SECONDS as i64,
                    ))
                    .description(format!(
                        "Lifetime of a `user` credential in seconds, \
                         {MIN_USER_TTL_SECONDS}–{MAX_USER_TTL_SECONDS}; defaults to \
                         {DEFAULT_USER_TTL_SECONDS}. Not allowed with `kind = \"admin\"`."
                    )),
                Attribute::string("kubeconfig_raw")
                    .computed()
                    .sensitive()
                    .description(
                        "The complete kubeconfig (YAML): one cluster, one user, one context \
                         named after the cluster, which is the current context.",
                    ),
                Attribute::string("host")
                    .computed()
                    .description("API-server URL, `https://<vip>:6443`."),
                Attribute::string("cluster_ca_certificate")
                    .computed()
                    .description(
                        "The cluster CA certificate (PEM); the same as the cluster's \
                         `ca_certificate`.",
                    ),
                Attribute::string("client_certificate")
                    .computed()
                    .sensitive()
                    .description("Client certificate (PEM), signed by the cluster CA."),
                Attribute::string("client_key")
                    .computed()
                    .sensitive()
                    .description("Client private key (PEM, PKCS#8). The service does not keep it."),
                Attribute::string("username")
                    .computed()
                    .description("The Kubernetes user name (the certificate's common name)."),
                Attribute::string("serial").computed().description(
                    "Serial number of the client certificate (hex), as the audit log \
                         records it.",
                ),
                Attribute::string("expires_at")
                    .computed()
                    .description("When the client certificate expires (RFC 3339)."),
            ],
        )
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        let config: KubeconfigModel = model::read(config);
        let ttl = &config.ttl_seconds;
        if config.kind.known().map(String::as_str) == Some("admin") && !ttl.is_null() {
            let shown = if ttl.is_unknown() {
                "set".to_string()
            } else {
                format!("{}", ttl.known().copied().unwrap_or_default())
            };
            diags.error_at(
                AttrPath::attr("ttl_seconds"),
                "ttl_seconds is only for user credentials",
                format!(
                    "ttl_seconds is {shown}, but kind is \"admin\": an admin credential always \
                     lives {} days. Remove ttl_seconds, or use kind = \"user\".",
                    ADMIN_TTL_SECONDS / 86_400
                ),
            );
        }
    }

    async fn open(&self, client: &HostClient, config: &Value, diags: &mut Diagnostics) -> Opened {
        let failed = || Opened {
            result: Value::Null,
            renew_at: None,
            private: Vec::new(),
        };
        let config: KubeconfigModel = model::read(config);
        let id = config.cluster_id.known().cloned().unwrap_or_default();
        let Some(name) = cluster::parse_cluster_id(&id) else {
            diags.error_at(
                AttrPath::attr("cluster_id"),
                "Invalid cluster_id",
                id_rule(&id).err().unwrap_or_default(),
            );
            return failed();
        };
        let kind_text = config.kind.known().cloned().unwrap_or_default();
        let Some(kind) = kind_of(&kind_text) else {
            diags.error_at(
                AttrPath::attr("kind"),
                "Invalid kind",
                format!("kind is {kind_text:?}; it must be one of: \"admin\", \"user\"."),
            );
            return failed();
        };
        let ttl_seconds = match config.ttl_seconds.known().copied() {
            None => None,
            Some(n) => match u64::try_from(n) {
                Ok(n) => Some(n),
                Err(_) => {
                    diags.error_at(
                        AttrPath::attr("ttl_seconds"),
                        "Invalid ttl_seconds",
                        format!(
                            "ttl_seconds is {n}; it must be from {MIN_USER_TTL_SECONDS} to \
                             {MAX_USER_TTL_SECONDS}."
                        ),
                    );
                    return failed();
                }
            },
        };
        let request = KubeconfigRequest { kind, ttl_seconds };
        match client.issue_kubeconfig(name, &request).await {
            Ok(k) => {
                tracing::info!(
                    cluster = %k.cluster_id,
                    kind = k.kind.as_str(),
                    username = %k.username,
                    serial = %k.serial,
                    expires_at = %k.expires_at,
                    "kubeconfig issued"
                );
                let private = serde_json::to_vec(&Private {
                    cluster_id: k.cluster_id.clone(),
                    serial: k.serial.clone(),
                })
                .unwrap_or_default();
                Opened {
                    result: result(&config, &k).to_value(),
                    renew_at: None,
                    private,
                }
            }
            Err(e) => {
                report(diags, &id, &e);
                failed()
            }
        }
    }

    async fn close(&self, _client: &HostClient, private: &[u8], _diags: &mut Diagnostics) {
        // Nothing to release: the certificate simply expires. Say which one
        // this run is done with, for whoever reads the log next to the audit.
        if let Ok(p) = serde_json::from_slice::<Private>(private) {
            tracing::debug!(cluster = %p.cluster_id, serial = %p.serial, "kubeconfig closed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::schema::Mode;

    fn config(kind: &str, ttl: Option<i64>) -> Value {
        Value::object([
            ("cluster_id", Value::from("/clusters/c1")),
            ("kind", Value::from(kind)),
            ("ttl_seconds", ttl.map(Value::from).unwrap_or(Value::Null)),
        ])
    }

    fn sample() -> Kubeconfig {
        Kubeconfig {
            cluster_id: "/clusters/c1".into(),
            kind: KubeconfigKind::User,
            kubeconfig: "apiVersion: v1\n".into(),
            host: "https://10.0.0.200:6443".into(),
            cluster_ca_certificate: "CA".into(),
            client_certificate: "CERT".into(),
            client_key: "KEY".into(),
            username: "user-abc".into(),
            serial: "4abc".into(),
            expires_at: "2030-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn secrets_are_sensitive_and_every_result_attribute_is_filled() {
        let schema = KubeconfigEphemeral.schema();
        let sensitive: Vec<&str> = schema
            .attributes
            .iter()
            .filter(|a| a.sensitive)
            .map(|a| a.name)
            .collect();
        assert_eq!(
            sensitive,
            ["kubeconfig_raw", "client_certificate", "client_key"]
        );
        let r = result(&model::read(&config("user", Some(600))), &sample()).to_value();
        for a in &schema.attributes {
            let v = r
                .get(a.name)
                .unwrap_or_else(|| panic!("{} missing", a.name));
            if a.mode == Mode::Computed {
                assert!(v.as_str().is_some(), "{} not set", a.name);
            }
        }
        assert_eq!(r.get("ttl_seconds").and_then(Value::as_i64), Some(600));
        assert_eq!(r.get("client_key").and_then(Value::as_str), Some("KEY"));
    }

    #[test]
    fn admin_with_ttl_is_refused_at_ttl_seconds() {
        let mut diags = Diagnostics::new();
        KubeconfigEphemeral.validate(&config("admin", Some(600)), &mut diags);
        assert_eq!(diags.0.len(), 1);
        assert_eq!(diags.0[0].path, Some(AttrPath::attr("ttl_seconds")));
        assert!(diags.0[0].detail.contains("ttl_seconds is 600"));
        let mut diags = Diagnostics::new();
        KubeconfigEphemeral.validate(&config("user", Some(600)), &mut diags);
        KubeconfigEphemeral.validate(&config("admin", None), &mut diags);
        assert!(diags.is_empty(), "{diags:?}");
    }

    #[test]
    fn schema_validators_name_attribute_value_and_rule() {
        let schema = KubeconfigEphemeral.schema();
        let mut bad = config("root", Some(60));
        if let Value::Object(attrs) = &mut bad {
            attrs.insert("cluster_id".into(), Value::from("/vnets/lan"));
        }
        let mut diags = Diagnostics::new();
        schema.validate(&bad, &mut diags);
        let found: Vec<(Option<AttrPath>, String)> = diags
            .iter()
            .map(|d| (d.path.clone(), d.detail.clone()))
            .collect();
        assert_eq!(found.len(), 3, "{found:?}");
        let at = |name: &str| {
            found
                .iter()
                .find(|(p, _)| p.as_ref() == Some(&AttrPath::attr(name)))
                .map(|(_, d)| d.clone())
                .unwrap_or_else(|| panic!("no error at {name}: {found:?}"))
        };
        assert!(at("cluster_id").contains("\"/vnets/lan\""));
        assert!(at("kind").contains("\"root\"") && at("kind").contains("\"admin\", \"user\""));
        assert!(at("ttl_seconds").contains("60") && at("ttl_seconds").contains("300 to 86400"));
    }

    #[test]
    fn api_refusals_land_on_the_field_or_the_cluster() {
        let mut diags = Diagnostics::new();
        let not_found = ClientError::Api {
            status: 404,
            error: hybrid_api::ApiError::new("NotFound", "cluster c1 not found"),
        };
        report(&mut diags, "/clusters/c1", &not_found);
        let ttl = ClientError::Api {
            status: 400,
            error: hybrid_api::ApiError::new("InvalidField", "ttl_seconds is 5")
                .with_target("ttl_seconds"),
        };
        report(&mut diags, "/clusters/c1", &ttl);
        assert_eq!(diags.0[0].path, Some(AttrPath::attr("cluster_id")));
        assert!(diags.0[0].summary.contains("/clusters/c1"));
        assert_eq!(diags.0[1].path, Some(AttrPath::attr("ttl_seconds")));
    }

    #[test]
    fn private_data_names_the_credential_without_secrets() {
        let p = Private {
            cluster_id: "/clusters/c1".into(),
            serial: "4abc".into(),
        };
        let bytes = serde_json::to_vec(&p).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert_eq!(text, r#"{"cluster_id":"/clusters/c1","serial":"4abc"}"#);
        assert_eq!(serde_json::from_slice::<Private>(&bytes).unwrap(), p);
    }
}
