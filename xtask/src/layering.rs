//! `cargo xtask layering` (also a step of `cargo xtask test`): the rules
//! the code's structure must keep, read from the sources.
//!
//! - No module import cycles in `hybrid-host`, `terraform-provider-hybrid`
//!   or `hybrid-cty`: between the top-level modules of a crate, and
//!   between the files of one folder.
//! - Only `host/src/http/` (and the `lib.rs`/`main.rs` wiring) uses axum,
//!   hyper or the `http` crate: the domain, the store and the drivers know
//!   nothing of HTTP.
//! - The provider's `framework/` knows nothing of the product (the host
//!   client, resources, data sources), so it could be its own crate.
//!
//! A module "uses" another when its code names it by path (`crate::x`,
//! `super::x` for a sibling file), in a `use` line or inline.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The crates whose modules must not import in a circle.
const CRATES: &[&str] = &["host/src", "provider/src", "provider/cty/src"];

/// Checks every rule; the error lists every violation.
pub fn run(root: Option<PathBuf>) -> Result<()> {
    let root = root.unwrap_or_else(crate::util::root);
    let problems = check(&root)?;
    if problems.is_empty() {
        eprintln!(
            "layering: no module cycles; HTTP only in host/src/http; the provider framework is free of the product"
        );
        return Ok(());
    }
    for p in &problems {
        eprintln!("layering: {p}");
    }
    bail!("{} layering rule(s) broken", problems.len())
}

/// Every violation in the repository at `root`.
pub fn check(root: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for krate in CRATES {
        let files = sources(&root.join(krate))?;
        for cycle in cycles(&graph(&files)) {
            problems.push(format!("{krate}: import cycle {}", cycle.join(" -> ")));
        }
    }
    let host = root.join("host/src");
    for (file, text) in sources(&host)? {
        let wiring = file == Path::new("lib.rs") || file == Path::new("main.rs");
        if file.starts_with("http") || wiring {
            continue;
        }
        for (n, line) in code_lines(&text) {
            if let Some(name) = http_crate(line) {
                problems.push(format!(
                    "host/src/{}:{n} uses {name}; only host/src/http/ may use HTTP types",
                    file.display()
                ));
            }
        }
    }
    let provider = root.join("provider/src");
    for (file, text) in sources(&provider)? {
        if !file.starts_with("framework") {
            continue;
        }
        for (n, line) in code_lines(&text) {
            for product in [
                "crate::client",
                "crate::resources",
                "crate::data_sources",
                "crate::config",
                "crate::ephemeral",
                "crate::functions",
                "hybrid_api",
            ] {
                if mentions(line, product) {
                    problems.push(format!(
                        "provider/src/{}:{n} uses {product}; framework/ must know nothing of the product",
                        file.display()
                    ));
                }
            }
        }
    }
    Ok(problems)
}

/// The `.rs` files under `dir`, by path relative to it, with their text.
fn sources(dir: &Path) -> Result<BTreeMap<PathBuf, String>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let rel = path.strip_prefix(dir).unwrap_or(&path).to_path_buf();
                out.insert(rel, text);
            }
        }
    }
    Ok(out)
}

/// Lines of code, numbered from 1, without `//` comments and without the
/// `#[cfg(test)]` module that closes a file (tests may use anything).
fn code_lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        let code = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        if !code.trim().is_empty() {
            out.push((i + 1, code));
        }
    }
    out
}

/// Whether `line` names the path `path` (not as part of a longer name).
fn mentions(line: &str, path: &str) -> bool {
    line.match_indices(path).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + path.len()..].chars().next();
        let ends_a_name =
            path.ends_with("::") || !after.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') && ends_a_name
    })
}

/// The HTTP crate a line of code uses, if any.
fn http_crate(line: &str) -> Option<&'static str> {
    ["axum", "axum_server", "hyper", "hyper_util", "http"]
        .into_iter()
        .find(|name| mentions(line, &format!("{name}::")))
}

/// A node of the import graph: a crate's top-level module, or a file of
/// a folder (`folder/file`).
type Graph = BTreeMap<String, BTreeSet<String>>;

/// The module of `file` at the top level (`clusters/admission/mod.rs` →
/// `clusters`; `lib.rs` → none: the crate root only wires).
fn top_module(file: &Path) -> Option<String> {
    let first = file.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

/// The node of a file within its folder: `store/sqlite/tx.rs` →
/// `store/sqlite/tx`; `store/sqlite/mod.rs` → none (a folder's root wires
/// its files).
fn file_node(file: &Path) -> Option<String> {
    let stem = file.file_stem()?.to_str()?;
    if matches!(stem, "mod" | "lib" | "main") {
        return None;
    }
    let parent = file.parent()?;
    Some(parent.join(stem).to_string_lossy().into_owned())
}

/// Edges between top-level modules (`crate::x`) and between files of one
/// folder (`super::x` from `a/b.rs` is `a/x`, when `a/x.rs` exists; for
/// files of the crate root, `crate::x` is the sibling `x`).
fn graph(files: &BTreeMap<PathBuf, String>) -> Graph {
    let tops: BTreeSet<String> = files.keys().filter_map(|f| top_module(f)).collect();
    let nodes: BTreeSet<String> = files.keys().filter_map(|f| file_node(f)).collect();
    let mut g = Graph::new();
    for (file, text) in files {
        let top = top_module(file);
        let node = file_node(file);
        let folder = file.parent().map(|p| p.to_string_lossy().into_owned());
        for (_, line) in code_lines(text) {
            for (at, _) in line.match_indices("crate::") {
                let name: String = line[at + 7..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if let Some(top) = &top
                    && tops.contains(&name)
                    && name != *top
                {
                    g.entry(top.clone()).or_default().insert(name.clone());
                }
            }
            let (Some(node), Some(folder)) = (&node, &folder) else {
                continue;
            };
            for (at, _) in line.match_indices("super::") {
                if line[..at].ends_with("::") {
                    continue; // super::super::… leaves the folder
                }
                let name: String = line[at + 7..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let sibling = Path::new(folder).join(&name).to_string_lossy().into_owned();
                if nodes.contains(&sibling) && sibling != *node {
                    g.entry(node.clone()).or_default().insert(sibling);
                }
            }
        }
    }
    g
}

/// Every elementary cycle found by a depth-first search, each reported once
/// (starting at its smallest node).
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    let mut found: BTreeSet<Vec<String>> = BTreeSet::new();
    for start in g.keys() {
        let mut path = vec![start.clone()];
        walk(g, start, &mut path, &mut found);
    }
    found
        .into_iter()
        .map(|mut c| {
            c.push(c[0].clone());
            c
        })
        .collect()
}

fn walk(g: &Graph, start: &str, path: &mut Vec<String>, found: &mut BTreeSet<Vec<String>>) {
    let Some(next) = path.last().and_then(|last| g.get(last)) else {
        return;
    };
    for n in next {
        if n == start {
            // Report each cycle once: from its smallest node.
            if path.iter().all(|p| p.as_str() >= start) {
                found.insert(path.clone());
            }
        } else if !path.contains(n) && n.as_str() > start {
            path.push(n.clone());
            walk(g, start, path, found);
            path.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> BTreeMap<PathBuf, String> {
        list.iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect()
    }

    #[test]
    fn finds_cycles_between_modules_and_between_sibling_files() {
        let g = graph(&files(&[
            ("lib.rs", "pub mod a; pub mod b; use crate::a::X;"),
            ("a/mod.rs", "use crate::b::Y;"),
            ("b.rs", "fn f() { crate::a::g() }"),
            ("c/mod.rs", "mod x; mod y;"),
            ("c/x.rs", "use super::y::Z;"),
            ("c/y.rs", "use super::x::W; // crate::a in a comment"),
        ]));
        let c = cycles(&g);
        assert_eq!(
            c,
            vec![
                vec!["a".to_string(), "b".into(), "a".into()],
                vec!["c/x".to_string(), "c/y".into(), "c/x".into()],
            ],
            "{g:?}"
        );
    }

    #[test]
    fn a_layered_tree_has_no_cycle() {
        let g = graph(&files(&[
            (
                "http/mod.rs",
                "use crate::objects::Error; use crate::store::Tx;",
            ),
            ("objects/mod.rs", "use crate::store::Tx;"),
            ("store/mod.rs", "mod sqlite;"),
            ("store/sqlite/mod.rs", "mod tx; use tx::SqlTx;"),
            ("store/sqlite/tx.rs", "use super::codec::x;"),
            ("store/sqlite/codec.rs", "use crate::store::StoreError;"),
        ]));
        assert!(cycles(&g).is_empty(), "{g:?}");
    }

    #[test]
    fn http_crates_are_recognised_but_not_our_http_module() {
        assert_eq!(http_crate("use axum::Router;"), Some("axum"));
        assert_eq!(
            http_crate("let s = axum::http::StatusCode::OK;"),
            Some("axum")
        );
        assert_eq!(http_crate("use http::HeaderMap;"), Some("http"));
        assert_eq!(http_crate("use crate::http::AppState;"), None);
        assert_eq!(http_crate("use super::http::x;"), None);
        assert_eq!(http_crate("let myaxum::x = 1;"), None);
    }

    #[test]
    fn the_repository_keeps_its_layering() {
        let problems = check(&crate::util::root()).expect("sources readable");
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
