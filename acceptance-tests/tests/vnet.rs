//! Acceptance tests for the `hybrid_vnet` resource and data source: the real
//! `terraform` binary, our provider, and a real `hybrid-host` per test.

use hybrid_acceptance_tests::{Host, Result, Workdir, ensure};
use serde_json::{Value, json};

/// A static vnet with both pools, a gateway, DNS, VLAN, tags and timeouts.
fn full_config(name: &str, prefix: &str, vm_end: &str, tags: &str) -> String {
    let base = prefix.trim_end_matches(".0/24");
    format!(
        r#"
resource "hybrid_vnet" "test" {{
  name                 = "{name}"
  address_prefix       = "{prefix}"
  ip_allocation_method = "static"
  gateway              = "{base}.1"
  dns_servers          = ["{base}.2", "{base}.3"]
  vlan_id              = 42
  vm_ip_pool           = {{ start = "{base}.10", end = "{base}.{vm_end}" }}
  vip_pool             = {{ start = "{base}.200", end = "{base}.220" }}
  tags                 = {tags}

  timeouts = {{
    create = "5m"
    update = "5m"
    delete = "5m"
  }}
}}

output "id" {{
  value = hybrid_vnet.test.id
}}
"#
    )
}

/// A minimal static vnet with one extra line of attributes.
fn small_config(name: &str, extra: &str) -> String {
    format!(
        r#"
resource "hybrid_vnet" "test" {{
  name           = "{name}"
  address_prefix = "10.0.0.0/24"
  vm_ip_pool     = {{ start = "10.0.0.10", end = "10.0.0.99" }}
  {extra}
}}
"#
    )
}

fn get_vnet(host: &Host, name: &str) -> Result<Value> {
    let resp = host.get(&format!("/v1/vnets/{name}"))?;
    ensure!(
        resp.status == 200,
        "GET /v1/vnets/{name}: {} {}",
        resp.status,
        resp.body
    );
    Ok(resp.body)
}

/// Re-applying `config` after a failure leaves the vnet `Succeeded` in the
/// service and nothing left to change (the harness's quiet-plan check).
fn reapply_converges(host: &Host, wd: &Workdir, config: &str, name: &str) -> Result<()> {
    wd.apply(config)?;
    let api = get_vnet(host, name)?;
    ensure!(
        api["provisioning_state"] == "Succeeded",
        "API after re-apply: {api}"
    );
    Ok(())
}

fn vnet_count(host: &Host) -> Result<usize> {
    let resp = host.get("/v1/vnets")?;
    ensure!(
        resp.status == 200,
        "GET /v1/vnets: {} {}",
        resp.status,
        resp.body
    );
    Ok(resp.body["items"].as_array().map_or(0, Vec::len))
}

/// Create → no-op plan → update in place → replace → import-verify → destroy.
/// (Every apply is followed by the harness's quiet-plan check: no perpetual
/// diff, no drift.)
#[test]
fn vnet_lifecycle() -> Result<()> {
    let host = Host::start()?;
    let wd = Workdir::new(&host)?;

    // Create.
    wd.apply(&full_config(
        "lan",
        "10.0.0.0/24",
        "99",
        r#"{ env = "test" }"#,
    ))?;
    let state = wd.resource("hybrid_vnet.test")?;
    ensure!(state["id"] == "/vnets/lan", "id in state: {}", state["id"]);
    ensure!(state["provisioning_state"] == "Succeeded", "state: {state}");
    ensure!(
        state["vm_ip_pool"]["size"] == 90,
        "vm pool size in state: {state}"
    );
    // The state holds each pool's range and size, never its usage.
    ensure!(
        state["vm_ip_pool"] == json!({"start": "10.0.0.10", "end": "10.0.0.99", "size": 90}),
        "vm pool in state: {state}"
    );
    ensure!(
        state["vip_pool"]["size"] == 21,
        "vip pool size in state: {state}"
    );
    ensure!(
        state["timeouts"]["create"] == "5m",
        "timeouts kept in state: {state}"
    );
    let api = get_vnet(&host, "lan")?;
    ensure!(api["address_prefix"] == "10.0.0.0/24", "API: {api}");
    ensure!(api["gateway"] == "10.0.0.1", "API: {api}");
    ensure!(
        api["dns_servers"] == json!(["10.0.0.2", "10.0.0.3"]),
        "API: {api}"
    );
    ensure!(api["vlan_id"] == 42, "API: {api}");
    ensure!(
        api["vm_ip_pool"] == json!({"start": "10.0.0.10", "end": "10.0.0.99"}),
        "API: {api}"
    );
    ensure!(api["tags"] == json!({"env": "test"}), "API: {api}");
    ensure!(api["status"]["vm_ip_pool"]["size"] == 90, "API: {api}");

    // Grow the VM pool and change tags: an in-place update, same id.
    let grown = full_config(
        "lan",
        "10.0.0.0/24",
        "150",
        r#"{ env = "test", tier = "gold" }"#,
    );
    wd.write_config(&grown)?;
    let plan = wd.plan_json()?;
    let actions = Workdir::planned_actions(&plan, "hybrid_vnet.test");
    ensure!(
        actions == ["update"],
        "growing a pool planned {actions:?}, want [update]"
    );
    wd.expect_changes(None, &["will be updated in-place", "10.0.0.150"])?;
    wd.apply(&grown)?;
    let state = wd.resource("hybrid_vnet.test")?;
    ensure!(state["id"] == "/vnets/lan", "id changed on update: {state}");
    ensure!(
        state["vm_ip_pool"]["size"] == 141,
        "grown pool size: {state}"
    );
    let api = get_vnet(&host, "lan")?;
    ensure!(
        api["vm_ip_pool"]["end"] == "10.0.0.150",
        "API after grow: {api}"
    );
    ensure!(
        api["tags"] == json!({"env": "test", "tier": "gold"}),
        "API after tags: {api}"
    );

    // A new prefix forces replacement.
    let moved = full_config(
        "lan",
        "10.9.0.0/24",
        "150",
        r#"{ env = "test", tier = "gold" }"#,
    );
    wd.write_config(&moved)?;
    let plan = wd.plan_json()?;
    let actions = Workdir::planned_actions(&plan, "hybrid_vnet.test");
    ensure!(
        actions == ["delete", "create"],
        "changing address_prefix planned {actions:?}, want [delete, create]"
    );
    wd.expect_changes(
        None,
        &["must be replaced", "# forces replacement", "address_prefix"],
    )?;
    wd.apply(&moved)?;
    let api = get_vnet(&host, "lan")?;
    ensure!(
        api["address_prefix"] == "10.9.0.0/24",
        "API after replace: {api}"
    );

    // Every other immutable attribute forces replacement too, and the plan
    // says which one (plan only; nothing is applied).
    for (from, to, attribute) in [
        (
            "name                 = \"lan\"",
            "name                 = \"lan2\"",
            "name",
        ),
        (
            "vlan_id              = 42",
            "vlan_id              = 43",
            "vlan_id",
        ),
        (
            "gateway              = \"10.9.0.1\"",
            "gateway              = \"10.9.0.5\"",
            "gateway",
        ),
        (
            "[\"10.9.0.2\", \"10.9.0.3\"]",
            "[\"10.9.0.2\"]",
            "dns_servers",
        ),
    ] {
        ensure!(moved.contains(from), "test bug: {from:?} not in the config");
        wd.write_config(&moved.replace(from, to))?;
        let plan = wd.plan_json()?;
        let actions = Workdir::planned_actions(&plan, "hybrid_vnet.test");
        ensure!(
            actions == ["delete", "create"],
            "changing {attribute} planned {actions:?}, want [delete, create]"
        );
        let replace_paths = plan["resource_changes"][0]["change"]["replace_paths"].to_string();
        ensure!(
            replace_paths.contains(&format!("\"{attribute}\"")),
            "changing {attribute}: replace_paths {replace_paths} does not name it"
        );
    }
    wd.write_config(&moved)?;

    // Import into a fresh state gives the same attributes (timeouts are
    // configuration-only, so import cannot know them).
    wd.import_verify("hybrid_vnet.test", "/vnets/lan", &["timeouts"])?;

    // Destroy: gone from the API too.
    wd.destroy()?;
    let resp = host.get("/v1/vnets/lan")?;
    ensure!(
        resp.status == 404,
        "after destroy GET answered {} {}",
        resp.status,
        resp.body
    );
    ensure!(
        resp.error_code().is_some(),
        "404 without an error envelope: {}",
        resp.body
    );
    Ok(())
}

/// Out-of-band changes show as drift; out-of-band deletion plans a create;
/// state survives a host crash and restart.
#[test]
fn vnet_drift_and_out_of_band_delete() -> Result<()> {
    let mut host = Host::start()?;
    let wd = Workdir::new(&host)?;
    let config = small_config("edge", r#"tags = { owner = "netops" }"#);
    wd.apply(&config)?;

    // Change tags behind Terraform's back.
    let resp = host.patch(
        "/v1/vnets/edge",
        &json!({"tags": {"owner": "someone-else"}}),
    )?;
    ensure!(
        matches!(resp.status, 200 | 202),
        "PATCH: {} {}",
        resp.status,
        resp.body
    );
    host.wait_operation(&resp)?;
    // The JSON plan reports it as drift ("Objects have changed outside of
    // Terraform"), which the harness's quiet-plan check refuses.
    let plan = wd.plan_json()?;
    let drift = hybrid_acceptance_tests::plan::resource_drift(&plan)?;
    ensure!(
        drift.len() == 1
            && drift[0].address == "hybrid_vnet.test"
            && drift[0].changed_paths() == ["tags.owner"],
        "drift: {drift:?}"
    );
    ensure!(
        hybrid_acceptance_tests::plan::expect_quiet(&plan).is_err(),
        "a plan with drift passed as quiet"
    );
    // The refreshed value shows as the "before" side of the diff that puts
    // the configured tags back.
    let out = wd.expect_changes(None, &[r#""owner" = "someone-else" -> "netops""#])?;
    ensure!(
        out.contains("update in-place"),
        "drift should be fixed in place:\n{}",
        out.stdout
    );
    wd.apply(&config)?;
    ensure!(
        get_vnet(&host, "edge")?["tags"] == json!({"owner": "netops"}),
        "tags not restored"
    );

    // A crash and restart of the service loses nothing.
    host.restart()?;
    wd.expect_no_changes()?;

    // Delete it behind Terraform's back: the next plan re-creates it.
    let resp = host.delete("/v1/vnets/edge")?;
    ensure!(
        matches!(resp.status, 200 | 202 | 204),
        "DELETE: {} {}",
        resp.status,
        resp.body
    );
    host.wait_operation(&resp)?;
    let plan = wd.plan_json()?;
    let actions = Workdir::planned_actions(&plan, "hybrid_vnet.test");
    ensure!(
        actions == ["create"],
        "after out-of-band delete planned {actions:?}, want [create]"
    );
    wd.apply(&config)?;
    ensure!(get_vnet(&host, "edge")?["name"] == "edge", "not re-created");
    Ok(())
}

/// Every bad vnet input (a pool outside the prefix, overlapping pools,
/// start > end, a VLAN out of range, …) fails at plan time, at the
/// attribute, naming the value and the rule; nothing is created.
#[test]
fn vnet_bad_inputs_fail_at_plan_time() -> Result<()> {
    let host = Host::start()?;
    let wd = Workdir::new(&host)?;
    let resource = |body: &str| {
        format!("resource \"hybrid_vnet\" \"bad\" {{\n  name           = \"bad\"\n{body}\n}}\n")
    };
    // (attribute lines, snippet fragment the error must point at, needles)
    let cases: &[(&str, &str, &[&str])] = &[
        (
            r#"  address_prefix = "10.0.0.0/24"
  vm_ip_pool     = { start = "10.0.1.10", end = "10.0.1.20" }"#,
            // A nested path (vm_ip_pool.start): Terraform can only place
            // diagnostics on top-level attributes or nested blocks, so the
            // snippet may be the resource header; the text names the path.
            "",
            &[
                "vm_ip_pool.start",
                "10.0.1.10",
                "outside address_prefix 10.0.0.0/24",
            ],
        ),
        (
            r#"  address_prefix = "10.0.0.0/24"
  vm_ip_pool     = { start = "10.0.0.10", end = "10.0.0.99" }
  vip_pool       = { start = "10.0.0.50", end = "10.0.0.60" }"#,
            "vip_pool",
            &["vip_pool", "10.0.0.50-10.0.0.60", "overlaps vm_ip_pool"],
        ),
        (
            r#"  address_prefix = "10.0.0.0/24"
  vm_ip_pool     = { start = "10.0.0.99", end = "10.0.0.10" }"#,
            "vm_ip_pool",
            &["vm_ip_pool", "10.0.0.99", "start must be <= end"],
        ),
        (
            r#"  address_prefix = "10.0.0.0/24"
  vm_ip_pool     = { start = "10.0.0.10", end = "10.0.0.99" }
  vlan_id        = 5000"#,
            "vlan_id",
            &["vlan_id", "5000", "4094"],
        ),
        (
            r#"  address_prefix = "10.0.0.0/24"
  gateway        = "10.0.0.20"
  vm_ip_pool     = { start = "10.0.0.10", end = "10.0.0.99" }"#,
            "vm_ip_pool",
            &["vm_ip_pool", "10.0.0.20", "gateway must not be in a pool"],
        ),
        (
            r#"  address_prefix = "10.0.0.0/33"
  vm_ip_pool     = { start = "10.0.0.10", end = "10.0.0.99" }"#,
            "address_prefix",
            &["address_prefix", "10.0.0.0/33"],
        ),
        (
            r#"  address_prefix = "not-a-cidr"
  vm_ip_pool     = { start = "10.0.0.10", end = "10.0.0.99" }"#,
            "address_prefix",
            &["address_prefix", "not-a-cidr", "not an IPv4 CIDR"],
        ),
        (
            r#"  address_prefix = "10.0.0.0/24""#,
            "",
            &["vm_ip_pool", "required", "static"],
        ),
        (
            r#"  address_prefix       = "10.0.0.0/24"
  ip_allocation_method = "manual"
  vm_ip_pool           = { start = "10.0.0.10", end = "10.0.0.99" }"#,
            "ip_allocation_method",
            &["ip_allocation_method", "manual", "dhcp"],
        ),
    ];
    for (body, fragment, needles) in cases {
        let out = wd.expect_plan_error(&resource(body), needles)?;
        out.expect_contains(&["with hybrid_vnet.bad"])?;
        if !fragment.is_empty() {
            out.expect_snippet(fragment)?;
        }
    }
    // A bad name is caught too, at `name`.
    let out = wd.expect_plan_error(&small_config("Bad_Name", ""), &["name", "Bad_Name"])?;
    out.expect_snippet("Bad_Name")?;
    ensure!(vnet_count(&host)? == 0, "a refused plan left a vnet behind");
    Ok(())
}

/// Shrinking a pool below an allocated address fails at plan time naming
/// the address; deleting a vnet in use fails listing the user and keeps it
/// in state.
#[test]
fn vnet_in_use_rules() -> Result<()> {
    let host = Host::start()?;
    let wd = Workdir::new(&host)?;
    wd.apply(&small_config("busy", ""))?;

    let resp = host.post(
        "/v1/vnets/busy/reservations",
        &json!({"pool": "vm", "owner": "/clusters/prod-a", "address": "10.0.0.50"}),
    )?;
    ensure!(
        resp.status == 201,
        "reservation: {} {}",
        resp.status,
        resp.body
    );
    ensure!(
        resp.body["address"] == "10.0.0.50",
        "reservation: {}",
        resp.body
    );

    // Usage changing under a vnet (clusters allocating addresses) is not a
    // change to plan, and not a change made outside of Terraform either:
    // the resource keeps no usage. The data source reports it.
    wd.expect_no_changes()?;
    let with_usage = format!(
        "{}\ndata \"hybrid_vnet\" \"usage\" {{\n  name = hybrid_vnet.test.name\n}}\n",
        small_config("busy", "")
    );
    wd.apply(&with_usage)?;
    let usage = wd.resource("data.hybrid_vnet.usage")?;
    ensure!(
        usage["vm_ip_pool"]["used"] == 1 && usage["vm_ip_pool"]["available"] == 89,
        "usage after the reservation: {usage}"
    );
    let state = wd.resource("hybrid_vnet.test")?;
    ensure!(
        state["vm_ip_pool"].get("used").is_none(),
        "usage in the resource's state: {state}"
    );

    // Shrinking so 10.0.0.50 falls outside is refused before anything runs.
    let shrunk = small_config("busy", "").replace("10.0.0.99", "10.0.0.40");
    wd.expect_plan_error(&shrunk, &["vm_ip_pool", "10.0.0.50", "/clusters/prod-a"])?;
    // Shrinking while keeping it inside is fine, in place.
    let ok = small_config("busy", "").replace("10.0.0.99", "10.0.0.60");
    wd.apply(&ok)?;
    ensure!(
        get_vnet(&host, "busy")?["vm_ip_pool"]["end"] == "10.0.0.60",
        "shrink not applied"
    );

    // Deleting a vnet in use names the user; the vnet stays, in state too.
    let out = wd.terraform(&["destroy", "-auto-approve"])?;
    ensure!(
        out.code != Some(0),
        "destroy of a vnet in use succeeded:\n{}",
        out.stdout
    );
    out.expect_contains(&["busy", "/clusters/prod-a"])?;
    ensure!(
        get_vnet(&host, "busy")?["name"] == "busy",
        "vnet gone after refused delete"
    );
    wd.resource("hybrid_vnet.test")?;
    Ok(())
}

/// The data source reads a vnet created outside this configuration.
#[test]
fn vnet_data_source() -> Result<()> {
    let host = Host::start()?;
    let resp = host.put(
        "/v1/vnets/shared",
        &json!({
            "address_prefix": "172.16.0.0/24",
            "gateway": "172.16.0.1",
            "vm_ip_pool": {"start": "172.16.0.10", "end": "172.16.0.19"},
            "vip_pool": {"start": "172.16.0.100", "end": "172.16.0.104"},
            "tags": {"site": "lab"}
        }),
    )?;
    ensure!(
        (200..=202).contains(&resp.status),
        "PUT: {} {}",
        resp.status,
        resp.body
    );
    host.wait_operation(&resp)?;

    let wd = Workdir::new(&host)?;
    wd.apply(
        r#"
data "hybrid_vnet" "shared" {
  name = "shared"
}

output "vip_available" {
  value = data.hybrid_vnet.shared.vip_pool.available
}
"#,
    )?;
    let ds = wd.resource("data.hybrid_vnet.shared")?;
    ensure!(ds["id"] == "/vnets/shared", "data source: {ds}");
    ensure!(ds["address_prefix"] == "172.16.0.0/24", "data source: {ds}");
    ensure!(ds["gateway"] == "172.16.0.1", "data source: {ds}");
    ensure!(ds["ip_allocation_method"] == "static", "data source: {ds}");
    ensure!(ds["vm_ip_pool"]["size"] == 10, "data source: {ds}");
    ensure!(ds["vip_pool"]["available"] == 5, "data source: {ds}");
    ensure!(ds["tags"] == json!({"site": "lab"}), "data source: {ds}");

    // A missing vnet is an error at `name`.
    wd.expect_plan_error(
        "data \"hybrid_vnet\" \"nope\" {\n  name = \"nope\"\n}\n",
        &["nope", "not found"],
    )?;
    Ok(())
}

/// A DHCP vnet needs no VM pool.
#[test]
fn vnet_dhcp() -> Result<()> {
    let host = Host::start()?;
    let wd = Workdir::new(&host)?;
    wd.apply(
        r#"
resource "hybrid_vnet" "dhcp" {
  name                 = "dhcp"
  address_prefix       = "192.168.10.0/24"
  ip_allocation_method = "dhcp"
  vip_pool             = { start = "192.168.10.240", end = "192.168.10.250" }
}
"#,
    )?;
    let api = get_vnet(&host, "dhcp")?;
    ensure!(api["ip_allocation_method"] == "dhcp", "API: {api}");
    ensure!(
        api.get("vm_ip_pool").is_none_or(Value::is_null),
        "API: {api}"
    );
    wd.import_verify("hybrid_vnet.dhcp", "/vnets/dhcp", &["timeouts"])?;
    Ok(())
}

/// Importing an id that does not exist, or is not a vnet id, fails clearly.
#[test]
fn vnet_import_errors() -> Result<()> {
    let host = Host::start()?;
    let wd = Workdir::new(&host)?;
    wd.write_config(&small_config("ghost", ""))?;
    let out = wd.terraform(&["import", "hybrid_vnet.test", "/vnets/ghost"])?;
    ensure!(out.code != Some(0), "import of a missing vnet succeeded");
    out.expect_contains(&["/vnets/ghost"])?;
    let out = wd.terraform(&["import", "hybrid_vnet.test", "ghost"])?;
    ensure!(out.code != Some(0), "import of a malformed id succeeded");
    out.expect_contains(&["ghost", "/vnets/<name>"])?;
    Ok(())
}

/// An unreachable endpoint or a wrong token fails at provider configuration,
/// naming the endpoint; the token never appears in the output.
#[test]
fn provider_configuration_errors() -> Result<()> {
    let host = Host::start()?;
    let config = small_config("cfg", "");

    // Wrong token.
    let mut wd = Workdir::new(&host)?;
    let bad_token = "wrong-token-0123456789abcdef";
    wd.set_env("HYBRID_TOKEN", bad_token);
    let out = wd.expect_plan_error(&config, &[host.endpoint()])?;
    ensure!(
        !out.combined().contains(bad_token) && !out.combined().contains(host.token()),
        "a token leaked into the output:\n{}",
        out.combined()
    );

    // Unreachable endpoint: a port nothing listens on.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| hybrid_acceptance_tests::Error::Check(format!("finding a free port: {e}")))?;
    let dead = format!("https://{free}");
    wd.set_env("HYBRID_TOKEN", host.token());
    wd.set_env("HYBRID_ENDPOINT", &dead);
    wd.expect_plan_error(&config, &[&dead])?;

    // The same settings given in the provider block, not the environment.
    let wd = Workdir::unconfigured()?;
    let ca = host.ca_pem().replace('\n', "\\n");
    let block = format!(
        "provider \"hybrid\" {{\n  endpoint       = \"{}\"\n  token          = \"{}\"\n  ca_certificate = \"{ca}\"\n}}\n{config}",
        host.endpoint(),
        host.token()
    );
    wd.apply(&block)?;
    ensure!(
        get_vnet(&host, "cfg")?["name"] == "cfg",
        "vnet not created via provider block"
    );

    // No configuration at all: the error says what is missing.
    let wd = Workdir::unconfigured()?;
    wd.expect_plan_error(&config, &["endpoint", "HYBRID_ENDPOINT"])?;
    Ok(())
}

/// A failure after the service accepted the work: the vnet is kept in state,
/// tainted, with the error; once the fault is gone, re-applying converges.
#[test]
fn vnet_failure_mid_create_is_tainted_then_converges() -> Result<()> {
    let mut host = Host::start_with_sim("[faults]\nfail_networks = [\"flaky\"]\n")?;
    let wd = Workdir::new(&host)?;
    let config = small_config("flaky", "");
    wd.apply_expect_error(&config, &["flaky"])?;

    let show = wd.show_json()?;
    let entry = show
        .pointer("/values/root_module/resources")
        .and_then(Value::as_array)
        .and_then(|rs| rs.iter().find(|r| r["address"] == "hybrid_vnet.test"))
        .cloned();
    ensure!(
        entry.is_some(),
        "a failed create lost the vnet from state: {show}"
    );
    let entry = entry.unwrap_or_default();
    ensure!(entry["tainted"] == true, "failed vnet not tainted: {entry}");
    ensure!(
        entry["values"]["id"] == "/vnets/flaky",
        "failed vnet state: {entry}"
    );
    let api = get_vnet(&host, "flaky")?;
    ensure!(
        api["provisioning_state"] == "Failed",
        "API after fault: {api}"
    );

    // Lift the fault; the tainted vnet is replaced and everything settles.
    host.set_sim(None)?;
    host.restart()?;
    let plan = wd.plan_json()?;
    let actions = Workdir::planned_actions(&plan, "hybrid_vnet.test");
    ensure!(
        actions == ["delete", "create"],
        "tainted vnet planned {actions:?}, want [delete, create]"
    );
    reapply_converges(&host, &wd, &config, "flaky")
}

/// The service side of the contract the provider relies on: health without
/// a token, everything else with one, and an OpenAPI document listing the
/// vnet routes.
#[test]
fn host_api_contract() -> Result<()> {
    let host = Host::start()?;
    let health = host.call_with_token(reqwest::Method::GET, "/healthz", None, None)?;
    ensure!(
        health.status == 200,
        "/healthz without a token: {} {}",
        health.status,
        health.body
    );
    let anon = host.call_with_token(reqwest::Method::GET, "/v1/vnets", None, None)?;
    ensure!(
        anon.status == 401,
        "/v1/vnets without a token: {} {}",
        anon.status,
        anon.body
    );
    ensure!(
        anon.error_code().is_some(),
        "401 without an error envelope: {}",
        anon.body
    );
    let wrong = host.call_with_token(reqwest::Method::GET, "/v1/vnets", None, Some("nope"))?;
    ensure!(
        wrong.status == 401,
        "/v1/vnets with a wrong token: {}",
        wrong.status
    );

    let doc = host.get("/v1/openapi.json")?;
    ensure!(doc.status == 200, "openapi: {} {}", doc.status, doc.body);
    let paths = doc.body["paths"].as_object().cloned().unwrap_or_default();
    for (path, methods) in [
        ("/v1/vnets", &["get"][..]),
        ("/v1/vnets/{name}", &["get", "put", "patch", "delete"][..]),
        ("/v1/operations/{id}", &["get"][..]),
    ] {
        let entry = paths.get(path);
        ensure!(
            entry.is_some(),
            "openapi.json lacks {path}; has {:?}",
            paths.keys()
        );
        for m in methods {
            ensure!(
                entry.and_then(|e| e.get(m)).is_some(),
                "openapi.json lacks {} {path}",
                m.to_uppercase()
            );
        }
    }
    Ok(())
}

/// `timeouts` are honoured: a create slower than `timeouts.create` fails
/// with a message saying so, and the vnet is kept (tainted) in state, so a
/// later apply converges instead of losing track of it.
#[test]
fn vnet_create_timeout_is_honoured() -> Result<()> {
    let mut host = Host::start_with_sim("[timings]\nnetwork_ms = 4000\n")?;
    let wd = Workdir::new(&host)?;
    let config = small_config("slow", "timeouts = { create = \"1s\" }");
    wd.apply_expect_error(&config, &["timed out after 1s", "/vnets/slow"])?;
    let show = wd.show_json()?;
    ensure!(
        hybrid_acceptance_tests::find_resource(&show, "hybrid_vnet.test").is_some(),
        "a timed-out create lost the vnet from state: {show}"
    );

    host.set_sim(None)?;
    host.restart()?;
    reapply_converges(&host, &wd, &config, "slow")
}

/// The token never reaches a log: run a full apply/destroy at TRACE level
/// (Terraform's log includes the provider's stderr) and look for it.
#[test]
fn token_never_logged() -> Result<()> {
    let host = Host::start()?;
    let mut wd = Workdir::new(&host)?;
    let log = wd.dir().join("trace.log");
    wd.set_env("TF_LOG", "TRACE");
    wd.set_env("TF_LOG_PATH", &log.display().to_string());
    let out = wd.apply(&small_config("logged", ""))?;
    wd.destroy()?;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    ensure!(
        text.contains(
            "provider.terraform-provider-hybrid: connected to the host management service"
        ),
        "the trace log has no provider log lines; is TF_LOG honoured? ({} bytes)",
        text.len()
    );
    ensure!(
        !text.contains(host.token()) && !out.combined().contains(host.token()),
        "the admin token appears in the trace log or output"
    );
    ensure!(
        !host.log().contains(host.token()),
        "the admin token appears in the host log"
    );
    Ok(())
}

/// Many vnets in one apply: Terraform creates them concurrently (its default
/// parallelism is 10) and every one lands, with no perpetual diff.
#[test]
fn vnet_many_in_one_apply() -> Result<()> {
    let host = Host::start()?;
    let wd = Workdir::new(&host)?;
    wd.apply(
        r#"
resource "hybrid_vnet" "many" {
  count          = 16
  name           = "net-${count.index}"
  address_prefix = "10.${count.index}.0.0/24"
  vm_ip_pool     = { start = "10.${count.index}.0.10", end = "10.${count.index}.0.99" }
  vip_pool       = { start = "10.${count.index}.0.200", end = "10.${count.index}.0.209" }
}
"#,
    )?;
    ensure!(vnet_count(&host)? == 16, "want 16 vnets in the API");
    wd.destroy()?;
    ensure!(vnet_count(&host)? == 0, "vnets left after destroy");
    Ok(())
}

/// Terraform ≥ 1.5 `import` blocks with generated configuration: the
/// generated HCL, applied as is, matches the imported object exactly.
#[test]
fn vnet_import_block_generates_config() -> Result<()> {
    let host = Host::start()?;
    let resp = host.put(
        "/v1/vnets/legacy",
        &json!({
            "address_prefix": "192.168.50.0/24",
            "gateway": "192.168.50.1",
            "dns_servers": ["192.168.50.2"],
            "vlan_id": 50,
            "vm_ip_pool": {"start": "192.168.50.10", "end": "192.168.50.60"},
            "tags": {"owner": "legacy-team"}
        }),
    )?;
    ensure!(
        (200..=202).contains(&resp.status),
        "PUT: {} {}",
        resp.status,
        resp.body
    );
    host.wait_operation(&resp)?;

    let wd = Workdir::new(&host)?;
    wd.write_config("import {\n  to = hybrid_vnet.legacy\n  id = \"/vnets/legacy\"\n}\n")?;
    wd.terraform_ok(&["plan", "-input=false", "-generate-config-out=generated.tf"])?;
    let generated = std::fs::read_to_string(wd.dir().join("generated.tf"))
        .map_err(|e| hybrid_acceptance_tests::Error::Check(format!("generated.tf: {e}")))?;
    for needle in ["192.168.50.0/24", "legacy-team", "vlan_id"] {
        ensure!(
            generated.contains(needle),
            "generated.tf lacks {needle}:\n{generated}"
        );
    }
    wd.apply_current()?;
    let state = wd.resource("hybrid_vnet.legacy")?;
    ensure!(state["vm_ip_pool"]["size"] == 51, "imported state: {state}");
    Ok(())
}

/// A state written by a provider before schema version 1, which kept each
/// pool's `used` and `available` in the resource, is upgraded when
/// Terraform reads it (`UpgradeResourceState`): the first plan after the
/// provider upgrade changes nothing and reports nothing changed outside of
/// Terraform, even though the usage it recorded is stale, and the next
/// write stores the state at version 1 without usage.
#[test]
fn vnet_state_from_schema_version_0_is_upgraded_quietly() -> Result<()> {
    let host = Host::start()?;
    let wd = Workdir::new(&host)?;
    let config = small_config(
        "old",
        r#"vip_pool = { start = "10.0.0.200", end = "10.0.0.209" }"#,
    );
    wd.apply(&config)?;
    // A cluster takes an address after the old provider wrote the state.
    let resp = host.post(
        "/v1/vnets/old/reservations",
        &json!({"pool": "vm", "owner": "/clusters/prod-a", "address": "10.0.0.50"}),
    )?;
    ensure!(
        resp.status == 201,
        "reservation: {} {}",
        resp.status,
        resp.body
    );

    // The state as the old provider wrote it: version 0, usage in the pools.
    let path = wd.dir().join("terraform.tfstate");
    let read_state = || -> Result<Value> {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            hybrid_acceptance_tests::Error::Check(format!("{}: {e}", path.display()))
        })?;
        serde_json::from_str(&text)
            .map_err(|e| hybrid_acceptance_tests::Error::Check(format!("state JSON: {e}")))
    };
    let instance = |state: &Value| state.pointer("/resources/0/instances/0").cloned();
    let mut state = read_state()?;
    let Some(current) = instance(&state) else {
        return Err(hybrid_acceptance_tests::Error::Check(format!(
            "no vnet instance in the state: {state}"
        )));
    };
    ensure!(
        current["schema_version"] == 1,
        "written at version 1: {current}"
    );
    let mut old = current.clone();
    old["schema_version"] = json!(0);
    old["attributes"]["vm_ip_pool"]["used"] = json!(0);
    old["attributes"]["vm_ip_pool"]["available"] = json!(90);
    old["attributes"]["vip_pool"]["used"] = json!(0);
    old["attributes"]["vip_pool"]["available"] = json!(10);
    state["resources"][0]["instances"][0] = old;
    state["serial"] = json!(state["serial"].as_i64().unwrap_or(0) + 1);
    std::fs::write(&path, state.to_string())
        .map_err(|e| hybrid_acceptance_tests::Error::Check(format!("{}: {e}", path.display())))?;

    wd.expect_quiet_plan()?;
    // Any write stores the upgraded state: a refresh-only apply, itself
    // followed by the harness's quiet-plan check.
    wd.apply_with(&["-refresh-only"])?;
    let upgraded = instance(&read_state()?).unwrap_or_default();
    ensure!(
        upgraded["schema_version"] == 1
            && upgraded["attributes"]["vm_ip_pool"]
                == json!({"start": "10.0.0.10", "end": "10.0.0.99", "size": 90})
            && upgraded["attributes"]["vip_pool"]
                == json!({"start": "10.0.0.200", "end": "10.0.0.209", "size": 10}),
        "the upgraded state: {upgraded}"
    );
    Ok(())
}

/// A vnet `name` on `prefix` (`a.b.c.0/len`) and `vlan`, its pools in the
/// prefix's first /24.
fn vnet_on(resource: &str, name: &str, prefix: &str, vlan: u16) -> String {
    let net = prefix.split('.').take(3).collect::<Vec<_>>().join(".");
    format!(
        r#"
resource "hybrid_vnet" "{resource}" {{
  name           = "{name}"
  address_prefix = "{prefix}"
  vlan_id        = {vlan}
  vm_ip_pool     = {{ start = "{net}.10", end = "{net}.60" }}
  vip_pool       = {{ start = "{net}.200", end = "{net}.210" }}
}}
"#
    )
}

/// Issue 19: one address is never handed out twice. A vnet overlapping
/// another on the same VLAN, and a cluster whose pod CIDR overlaps its own
/// vnet, fail `terraform plan` at the attribute, naming the value, the
/// other object and the rule; nothing is created. Another VLAN may reuse
/// the prefix, and renaming a vnet that keeps its prefix (a replacement,
/// whose create half would otherwise meet the vnet it replaces) still
/// plans and applies.
#[test]
fn overlapping_prefixes_fail_at_plan_time() -> Result<()> {
    let host = Host::start()?;
    let wd = Workdir::new(&host)?;
    let first = vnet_on("a", "lan-a", "10.0.0.0/16", 42);
    wd.apply(&first)?;

    let second = vnet_on("b", "lan-b", "10.0.7.0/24", 42);
    let out = wd.expect_plan_error(
        &format!("{first}{second}"),
        &[
            "address_prefix \"10.0.7.0/24\" overlaps vnet lan-a (address_prefix 10.0.0.0/16)",
            "both on VLAN 42",
            "vnets on one segment must not overlap",
        ],
    )?;
    out.expect_contains(&["with hybrid_vnet.b"])?;
    out.expect_snippet("address_prefix")?;
    ensure!(vnet_count(&host)? == 1, "a refused plan created a vnet");

    // On another VLAN the same prefix is another network.
    let elsewhere = vnet_on("b", "lan-b", "10.0.7.0/24", 43);
    wd.apply(&format!("{first}{elsewhere}"))?;

    // A cluster whose pods would sit on its own nodes' network.
    let base = format!(
        r#"{first}{elsewhere}
resource "hybrid_custom_location" "site" {{
  name      = "site"
  namespace = "site"
  host_id   = "/management-host"
}}
"#
    );
    wd.apply(&base)?;
    let cluster = |pod_cidr: &str| {
        format!(
            r#"
resource "hybrid_cluster" "c1" {{
  name               = "c1"
  custom_location_id = hybrid_custom_location.site.id
  vnet_id            = hybrid_vnet.a.id
  network            = {{ pod_cidr = "{pod_cidr}" }}
}}
"#
        )
    };
    let out = wd.expect_plan_error(
        &format!("{base}{}", cluster("10.0.128.0/17")),
        &[
            "network.pod_cidr \"10.0.128.0/17\" overlaps address_prefix 10.0.0.0/16 of vnet lan-a",
            "must not overlap the vnet",
        ],
    )?;
    out.expect_contains(&["with hybrid_cluster.c1"])?;
    out.expect_snippet("network")?;
    let clusters = host.get("/v1/clusters")?;
    ensure!(
        clusters.body["items"] == json!([]),
        "a refused plan created a cluster: {}",
        clusters.body
    );

    // Renaming lan-a while keeping its prefix replaces it, overlap-free.
    let renamed = vnet_on("a", "lan-a2", "10.0.0.0/16", 42);
    wd.write_config(&format!("{renamed}{elsewhere}"))?;
    let plan = wd.plan_json()?;
    let actions = Workdir::planned_actions(&plan, "hybrid_vnet.a");
    ensure!(
        actions == ["delete", "create"],
        "renaming planned {actions:?}, want [delete, create]"
    );
    wd.apply(&format!("{renamed}{elsewhere}"))?;
    ensure!(
        get_vnet(&host, "lan-a2")?["address_prefix"] == "10.0.0.0/16",
        "the renamed vnet keeps its prefix"
    );
    wd.destroy()?;
    Ok(())
}
