//! Keeps the registry docs honest: every attribute of every resource and
//! data source schema is documented in `docs/`, so a new attribute cannot
//! ship undocumented.

use std::path::PathBuf;

use terraform_provider_hybrid::framework::schema::{Attribute, Kind};
use terraform_provider_hybrid::{data_sources, resources};

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
