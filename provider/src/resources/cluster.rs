//! `hybrid_cluster`: a Kubernetes cluster (control plane, network, storage
//! drivers) in a custom location, on a vnet. Node pools are separate
//! `hybrid_nodepool` resources.
//!
//! In place: `kubernetes_version` (a rolling upgrade, one minor at a time),
//! `control_plane.count`, `network.load_balancer.count`, `admin_group_ids`,
//! `storage`, `tags`. Everything else replaces the cluster. The plan asks
//! the service to admit the change (`?dry_run=true`), so a skipped minor, an
//! exhausted VIP or VM pool or too little host capacity fails `terraform
//! plan`, not the apply.

use std::time::Duration;

use hybrid_api::Operation;
use hybrid_api::cluster::{
    self, ClusterNetwork, ClusterStorage, ControlPlane, DEFAULT_CONTROL_PLANE_VM_SIZE,
    DEFAULT_POD_CIDR, DEFAULT_SERVICE_CIDR, LoadBalancer, MAX_LOAD_BALANCERS, NetworkPlugin,
    parse_cluster_id,
};
use hybrid_api::{Cluster, ClusterSpec, cluster_id};
use hybrid_cty::{Type, Value};

use super::lifecycle::{Managed, managed_resource};
use super::{attributes, dry_run, planning};
use crate::client::{Accepted, ClientError, HostClient, Put};
use crate::framework::schema::Attribute;
use crate::framework::{Diagnostics, PlanContext, Schema, timeouts, validators, values};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);

/// What an update may change besides the spec: unknown in the plan when it
/// re-drives unfinished work.
const OBSERVED: &[&str] = &[
    "conditions",
    "control_plane_nodes",
    "current_kubernetes_version",
];

pub struct ClusterResource;

managed_resource!(ClusterResource);

impl Managed for ClusterResource {
    type Object = Cluster;
    const TYPE_NAME: &'static str = "hybrid_cluster";
    const KIND: &'static str = "cluster";
    const ID_FORMAT: &'static str = "/clusters/<name>";
    const ID_EXAMPLE: &'static str = "/clusters/prod-a";
    const DEFAULT_TIMEOUT: Duration = DEFAULT_TIMEOUT;

    type Create = (String, ClusterSpec);
    type Update = ClusterSpec;

    fn schema(&self) -> Schema {
        Schema::new(
            "A Kubernetes cluster in a custom location, on a vnet: its control plane, network \
             and storage drivers. Node pools are separate `hybrid_nodepool` resources.",
            vec![
                Attribute::string("id")
                    .computed()
                    .use_state_for_unknown()
                    .description(
                        "The cluster's path in the host API, `/clusters/<name>`; also the import id.",
                    ),
                Attribute::string("name")
                    .required()
                    .requires_replace()
                    .validator(validators::string_rule(|name| {
                        cluster::validate_name(name).map_err(|e| e.message)
                    }))
                    .description(
                        "Name of the cluster: a DNS label of at most 40 characters (node names \
                         are built from it). Changing it replaces the cluster.",
                    ),
                Attribute::string("custom_location_id")
                    .required()
                    .requires_replace()
                    .description(
                        "Id of the custom location the cluster lives in, \
                         `/custom-locations/<name>`. Changing it replaces the cluster.",
                    ),
                Attribute::string("vnet_id")
                    .required()
                    .requires_replace()
                    .description(
                        "Id of the vnet the cluster's VMs and VIPs come from, `/vnets/<name>`. \
                         Changing it replaces the cluster.",
                    ),
                Attribute::string("kubernetes_version")
                    .optional_computed()
                    .use_state_for_unknown()
                    .description(
                        "Kubernetes version, e.g. `1.32.3`. Left out, the newest supported \
                         version when the cluster is created (and kept after). Changing it is an \
                         in-place rolling upgrade: one minor version at a time, never down, and \
                         only to a version ready for every OS the cluster's node pools use — \
                         checked at plan time.",
                    ),
                Attribute::nested("control_plane", control_plane_attributes())
                    .default_value(Value::object([
                        ("count", Value::from(1i64)),
                        ("vm_size", Value::from(DEFAULT_CONTROL_PLANE_VM_SIZE)),
                        ("endpoint_ip", Value::Null),
                    ]))
                    .description("The control plane's VMs and API-server address."),
                Attribute::nested("network", network_attributes())
                    .default_value(Value::object([
                        ("plugin", Value::from("calico")),
                        ("pod_cidr", Value::from(DEFAULT_POD_CIDR)),
                        ("service_cidr", Value::from(DEFAULT_SERVICE_CIDR)),
                        (
                            "load_balancer",
                            Value::object([("count", Value::from(0i64))]),
                        ),
                    ]))
                    .description("Cluster networking."),
                Attribute::string("ssh_public_key")
                    .optional()
                    .requires_replace()
                    .description(
                        "OpenSSH public key installed on every VM (`ssh-ed25519 AAAA… comment`). \
                         Changing it replaces the cluster.",
                    ),
                attributes::string_set("admin_group_ids")
                    .optional()
                    .description(
                        "Directory groups granted cluster-admin. Change in place.",
                    ),
                Attribute::nested("storage", storage_attributes())
                    .default_value(Value::object([
                        ("smb_csi", Value::from(true)),
                        ("nfs_csi", Value::from(true)),
                    ]))
                    .description("CSI storage drivers installed on the cluster."),
                Attribute::map("tags", Type::String)
                    .optional()
                    .description("Free-form tags. Change in place."),
                Attribute::string("endpoint")
                    .computed()
                    .use_state_for_unknown()
                    .description("The Kubernetes API server's URL, `https://<vip>:6443`."),
                Attribute::string("ca_certificate")
                    .computed()
                    .use_state_for_unknown()
                    .description(
                        "PEM of the cluster's certificate authority (a public certificate, not a \
                         secret).",
                    ),
                Attribute::string("current_kubernetes_version")
                    .computed()
                    .use_state_for_unknown()
                    .description(
                        "Version the control plane runs now; differs from `kubernetes_version` \
                         while an upgrade is in progress or after one failed.",
                    ),
                Attribute::string("provisioning_state").computed().description(
                    "Outcome of the last operation on the cluster (`Succeeded`, `Failed`, …). \
                     When it is not `Succeeded`, the next plan proposes an update that \
                     re-drives the work.",
                ),
                attributes::observed_list("conditions", attributes::condition_attributes()).description(
                    "Status conditions the service observes (e.g. `Ready`), apart from \
                     `provisioning_state`.",
                ),
                attributes::observed_list("control_plane_nodes", attributes::node_attributes())
                    .use_state_for_unknown()
                    .description("The control-plane VMs."),
                timeouts::attribute(DEFAULT_TIMEOUT),
            ],
        )
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        let spec = spec_for_rules(config);
        planning::report_rules(
            cluster::validate_spec(&spec),
            config,
            &[&["network.pod_cidr", "network.service_cidr"]],
            diags,
        );
    }

    async fn modify_plan(
        &self,
        ctx: PlanContext<'_, HostClient>,
        planned: &mut Value,
        diags: &mut Diagnostics,
    ) {
        plan_observed(ctx.prior, ctx.config, planned);
        let Some((client, put)) = dry_run::put(&ctx, planned, &self.schema()) else {
            return;
        };
        let (Some(name), Some(spec)) = (values::string(planned, "name"), spec_from(planned)) else {
            return;
        };
        if put == Put::Upsert && same_spec(ctx.prior, planned) {
            return;
        }
        let answer = client.dry_run_cluster(&name, &spec, put).await;
        let summary = format!("The host management service would refuse cluster {name:?}");
        let Some(admitted) =
            dry_run::outcome(answer, put == Put::Create, &summary, &self.schema(), diags)
        else {
            return;
        };
        // The service resolves the default version; show it instead of
        // "known after apply" (create then sends exactly this version).
        if planned
            .get("kubernetes_version")
            .is_some_and(Value::is_unknown)
            && let Some(version) = admitted.spec.kubernetes_version
        {
            values::set(planned, "kubernetes_version", Value::from(version));
        }
    }

    fn is_id(id: &str) -> bool {
        name_in(id).is_some()
    }

    async fn fetch(client: &HostClient, id: &str) -> Result<Option<Cluster>, ClientError> {
        match name_in(id) {
            Some(name) => client.get_cluster(name).await,
            None => Ok(None),
        }
    }

    fn to_state(object: &Cluster, previous: &Value) -> Value {
        to_state(object, previous)
    }

    fn planned_id(planned: &Value) -> Option<String> {
        values::string(planned, "name").map(|name| cluster_id(&name))
    }

    /// The cluster's name and spec.
    fn create_request(planned: &Value) -> Option<(String, ClusterSpec)> {
        Some((values::string(planned, "name")?, spec_from(planned)?))
    }

    fn update_request(_prior: &Value, planned: &Value) -> Option<ClusterSpec> {
        spec_from(planned)
    }

    fn same_spec(prior: &Value, planned: &Value) -> bool {
        same_spec(prior, planned)
    }

    async fn create(
        client: &HostClient,
        (name, spec): &(String, ClusterSpec),
    ) -> Result<Accepted<Cluster>, ClientError> {
        client.put_cluster(name, spec, Put::Create).await
    }

    async fn update(
        client: &HostClient,
        id: &str,
        spec: &ClusterSpec,
    ) -> Result<Accepted<Cluster>, ClientError> {
        let name = name_in(id).unwrap_or_default();
        client.put_cluster(name, spec, Put::Upsert).await
    }

    async fn delete(client: &HostClient, id: &str) -> Result<Option<Operation>, ClientError> {
        client.delete_cluster(name_in(id).unwrap_or_default()).await
    }
}

/// The name in a cluster id, when it is a valid cluster name.
fn name_in(id: &str) -> Option<&str> {
    parse_cluster_id(id).filter(|name| cluster::validate_name(name).is_ok())
}

fn control_plane_attributes() -> Vec<Attribute> {
    vec![
        Attribute::number("count").default_value(1i64).description(
            "Number of control-plane VMs: 1, 3 or 5 (an odd number keeps etcd quorum). \
                 Defaults to 1. Changes in place.",
        ),
        Attribute::string("vm_size")
            .default_value(DEFAULT_CONTROL_PLANE_VM_SIZE)
            .requires_replace()
            .description(format!(
                "VM size of the control-plane VMs, from the service's catalogue (see the \
                 `hybrid_vm_sizes` data source). Defaults to `{DEFAULT_CONTROL_PLANE_VM_SIZE}`. \
                 Changing it replaces the cluster."
            )),
        Attribute::string("endpoint_ip")
            .optional()
            .requires_replace()
            .description(
                "API-server VIP, from the vnet's `vip_pool`. Left out, the service takes the \
                 lowest free address (see `endpoint`). Changing it replaces the cluster.",
            ),
    ]
}

fn network_attributes() -> Vec<Attribute> {
    vec![
        Attribute::string("plugin")
            .default_value("calico")
            .requires_replace()
            .validator(validators::one_of(&["calico", "flannel"]))
            .description(
                "Container network plugin: `calico` (default) or `flannel`. Changing it \
                 replaces the cluster.",
            ),
        Attribute::string("pod_cidr")
            .default_value(DEFAULT_POD_CIDR)
            .requires_replace()
            .description(format!(
                "IPv4 CIDR pods get addresses from. Defaults to `{DEFAULT_POD_CIDR}`. \
                 Changing it replaces the cluster."
            )),
        Attribute::string("service_cidr")
            .default_value(DEFAULT_SERVICE_CIDR)
            .requires_replace()
            .description(format!(
                "IPv4 CIDR of Kubernetes services, disjoint from `pod_cidr`. Defaults to \
                 `{DEFAULT_SERVICE_CIDR}`. Changing it replaces the cluster."
            )),
        Attribute::nested(
            "load_balancer",
            vec![
                Attribute::number("count")
                    .default_value(0i64)
                    .validator(validators::int_between(0, i64::from(MAX_LOAD_BALANCERS)))
                    .description(format!(
                        "Number of built-in HAProxy load balancer VMs, 0 (none, the default) \
                         to {MAX_LOAD_BALANCERS}; each takes an address from the vnet's \
                         `vm_ip_pool`. Changes in place."
                    )),
            ],
        )
        .default_value(Value::object([("count", Value::from(0i64))]))
        .description("Built-in load balancer VMs for `LoadBalancer` services."),
    ]
}

fn storage_attributes() -> Vec<Attribute> {
    vec![
        Attribute::bool("smb_csi")
            .default_value(true)
            .description("Install the SMB CSI driver. Defaults to true. Changes in place."),
        Attribute::bool("nfs_csi")
            .default_value(true)
            .description("Install the NFS CSI driver. Defaults to true. Changes in place."),
    ]
}

/// Plans the computed values an update may change: unknown exactly when the
/// change can alter them, the prior value otherwise.
fn plan_observed(prior: &Value, config: &Value, planned: &mut Value) {
    planning::keep_succeeded_state(prior, planned);
    if prior.is_null() {
        return;
    }
    if same_spec(prior, planned) {
        planning::keep_prior_values(prior, config, planned);
    }
    let upgrading = planned.get("kubernetes_version") != prior.get("kubernetes_version");
    let scaling = planned.get("control_plane").and_then(|c| c.get("count"))
        != prior.get("control_plane").and_then(|c| c.get("count"));
    if upgrading {
        values::set(planned, "current_kubernetes_version", Value::Unknown);
    }
    if upgrading || scaling {
        // A rolling upgrade replaces every control-plane VM; a scale adds or
        // removes some.
        values::set(planned, "control_plane_nodes", Value::Unknown);
    }
    planning::redrive_unfinished(prior, planned, OBSERVED);
}

/// Whether two plans or states ask the same of the service.
fn same_spec(a: &Value, b: &Value) -> bool {
    let spec = spec_from(a);
    spec.is_some() && spec == spec_from(b)
}

/// The API spec from a plan or state; `None` when a required part is not
/// known. Defaults fill attributes that are null (they are planned, so only
/// an incomplete value has them null).
fn spec_from(object: &Value) -> Option<ClusterSpec> {
    let control_plane = object.get("control_plane").unwrap_or(&Value::Null);
    let network = object.get("network").unwrap_or(&Value::Null);
    let storage = object.get("storage").unwrap_or(&Value::Null);
    if [control_plane, network, storage]
        .iter()
        .any(|v| !v.is_fully_known())
    {
        return None;
    }
    Some(ClusterSpec {
        custom_location_id: values::string(object, "custom_location_id")?,
        vnet_id: values::string(object, "vnet_id")?,
        kubernetes_version: values::string(object, "kubernetes_version"),
        control_plane: control_plane_from(control_plane),
        network: network_from(network)?,
        ssh_public_key: values::string(object, "ssh_public_key"),
        admin_group_ids: values::strings(object, "admin_group_ids"),
        storage: storage_from(storage),
        tags: values::string_map(object, "tags"),
    })
}

fn control_plane_from(value: &Value) -> ControlPlane {
    let defaults = ControlPlane::default();
    ControlPlane {
        count: values::u32_of(value, "count").unwrap_or(defaults.count),
        vm_size: values::string(value, "vm_size").unwrap_or(defaults.vm_size),
        endpoint_ip: values::string(value, "endpoint_ip"),
    }
}

/// `None` for a plugin the service does not know (the schema validator
/// reports it).
fn network_from(value: &Value) -> Option<ClusterNetwork> {
    let defaults = ClusterNetwork::default();
    let plugin = match values::string(value, "plugin").as_deref() {
        None | Some("calico") => NetworkPlugin::Calico,
        Some("flannel") => NetworkPlugin::Flannel,
        Some(_) => return None,
    };
    Some(ClusterNetwork {
        plugin,
        pod_cidr: values::string(value, "pod_cidr").unwrap_or(defaults.pod_cidr),
        service_cidr: values::string(value, "service_cidr").unwrap_or(defaults.service_cidr),
        load_balancer: LoadBalancer {
            count: value
                .get("load_balancer")
                .and_then(|lb| values::u32_of(lb, "count"))
                .unwrap_or(0),
        },
    })
}

fn storage_from(value: &Value) -> ClusterStorage {
    let flag = |name| value.get(name).and_then(Value::as_bool).unwrap_or(true);
    ClusterStorage {
        smb_csi: flag("smb_csi"),
        nfs_csi: flag("nfs_csi"),
    }
}

/// A spec for the shared rules from a configuration that may hold unknown
/// values: valid placeholders stand in for them, and `report_rules` drops
/// any finding about an unknown value.
fn spec_for_rules(config: &Value) -> ClusterSpec {
    let nested = |name| config.get(name).unwrap_or(&Value::Null);
    ClusterSpec {
        custom_location_id: values::string(config, "custom_location_id")
            .unwrap_or_else(|| "/custom-locations/placeholder".into()),
        vnet_id: values::string(config, "vnet_id").unwrap_or_else(|| "/vnets/placeholder".into()),
        kubernetes_version: None,
        control_plane: control_plane_from(nested("control_plane")),
        network: network_from(nested("network")).unwrap_or_default(),
        ssh_public_key: values::string(config, "ssh_public_key"),
        admin_group_ids: Vec::new(),
        storage: ClusterStorage::default(),
        tags: Default::default(),
    }
}

/// The Terraform state of a cluster.
fn to_state(cluster: &Cluster, previous: &Value) -> Value {
    let spec = &cluster.spec;
    let status = &cluster.status;
    let mut state = Value::object([
        ("id", Value::from(cluster.id.as_str())),
        ("name", Value::from(cluster.name.as_str())),
        (
            "custom_location_id",
            Value::from(spec.custom_location_id.as_str()),
        ),
        ("vnet_id", Value::from(spec.vnet_id.as_str())),
        (
            "kubernetes_version",
            values::opt_string(spec.kubernetes_version.as_deref()),
        ),
        (
            "control_plane",
            Value::object([
                ("count", values::count(spec.control_plane.count)),
                ("vm_size", Value::from(spec.control_plane.vm_size.as_str())),
                (
                    "endpoint_ip",
                    values::opt_string(spec.control_plane.endpoint_ip.as_deref()),
                ),
            ]),
        ),
        (
            "network",
            Value::object([
                ("plugin", Value::from(spec.network.plugin.as_str())),
                ("pod_cidr", Value::from(spec.network.pod_cidr.as_str())),
                (
                    "service_cidr",
                    Value::from(spec.network.service_cidr.as_str()),
                ),
                (
                    "load_balancer",
                    Value::object([("count", values::count(spec.network.load_balancer.count))]),
                ),
            ]),
        ),
        (
            "ssh_public_key",
            values::opt_string(spec.ssh_public_key.as_deref()),
        ),
        (
            "admin_group_ids",
            attributes::string_set_state(&spec.admin_group_ids, previous.get("admin_group_ids")),
        ),
        (
            "storage",
            Value::object([
                ("smb_csi", Value::from(spec.storage.smb_csi)),
                ("nfs_csi", Value::from(spec.storage.nfs_csi)),
            ]),
        ),
        (
            "tags",
            values::string_map_state(&spec.tags, previous.get("tags")),
        ),
        ("endpoint", values::opt_string(status.endpoint.as_deref())),
        (
            "ca_certificate",
            values::opt_string(status.ca_certificate.as_deref()),
        ),
        (
            "current_kubernetes_version",
            values::opt_string(status.current_kubernetes_version.as_deref()),
        ),
        (
            "provisioning_state",
            Value::from(cluster.provisioning_state.as_str()),
        ),
        (
            "conditions",
            attributes::conditions_value(&status.conditions),
        ),
        (
            "control_plane_nodes",
            attributes::nodes_value(&status.control_plane_nodes),
        ),
    ]);
    values::carry(&mut state, previous, "timeouts");
    state
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::framework::AttrPath;
    use crate::framework::plan::plan;
    use crate::framework::schema::{Kind, Mode};

    fn object() -> Cluster {
        serde_json::from_value(serde_json::json!({
            "id": "/clusters/prod-a",
            "name": "prod-a",
            "etag": "1",
            "custom_location_id": "/custom-locations/site-a",
            "vnet_id": "/vnets/lan",
            "kubernetes_version": "1.31.7",
            "provisioning_state": "Succeeded",
            "status": {
                "conditions": [{"type": "Ready", "status": "True", "reason": "Provisioned",
                                "message": "ok", "last_transition_time": "t"}],
                "endpoint": "https://10.0.0.200:6443",
                "ca_certificate": "-----BEGIN CERTIFICATE-----",
                "current_kubernetes_version": "1.31.7",
                "control_plane_nodes": [{"name": "prod-a-cp-1", "ip": "10.0.0.10",
                    "host": "host-1", "state": "Running", "kubernetes_version": "1.31.7",
                    "vm_size": "Standard_A4_v2"}]
            },
            "created_at": "t",
            "updated_at": "t"
        }))
        .unwrap()
    }

    /// A configuration with only the required attributes and `extra` set.
    fn config(extra: &[(&str, Value)]) -> Value {
        let schema = ClusterResource.schema();
        let mut attrs: BTreeMap<String, Value> = schema
            .attributes
            .iter()
            .map(|a| (a.name.to_string(), Value::Null))
            .collect();
        attrs.insert("name".into(), "prod-a".into());
        attrs.insert(
            "custom_location_id".into(),
            "/custom-locations/site-a".into(),
        );
        attrs.insert("vnet_id".into(), "/vnets/lan".into());
        for (k, v) in extra {
            attrs.insert(k.to_string(), v.clone());
        }
        Value::Object(attrs)
    }

    /// Extra configuration and the replacement it must (or must not) force.
    type Case = (Vec<(&'static str, Value)>, Vec<AttrPath>);

    fn plan_for(prior: &Value, config: &Value) -> crate::framework::plan::Plan {
        let schema = ClusterResource.schema();
        let proposed =
            crate::framework::plan::proposed_new_state(&schema.attributes, prior, config);
        let mut planned = plan(&schema, prior, config, &proposed);
        plan_observed(prior, config, &mut planned.planned);
        planned
    }

    #[test]
    fn defaults_and_resolved_version_never_show_a_diff() {
        let cfg = config(&[]);
        // Create: defaults are planned, the version is left to the service.
        let created = plan_for(&Value::Null, &cfg);
        let cp = created.planned.get("control_plane").unwrap();
        assert_eq!(cp.get("count"), Some(&Value::from(1i64)));
        assert_eq!(cp.get("vm_size"), Some(&Value::from("Standard_A4_v2")));
        assert_eq!(
            created
                .planned
                .get("network")
                .and_then(|n| n.get("pod_cidr")),
            Some(&Value::from("10.244.0.0/16"))
        );
        assert_eq!(
            created.planned.get("kubernetes_version"),
            Some(&Value::Unknown)
        );
        // The spec the create sends equals what the service reports back.
        let sent = spec_from(&created.planned).unwrap();
        let mut answered = object().spec;
        answered.kubernetes_version = None;
        assert_eq!(sent, answered);

        // After apply, the same configuration plans exactly the state.
        let prior = to_state(&object(), &created.planned);
        let again = plan_for(&prior, &cfg);
        assert_eq!(again.planned, prior);
        assert!(again.requires_replace.is_empty());
    }

    #[test]
    fn requires_replace_exactly_on_immutable_attributes() {
        let cfg = config(&[]);
        let prior = to_state(&object(), &cfg);
        let cp = |count: i64, size: &str| {
            Value::object([
                ("count", Value::from(count)),
                ("vm_size", Value::from(size)),
                ("endpoint_ip", Value::Null),
            ])
        };
        let cases: Vec<Case> = vec![
            (
                vec![("vnet_id", "/vnets/other".into())],
                vec![AttrPath::attr("vnet_id")],
            ),
            (
                vec![("custom_location_id", "/custom-locations/b".into())],
                vec![AttrPath::attr("custom_location_id")],
            ),
            (
                vec![("control_plane", cp(1, "Standard_D4s_v3"))],
                vec![AttrPath::attr("control_plane").then_attr("vm_size")],
            ),
            (vec![("control_plane", cp(3, "Standard_A4_v2"))], vec![]),
            (vec![("kubernetes_version", "1.32.3".into())], vec![]),
            (
                vec![("ssh_public_key", "ssh-ed25519 AAAA x".into())],
                vec![AttrPath::attr("ssh_public_key")],
            ),
            (
                vec![(
                    "network",
                    Value::object([
                        ("plugin", Value::from("flannel")),
                        ("pod_cidr", Value::Null),
                        ("service_cidr", Value::Null),
                        (
                            "load_balancer",
                            Value::object([("count", Value::from(2i64))]),
                        ),
                    ]),
                )],
                vec![AttrPath::attr("network").then_attr("plugin")],
            ),
            (
                vec![(
                    "storage",
                    Value::object([("smb_csi", Value::from(false)), ("nfs_csi", Value::Null)]),
                )],
                vec![],
            ),
            (
                vec![("admin_group_ids", Value::set([Value::from("g1")]))],
                vec![],
            ),
        ];
        for (extra, want) in cases {
            let got = plan_for(&prior, &config(&extra)).requires_replace;
            assert_eq!(got, want, "{extra:?}");
        }
    }

    #[test]
    fn dropping_a_nested_setting_back_to_its_default_is_a_replacement() {
        let network = Value::object([
            ("plugin", Value::from("flannel")),
            ("pod_cidr", Value::Null),
            ("service_cidr", Value::Null),
            ("load_balancer", Value::Null),
        ]);
        let with_flannel = config(&[("network", network)]);
        let created = plan_for(&Value::Null, &with_flannel);
        let mut object = object();
        object.spec.network.plugin = NetworkPlugin::Flannel;
        let prior = to_state(&object, &created.planned);
        assert!(plan_for(&prior, &with_flannel).requires_replace.is_empty());
        assert_eq!(
            plan_for(&prior, &config(&[])).requires_replace,
            vec![AttrPath::attr("network").then_attr("plugin")]
        );
    }

    #[test]
    fn only_what_an_update_can_change_is_planned_unknown() {
        let cfg = config(&[]);
        let prior = to_state(&object(), &cfg);

        // A tag change keeps the endpoint, version, nodes and state known.
        let tags = Value::Map([("env".to_string(), Value::from("prod"))].into());
        let planned = plan_for(&prior, &config(&[("tags", tags)])).planned;
        for name in [
            "endpoint",
            "ca_certificate",
            "current_kubernetes_version",
            "control_plane_nodes",
            "kubernetes_version",
        ] {
            assert_eq!(planned.get(name), prior.get(name), "{name}");
        }
        assert_eq!(
            planned.get("provisioning_state"),
            Some(&Value::from("Succeeded"))
        );

        // An upgrade makes the running version and the VMs unknown.
        let planned = plan_for(&prior, &config(&[("kubernetes_version", "1.32.3".into())])).planned;
        assert_eq!(
            planned.get("current_kubernetes_version"),
            Some(&Value::Unknown)
        );
        assert_eq!(planned.get("control_plane_nodes"), Some(&Value::Unknown));
        assert_eq!(planned.get("endpoint"), prior.get("endpoint"));
    }

    #[test]
    fn a_timeouts_change_alone_keeps_every_observed_value() {
        let prior = to_state(&object(), &config(&[]));
        let timeouts = Value::object([
            ("create", Value::from("1h")),
            ("update", Value::Null),
            ("delete", Value::Null),
        ]);
        let cfg = config(&[("timeouts", timeouts.clone())]);
        let planned = plan_for(&prior, &cfg).planned;
        let mut want = prior.clone();
        values::set(&mut want, "timeouts", timeouts);
        assert_eq!(planned, want);
        // …and the update asks nothing of the service.
        assert_eq!(
            super::super::lifecycle::unchanged_update(
                &prior,
                &planned,
                same_spec(&prior, &planned)
            ),
            Some(want)
        );
    }

    #[test]
    fn a_failed_cluster_plans_an_update_that_redrives_it() {
        let mut failed = object();
        failed.provisioning_state = hybrid_api::ProvisioningState::Failed;
        let cfg = config(&[]);
        let prior = to_state(&failed, &cfg);
        let planned = plan_for(&prior, &cfg).planned;
        assert_eq!(planned.get("provisioning_state"), Some(&Value::Unknown));
        assert_eq!(planned.get("conditions"), Some(&Value::Unknown));
        assert_eq!(
            planned.get("kubernetes_version"),
            prior.get("kubernetes_version")
        );
    }

    #[test]
    fn shared_rules_report_at_the_attribute_and_skip_unknowns() {
        let cp = Value::object([
            ("count", Value::from(2i64)),
            ("vm_size", Value::Null),
            ("endpoint_ip", Value::Null),
        ]);
        let network = Value::object([
            ("plugin", Value::Null),
            ("pod_cidr", Value::Unknown),
            ("service_cidr", Value::from("10.244.0.0/20")),
            ("load_balancer", Value::Null),
        ]);
        let cfg = config(&[
            ("control_plane", cp),
            ("network", network),
            ("vnet_id", Value::Unknown),
        ]);
        let mut diags = Diagnostics::new();
        ClusterResource.validate(&cfg, &mut diags);
        let paths: Vec<_> = diags.iter().map(|d| d.path.clone()).collect();
        assert_eq!(
            paths,
            vec![Some(AttrPath::attr("control_plane").then_attr("count"))]
        );
        assert!(diags.0[0].detail.contains("1, 3 or 5"));
    }

    #[test]
    fn every_nested_setting_with_a_default_is_optional_and_computed() {
        fn check(attributes: &[Attribute]) {
            for a in attributes {
                if a.default.is_some() {
                    assert_eq!(a.mode, Mode::OptionalComputed, "{}", a.name);
                }
                if let Kind::Nested(inner) = &a.kind {
                    check(inner);
                }
            }
        }
        check(&ClusterResource.schema().attributes);
    }
}
