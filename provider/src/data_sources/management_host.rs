//! `hybrid_management_host` data source: the host management service
//! itself — its id (what `hybrid_custom_location.host_id` takes), the
//! infrastructure driver behind it and its version.

use async_trait::async_trait;
use hybrid_api::ManagementHost;
use hybrid_cty::Value;

use crate::client::HostClient;
use crate::errors;
use crate::framework::schema::Attribute;
use crate::framework::{Attr, DataSource, Diagnostics, Schema, ToValue};

pub struct ManagementHostDataSource;

#[async_trait]
impl DataSource<HostClient> for ManagementHostDataSource {
    fn type_name(&self) -> &'static str {
        "hybrid_management_host"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "Reads the host management service the provider talks to: its id (the `host_id` \
             of a custom location), the infrastructure driver it drives and its version.",
            vec![
                Attribute::string("id")
                    .computed()
                    .description("The management host's id, `/management-host`."),
                Attribute::string("name")
                    .computed()
                    .description("Name of the management host."),
                Attribute::string("driver")
                    .computed()
                    .description("Infrastructure driver, e.g. `sim`."),
                Attribute::bool("simulated")
                    .computed()
                    .description("True when the datacenter is simulated (no real VM is touched)."),
                Attribute::string("version")
                    .computed()
                    .description("Version of `hybrid-host`."),
            ],
        )
    }

    async fn read(&self, client: &HostClient, _config: &Value, diags: &mut Diagnostics) -> Value {
        match client.management_host().await {
            Ok(host) => to_state(&host).to_value(),
            Err(e) => {
                errors::report(diags, "Cannot read the management host", &e);
                Value::Null
            }
        }
    }
}

crate::model! {
    /// The data source's state.
    pub(crate) struct ManagementHostModel {
        pub id: Attr<String>,
        pub name: Attr<String>,
        pub driver: Attr<String>,
        pub simulated: Attr<bool>,
        pub version: Attr<String>,
    }
}

pub(crate) fn to_state(host: &ManagementHost) -> ManagementHostModel {
    ManagementHostModel {
        id: Attr::Known(host.id.clone()),
        name: Attr::Known(host.name.clone()),
        driver: Attr::Known(host.driver.clone()),
        simulated: Attr::Known(host.simulated),
        version: Attr::Known(host.version.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_sources::shared::tests::{assert_fits, text};

    fn to_state(host: &ManagementHost) -> Value {
        super::to_state(host).to_value()
    }

    #[test]
    fn state_mirrors_the_answer() {
        let host = ManagementHost {
            id: hybrid_api::MANAGEMENT_HOST_ID.into(),
            name: "hybrid-host".into(),
            driver: "sim".into(),
            simulated: true,
            version: "0.3.0".into(),
        };
        let state = to_state(&host);
        assert_fits(&ManagementHostDataSource.schema(), &state);
        assert_eq!(text(&state, "id"), "/management-host");
        assert_eq!(text(&state, "driver"), "sim");
        assert_eq!(state.get("simulated"), Some(&Value::Bool(true)));
        assert_eq!(text(&state, "version"), "0.3.0");
    }
}
