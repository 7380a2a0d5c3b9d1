//! `hybrid_vnet`: a virtual network with its node-VM and VIP address pools.
//!
//! Everything about the network itself is immutable (a change replaces it);
//! the pools and tags change in place. Pools may grow freely and shrink only
//! when no allocated address falls outside, which the plan checks against
//! the service before anything is applied.

use std::time::Duration;

use hybrid_api::Operation;
use hybrid_api::{IpAllocationMethod, IpPool, PoolKind, PoolUsage, Vnet, VnetPatch, VnetSpec};
use hybrid_cty::{Type, Value};

use super::lifecycle::{Managed, managed_resource};
use super::planning;
use crate::client::{Accepted, ClientError, HostClient};
use crate::errors;
use crate::framework::schema::Attribute;
use crate::framework::{AttrPath, Diagnostics, PlanContext, Schema, timeouts, validators, values};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

pub struct VnetResource;

managed_resource!(VnetResource);

impl Managed for VnetResource {
    type Object = Vnet;
    const TYPE_NAME: &'static str = "hybrid_vnet";
    const KIND: &'static str = "vnet";
    const ID_FORMAT: &'static str = "/vnets/<name>";
    const ID_EXAMPLE: &'static str = "/vnets/lan";
    const DEFAULT_TIMEOUT: Duration = DEFAULT_TIMEOUT;

    type Create = (String, VnetSpec);
    type Update = VnetPatch;
    const INCOMPLETE_UPDATE: &'static str = "the state has neither `name` nor `id`";

    fn schema(&self) -> Schema {
        let mut attributes = vnet_attributes(true);
        attributes.push(timeouts::attribute(DEFAULT_TIMEOUT));
        Schema::new(
            "A virtual network on the on-prem hosts: its prefix, gateway, DNS and VLAN, \
             and two address pools — `vm_ip_pool` for node VMs and `vip_pool` for API-server \
             and load-balancer VIPs. Clusters take their addresses from these pools.",
            attributes,
        )
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        // The service's own admission rules, run at plan time. Only when the
        // network's shape is fully known: with unknowns a rule could fire on
        // a value that is merely not known yet.
        let shape = [
            "address_prefix",
            "ip_allocation_method",
            "gateway",
            "dns_servers",
            "vlan_id",
            "vm_ip_pool",
            "vip_pool",
        ];
        if !shape
            .iter()
            .all(|name| config.get(name).is_none_or(Value::is_fully_known))
        {
            return;
        }
        let Some(spec) = spec_from(config) else {
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
        // Shrinking a pool is allowed only while nothing allocated would fall
        // outside: ask the service now so the plan, not the apply, fails.
        let (Some(client), false) = (ctx.data, ctx.prior.is_null()) else {
            return;
        };
        let Some(name) = values::string(ctx.prior, "name") else {
            return;
        };
        let shrinking: Vec<(PoolKind, IpPool)> = [PoolKind::Vm, PoolKind::Vip]
            .into_iter()
            .filter_map(|kind| {
                let new = pool_from(planned.get(kind.field())?)?;
                let old = pool_from(ctx.prior.get(kind.field())?)?;
                (new != old).then_some((kind, new))
            })
            .collect();
        if shrinking.is_empty() {
            return;
        }
        let reservations = match client.list_reservations(&name).await {
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

    fn to_state(vnet: &Vnet, previous: &Value) -> Value {
        to_state(vnet, previous)
    }

    fn planned_id(planned: &Value) -> Option<String> {
        values::string(planned, "name").map(|name| hybrid_api::vnet_id(&name))
    }

    /// From the state's `name`, else its `id`.
    fn state_id(state: &Value) -> Option<String> {
        name_of(state).map(|name| hybrid_api::vnet_id(&name))
    }

    /// The vnet's name and spec.
    fn create_request(planned: &Value) -> Option<(String, VnetSpec)> {
        Some((values::string(planned, "name")?, spec_from(planned)?))
    }

    /// Only the pools and tags change in place.
    fn update_request(_prior: &Value, planned: &Value) -> Option<VnetPatch> {
        Some(VnetPatch {
            vm_ip_pool: planned.get("vm_ip_pool").and_then(pool_from),
            vip_pool: planned.get("vip_pool").and_then(pool_from),
            tags: Some(values::string_map(planned, "tags")),
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

/// The name in a vnet id.
fn vnet_name(id: &str) -> Option<&str> {
    id.strip_prefix("/vnets/")
        .filter(|n| !n.is_empty() && !n.contains('/'))
}

/// The attributes of a pool object: settable range plus computed usage.
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
    vec![
        bound("start", "First"),
        bound("end", "Last (inclusive)"),
        Attribute::number("size")
            .computed()
            .description("Number of addresses in the pool."),
        Attribute::number("used")
            .computed()
            .description("Addresses currently allocated (nodes, VIPs, reservations)."),
        Attribute::number("available")
            .computed()
            .description("Addresses free for allocation (`size - used`)."),
    ]
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
        let attribute = Attribute::nested(name, pool_attributes(settable)).description(format!(
            "{what} `start`/`end` may grow in place; shrinking is refused while an \
             allocated address would fall outside. `size`, `used` and `available` report usage."
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
                "IPv4 CIDR of the network, e.g. `10.0.0.0/24`. Changing it replaces the vnet.",
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
            Attribute::list("dns_servers", Type::String)
                .description("DNS servers handed to VMs on the vnet."),
            false,
        ),
        input(
            Attribute::number("vlan_id")
                .description("VLAN tag, 0–4094.")
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
            let tags = Attribute::map("tags", Type::String).description("Free-form tags.");
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

/// A pool's size follows from its range, so the plan can show it instead of
/// "known after apply".
fn plan_pool_sizes(planned: &mut Value) {
    let Value::Object(attrs) = planned else {
        return;
    };
    for field in ["vm_ip_pool", "vip_pool"] {
        let Some(pool_value @ Value::Object(_)) = attrs.get_mut(field) else {
            continue;
        };
        let size = pool_from(pool_value)
            .as_ref()
            .and_then(hybrid_api::validate::pool_size)
            .and_then(|n| i64::try_from(n).ok());
        if let (Some(size), Value::Object(pool)) = (size, pool_value)
            && pool.get("size").is_some_and(Value::is_unknown)
        {
            pool.insert("size".into(), Value::from(size));
        }
    }
}

/// The vnet name from a state's `name`, else from its `id`.
fn name_of(state: &Value) -> Option<String> {
    values::string(state, "name").or_else(|| {
        values::string(state, "id").and_then(|id| id.strip_prefix("/vnets/").map(str::to_string))
    })
}

pub(crate) fn pool_from(value: &Value) -> Option<IpPool> {
    Some(IpPool {
        start: values::string(value, "start")?,
        end: values::string(value, "end")?,
    })
}

/// The API spec from a configuration or plan. `None` when a required part
/// is missing (unknown or null).
fn spec_from(object: &Value) -> Option<VnetSpec> {
    let method = match values::string(object, "ip_allocation_method").as_deref() {
        None | Some("static") => IpAllocationMethod::Static,
        Some("dhcp") => IpAllocationMethod::Dhcp,
        Some(_) => return None,
    };
    Some(VnetSpec {
        address_prefix: values::string(object, "address_prefix")?,
        ip_allocation_method: method,
        gateway: values::string(object, "gateway"),
        dns_servers: values::strings(object, "dns_servers"),
        vlan_id: values::int(object, "vlan_id").and_then(|v| u16::try_from(v).ok()),
        vm_ip_pool: object.get("vm_ip_pool").and_then(pool_from),
        vip_pool: object.get("vip_pool").and_then(pool_from),
        tags: values::string_map(object, "tags"),
    })
}

fn usage_state(pool: Option<&IpPool>, usage: Option<&PoolUsage>) -> Value {
    let Some(pool) = pool else {
        return Value::Null;
    };
    let count = |f: fn(&PoolUsage) -> u64| {
        usage
            .and_then(|u| i64::try_from(f(u)).ok())
            .map(Value::from)
            .unwrap_or(Value::Null)
    };
    Value::object([
        ("start", Value::from(pool.start.as_str())),
        ("end", Value::from(pool.end.as_str())),
        ("size", count(|u| u.size)),
        ("used", count(|u| u.used)),
        ("available", count(|u| u.available)),
    ])
}

/// The Terraform state of a vnet. `previous` (plan or prior state) decides
/// null-versus-empty for optional collections and carries `timeouts`.
pub(crate) fn to_state(vnet: &Vnet, previous: &Value) -> Value {
    let spec = &vnet.spec;
    let mut state = Value::object([
        ("id", Value::from(vnet.id.as_str())),
        ("name", Value::from(vnet.name.as_str())),
        ("address_prefix", Value::from(spec.address_prefix.as_str())),
        (
            "ip_allocation_method",
            Value::from(spec.ip_allocation_method.as_str()),
        ),
        ("gateway", values::opt_string(spec.gateway.as_deref())),
        (
            "dns_servers",
            values::string_list_state(&spec.dns_servers, previous.get("dns_servers")),
        ),
        (
            "vlan_id",
            spec.vlan_id
                .map(|v| Value::from(i64::from(v)))
                .unwrap_or(Value::Null),
        ),
        (
            "vm_ip_pool",
            usage_state(spec.vm_ip_pool.as_ref(), vnet.status.vm_ip_pool.as_ref()),
        ),
        (
            "vip_pool",
            usage_state(spec.vip_pool.as_ref(), vnet.status.vip_pool.as_ref()),
        ),
        (
            "tags",
            values::string_map_state(&spec.tags, previous.get("tags")),
        ),
        (
            "provisioning_state",
            Value::from(vnet.provisioning_state.as_str()),
        ),
    ]);
    values::carry(&mut state, previous, "timeouts");
    state
}
