//! A failed `terraform apply` can be followed into the service's log: the
//! provider sends a W3C `traceparent` with every call, and its diagnostic
//! ends with the request id, which the `hybrid-host` log lines of the
//! request and of the operation it queued carry.

use hybrid_acceptance_tests::{Host, Result, Workdir, ensure};

/// The request ids (32 hex digits after `request id:`) in Terraform's
/// output, whose diagnostics may be boxed (`│`) and wrapped.
fn request_ids(output: &str) -> Vec<String> {
    let flat = output
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    flat.match_indices("request id: ")
        .filter_map(|(at, m)| {
            let id: String = flat[at + m.len()..].chars().take(32).collect();
            (id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
                .then_some(id)
        })
        .collect()
}

#[test]
fn a_failed_apply_names_a_request_id_found_in_the_host_log() -> Result<()> {
    let host = Host::start_with_sim("[faults]\nfail_networks = [\"flaky\"]\n")?;
    let wd = Workdir::new(&host)?;
    let config = r#"
resource "hybrid_vnet" "test" {
  name           = "flaky"
  address_prefix = "10.0.0.0/24"
  vm_ip_pool     = { start = "10.0.0.10", end = "10.0.0.99" }
}
"#;
    let out = wd.apply_expect_error(config, &["flaky", "request id:"])?;
    let text = format!("{}\n{}", out.stdout, out.stderr);
    let ids = request_ids(&text);
    ensure!(
        !ids.is_empty(),
        "no request id in the apply's output:\n{text}"
    );
    let id = &ids[0];

    // The id is the request's that queued the failed operation: the log has
    // the request's line and the operation's lines under it.
    let log = host.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(id.as_str())).collect();
    ensure!(
        lines
            .iter()
            .any(|l| l.contains("request") && l.contains("/v1/vnets/flaky")),
        "no request line with {id} in the host log:\n{log}"
    );
    ensure!(
        lines.iter().any(|l| l.contains("running operation")),
        "no operation line with {id} in the host log:\n{log}"
    );
    ensure!(
        lines
            .iter()
            .any(|l| l.contains("operation failed") && l.contains("flaky")),
        "no failure line with {id} in the host log:\n{log}"
    );
    Ok(())
}

#[test]
fn request_ids_are_found_in_boxed_wrapped_output() {
    let out = "│ Error: x\n│\n│ simulated fault ... request\n│ id: 4bf92f3577b34da6a3ce929d0e0e4736 (the\n";
    assert_eq!(
        request_ids(out),
        vec!["4bf92f3577b34da6a3ce929d0e0e4736".to_string()]
    );
}
