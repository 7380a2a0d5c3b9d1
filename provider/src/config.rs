//! The provider's own configuration: where the host management service is
//! and how to trust and authenticate to it.
//!
//! May depend on the [`client`](crate::client) it builds and the framework;
//! nothing else in this crate.

use hybrid_cty::{Type, Value};

use crate::client::{ClientError, HostClient};
use crate::framework::{AttrPath, Attribute, Diagnostics, Schema, values};

pub const ENV_ENDPOINT: &str = "HYBRID_ENDPOINT";
pub const ENV_TOKEN: &str = "HYBRID_TOKEN";
pub const ENV_CA_CERT_FILE: &str = "HYBRID_CA_CERT_FILE";

pub fn schema() -> Schema {
    Schema::new(
        "Manages hybrid Kubernetes infrastructure through a Hybrid host management \
         service (`hybrid-host`).",
        vec![
            Attribute::string("endpoint")
                .optional()
                .description(format!(
                    "URL of the host management service, e.g. `https://127.0.0.1:8443`. \
                 May also be set with `{ENV_ENDPOINT}`. Conflicts with `endpoints`."
                )),
            Attribute::list("endpoints", Type::String)
                .optional()
                .description(format!(
                    "URLs of several `hybrid-host` replicas sharing one database, tried in \
                 order: a call that cannot reach one goes to the next, including while \
                 the provider waits on an operation. May also be set with `{ENV_ENDPOINT}` \
                 as a comma-separated list. Conflicts with `endpoint`."
                )),
            Attribute::string("token")
                .optional()
                .sensitive()
                .description(format!(
                    "Bearer token for the service (the `admin.token` file `hybrid-host` writes). \
                 May also be set with `{ENV_TOKEN}`."
                )),
            Attribute::string("ca_certificate")
                .optional()
                .description(format!(
                    "PEM of the CA that signed the service's certificate (`ca.pem` in the \
                 service's data directory). May also be given as a file path with \
                 `{ENV_CA_CERT_FILE}`. There is no insecure mode."
                )),
        ],
    )
}

/// The resolved settings, each from the configuration or its variable.
struct Settings {
    endpoints: Vec<String>,
    /// `endpoints` was set (errors about them point there).
    from_list: bool,
    token: String,
    ca_pem: String,
}

/// Builds a client from the configuration and proves that the endpoint, CA
/// and token work, so a mistake fails here, naming the endpoint, and not in
/// the middle of a plan.
pub async fn configure(config: &Value, diags: &mut Diagnostics) -> Option<HostClient> {
    let settings = resolve(config, diags)?;
    let client =
        match HostClient::with_endpoints(&settings.endpoints, &settings.token, &settings.ca_pem) {
            Ok(client) => client,
            Err(e) => {
                diags.error("Invalid provider configuration", e.to_string());
                return None;
            }
        };
    match client.management_host().await {
        Ok(host) => {
            tracing::info!(endpoint = %client.endpoint(), driver = %host.driver, version = %host.version, "connected to the host management service");
            Some(client)
        }
        Err(e) => {
            let path = match e {
                ClientError::Unauthorized { .. } => AttrPath::attr("token"),
                _ if settings.from_list => AttrPath::attr("endpoints"),
                _ => AttrPath::attr("endpoint"),
            };
            diags.error_at(
                path,
                "Cannot connect to the Hybrid host management service",
                e.to_string(),
            );
            None
        }
    }
}

fn resolve(config: &Value, diags: &mut Diagnostics) -> Option<Settings> {
    for name in ["endpoint", "endpoints", "token", "ca_certificate"] {
        if config.get(name).is_some_and(Value::is_unknown) {
            diags.error_at(
                AttrPath::attr(name),
                "Provider configuration is not known yet",
                format!("`{name}` depends on a value known only after apply; the provider needs it to plan. Set it from a literal, a variable or its environment variable."),
            );
            return None;
        }
    }
    let listed = match config.get("endpoints") {
        Some(Value::List(items)) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item.as_str().map(str::trim).filter(|s| !s.is_empty()) {
                    Some(e) => out.push(e.to_string()),
                    None => {
                        diags.error_at(
                            AttrPath::attr("endpoints"),
                            "Invalid provider setting `endpoints`",
                            format!("endpoints[{i}] is empty or null; every element must be an https:// URL"),
                        );
                        return None;
                    }
                }
            }
            Some(out)
        }
        _ => None,
    };
    let single = values::string(config, "endpoint");
    if listed.is_some() && single.is_some() {
        diags.error_at(
            AttrPath::attr("endpoints"),
            "Conflicting provider settings",
            "set `endpoint` (one service) or `endpoints` (several replicas), not both",
        );
        return None;
    }
    if listed.as_ref().is_some_and(Vec::is_empty) {
        diags.error_at(
            AttrPath::attr("endpoints"),
            "Invalid provider setting `endpoints`",
            "`endpoints` is an empty list; give at least one https:// URL",
        );
        return None;
    }
    let from_list = listed.is_some();
    let endpoint = listed
        .map(|l| l.join(","))
        .or(single)
        .or_else(|| env(ENV_ENDPOINT));
    let token = values::string(config, "token").or_else(|| env(ENV_TOKEN));
    let ca_pem = match values::string(config, "ca_certificate") {
        Some(pem) => Some(pem),
        None => match env(ENV_CA_CERT_FILE) {
            Some(path) => match std::fs::read_to_string(&path) {
                Ok(pem) => Some(pem),
                Err(e) => {
                    diags.error_at(
                        AttrPath::attr("ca_certificate"),
                        "Cannot read the CA certificate",
                        format!("{ENV_CA_CERT_FILE}={path:?} cannot be read: {e}"),
                    );
                    return None;
                }
            },
            None => None,
        },
    };
    let mut missing = |value: &Option<String>, name: &str, variable: &str| {
        if value.is_none() {
            diags.error_at(
                AttrPath::attr(name),
                format!("Missing provider setting `{name}`"),
                format!(
                    "set `{name}` in the provider block or the {variable} environment variable"
                ),
            );
        }
    };
    missing(&endpoint, "endpoint", ENV_ENDPOINT);
    missing(&token, "token", ENV_TOKEN);
    missing(&ca_pem, "ca_certificate", ENV_CA_CERT_FILE);
    Some(Settings {
        endpoints: split_endpoints(&endpoint?),
        from_list,
        token: token?,
        ca_pem: ca_pem?,
    })
}

/// `a,b , c` → the non-empty URLs.
fn split_endpoints(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_lists_split_on_commas() {
        assert_eq!(
            split_endpoints(" https://a:1, https://b:2 ,,https://c:3"),
            ["https://a:1", "https://b:2", "https://c:3"]
        );
        assert_eq!(split_endpoints("https://a:1"), ["https://a:1"]);
    }

    fn config(pairs: &[(&str, Value)]) -> Value {
        let mut attrs: std::collections::BTreeMap<String, Value> = ["endpoint", "endpoints"]
            .iter()
            .map(|n| (n.to_string(), Value::Null))
            .collect();
        attrs.insert("token".into(), Value::from("t"));
        attrs.insert("ca_certificate".into(), Value::from("pem"));
        for (k, v) in pairs {
            attrs.insert(k.to_string(), v.clone());
        }
        Value::Object(attrs)
    }

    #[test]
    fn endpoints_and_endpoint_conflict_and_an_empty_list_is_refused() {
        let mut diags = Diagnostics::default();
        let both = config(&[
            ("endpoint", Value::from("https://a:1")),
            ("endpoints", Value::List(vec![Value::from("https://b:2")])),
        ]);
        assert!(resolve(&both, &mut diags).is_none());
        assert!(format!("{diags:?}").contains("not both"), "{diags:?}");

        let mut diags = Diagnostics::default();
        let empty = config(&[("endpoints", Value::List(Vec::new()))]);
        assert!(resolve(&empty, &mut diags).is_none());
        assert!(format!("{diags:?}").contains("empty list"), "{diags:?}");

        let mut diags = Diagnostics::default();
        let listed = config(&[(
            "endpoints",
            Value::List(vec![Value::from("https://b:2"), Value::from("https://c:3")]),
        )]);
        let settings = resolve(&listed, &mut diags).expect("resolves");
        assert_eq!(settings.endpoints, ["https://b:2", "https://c:3"]);
        assert!(settings.from_list);
    }
}
