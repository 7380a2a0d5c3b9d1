//! Conversions between the framework's types and the tfplugin6 messages.

use hybrid_cty::{Type, Value};
use hybrid_tfplugin::tfplugin6 as pb;

use super::diagnostics::{Diagnostics, Severity};
use super::path::{AttrPath, Step};
use super::resource::{FunctionDef, FunctionError, Parameter};
use super::schema::{Attribute, Block, BlockNesting, Kind, Mode, Nesting, Schema};
use pb::schema::object::NestingMode;

pub fn schema(schema: &Schema) -> pb::Schema {
    pb::Schema {
        version: schema.version,
        block: Some(pb::schema::Block {
            version: schema.version,
            attributes: schema.attributes.iter().map(attribute).collect(),
            block_types: schema.blocks.iter().map(block).collect(),
            description: schema.description.clone(),
            description_kind: pb::StringKind::Markdown as i32,
            deprecated: false,
        }),
    }
}

fn attribute(attribute: &Attribute) -> pb::schema::Attribute {
    let (r#type, nested_type) = match &attribute.kind {
        Kind::Primitive(ty) => (ty.to_json(), None),
        Kind::Nested(inner) => (Vec::new(), Some(object(inner, NestingMode::Single))),
        Kind::NestedCollection(nesting, inner) => {
            let mode = match nesting {
                Nesting::List => NestingMode::List,
                Nesting::Set => NestingMode::Set,
                Nesting::Map => NestingMode::Map,
            };
            (Vec::new(), Some(object(inner, mode)))
        }
    };
    pb::schema::Attribute {
        name: attribute.name.to_string(),
        r#type,
        nested_type,
        description: attribute.description.clone(),
        required: attribute.mode == Mode::Required,
        optional: matches!(attribute.mode, Mode::Optional | Mode::OptionalComputed),
        computed: attribute.mode.is_computed(),
        sensitive: attribute.sensitive,
        description_kind: pb::StringKind::Markdown as i32,
        deprecated: false,
        write_only: attribute.write_only,
    }
}

fn block(block: &Block) -> pb::schema::NestedBlock {
    use pb::schema::nested_block::NestingMode as Mode;
    pb::schema::NestedBlock {
        type_name: block.type_name.to_string(),
        block: Some(pb::schema::Block {
            version: 0,
            attributes: block.attributes.iter().map(attribute).collect(),
            block_types: Vec::new(),
            description: block.description.clone(),
            description_kind: pb::StringKind::Markdown as i32,
            deprecated: false,
        }),
        nesting: match block.nesting {
            BlockNesting::Single => Mode::Single,
            BlockNesting::List => Mode::List,
            BlockNesting::Set => Mode::Set,
        } as i32,
        min_items: block.min_items,
        max_items: block.max_items,
    }
}

fn object(attributes: &[Attribute], nesting: NestingMode) -> pb::schema::Object {
    pb::schema::Object {
        attributes: attributes.iter().map(attribute).collect(),
        nesting: nesting as i32,
        ..Default::default()
    }
}

/// A provider function's signature: parameter and return types as cty type
/// JSON, descriptions as Markdown. Unknown arguments are never accepted:
/// Terraform then skips the call and treats the result as unknown.
pub fn function(def: &FunctionDef) -> pb::Function {
    pb::Function {
        parameters: def.parameters.iter().map(parameter).collect(),
        variadic_parameter: None,
        r#return: Some(pb::function::Return {
            r#type: def.return_type.to_json(),
        }),
        summary: def.summary.clone(),
        description: def.description.clone(),
        description_kind: pb::StringKind::Markdown as i32,
        deprecation_message: String::new(),
    }
}

fn parameter(parameter: &Parameter) -> pb::function::Parameter {
    pb::function::Parameter {
        name: parameter.name.to_string(),
        r#type: parameter.ty.to_json(),
        allow_null_value: parameter.allow_null,
        allow_unknown_values: false,
        description: parameter.description.clone(),
        description_kind: pb::StringKind::Markdown as i32,
    }
}

pub fn function_error(error: &FunctionError) -> pb::FunctionError {
    pb::FunctionError {
        text: error.text.clone(),
        function_argument: error.argument,
    }
}

pub fn path(path: &AttrPath) -> pb::AttributePath {
    use pb::attribute_path::step::Selector;
    pb::AttributePath {
        steps: path
            .0
            .iter()
            .map(|step| pb::attribute_path::Step {
                selector: Some(match step {
                    Step::Attribute(name) => Selector::AttributeName(name.clone()),
                    Step::Key(key) => Selector::ElementKeyString(key.clone()),
                    Step::Index(index) => Selector::ElementKeyInt(*index),
                }),
            })
            .collect(),
    }
}

/// The part of `path` Terraform can point at in the configuration source.
///
/// Terraform locates a diagnostic by walking the configuration body: it can
/// step into a top-level attribute and index into its collection, but not
/// into the attributes of a nested object, where it gives up and underlines
/// the whole resource. Stopping at the nested object's attribute instead
/// underlines `vm_ip_pool = { … }`; the summary and detail still name the
/// full path.
fn displayable(path: &AttrPath) -> AttrPath {
    let mut steps = Vec::new();
    for step in &path.0 {
        if matches!(step, Step::Attribute(_)) && !steps.is_empty() {
            break;
        }
        steps.push(step.clone());
    }
    AttrPath(steps)
}

pub fn diagnostics(diags: &Diagnostics) -> Vec<pb::Diagnostic> {
    diags
        .iter()
        .map(|d| pb::Diagnostic {
            severity: match d.severity {
                Severity::Error => pb::diagnostic::Severity::Error,
                Severity::Warning => pb::diagnostic::Severity::Warning,
            } as i32,
            summary: d.summary.clone(),
            detail: d.detail.clone(),
            attribute: d.path.as_ref().map(|p| path(&displayable(p))),
        })
        .collect()
}

/// Decodes a DynamicValue (msgpack, or JSON when that is what was sent).
/// A missing value decodes as null.
pub fn decode(
    value: Option<&pb::DynamicValue>,
    ty: &Type,
    what: &str,
    diags: &mut Diagnostics,
) -> Value {
    let Some(value) = value else {
        return Value::Null;
    };
    let decoded = if !value.msgpack.is_empty() {
        hybrid_cty::decode_msgpack(&value.msgpack, ty)
    } else if !value.json.is_empty() {
        hybrid_cty::decode_json(&value.json, ty)
    } else {
        return Value::Null;
    };
    decoded.unwrap_or_else(|e| {
        diags.error(
            format!("Cannot decode the {what}"),
            format!("Terraform sent a value that does not match the schema: {e}. This is a bug in the provider."),
        );
        Value::Null
    })
}

/// Decodes one function argument; unlike [`decode`] the error is returned,
/// because a function reports it against the argument, not as a diagnostic.
pub fn decode_argument(value: &pb::DynamicValue, ty: &Type) -> Result<Value, hybrid_cty::Error> {
    if !value.msgpack.is_empty() {
        hybrid_cty::decode_msgpack(&value.msgpack, ty)
    } else if !value.json.is_empty() {
        hybrid_cty::decode_json(&value.json, ty)
    } else {
        Ok(Value::Null)
    }
}

/// Encodes a value as a msgpack DynamicValue.
pub fn encode(
    value: &Value,
    ty: &Type,
    what: &str,
    diags: &mut Diagnostics,
) -> Option<pb::DynamicValue> {
    match hybrid_cty::encode_msgpack(value, ty) {
        Ok(msgpack) => Some(pb::DynamicValue {
            msgpack,
            json: Vec::new(),
        }),
        Err(e) => {
            diags.error(
                format!("Cannot encode the {what}"),
                format!("the provider built a value that does not match its schema: {e}. This is a bug in the provider."),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::schema::validators;
    use super::*;

    fn nodes_schema() -> Schema {
        Schema::new(
            "test",
            vec![
                Attribute::nested_collection(
                    "nodes",
                    Nesting::List,
                    vec![
                        Attribute::string("name").required(),
                        Attribute::number("count")
                            .optional()
                            .validator(validators::int_between(1, 3)),
                    ],
                )
                .optional(),
                Attribute::string("secret").optional().sensitive(),
            ],
        )
    }

    #[test]
    fn nested_collections_become_nested_types() {
        let schema = schema(&nodes_schema());
        let block = schema.block.unwrap();
        let nodes = &block.attributes[0];
        assert!(nodes.r#type.is_empty());
        let object = nodes.nested_type.as_ref().unwrap();
        assert_eq!(object.nesting, NestingMode::List as i32);
        assert_eq!(object.attributes.len(), 2);
        assert!(block.attributes[1].sensitive);
        assert_eq!(block.attributes[1].r#type, b"\"string\"".to_vec());
    }

    #[test]
    fn validators_run_inside_collections_with_indexed_paths() {
        let config = Value::object([
            (
                "nodes",
                Value::List(vec![
                    Value::object([("name", Value::from("a")), ("count", Value::from(2i64))]),
                    Value::object([("name", Value::from("b")), ("count", Value::from(7i64))]),
                ]),
            ),
            ("secret", Value::Null),
        ]);
        let mut diags = Diagnostics::new();
        nodes_schema().validate(&config, &mut diags);
        let paths: Vec<String> = diags
            .iter()
            .map(|d| d.path.as_ref().unwrap().to_string())
            .collect();
        assert_eq!(paths, vec!["nodes[1].count"]);
    }

    #[test]
    fn nested_attribute_paths_stop_at_the_top_attribute_for_terraform() {
        let mut diags = Diagnostics::new();
        diags.error_at(
            AttrPath::attr("vm_ip_pool").then_attr("start"),
            "bad",
            "detail",
        );
        diags.error_at(AttrPath::attr("tags").then_key("env"), "bad", "detail");
        let sent = diagnostics(&diags);
        assert_eq!(sent[0].attribute, Some(path(&AttrPath::attr("vm_ip_pool"))));
        assert_eq!(
            sent[1].attribute,
            Some(path(&AttrPath::attr("tags").then_key("env")))
        );
    }
}
