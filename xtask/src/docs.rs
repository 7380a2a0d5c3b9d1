//! `cargo xtask docs`: generates `docs/` (the Terraform registry layout) from
//! the provider's own schema, the example files and the prose in
//! `templates/`, so the reference pages can never drift from the code.
//! `cargo xtask docs --check` (and the test at the bottom, which runs in
//! `cargo test --workspace` and so in CI) fails when the committed `docs/`
//! differ from what it generates.
//!
//! Every `templates/<dir>/<page>.md.tmpl` becomes `docs/<dir>/<page>.md`
//! (templates/README.md describes the placeholders). A resource, data
//! source, ephemeral resource or function without a template gets a page
//! from a default template, and a template naming none is an error. Every
//! attribute must have a description: the generator refuses to run and lists
//! the ones that lack it.

mod host_flags;
mod schema;
mod template;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use terraform_provider_hybrid::framework::Schema;
use terraform_provider_hybrid::{config, data_sources, ephemeral, functions, resources};

use crate::util;
use schema::Owner;
use template::code_block;

/// Arguments of `cargo xtask docs`.
#[derive(clap::Args)]
pub struct Args {
    /// Do not write anything; fail if the committed docs differ from the
    /// generated ones (what CI runs).
    #[arg(long)]
    check: bool,
}

const FIX: &str = "run `cargo xtask docs` and commit the result (edit templates/, \
                   schema descriptions or examples/, never docs/ by hand)";

pub fn run(args: &Args) -> Result<()> {
    let root = util::root();
    let pages = generate(&root)?;
    if args.check {
        let problems = drift(&root, &pages)?;
        if !problems.is_empty() {
            bail!(
                "docs/ is out of date:\n{}\nTo fix: {FIX}.",
                problems
                    .iter()
                    .map(|p| format!("  - {p}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        eprintln!("docs/ is up to date ({} pages)", pages.len());
        return Ok(());
    }
    let mut changed = 0;
    for (path, text) in &pages {
        let file = root.join(path);
        if std::fs::read_to_string(&file).ok().as_deref() != Some(text.as_str()) {
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
            eprintln!("wrote {}", path.display());
            changed += 1;
        }
    }
    for orphan in orphans(&root, &pages)? {
        std::fs::remove_file(root.join(&orphan))
            .with_context(|| format!("removing {}", orphan.display()))?;
        eprintln!("removed {} (no template generates it)", orphan.display());
        changed += 1;
    }
    eprintln!("{} pages, {changed} changed", pages.len());
    Ok(())
}

/// What differs between `pages` and the files under `root`, one line each.
fn drift(root: &Path, pages: &BTreeMap<PathBuf, String>) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for (path, text) in pages {
        match std::fs::read_to_string(root.join(path)) {
            Err(_) => problems.push(format!("{} is missing", path.display())),
            Ok(committed) if committed != *text => {
                let (line, want, have) = first_difference(text, &committed);
                problems.push(format!(
                    "{} differs at line {line}: generated {want:?}, committed {have:?}",
                    path.display()
                ));
            }
            Ok(_) => {}
        }
    }
    for orphan in orphans(root, pages)? {
        problems.push(format!(
            "{} is not generated: move its text to templates/{}.tmpl (or delete it)",
            orphan.display(),
            orphan.strip_prefix("docs").unwrap_or(&orphan).display()
        ));
    }
    Ok(problems)
}

fn first_difference<'a>(want: &'a str, have: &'a str) -> (usize, &'a str, &'a str) {
    let mut w = want.lines();
    let mut h = have.lines();
    let mut n = 1;
    loop {
        match (w.next(), h.next()) {
            (Some(a), Some(b)) if a == b => n += 1,
            (a, b) => {
                return (
                    n,
                    a.unwrap_or("<end of file>"),
                    b.unwrap_or("<end of file>"),
                );
            }
        }
    }
}

/// Markdown files under docs/ that no template generates.
fn orphans(root: &Path, pages: &BTreeMap<PathBuf, String>) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for file in files_under(&root.join("docs"))? {
        let rel = file.strip_prefix(root).unwrap_or(&file).to_path_buf();
        if rel.extension().is_some_and(|e| e == "md") && !pages.contains_key(&rel) {
            out.push(rel);
        }
    }
    Ok(out)
}

fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    for entry in entries {
        let path = entry
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        if path.is_dir() {
            out.extend(files_under(&path)?);
        } else {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// One schema-backed kind of page.
#[derive(Clone, Copy)]
struct KindInfo {
    dir: &'static str,
    label: &'static str,
    example: &'static str,
    owner: Option<Owner>,
    /// Placeholders the page's template must use.
    required: &'static [&'static str],
}

const RESOURCES: KindInfo = KindInfo {
    dir: "resources",
    label: "Resource",
    example: "resource.tf",
    owner: Some(Owner::Resource),
    required: &[".Example", ".Schema", ".Import"],
};
const DATA_SOURCES: KindInfo = KindInfo {
    dir: "data-sources",
    label: "Data Source",
    example: "data-source.tf",
    owner: Some(Owner::DataSource),
    required: &[".Example", ".Schema"],
};
const EPHEMERAL: KindInfo = KindInfo {
    dir: "ephemeral-resources",
    label: "Ephemeral Resource",
    example: "ephemeral-resource.tf",
    owner: Some(Owner::Ephemeral),
    required: &[".Example", ".Schema"],
};
const FUNCTIONS: KindInfo = KindInfo {
    dir: "functions",
    label: "Function",
    example: "function.tf",
    owner: None,
    required: &[".Example", ".Signature", ".Arguments", ".Return"],
};

const DEFAULT_TEMPLATE: &str = r#"---
page_title: "{{ .Name }} {{ .Type }} - hybrid"
subcategory: ""
description: |-
  {{ .Description }}
---

# {{ .Name }} ({{ .Type }})

{{ .Description }}

## Example Usage

{{ .Example }}

{{ .Schema }}
"#;

const DEFAULT_RESOURCE_TEMPLATE_TAIL: &str = "\n{{ .Import }}\n";

const DEFAULT_FUNCTION_TEMPLATE: &str = r#"---
page_title: "{{ .Name }} {{ .Type }} - hybrid"
subcategory: ""
description: |-
  {{ .Summary }}
---

# {{ .Name }} ({{ .Type }})

{{ .Description }}

## Example Usage

{{ .Example }}

## Signature

{{ .Signature }}

## Arguments

{{ .Arguments }}

## Return Type

{{ .Return }}
"#;

/// Every page of docs/, by path relative to the repository root.
pub fn generate(root: &Path) -> Result<BTreeMap<PathBuf, String>> {
    check_descriptions()?;
    let mut pages = BTreeMap::new();
    let mut index_lists: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut import_rows = Vec::new();

    let schema_pages: Vec<(KindInfo, &'static str, Schema)> = resources::all()
        .iter()
        .map(|r| (RESOURCES, r.type_name(), r.schema()))
        .chain(
            data_sources::all()
                .iter()
                .map(|d| (DATA_SOURCES, d.type_name(), d.schema())),
        )
        .chain(
            ephemeral::all()
                .iter()
                .map(|e| (EPHEMERAL, e.type_name(), e.schema())),
        )
        .collect();
    for (kind, type_name, schema) in schema_pages {
        let short = type_name.trim_start_matches("hybrid_");
        let mut values = BTreeMap::new();
        values.insert("Name", type_name.to_string());
        values.insert("Type", kind.label.to_string());
        values.insert("Description", schema.description.trim().to_string());
        values.insert(
            "Example",
            example(
                root,
                &format!("examples/{}/{type_name}/{}", kind.dir, kind.example),
            )?,
        );
        let owner = kind.owner.unwrap_or(Owner::Resource);
        values.insert("Schema", schema::section(&schema, owner));
        values.insert("ReplacingAttributes", replacing_list(&schema));
        if matches!(owner, Owner::Resource) {
            let import = import(root, type_name, &schema)?;
            values.insert("Import", import.section.clone());
            values.insert("ImportId", import.format.clone());
            import_rows.push(format!(
                "| [`{type_name}`](../resources/{short}.md) | `{}` | `{}` |",
                import.format, import.example_id
            ));
        }
        let page = page(root, kind, short, &values)?;
        pages.insert(PathBuf::from(format!("docs/{}/{short}.md", kind.dir)), page);
        index_lists.entry(kind.dir).or_default().push(format!(
            "- [`{type_name}`]({}/{short}.md) — {}",
            kind.dir,
            schema::sentence(&schema.description)
        ));
    }
    for function in functions::all() {
        let def = function.definition();
        let name = function.name();
        let mut values = BTreeMap::new();
        values.insert("Name", name.to_string());
        values.insert("Type", FUNCTIONS.label.to_string());
        values.insert("Summary", def.summary.trim().to_string());
        values.insert("Description", def.description.trim().to_string());
        values.insert(
            "Example",
            example(root, &format!("examples/functions/{name}/function.tf"))?,
        );
        let params: Vec<String> = def
            .parameters
            .iter()
            .map(|p| format!("{} {}", p.name, p.ty))
            .collect();
        values.insert(
            "Signature",
            code_block(
                "text",
                &format!(
                    "{name}({}) {}",
                    params.join(", "),
                    short_type(&def.return_type)
                ),
            ),
        );
        values.insert(
            "Arguments",
            def.parameters
                .iter()
                .map(|p| {
                    format!(
                        "1. `{}` ({}{}) {}",
                        p.name,
                        schema::type_name(&p.ty),
                        if p.allow_null { ", Nullable" } else { "" },
                        p.description.trim()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
        );
        values.insert(
            "Return",
            code_block("hcl", &schema::type_expr(&def.return_type, 0)),
        );
        let page = page(root, FUNCTIONS, name, &values)?;
        pages.insert(PathBuf::from(format!("docs/functions/{name}.md")), page);
        index_lists.entry("functions").or_default().push(format!(
            "- [`provider::hybrid::{name}`](functions/{name}.md) — {}",
            schema::sentence(&def.summary)
        ));
    }
    orphan_templates(root)?;

    // Values every other page (index, guides) may use.
    let mut common: BTreeMap<&'static str, String> = BTreeMap::new();
    for (dir, token) in [
        ("resources", "Resources"),
        ("data-sources", "DataSources"),
        ("ephemeral-resources", "EphemeralResources"),
        ("functions", "Functions"),
    ] {
        common.insert(
            token,
            index_lists.remove(dir).unwrap_or_default().join("\n"),
        );
    }
    common.insert(
        "Schema",
        schema::section(&config::schema(), Owner::Provider),
    );
    common.insert("Guides", guides_list(root)?);
    common.insert(
        "ImportIds",
        format!(
            "| Resource | Import id | Example |\n|---|---|---|\n{}",
            import_rows.join("\n")
        ),
    );
    common.insert("HostFlags", host_flags::tables());
    common.insert("Limits", limits_table());
    common.insert("AgentFlags", host_flags::agent_tables());
    common.insert(
        "GuestContract",
        hybrid_api::agent::GUEST_CONTRACT.to_string(),
    );
    common.insert(
        "BootstrapContract",
        hybrid_api::bootstrap::CONTRACT.to_string(),
    );
    common.insert("BootstrapFields", bootstrap_tables()?);

    let templates = root.join("templates");
    for file in files_under(&templates)? {
        let rel = file.strip_prefix(&templates).unwrap_or(&file);
        let Some(name) = rel.to_str().and_then(|s| s.strip_suffix(".md.tmpl")) else {
            continue;
        };
        let first = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy());
        if matches!(
            first.as_deref(),
            Some("resources" | "data-sources" | "ephemeral-resources" | "functions")
        ) {
            continue;
        }
        let origin = format!("templates/{}", rel.display());
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading {origin}"))?;
        let page = template::render(&text, &origin, &common, root)?;
        pages.insert(PathBuf::from(format!("docs/{name}.md")), finish(page));
    }
    let index = pages
        .get(Path::new("docs/index.md"))
        .context("templates/index.md.tmpl is missing: the provider page is generated from it")?;
    for variable in [
        config::ENV_ENDPOINT,
        config::ENV_TOKEN,
        config::ENV_CA_CERT_FILE,
    ] {
        if !index.contains(variable) {
            bail!("templates/index.md.tmpl must document the environment variable {variable}");
        }
    }
    Ok(pages)
}

/// Every attribute, schema and function parameter has a description, or
/// the error lists the ones that lack one.
fn check_descriptions() -> Result<()> {
    let mut missing = Vec::new();
    let mut add = |what: String, schema: &Schema| {
        for path in schema::undescribed(schema) {
            missing.push(format!("{what}: {path}"));
        }
    };
    add("provider".into(), &config::schema());
    for r in resources::all() {
        add(format!("resource {}", r.type_name()), &r.schema());
    }
    // Checked separately: `add` holds `missing` until its last use.
    let mut contradicting = Vec::new();
    for r in resources::all() {
        for path in schema::contradictions(&r.schema()) {
            contradicting.push(format!(
                "resource {}: {path} (its description contradicts requires_replace)",
                r.type_name()
            ));
        }
    }
    for d in data_sources::all() {
        add(format!("data source {}", d.type_name()), &d.schema());
    }
    for e in ephemeral::all() {
        add(format!("ephemeral resource {}", e.type_name()), &e.schema());
    }
    missing.extend(contradicting);
    for f in functions::all() {
        let def = f.definition();
        if def.summary.trim().is_empty() || def.description.trim().is_empty() {
            missing.push(format!("function {}: summary or description", f.name()));
        }
        for p in &def.parameters {
            if p.description.trim().is_empty() {
                missing.push(format!("function {}: parameter {}", f.name(), p.name));
            }
        }
    }
    if !missing.is_empty() {
        bail!(
            "every attribute needs a description (`.description(\"…\")` in its schema) that \
             agrees with its plan behaviour; these do not:\n{}",
            missing
                .iter()
                .map(|m| format!("  - {m}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    Ok(())
}

/// Renders the page of one resource, data source, ephemeral resource or
/// function from its template (or the default one).
fn page(
    root: &Path,
    kind: KindInfo,
    short: &str,
    values: &BTreeMap<&'static str, String>,
) -> Result<String> {
    let origin = format!("templates/{}/{short}.md.tmpl", kind.dir);
    let text = match std::fs::read_to_string(root.join(&origin)) {
        Ok(text) => text,
        Err(_) if kind.dir == "functions" => DEFAULT_FUNCTION_TEMPLATE.to_string(),
        Err(_) if kind.dir == "resources" => {
            format!("{DEFAULT_TEMPLATE}{DEFAULT_RESOURCE_TEMPLATE_TAIL}")
        }
        Err(_) => DEFAULT_TEMPLATE.to_string(),
    };
    for placeholder in kind.required {
        if !text.contains(&format!("{{{{ {placeholder} }}}}")) {
            bail!("{origin} must use {{{{ {placeholder} }}}}");
        }
    }
    Ok(finish(template::render(&text, &origin, values, root)?))
}

/// Templates under a schema-backed directory that name no such object.
fn orphan_templates(root: &Path) -> Result<()> {
    let mut known: Vec<String> = Vec::new();
    for r in resources::all() {
        known.push(format!(
            "resources/{}",
            r.type_name().trim_start_matches("hybrid_")
        ));
    }
    for d in data_sources::all() {
        known.push(format!(
            "data-sources/{}",
            d.type_name().trim_start_matches("hybrid_")
        ));
    }
    for e in ephemeral::all() {
        known.push(format!(
            "ephemeral-resources/{}",
            e.type_name().trim_start_matches("hybrid_")
        ));
    }
    for f in functions::all() {
        known.push(format!("functions/{}", f.name()));
    }
    for kind in [RESOURCES, DATA_SOURCES, EPHEMERAL, FUNCTIONS] {
        for file in files_under(&root.join("templates").join(kind.dir))? {
            let Some(name) = file
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".md.tmpl"))
            else {
                continue;
            };
            if !known.contains(&format!("{}/{name}", kind.dir)) {
                bail!(
                    "templates/{}/{name}.md.tmpl names no {} of the provider",
                    kind.dir,
                    kind.label.to_lowercase()
                );
            }
        }
    }
    Ok(())
}

/// One trailing newline, no trailing spaces.
fn finish(page: String) -> String {
    let mut out: String = page
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n");
    while out.ends_with('\n') {
        out.pop();
    }
    out.push('\n');
    out
}

fn example(root: &Path, path: &str) -> Result<String> {
    let text = std::fs::read_to_string(root.join(path))
        .with_context(|| format!("{path} is missing: every page's Example Usage embeds it"))?;
    Ok(code_block("terraform", &text))
}

fn replacing_list(schema: &Schema) -> String {
    let list = schema::replacing(schema);
    if list.is_empty() {
        "none".into()
    } else {
        list.iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn short_type(ty: &hybrid_cty::Type) -> String {
    match ty {
        hybrid_cty::Type::Object { .. } => "object".into(),
        other => other.to_string(),
    }
}

struct Import {
    section: String,
    /// e.g. `/clusters/<name>`.
    format: String,
    example_id: String,
}

/// The `## Import` section of a resource: the id format (from the `id`
/// attribute's description), `examples/resources/<type>/import.sh` verbatim,
/// and the same import as an `import` block.
fn import(root: &Path, type_name: &str, schema: &Schema) -> Result<Import> {
    let id = schema
        .attributes
        .iter()
        .find(|a| a.name == "id")
        .with_context(|| format!("resource {type_name} has no `id` attribute to import by"))?;
    let format = id
        .description
        .split('`')
        .skip(1)
        .step_by(2)
        .find(|span| span.contains('/'))
        .with_context(|| {
            format!(
                "the description of {type_name}.id must give the import id format in backticks, \
                 e.g. `/clusters/<name>`"
            )
        })?
        .to_string();
    let path = format!("examples/resources/{type_name}/import.sh");
    let script = std::fs::read_to_string(root.join(&path))
        .with_context(|| format!("{path} is missing: the Import section embeds it"))?;
    let (address, example_id) = script
        .lines()
        .find_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["terraform", "import", address, id] => Some((
                    address.to_string(),
                    id.trim_matches(|c| c == '"' || c == '\'').to_string(),
                )),
                _ => None,
            }
        })
        .with_context(|| format!("{path} has no `terraform import ADDRESS ID` line"))?;
    if !matches_format(&format, &example_id) {
        bail!(
            "{path} imports id {example_id:?}, which does not have the format {format} of {type_name}.id"
        );
    }
    let mut section = String::from("## Import\n\n");
    let _ = write!(
        section,
        "Import an existing `{type_name}` by its `id`, `{format}`, with `terraform import`:\n\n\
         {}\n\n\
         Or, with Terraform 1.5 and later, with an `import` block:\n\n\
         {}",
        code_block("shell", &script),
        code_block(
            "terraform",
            &format!("import {{\n  to = {address}\n  id = \"{example_id}\"\n}}")
        )
    );
    Ok(Import {
        section,
        format,
        example_id,
    })
}

/// Whether `id` fits `format`, where each `<placeholder>` stands for one or
/// more characters.
fn matches_format(format: &str, id: &str) -> bool {
    match format.find('<') {
        None => format == id,
        Some(open) => {
            let Some(close) = format[open..].find('>').map(|c| open + c) else {
                return format == id;
            };
            let (literal, rest) = (&format[..open], &format[close + 1..]);
            let Some(tail) = id.strip_prefix(literal) else {
                return false;
            };
            (1..=tail.len())
                .filter(|&n| tail.is_char_boundary(n))
                .any(|n| matches_format(rest, &tail[n..]))
        }
    }
}

/// The size and count limits of `hybrid_api::limits`, as a table.
fn limits_table() -> String {
    let mut out = String::from("| Where | What | Limit |\n|---|---|---|\n");
    for [place, what, limit] in hybrid_api::limits::documented() {
        out.push_str(&format!("| {place} | {what} | {limit} |\n"));
    }
    out.trim_end().to_string()
}

/// The bootstrap document's and secret's fields, from their JSON schemas
/// (so that the guide cannot drift from `hybrid_api::bootstrap`).
fn bootstrap_tables() -> Result<String> {
    use serde_json::Value;
    let mut out = Vec::new();
    for (name, schema) in hybrid_api::bootstrap::schemas() {
        let required: Vec<&str> = schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let props = schema["properties"]
            .as_object()
            .with_context(|| format!("the schema of {name} has no properties"))?;
        let mut table =
            format!("`{name}`:\n\n| Field | Type | Required | Meaning |\n|---|---|---|---|\n");
        for (field, p) in props {
            let ty = schema_type(&schema, p);
            let description = p["description"]
                .as_str()
                .with_context(|| format!("{name}.{field} has no description"))?
                .replace('\n', " ")
                .replace('|', "\\|");
            table.push_str(&format!(
                "| `{field}` | {ty} | {} | {description} |\n",
                if required.contains(&field.as_str()) {
                    "yes"
                } else {
                    "no"
                }
            ));
        }
        out.push(table.trim_end().to_string());
    }
    Ok(out.join("\n\n"))
}

/// A property's type for a table: `string`, `integer`, `map of string`,
/// `list of string`, or the enum's values.
fn schema_type(root: &serde_json::Value, p: &serde_json::Value) -> String {
    use serde_json::Value;
    let resolved = p["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .map(|d| &root["$defs"][d])
        .unwrap_or(p);
    let values: Vec<String> = resolved["enum"]
        .as_array()
        .or_else(|| resolved["oneOf"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| {
            v.as_str()
                .or_else(|| v["const"].as_str())
                .or_else(|| v["enum"][0].as_str())
        })
        .map(|v| format!("`{v}`"))
        .collect();
    if !values.is_empty() {
        return values.join(", ");
    }
    let ty = match &resolved["type"] {
        Value::String(t) => t.clone(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".to_string(),
    };
    match ty.as_str() {
        "object" => format!(
            "map of {}",
            schema_type(root, &resolved["additionalProperties"])
        ),
        "array" => format!("list of {}", schema_type(root, &resolved["items"])),
        _ => ty,
    }
}

/// `- [Title](guides/x.md) — description` for every guide template,
/// getting started first.
fn guides_list(root: &Path) -> Result<String> {
    let mut out = Vec::new();
    let mut files = files_under(&root.join("templates").join("guides"))?;
    files.sort_by_key(|f| !f.ends_with("getting-started.md.tmpl"));
    for file in files {
        let Some(name) = file
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".md.tmpl"))
        else {
            continue;
        };
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let title = front_matter(&text, "page_title")
            .with_context(|| format!("templates/guides/{name}.md.tmpl has no page_title"))?;
        let description = front_matter(&text, "description").unwrap_or_default();
        out.push(format!("- [{title}](guides/{name}.md) — {description}"));
    }
    Ok(out.join("\n"))
}

/// A front-matter value: `key: "text"` or `key: |-` and its indented lines.
fn front_matter(text: &str, key: &str) -> Option<String> {
    let mut lines = text.lines();
    let line = lines.find(|l| l.starts_with(&format!("{key}:")))?;
    let value = line[key.len() + 1..].trim();
    if value == "|-" || value == "|" {
        let body: Vec<&str> = lines
            .take_while(|l| l.starts_with(' '))
            .map(str::trim)
            .collect();
        Some(body.join(" "))
    } else {
        Some(value.trim_matches('"').to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The drift check CI relies on (`cargo test --workspace`): the committed
    /// docs/ are exactly what `cargo xtask docs` generates.
    #[test]
    fn committed_docs_match_generated() {
        let root = util::root();
        let pages = match generate(&root) {
            Ok(pages) => pages,
            Err(e) => panic!("generating the docs failed: {e:#}"),
        };
        let problems = match drift(&root, &pages) {
            Ok(problems) => problems,
            Err(e) => panic!("comparing the docs failed: {e:#}"),
        };
        assert!(
            problems.is_empty(),
            "docs/ differs from what `cargo xtask docs` generates:\n{}\nTo fix: {FIX}.",
            problems.join("\n")
        );
    }

    #[test]
    fn import_id_formats_match_placeholders() {
        assert!(matches_format("/clusters/<name>", "/clusters/prod-a"));
        assert!(matches_format(
            "<target_id>/extensions/<name>",
            "/clusters/apps/extensions/flux"
        ));
        assert!(!matches_format("/clusters/<name>", "/vnets/x"));
        assert!(!matches_format("/clusters/<name>", "/clusters/"));
    }

    #[test]
    fn drift_names_the_file_and_line() {
        let dir = tempfile_dir();
        std::fs::create_dir_all(dir.join("docs")).unwrap();
        std::fs::write(dir.join("docs/a.md"), "one\ntwo\n").unwrap();
        std::fs::write(dir.join("docs/stale.md"), "x\n").unwrap();
        let pages = BTreeMap::from([
            (PathBuf::from("docs/a.md"), "one\nthree\n".to_string()),
            (PathBuf::from("docs/b.md"), "b\n".to_string()),
        ]);
        let problems = drift(&dir, &pages).unwrap();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems[0].contains("docs/a.md differs at line 2"),
            "{problems:?}"
        );
        assert!(problems[1].contains("docs/b.md is missing"), "{problems:?}");
        assert!(
            problems[2].contains("docs/stale.md is not generated"),
            "{problems:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-docs-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn front_matter_values_are_read() {
        let text = "---\npage_title: \"Getting started\"\ndescription: |-\n  From zero\n  to a cluster.\n---\n";
        assert_eq!(front_matter(text, "page_title").unwrap(), "Getting started");
        assert_eq!(
            front_matter(text, "description").unwrap(),
            "From zero to a cluster."
        );
    }
}
