//! Schema pieces and models several data sources share: observed nodes and
//! status conditions (the resources' models of them, extended), resource
//! amounts, and the "not found" message. A data source has no configuration
//! to keep consistent with, so empty collections are shown empty, not null.

use hybrid_api::Condition;
use hybrid_api::cluster::Node;
use hybrid_api::inventory::Resources;
use hybrid_cty::Type;

use crate::framework::schema::Attribute;

use crate::framework::Attr;
pub(crate) use crate::resources::attributes::observed_list as computed_list;
use crate::resources::attributes::{self, ConditionModel, NodeModel};

/// The attributes of one observed VM: the resources' set plus the version
/// and size, which help follow an upgrade.
pub(crate) fn node_attributes() -> Vec<Attribute> {
    let mut attributes = attributes::node_attributes();
    attributes.extend([
        Attribute::string("kubernetes_version")
            .computed()
            .description("Kubernetes version the node runs."),
        Attribute::string("vm_size")
            .computed()
            .description("VM size of the node."),
    ]);
    attributes
}

crate::model! {
    /// One observed VM as data sources show it: the resources' model of it
    /// plus the version and size.
    pub(crate) struct NodeDataModel {
        pub name: Attr<String>,
        pub ip: Attr<String>,
        pub host: Attr<String>,
        pub state: Attr<String>,
        pub kubernetes_version: Attr<String>,
        pub vm_size: Attr<String>,
    }
}

impl NodeDataModel {
    pub(crate) fn of(node: &Node) -> Self {
        let NodeModel {
            name,
            ip,
            host,
            state,
        } = NodeModel::of(node);
        NodeDataModel {
            name,
            ip,
            host,
            state,
            kubernetes_version: Attr::Known(node.kubernetes_version.clone()),
            vm_size: Attr::Known(node.vm_size.clone()),
        }
    }
}

pub(crate) fn nodes(nodes: &[Node]) -> Attr<Vec<NodeDataModel>> {
    Attr::Known(nodes.iter().map(NodeDataModel::of).collect())
}

/// The attributes of one status condition, with its transition time.
pub(crate) fn condition_attributes() -> Vec<Attribute> {
    let mut attributes = attributes::condition_attributes();
    attributes.push(
        Attribute::string("last_transition_time")
            .computed()
            .description("RFC 3339 time the status last changed."),
    );
    attributes
}

crate::model! {
    /// One status condition as data sources show it: the resources' model
    /// of it plus its transition time.
    pub(crate) struct ConditionDataModel {
        #[attr = "type"]
        pub kind: Attr<String>,
        pub status: Attr<String>,
        pub reason: Attr<String>,
        pub message: Attr<String>,
        pub last_transition_time: Attr<String>,
    }
}

impl ConditionDataModel {
    pub(crate) fn of(c: &Condition) -> Self {
        let ConditionModel {
            kind,
            status,
            reason,
            message,
        } = ConditionModel::of(c);
        ConditionDataModel {
            kind,
            status,
            reason,
            message,
            last_transition_time: Attr::Known(c.last_transition_time.clone()),
        }
    }
}

pub(crate) fn conditions(conditions: &[Condition]) -> Attr<Vec<ConditionDataModel>> {
    Attr::Known(conditions.iter().map(ConditionDataModel::of).collect())
}

/// The attributes of a vCPU / memory / disk amount.
pub(crate) fn resources_attributes() -> Vec<Attribute> {
    vec![
        Attribute::number("vcpus").computed().description("vCPUs."),
        Attribute::number("memory_mib")
            .computed()
            .description("Memory, MiB."),
        Attribute::number("disk_gib")
            .computed()
            .description("Disk, GiB."),
    ]
}

crate::model! {
    /// A vCPU / memory / disk amount.
    pub(crate) struct ResourcesModel {
        pub vcpus: Attr<u32>,
        pub memory_mib: Attr<u64>,
        pub disk_gib: Attr<u64>,
    }
}

impl ResourcesModel {
    pub(crate) fn of(amount: &Resources) -> Attr<Self> {
        Attr::Known(ResourcesModel {
            vcpus: Attr::Known(amount.vcpus),
            memory_mib: Attr::Known(amount.memory_mib),
            disk_gib: Attr::Known(amount.disk_gib),
        })
    }
}

/// A list of strings as a schema attribute.
pub(crate) fn computed_strings(name: &'static str, description: &str) -> Attribute {
    Attribute::list(name, Type::String)
        .computed()
        .description(description)
}

/// The detail of a "not found" error: what was looked up, where, and what
/// to do about it.
pub(crate) fn not_found(what: &str, name: &str, endpoint: &str, field: &str) -> String {
    format!("{what} {name:?} not found at {endpoint}; create it or check `{field}`")
}

#[cfg(test)]
pub(crate) mod tests {
    use hybrid_cty::Value;

    use crate::framework::Schema;

    /// Encodes `state` with the schema's type, as the plugin server does,
    /// so a value that does not fit the schema fails the test.
    pub(crate) fn assert_fits(schema: &Schema, state: &Value) {
        if let Err(e) = hybrid_cty::encode_msgpack(state, &schema.value_type()) {
            panic!("state does not fit the schema: {e}\n{state:?}");
        }
    }

    /// The elements of a list attribute.
    pub(crate) fn items<'a>(value: &'a Value, name: &str) -> &'a [Value] {
        value
            .get(name)
            .and_then(Value::elements)
            .unwrap_or_else(|| panic!("{name} is not a list in {value:?}"))
    }

    pub(crate) fn text<'a>(value: &'a Value, name: &str) -> &'a str {
        value
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{name} is not a string in {value:?}"))
    }

    pub(crate) fn int(value: &Value, name: &str) -> i64 {
        value
            .get(name)
            .and_then(Value::as_i64)
            .unwrap_or_else(|| panic!("{name} is not a whole number in {value:?}"))
    }
}
