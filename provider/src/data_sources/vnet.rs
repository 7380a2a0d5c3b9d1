//! `hybrid_vnet` data source: reads an existing vnet by name, with the usage
//! of its address pools. Usage lives here and not in the resource's state:
//! clusters take addresses all the time, and a data source is read afresh
//! on every plan instead of showing as a change made outside of Terraform.

use std::collections::BTreeMap;

use async_trait::async_trait;
use hybrid_api::{PoolUsage, Vnet};
use hybrid_cty::Value;

use crate::client::HostClient;
use crate::errors;
use crate::framework::model::{self, Attr, ToValue};
use crate::framework::{AttrPath, DataSource, Diagnostics, Schema};
use crate::resources::vnet::{PoolModel, VnetModel, to_state, vnet_attributes};

pub struct VnetDataSource;

crate::model! {
    /// The data source's attributes: the resource's, with each pool's usage.
    pub(crate) struct VnetDataModel {
        pub id: Attr<String>,
        pub name: Attr<String>,
        pub address_prefix: Attr<String>,
        pub ip_allocation_method: Attr<String>,
        pub gateway: Attr<String>,
        pub dns_servers: Attr<Vec<String>>,
        pub vlan_id: Attr<i64>,
        pub vm_ip_pool: Attr<PoolUsageModel>,
        pub vip_pool: Attr<PoolUsageModel>,
        pub tags: Attr<BTreeMap<String, String>>,
        pub provisioning_state: Attr<String>,
    }
}

crate::model! {
    /// `vm_ip_pool` / `vip_pool` with their usage.
    pub(crate) struct PoolUsageModel {
        pub start: Attr<String>,
        pub end: Attr<String>,
        pub size: Attr<i64>,
        pub used: Attr<i64>,
        pub available: Attr<i64>,
    }
}

#[async_trait]
impl DataSource<HostClient> for VnetDataSource {
    fn type_name(&self) -> &'static str {
        "hybrid_vnet"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "Reads a virtual network and the usage of its address pools, e.g. one an \
             infrastructure administrator manages elsewhere. Usage is read afresh on every \
             plan; the `hybrid_vnet` resource does not keep it.",
            vnet_attributes(false),
        )
    }

    async fn read(&self, client: &HostClient, config: &Value, diags: &mut Diagnostics) -> Value {
        let config: VnetDataModel = model::read(config);
        let Some(name) = config.name.into_known() else {
            diags.error_at(
                AttrPath::attr("name"),
                "Missing vnet name",
                "`name` must be known to read a vnet",
            );
            return Value::Null;
        };
        match client.get_vnet(&name).await {
            Ok(Some(vnet)) => data_state(&vnet).to_value(),
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

/// The data source's state: the resource's own conversion (less
/// `timeouts`), with each pool's usage from the vnet's status.
pub(crate) fn data_state(vnet: &Vnet) -> VnetDataModel {
    let VnetModel {
        id,
        name,
        address_prefix,
        ip_allocation_method,
        gateway,
        dns_servers,
        vlan_id,
        vm_ip_pool,
        vip_pool,
        tags,
        provisioning_state,
        timeouts: _,
    } = to_state(vnet, &VnetModel::default());
    VnetDataModel {
        id,
        name,
        address_prefix,
        ip_allocation_method,
        gateway,
        dns_servers,
        vlan_id,
        vm_ip_pool: with_usage(vm_ip_pool, vnet.status.vm_ip_pool.as_ref()),
        vip_pool: with_usage(vip_pool, vnet.status.vip_pool.as_ref()),
        tags,
        provisioning_state,
    }
}

/// A pool's state with its usage (null counts when the service reports none).
fn with_usage(pool: Attr<PoolModel>, usage: Option<&PoolUsage>) -> Attr<PoolUsageModel> {
    pool.map(|PoolModel { start, end, size }| {
        let count = |f: fn(&PoolUsage) -> u64| usage.and_then(|u| i64::try_from(f(u)).ok()).into();
        PoolUsageModel {
            start,
            end,
            size,
            used: count(|u| u.used),
            available: count(|u| u.available),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vnet() -> Vnet {
        serde_json::from_value(serde_json::json!({
            "id": "/vnets/lan",
            "name": "lan",
            "etag": "1",
            "address_prefix": "10.0.0.0/24",
            "ip_allocation_method": "static",
            "vm_ip_pool": {"start": "10.0.0.10", "end": "10.0.0.99"},
            "vip_pool": {"start": "10.0.0.200", "end": "10.0.0.209"},
            "provisioning_state": "Succeeded",
            "status": {
                "vm_ip_pool": {"size": 90, "used": 4, "available": 86},
                "vip_pool": {"size": 10, "used": 1, "available": 9}
            },
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn the_data_source_reports_usage_the_resource_does_not_keep() {
        let vnet = vnet();
        let data = data_state(&vnet);
        let vm = data.vm_ip_pool.known().unwrap();
        assert_eq!(
            (vm.size.known(), vm.used.known(), vm.available.known()),
            (Some(&90), Some(&4), Some(&86))
        );
        let vip = data.vip_pool.known().unwrap();
        assert_eq!(
            (vip.used.known(), vip.available.known()),
            (Some(&1), Some(&9))
        );

        // The resource's state of the same vnet: range and size only, so
        // the same state whatever the usage.
        let state = to_state(&vnet, &VnetModel::default()).to_value();
        let pool = state.get("vm_ip_pool").unwrap();
        assert_eq!(pool.get("size"), Some(&Value::from(90)));
        assert_eq!(pool.get("used"), None);
        let mut busier = vnet.clone();
        busier.status.vm_ip_pool = Some(PoolUsage {
            size: 90,
            used: 50,
            available: 40,
        });
        assert_eq!(to_state(&busier, &VnetModel::default()).to_value(), state);
    }
}
