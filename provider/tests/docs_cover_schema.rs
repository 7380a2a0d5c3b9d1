//! Keeps the registry docs honest: every attribute of every resource, data
//! source and ephemeral resource schema, and every function's parameters and
//! result attributes, are documented in `docs/`, so a new attribute cannot
//! ship undocumented.

use std::path::PathBuf;

use hybrid_cty::Type;
use terraform_provider_hybrid::framework::schema::{Attribute, Kind};
use terraform_provider_hybrid::{data_sources, ephemeral, functions, resources};

fn doc(kind: &str, type_name: &str) -> String {
    let short = type_name.trim_start_matches("hybrid_");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docs")
        .join(kind)
        .join(format!("{short}.md"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{} is missing: {e}", path.display()))
}

fn missing(attributes: &[Attribute], doc: &str, prefix: &str, out: &mut Vec<String>) {
    for attribute in attributes {
        if !doc.contains(&format!("`{}`", attribute.name)) {
            out.push(format!("{prefix}{}", attribute.name));
        }
        if let Kind::Nested(inner) | Kind::NestedCollection(_, inner) = &attribute.kind {
            missing(inner, doc, &format!("{prefix}{}.", attribute.name), out);
        }
    }
}

#[test]
fn every_resource_attribute_is_documented() {
    for resource in resources::all() {
        let doc = doc("resources", resource.type_name());
        let mut out = Vec::new();
        missing(&resource.schema().attributes, &doc, "", &mut out);
        assert!(
            out.is_empty(),
            "docs/resources for {} lack: {out:?}",
            resource.type_name()
        );
    }
}

#[test]
fn every_data_source_attribute_is_documented() {
    for data_source in data_sources::all() {
        let doc = doc("data-sources", data_source.type_name());
        let mut out = Vec::new();
        missing(&data_source.schema().attributes, &doc, "", &mut out);
        assert!(
            out.is_empty(),
            "docs/data-sources for {} lack: {out:?}",
            data_source.type_name()
        );
    }
}

#[test]
fn every_ephemeral_resource_attribute_is_documented() {
    for ephemeral in ephemeral::all() {
        let doc = doc("ephemeral-resources", ephemeral.type_name());
        let mut out = Vec::new();
        missing(&ephemeral.schema().attributes, &doc, "", &mut out);
        assert!(
            out.is_empty(),
            "docs/ephemeral-resources for {} lack: {out:?}",
            ephemeral.type_name()
        );
    }
}

/// The attribute names inside an object type (also of the objects in a
/// list, set or map) that `doc` does not mention.
fn missing_in_type(ty: &Type, doc: &str, prefix: &str, out: &mut Vec<String>) {
    match ty {
        Type::Object { attrs, .. } => {
            for (name, inner) in attrs {
                if !doc.contains(&format!("`{name}`")) {
                    out.push(format!("{prefix}{name}"));
                }
                missing_in_type(inner, doc, &format!("{prefix}{name}."), out);
            }
        }
        Type::List(inner) | Type::Set(inner) | Type::Map(inner) => {
            missing_in_type(inner, doc, prefix, out)
        }
        _ => {}
    }
}

#[test]
fn every_function_parameter_and_result_is_documented() {
    for function in functions::all() {
        let doc = doc("functions", function.name());
        let def = function.definition();
        let mut out = Vec::new();
        for parameter in &def.parameters {
            if !doc.contains(&format!("`{}`", parameter.name)) {
                out.push(format!("parameter {}", parameter.name));
            }
        }
        missing_in_type(&def.return_type, &doc, "result.", &mut out);
        for heading in ["## Signature", "## Arguments", "## Example Usage"] {
            if !doc.contains(heading) {
                out.push(heading.to_string());
            }
        }
        let signature = format!("{}(", function.name());
        if !doc.contains(&signature) {
            out.push(format!("the signature {signature}…"));
        }
        assert!(
            out.is_empty(),
            "docs/functions/{}.md lacks: {out:?}",
            function.name()
        );
    }
}

#[test]
fn provider_settings_are_documented() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/index.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    missing(
        &terraform_provider_hybrid::config::schema().attributes,
        &doc,
        "",
        &mut out,
    );
    for variable in ["HYBRID_ENDPOINT", "HYBRID_TOKEN", "HYBRID_CA_CERT_FILE"] {
        if !doc.contains(variable) {
            out.push(variable.to_string());
        }
    }
    assert!(out.is_empty(), "docs/index.md lacks: {out:?}");
}
