//! `hybrid_vnet`: a virtual network with its node-VM and VIP address pools.
//!
//! Everything about the network itself is immutable (a change replaces it);
//! the pools and tags change in place. Pools may grow freely and shrink only
//! when no allocated address falls outside, which the plan checks against
//! the service before anything is applied. A new vnet is checked by the
//! service's dry run at plan time too: its prefix must not overlap another
//! vnet's on the same segment (same VLAN, or both untagged).
//!
//! The state holds what the vnet *is*, never how much of it is in use:
//! clusters take and release addresses all the time, and usage in the
//! managed state would show as "changed outside of Terraform" on every plan.
//! The `hybrid_vnet` data source reports usage. Schema version 1 dropped the
//! pools' `used` and `available` that version 0 kept; [`upgrade_state`]
//! rewrites such a state.
//!
//! [`upgrade_state`]: Managed::upgrade_state

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hybrid_api::Operation;
use hybrid_api::{IpAllocationMethod, IpPool, PoolKind, Vnet, VnetPatch, VnetSpec};
use hybrid_cty::{Type, Value};

use super::lifecycle::{Managed, managed_resource};
use super::planning::forces_replacement;
use super::vip_pressure::{self, VipChange};
use super::{dry_run, planning};
use crate::client::{Accepted, ClientError, HostClient, Put};
use crate::errors;
use crate::framework::model::{self, Attr, ToValue};
use crate::framework::schema::Attribute;
use crate::framework::{AttrPath, Diagnostics, PlanContext, Schema, timeouts, validators};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Version 1: the pools no longer carry `used` and `available` (usage moved
/// to the data source).
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// The pool attributes schema version 0 had and version 1 dropped.
const USAGE_ATTRIBUTES: [&str; 2] = ["used", "available"];

pub struct VnetResource;

managed_resource!(VnetResource);

impl Managed for VnetResource {
    type Object = Vnet;
    type Model = VnetModel;
    type Create = (String, VnetSpec);
    type Update = VnetPatch;
    const TYPE_NAME: &'static str = "hybrid_vnet";
    const KIND: &'static str = "vnet";
    const ID_FORMAT: &'static str = "/vnets/<name>";
    const ID_EXAMPLE: &'static str = "/vnets/lan";
    const DEFAULT_TIMEOUT: Duration = DEFAULT_TIMEOUT;
    const INCOMPLETE_UPDATE: &'static str = "the state has neither `name` nor `id`";

    fn schema(&self) -> Schema {
        let mut attributes = vnet_attributes(true);
        attributes.push(timeouts::attribute(DEFAULT_TIMEOUT));
        Schema::new(
            "A virtual network on the on-prem hosts: its prefix, gateway, DNS and VLAN, \
             and two address pools — `vm_ip_pool` for node VMs and `vip_pool` for API-server \
             and load-balancer VIPs. Clusters take their addresses from these pools; the \
             `hybrid_vnet` data source reports how many are in use.",
            attributes,
        )
        .with_version(SCHEMA_VERSION)
    }

    /// Version 0 → 1: drop each pool's `used` and `available`.
    fn upgrade_state(
        version: i64,
        mut state: serde_json::Value,
        _diags: &mut Diagnostics,
    ) -> serde_json::Value {
        if version < 1 {
            for kind in [PoolKind::Vm, PoolKind::Vip] {
                if let Some(pool) = state
                    .get_mut(kind.field())
                    .and_then(serde_json::Value::as_object_mut)
                {
                    for attribute in USAGE_ATTRIBUTES {
                        pool.remove(attribute);
                    }
                }
            }
        }
        state
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        // The service's own admission rules, run at plan time. Only when the
        // network's shape is fully known: with unknowns a rule could fire on
        // a value that is merely not known yet.
        let config: VnetModel = model::read(config);
        let shape_known = config.address_prefix.is_fully_known()
            && config.ip_allocation_method.is_fully_known()
            && config.gateway.is_fully_known()
            && config.dns_servers.is_fully_known()
            && config.vlan_id.is_fully_known()
            && config.vm_ip_pool.is_fully_known()
            && config.vip_pool.is_fully_known();
        if !shape_known {
            return;
        }
        let Some(spec) = spec_from(&config) else {
            return;
        };
        for error in hybrid_api::validate::vnet_spec(&spec) {
            diags.error_at(
                AttrPath::parse(&error.target),
                format!("Invalid {}", error.target),
                error.message,
            );
        }
    }

    async fn modify_plan(
        &self,
        ctx: PlanContext<'_, HostClient>,
        planned: &mut Value,
        diags: &mut Diagnostics,
    ) {
        plan_pool_sizes(planned);
        planning::keep_succeeded_state(ctx.prior, planned);
        let schema = self.schema();
        let plan: VnetModel = model::read(planned);
        if !ctx.prior.is_null()
            && forces_replacement(&schema.attributes, ctx.prior, planned)
            && let Some(name) = plan.name.known()
        {
            replacement_planned(name);
        }
        // A new vnet goes through the service's whole admission now
        // (`?dry_run=true`), so what only the service can tell — a prefix
        // overlapping another vnet on the same segment — fails the plan.
        if let Some((client, Put::Create)) = dry_run::put(&ctx, planned, &schema) {
            if let (Some(name), Some(spec)) = (plan.name.known(), spec_from(&plan))
                && !is_planned_replacement(name)
            {
                let answer = client.dry_run_vnet(name, &spec, Put::Create).await;
                let summary = format!("The host management service would refuse vnet {name:?}");
                dry_run::outcome(answer, true, &summary, &schema, diags);
            }
            return;
        }
        // In place only the pools and tags change. Shrinking a pool is
        // allowed only while nothing allocated would fall outside: ask the
        // service now so the plan, not the apply, fails.
        let (Some(client), false) = (ctx.data, ctx.prior.is_null()) else {
            return;
        };
        let (prior, plan): (VnetModel, VnetModel) = (model::read(ctx.prior), model::read(planned));
        let Some(name) = prior.name.known() else {
            return;
        };
        let shrinking: Vec<(PoolKind, IpPool)> = [PoolKind::Vm, PoolKind::Vip]
            .into_iter()
            .filter_map(|kind| {
                let new = pool_from(plan.pool(kind))?;
                let old = pool_from(prior.pool(kind))?;
                (new != old).then_some((kind, new))
            })
            .collect();
        if shrinking.is_empty() {
            return;
        }
        let reservations = match client.list_reservations(name).await {
            Ok(list) => list,
            Err(e) if e.is_not_found() => return,
            Err(e) => {
                errors::report(
                    diags,
                    &format!("Cannot check address usage of vnet {name:?}"),
                    &e,
                );
                return;
            }
        };
        for (kind, pool) in shrinking {
            let Some((start, end)) = hybrid_api::validate::pool_range(&pool) else {
                continue;
            };
            let outside: Vec<String> = reservations
                .iter()
                .filter(|r| r.pool == kind)
                .filter(|r| {
                    hybrid_api::validate::parse_ipv4("address", &r.address)
                        .is_ok_and(|a| a < start || a > end)
                })
                .map(|r| format!("{} (held by {})", r.address, r.owner))
                .collect();
            if !outside.is_empty() {
                diags.error_at(
                    AttrPath::attr(kind.field()),
                    format!("Cannot shrink {}", kind.field()),
                    format!(
                        "{} {}–{} would leave allocated addresses outside the pool: {}. \
                         A pool may shrink only when no allocated address falls outside.",
                        kind.field(),
                        pool.start,
                        pool.end,
                        outside.join(", ")
                    ),
                );
            } else if kind == PoolKind::Vip {
                // Every VIP in use stays; warn if none would be left free.
                let change = VipChange {
                    vnet: name,
                    pool: Some(pool),
                    added: 0,
                    cluster: None,
                };
                let at = AttrPath::attr(kind.field());
                vip_pressure::warn(client, change, Some(&reservations), at, diags).await;
            }
        }
    }

    fn is_id(id: &str) -> bool {
        vnet_name(id).is_some()
    }

    async fn fetch(client: &HostClient, id: &str) -> Result<Option<Vnet>, ClientError> {
        match vnet_name(id) {
            Some(name) => client.get_vnet(name).await,
            None => Ok(None),
        }
    }

    fn to_state(vnet: &Vnet, previous: &VnetModel) -> VnetModel {
        to_state(vnet, previous)
    }

    fn planned_id(planned: &VnetModel) -> Option<String> {
        planned.name.known().map(|name| hybrid_api::vnet_id(name))
    }

    /// From the state's `name`, else its `id`.
    fn state_id(state: &VnetModel) -> Option<String> {
        name_of(state).map(|name| hybrid_api::vnet_id(&name))
    }

    /// The vnet's name and spec.
    fn create_request(planned: &VnetModel) -> Option<(String, VnetSpec)> {
        Some((planned.name.known()?.clone(), spec_from(planned)?))
    }

    /// Only the pools and tags change in place.
    fn update_request(_prior: &VnetModel, planned: &VnetModel) -> Option<VnetPatch> {
        Some(VnetPatch {
            vm_ip_pool: pool_from(&planned.vm_ip_pool),
            vip_pool: pool_from(&planned.vip_pool),
            tags: Some(planned.tags.known_entries()),
        })
    }

    async fn create(
        client: &HostClient,
        (name, spec): &(String, VnetSpec),
    ) -> Result<Accepted<Vnet>, ClientError> {
        client.create_vnet(name, spec).await
    }

    async fn update(
        client: &HostClient,
        id: &str,
        patch: &VnetPatch,
    ) -> Result<Accepted<Vnet>, ClientError> {
        let name = id.strip_prefix("/vnets/").unwrap_or_default();
        client.patch_vnet(name, patch).await
    }

    async fn delete(client: &HostClient, id: &str) -> Result<Option<Operation>, ClientError> {
        client
            .delete_vnet(id.strip_prefix("/vnets/").unwrap_or_default())
            .await
    }
}

/// Names of the vnets this process planned as the new half of a
/// replacement. Terraform plans a replacement twice: with the prior state
/// (where the provider sees the replacement) and then its create half alone,
/// with no prior state. Asking the service about that create half would
/// compare it with the very vnet it replaces — which still exists, and
/// which a renamed vnet keeping its prefix overlaps — and fail the plan
/// for a conflict the apply never meets (the old vnet goes first). So the
/// create half of a replacement is left to the apply's own admission.
static REPLACEMENTS: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

fn replacement_planned(name: &str) {
    REPLACEMENTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(name.to_string());
}

fn is_planned_replacement(name: &str) -> bool {
    REPLACEMENTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .contains(name)
}

/// The name in a vnet id.
fn vnet_name(id: &str) -> Option<&str> {
    id.strip_prefix("/vnets/")
        .filter(|n| !n.is_empty() && !n.contains('/'))
}

/// The attributes of a pool object: its range and size, plus, for the data
/// source (`settable` false), its usage.
pub(crate) fn pool_attributes(settable: bool) -> Vec<Attribute> {
    let bound = |name: &'static str, what: &str| {
        let attribute = Attribute::string(name).description(format!(
            "{what} address of the pool (IPv4), inside `address_prefix`."
        ));
        if settable {
            attribute.required()
        } else {
            attribute.computed()
        }
    };
    let mut attributes = vec![
        bound("start", "First"),
        bound("end", "Last (inclusive)"),
        Attribute::number("size")
            .computed()
            .description("Number of addresses in the pool."),
    ];
    if !settable {
        attributes.extend([
            Attribute::number("used")
                .computed()
                .description("Addresses currently allocated (nodes, VIPs, reservations)."),
            Attribute::number("available")
                .computed()
                .description("Addresses free for allocation (`size - used`)."),
        ]);
    }
    attributes
}

/// The schema attributes of a vnet as the data source and resource share
/// them. `settable` is false for the data source, where all is computed.
pub(crate) fn vnet_attributes(settable: bool) -> Vec<Attribute> {
    let input = |attribute: Attribute, required: bool| -> Attribute {
        match (settable, required) {
            (false, _) => attribute.computed(),
            (true, true) => attribute.required().requires_replace(),
            (true, false) => attribute.optional().requires_replace(),
        }
    };
    let pool = |name: &'static str, what: &str| {
        let usage = if settable {
            "`size` is the number of addresses; how many are in use is reported by the \
             `hybrid_vnet` data source, not here, so that clusters taking addresses never \
             show as changes to the vnet."
        } else {
            "`size`, `used` and `available` report usage."
        };
        let attribute = Attribute::nested(name, pool_attributes(settable)).description(format!(
            "{what} `start`/`end` may grow in place; shrinking is refused while an \
             allocated address would fall outside. {usage}"
        ));
        if settable {
            attribute.optional()
        } else {
            attribute.computed()
        }
    };
    let mut method = input(
        Attribute::string("ip_allocation_method")
            .description(
                "How node VMs get addresses: `static` (from `vm_ip_pool`) or `dhcp`. \
                 Defaults to `static`. Changing it replaces the vnet.",
            )
            .validator(validators::one_of(&["static", "dhcp"])),
        false,
    );
    if settable {
        method = method.default_value("static");
    }
    vec![
        Attribute::string("id")
            .computed()
            .use_state_for_unknown()
            .description("The vnet's path in the host API, `/vnets/<name>`; also the import id."),
        if settable {
            Attribute::string("name")
                .required()
                .requires_replace()
                .validator(validators::string_rule(|name| {
                    hybrid_api::validate::vnet_name(name).map_err(|e| e.message)
                }))
        } else {
            Attribute::string("name").required()
        }
        .description(
            "Name of the vnet: a DNS label, 1–63 lower-case letters, digits or `-`, starting \
             and ending with a letter or digit. Changing it replaces the vnet.",
        ),
        input(
            Attribute::string("address_prefix").description(
                "IPv4 CIDR of the network, e.g. `10.0.0.0/24`. It must not overlap the prefix \
                 of another vnet on the same VLAN (or, untagged, of another untagged vnet). \
                 Changing it replaces the vnet.",
            ),
            true,
        ),
        method,
        input(
            Attribute::string("gateway")
                .description("Default gateway, inside `address_prefix` and outside both pools."),
            false,
        ),
        input(
            Attribute::list("dns_servers", Type::String).description(format!(
                "DNS servers handed to VMs on the vnet, at most {}.",
                hybrid_api::limits::MAX_DNS_SERVERS
            )),
            false,
        ),
        input(
            Attribute::number("vlan_id")
                .description(
                    "VLAN tag, 0–4094; none (or 0) is untagged. Vnets on one VLAN share a \
                     network segment and must not have overlapping prefixes.",
                )
                .validator(validators::int_between(0, 4094)),
            false,
        ),
        pool(
            "vm_ip_pool",
            "Addresses for node VMs; required when `ip_allocation_method` is `static`, not allowed for `dhcp`.",
        ),
        pool(
            "vip_pool",
            "Addresses for API-server and load-balancer VIPs.",
        ),
        {
            let tags = Attribute::map("tags", Type::String).description(format!(
                "Free-form tags: at most {}, keys of 1–{} characters, values of at most {}.",
                hybrid_api::limits::MAX_TAGS,
                hybrid_api::limits::MAX_TAG_KEY,
                hybrid_api::limits::MAX_TAG_VALUE
            ));
            if settable {
                tags.optional()
            } else {
                tags.computed()
            }
        },
        Attribute::string("provisioning_state")
            .computed()
            .description("Outcome of the last operation on the vnet (`Succeeded`, `Failed`, …)."),
    ]
}

crate::model! {
    /// A vnet's configuration, plan or state: the schema's attributes.
    pub(crate) struct VnetModel {
        pub id: Attr<String>,
        pub name: Attr<String>,
        pub address_prefix: Attr<String>,
        pub ip_allocation_method: Attr<String>,
        pub gateway: Attr<String>,
        pub dns_servers: Attr<Vec<String>>,
        pub vlan_id: Attr<i64>,
        pub vm_ip_pool: Attr<PoolModel>,
        pub vip_pool: Attr<PoolModel>,
        pub tags: Attr<BTreeMap<String, String>>,
        pub provisioning_state: Attr<String>,
        pub timeouts: Attr<Value>,
    }
}

crate::model! {
    /// `vm_ip_pool` / `vip_pool`: a settable range and its size.
    pub(crate) struct PoolModel {
        pub start: Attr<String>,
        pub end: Attr<String>,
        pub size: Attr<i64>,
    }
}

impl VnetModel {
    fn pool(&self, kind: PoolKind) -> &Attr<PoolModel> {
        match kind {
            PoolKind::Vm => &self.vm_ip_pool,
            PoolKind::Vip => &self.vip_pool,
        }
    }
}

/// A pool's size follows from its range, so the plan can show it instead of
/// "known after apply".
fn plan_pool_sizes(planned_value: &mut Value) {
    let mut planned: VnetModel = model::read(planned_value);
    for pool_attr in [&mut planned.vm_ip_pool, &mut planned.vip_pool] {
        let size = pool_from(pool_attr).as_ref().and_then(pool_size);
        if let (Some(size), Attr::Known(pool)) = (size, pool_attr)
            && pool.size.is_unknown()
        {
            pool.size = Attr::Known(size);
        }
    }
    *planned_value = planned.to_value();
}

/// The number of addresses in `pool`, from its range.
fn pool_size(pool: &IpPool) -> Option<i64> {
    hybrid_api::validate::pool_size(pool).and_then(|n| i64::try_from(n).ok())
}

/// The vnet name from a state's `name`, else from its `id`.
fn name_of(state: &VnetModel) -> Option<String> {
    state.name.known().cloned().or_else(|| {
        state
            .id
            .known()
            .and_then(|id| id.strip_prefix("/vnets/").map(str::to_string))
    })
}

/// A pool's range, when both ends are known.
fn pool_from(pool: &Attr<PoolModel>) -> Option<IpPool> {
    let pool = pool.known()?;
    Some(IpPool {
        start: pool.start.known()?.clone(),
        end: pool.end.known()?.clone(),
    })
}

/// The API spec from a configuration or plan. `None` when a required part
/// is missing (unknown or null).
fn spec_from(vnet: &VnetModel) -> Option<VnetSpec> {
    let method = match vnet.ip_allocation_method.known().map(String::as_str) {
        None | Some("static") => IpAllocationMethod::Static,
        Some("dhcp") => IpAllocationMethod::Dhcp,
        Some(_) => return None,
    };
    Some(VnetSpec {
        address_prefix: vnet.address_prefix.known()?.clone(),
        ip_allocation_method: method,
        gateway: vnet.gateway.known().cloned(),
        dns_servers: vnet.dns_servers.known_items(),
        vlan_id: vnet.vlan_id.known().and_then(|&v| u16::try_from(v).ok()),
        vm_ip_pool: pool_from(&vnet.vm_ip_pool),
        vip_pool: pool_from(&vnet.vip_pool),
        tags: vnet.tags.known_entries(),
    })
}

/// A pool's state: its range and size (never its usage).
fn pool_state(pool: Option<&IpPool>) -> Attr<PoolModel> {
    let Some(pool) = pool else {
        return Attr::Null;
    };
    Attr::Known(PoolModel {
        start: Attr::Known(pool.start.clone()),
        end: Attr::Known(pool.end.clone()),
        size: pool_size(pool).into(),
    })
}

/// The Terraform state of a vnet: its settings, not its usage (`status`).
/// `previous` (plan or prior state) decides null-versus-empty for optional
/// collections and carries `timeouts`.
pub(crate) fn to_state(vnet: &Vnet, previous: &VnetModel) -> VnetModel {
    let spec = &vnet.spec;
    VnetModel {
        id: Attr::Known(vnet.id.clone()),
        name: Attr::Known(vnet.name.clone()),
        address_prefix: Attr::Known(spec.address_prefix.clone()),
        ip_allocation_method: Attr::Known(spec.ip_allocation_method.as_str().to_string()),
        gateway: spec.gateway.clone().into(),
        dns_servers: model::collection(spec.dns_servers.clone(), &previous.dns_servers),
        vlan_id: spec.vlan_id.map(i64::from).into(),
        vm_ip_pool: pool_state(spec.vm_ip_pool.as_ref()),
        vip_pool: pool_state(spec.vip_pool.as_ref()),
        tags: model::collection(spec.tags.clone(), &previous.tags),
        provisioning_state: Attr::Known(vnet.provisioning_state.as_str().to_string()),
        timeouts: previous.timeouts.clone(),
    }
}
