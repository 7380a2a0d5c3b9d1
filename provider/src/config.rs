//! The provider's own configuration: where the host management service is
//! and how to trust and authenticate to it.
//!
//! May depend on the [`client`](crate::client) it builds and the framework;
//! nothing else in this crate.

use hybrid_cty::Value;

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
                 May also be set with `{ENV_ENDPOINT}`."
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
    endpoint: String,
    token: String,
    ca_pem: String,
}

/// Builds a client from the configuration and proves that the endpoint, CA
/// and token work, so a mistake fails here, naming the endpoint, and not in
/// the middle of a plan.
pub async fn configure(config: &Value, diags: &mut Diagnostics) -> Option<HostClient> {
    let settings = resolve(config, diags)?;
    let client = match HostClient::new(&settings.endpoint, &settings.token, &settings.ca_pem) {
        Ok(client) => client,
        Err(e) => {
            diags.error("Invalid provider configuration", e.to_string());
            return None;
        }
    };
    match client.management_host().await {
        Ok(host) => {
            tracing::info!(endpoint = %settings.endpoint, driver = %host.driver, version = %host.version, "connected to the host management service");
            Some(client)
        }
        Err(e) => {
            let path = match e {
                ClientError::Unauthorized { .. } => AttrPath::attr("token"),
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
    for name in ["endpoint", "token", "ca_certificate"] {
        if config.get(name).is_some_and(Value::is_unknown) {
            diags.error_at(
                AttrPath::attr(name),
                "Provider configuration is not known yet",
                format!("`{name}` depends on a value known only after apply; the provider needs it to plan. Set it from a literal, a variable or its environment variable."),
            );
            return None;
        }
    }
    let endpoint = values::string(config, "endpoint").or_else(|| env(ENV_ENDPOINT));
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
        endpoint: endpoint?,
        token: token?,
        ca_pem: ca_pem?,
    })
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}
