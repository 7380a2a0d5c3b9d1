//! `hybrid_vnet` data source: reads an existing vnet by name.

use async_trait::async_trait;
use hybrid_cty::Value;

use crate::client::HostClient;
use crate::errors;
use crate::framework::model::{self, ToValue};
use crate::framework::{AttrPath, DataSource, Diagnostics, Schema, timeouts};
use crate::resources::vnet::{VnetModel, to_state, vnet_attributes};

pub struct VnetDataSource;

#[async_trait]
impl DataSource<HostClient> for VnetDataSource {
    fn type_name(&self) -> &'static str {
        "hybrid_vnet"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "Reads a virtual network and the usage of its address pools, e.g. one an \
             infrastructure administrator manages elsewhere.",
            vnet_attributes(false),
        )
    }

    async fn read(&self, client: &HostClient, config: &Value, diags: &mut Diagnostics) -> Value {
        let config: VnetModel = model::read(config);
        let Some(name) = config.name.into_known() else {
            diags.error_at(
                AttrPath::attr("name"),
                "Missing vnet name",
                "`name` must be known to read a vnet",
            );
            return Value::Null;
        };
        match client.get_vnet(&name).await {
            Ok(Some(vnet)) => {
                // The resource's own conversion, less `timeouts`, which the
                // data source does not have.
                let mut state = to_state(&vnet, &VnetModel::default()).to_value();
                if let Value::Object(attributes) = &mut state {
                    attributes.remove(timeouts::NAME);
                }
                state
            }
            Ok(None) => {
                diags.error_at(
                    AttrPath::attr("name"),
                    "Vnet not found",
                    format!(
                        "no vnet named {name:?} exists in the host management service at {}",
                        client.endpoint()
                    ),
                );
                Value::Null
            }
            Err(e) => {
                errors::report(diags, &format!("Cannot read vnet {name:?}"), &e);
                Value::Null
            }
        }
    }
}
