//! Schema pieces and value builders several data sources share: observed
//! nodes, status conditions, resource amounts, and the "not found" message.

use std::collections::BTreeMap;

use hybrid_api::Condition;
use hybrid_api::cluster::Node;
use hybrid_api::inventory::Resources;
use hybrid_cty::{Type, Value};

use crate::framework::schema::Attribute;

use crate::framework::{Attr, ToValue};
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

pub(crate) fn nodes_value(nodes: &[Node]) -> Value {
    self::nodes(nodes).to_value()
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

pub(crate) fn conditions_value(conditions: &[Condition]) -> Value {
    self::conditions(conditions).to_value()
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

pub(crate) fn resources_value(amount: &Resources) -> Value {
    Value::object([
        ("vcpus", Value::from(amount.vcpus)),
        ("memory_mib", Value::from(amount.memory_mib)),
        ("disk_gib", Value::from(amount.disk_gib)),
    ])
}

/// A list of strings; empty stays an empty list (a data source has no
/// configuration to keep consistent with, and `[]` is easier to use).
pub(crate) fn string_list<S: AsRef<str>>(items: &[S]) -> Value {
    Value::list(items.iter().map(|s| Value::from(s.as_ref())))
}

/// A map of strings; empty stays an empty map.
pub(crate) fn string_map(entries: &BTreeMap<String, String>) -> Value {
    Value::map(
        entries
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str()))),
    )
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
