//! The documented limits on what the API stores: how many entries a list
//! or map may have and how long a string may be, plus the patterns of
//! names, addresses and ids.
//!
//! One place for all of them, used three ways: admission and the
//! provider's plan-time checks call the `check_*` functions (each error
//! names the field, the value — abbreviated when huge — and the rule), the
//! wire types' schemars attributes declare the same numbers and patterns in
//! the OpenAPI document (so clients and schema-driven fuzzers see them),
//! and the docs' limits page lists them. Lengths count characters (Unicode
//! scalar values), as JSON Schema's `maxLength` does, not bytes.

use std::collections::BTreeMap;

use crate::validate::FieldError;

/// Tags per object (vnets, custom locations, clusters).
pub const MAX_TAGS: usize = 50;
/// Longest tag key; keys are never empty.
pub const MAX_TAG_KEY: usize = 128;
/// Longest tag value.
pub const MAX_TAG_VALUE: usize = 256;
/// DNS servers of a vnet.
pub const MAX_DNS_SERVERS: usize = 8;
/// Kubernetes labels of a node pool.
pub const MAX_LABELS: usize = 64;
/// Longest label key: a DNS-subdomain prefix (at most 253), `/`, and a
/// name of at most 63 (Kubernetes' own rule).
pub const MAX_LABEL_KEY: usize = 253 + 1 + 63;
/// Longest label key prefix (a DNS subdomain).
pub const MAX_LABEL_PREFIX: usize = 253;
/// Longest label value (Kubernetes' own rule).
pub const MAX_LABEL_VALUE: usize = 63;
/// Taints of a node pool.
pub const MAX_TAINTS: usize = 32;
/// Longest taint, `key=value:Effect`.
pub const MAX_TAINT: usize = MAX_LABEL_KEY + 1 + MAX_LABEL_VALUE + 1 + "PreferNoSchedule".len();
/// Longest free-text name shown to people (`display_name`).
pub const MAX_DISPLAY_NAME: usize = 256;
/// Longest resource id given as a reference (`vnet_id`, extension ids…).
pub const MAX_ID: usize = 256;
/// `cluster_extension_ids` of a custom location.
pub const MAX_CLUSTER_EXTENSION_IDS: usize = 16;
/// `admin_group_ids` of a cluster.
pub const MAX_ADMIN_GROUPS: usize = 32;
/// Longest directory group id.
pub const MAX_GROUP_ID: usize = 256;
/// Longest SSH public key (an RSA-16384 key is about 2,800).
pub const MAX_SSH_PUBLIC_KEY: usize = 16 * 1024;
/// Longest catalogue name or version: `kubernetes_version`, `vm_size`,
/// `os_sku`, `extension_type`, `release_train`, extension `version`.
pub const MAX_CATALOG_NAME: usize = 64;
/// Settings (and, separately, protected settings) of an extension.
pub const MAX_SETTINGS: usize = 100;
/// Longest extension setting key.
pub const MAX_SETTING_KEY: usize = 256;
/// Longest extension setting value.
pub const MAX_SETTING_VALUE: usize = 16 * 1024;
/// Longest reservation owner.
pub const MAX_OWNER: usize = 256;
/// Longest `target` filter of `GET /v1/audit`.
pub const MAX_AUDIT_TARGET: usize = 512;
/// Longest agent `endpoint` when joining (`https://` + a 253-character DNS
/// name + `:65535`, with room to spare).
pub const MAX_AGENT_ENDPOINT: usize = 512;
/// Longest `csr_pem` when joining (an RSA-4096 CSR is about 1,700).
pub const MAX_CSR_PEM: usize = 16 * 1024;

/// Values longer than this are shown abbreviated in error messages.
const SHOW_AT_MOST: usize = 64;

/// Regular expressions (ECMA-262 and Rust `regex` alike) of the shapes the
/// rules accept, for the OpenAPI document. Each accepts only values the
/// matching rule accepts; the tests check that against the rules.
pub mod patterns {
    /// A DNS label: vnet, custom location, agent and namespace names.
    pub const DNS_LABEL: &str = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";
    /// A DNS label of at most 40 characters: cluster and extension names.
    pub const SHORT_DNS_LABEL: &str = "^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$";
    /// A node pool name.
    pub const POOL_NAME: &str = "^[a-z][a-z0-9]{2,11}$";
    /// A dotted-quad IPv4 address (no leading zeros).
    pub const IPV4: &str = r"^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])$";
    /// An IPv4 CIDR with a prefix length of 8 to 30 (host bits must be
    /// zero too, which a pattern cannot say).
    pub const CIDR: &str = r"^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])/([89]|[12][0-9]|30)$";
    /// `/vnets/NAME`.
    pub const VNET_ID: &str = "^/vnets/[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";
    /// `/custom-locations/NAME`.
    pub const CUSTOM_LOCATION_ID: &str = "^/custom-locations/[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";
    /// The id of an extension of the management host,
    /// `/management-host/extensions/NAME` (what custom locations reference).
    pub const HOST_EXTENSION_ID: &str =
        "^/management-host/extensions/[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$";
    /// A Kubernetes label key: optional DNS-subdomain prefix and `/`, then
    /// a name of 1–63 `[A-Za-z0-9-_.]`, alphanumeric at both ends.
    pub const LABEL_KEY: &str = r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$";
    /// A Kubernetes label value: empty, or 1–63 `[A-Za-z0-9-_.]`,
    /// alphanumeric at both ends.
    pub const LABEL_VALUE: &str = "^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$";
    /// A taint, `key[=value]:Effect`.
    pub const TAINT: &str = r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?(=([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?)?:(NoSchedule|PreferNoSchedule|NoExecute)$";
    /// An OpenSSH public key line: its type (`ssh-…` or `ecdsa-…`), a
    /// blank, then the key.
    pub const SSH_PUBLIC_KEY: &str = "^(ssh-|ecdsa-)[!-~]*[ \t]+[!-~]";
    /// A `wait` duration of `GET /v1/operations/{id}`.
    pub const WAIT: &str = "^[0-9]{1,19}(ms|s|m)$";
}

/// `value` for an error message: quoted, and cut short with its length
/// when it is long (a 1 MiB value must not come back in the error).
pub fn abbreviate(value: &str) -> String {
    let len = value.chars().count();
    if len <= SHOW_AT_MOST {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(SHOW_AT_MOST / 2).collect();
        format!("{head:?}… ({len} characters)")
    }
}

fn chars(value: &str) -> usize {
    value.chars().count()
}

/// `field` holds at most `max` characters.
pub fn check_len(field: &str, value: &str, max: usize) -> Result<(), FieldError> {
    let len = chars(value);
    if len > max {
        return Err(FieldError::new(
            field,
            format!(
                "{field} {} is {len} characters long; at most {max} are allowed",
                abbreviate(value)
            ),
        ));
    }
    Ok(())
}

/// `field` (a list or map) has at most `max` entries.
pub fn check_count(field: &str, count: usize, max: usize) -> Result<(), FieldError> {
    if count > max {
        return Err(FieldError::new(
            field,
            format!("{field} has {count} entries; at most {max} are allowed"),
        ));
    }
    Ok(())
}

/// Checks each string of a list against `max` characters
/// (`field[i]`), and the list's length against `max_items`.
pub fn check_strings(
    field: &str,
    items: &[String],
    max_items: usize,
    max: usize,
    errors: &mut Vec<FieldError>,
) {
    if let Err(e) = check_count(field, items.len(), max_items) {
        errors.push(e);
    }
    for (i, item) in items.iter().enumerate() {
        if let Err(e) = check_len(&format!("{field}[{i}]"), item, max) {
            errors.push(e);
        }
    }
}

/// Checks a string-to-string map: entry count, key length (1 to
/// `max_key`) and value length. An over-long key is reported at the map
/// itself: a target holding it would be as long.
pub fn check_map(
    field: &str,
    map: &BTreeMap<String, String>,
    max_entries: usize,
    max_key: usize,
    max_value: usize,
    errors: &mut Vec<FieldError>,
) {
    check_map_values(field, map, [max_entries, max_key, max_value], true, errors);
}

/// [`check_map`] for secret values (protected settings): errors name the
/// key and the length, never the value.
pub fn check_secret_map(
    field: &str,
    map: &BTreeMap<String, String>,
    max_entries: usize,
    max_key: usize,
    max_value: usize,
    errors: &mut Vec<FieldError>,
) {
    check_map_values(field, map, [max_entries, max_key, max_value], false, errors);
}

fn check_map_values(
    field: &str,
    map: &BTreeMap<String, String>,
    [max_entries, max_key, max_value]: [usize; 3],
    show_values: bool,
    errors: &mut Vec<FieldError>,
) {
    if let Err(e) = check_count(field, map.len(), max_entries) {
        errors.push(e);
    }
    for (k, v) in map {
        let key_len = chars(k);
        if key_len == 0 {
            errors.push(FieldError::new(
                format!("{field}[\"\"]"),
                format!("{field} has an empty key; keys are 1 to {max_key} characters"),
            ));
        } else if key_len > max_key {
            errors.push(FieldError::new(
                field,
                format!(
                    "{field} key {} is {key_len} characters long; keys are 1 to {max_key} characters",
                    abbreviate(k)
                ),
            ));
        } else if show_values {
            if let Err(e) = check_len(&format!("{field}[{k:?}]"), v, max_value) {
                errors.push(e);
            }
        } else if chars(v) > max_value {
            let target = format!("{field}[{k:?}]");
            errors.push(FieldError::new(
                &target,
                format!(
                    "{target} is {} characters long (value not shown: it is secret); at most {max_value} are allowed",
                    chars(v)
                ),
            ));
        }
    }
}

/// Checks `tags`: at most [`MAX_TAGS`] entries, keys of 1 to
/// [`MAX_TAG_KEY`] characters, values of at most [`MAX_TAG_VALUE`].
pub fn check_tags(field: &str, tags: &BTreeMap<String, String>, errors: &mut Vec<FieldError>) {
    check_map(field, tags, MAX_TAGS, MAX_TAG_KEY, MAX_TAG_VALUE, errors);
}

/// Every limit, for the docs' table: where, what is bounded, the bound.
pub fn documented() -> Vec<[String; 3]> {
    let row = |a: &str, b: &str, c: String| [a.to_string(), b.to_string(), c];
    vec![
        row(
            "vnet, custom location, cluster",
            "`tags`",
            format!(
                "at most {MAX_TAGS} entries; keys 1–{MAX_TAG_KEY} characters, values at most {MAX_TAG_VALUE}"
            ),
        ),
        row(
            "vnet",
            "`dns_servers`",
            format!("at most {MAX_DNS_SERVERS} IPv4 addresses"),
        ),
        row(
            "node pool",
            "`labels`",
            format!(
                "at most {MAX_LABELS}; Kubernetes' rules: key = optional DNS-subdomain prefix (at most {MAX_LABEL_PREFIX}) and `/`, then a name of 1–63 `[A-Za-z0-9-_.]`; value at most {MAX_LABEL_VALUE} of the same"
            ),
        ),
        row(
            "node pool",
            "`taints`",
            format!(
                "at most {MAX_TAINTS}, each `key[=value]:Effect` with the label rules (at most {MAX_TAINT} characters)"
            ),
        ),
        row(
            "custom location",
            "`display_name`",
            format!("at most {MAX_DISPLAY_NAME} characters"),
        ),
        row(
            "custom location",
            "`cluster_extension_ids`",
            format!(
                "at most {MAX_CLUSTER_EXTENSION_IDS} ids of management-host extensions, each at most {MAX_ID} characters"
            ),
        ),
        row(
            "cluster",
            "`admin_group_ids`",
            format!("at most {MAX_ADMIN_GROUPS} ids of at most {MAX_GROUP_ID} characters"),
        ),
        row(
            "cluster",
            "`ssh_public_key`",
            format!("at most {MAX_SSH_PUBLIC_KEY} characters"),
        ),
        row(
            "cluster, node pool, extension",
            "`kubernetes_version`, `vm_size`, `os_sku`, `extension_type`, `release_train`, `version`",
            format!("at most {MAX_CATALOG_NAME} characters (and a catalogue entry)"),
        ),
        row(
            "extension",
            "`configuration_settings`, `configuration_protected_settings`",
            format!(
                "at most {MAX_SETTINGS} entries each; keys 1–{MAX_SETTING_KEY} characters, values at most {MAX_SETTING_VALUE}"
            ),
        ),
        row(
            "vnet reservation (API)",
            "`owner`",
            format!("1–{MAX_OWNER} characters, not only blanks"),
        ),
        row(
            "audit log (API)",
            "`target` query parameter",
            format!("at most {MAX_AUDIT_TARGET} characters"),
        ),
        row(
            "agent join (API)",
            "`endpoint`, `csr_pem`",
            format!("at most {MAX_AGENT_ENDPOINT} and {MAX_CSR_PEM} characters"),
        ),
    ]
}

/// JSON Schemas the derives cannot express with attributes (maps with
/// bounded keys and values), used with `#[schemars(schema_with = …)]`.
pub mod schema {
    use schemars::{Schema, SchemaGenerator, json_schema};

    use super::*;

    fn map(max_entries: usize, max_key: usize, value: serde_json::Value, nullable: bool) -> Schema {
        let ty = if nullable {
            serde_json::json!(["object", "null"])
        } else {
            serde_json::json!("object")
        };
        json_schema!({
            "type": ty,
            "maxProperties": max_entries,
            "propertyNames": { "minLength": 1, "maxLength": max_key },
            "additionalProperties": value
        })
    }

    fn tag_values() -> serde_json::Value {
        serde_json::json!({ "type": "string", "maxLength": MAX_TAG_VALUE })
    }

    /// `tags`: see [`check_tags`].
    pub fn tags(_: &mut SchemaGenerator) -> Schema {
        map(MAX_TAGS, MAX_TAG_KEY, tag_values(), false)
    }

    /// `tags` of a patch: as [`tags`], or `null`.
    pub fn tags_or_null(_: &mut SchemaGenerator) -> Schema {
        map(MAX_TAGS, MAX_TAG_KEY, tag_values(), true)
    }

    /// Extension settings: see [`MAX_SETTINGS`].
    pub fn settings(_: &mut SchemaGenerator) -> Schema {
        map(
            MAX_SETTINGS,
            MAX_SETTING_KEY,
            serde_json::json!({ "type": "string", "maxLength": MAX_SETTING_VALUE }),
            false,
        )
    }

    /// Protected extension settings: as [`settings`], or `null`.
    pub fn settings_or_null(_: &mut SchemaGenerator) -> Schema {
        map(
            MAX_SETTINGS,
            MAX_SETTING_KEY,
            serde_json::json!({ "type": "string", "maxLength": MAX_SETTING_VALUE }),
            true,
        )
    }

    /// Node pool labels: Kubernetes' key and value rules.
    pub fn labels(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "maxProperties": MAX_LABELS,
            "propertyNames": { "maxLength": MAX_LABEL_KEY, "pattern": patterns::LABEL_KEY },
            "additionalProperties": {
                "type": "string", "maxLength": MAX_LABEL_VALUE, "pattern": patterns::LABEL_VALUE
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::string::string_regex;

    /// Values generated from `pattern` (anchors dropped: the generator
    /// matches whole strings anyway).
    fn from(pattern: &str) -> impl Strategy<Value = String> + use<> {
        let body = pattern.trim_start_matches('^').trim_end_matches('$');
        string_regex(body).expect("a pattern proptest can generate from")
    }

    fn matches(pattern: &str, value: &str) -> bool {
        regex::Regex::new(pattern)
            .expect("a valid pattern")
            .is_match(value)
    }

    fn cluster_spec() -> crate::ClusterSpec {
        serde_json::from_value(serde_json::json!({
            "custom_location_id": "/custom-locations/cl", "vnet_id": "/vnets/v"
        }))
        .unwrap()
    }

    fn pool_spec() -> crate::NodePoolSpec {
        serde_json::from_value(serde_json::json!({ "os_type": "linux" })).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        // What the OpenAPI document calls valid, the rules accept.
        #[test]
        fn dns_labels(v in from(patterns::DNS_LABEL)) {
            prop_assert!(crate::validate::dns_label("name", &v).is_ok(), "{v:?}");
        }

        #[test]
        fn short_names(v in from(patterns::SHORT_DNS_LABEL)) {
            prop_assert!(crate::cluster::validate_name(&v).is_ok(), "{v:?}");
            prop_assert!(crate::extension::validate_name(&v).is_ok(), "{v:?}");
        }

        #[test]
        fn pool_names(v in from(patterns::POOL_NAME)) {
            prop_assert!(crate::nodepool::validate_name(&v).is_ok(), "{v:?}");
        }

        #[test]
        fn addresses(v in from(patterns::IPV4)) {
            prop_assert!(crate::validate::parse_ipv4("a", &v).is_ok(), "{v:?}");
        }

        #[test]
        fn cidrs(v in from(patterns::CIDR)) {
            // Host bits are the one rule a pattern cannot state.
            if let Err(e) = crate::validate::parse_cidr("c", &v) {
                prop_assert!(e.message.contains("host bits"), "{v:?}: {e}");
            }
        }

        #[test]
        fn cluster_references(
            vnet in from(patterns::VNET_ID),
            location in from(patterns::CUSTOM_LOCATION_ID),
            key in from(patterns::SSH_PUBLIC_KEY),
        ) {
            let mut spec = cluster_spec();
            spec.vnet_id = vnet;
            spec.custom_location_id = location;
            spec.ssh_public_key = Some(key);
            let errors = crate::cluster::validate_spec(&spec);
            prop_assert!(errors.is_empty(), "{spec:?}: {errors:?}");
        }

        #[test]
        fn host_extension_ids(id in from(patterns::HOST_EXTENSION_ID)) {
            prop_assert_eq!(
                crate::extension::parse_extension_id(&id).map(|(t, _)| t),
                Some(crate::MANAGEMENT_HOST_ID)
            );
        }

        #[test]
        fn labels_and_taints(
            key in from(patterns::LABEL_KEY),
            value in from(patterns::LABEL_VALUE),
            taint in from(patterns::TAINT),
        ) {
            let mut spec = pool_spec();
            // The schema's maxLength bounds the whole key; the prefix's own
            // bound of 253 is stated in the description.
            let prefix_ok = |k: &str| k.split_once('/').is_none_or(|(p, _)| p.len() <= MAX_LABEL_PREFIX);
            prop_assume!(prefix_ok(&key) && prefix_ok(&taint));
            prop_assume!(key.len() <= MAX_LABEL_KEY && taint.len() <= MAX_TAINT);
            spec.labels.insert(key, value);
            spec.taints.push(taint);
            let errors = crate::nodepool::validate_spec(&spec);
            prop_assert!(errors.is_empty(), "{spec:?}: {errors:?}");
        }
    }

    #[test]
    fn what_the_rules_refuse_the_patterns_refuse() {
        for (pattern, refused) in [
            (
                patterns::DNS_LABEL,
                &["", "-a", "a-", "A", "a_b", &"a".repeat(64)][..],
            ),
            (patterns::SHORT_DNS_LABEL, &["", &"a".repeat(41)]),
            (
                patterns::POOL_NAME,
                &["ab", "1abc", "Linux", "a-b-c", "a123456789012"],
            ),
            (
                patterns::IPV4,
                &["1.1.1", "256.0.0.1", "01.2.3.4", "1.2.3.4 "],
            ),
            (
                patterns::CIDR,
                &["10.0.0.0", "10.0.0.0/7", "10.0.0.0/31", "10.0.0.0/024"],
            ),
            (patterns::VNET_ID, &["/vnets/", "/vnets/a/b", "vnets/a"]),
            (
                patterns::HOST_EXTENSION_ID,
                &["/clusters/c/extensions/x", "/management-host/extensions/"],
            ),
            (
                patterns::LABEL_KEY,
                &["", "bad key", "-a", "a/", "A.b/c", "a/b/c"],
            ),
            (patterns::LABEL_VALUE, &["-a", "a b", &"a".repeat(64)]),
            (
                patterns::TAINT,
                &["gpu=true:Sometimes", "gpu", "=x:NoSchedule"],
            ),
            (patterns::SSH_PUBLIC_KEY, &["ssh-rsa", "rsa AAAA", ""]),
            (patterns::WAIT, &["", "s", "10", "1h", "-1s", "1.5s"]),
        ] {
            for value in refused {
                assert!(!matches(pattern, value), "{pattern} matches {value:?}");
            }
        }
        // And a few the rules accept.
        assert!(matches(patterns::TAINT, "example.com/gpu=true:NoSchedule"));
        assert!(matches(patterns::LABEL_KEY, "kubernetes.io/os"));
        assert!(matches(
            patterns::SSH_PUBLIC_KEY,
            "ssh-ed25519 AAAAC3Nz me@host"
        ));
        assert!(matches(patterns::WAIT, "500ms"));
    }

    #[test]
    fn huge_values_are_abbreviated_with_their_length() {
        let huge = "x".repeat(1 << 20);
        let e = check_len("display_name", &huge, MAX_DISPLAY_NAME).unwrap_err();
        assert_eq!(e.target, "display_name");
        assert!(e.message.len() < 200, "{}", e.message);
        assert!(
            e.message.contains("1048576 characters") && e.message.contains("at most 256"),
            "{}",
            e.message
        );
        assert_eq!(abbreviate("short"), "\"short\"");
    }

    #[test]
    fn maps_are_bounded_in_entries_keys_and_values() {
        let mut errors = Vec::new();
        let mut tags: BTreeMap<String, String> = (0..=MAX_TAGS)
            .map(|i| (format!("k{i}"), "v".into()))
            .collect();
        check_tags("tags", &tags, &mut errors);
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].message.contains("51 entries; at most 50"),
            "{errors:?}"
        );

        tags.clear();
        tags.insert("".into(), "v".into());
        tags.insert("k".repeat(MAX_TAG_KEY + 1), "v".into());
        tags.insert("big".into(), "v".repeat(1 << 20));
        errors.clear();
        check_tags("tags", &tags, &mut errors);
        let targets: Vec<_> = errors.iter().map(|e| e.target.as_str()).collect();
        assert_eq!(
            targets,
            ["tags[\"\"]", "tags[\"big\"]", "tags"],
            "{errors:?}"
        );
        assert!(errors.iter().all(|e| e.message.len() < 200), "{errors:?}");

        // Secret values are never quoted.
        let secret = BTreeMap::from([("token".to_string(), "s3cr3t".repeat(3000))]);
        errors.clear();
        check_secret_map("p", &secret, 1, 8, 16, &mut errors);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].target, "p[\"token\"]");
        assert!(!errors[0].message.contains("s3cr3t"), "{errors:?}");
        assert!(errors[0].message.contains("18000 characters"), "{errors:?}");

        // Exactly at the limits is fine; characters, not bytes, count.
        let at_limit = BTreeMap::from([("é".repeat(MAX_TAG_KEY), "é".repeat(MAX_TAG_VALUE))]);
        errors.clear();
        check_tags("tags", &at_limit, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
    }
}
