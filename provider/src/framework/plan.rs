//! The generic part of planning a resource change: computed values, defaults,
//! use-state-for-unknown and requires-replace, applied attribute by attribute
//! from the schema. Resource-specific checks run after this.

use std::collections::BTreeMap;

use hybrid_cty::Value;

use super::path::AttrPath;
use super::schema::{Attribute, Kind, Schema};

/// The planned new state and the paths whose change forces replacement.
pub struct Plan {
    pub planned: Value,
    pub requires_replace: Vec<AttrPath>,
}

/// Plans the new state of a resource from Terraform's proposed new state.
///
/// `prior` is null when the resource is being created. A destroy (proposed
/// null) plans null.
pub fn plan(schema: &Schema, prior: &Value, config: &Value, proposed: &Value) -> Plan {
    if proposed.is_null() {
        return Plan {
            planned: Value::Null,
            requires_replace: Vec::new(),
        };
    }
    let creating = prior.is_null();
    let mut requires_replace = Vec::new();
    let blocks_changed = schema
        .blocks
        .iter()
        .any(|b| prior.get(b.type_name) != proposed.get(b.type_name));
    let mut planned = plan_object(
        &schema.attributes,
        Views {
            prior,
            config,
            proposed,
        },
        creating,
        blocks_changed,
        &AttrPath::root(),
        &mut requires_replace,
    );
    // Blocks hold only what the practitioner wrote: plan them as proposed.
    if let Value::Object(attrs) = &mut planned {
        for block in &schema.blocks {
            let value = proposed
                .get(block.type_name)
                .cloned()
                .unwrap_or(Value::Null);
            if block.requires_replace && !creating && prior.get(block.type_name) != Some(&value) {
                requires_replace.push(AttrPath::attr(block.type_name));
            }
            attrs.insert(block.type_name.to_string(), value);
        }
    }
    Plan {
        planned,
        requires_replace,
    }
}

/// The three views of one object that planning compares.
struct Views<'a> {
    prior: &'a Value,
    config: &'a Value,
    proposed: &'a Value,
}

fn plan_object(
    attributes: &[Attribute],
    views: Views<'_>,
    creating: bool,
    changed_elsewhere: bool,
    path: &AttrPath,
    requires_replace: &mut Vec<AttrPath>,
) -> Value {
    // Nothing the practitioner controls changed at this level: keep every
    // prior value, so computed attributes do not churn to "known after apply".
    let Views {
        prior,
        config,
        proposed,
    } = views;
    let changed = creating || changed_elsewhere || !same_settable(attributes, prior, proposed);
    let mut out = BTreeMap::new();
    for attribute in attributes {
        let name = attribute.name;
        let at = path.clone().then_attr(name);
        let prior_value = prior.get(name).cloned().unwrap_or(Value::Null);
        let config_value = config.get(name).cloned().unwrap_or(Value::Null);
        let proposed_value = proposed.get(name).cloned().unwrap_or(Value::Null);

        let mut planned_whole = true;
        let value = if attribute.write_only {
            Value::Null
        } else if attribute.mode.is_computed() && config_value.is_null() {
            if let Some(default) = &attribute.default {
                default.clone()
            } else if (!changed && !creating)
                || (attribute.use_state_for_unknown && !prior_value.is_null())
            {
                prior_value.clone()
            } else {
                Value::Unknown
            }
        } else {
            match (&attribute.kind, &proposed_value) {
                (Kind::Nested(inner), Value::Object(_)) => {
                    planned_whole = false;
                    plan_object(
                        inner,
                        Views {
                            prior: &prior_value,
                            config: &config_value,
                            proposed: &proposed_value,
                        },
                        creating || prior_value.is_null(),
                        false,
                        &at,
                        requires_replace,
                    )
                }
                _ => proposed_value,
            }
        };

        if attribute.requires_replace && !creating && value != prior_value {
            requires_replace.push(at.clone());
        }
        // A nested object planned as a whole (its default, or null) was not
        // walked above, so its immutable attributes are compared here:
        // dropping `network = { plugin = "flannel" }` from the configuration
        // goes back to the default plugin, which is a replacement.
        if let (Kind::Nested(inner), true, false) = (&attribute.kind, planned_whole, creating) {
            nested_replace(inner, &value, &prior_value, &at, requires_replace);
        }
        out.insert(name.to_string(), value);
    }
    Value::Object(out)
}

/// The requires-replace attributes inside a nested object whose planned
/// value differs from the prior one. Unknown objects are skipped: a value not
/// known yet is no reason to destroy anything (the service refuses an
/// immutable change at apply time instead).
fn nested_replace(
    attributes: &[Attribute],
    planned: &Value,
    prior: &Value,
    path: &AttrPath,
    requires_replace: &mut Vec<AttrPath>,
) {
    if planned.is_unknown() || prior.is_null() || prior.is_unknown() {
        return;
    }
    for attribute in attributes {
        let at = path.clone().then_attr(attribute.name);
        let new = planned.get(attribute.name).unwrap_or(&Value::Null);
        let old = prior.get(attribute.name).unwrap_or(&Value::Null);
        if attribute.requires_replace && new != old && !new.is_unknown() {
            requires_replace.push(at.clone());
        }
        if let Kind::Nested(inner) = &attribute.kind {
            nested_replace(inner, new, old, &at, requires_replace);
        }
    }
}

/// Whether the attributes a practitioner can set are equal in both objects.
fn same_settable(attributes: &[Attribute], a: &Value, b: &Value) -> bool {
    attributes.iter().all(|attribute| {
        if attribute.mode == super::schema::Mode::Computed || attribute.write_only {
            return true;
        }
        let left = a.get(attribute.name).unwrap_or(&Value::Null);
        let right = b.get(attribute.name).unwrap_or(&Value::Null);
        match (&attribute.kind, left, right) {
            (Kind::Nested(inner), Value::Object(_), Value::Object(_)) => {
                same_settable(inner, left, right)
            }
            _ => left == right,
        }
    })
}

/// What Terraform proposes, for resources' tests: the configuration, with
/// prior values for computed attributes it leaves null (recursively into
/// single nested objects).
pub fn proposed_new_state(schema: &[Attribute], prior: &Value, config: &Value) -> Value {
    let mut out = BTreeMap::new();
    for attribute in schema {
        let c = config.get(attribute.name).cloned().unwrap_or(Value::Null);
        let p = prior.get(attribute.name).cloned().unwrap_or(Value::Null);
        let value = match (&attribute.kind, &c) {
            (_, Value::Null) if attribute.mode.is_computed() => p,
            (Kind::Nested(inner), Value::Object(_)) => proposed_new_state(inner, &p, &c),
            _ => c,
        };
        out.insert(attribute.name.to_string(), value);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::super::schema::Attribute;
    use super::*;

    fn schema() -> Schema {
        Schema::new(
            "test",
            vec![
                Attribute::string("id").computed().use_state_for_unknown(),
                Attribute::string("name").required().requires_replace(),
                Attribute::string("method")
                    .default_value("static")
                    .requires_replace(),
                Attribute::string("state").computed(),
                Attribute::nested(
                    "pool",
                    vec![
                        Attribute::string("start").required(),
                        Attribute::number("used").computed(),
                    ],
                )
                .optional(),
                Attribute::map("tags", hybrid_cty::Type::String).optional(),
            ],
        )
    }

    fn obj(pairs: Vec<(&str, Value)>) -> Value {
        Value::object(pairs)
    }

    fn prior() -> Value {
        obj(vec![
            ("id", "/x/a".into()),
            ("name", "a".into()),
            ("method", "static".into()),
            ("state", "Succeeded".into()),
            (
                "pool",
                obj(vec![("start", "10.0.0.1".into()), ("used", 2i64.into())]),
            ),
            ("tags", Value::Null),
        ])
    }

    fn config(name: &str, start: &str, tags: Value) -> Value {
        obj(vec![
            ("id", Value::Null),
            ("name", name.into()),
            ("method", Value::Null),
            ("state", Value::Null),
            (
                "pool",
                obj(vec![("start", start.into()), ("used", Value::Null)]),
            ),
            ("tags", tags),
        ])
    }

    /// What Terraform proposes: config, with prior values for computed nulls.
    fn proposed(prior: &Value, config: &Value) -> Value {
        let mut out = BTreeMap::new();
        for (k, v) in config_map(config) {
            let pv = prior.get(&k).cloned().unwrap_or(Value::Null);
            let value = match (&v, &pv) {
                (Value::Object(_), Value::Object(_)) => proposed(&pv, &v),
                (Value::Null, _) if matches!(k.as_str(), "id" | "method" | "state" | "used") => pv,
                _ => v,
            };
            out.insert(k, value);
        }
        Value::Object(out)
    }

    fn config_map(v: &Value) -> BTreeMap<String, Value> {
        match v {
            Value::Object(m) => m.clone(),
            _ => BTreeMap::new(),
        }
    }

    #[test]
    fn create_marks_computed_unknown_and_applies_defaults() {
        let cfg = config("a", "10.0.0.1", Value::Null);
        let plan = plan(&schema(), &Value::Null, &cfg, &cfg);
        assert_eq!(plan.planned.get("id"), Some(&Value::Unknown));
        assert_eq!(plan.planned.get("method"), Some(&Value::from("static")));
        assert_eq!(
            plan.planned.get("pool").and_then(|p| p.get("used")),
            Some(&Value::Unknown)
        );
        assert!(plan.requires_replace.is_empty());
    }

    #[test]
    fn unchanged_config_plans_the_prior_state() {
        let prior = prior();
        let cfg = config("a", "10.0.0.1", Value::Null);
        let plan = plan(&schema(), &prior, &cfg, &proposed(&prior, &cfg));
        assert_eq!(plan.planned, prior);
        assert!(plan.requires_replace.is_empty());
    }

    #[test]
    fn in_place_change_keeps_unchanged_nested_computed_values() {
        let prior = prior();
        let tags = Value::Map([("env".to_string(), Value::from("prod"))].into());
        let cfg = config("a", "10.0.0.1", tags.clone());
        let plan = plan(&schema(), &prior, &cfg, &proposed(&prior, &cfg));
        assert_eq!(plan.planned.get("tags"), Some(&tags));
        assert_eq!(plan.planned.get("id"), Some(&Value::from("/x/a")));
        assert_eq!(plan.planned.get("state"), Some(&Value::Unknown));
        assert_eq!(
            plan.planned.get("pool").and_then(|p| p.get("used")),
            Some(&Value::from(2i64))
        );
        assert!(plan.requires_replace.is_empty());
    }

    #[test]
    fn nested_change_unknowns_its_computed_values() {
        let prior = prior();
        let cfg = config("a", "10.0.0.2", Value::Null);
        let plan = plan(&schema(), &prior, &cfg, &proposed(&prior, &cfg));
        assert_eq!(
            plan.planned.get("pool").and_then(|p| p.get("used")),
            Some(&Value::Unknown)
        );
    }

    #[test]
    fn immutable_change_requires_replace() {
        let prior = prior();
        let cfg = config("b", "10.0.0.1", Value::Null);
        let plan = plan(&schema(), &prior, &cfg, &proposed(&prior, &cfg));
        assert_eq!(plan.requires_replace, vec![AttrPath::attr("name")]);
    }

    #[test]
    fn block_change_is_a_change_and_can_require_replace() {
        use super::super::schema::{Block, BlockNesting};
        let schema = schema().with_blocks(vec![Block {
            type_name: "rule",
            nesting: BlockNesting::List,
            description: String::new(),
            attributes: vec![Attribute::string("port").required()],
            min_items: 0,
            max_items: 0,
            requires_replace: true,
        }]);
        let rule = |port: &str| Value::List(vec![obj(vec![("port", port.into())])]);
        let mut prior = prior();
        if let Value::Object(attrs) = &mut prior {
            attrs.insert("rule".into(), rule("80"));
        }
        let mut cfg = config("a", "10.0.0.1", Value::Null);
        if let Value::Object(attrs) = &mut cfg {
            attrs.insert("rule".into(), rule("443"));
        }
        let proposed = proposed(&prior, &cfg);
        let plan = plan(&schema, &prior, &cfg, &proposed);
        assert_eq!(plan.planned.get("rule"), Some(&rule("443")));
        assert_eq!(plan.planned.get("state"), Some(&Value::Unknown));
        assert_eq!(plan.requires_replace, vec![AttrPath::attr("rule")]);
    }

    #[test]
    fn a_nested_object_back_to_its_default_compares_its_immutable_attributes() {
        let inner = || {
            vec![
                Attribute::string("plugin")
                    .default_value("calico")
                    .requires_replace(),
                Attribute::number("count").default_value(1i64),
            ]
        };
        let default = obj(vec![("plugin", "calico".into()), ("count", 1i64.into())]);
        let schema = Schema::new(
            "test",
            vec![
                Attribute::string("name").required(),
                Attribute::nested("network", inner()).default_value(default.clone()),
            ],
        );
        let prior = obj(vec![
            ("name", "a".into()),
            (
                "network",
                obj(vec![("plugin", "flannel".into()), ("count", 3i64.into())]),
            ),
        ]);
        let config = obj(vec![("name", "a".into()), ("network", Value::Null)]);
        // Terraform proposes the prior value for a computed attribute left out.
        let plan = plan(&schema, &prior, &config, &prior);
        assert_eq!(plan.planned.get("network"), Some(&default));
        assert_eq!(
            plan.requires_replace,
            vec![AttrPath::attr("network").then_attr("plugin")]
        );
    }

    #[test]
    fn destroy_plans_null() {
        let plan = plan(&schema(), &prior(), &Value::Null, &Value::Null);
        assert!(plan.planned.is_null());
    }
}
