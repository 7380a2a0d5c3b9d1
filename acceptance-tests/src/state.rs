//! Helpers over `terraform show -json` output.

use serde_json::Value;

/// Finds the resource or data source at `address` (e.g. `hybrid_vnet.a`,
/// `data.hybrid_vnet.b`, `module.m.hybrid_vnet.c`) in `terraform show -json`
/// output and returns its `values` object.
pub fn find_resource<'a>(show: &'a Value, address: &str) -> Option<&'a Value> {
    fn walk<'a>(module: &'a Value, address: &str) -> Option<&'a Value> {
        let here = module
            .get("resources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|r| r.get("address").and_then(Value::as_str) == Some(address))
            .and_then(|r| r.get("values"));
        here.or_else(|| {
            module
                .get("child_modules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find_map(|m| walk(m, address))
        })
    }
    walk(show.pointer("/values/root_module")?, address)
}

/// Compares two attribute objects key by key and describes each difference,
/// skipping the top-level keys in `ignore` (e.g. `timeouts`, which import
/// cannot know). An empty result means equal.
pub fn attributes_diff(want: &Value, got: &Value, ignore: &[&str]) -> Vec<String> {
    let empty = serde_json::Map::new();
    let a = want.as_object().unwrap_or(&empty);
    let b = got.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !ignore.contains(&k.as_str()))
        .filter_map(|k| {
            let (x, y) = (
                a.get(k).unwrap_or(&Value::Null),
                b.get(k).unwrap_or(&Value::Null),
            );
            (x != y).then(|| format!("{k}: applied {x} but imported {y}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_resources_in_root_and_child_modules() {
        let show = json!({"values": {"root_module": {
            "resources": [
                {"address": "hybrid_vnet.a", "values": {"name": "a"}},
                {"address": "data.hybrid_vnet.a", "values": {"name": "da"}}
            ],
            "child_modules": [{"resources": [
                {"address": "module.m.hybrid_vnet.c", "values": {"name": "c"}}
            ]}]
        }}});
        assert_eq!(find_resource(&show, "hybrid_vnet.a").unwrap()["name"], "a");
        assert_eq!(
            find_resource(&show, "data.hybrid_vnet.a").unwrap()["name"],
            "da"
        );
        assert_eq!(
            find_resource(&show, "module.m.hybrid_vnet.c").unwrap()["name"],
            "c"
        );
        assert!(find_resource(&show, "hybrid_vnet.zz").is_none());
        assert!(find_resource(&json!({}), "hybrid_vnet.a").is_none());
    }

    #[test]
    fn diff_reports_changed_missing_and_ignores_keys() {
        let a = json!({"id": "/vnets/a", "tags": {"x": "1"}, "timeouts": {"create": "5m"}});
        let b = json!({"id": "/vnets/a", "tags": {"x": "2"}, "timeouts": null, "extra": 1});
        let diff = attributes_diff(&a, &b, &["timeouts"]);
        assert_eq!(diff.len(), 2, "{diff:?}");
        assert!(diff[0].starts_with("extra:"));
        assert!(diff[1].starts_with("tags:"));
        assert!(attributes_diff(&a, &a, &[]).is_empty());
    }
}
