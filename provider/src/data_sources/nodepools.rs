//! `hybrid_nodepools` data source: lists the node pools of one cluster with
//! their settings, Kubernetes version and the nodes the service observes.

use std::collections::BTreeMap;

use async_trait::async_trait;
use hybrid_api::NodePool;
use hybrid_api::cluster::parse_cluster_id;
use hybrid_cty::{Type, Value};

use super::shared::{
    self, ConditionDataModel, NodeDataModel, computed_list, computed_strings, condition_attributes,
    node_attributes, not_found,
};
use crate::client::HostClient;
use crate::errors;
use crate::framework::model::{self, Attr, ToValue};
use crate::framework::schema::Attribute;
use crate::framework::{AttrPath, DataSource, Diagnostics, Schema, validators};
use crate::resources::nodepool::{
    self as resource, AutoRepairModel, AutoScalingModel, NodePoolModel,
};

pub struct NodePoolsDataSource;

/// The cluster name in a `cluster_id`, or the rule it breaks.
fn cluster_name(id: &str) -> Result<&str, String> {
    let rule = || {
        format!(
            "cluster_id {id:?} is not a cluster id; expected \"/clusters/NAME\" (e.g. hybrid_cluster.x.id)"
        )
    };
    let name = parse_cluster_id(id).ok_or_else(rule)?;
    hybrid_api::cluster::validate_name(name).map_err(|_| rule())?;
    Ok(name)
}

#[async_trait]
impl DataSource<HostClient> for NodePoolsDataSource {
    fn type_name(&self) -> &'static str {
        "hybrid_nodepools"
    }

    fn schema(&self) -> Schema {
        let text =
            |name: &'static str, what: &str| Attribute::string(name).computed().description(what);
        let number =
            |name: &'static str, what: &str| Attribute::number(name).computed().description(what);
        Schema::new(
            "Lists the node pools of a cluster with their settings, the Kubernetes version \
             their nodes run, and each node's address and host.",
            vec![
                Attribute::string("cluster_id")
                    .required()
                    .validator(validators::string_rule(|id| cluster_name(id).map(drop)))
                    .description("Id of the cluster whose pools to list, `/clusters/<name>`."),
                computed_list(
                    "nodepools",
                    vec![
                        text("id", "The pool's id, `/clusters/<cluster>/nodepools/<name>`."),
                        text("name", "Name of the pool."),
                        text("os_type", "`linux` or `windows`."),
                        text("os_sku", "OS image SKU, e.g. `CBLMariner` or `Windows2022`."),
                        text("vm_size", "VM size of the pool's nodes."),
                        number(
                            "node_count",
                            "Number of nodes wanted (set by the service while `auto_scaling` is on).",
                        ),
                        Attribute::nested(
                            "auto_scaling",
                            vec![
                                number("min_count", "Fewest nodes the autoscaler keeps."),
                                number("max_count", "Most nodes the autoscaler adds."),
                            ],
                        )
                        .computed()
                        .description("Autoscaler bounds; null when the pool has a fixed size."),
                        Attribute::nested(
                            "auto_repair",
                            vec![
                                Attribute::bool("enabled")
                                    .computed()
                                    .description("Whether unhealthy nodes are replaced."),
                                text(
                                    "unhealthy_after",
                                    "How long a node's host must be down before the node is replaced.",
                                ),
                                number("max_unhealthy", "Most nodes under repair at once."),
                            ],
                        )
                        .computed()
                        .description("Node auto-repair settings."),
                        Attribute::map("labels", Type::String)
                            .computed()
                            .description("Kubernetes labels on every node."),
                        computed_strings(
                            "taints",
                            "Taints on every node, `key=value:Effect`.",
                        ),
                        number("max_pods", "Pods per node."),
                        text(
                            "kubernetes_version",
                            "Version the pool's nodes run (the oldest, during an upgrade).",
                        ),
                        computed_list("nodes", node_attributes()).description("The pool's VMs."),
                        crate::resources::attributes::upgrade_attribute("the pool's nodes"),
                        text(
                            "provisioning_state",
                            "Outcome of the last operation on the pool (`Succeeded`, `Failed`, …).",
                        ),
                        computed_list("conditions", condition_attributes())
                            .description("Observed conditions of the pool."),
                    ],
                )
                .description("The cluster's node pools, in the service's order."),
            ],
        )
    }

    async fn read(&self, client: &HostClient, config: &Value, diags: &mut Diagnostics) -> Value {
        let config: NodePoolsDataModel = model::read(config);
        let Some(cluster_id) = config.cluster_id.into_known() else {
            diags.error_at(
                AttrPath::attr("cluster_id"),
                "Missing cluster_id",
                "`cluster_id` must be known to list a cluster's node pools",
            );
            return Value::Null;
        };
        let name = match cluster_name(&cluster_id) {
            Ok(name) => name,
            Err(rule) => {
                diags.error_at(AttrPath::attr("cluster_id"), "Invalid cluster_id", rule);
                return Value::Null;
            }
        };
        // An empty list could also come from a service that lists pools of
        // any name without checking the cluster; make sure it exists so a
        // typo is an error rather than "no pools".
        let listed = match client.list_nodepools(name).await {
            Ok(Some(pools)) if pools.is_empty() => client
                .get_cluster(name)
                .await
                .map(|cluster| cluster.map(|_| pools)),
            other => other,
        };
        match listed {
            Ok(Some(pools)) => to_state(&cluster_id, &pools).to_value(),
            Ok(None) => {
                diags.error_at(
                    AttrPath::attr("cluster_id"),
                    "Cluster not found",
                    not_found("cluster", name, client.endpoint(), "cluster_id"),
                );
                Value::Null
            }
            Err(e) => {
                errors::report(
                    diags,
                    &format!("Cannot list the node pools of cluster {name:?}"),
                    &e,
                );
                Value::Null
            }
        }
    }
}

crate::model! {
    /// The data source's configuration and state.
    pub(crate) struct NodePoolsDataModel {
        pub cluster_id: Attr<String>,
        pub nodepools: Attr<Vec<PoolDataModel>>,
    }
}

crate::model! {
    /// One pool as the data source shows it: the node pool resource's
    /// attributes (less `cluster_id` and `timeouts`) and its conditions.
    pub(crate) struct PoolDataModel {
        pub id: Attr<String>,
        pub name: Attr<String>,
        pub os_type: Attr<String>,
        pub os_sku: Attr<String>,
        pub vm_size: Attr<String>,
        pub node_count: Attr<i64>,
        pub auto_scaling: Attr<AutoScalingModel>,
        pub auto_repair: Attr<AutoRepairModel>,
        pub labels: Attr<BTreeMap<String, String>>,
        pub taints: Attr<Vec<String>>,
        pub max_pods: Attr<i64>,
        pub kubernetes_version: Attr<String>,
        pub nodes: Attr<Vec<NodeDataModel>>,
        pub upgrade: Attr<crate::resources::attributes::UpgradeModel>,
        pub provisioning_state: Attr<String>,
        pub conditions: Attr<Vec<ConditionDataModel>>,
    }
}

/// One pool, built on the resource's own conversion
/// ([`resource::to_state`]); with no configuration to stay consistent with,
/// empty `labels` and `taints` are shown empty rather than null, and nodes
/// carry their version and size.
fn pool_state(pool: &NodePool) -> PoolDataModel {
    let shown = NodePoolModel {
        labels: Attr::Known(BTreeMap::new()),
        taints: Attr::Known(Vec::new()),
        ..NodePoolModel::default()
    };
    let NodePoolModel {
        id,
        cluster_id: _,
        name,
        os_type,
        os_sku,
        vm_size,
        node_count,
        auto_scaling,
        auto_repair,
        labels,
        taints,
        max_pods,
        kubernetes_version,
        nodes: _,
        upgrade,
        provisioning_state,
        timeouts: _,
    } = resource::to_state(pool, &shown);
    PoolDataModel {
        id,
        name,
        os_type,
        os_sku,
        vm_size,
        node_count,
        auto_scaling,
        auto_repair,
        labels,
        taints,
        max_pods,
        kubernetes_version,
        nodes: shared::nodes(&pool.status.nodes),
        upgrade,
        provisioning_state,
        conditions: shared::conditions(&pool.status.conditions),
    }
}

pub(crate) fn to_state(cluster_id: &str, pools: &[NodePool]) -> NodePoolsDataModel {
    NodePoolsDataModel {
        cluster_id: Attr::Known(cluster_id.to_string()),
        nodepools: Attr::Known(pools.iter().map(pool_state).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_sources::shared::tests::{assert_fits, int, items, text};
    use crate::framework::Diagnostics;

    fn to_state(cluster_id: &str, pools: &[NodePool]) -> Value {
        super::to_state(cluster_id, pools).to_value()
    }

    fn pools() -> Vec<NodePool> {
        serde_json::from_value(serde_json::json!([{
            "id": "/clusters/prod/nodepools/linux1",
            "cluster_id": "/clusters/prod",
            "name": "linux1",
            "etag": "\"3\"",
            "os_type": "linux",
            "os_sku": "CBLMariner",
            "vm_size": "Standard_K8S3_v1",
            "node_count": 2,
            "auto_scaling": {"min_count": 1, "max_count": 4},
            "labels": {"tier": "web"},
            "taints": ["gpu=true:NoSchedule"],
            "max_pods": 110,
            "provisioning_state": "Succeeded",
            "status": {
                "kubernetes_version": "1.32.3",
                "nodes": [{
                    "name": "prod-linux1-1",
                    "ip": "10.0.0.21",
                    "host": "host-3",
                    "state": "Running",
                    "kubernetes_version": "1.32.3",
                    "vm_size": "Standard_K8S3_v1"
                }]
            },
            "created_at": "2025-01-01T00:00:00Z",
            "updated_at": "2025-01-01T00:00:00Z"
        }, {
            "id": "/clusters/prod/nodepools/win1",
            "cluster_id": "/clusters/prod",
            "name": "win1",
            "etag": "\"1\"",
            "os_type": "windows",
            "os_sku": "Windows2022",
            "vm_size": "Standard_D4s_v3",
            "node_count": 1,
            "max_pods": 30,
            "provisioning_state": "Failed",
            "status": {"conditions": [{
                "type": "Ready",
                "status": "False",
                "reason": "VmBootFailed",
                "message": "VM prod-win1-1 on host-2 failed to boot",
                "last_transition_time": "2025-01-01T00:05:00Z"
            }]},
            "created_at": "2025-01-01T00:00:00Z",
            "updated_at": "2025-01-01T00:05:00Z"
        }]))
        .unwrap()
    }

    #[test]
    fn pools_carry_spec_status_and_nodes() {
        let state = to_state("/clusters/prod", &pools());
        assert_fits(&NodePoolsDataSource.schema(), &state);
        assert_eq!(text(&state, "cluster_id"), "/clusters/prod");

        let listed = items(&state, "nodepools");
        assert_eq!(listed.len(), 2);
        let linux = &listed[0];
        assert_eq!(text(linux, "id"), "/clusters/prod/nodepools/linux1");
        assert_eq!(text(linux, "os_type"), "linux");
        assert_eq!(int(linux, "node_count"), 2);
        assert_eq!(int(linux.get("auto_scaling").unwrap(), "max_count"), 4);
        // A pool stored without auto_repair shows its defaults.
        let repair = linux.get("auto_repair").unwrap();
        assert_eq!(repair.get("enabled"), Some(&Value::from(false)));
        assert_eq!(text(repair, "unhealthy_after"), "5m");
        assert_eq!(int(repair, "max_unhealthy"), 1);
        assert_eq!(
            linux.get("labels"),
            Some(&Value::map([("tier", Value::from("web"))]))
        );
        assert_eq!(
            linux.get("taints"),
            Some(&Value::list([Value::from("gpu=true:NoSchedule")]))
        );
        assert_eq!(text(linux, "kubernetes_version"), "1.32.3");
        let nodes = items(linux, "nodes");
        assert_eq!(text(&nodes[0], "ip"), "10.0.0.21");
        assert_eq!(text(&nodes[0], "host"), "host-3");

        let windows = &listed[1];
        assert_eq!(windows.get("auto_scaling"), Some(&Value::Null));
        assert_eq!(windows.get("labels"), Some(&Value::map::<_, String>([])));
        assert_eq!(windows.get("kubernetes_version"), Some(&Value::Null));
        assert_eq!(int(windows, "max_pods"), 30);
        assert_eq!(text(windows, "provisioning_state"), "Failed");
        let conditions = items(windows, "conditions");
        assert_eq!(text(&conditions[0], "reason"), "VmBootFailed");
    }

    #[test]
    fn a_cluster_without_pools_lists_none() {
        let state = to_state("/clusters/empty", &[]);
        assert_fits(&NodePoolsDataSource.schema(), &state);
        assert_eq!(state.get("nodepools"), Some(&Value::list([])));
    }

    #[test]
    fn cluster_id_must_be_a_cluster_id() {
        assert_eq!(cluster_name("/clusters/prod"), Ok("prod"));
        for bad in [
            "prod",
            "/clusters/",
            "/clusters/a/nodepools/b",
            "/vnets/lan",
            "/clusters/..",
        ] {
            let rule = cluster_name(bad).unwrap_err();
            assert!(
                rule.contains(bad) && rule.contains("/clusters/NAME"),
                "{rule}"
            );
        }
        let mut diags = Diagnostics::new();
        NodePoolsDataSource.schema().validate(
            &Value::object([("cluster_id", Value::from("prod"))]),
            &mut diags,
        );
        assert!(diags.has_errors());
    }
}
