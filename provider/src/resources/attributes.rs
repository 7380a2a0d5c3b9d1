//! Schema pieces several resources (and the data sources that mirror them)
//! share, each with the function that builds its state value: string sets,
//! observed VMs, status conditions.

use hybrid_api::{Condition, Node};
use hybrid_cty::{Type, Value};

use crate::framework::schema::{Attribute, Kind, Nesting};
use crate::framework::values;

/// A set of strings (`admin_group_ids`), for groups where order means nothing.
pub(crate) fn string_set(name: &'static str) -> Attribute {
    Attribute {
        kind: Kind::Primitive(Type::Set(Box::new(Type::String))),
        ..Attribute::string(name)
    }
}

/// A set of strings as state, null when empty and left out.
pub(crate) fn string_set_state(items: &[String], previous: Option<&Value>) -> Value {
    if items.is_empty() && previous.is_none_or(Value::is_null) {
        return Value::Null;
    }
    Value::Set(items.iter().map(|s| Value::from(s.as_str())).collect())
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

/// One observed VM as state.
pub(crate) fn node_value(node: &Node) -> Value {
    Value::object([
        ("name", Value::from(node.name.as_str())),
        ("ip", values::opt_string(node.ip.as_deref())),
        ("host", Value::from(node.host.as_str())),
        ("state", Value::from(node.state.as_str())),
    ])
}

/// Observed VMs as state.
pub(crate) fn nodes_value(nodes: &[Node]) -> Value {
    Value::list(nodes.iter().map(node_value))
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

/// One status condition as state.
pub(crate) fn condition_value(c: &Condition) -> Value {
    Value::object([
        ("type", Value::from(c.type_.as_str())),
        ("status", Value::from(c.status.as_str())),
        ("reason", Value::from(c.reason.as_str())),
        ("message", Value::from(c.message.as_str())),
    ])
}

/// Status conditions as state.
pub(crate) fn conditions_value(conditions: &[Condition]) -> Value {
    Value::list(conditions.iter().map(condition_value))
}
