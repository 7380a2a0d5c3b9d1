//! Schema pieces several resources (and the data sources that mirror them)
//! share, each with its model: string sets, observed VMs, status
//! conditions, upgrade progress.

use hybrid_api::cluster::UpgradeProgress;
use hybrid_api::{Condition, Node};
use hybrid_cty::Type;

use crate::framework::Attr;
use crate::framework::schema::{Attribute, Kind, Nesting};

/// A set of strings (`admin_group_ids`), for groups where order means nothing.
pub(crate) fn string_set(name: &'static str) -> Attribute {
    Attribute {
        kind: Kind::Primitive(Type::Set(Box::new(Type::String))),
        ..Attribute::string(name)
    }
}

/// The description of a resource's `tags`, with their limits.
pub(crate) fn tags_description() -> String {
    use hybrid_api::limits::{MAX_TAG_KEY, MAX_TAG_VALUE, MAX_TAGS};
    format!(
        "Free-form tags: at most {MAX_TAGS}, keys of 1–{MAX_TAG_KEY} characters, values of at \
         most {MAX_TAG_VALUE}. Change in place."
    )
}

/// A computed list of objects the service observes.
pub(crate) fn observed_list(name: &'static str, attributes: Vec<Attribute>) -> Attribute {
    Attribute::nested_collection(name, Nesting::List, attributes).computed()
}

/// The attributes of one observed VM.
pub(crate) fn node_attributes() -> Vec<Attribute> {
    vec![
        Attribute::string("name")
            .computed()
            .description("VM name, also the Kubernetes node name."),
        Attribute::string("ip")
            .computed()
            .description("The VM's address on the vnet; null until it has one."),
        Attribute::string("host")
            .computed()
            .description("Physical host the VM runs on."),
        Attribute::string("state").computed().description(
            "`Pending`, `Running`, `Failed`, `Deleting`, or `NotReady` (its host is down).",
        ),
    ]
}

crate::model! {
    /// One observed VM.
    pub(crate) struct NodeModel {
        pub name: Attr<String>,
        pub ip: Attr<String>,
        pub host: Attr<String>,
        pub state: Attr<String>,
    }
}

impl NodeModel {
    /// A VM as the service reports it.
    pub(crate) fn of(node: &Node) -> Self {
        NodeModel {
            name: Attr::Known(node.name.clone()),
            ip: node.ip.clone().into(),
            host: Attr::Known(node.host.clone()),
            state: Attr::Known(node.state.clone()),
        }
    }
}

/// Observed VMs as state.
pub(crate) fn nodes(nodes: &[Node]) -> Attr<Vec<NodeModel>> {
    Attr::Known(nodes.iter().map(NodeModel::of).collect())
}

/// The attributes of one status condition.
pub(crate) fn condition_attributes() -> Vec<Attribute> {
    vec![
        Attribute::string("type")
            .computed()
            .description("Condition type, e.g. `Ready`."),
        Attribute::string("status")
            .computed()
            .description("`True`, `False` or `Unknown`."),
        Attribute::string("reason")
            .computed()
            .description("Machine-readable CamelCase reason."),
        Attribute::string("message")
            .computed()
            .description("Human-readable explanation."),
    ]
}

crate::model! {
    /// One status condition.
    pub(crate) struct ConditionModel {
        #[attr = "type"]
        pub kind: Attr<String>,
        pub status: Attr<String>,
        pub reason: Attr<String>,
        pub message: Attr<String>,
    }
}

impl ConditionModel {
    pub(crate) fn of(c: &Condition) -> Self {
        ConditionModel {
            kind: Attr::Known(c.type_.clone()),
            status: Attr::Known(c.status.clone()),
            reason: Attr::Known(c.reason.clone()),
            message: Attr::Known(c.message.clone()),
        }
    }
}

/// Status conditions as state.
pub(crate) fn conditions(conditions: &[Condition]) -> Attr<Vec<ConditionModel>> {
    Attr::Known(conditions.iter().map(ConditionModel::of).collect())
}

/// `upgrade`: how far a rolling Kubernetes upgrade has come; null when none
/// is under way.
pub(crate) fn upgrade_attribute(over: &str) -> Attribute {
    Attribute::nested(
        "upgrade",
        vec![
            Attribute::string("target_version")
                .computed()
                .description("The version the VMs are being moved to."),
            Attribute::number("nodes_total")
                .computed()
                .description("VMs the upgrade replaces (load balancers are not replaced)."),
            Attribute::number("nodes_done")
                .computed()
                .description("Of those, how many run `target_version`; only grows."),
            Attribute::string("node_in_flight")
                .computed()
                .description("The VM being replaced right now; null between replacements."),
        ],
    )
    .computed()
    .description(format!(
        "Progress of a rolling Kubernetes upgrade over {over}, e.g. 2 of 5 VMs on \
         `1.33.1` with one being replaced; null when every VM runs the cluster's version. \
         Shown while an upgrade runs (the `hybrid_cluster`/`hybrid_nodepools` data sources, \
         a refresh) or after one stopped half-way."
    ))
}

crate::model! {
    /// `upgrade`.
    pub(crate) struct UpgradeModel {
        pub target_version: Attr<String>,
        pub nodes_total: Attr<i64>,
        pub nodes_done: Attr<i64>,
        pub node_in_flight: Attr<String>,
    }
}

/// An upgrade's progress as state (null when there is none).
pub(crate) fn upgrade(progress: Option<&UpgradeProgress>) -> Attr<UpgradeModel> {
    progress
        .map(|u| UpgradeModel {
            target_version: Attr::Known(u.target_version.clone()),
            nodes_total: Attr::Known(i64::from(u.nodes_total)),
            nodes_done: Attr::Known(i64::from(u.nodes_done)),
            node_in_flight: u.node_in_flight.clone().into(),
        })
        .into()
}
