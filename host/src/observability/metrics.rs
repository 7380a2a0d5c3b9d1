//! The process's Prometheus instruments: counters and histograms that the
//! code records into as work happens (requests, operations, store
//! transactions), held in one process-wide [`Instruments`].
//!
//! These count what *this replica* did; Prometheus adds the replicas up.
//! What reflects stored state (queue depth, IP pools, VMs, hosts) is not
//! tracked here but computed at scrape time from the store and the
//! datacenter (see `http/metrics.rs`), so every replica of a shared
//! database reports the same, true values.

use std::sync::LazyLock;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The media type of [`encode`]'s output (OpenMetrics text, which
/// Prometheus scrapes natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of one answered request. `route` is the matched route template
/// (`/v1/vnets/{name}`), never the raw path, so object names do not
/// multiply the series; a path no route matches is `unmatched`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

/// Labels of one finished operation run.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// `vnet.create`, `cluster.update`, ….
    pub kind: String,
    /// `succeeded`, `failed`, or `retried` (the store failed while
    /// recording; the operation runs again).
    pub outcome: String,
}

/// Labels of one store transaction.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransactionLabels {
    /// `write` or `read`.
    pub mode: String,
    /// `ok`, or `error` for a failed or refused (rolled back) body.
    pub outcome: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Request latencies: 1 ms to about 33 s (long-polls of operations wait
/// up to their `wait`).
fn request_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Operation runs: 10 ms to about 45 min (a real cluster create boots VMs).
fn operation_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 19))
}

/// Store transactions: 0.1 ms to about 3 s.
fn transaction_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// Everything recorded as it happens. Cloning a family shares its series,
/// which is how [`encode`] registers them next to scrape-time gauges.
pub struct Instruments {
    pub requests: Family<RequestLabels, Counter>,
    pub request_duration: HistogramFamily<RequestLabels>,
    pub operations: Family<OperationLabels, Counter>,
    pub operation_duration: HistogramFamily<OperationLabels>,
    /// Operation tasks running on this replica now.
    pub operations_executing: Gauge,
    pub transaction_duration: HistogramFamily<TransactionLabels>,
}

static INSTRUMENTS: LazyLock<Instruments> = LazyLock::new(|| Instruments {
    requests: Family::default(),
    request_duration: Family::new_with_constructor(request_buckets),
    operations: Family::default(),
    operation_duration: Family::new_with_constructor(operation_buckets),
    operations_executing: Gauge::default(),
    transaction_duration: Family::new_with_constructor(transaction_buckets),
});

/// The process's instruments.
pub fn instruments() -> &'static Instruments {
    &INSTRUMENTS
}

/// Records one answered request.
pub fn request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let labels = RequestLabels {
        method: method.to_string(),
        route: route.to_string(),
        status,
    };
    let i = instruments();
    i.requests.get_or_create(&labels).inc();
    i.request_duration
        .get_or_create(&labels)
        .observe(elapsed.as_secs_f64());
}

/// Records one finished run of an operation.
pub fn operation(kind: &str, outcome: &str, elapsed: Duration) {
    let labels = OperationLabels {
        kind: kind.to_string(),
        outcome: outcome.to_string(),
    };
    let i = instruments();
    i.operations.get_or_create(&labels).inc();
    i.operation_duration
        .get_or_create(&labels)
        .observe(elapsed.as_secs_f64());
}

/// Records one store transaction.
pub fn transaction(mode: &'static str, ok: bool, elapsed: Duration) {
    let labels = TransactionLabels {
        mode: mode.to_string(),
        outcome: if ok { "ok" } else { "error" }.to_string(),
    };
    instruments()
        .transaction_duration
        .get_or_create(&labels)
        .observe(elapsed.as_secs_f64());
}

/// Counts a running operation task for as long as it lives (a task that is
/// aborted drops it too).
pub struct Executing(());

impl Executing {
    pub fn start() -> Self {
        instruments().operations_executing.inc();
        Executing(())
    }
}

impl Drop for Executing {
    fn drop(&mut self) {
        instruments().operations_executing.dec();
    }
}

/// A float gauge, for ages and other non-integer values.
pub type FloatGauge = Gauge<f64, AtomicU64>;

/// The exposition of the process's instruments plus whatever `scrape`
/// registers (the gauges computed for this scrape).
pub fn encode(scrape: impl FnOnce(&mut Registry)) -> Result<String, std::fmt::Error> {
    let i = instruments();
    let mut registry = Registry::default();
    registry.register(
        "hybrid_http_requests",
        "Requests answered, by method, matched route template and status",
        i.requests.clone(),
    );
    registry.register(
        "hybrid_http_request_duration_seconds",
        "Time to answer a request, by method, matched route template and status",
        i.request_duration.clone(),
    );
    registry.register(
        "hybrid_operations_finished",
        "Operation runs this replica finished, by kind and outcome",
        i.operations.clone(),
    );
    registry.register(
        "hybrid_operation_duration_seconds",
        "Time one run of an operation took on this replica, by kind and outcome",
        i.operation_duration.clone(),
    );
    registry.register(
        "hybrid_operations_executing",
        "Operations running on this replica now",
        i.operations_executing.clone(),
    );
    registry.register(
        "hybrid_store_transaction_duration_seconds",
        "Time of one store transaction, including the wait for the database, by mode and outcome",
        i.transaction_duration.clone(),
    );
    scrape(&mut registry);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_values_appear_in_the_exposition_under_their_labels() {
        request("GET", "/v1/vnets/{name}", 200, Duration::from_millis(3));
        operation("vnet.create", "succeeded", Duration::from_millis(20));
        transaction("write", true, Duration::from_micros(300));
        let text = encode(|r| {
            let g = FloatGauge::default();
            g.set(1.5);
            r.register("hybrid_test_gauge", "A gauge of this scrape", g);
        })
        .unwrap();
        assert!(
            text.contains(
                r#"hybrid_http_requests_total{method="GET",route="/v1/vnets/{name}",status="200"}"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"hybrid_operations_finished_total{kind="vnet.create",outcome="succeeded"}"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"hybrid_store_transaction_duration_seconds_count{mode="write",outcome="ok"}"#
            ),
            "{text}"
        );
        assert!(text.contains("hybrid_test_gauge 1.5"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
