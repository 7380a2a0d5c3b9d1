//! `hybrid_nodepool`: a group of identical worker VMs of one OS in a
//! cluster.
//!
//! In place: `node_count`, `auto_scaling`, `auto_repair`, `labels`, `taints`. Everything
//! else replaces the pool. While `auto_scaling` is set the service owns
//! `node_count`: it is planned as the service last reported it and never
//! sent, so it never shows as drift. The plan asks the service to admit
//! creates and scales (`?dry_run=true`), so IP exhaustion, host capacity and
//! limits fail `terraform plan`, not the apply.

use std::collections::BTreeMap;
use std::time::Duration;

use hybrid_api::Operation;
use hybrid_api::nodepool::{
    self, AutoRepair, AutoScaling, DEFAULT_MAX_PODS, DEFAULT_NODE_VM_SIZE, MAX_NODES_PER_POOL,
    parse_nodepool_id,
};
use hybrid_api::{NodePool, NodePoolSpec, OsType, cluster, nodepool_id};
use hybrid_cty::{Type, Value};

use super::attributes::{self, NodeModel, UpgradeModel};
use super::lifecycle::{Managed, managed_resource};
use super::{dry_run, following, planning};
use crate::client::{Accepted, ClientError, HostClient, Put};
use crate::framework::model::{self, Attr, ToValue};
use crate::framework::schema::Attribute;
use crate::framework::values::set;
use crate::framework::{AttrPath, Diagnostics, PlanContext, Schema, timeouts, validators};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// What work on the pool's nodes (its own, or its cluster's upgrade) may
/// change besides the spec.
const POOL_OBSERVED: &[&str] = &["nodes", "kubernetes_version", "upgrade"];

pub struct NodePoolResource;

managed_resource!(NodePoolResource);

impl Managed for NodePoolResource {
    type Object = NodePool;
    type Model = NodePoolModel;
    type Create = ((String, String), NodePoolSpec);
    type Update = NodePoolSpec;
    const TYPE_NAME: &'static str = "hybrid_nodepool";
    const KIND: &'static str = "node pool";
    const ID_FORMAT: &'static str = "/clusters/<cluster>/nodepools/<name>";
    const ID_EXAMPLE: &'static str = "/clusters/prod-a/nodepools/linux1";
    const DEFAULT_TIMEOUT: Duration = DEFAULT_TIMEOUT;
    const INCOMPLETE_PLAN_HINT: &'static str = " (or cluster_id is not /clusters/<name>)";

    fn schema(&self) -> Schema {
        Schema::new(
            "A node pool: identical worker VMs of one OS in a cluster, with a fixed \
             `node_count` or autoscaler bounds.",
            vec![
                Attribute::string("id")
                    .computed()
                    .use_state_for_unknown()
                    .description(
                        "The pool's path in the host API, `/clusters/<cluster>/nodepools/<name>`; \
                         also the import id.",
                    ),
                Attribute::string("cluster_id")
                    .required()
                    .requires_replace()
                    .description(
                        "Id of the cluster, `/clusters/<name>`. Changing it replaces the pool.",
                    ),
                Attribute::string("name")
                    .required()
                    .requires_replace()
                    .validator(validators::string_rule(|name| {
                        nodepool::validate_name(name).map_err(|e| e.message)
                    }))
                    .description(
                        "Name of the pool: 3–12 lower-case letters or digits, starting with a \
                         letter (`^[a-z][a-z0-9]{2,11}$`). Node VMs are named `<cluster>-<pool>-<n>`. \
                         Changing it replaces the pool.",
                    ),
                Attribute::string("os_type")
                    .required()
                    .requires_replace()
                    .validator(validators::one_of(&["linux", "windows"]))
                    .description(
                        "Node operating system: `linux` or `windows`. Changing it replaces the pool.",
                    ),
                Attribute::string("os_sku")
                    .optional_computed()
                    .use_state_for_unknown()
                    .requires_replace()
                    .description(format!(
                        "OS image: `{}` for Linux, `{}` for Windows. Left out, the OS type's \
                         default (`{}` / `{}`). Changing it replaces the pool.",
                        nodepool::LINUX_SKUS.join("`, `"),
                        nodepool::WINDOWS_SKUS.join("`, `"),
                        nodepool::DEFAULT_LINUX_SKU,
                        nodepool::DEFAULT_WINDOWS_SKU,
                    )),
                Attribute::string("vm_size")
                    .default_value(DEFAULT_NODE_VM_SIZE)
                    .requires_replace()
                    .description(format!(
                        "VM size of the nodes, from the service's catalogue (see the \
                         `hybrid_vm_sizes` data source). Defaults to `{DEFAULT_NODE_VM_SIZE}`. \
                         Changing it replaces the pool."
                    )),
                Attribute::number("node_count")
                    .optional_computed()
                    .validator(validators::int_between(1, i64::from(MAX_NODES_PER_POOL)))
                    .description(format!(
                        "Number of nodes, 1–{MAX_NODES_PER_POOL} (and at most 200 over all pools \
                         of a cluster). Defaults to 1. Changes in place: a scale-up takes new \
                         addresses from the vnet, a scale-down releases them. Must be left out \
                         while `auto_scaling` is set: the service then owns it, and it is \
                         reported here without ever showing as drift."
                    )),
                Attribute::nested(
                    "auto_scaling",
                    vec![
                        Attribute::number("min_count")
                            .required()
                            .validator(validators::int_between(1, i64::from(MAX_NODES_PER_POOL)))
                            .description(format!(
                                "Fewest nodes, 1–{MAX_NODES_PER_POOL}."
                            )),
                        Attribute::number("max_count")
                            .required()
                            .validator(validators::int_between(1, i64::from(MAX_NODES_PER_POOL)))
                            .description(format!(
                                "Most nodes, `min_count`–{MAX_NODES_PER_POOL}."
                            )),
                    ],
                )
                .optional()
                .description(
                    "Autoscaler bounds. While set, the service owns `node_count` and keeps it \
                     within them. Changes in place.",
                ),
                Attribute::nested("auto_repair", auto_repair_attributes())
                    .default_value(auto_repair_model(&AutoRepair::default()).to_value())
                    .description(
                        "Node auto-repair. When enabled, the service replaces a node whose VM \
                         failed, or whose host has been down longer than `unhealthy_after`, \
                         with a new VM on another up host (a new name and address; the pool \
                         keeps its node count), never more than `max_unhealthy` at once. Each \
                         repair is a `nodepool.repair` operation with its reason, in the audit \
                         log. Left out, or any setting left out, the default applies (disabled). \
                         Changes in place.",
                    ),
                Attribute::map("labels", Type::String)
                    .optional()
                    .description(
                        "Kubernetes labels on every node: at most 64, with Kubernetes' rules \
                         (key: optional DNS-subdomain prefix of at most 253 characters and `/`, \
                         then a name of 1–63 `[A-Za-z0-9-_.]`; value: at most 63 of the same). \
                         Change in place.",
                    ),
                Attribute::list("taints", Type::String)
                    .optional()
                    .description(
                        "Kubernetes taints on every node, `key=value:Effect` or `key:Effect` \
                         (Effect: `NoSchedule`, `PreferNoSchedule`, `NoExecute`), at most 32; \
                         keys and values follow the label rules. Change in place.",
                    ),
                Attribute::number("max_pods")
                    .default_value(i64::from(DEFAULT_MAX_PODS))
                    .requires_replace()
                    .validator(validators::int_between(10, 250))
                    .description(format!(
                        "Most pods per node, 10–250. Defaults to {DEFAULT_MAX_PODS}. Changing it \
                         replaces the pool."
                    )),
                Attribute::string("kubernetes_version")
                    .computed()
                    .use_state_for_unknown()
                    .description(
                        "Kubernetes version the pool's nodes run; follows the cluster's \
                         (the oldest node's, during an upgrade). When the cluster's \
                         `kubernetes_version` changes in the same plan, the pool shows as an \
                         in-place update with this and `nodes` known after apply (see the \
                         Upgrading Kubernetes guide).",
                    ),
                attributes::observed_list("nodes", attributes::node_attributes())
                    .use_state_for_unknown()
                    .description("The pool's VMs."),
                attributes::upgrade_attribute("the pool's nodes"),
                Attribute::string("provisioning_state").computed().description(
                    "Outcome of the last operation on the pool (`Succeeded`, `Failed`, …). \
                     When it is not `Succeeded`, the next plan proposes an update that \
                     re-drives the work.",
                ),
                timeouts::attribute(DEFAULT_TIMEOUT),
            ],
        )
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        let model: NodePoolModel = model::read(config);
        if !model.node_count.is_null()
            && !model.node_count.is_unknown()
            && !model.auto_scaling.is_null()
        {
            diags.error_at(
                AttrPath::attr("node_count"),
                "Conflicting node_count",
                format!(
                    "node_count is {} while auto_scaling is set: the service owns node_count \
                     while auto_scaling is set and keeps it between auto_scaling.min_count and \
                     auto_scaling.max_count. Remove node_count, or remove auto_scaling to fix \
                     the count.",
                    model
                        .node_count
                        .to_value()
                        .as_number()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                ),
            );
        }
        if let Some(spec) = spec_for_rules(&model) {
            planning::report_rules(
                nodepool::validate_spec(&spec),
                config,
                &[
                    &["os_type", "os_sku"],
                    &[
                        "node_count",
                        "auto_scaling.min_count",
                        "auto_scaling.max_count",
                    ],
                ],
                diags,
            );
        }
    }

    async fn modify_plan(
        &self,
        ctx: PlanContext<'_, HostClient>,
        planned: &mut Value,
        diags: &mut Diagnostics,
    ) {
        let cluster_version = model::read::<NodePoolModel>(ctx.config)
            .cluster_id
            .known()
            .and_then(|id| following::version_of(id));
        plan_pool(ctx.prior, ctx.config, planned, cluster_version.as_deref());
        let Some((client, put)) = dry_run::put(&ctx, planned, &self.schema()) else {
            return;
        };
        let (prior, plan): (NodePoolModel, NodePoolModel) =
            (model::read(ctx.prior), model::read(planned));
        let (Some((cluster, name)), Some(spec)) = (names_of(&plan), spec_from(&plan)) else {
            return;
        };
        if put == Put::Upsert && same_spec(&prior, &plan) {
            return;
        }
        let answer = client.dry_run_nodepool(&cluster, &name, &spec, put).await;
        let summary = format!(
            "The host management service would refuse node pool {name:?} of cluster {cluster:?}"
        );
        dry_run::outcome(answer, put == Put::Create, &summary, &self.schema(), diags);
    }

    fn is_id(id: &str) -> bool {
        names_in(id).is_some()
    }

    async fn fetch(client: &HostClient, id: &str) -> Result<Option<NodePool>, ClientError> {
        match names_in(id) {
            Some((cluster, pool)) => client.get_nodepool(cluster, pool).await,
            None => Ok(None),
        }
    }

    fn to_state(object: &NodePool, previous: &NodePoolModel) -> NodePoolModel {
        to_state(object, previous)
    }

    fn planned_id(planned: &NodePoolModel) -> Option<String> {
        names_of(planned).map(|(cluster, name)| nodepool_id(&cluster, &name))
    }

    fn state_id(state: &NodePoolModel) -> Option<String> {
        state.id.known().filter(|id| Self::is_id(id)).cloned()
    }

    /// The cluster's and the pool's names, and the pool's spec.
    fn create_request(planned: &NodePoolModel) -> Option<((String, String), NodePoolSpec)> {
        Some((names_of(planned)?, spec_from(planned)?))
    }

    fn update_request(_prior: &NodePoolModel, planned: &NodePoolModel) -> Option<NodePoolSpec> {
        spec_from(planned)
    }

    fn same_spec(prior: &NodePoolModel, planned: &NodePoolModel) -> bool {
        same_spec(prior, planned)
    }

    async fn create(
        client: &HostClient,
        ((cluster, name), spec): &((String, String), NodePoolSpec),
    ) -> Result<Accepted<NodePool>, ClientError> {
        client.put_nodepool(cluster, name, spec, Put::Create).await
    }

    async fn update(
        client: &HostClient,
        id: &str,
        spec: &NodePoolSpec,
    ) -> Result<Accepted<NodePool>, ClientError> {
        let (cluster, name) = names_in(id).unwrap_or_default();
        client.put_nodepool(cluster, name, spec, Put::Upsert).await
    }

    async fn delete(client: &HostClient, id: &str) -> Result<Option<Operation>, ClientError> {
        let (cluster, name) = names_in(id).unwrap_or_default();
        client.delete_nodepool(cluster, name).await
    }
}

/// `(cluster, pool)` names in a node pool id, when both are valid names.
fn names_in(id: &str) -> Option<(&str, &str)> {
    parse_nodepool_id(id).filter(|(cluster, pool)| {
        cluster::validate_name(cluster).is_ok() && nodepool::validate_name(pool).is_ok()
    })
}

crate::model! {
    /// A node pool's configuration, plan or state: the schema's attributes.
    pub(crate) struct NodePoolModel {
        pub id: Attr<String>,
        pub cluster_id: Attr<String>,
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
        pub nodes: Attr<Vec<NodeModel>>,
        pub upgrade: Attr<UpgradeModel>,
        pub provisioning_state: Attr<String>,
        pub timeouts: Attr<Value>,
    }
}

crate::model! {
    /// `auto_repair`: node auto-repair settings.
    pub(crate) struct AutoRepairModel {
        pub enabled: Attr<bool>,
        pub unhealthy_after: Attr<String>,
        pub max_unhealthy: Attr<i64>,
    }
}

crate::model! {
    /// `auto_scaling`: the autoscaler's bounds.
    pub(crate) struct AutoScalingModel {
        pub min_count: Attr<i64>,
        pub max_count: Attr<i64>,
    }
}

/// The `auto_repair` attributes, each with its default.
fn auto_repair_attributes() -> Vec<Attribute> {
    let d = AutoRepair::default();
    vec![
        Attribute::bool("enabled")
            .default_value(d.enabled)
            .description("Replace unhealthy nodes. Defaults to false (opt-in)."),
        Attribute::string("unhealthy_after")
            .default_value(d.unhealthy_after.as_str())
            .description(format!(
                "How long a node's host must be down before the node is replaced, 10s to 24h: \
                 a whole number and one unit, `s`, `m` or `h`. A failed VM is replaced at \
                 once. Defaults to `{}`.",
                d.unhealthy_after
            )),
        Attribute::number("max_unhealthy")
            .default_value(i64::from(d.max_unhealthy))
            .validator(validators::int_between(1, i64::from(MAX_NODES_PER_POOL)))
            .description(format!(
                "Most of the pool's nodes under repair at once, 1–{MAX_NODES_PER_POOL}. \
                 Defaults to {}.",
                d.max_unhealthy
            )),
    ]
}

/// The `auto_repair` block of the service's settings (also the block's
/// planned default).
fn auto_repair_model(r: &AutoRepair) -> AutoRepairModel {
    AutoRepairModel {
        enabled: Attr::Known(r.enabled),
        unhealthy_after: Attr::Known(r.unhealthy_after.clone()),
        max_unhealthy: Attr::Known(i64::from(r.max_unhealthy)),
    }
}

/// The settings of an `auto_repair` block: defaults for what is null or
/// unknown (callers that send it check it is fully known first).
fn auto_repair_from(value: &Attr<AutoRepairModel>) -> AutoRepair {
    let d = AutoRepair::default();
    let given = value.known().cloned().unwrap_or_default();
    AutoRepair {
        enabled: given.enabled.known().copied().unwrap_or(d.enabled),
        unhealthy_after: given
            .unhealthy_after
            .into_known()
            .unwrap_or(d.unhealthy_after),
        max_unhealthy: given
            .max_unhealthy
            .known()
            .map(|&n| u32::try_from(n).unwrap_or(u32::MAX))
            .unwrap_or(d.max_unhealthy),
    }
}

/// A known count that fits a `u32`.
fn count(value: &Attr<i64>) -> Option<u32> {
    value.known().and_then(|&n| u32::try_from(n).ok())
}

/// The pool-specific planning after the generic pass:
///
/// - `os_sku` left out: the OS type's default on create (the prior value,
///   kept by use-state-for-unknown, on update);
/// - `node_count` left out: with `auto_scaling`, what the service reported
///   (clamped to new bounds, as the service will), unknown on create;
///   without, 1;
/// - a count change makes `nodes` (and the oldest node's version) unknown;
/// - so does the cluster's upgrade: when this process planned or applied
///   the pool's cluster at `cluster_version` and the pool's nodes are not
///   all on it yet, the upgrade replaces them (see [`following`]), so the
///   pool updates in place with both known after apply;
/// - unfinished work is re-driven.
fn plan_pool(
    prior_value: &Value,
    config_value: &Value,
    planned_value: &mut Value,
    cluster_version: Option<&str>,
) {
    planning::keep_succeeded_state(prior_value, planned_value);
    let prior: NodePoolModel = model::read(prior_value);
    let config: NodePoolModel = model::read(config_value);
    let mut planned: NodePoolModel = model::read(planned_value);
    if planned.os_sku.is_unknown()
        && let Some(os) = planned.os_type.known().and_then(|s| OsType::parse(s))
    {
        planned.os_sku = Attr::Known(os.default_sku().to_string());
    }
    if config.node_count.is_null() {
        planned.node_count = match &config.auto_scaling {
            Attr::Null => Attr::Known(1),
            Attr::Known(bounds) => match (
                count(&prior.node_count),
                count(&bounds.min_count),
                count(&bounds.max_count),
            ) {
                (Some(current), Some(min), Some(max)) => {
                    Attr::Known(i64::from(current.clamp(min, max.max(min))))
                }
                _ => Attr::Unknown,
            },
            _ => Attr::Unknown,
        };
    }
    if !prior_value.is_null()
        && !same_spec(&prior, &planned)
        && planned.node_count != prior.node_count
    {
        planned.nodes = Attr::Unknown;
        planned.kubernetes_version = Attr::Unknown;
    }
    // Only an upgrade moves the upgrade's progress: the cluster's (below)
    // or re-driven unfinished work; any other change plans it as it was,
    // and a new pool's nodes start on the version they are created at.
    planned.upgrade = match prior_value.is_null() {
        true => Attr::Null,
        false => prior.upgrade.clone(),
    };
    *planned_value = planned.to_value();
    if prior_value.is_null() {
        return;
    }
    if same_spec(&prior, &planned) {
        planning::keep_prior_values(prior_value, config_value, planned_value);
    }
    if let (Some(target), Some(now)) = (cluster_version, prior.kubernetes_version.known())
        && now != target
    {
        for observed in POOL_OBSERVED {
            set(planned_value, observed, Value::Unknown);
        }
    }
    planning::redrive_unfinished(prior_value, planned_value, POOL_OBSERVED);
}

/// `(cluster, pool)` names from a plan's `cluster_id` and `name`.
fn names_of(pool: &NodePoolModel) -> Option<(String, String)> {
    let cluster = cluster::parse_cluster_id(pool.cluster_id.known()?)?.to_string();
    Some((cluster, pool.name.known()?.clone()))
}

/// Whether two plans or states ask the same of the service.
fn same_spec(a: &NodePoolModel, b: &NodePoolModel) -> bool {
    let spec = spec_from(a);
    spec.is_some() && spec == spec_from(b)
}

/// The API spec from a plan or state; `None` when a required part is not
/// known. With `auto_scaling`, `node_count` is never sent: the service
/// owns it.
fn spec_from(pool: &NodePoolModel) -> Option<NodePoolSpec> {
    let auto_scaling = match &pool.auto_scaling {
        Attr::Null => None,
        Attr::Known(bounds) => Some(AutoScaling {
            min_count: count(&bounds.min_count)?,
            max_count: count(&bounds.max_count)?,
        }),
        _ => return None,
    };
    let node_count = match auto_scaling {
        Some(_) => None,
        None => Some(count(&pool.node_count)?),
    };
    if !pool.labels.is_fully_known()
        || !pool.taints.is_fully_known()
        || !pool.auto_repair.is_fully_known()
    {
        return None;
    }
    Some(NodePoolSpec {
        os_type: OsType::parse(pool.os_type.known()?)?,
        os_sku: pool.os_sku.known().cloned(),
        vm_size: pool.vm_size.known().cloned(),
        node_count,
        auto_scaling,
        labels: pool.labels.known().cloned().unwrap_or_default(),
        taints: pool.taints.known().cloned().unwrap_or_default(),
        max_pods: count(&pool.max_pods),
        auto_repair: Some(auto_repair_from(&pool.auto_repair)),
    })
}

/// A spec for the shared rules from a configuration that may hold unknown
/// values (placeholders stand in; `report_rules` drops their findings).
/// `None` while the OS type, which the SKU rule needs, is not known.
fn spec_for_rules(config: &NodePoolModel) -> Option<NodePoolSpec> {
    let os_type = OsType::parse(config.os_type.known()?)?;
    let number = |value: &Attr<i64>| value.known().map(|&n| u32::try_from(n).unwrap_or(u32::MAX));
    let auto_scaling = config.auto_scaling.known().map(|bounds| AutoScaling {
        min_count: number(&bounds.min_count).unwrap_or(1),
        max_count: number(&bounds.max_count).unwrap_or(MAX_NODES_PER_POOL),
    });
    Some(NodePoolSpec {
        os_type,
        os_sku: config.os_sku.known().cloned(),
        vm_size: None,
        node_count: number(&config.node_count),
        auto_scaling,
        labels: config
            .labels
            .entries()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.into_known().unwrap_or_else(|| "placeholder".into())))
            .collect(),
        taints: config
            .taints
            .items()
            .unwrap_or_default()
            .into_iter()
            .map(|t| {
                t.into_known()
                    .unwrap_or_else(|| "placeholder:NoSchedule".into())
            })
            .collect(),
        max_pods: number(&config.max_pods),
        auto_repair: Some(auto_repair_from(&config.auto_repair)),
    })
}

/// The Terraform state of a node pool: the one conversion from the
/// service's pool, which the `hybrid_nodepools` data source builds on too.
pub(crate) fn to_state(pool: &NodePool, previous: &NodePoolModel) -> NodePoolModel {
    let spec = &pool.spec;
    let count = |n: Option<u32>| n.map(i64::from).into();
    NodePoolModel {
        id: Attr::Known(pool.id.clone()),
        cluster_id: Attr::Known(pool.cluster_id.clone()),
        name: Attr::Known(pool.name.clone()),
        os_type: Attr::Known(spec.os_type.as_str().to_string()),
        os_sku: spec.os_sku.clone().into(),
        vm_size: spec.vm_size.clone().into(),
        node_count: count(spec.node_count),
        auto_scaling: spec
            .auto_scaling
            .map(|a| AutoScalingModel {
                min_count: Attr::Known(i64::from(a.min_count)),
                max_count: Attr::Known(i64::from(a.max_count)),
            })
            .into(),
        auto_repair: Attr::Known(auto_repair_model(
            &spec.auto_repair.clone().unwrap_or_default(),
        )),
        labels: model::collection(spec.labels.clone(), &previous.labels),
        taints: model::collection(spec.taints.clone(), &previous.taints),
        max_pods: count(spec.max_pods),
        kubernetes_version: pool.status.kubernetes_version.clone().into(),
        nodes: attributes::nodes(&pool.status.nodes),
        upgrade: attributes::upgrade(pool.status.upgrade.as_ref()),
        provisioning_state: Attr::Known(pool.provisioning_state.as_str().to_string()),
        timeouts: previous.timeouts.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::framework::plan::plan;
    use crate::framework::values::set;

    /// The spec sent for a plan or state value.
    fn spec(value: &Value) -> Option<NodePoolSpec> {
        spec_from(&model::read(value))
    }

    /// The state value of `pool` after `previous`.
    fn state(pool: &NodePool, previous: &Value) -> Value {
        to_state(pool, &model::read(previous)).to_value()
    }

    fn object(count: u32, auto_scaling: Option<(u32, u32)>) -> NodePool {
        let nodes: Vec<_> = (1..=count)
            .map(|i| {
                serde_json::json!({"name": format!("prod-a-linux1-{i}"), "ip": format!("10.0.0.{}", 10 + i),
                    "host": "host-1", "state": "Running", "kubernetes_version": "1.31.7",
                    "vm_size": "Standard_K8S3_v1"})
            })
            .collect();
        let mut json = serde_json::json!({
            "id": "/clusters/prod-a/nodepools/linux1",
            "cluster_id": "/clusters/prod-a",
            "name": "linux1",
            "etag": "1",
            "os_type": "linux",
            "os_sku": "CBLMariner",
            "vm_size": "Standard_K8S3_v1",
            "node_count": count,
            "max_pods": 110,
            "auto_repair": {"enabled": false, "unhealthy_after": "5m", "max_unhealthy": 1},
            "provisioning_state": "Succeeded",
            "status": {"conditions": [], "kubernetes_version": "1.31.7", "nodes": nodes},
            "created_at": "t",
            "updated_at": "t"
        });
        if let Some((min, max)) = auto_scaling {
            json["auto_scaling"] = serde_json::json!({"min_count": min, "max_count": max});
        }
        serde_json::from_value(json).unwrap()
    }

    fn bounds(min: i64, max: i64) -> Value {
        Value::object([
            ("min_count", Value::from(min)),
            ("max_count", Value::from(max)),
        ])
    }

    fn config(extra: &[(&str, Value)]) -> Value {
        let schema = NodePoolResource.schema();
        let mut attrs: BTreeMap<String, Value> = schema
            .attributes
            .iter()
            .map(|a| (a.name.to_string(), Value::Null))
            .collect();
        attrs.insert("cluster_id".into(), "/clusters/prod-a".into());
        attrs.insert("name".into(), "linux1".into());
        attrs.insert("os_type".into(), "linux".into());
        for (k, v) in extra {
            attrs.insert(k.to_string(), v.clone());
        }
        Value::Object(attrs)
    }

    /// Extra configuration and the replacement it must (or must not) force.
    type Case = (Vec<(&'static str, Value)>, Vec<AttrPath>);

    fn plan_for(prior: &Value, config: &Value) -> crate::framework::plan::Plan {
        plan_following(prior, config, None)
    }

    /// [`plan_for`] when this process planned the cluster at `cluster_version`.
    fn plan_following(
        prior: &Value,
        config: &Value,
        cluster_version: Option<&str>,
    ) -> crate::framework::plan::Plan {
        let schema = NodePoolResource.schema();
        let proposed =
            crate::framework::plan::proposed_new_state(&schema.attributes, prior, config);
        let mut planned = plan(&schema, prior, config, &proposed);
        plan_pool(prior, config, &mut planned.planned, cluster_version);
        planned
    }

    #[test]
    fn a_cluster_upgrade_updates_the_pool_in_place_with_version_and_nodes_unknown() {
        let cfg = config(&[]);
        // object() runs 1.31.7.
        let prior = state(&object(1, None), &plan_for(&Value::Null, &cfg).planned);
        let upgrading = plan_following(&prior, &cfg, Some("1.32.3"));
        assert!(upgrading.requires_replace.is_empty());
        assert_eq!(
            upgrading.planned.get("kubernetes_version"),
            Some(&Value::Unknown)
        );
        assert_eq!(upgrading.planned.get("nodes"), Some(&Value::Unknown));
        // Everything the configuration sets stays as it was.
        for known in [
            "node_count",
            "os_sku",
            "vm_size",
            "provisioning_state",
            "id",
        ] {
            assert_eq!(upgrading.planned.get(known), prior.get(known), "{known}");
        }
        // The pool is on the cluster's version, or the cluster was not
        // planned in this process: nothing to do.
        assert_eq!(plan_following(&prior, &cfg, Some("1.31.7")).planned, prior);
        assert_eq!(plan_following(&prior, &cfg, None).planned, prior);
        // A create has no version to compare.
        let created = plan_following(&Value::Null, &cfg, Some("1.32.3"));
        assert_eq!(
            created.planned.get("kubernetes_version"),
            Some(&Value::Unknown)
        );
    }

    #[test]
    fn defaults_never_show_a_diff_after_apply() {
        let cfg = config(&[]);
        let created = plan_for(&Value::Null, &cfg);
        let planned = &created.planned;
        assert_eq!(planned.get("node_count"), Some(&Value::from(1i64)));
        assert_eq!(planned.get("os_sku"), Some(&Value::from("CBLMariner")));
        assert_eq!(
            planned.get("vm_size"),
            Some(&Value::from("Standard_K8S3_v1"))
        );
        assert_eq!(planned.get("max_pods"), Some(&Value::from(110i64)));
        assert_eq!(planned.get("nodes"), Some(&Value::Unknown));
        // The create sends what the service resolves.
        let sent = spec(planned).unwrap();
        assert_eq!(sent, object(1, None).spec);

        let prior = state(&object(1, None), planned);
        let again = plan_for(&prior, &cfg);
        assert_eq!(again.planned, prior);
        assert!(again.requires_replace.is_empty());

        // A Windows pool gets the Windows default SKU.
        let windows = plan_for(&Value::Null, &config(&[("os_type", "windows".into())]));
        assert_eq!(
            windows.planned.get("os_sku"),
            Some(&Value::from("Windows2022"))
        );
    }

    /// An `auto_repair` block with `set` and every other setting left out.
    fn repair(set: &[(&str, Value)]) -> Value {
        let mut block: BTreeMap<String, Value> = auto_repair_attributes()
            .iter()
            .map(|a| (a.name.to_string(), Value::Null))
            .collect();
        for (k, v) in set {
            assert!(block.contains_key(*k), "{k}");
            block.insert(k.to_string(), v.clone());
        }
        Value::Object(block)
    }

    #[test]
    fn auto_repair_defaults_plan_quietly_and_change_in_place() {
        // Left out: the planned block is the service's defaults.
        let created = plan_for(&Value::Null, &config(&[]));
        let block = created.planned.get("auto_repair").unwrap();
        assert_eq!(block.get("enabled"), Some(&Value::from(false)));
        assert_eq!(block.get("unhealthy_after"), Some(&Value::from("5m")));
        assert_eq!(block.get("max_unhealthy"), Some(&Value::from(1i64)));

        // Enabled with one setting: the others keep their defaults, in place.
        let three = ("node_count", Value::from(3i64));
        let prior = state(&object(3, None), &config(std::slice::from_ref(&three)));
        let on = config(&[
            three,
            (
                "auto_repair",
                repair(&[("enabled", true.into()), ("unhealthy_after", "30s".into())]),
            ),
        ]);
        let changed = plan_for(&prior, &on);
        assert!(changed.requires_replace.is_empty());
        let sent = spec(&changed.planned).unwrap().auto_repair.unwrap();
        assert_eq!(
            sent,
            AutoRepair {
                enabled: true,
                unhealthy_after: "30s".into(),
                max_unhealthy: 1
            }
        );
        // Only the block changes: the nodes are kept as they are.
        assert_eq!(changed.planned.get("nodes"), prior.get("nodes"));

        // Applied, the same configuration plans exactly the state.
        let mut applied = object(3, None);
        applied.spec.auto_repair = Some(sent);
        let applied_state = state(&applied, &changed.planned);
        let again = plan_for(&applied_state, &on);
        assert_eq!(again.planned, applied_state);

        // Imported (no previous state): the block is the service's.
        let imported = state(&applied, &Value::Null);
        assert_eq!(
            imported.get("auto_repair"),
            applied_state.get("auto_repair")
        );
    }

    #[test]
    fn auto_repair_rules_report_at_the_setting() {
        let mut diags = Diagnostics::new();
        NodePoolResource.validate(
            &config(&[("auto_repair", repair(&[("unhealthy_after", "5s".into())]))]),
            &mut diags,
        );
        let found: Vec<_> = diags
            .iter()
            .map(|d| (d.path.clone(), d.detail.clone()))
            .collect();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].0,
            Some(AttrPath::attr("auto_repair").then_attr("unhealthy_after"))
        );
        assert!(
            found[0].1.contains("\"5s\"") && found[0].1.contains("between 10s and 24h"),
            "{}",
            found[0].1
        );
        // An unknown duration is judged at apply time, not planned on.
        let mut diags = Diagnostics::new();
        NodePoolResource.validate(
            &config(&[(
                "auto_repair",
                repair(&[("unhealthy_after", Value::Unknown)]),
            )]),
            &mut diags,
        );
        assert!(diags.is_empty());
    }

    #[test]
    fn auto_scaled_node_count_is_owned_by_the_service() {
        let cfg = config(&[("auto_scaling", bounds(2, 5))]);
        // Create: the count is the service's to choose, and is not sent.
        let created = plan_for(&Value::Null, &cfg);
        assert_eq!(created.planned.get("node_count"), Some(&Value::Unknown));
        let mut resolved = created.planned.clone();
        set(&mut resolved, "node_count", Value::from(2i64));
        assert_eq!(spec(&resolved).unwrap().node_count, None);

        // The autoscaler went to 4: no drift, no diff.
        let prior = state(&object(4, Some((2, 5))), &created.planned);
        let again = plan_for(&prior, &cfg);
        assert_eq!(again.planned, prior);

        // A label change keeps the service's count and the nodes.
        let labels = Value::Map([("tier".to_string(), Value::from("web"))].into());
        let changed = plan_for(
            &prior,
            &config(&[("auto_scaling", bounds(2, 5)), ("labels", labels)]),
        );
        assert_eq!(changed.planned.get("node_count"), Some(&Value::from(4i64)));
        assert_eq!(changed.planned.get("nodes"), prior.get("nodes"));
        assert_eq!(spec(&changed.planned).unwrap().node_count, None);

        // Lowering max_count below the count clamps it, as the service will,
        // and the nodes change.
        let lowered = plan_for(&prior, &config(&[("auto_scaling", bounds(2, 3))]));
        assert_eq!(lowered.planned.get("node_count"), Some(&Value::from(3i64)));
        assert_eq!(lowered.planned.get("nodes"), Some(&Value::Unknown));

        // Turning auto-scaling off with no count goes back to the default 1.
        let off = plan_for(&prior, &config(&[]));
        assert_eq!(off.planned.get("node_count"), Some(&Value::from(1i64)));
        assert_eq!(spec(&off.planned).unwrap().node_count, Some(1));
    }

    #[test]
    fn setting_node_count_with_auto_scaling_is_a_plan_error_at_node_count() {
        let mut diags = Diagnostics::new();
        NodePoolResource.validate(
            &config(&[
                ("auto_scaling", bounds(2, 5)),
                ("node_count", Value::from(3i64)),
            ]),
            &mut diags,
        );
        assert_eq!(diags.0.len(), 1, "{diags:?}");
        assert_eq!(diags.0[0].path, Some(AttrPath::attr("node_count")));
        assert!(diags.0[0].detail.contains("service owns node_count"));
        // An unknown count may still resolve to null: no error yet.
        let mut diags = Diagnostics::new();
        NodePoolResource.validate(
            &config(&[
                ("auto_scaling", bounds(2, 5)),
                ("node_count", Value::Unknown),
            ]),
            &mut diags,
        );
        assert!(diags.is_empty(), "{diags:?}");
    }

    #[test]
    fn scaling_is_in_place_and_makes_nodes_unknown() {
        let cfg = config(&[]);
        let prior = state(&object(1, None), &plan_for(&Value::Null, &cfg).planned);
        let scaled = plan_for(&prior, &config(&[("node_count", Value::from(3i64))]));
        assert!(scaled.requires_replace.is_empty());
        assert_eq!(scaled.planned.get("node_count"), Some(&Value::from(3i64)));
        assert_eq!(scaled.planned.get("nodes"), Some(&Value::Unknown));
        assert_eq!(
            scaled.planned.get("provisioning_state"),
            Some(&Value::from("Succeeded"))
        );
        assert_eq!(scaled.planned.get("os_sku"), prior.get("os_sku"));
    }

    #[test]
    fn an_unknown_cluster_id_stays_unknown_and_forces_replacement() {
        // The cluster is being replaced: its new id is unknown until the
        // apply. Planning the prior id would make the pool a no-op while the
        // apply deletes it with the old cluster.
        let cfg = config(&[]);
        let prior = state(&object(1, None), &plan_for(&Value::Null, &cfg).planned);
        let replaced = plan_for(&prior, &config(&[("cluster_id", Value::Unknown)]));
        assert_eq!(replaced.planned.get("cluster_id"), Some(&Value::Unknown));
        assert_eq!(
            replaced.requires_replace,
            vec![AttrPath::attr("cluster_id")]
        );
    }

    #[test]
    fn requires_replace_exactly_on_immutable_attributes() {
        let cfg = config(&[]);
        let prior = state(&object(1, None), &plan_for(&Value::Null, &cfg).planned);
        let cases: Vec<Case> = vec![
            (
                vec![("os_sku", "AzureLinux".into())],
                vec![AttrPath::attr("os_sku")],
            ),
            (
                vec![("vm_size", "Standard_D4s_v3".into())],
                vec![AttrPath::attr("vm_size")],
            ),
            (
                vec![("max_pods", Value::from(50i64))],
                vec![AttrPath::attr("max_pods")],
            ),
            (
                vec![("os_type", "windows".into())],
                vec![AttrPath::attr("os_type")],
            ),
            (
                vec![("cluster_id", "/clusters/other".into())],
                vec![AttrPath::attr("cluster_id")],
            ),
            (
                vec![("name", "linux2".into())],
                vec![AttrPath::attr("name")],
            ),
            (vec![("node_count", Value::from(5i64))], vec![]),
            (vec![("auto_scaling", bounds(1, 3))], vec![]),
            (
                vec![("taints", Value::list([Value::from("gpu=true:NoSchedule")]))],
                vec![],
            ),
        ];
        for (extra, want) in cases {
            let got = plan_for(&prior, &config(&extra)).requires_replace;
            assert_eq!(got, want, "{extra:?}");
        }
    }

    #[test]
    fn shared_rules_report_at_the_attribute() {
        let mut diags = Diagnostics::new();
        NodePoolResource.validate(
            &config(&[
                ("os_sku", "Windows2022".into()),
                (
                    "taints",
                    Value::list([Value::Unknown, Value::from("gpu=true:Sometimes")]),
                ),
            ]),
            &mut diags,
        );
        let paths: Vec<_> = diags.iter().map(|d| d.path.clone()).collect();
        assert_eq!(
            paths,
            vec![
                Some(AttrPath::attr("os_sku")),
                Some(AttrPath::attr("taints").then_index(1)),
            ]
        );
        // With the OS type unknown, the SKU cannot be judged.
        let mut diags = Diagnostics::new();
        NodePoolResource.validate(
            &config(&[
                ("os_type", Value::Unknown),
                ("os_sku", "Windows2022".into()),
            ]),
            &mut diags,
        );
        assert!(diags.is_empty());
    }

    #[test]
    fn import_ids_are_checked() {
        assert!(NodePoolResource::is_id("/clusters/prod-a/nodepools/linux1"));
        for bad in [
            "/clusters/prod-a/nodepools/Linux1",
            "/clusters/prod-a",
            "/clusters//nodepools/linux1",
            "prod-a/linux1",
        ] {
            assert!(!NodePoolResource::is_id(bad), "{bad}");
        }
    }
}
