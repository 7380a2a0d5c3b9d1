//! What an operator watches the service with: Prometheus instruments that
//! the request path, the operation worker and the store record into
//! ([`metrics`]), and the request ids that tie a request, the operations it
//! queued and their log lines together ([`trace`]).
//!
//! May depend on: nothing of the crate. It is a leaf every layer may
//! record into; the `/metrics` route (in `http/`) adds the gauges that are
//! read from the store and the datacenter at scrape time.

pub mod metrics;
pub mod trace;
