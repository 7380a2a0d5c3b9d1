//! Reading a saved plan (`terraform show -json PLANFILE`) the way a reviewer
//! reads `terraform plan`: per resource address, the action (create, update,
//! replace, …), which attributes change, which are "known after apply"
//! (`after_unknown`) and which force the replacement (`replace_paths`).
//!
//! Paths are written as dotted strings: `network.plugin`, `labels.tier`,
//! `nodes` (a whole unknown list), `control_plane_nodes[0].ip`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::{Error, Result};

/// One entry of a plan's `resource_changes`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceChange {
    /// Full address, e.g. `module.cluster.hybrid_nodepool.this["linux1"]`.
    pub address: String,
    /// Terraform's actions, e.g. `["update"]` or `["delete", "create"]`.
    pub actions: Vec<String>,
    /// The prior values (`null` for a create).
    pub before: Value,
    /// The planned values, with unknown values left out.
    pub after: Value,
    /// Mirrors `after`: `true` where a value is unknown until apply.
    pub after_unknown: Value,
    /// Attribute paths that force the replacement, dotted.
    pub replace_paths: Vec<String>,
    /// Terraform's `action_reason`, e.g. `replace_because_cannot_update`.
    pub action_reason: Option<String>,
}

impl ResourceChange {
    /// The action in one word as `terraform plan` prints it: `no-op`,
    /// `create`, `read`, `update`, `delete`, or `replace` (for
    /// delete-then-create and create-then-delete alike).
    pub fn action(&self) -> &str {
        match self.actions.as_slice() {
            [one] => one.as_str(),
            [a, b] if (a == "delete" && b == "create") || (a == "create" && b == "delete") => {
                "replace"
            }
            [] => "none",
            _ => "mixed",
        }
    }

    /// Whether the plan leaves this resource alone.
    pub fn is_noop(&self) -> bool {
        matches!(self.action(), "no-op" | "read")
    }

    /// Paths whose planned value is unknown until apply.
    pub fn unknown_paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        true_leaves(&self.after_unknown, String::new(), &mut out);
        out
    }

    /// Paths whose known planned value differs from the prior one (an
    /// attribute added or removed counts; an unknown one does not, see
    /// [`ResourceChange::unknown_paths`]). Objects, maps and lists are
    /// compared element by element, so a changed label is `labels.tier`.
    pub fn changed_paths(&self) -> Vec<String> {
        let unknown = self.unknown_paths();
        let mut out = Vec::new();
        diff_leaves(&self.before, &self.after, String::new(), &mut out);
        // A value that is unknown shows as absent/null in `after`; that is
        // not a known change. Drop it and anything under it.
        out.retain(|p| !unknown.iter().any(|u| is_prefix_path(u, p)));
        out
    }

    /// The top-level attributes of [`ResourceChange::changed_paths`], in
    /// their order, each once in a row (`nodes[0].ip` and `nodes[1].ip` are
    /// `nodes`).
    pub fn changed_attributes(&self) -> Vec<String> {
        let mut attributes: Vec<String> = self
            .changed_paths()
            .iter()
            .map(|p| p.split(['.', '[']).next().unwrap_or_default().to_string())
            .collect();
        attributes.dedup();
        attributes
    }

    /// The value at dotted `path` in `before` (`Null` when absent).
    pub fn before_at(&self, path: &str) -> Value {
        at_path(&self.before, path).cloned().unwrap_or(Value::Null)
    }

    /// The value at dotted `path` in `after` (`Null` when absent or unknown).
    pub fn after_at(&self, path: &str) -> Value {
        at_path(&self.after, path).cloned().unwrap_or(Value::Null)
    }

    /// A one-line description for failure messages.
    pub fn describe(&self) -> String {
        let mut s = format!("{} {}", self.address, self.action());
        let changed = self.changed_paths();
        if !changed.is_empty() {
            let _ = write!(s, " changed={changed:?}");
        }
        let unknown = self.unknown_paths();
        if !unknown.is_empty() {
            let _ = write!(s, " unknown={unknown:?}");
        }
        if !self.replace_paths.is_empty() {
            let _ = write!(s, " replace_paths={:?}", self.replace_paths);
        }
        if let Some(reason) = &self.action_reason {
            let _ = write!(s, " reason={reason}");
        }
        s
    }
}

/// Every `resource_changes` entry of a plan, in the plan's order. Fails if
/// the plan JSON does not have the documented shape.
pub fn resource_changes(plan: &Value) -> Result<Vec<ResourceChange>> {
    changes_under(plan, "resource_changes")
}

/// Every `resource_drift` entry of a plan: what `terraform plan` reports as
/// "Objects have changed outside of Terraform" (Terraform prints only the
/// drift it deems relevant to the planned changes; the JSON has all of it).
pub fn resource_drift(plan: &Value) -> Result<Vec<ResourceChange>> {
    changes_under(plan, "resource_drift")
}

/// The (name, actions) of every output the plan changes.
pub fn output_changes(plan: &Value) -> Vec<(String, Vec<String>)> {
    plan.get("output_changes")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, change)| {
            let actions = change
                .get("actions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(String::from))
                .collect();
            (name.clone(), actions)
        })
        .filter(|(_, actions): &(String, Vec<String>)| actions != &["no-op"])
        .collect()
}

/// Fails unless the plan is quiet, as every plan right after an apply must
/// be: every resource a no-op (a data source read deferred to the apply
/// counts as a change), no output changes, and no drift — no "Objects have
/// changed outside of Terraform" note, which a reviewer would have to read
/// and dismiss.
pub fn expect_quiet(plan: &Value) -> Result<()> {
    let mut problems = Vec::new();
    for change in resource_changes(plan)? {
        if change.actions != ["no-op"] {
            problems.push(format!("change: {}", change.describe()));
        }
    }
    for (name, actions) in output_changes(plan) {
        problems.push(format!("output change: {name} {actions:?}"));
    }
    for drift in resource_drift(plan)? {
        problems.push(format!(
            "changed outside of Terraform: {} {:?}",
            drift.address,
            drift.changed_paths()
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Check(format!(
            "the plan is not quiet:\n    {}",
            problems.join("\n    ")
        )))
    }
}

fn changes_under(plan: &Value, key: &str) -> Result<Vec<ResourceChange>> {
    let Some(items) = plan.get(key) else {
        // A plan with no resources (or no drift) has no such key.
        return Ok(Vec::new());
    };
    let items = items
        .as_array()
        .ok_or_else(|| Error::Check(format!("{key} is not a list: {items}")))?;
    items
        .iter()
        .map(|rc| {
            let address = rc
                .get("address")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::Check(format!("resource change without address: {rc}")))?;
            let change = rc
                .get("change")
                .ok_or_else(|| Error::Check(format!("{address}: no `change`: {rc}")))?;
            let actions = change
                .get("actions")
                .and_then(Value::as_array)
                .ok_or_else(|| Error::Check(format!("{address}: no `change.actions`: {rc}")))?
                .iter()
                .filter_map(|a| a.as_str().map(String::from))
                .collect();
            let replace_paths = change
                .get("replace_paths")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(path_to_string)
                .collect();
            Ok(ResourceChange {
                address: address.to_string(),
                actions,
                before: change.get("before").cloned().unwrap_or(Value::Null),
                after: change.get("after").cloned().unwrap_or(Value::Null),
                after_unknown: change.get("after_unknown").cloned().unwrap_or(Value::Null),
                replace_paths,
                action_reason: rc
                    .get("action_reason")
                    .and_then(Value::as_str)
                    .map(String::from),
            })
        })
        .collect()
}

/// The changes of managed resources that do something (not `no-op`, not a
/// data source `read`), by address.
pub fn effective_changes(plan: &Value) -> Result<BTreeMap<String, ResourceChange>> {
    Ok(resource_changes(plan)?
        .into_iter()
        .filter(|c| !c.is_noop())
        .map(|c| (c.address.clone(), c))
        .collect())
}

/// Address → action for every resource in the plan, no-ops included.
pub fn actions_by_address(plan: &Value) -> Result<BTreeMap<String, String>> {
    Ok(resource_changes(plan)?
        .into_iter()
        .map(|c| {
            let action = c.action().to_string();
            (c.address, action)
        })
        .collect())
}

/// Fails unless the plan's effective changes are exactly `expected`
/// (address, action) — every other resource a no-op — and returns them.
pub fn expect_exact_actions(
    plan: &Value,
    expected: &[(&str, &str)],
) -> Result<BTreeMap<String, ResourceChange>> {
    let changes = effective_changes(plan)?;
    let got: BTreeMap<&str, &str> = changes
        .iter()
        .map(|(a, c)| (a.as_str(), c.action()))
        .collect();
    let want: BTreeMap<&str, &str> = expected.iter().copied().collect();
    if got != want {
        return Err(Error::Check(format!(
            "planned actions differ\n  expected: {want:?}\n  planned:  {got:?}\n  details:\n    {}",
            describe_plan(plan)
        )));
    }
    Ok(changes)
}

/// Every resource change of a plan, one per line, for failure messages.
pub fn describe_plan(plan: &Value) -> String {
    match resource_changes(plan) {
        Ok(changes) => changes
            .iter()
            .map(ResourceChange::describe)
            .collect::<Vec<_>>()
            .join("\n    "),
        Err(e) => e.to_string(),
    }
}

/// Copies the directory tree `src` to `dest` the way a repository checkout
/// holds it: Terraform's own working files (`.terraform/`, state files, the
/// dependency lock file) are left behind, so the copy starts clean.
pub fn copy_tree(src: &Path, dest: &Path) -> Result<()> {
    fs::create_dir_all(dest).map_err(|e| Error::io("creating", dest, e))?;
    for entry in fs::read_dir(src).map_err(|e| Error::io("listing", src, e))? {
        let entry = entry.map_err(|e| Error::io("listing", src, e))?;
        let path = entry.path();
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        if name_str == ".terraform"
            || name_str == ".terraform.lock.hcl"
            || name_str.starts_with("terraform.tfstate")
            || name_str.ends_with(".tfplan")
        {
            continue;
        }
        let kind = entry
            .file_type()
            .map_err(|e| Error::io("inspecting", &path, e))?;
        let target = dest.join(&name);
        if kind.is_dir() {
            copy_tree(&path, &target)?;
        } else if kind.is_file() {
            fs::copy(&path, &target).map_err(|e| Error::io("copying", &path, e))?;
        }
    }
    Ok(())
}

/// `["network", "plugin"]` → `network.plugin`; `["nodes", 0, "ip"]` →
/// `nodes[0].ip`.
fn path_to_string(path: &Value) -> String {
    let mut s = String::new();
    for step in path.as_array().into_iter().flatten() {
        match step {
            Value::Number(n) => {
                let _ = write!(s, "[{n}]");
            }
            Value::String(k) => push_key(&mut s, k),
            other => push_key(&mut s, &other.to_string()),
        }
    }
    s
}

fn push_key(s: &mut String, key: &str) {
    if !s.is_empty() {
        s.push('.');
    }
    s.push_str(key);
}

fn child(prefix: &str, key: &str) -> String {
    let mut s = prefix.to_string();
    push_key(&mut s, key);
    s
}

/// Whether `prefix` is `path` or one of its ancestors.
fn is_prefix_path(prefix: &str, path: &str) -> bool {
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

/// Collects the paths of `true` leaves (an `after_unknown` value).
fn true_leaves(v: &Value, prefix: String, out: &mut Vec<String>) {
    match v {
        Value::Bool(true) => out.push(prefix),
        Value::Object(map) => {
            for (k, x) in map {
                true_leaves(x, child(&prefix, k), out);
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                true_leaves(x, format!("{prefix}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Collects the paths where `a` and `b` differ, down to the leaves (an
/// added or removed key or element is one path).
fn diff_leaves(a: &Value, b: &Value, prefix: String, out: &mut Vec<String>) {
    if a == b {
        return;
    }
    // A create (`before` null) or delete (`after` null) changes each
    // attribute that is set on the other side, not one nameless path.
    let empty = Value::Object(serde_json::Map::new());
    let (a, b) = match (a, b) {
        (Value::Null, Value::Object(_)) if prefix.is_empty() => (&empty, b),
        (Value::Object(_), Value::Null) if prefix.is_empty() => (a, &empty),
        _ => (a, b),
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                diff_leaves(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    child(&prefix, k),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                diff_leaves(p, q, format!("{prefix}[{i}]"), out);
            }
        }
        _ => out.push(prefix),
    }
}

/// The value at a dotted path (`a.b`, `a[0].b`; keys with dots are not
/// supported, which our attribute names never need).
fn at_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for part in path.split('.') {
        let (key, indices) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            cur = cur.get(key)?;
        }
        for idx in indices
            .split(['[', ']'])
            .filter(|s| !s.is_empty())
            .map(str::parse::<usize>)
        {
            cur = cur.get(idx.ok()?)?;
        }
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan() -> Value {
        json!({"resource_changes": [
            {"address": "module.c.hybrid_nodepool.this[\"linux1\"]",
             "change": {"actions": ["update"],
                "before": {"node_count": 2, "labels": {"a": "1"}, "nodes": [{"ip": "10.0.0.1"}], "name": "linux1"},
                "after": {"node_count": 3, "labels": {"a": "2", "b": "x"}, "name": "linux1"},
                "after_unknown": {"nodes": true, "labels": {}}}},
            {"address": "module.c.hybrid_cluster.this",
             "action_reason": "replace_because_cannot_update",
             "change": {"actions": ["delete", "create"],
                "before": {"network": {"plugin": "calico"}, "id": "/clusters/c"},
                "after": {"network": {"plugin": "flannel"}},
                "after_unknown": {"id": true, "control_plane_nodes": [false, {"ip": true}]},
                "replace_paths": [["network", "plugin"], ["nodes", 0, "ip"]]}},
            {"address": "module.s.hybrid_vnet.this",
             "change": {"actions": ["no-op"], "before": {}, "after": {}, "after_unknown": {}}}
        ]})
    }

    #[test]
    fn summarises_actions_paths_and_unknowns() {
        let changes = resource_changes(&plan()).unwrap();
        assert_eq!(changes.len(), 3);
        let pool = &changes[0];
        assert_eq!(pool.action(), "update");
        assert_eq!(pool.unknown_paths(), ["nodes"]);
        assert_eq!(pool.changed_paths(), ["labels.a", "labels.b", "node_count"]);
        assert_eq!(pool.before_at("nodes[0].ip"), json!("10.0.0.1"));
        assert_eq!(pool.after_at("node_count"), json!(3));
        let cluster = &changes[1];
        assert_eq!(cluster.action(), "replace");
        assert_eq!(cluster.replace_paths, ["network.plugin", "nodes[0].ip"]);
        assert_eq!(cluster.unknown_paths(), ["control_plane_nodes[1].ip", "id"]);
        // `id` is unknown, not a known change.
        assert_eq!(cluster.changed_paths(), ["network.plugin"]);
        assert!(changes[2].is_noop());
        let created = ResourceChange {
            before: Value::Null,
            after: json!({"name": "p", "labels": null, "id": null}),
            after_unknown: json!({"id": true}),
            ..changes[0].clone()
        };
        assert_eq!(created.changed_paths(), ["name"]);
        assert_eq!(
            cluster.action_reason.as_deref(),
            Some("replace_because_cannot_update")
        );
    }

    #[test]
    fn a_quiet_plan_has_no_change_no_output_change_and_no_drift() {
        let noop = json!({"address": "hybrid_vnet.a",
            "change": {"actions": ["no-op"], "before": {"x": 1}, "after": {"x": 1}, "after_unknown": {}}});
        let quiet = json!({
            "resource_changes": [noop],
            "output_changes": {"o": {"actions": ["no-op"]}}
        });
        expect_quiet(&quiet).unwrap();
        expect_quiet(&json!({})).unwrap();

        let mut drifted = quiet.clone();
        drifted["resource_drift"] = json!([{"address": "module.site.hybrid_vnet.this",
            "change": {"actions": ["update"],
                "before": {"vm_ip_pool": {"used": 0}}, "after": {"vm_ip_pool": {"used": 4}},
                "after_unknown": {}}}]);
        let err = expect_quiet(&drifted).unwrap_err().to_string();
        assert!(
            err.contains("changed outside of Terraform: module.site.hybrid_vnet.this")
                && err.contains("vm_ip_pool.used"),
            "{err}"
        );
        assert_eq!(resource_drift(&drifted).unwrap().len(), 1);

        let mut output = quiet.clone();
        output["output_changes"]["o"]["actions"] = json!(["update"]);
        let err = expect_quiet(&output).unwrap_err().to_string();
        assert!(err.contains("output change: o"), "{err}");

        let read = json!({"resource_changes": [{"address": "data.hybrid_vnet.u",
            "change": {"actions": ["read"], "before": null, "after": {}, "after_unknown": {}}}]});
        assert!(expect_quiet(&read).is_err());
        assert!(expect_quiet(&plan()).is_err());
    }

    #[test]
    fn exact_actions_ignore_noops_and_name_the_difference() {
        let p = plan();
        let ok = expect_exact_actions(
            &p,
            &[
                ("module.c.hybrid_nodepool.this[\"linux1\"]", "update"),
                ("module.c.hybrid_cluster.this", "replace"),
            ],
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
        let err = expect_exact_actions(&p, &[("module.c.hybrid_cluster.this", "replace")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("linux1"), "{err}");
        assert!(expect_exact_actions(&p, &[("module.s.hybrid_vnet.this", "update")]).is_err());
        assert_eq!(
            actions_by_address(&p).unwrap()["module.s.hybrid_vnet.this"],
            "no-op"
        );
        assert!(resource_changes(&json!({})).unwrap().is_empty());
        assert!(resource_changes(&json!({"resource_changes": 1})).is_err());
    }
}
