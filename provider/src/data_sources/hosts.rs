//! `hybrid_hosts` data source: the datacenter inventory — the physical
//! hosts, their capacity, what is allocated and what is free — and which
//! infrastructure driver reports it (the `sim` driver says it is simulated).

use async_trait::async_trait;
use hybrid_api::HostList;
use hybrid_cty::Value;

use super::shared::{ResourcesModel, computed_list, computed_strings, resources_attributes};
use crate::client::HostClient;
use crate::errors;
use crate::framework::schema::Attribute;
use crate::framework::{Attr, DataSource, Diagnostics, Schema, ToValue};

pub struct HostsDataSource;

#[async_trait]
impl DataSource<HostClient> for HostsDataSource {
    fn type_name(&self) -> &'static str {
        "hybrid_hosts"
    }

    fn schema(&self) -> Schema {
        let amount = |name: &'static str, what: &str| {
            Attribute::nested(name, resources_attributes())
                .computed()
                .description(what)
        };
        Schema::new(
            "Reads the physical hosts of the datacenter with their capacity, allocations \
             and free resources, e.g. to check there is room for a node pool.",
            vec![
                Attribute::string("driver")
                    .computed()
                    .description("Infrastructure driver reporting the hosts, e.g. `sim`."),
                Attribute::bool("simulated")
                    .computed()
                    .description("True when the datacenter is simulated (no real VM is touched)."),
                computed_list(
                    "hosts",
                    vec![
                        Attribute::string("name")
                            .computed()
                            .description("Host name, e.g. `host-1`."),
                        Attribute::string("id")
                            .computed()
                            .description("The host's id, `/hosts/<name>`."),
                        Attribute::string("state")
                            .computed()
                            .description("`Up` or `Down`."),
                        amount("capacity", "What the host has."),
                        amount("allocated", "What the VMs placed on the host take."),
                        amount(
                            "free",
                            "`capacity - allocated`; zero while the host is down.",
                        ),
                        computed_strings("vms", "Names of the VMs on the host."),
                    ],
                )
                .description("Every physical host."),
                Attribute::number("free_vcpus")
                    .computed()
                    .description("Free vCPUs over all hosts."),
                Attribute::number("free_memory_mib")
                    .computed()
                    .description("Free memory over all hosts, MiB."),
                Attribute::number("free_disk_gib")
                    .computed()
                    .description("Free disk over all hosts, GiB."),
            ],
        )
    }

    async fn read(&self, client: &HostClient, _config: &Value, diags: &mut Diagnostics) -> Value {
        match client.list_hosts().await {
            Ok(hosts) => to_state(&hosts).to_value(),
            Err(e) => {
                errors::report(diags, "Cannot read the datacenter's hosts", &e);
                Value::Null
            }
        }
    }
}

crate::model! {
    /// The data source's state.
    pub(crate) struct HostsModel {
        pub driver: Attr<String>,
        pub simulated: Attr<bool>,
        pub hosts: Attr<Vec<HostModel>>,
        pub free_vcpus: Attr<u64>,
        pub free_memory_mib: Attr<u64>,
        pub free_disk_gib: Attr<u64>,
    }
}

crate::model! {
    /// One physical host.
    pub(crate) struct HostModel {
        pub name: Attr<String>,
        pub id: Attr<String>,
        pub state: Attr<String>,
        pub capacity: Attr<ResourcesModel>,
        pub allocated: Attr<ResourcesModel>,
        pub free: Attr<ResourcesModel>,
        pub vms: Attr<Vec<String>>,
    }
}

pub(crate) fn to_state(list: &HostList) -> HostsModel {
    let hosts = list.items.iter().map(|h| HostModel {
        name: Attr::Known(h.name.clone()),
        id: Attr::Known(h.id.clone()),
        state: Attr::Known(h.state.as_str().to_string()),
        capacity: ResourcesModel::of(&h.capacity),
        allocated: ResourcesModel::of(&h.allocated),
        free: ResourcesModel::of(&h.free),
        vms: Attr::Known(h.vms.clone()),
    });
    // Sums in u64 so many large hosts cannot overflow.
    let free_vcpus: u64 = list.items.iter().map(|h| u64::from(h.free.vcpus)).sum();
    let free_memory: u64 = list.items.iter().map(|h| h.free.memory_mib).sum();
    let free_disk: u64 = list.items.iter().map(|h| h.free.disk_gib).sum();
    HostsModel {
        driver: Attr::Known(list.driver.clone()),
        simulated: Attr::Known(list.simulated),
        hosts: Attr::Known(hosts.collect()),
        free_vcpus: Attr::Known(free_vcpus),
        free_memory_mib: Attr::Known(free_memory),
        free_disk_gib: Attr::Known(free_disk),
    }
}

#[cfg(test)]
mod tests {
    use hybrid_api::PhysicalHost;
    use hybrid_api::inventory::Resources;

    use super::*;
    use crate::data_sources::shared::tests::{assert_fits, int, items, text};

    fn to_state(list: &HostList) -> Value {
        super::to_state(list).to_value()
    }

    fn amount(vcpus: u32, memory_mib: u64, disk_gib: u64) -> Resources {
        Resources {
            vcpus,
            memory_mib,
            disk_gib,
        }
    }

    #[test]
    fn hosts_and_free_totals() {
        let list = HostList {
            driver: "sim".into(),
            simulated: true,
            items: vec![
                PhysicalHost {
                    id: "/hosts/host-1".into(),
                    name: "host-1".into(),
                    state: "Up".into(),
                    capacity: amount(32, 131072, 2048),
                    allocated: amount(4, 8192, 128),
                    free: amount(28, 122880, 1920),
                    vms: vec!["prod-cp-1".into()],
                },
                PhysicalHost {
                    id: "/hosts/host-2".into(),
                    name: "host-2".into(),
                    state: "Down".into(),
                    capacity: amount(32, 131072, 2048),
                    allocated: amount(0, 0, 0),
                    free: amount(0, 0, 0),
                    vms: vec![],
                },
            ],
        };
        let state = to_state(&list);
        assert_fits(&HostsDataSource.schema(), &state);
        assert_eq!(text(&state, "driver"), "sim");
        assert_eq!(state.get("simulated"), Some(&Value::Bool(true)));
        let hosts = items(&state, "hosts");
        assert_eq!(text(&hosts[0], "id"), "/hosts/host-1");
        assert_eq!(text(&hosts[1], "state"), "Down");
        let capacity = hosts[0].get("capacity").unwrap();
        assert_eq!(int(capacity, "memory_mib"), 131072);
        let allocated = hosts[0].get("allocated").unwrap();
        assert_eq!(int(allocated, "vcpus"), 4);
        assert_eq!(
            hosts[0].get("vms"),
            Some(&Value::list([Value::from("prod-cp-1")]))
        );
        assert_eq!(hosts[1].get("vms"), Some(&Value::list([])));
        // A down host contributes nothing free.
        assert_eq!(int(&state, "free_vcpus"), 28);
        assert_eq!(int(&state, "free_memory_mib"), 122880);
        assert_eq!(int(&state, "free_disk_gib"), 1920);
    }
}
