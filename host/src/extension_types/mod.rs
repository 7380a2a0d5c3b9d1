//! The extension-type catalogue (`GET /v1/extension-types`): the built-in
//! types with their release trains, default namespaces, Linux requirement
//! and settings schemas, the value checks behind those schemas, and the
//! version arithmetic of release trains (which version an extension should
//! run).
//!
//! The sim file may add versions to a train (`[[extensions.versions]]`), so
//! the catalogue in force is the driver's
//! ([`crate::driver::Driver::extension_types`]), which builds it from here.
//!
//! May depend on: `hybrid-api` only (the driver and the extensions kind
//! both use it).

use std::collections::BTreeMap;

use hybrid_api::catalog::Semver;
use hybrid_api::extension::{
    DEFAULT_RELEASE_TRAIN, ExtensionSpec, ExtensionTarget, ExtensionType, ReleaseTrain,
};
use hybrid_api::validate::FieldError;

use settings::schema;

pub mod settings;

/// The built-in types, sorted by name.
pub fn builtin() -> Vec<ExtensionType> {
    let train = |name: &str, versions: &[&str]| ReleaseTrain {
        name: name.to_string(),
        versions: versions.iter().map(|v| v.to_string()).collect(),
    };
    let mut types = vec![
        ExtensionType {
            name: "hybrid-operator".into(),
            description: "The hybrid operator on the management host: it turns custom locations into places where clusters can be created. Reference it from a custom location's cluster_extension_ids.".into(),
            target: ExtensionTarget::ManagementHost,
            release_trains: vec![
                train("stable", &["1.0.0", "1.1.0", "1.1.3"]),
                train("preview", &["1.2.0"]),
            ],
            default_namespace: "hybrid-system".into(),
            supports_namespace_scope: false,
            requires_linux_nodes: false,
            configuration_schema: schema::<settings::HybridOperatorSettings>(),
            protected_configuration_schema: schema::<settings::HybridOperatorProtected>(),
        },
        ExtensionType {
            name: "flux".into(),
            description: "GitOps with Flux v2: source, Kustomize, Helm and notification controllers that apply what a Git repository declares.".into(),
            target: ExtensionTarget::Cluster,
            release_trains: vec![
                train("stable", &["1.13.3", "1.14.1", "1.15.0"]),
                train("preview", &["1.15.0", "1.16.0"]),
            ],
            default_namespace: "flux-system".into(),
            // Multi-tenant installs put the controllers in a tenant's namespace.
            supports_namespace_scope: true,
            requires_linux_nodes: true,
            configuration_schema: schema::<settings::FluxSettings>(),
            protected_configuration_schema: schema::<settings::FluxProtected>(),
        },
        ExtensionType {
            name: "open-service-mesh".into(),
            description: "Open Service Mesh: mTLS, traffic policy and observability for services through Envoy sidecars.".into(),
            target: ExtensionTarget::Cluster,
            release_trains: vec![train("stable", &["1.2.8", "1.2.10"])],
            default_namespace: "arc-osm-system".into(),
            supports_namespace_scope: false,
            requires_linux_nodes: true,
            configuration_schema: schema::<settings::OsmSettings>(),
            protected_configuration_schema: schema::<settings::NoProtected>(),
        },
        ExtensionType {
            name: "defender".into(),
            description: "Defender for Containers: runtime threat detection and audit-log analysis (the sensor is a Linux DaemonSet).".into(),
            target: ExtensionTarget::Cluster,
            release_trains: vec![
                train("stable", &["0.7.12", "0.7.15", "0.8.2"]),
                train("preview", &["0.9.0"]),
            ],
            default_namespace: "mdc".into(),
            supports_namespace_scope: false,
            requires_linux_nodes: true,
            configuration_schema: schema::<settings::DefenderSettings>(),
            protected_configuration_schema: schema::<settings::DefenderProtected>(),
        },
        ExtensionType {
            name: "keyvault-secrets-provider".into(),
            description: "Secrets Store CSI driver with the Key Vault provider: mounts vault secrets into pods (runs on Linux and Windows nodes).".into(),
            target: ExtensionTarget::Cluster,
            release_trains: vec![train("stable", &["1.5.6", "1.6.2"])],
            default_namespace: "kube-system".into(),
            supports_namespace_scope: false,
            // The CSI driver and provider have Windows images too.
            requires_linux_nodes: false,
            configuration_schema: schema::<settings::KeyVaultSettings>(),
            protected_configuration_schema: schema::<settings::NoProtected>(),
        },
        ExtensionType {
            name: "monitor".into(),
            description: "Container insights: metrics and logs of nodes and workloads sent to a Log Analytics workspace.".into(),
            target: ExtensionTarget::Cluster,
            release_trains: vec![
                train("stable", &["3.1.20", "3.1.24"]),
                train("preview", &["3.2.0"]),
            ],
            default_namespace: "kube-system".into(),
            supports_namespace_scope: false,
            requires_linux_nodes: true,
            configuration_schema: schema::<settings::MonitorSettings>(),
            protected_configuration_schema: schema::<settings::MonitorProtected>(),
        },
        ExtensionType {
            name: "policy".into(),
            description: "Azure Policy for Kubernetes: Gatekeeper admission control and audits with built-in policy definitions.".into(),
            target: ExtensionTarget::Cluster,
            release_trains: vec![train("stable", &["1.8.0", "1.9.1", "1.10.0"])],
            default_namespace: "kube-system".into(),
            supports_namespace_scope: false,
            requires_linux_nodes: true,
            configuration_schema: schema::<settings::PolicySettings>(),
            protected_configuration_schema: schema::<settings::NoProtected>(),
        },
    ];
    types.sort_by(|a, b| a.name.cmp(&b.name));
    types
}

/// Checks the values (not the keys) of a spec's settings against its type.
pub fn check_values_of(spec: &ExtensionSpec, ty: &ExtensionType) -> Vec<FieldError> {
    let s = &spec.configuration_settings;
    let empty = BTreeMap::new();
    let p = spec
        .configuration_protected_settings
        .as_ref()
        .unwrap_or(&empty);
    let (cs, ps) = ("configuration_settings", "configuration_protected_settings");
    let n = ty.name.as_str();
    use settings::*;
    let mut errors = match n {
        "hybrid-operator" => check_values::<HybridOperatorSettings>(cs, s, n, false),
        "flux" => check_values::<FluxSettings>(cs, s, n, false),
        "open-service-mesh" => check_values::<OsmSettings>(cs, s, n, false),
        "defender" => check_values::<DefenderSettings>(cs, s, n, false),
        "keyvault-secrets-provider" => check_values::<KeyVaultSettings>(cs, s, n, false),
        "monitor" => check_values::<MonitorSettings>(cs, s, n, false),
        "policy" => check_values::<PolicySettings>(cs, s, n, false),
        _ => Vec::new(),
    };
    errors.extend(match n {
        "hybrid-operator" => check_values::<HybridOperatorProtected>(ps, p, n, true),
        "flux" => check_values::<FluxProtected>(ps, p, n, true),
        "defender" => check_values::<DefenderProtected>(ps, p, n, true),
        "monitor" => check_values::<MonitorProtected>(ps, p, n, true),
        _ => Vec::new(),
    });
    errors
}

/// One `[[extensions.versions]]` entry of the sim file, already validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraVersions {
    pub extension_type: String,
    pub release_train: String,
    pub versions: Vec<String>,
}

/// Sorts a train's versions oldest first (versions that do not parse as
/// `MAJOR.MINOR.PATCH` keep their place at the start) and drops duplicates.
fn sort_versions(versions: &mut Vec<String>) {
    versions.sort_by_key(|v| Semver::parse(v));
    versions.dedup();
}

/// The built-in catalogue with `extra` versions merged in (a train that
/// does not exist yet is added).
pub fn with_extra_versions(extra: &[ExtraVersions]) -> Vec<ExtensionType> {
    let mut types = builtin();
    for e in extra {
        let Some(ty) = types.iter_mut().find(|t| t.name == e.extension_type) else {
            continue; // refused when the sim file was validated
        };
        match ty
            .release_trains
            .iter_mut()
            .find(|t| t.name == e.release_train)
        {
            Some(train) => train.versions.extend(e.versions.iter().cloned()),
            None => ty.release_trains.push(ReleaseTrain {
                name: e.release_train.clone(),
                versions: e.versions.clone(),
            }),
        }
    }
    for ty in &mut types {
        for train in &mut ty.release_trains {
            sort_versions(&mut train.versions);
        }
    }
    types
}

/// The release train a spec follows.
pub fn train_of<'a>(ty: &'a ExtensionType, spec: &ExtensionSpec) -> Option<&'a ReleaseTrain> {
    let name = spec
        .release_train
        .as_deref()
        .unwrap_or(DEFAULT_RELEASE_TRAIN);
    ty.release_trains.iter().find(|t| t.name == name)
}

/// The version an extension should run: the pinned one; or, when it
/// follows its train, the newest version of the train with the major of
/// what runs now (the newest of all on first install); or, neither pinned
/// nor following, what runs now (the newest on first install).
pub fn desired_version(
    ty: &ExtensionType,
    spec: &ExtensionSpec,
    current: Option<&str>,
) -> Option<String> {
    if let Some(v) = &spec.version {
        return Some(v.clone());
    }
    let train = train_of(ty, spec)?;
    let newest = train.versions.last().cloned();
    let Some(current) = current else {
        return newest;
    };
    if spec.auto_upgrade_minor_version == Some(false) {
        return Some(current.to_string());
    }
    let major = Semver::parse(current).map(|s| s.major);
    train
        .versions
        .iter()
        .rev()
        .find(|v| major.is_some() && Semver::parse(v).map(|s| s.major) == major)
        .cloned()
        .or(newest)
}

/// True when `a` is an older version than `b`.
pub fn older(a: &str, b: &str) -> bool {
    match (Semver::parse(a), Semver::parse(b)) {
        (Some(a), Some(b)) => a < b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ty: &str) -> ExtensionSpec {
        ExtensionSpec {
            extension_type: ty.into(),
            scope: None,
            release_train: None,
            version: None,
            auto_upgrade_minor_version: None,
            configuration_settings: BTreeMap::new(),
            configuration_protected_settings: None,
        }
    }

    #[test]
    fn builtin_catalogue_is_complete() {
        let types = builtin();
        let names: Vec<&str> = types.iter().map(|t| t.name.as_str()).collect();
        for want in [
            "hybrid-operator",
            "flux",
            "open-service-mesh",
            "defender",
            "keyvault-secrets-provider",
            "monitor",
            "policy",
        ] {
            assert!(names.contains(&want), "{want}");
        }
        for t in &types {
            assert!(
                t.release_trains.iter().any(|r| r.name == "stable"),
                "{}",
                t.name
            );
            for r in &t.release_trains {
                assert!(!r.versions.is_empty());
                let mut sorted = r.versions.clone();
                sort_versions(&mut sorted);
                assert_eq!(sorted, r.versions, "{} {} oldest first", t.name, r.name);
                assert!(r.versions.iter().all(|v| Semver::parse(v).is_some()));
            }
            assert!(
                t.configuration_schema["properties"].is_object(),
                "{}",
                t.name
            );
            assert!(
                t.protected_configuration_schema["properties"].is_object()
                    || t.protected_configuration_schema.get("properties").is_none()
            );
        }
        let flux = types.iter().find(|t| t.name == "flux").unwrap();
        assert_eq!(flux.default_namespace, "flux-system");
        assert!(flux.requires_linux_nodes);
        assert!(flux.configuration_schema["properties"]["source-controller.enabled"].is_object());
        assert!(flux.protected_configuration_schema["properties"]["sshPrivateKey"].is_object());
        let op = types.iter().find(|t| t.name == "hybrid-operator").unwrap();
        assert_eq!(op.target, ExtensionTarget::ManagementHost);
    }

    #[test]
    fn extra_versions_merge_sorted() {
        let types = with_extra_versions(&[
            ExtraVersions {
                extension_type: "flux".into(),
                release_train: "stable".into(),
                versions: vec!["1.15.2".into(), "1.14.1".into(), "1.9.0".into()],
            },
            ExtraVersions {
                extension_type: "policy".into(),
                release_train: "preview".into(),
                versions: vec!["2.0.0".into()],
            },
        ]);
        let flux = types.iter().find(|t| t.name == "flux").unwrap();
        assert_eq!(
            flux.release_trains[0].versions,
            ["1.9.0", "1.13.3", "1.14.1", "1.15.0", "1.15.2"]
        );
        let policy = types.iter().find(|t| t.name == "policy").unwrap();
        assert_eq!(policy.release_trains[1].name, "preview");
    }

    #[test]
    fn desired_versions() {
        let mut ty = builtin().into_iter().find(|t| t.name == "flux").unwrap();
        let mut s = spec("flux");
        s.auto_upgrade_minor_version = Some(true);
        assert_eq!(desired_version(&ty, &s, None).as_deref(), Some("1.15.0"));
        assert_eq!(
            desired_version(&ty, &s, Some("1.13.3")).as_deref(),
            Some("1.15.0")
        );
        // A new major in the train is not an automatic upgrade.
        ty.release_trains[0].versions.push("2.0.0".into());
        assert_eq!(
            desired_version(&ty, &s, Some("1.13.3")).as_deref(),
            Some("1.15.0")
        );
        assert_eq!(desired_version(&ty, &s, None).as_deref(), Some("2.0.0"));
        s.auto_upgrade_minor_version = Some(false);
        assert_eq!(
            desired_version(&ty, &s, Some("1.13.3")).as_deref(),
            Some("1.13.3")
        );
        s.version = Some("1.14.1".into());
        assert_eq!(
            desired_version(&ty, &s, Some("1.15.0")).as_deref(),
            Some("1.14.1")
        );
        assert!(older("1.9.0", "1.13.3") && !older("1.13.3", "1.13.3"));
    }

    #[test]
    fn values_of_a_spec() {
        let ty = builtin()
            .into_iter()
            .find(|t| t.name == "keyvault-secrets-provider")
            .unwrap();
        let mut s = spec(&ty.name);
        s.configuration_settings.insert(
            "secrets-store-csi-driver.rotationPollInterval".into(),
            "soon".into(),
        );
        s.configuration_settings.insert(
            "secrets-store-csi-driver.syncSecret.enabled".into(),
            "true".into(),
        );
        let e = check_values_of(&s, &ty);
        assert_eq!(e.len(), 1);
        assert_eq!(
            e[0].target,
            "configuration_settings[\"secrets-store-csi-driver.rotationPollInterval\"]"
        );
    }
}
