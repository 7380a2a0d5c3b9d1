//! A schema as registry Markdown (the layout tfplugindocs produces):
//! Required / Optional / Read-Only groups, one "Nested Schema" section per
//! nested attribute, and for every attribute its type, flags, description,
//! default and whether changing it forces a new resource.

use std::fmt::Write as _;

use hybrid_cty::{Type, Value};
use terraform_provider_hybrid::framework::schema::{
    Attribute, Block, BlockNesting, Kind, Mode, Nesting, Schema,
};

const WRITE_ONLY: &str = "[Write-only](https://developer.hashicorp.com/terraform/language/resources/ephemeral#write-only-arguments)";

/// What kind of object a schema describes: it decides whether
/// `requires_replace` means anything and how the page says so.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Provider,
    Resource,
    DataSource,
    Ephemeral,
}

/// The dotted paths of attributes (at any depth) without a description.
pub fn undescribed(schema: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    if schema.description.trim().is_empty() {
        out.push("(the schema's own description)".to_string());
    }
    walk(&schema.attributes, "", &mut |path, a| {
        if a.description.trim().is_empty() {
            out.push(path.to_string());
        }
    });
    for block in &schema.blocks {
        if block.description.trim().is_empty() {
            out.push(block.type_name.to_string());
        }
        walk(
            &block.attributes,
            &format!("{}.", block.type_name),
            &mut |path, a| {
                if a.description.trim().is_empty() {
                    out.push(path.to_string());
                }
            },
        );
    }
    out
}

/// Dotted paths of resource attributes whose description says the opposite
/// of their plan behaviour: "replaces" without `requires_replace`, or
/// "changes in place" with it.
pub fn contradictions(schema: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    walk(&schema.attributes, "", &mut |path, a| {
        let d = a.description.to_lowercase();
        let says_replace =
            d.contains("changing it replaces") || d.contains("changing them replaces");
        let says_in_place = d.contains("changes in place") || d.contains("change in place");
        if says_replace != a.requires_replace && (says_replace || says_in_place) {
            out.push(path.to_string());
        }
    });
    out
}

/// Dotted paths of the attributes that force replacement, in schema order.
pub fn replacing(schema: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    walk(&schema.attributes, "", &mut |path, a| {
        if a.requires_replace {
            out.push(path.to_string());
        }
    });
    for block in &schema.blocks {
        if block.requires_replace {
            out.push(block.type_name.to_string());
        }
        walk(
            &block.attributes,
            &format!("{}.", block.type_name),
            &mut |path, a| {
                if a.requires_replace {
                    out.push(path.to_string());
                }
            },
        );
    }
    out
}

fn walk(attributes: &[Attribute], prefix: &str, f: &mut dyn FnMut(&str, &Attribute)) {
    for a in attributes {
        let path = format!("{prefix}{}", a.name);
        f(&path, a);
        if let Kind::Nested(inner) | Kind::NestedCollection(_, inner) = &a.kind {
            walk(inner, &format!("{path}."), f);
        }
    }
}

/// The `## Schema` section.
pub fn section(schema: &Schema, owner: Owner) -> String {
    let mut out = String::from("## Schema\n\n");
    out.push_str(&replacement_note(schema, owner));
    out.push_str("\n\n");
    let mut nested = Vec::new();
    groups(&schema.attributes, "", false, true, &mut out, &mut nested);
    if !schema.blocks.is_empty() {
        out.push_str("### Blocks\n\n");
        for block in &schema.blocks {
            let anchor = format!("nestedblock--{}", block.type_name);
            let _ = writeln!(
                out,
                "- `{}` ({}) {}{} (see [below for nested schema](#{anchor}))",
                block.type_name,
                block_type(block),
                block.description.trim(),
                if block.requires_replace {
                    " Changing this forces a new resource."
                } else {
                    ""
                }
            );
        }
        out.push('\n');
        for block in &schema.blocks {
            let _ = writeln!(
                out,
                "<a id=\"nestedblock--{0}\"></a>\n### Nested Schema for `{0}`\n",
                block.type_name
            );
            groups(
                &block.attributes,
                block.type_name,
                false,
                false,
                &mut out,
                &mut nested,
            );
        }
    }
    // Nested sections come after the top level, each followed by its own
    // nested sections (depth first, so a section is near its parent).
    nested_sections(nested, &mut out);
    out.trim_end().to_string()
}

fn nested_sections(nested: NestedQueue, out: &mut String) {
    for (path, attributes, read_only) in nested {
        let _ = writeln!(
            out,
            "<a id=\"nestedatt--{}\"></a>\n### Nested Schema for `{path}`\n",
            path.replace('.', "--")
        );
        let mut more = Vec::new();
        groups(&attributes, &path, read_only, false, out, &mut more);
        nested_sections(more, out);
    }
}

fn replacement_note(schema: &Schema, owner: Owner) -> String {
    let replacing = replacing(schema);
    match owner {
        Owner::Resource if replacing.is_empty() => {
            "No attribute forces replacement: every change is made in place.".to_string()
        }
        Owner::Resource => format!(
            "Changing any of these forces a new resource (the plan shows \
             `# forces replacement`): {}. Every other argument changes in place.",
            replacing
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Owner::DataSource => "A data source is read on every plan and is never replaced: \
                              no attribute forces replacement."
            .to_string(),
        Owner::Ephemeral => "An ephemeral resource is opened afresh on every run and never \
                             stored, so no attribute forces replacement."
            .to_string(),
        Owner::Provider => {
            "Changing the provider configuration never replaces a resource.".to_string()
        }
    }
}

type NestedQueue = Vec<(String, Vec<Attribute>, bool)>;

/// Writes the Required / Optional / Read-Only groups of `attributes`, and
/// queues their nested attributes. `read_only` is set below a computed
/// attribute, whose whole value the provider sets. `top` selects `###`
/// headings (the top level) or `Label:` lines (nested sections).
fn groups(
    attributes: &[Attribute],
    path: &str,
    read_only: bool,
    top: bool,
    out: &mut String,
    nested: &mut NestedQueue,
) {
    let group_of = |a: &Attribute| {
        if read_only {
            "Read-Only"
        } else {
            match a.mode {
                Mode::Required => "Required",
                Mode::Optional | Mode::OptionalComputed => "Optional",
                Mode::Computed => "Read-Only",
            }
        }
    };
    for group in ["Required", "Optional", "Read-Only"] {
        let members: Vec<&Attribute> = attributes.iter().filter(|a| group_of(a) == group).collect();
        if members.is_empty() {
            continue;
        }
        if top {
            let _ = writeln!(out, "### {group}\n");
        } else {
            let _ = writeln!(out, "{group}:\n");
        }
        for a in members {
            let full = if path.is_empty() {
                a.name.to_string()
            } else {
                format!("{path}.{}", a.name)
            };
            out.push_str(&line(a, &full));
            out.push('\n');
            if let Kind::Nested(inner) | Kind::NestedCollection(_, inner) = &a.kind {
                nested.push((full, inner.clone(), read_only || a.mode == Mode::Computed));
            }
        }
        out.push('\n');
    }
}

/// `- `name` (String, Sensitive) Description. Defaults to `x`. …`
fn line(a: &Attribute, full: &str) -> String {
    let mut flags = vec![attribute_type(a)];
    if a.sensitive {
        flags.push("Sensitive".to_string());
    }
    if a.write_only {
        flags.push(WRITE_ONLY.to_string());
    }
    let description = without_replacement_sentence(&a.description);
    let mut text = format!(
        "- `{}` ({}) {}",
        a.name,
        flags.join(", "),
        sentence(&description)
    );
    // A description that already explains the default keeps its wording.
    if let Some(default) = &a.default
        && !description.to_lowercase().contains("default")
    {
        let _ = write!(text, " Defaults to `{}`.", hcl(default));
    }
    if a.requires_replace {
        text.push_str(" Changing this forces a new resource.");
    }
    if matches!(a.kind, Kind::Nested(_) | Kind::NestedCollection(..)) {
        let _ = write!(
            text,
            " (see [below for nested schema](#nestedatt--{}))",
            full.replace('.', "--")
        );
    }
    text
}

/// The description without its own "Changing it replaces the X." sentence:
/// the page says that in one standard form, from `requires_replace` (and a
/// data source sharing a resource's descriptions must not say it at all).
fn without_replacement_sentence(description: &str) -> String {
    let mut text = description.trim().to_string();
    for opening in ["Changing it replaces the ", "Changing them replaces the "] {
        while let Some(start) = text.find(opening) {
            let end = text[start..]
                .find('.')
                .map_or(text.len(), |i| start + i + 1);
            text.replace_range(start..end, "");
            text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        }
    }
    text
}

/// The description with a closing full stop, so appended notes read well.
pub fn sentence(description: &str) -> String {
    let d = description.trim();
    if d.ends_with(['.', '!', '?', ')', '`']) {
        d.to_string()
    } else {
        format!("{d}.")
    }
}

fn attribute_type(a: &Attribute) -> String {
    match &a.kind {
        Kind::Primitive(ty) => type_name(ty),
        Kind::Nested(_) => "Attributes".to_string(),
        Kind::NestedCollection(Nesting::List, _) => "Attributes List".to_string(),
        Kind::NestedCollection(Nesting::Set, _) => "Attributes Set".to_string(),
        Kind::NestedCollection(Nesting::Map, _) => "Attributes Map".to_string(),
    }
}

fn block_type(b: &Block) -> String {
    let kind = match b.nesting {
        BlockNesting::Single => "Block",
        BlockNesting::List => "Block List",
        BlockNesting::Set => "Block Set",
    };
    let mut limits = Vec::new();
    if b.min_items > 0 {
        limits.push(format!("Min: {}", b.min_items));
    }
    if b.max_items > 0 {
        limits.push(format!("Max: {}", b.max_items));
    }
    if limits.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}, {}", limits.join(", "))
    }
}

/// Registry type names: `String`, `List of String`, `Map of Number`, …
pub fn type_name(ty: &Type) -> String {
    match ty {
        Type::String => "String".into(),
        Type::Number => "Number".into(),
        Type::Bool => "Boolean".into(),
        Type::Dynamic => "Dynamic".into(),
        Type::List(t) => format!("List of {}", type_name(t)),
        Type::Set(t) => format!("Set of {}", type_name(t)),
        Type::Map(t) => format!("Map of {}", type_name(t)),
        Type::Object { .. } => "Object".into(),
        Type::Tuple(_) => "Tuple".into(),
    }
}

/// A value as an HCL literal, for defaults.
pub fn hcl(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Unknown => "(known after apply)".into(),
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::List(items) | Value::Set(items) | Value::Tuple(items) => {
            format!("[{}]", items.iter().map(hcl).collect::<Vec<_>>().join(", "))
        }
        Value::Map(entries) | Value::Object(entries) => format!(
            "{{ {} }}",
            entries
                .iter()
                .map(|(k, v)| format!("{k} = {}", hcl(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Dynamic { value, .. } => hcl(value),
    }
}

/// A type as an HCL type constraint, objects one attribute per line.
pub fn type_expr(ty: &Type, indent: usize) -> String {
    match ty {
        Type::List(t) => format!("list({})", type_expr(t, indent)),
        Type::Set(t) => format!("set({})", type_expr(t, indent)),
        Type::Map(t) => format!("map({})", type_expr(t, indent)),
        Type::Object { attrs, optional } => {
            let pad = " ".repeat(indent + 2);
            let width = attrs.keys().map(|k| k.len()).max().unwrap_or(0);
            let mut out = String::from("object({\n");
            for (name, t) in attrs {
                let t = type_expr(t, indent + 2);
                let t = if optional.contains(name) {
                    format!("optional({t})")
                } else {
                    t
                };
                let _ = writeln!(out, "{pad}{name:<width$} = {t}");
            }
            let _ = write!(out, "{}}})", " ".repeat(indent));
            out
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::new(
            "A thing.",
            vec![
                Attribute::string("name")
                    .required()
                    .requires_replace()
                    .description("Name"),
                Attribute::nested(
                    "pool",
                    vec![
                        Attribute::string("start").required().description("First."),
                        Attribute::number("size").computed().description("Size."),
                    ],
                )
                .optional()
                .description("Pool."),
                Attribute::string("mode")
                    .default_value("fast")
                    .description("Mode."),
                Attribute::map("secret", Type::String)
                    .optional()
                    .sensitive()
                    .write_only()
                    .description("Secrets."),
                Attribute::string("id").computed().description(""),
            ],
        )
    }

    #[test]
    fn attributes_render_with_type_flags_default_and_replacement() {
        let md = section(&schema(), Owner::Resource);
        assert!(
            md.contains("Changing any of these forces a new resource"),
            "{md}"
        );
        assert!(
            md.contains(
                "### Required\n\n- `name` (String) Name. Changing this forces a new resource.\n"
            ),
            "{md}"
        );
        assert_eq!(
            without_replacement_sentence("Id. Changing it replaces the pool. Changes never."),
            "Id. Changes never."
        );
        assert!(
            md.contains("- `mode` (String) Mode. Defaults to `\"fast\"`.\n"),
            "{md}"
        );
        assert!(
            md.contains("- `secret` (Map of String, Sensitive, [Write-only]"),
            "{md}"
        );
        assert!(md.contains("<a id=\"nestedatt--pool\"></a>\n### Nested Schema for `pool`\n\nRequired:\n\n- `start` (String) First.\n\nRead-Only:\n\n- `size` (Number) Size."), "{md}");
        assert!(md.find("### Read-Only").unwrap() < md.find("Nested Schema").unwrap());
    }

    #[test]
    fn descriptions_must_agree_with_requires_replace() {
        let schema = Schema::new(
            "A thing.",
            vec![
                Attribute::string("a")
                    .requires_replace()
                    .description("A. Changes in place."),
                Attribute::string("b").description("B. Changing it replaces the thing."),
                Attribute::string("c")
                    .requires_replace()
                    .description("C. Changing it replaces the thing."),
                Attribute::string("d").description("D. Changes in place."),
            ],
        );
        assert_eq!(
            contradictions(&schema),
            vec!["a".to_string(), "b".to_string()]
        );
    }

    #[test]
    fn missing_descriptions_are_listed_by_path() {
        assert_eq!(undescribed(&schema()), vec!["id".to_string()]);
        assert_eq!(replacing(&schema()), vec!["name".to_string()]);
    }
}
