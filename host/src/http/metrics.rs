//! `GET /metrics`: the Prometheus exposition. The process's counters and
//! histograms (see [`crate::observability::metrics`]) plus gauges computed
//! here, at scrape time, from the store and the datacenter: queue depth,
//! IP pools, VMs and hosts. Computed rather than tracked, so they are true
//! after a restart and the same on every replica of a shared database.
//!
//! Consciously outside the OpenAPI document: it is OpenMetrics text for a
//! scraper, not part of the JSON API the provider uses.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use hybrid_api::{Operation, PhysicalHost, PoolKind};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{AppState, Failure};
use crate::driver::{VmInfo, VmState};
use crate::ipam;
use crate::observability::metrics::{self, FloatGauge};
use crate::store::{VmPhase, VmRow, VnetSnapshot};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    vnet: String,
    /// `vm` (the VM pool, or a DHCP vnet's scope) or `vip`.
    pool: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HostLabels {
    host: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HostResourceLabels {
    host: String,
    /// `capacity` or `allocated`.
    of: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: String,
}

const VM_PHASES: [VmPhase; 5] = [
    VmPhase::Pending,
    VmPhase::Running,
    VmPhase::Failed,
    VmPhase::Draining,
    VmPhase::Deleting,
];

const VM_STATES: [VmState; 3] = [VmState::Running, VmState::Stopped, VmState::Failed];

/// What one scrape reads.
struct Observed {
    vnets: Vec<VnetSnapshot>,
    vms: Vec<VmRow>,
    pending: Vec<Operation>,
    /// `None` when the datacenter did not answer (logged; its gauges are
    /// left out rather than reported as zero).
    hosts: Option<Vec<PhysicalHost>>,
    datacenter_vms: Option<Vec<VmInfo>>,
}

pub async fn get(State(state): State<AppState>) -> Result<Response, Failure> {
    let (vnets, vms) = state
        .store
        .view(|tx| -> Result<_, Failure> { Ok((tx.vnets()?, tx.vms(None)?)) })
        .await?;
    let pending = state
        .store
        .running_operation_queues()
        .await?
        .into_iter()
        .map(|(_, op)| op)
        .collect();
    let hosts = match state.driver.inventory().await {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the datacenter's inventory is unavailable");
            None
        }
    };
    let datacenter_vms = match state.driver.vms().await {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the datacenter's VM list is unavailable");
            None
        }
    };
    let observed = Observed {
        vnets,
        vms,
        pending,
        hosts,
        datacenter_vms,
    };
    let text = metrics::encode(|r| register(r, &observed, OffsetDateTime::now_utc()))
        .map_err(|_| Failure::internal())?;
    let mut resp = text.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    Ok(resp)
}

/// Registers this scrape's gauges.
fn register(r: &mut Registry, o: &Observed, now: OffsetDateTime) {
    let pending: Family<KindLabels, Gauge> = Family::default();
    let mut oldest: Option<OffsetDateTime> = None;
    for op in &o.pending {
        pending
            .get_or_create(&KindLabels {
                kind: op.kind.clone(),
            })
            .inc();
        if let Ok(t) = OffsetDateTime::parse(&op.created_at, &Rfc3339) {
            oldest = Some(oldest.map_or(t, |o| o.min(t)));
        }
    }
    let total: Gauge = Gauge::default();
    total.set(o.pending.len() as i64);
    let age = FloatGauge::default();
    age.set(oldest.map_or(0.0, |t| (now - t).as_seconds_f64().max(0.0)));
    r.register(
        "hybrid_operations_pending",
        "Operations accepted and not finished (queued or running, on any replica)",
        total,
    );
    r.register(
        "hybrid_operations_pending_by_kind",
        "Operations accepted and not finished, by kind",
        pending,
    );
    r.register(
        "hybrid_operations_oldest_pending_age_seconds",
        "Age of the oldest operation not finished (0 when none is)",
        age,
    );

    let size: Family<PoolLabels, Gauge> = Family::default();
    let used: Family<PoolLabels, Gauge> = Family::default();
    let free: Family<PoolLabels, Gauge> = Family::default();
    for v in &o.vnets {
        for kind in [PoolKind::Vm, PoolKind::Vip] {
            let Some(u) = ipam::usage(&v.record.spec, &v.reservations, kind) else {
                continue;
            };
            let labels = PoolLabels {
                vnet: v.record.name.clone(),
                pool: kind.as_str().to_string(),
            };
            size.get_or_create(&labels).set(gauge_value(u.size));
            used.get_or_create(&labels).set(gauge_value(u.used));
            free.get_or_create(&labels).set(gauge_value(u.available));
        }
    }
    r.register("hybrid_ip_pool_size", "Addresses in a vnet's pool", size);
    r.register(
        "hybrid_ip_pool_used",
        "Addresses of a vnet's pool that are reserved",
        used,
    );
    r.register(
        "hybrid_ip_pool_free",
        "Addresses of a vnet's pool that are free",
        free,
    );

    let phases: Family<PhaseLabels, Gauge> = Family::default();
    for phase in VM_PHASES {
        let n = o.vms.iter().filter(|vm| vm.phase == phase).count();
        phases
            .get_or_create(&PhaseLabels {
                phase: phase.as_str().to_string(),
            })
            .set(n as i64);
    }
    r.register(
        "hybrid_vms",
        "VMs the service placed, by phase (its record of them)",
        phases,
    );

    if let Some(vms) = &o.datacenter_vms {
        let states: Family<StateLabels, Gauge> = Family::default();
        for state in VM_STATES {
            let n = vms.iter().filter(|vm| vm.state == state).count();
            states
                .get_or_create(&StateLabels {
                    state: state.as_str().to_string(),
                })
                .set(n as i64);
        }
        r.register(
            "hybrid_datacenter_vms",
            "VMs as the datacenter reports them, by power state",
            states,
        );
    }

    if let Some(hosts) = &o.hosts {
        register_hosts(r, hosts);
    }
}

fn register_hosts(r: &mut Registry, hosts: &[PhysicalHost]) {
    let by_state: Family<StateLabels, Gauge> = Family::default();
    for state in ["Up", "Down"] {
        by_state
            .get_or_create(&StateLabels {
                state: state.to_string(),
            })
            .set(hosts.iter().filter(|h| h.state == state).count() as i64);
    }
    let up: Family<HostLabels, Gauge> = Family::default();
    let vcpus: Family<HostResourceLabels, Gauge> = Family::default();
    let memory: Family<HostResourceLabels, Gauge> = Family::default();
    let disk: Family<HostResourceLabels, Gauge> = Family::default();
    for h in hosts {
        up.get_or_create(&HostLabels {
            host: h.name.clone(),
        })
        .set(i64::from(h.state == "Up"));
        for (of, res) in [("capacity", &h.capacity), ("allocated", &h.allocated)] {
            let labels = HostResourceLabels {
                host: h.name.clone(),
                of: of.to_string(),
            };
            vcpus.get_or_create(&labels).set(i64::from(res.vcpus));
            memory
                .get_or_create(&labels)
                .set(gauge_value(res.memory_mib.saturating_mul(1 << 20)));
            disk.get_or_create(&labels)
                .set(gauge_value(res.disk_gib.saturating_mul(1 << 30)));
        }
    }
    r.register("hybrid_hosts", "Physical hosts, by state", by_state);
    r.register(
        "hybrid_host_up",
        "1 when the physical host is up, 0 when it is down",
        up,
    );
    r.register(
        "hybrid_host_vcpus",
        "A host's vCPUs: its capacity (after overcommit) and what its VMs take",
        vcpus,
    );
    r.register(
        "hybrid_host_memory_bytes",
        "A host's memory: its capacity and what its VMs take",
        memory,
    );
    r.register(
        "hybrid_host_disk_bytes",
        "A host's disk: its capacity and what its VMs take",
        disk,
    );
}

/// A count as a gauge value (counts past `i64::MAX` cannot occur; clamp).
fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hybrid_api::inventory::Resources;

    fn host(name: &str, state: &str) -> PhysicalHost {
        PhysicalHost {
            id: format!("/hosts/{name}"),
            name: name.to_string(),
            state: state.to_string(),
            capacity: Resources {
                vcpus: 32,
                memory_mib: 1024,
                disk_gib: 1,
            },
            allocated: Resources {
                vcpus: 4,
                memory_mib: 512,
                disk_gib: 0,
            },
            free: Resources {
                vcpus: 28,
                memory_mib: 512,
                disk_gib: 1,
            },
            vms: vec![],
        }
    }

    fn op(kind: &str, created_at: &str) -> Operation {
        serde_json::from_value(serde_json::json!({
            "id": "op-1", "kind": kind, "target": "/vnets/a", "status": "Running",
            "created_at": created_at, "updated_at": created_at
        }))
        .unwrap()
    }

    #[test]
    fn scrape_gauges_reflect_what_was_read() {
        let now = OffsetDateTime::parse("2025-01-01T00:01:00Z", &Rfc3339).unwrap();
        let o = Observed {
            vnets: vec![],
            vms: vec![],
            pending: vec![
                op("vnet.create", "2025-01-01T00:00:30Z"),
                op("cluster.create", "2025-01-01T00:00:00Z"),
            ],
            hosts: Some(vec![host("h1", "Up"), host("h2", "Down")]),
            datacenter_vms: None,
        };
        let text = metrics::encode(|r| register(r, &o, now)).unwrap();
        for line in [
            "hybrid_operations_pending 2",
            r#"hybrid_operations_pending_by_kind{kind="cluster.create"} 1"#,
            "hybrid_operations_oldest_pending_age_seconds 60.0",
            r#"hybrid_hosts{state="Down"} 1"#,
            r#"hybrid_host_up{host="h2"} 0"#,
            r#"hybrid_host_memory_bytes{host="h1",of="allocated"} 536870912"#,
            r#"hybrid_vms{phase="Running"} 0"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        // The datacenter did not answer: no made-up zeros.
        assert!(!text.contains("hybrid_datacenter_vms"), "{text}");
    }
}
