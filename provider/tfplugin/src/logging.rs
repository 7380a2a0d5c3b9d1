//! `tracing` output in go-plugin/hclog JSON, one object per line on stderr.
//!
//! go-plugin hosts parse each stderr line of a plugin as an hclog JSON entry
//! (`@level`, `@message`, `@module`, `@timestamp`, plus extra key/values) and
//! re-log it at that level, so `TF_LOG=debug terraform plan` shows our
//! `tracing::debug!` events. The level comes from `TF_LOG_PROVIDER`, else
//! `TF_LOG`, read the way Terraform reads them.

use std::io::Write as _;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// `@module` of every entry.
pub const MODULE: &str = "provider";

/// Level from Terraform's variables: `TF_LOG_PROVIDER` wins over `TF_LOG`.
/// `off` disables; `json` and unknown non-empty values mean trace (as in
/// Terraform); unset/empty gives `default`.
pub fn level_from_env_values(
    tf_log_provider: Option<&str>,
    tf_log: Option<&str>,
    default: LevelFilter,
) -> LevelFilter {
    let chosen = [tf_log_provider, tf_log]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|v| !v.is_empty());
    match chosen.map(str::to_ascii_lowercase).as_deref() {
        None => default,
        Some("off") => LevelFilter::OFF,
        Some("error") => LevelFilter::ERROR,
        Some("warn") => LevelFilter::WARN,
        Some("info") => LevelFilter::INFO,
        Some("debug") => LevelFilter::DEBUG,
        Some(_) => LevelFilter::TRACE,
    }
}

/// Installs the hclog JSON subscriber with the level from the environment
/// (default `warn`: Terraform discards provider logs unless `TF_LOG` is set).
/// Does nothing if a global subscriber is already installed.
pub fn init_logging() {
    init_logging_with_default(LevelFilter::WARN);
}

/// [`init_logging`] with an explicit default level.
pub fn init_logging_with_default(default: LevelFilter) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let level = level_from_env_values(
        std::env::var("TF_LOG_PROVIDER").ok().as_deref(),
        std::env::var("TF_LOG").ok().as_deref(),
        default,
    );
    let _ = tracing_subscriber::registry()
        .with(HclogLayer::stderr().with_filter(filter(level)))
        .try_init();
}

/// Our level everywhere, but the transport crates at most `info`: their
/// debug/trace output is per-frame noise that would swamp `TF_LOG=trace`.
pub fn filter(level: LevelFilter) -> tracing_subscriber::filter::Targets {
    let noisy = level.min(LevelFilter::INFO);
    tracing_subscriber::filter::Targets::new()
        .with_default(level)
        .with_target("h2", noisy)
        .with_target("hyper", noisy)
        .with_target("hyper_util", noisy)
        .with_target("tower", noisy)
        .with_target("tonic", noisy)
        .with_target("rustls", noisy)
}

type MakeWriter = Box<dyn Fn() -> Box<dyn std::io::Write + Send> + Send + Sync>;

/// A layer writing each event as one hclog JSON line.
pub struct HclogLayer {
    make_writer: MakeWriter,
}

impl HclogLayer {
    /// Writes to stderr (never stdout: that carries the handshake).
    pub fn stderr() -> Self {
        Self::with_writer(|| Box::new(std::io::stderr()))
    }

    /// Writes to whatever `make_writer` returns (tests capture output).
    pub fn with_writer<W>(make_writer: W) -> Self
    where
        W: Fn() -> Box<dyn std::io::Write + Send> + Send + Sync + 'static,
    {
        Self {
            make_writer: Box::new(make_writer),
        }
    }
}

/// Fields recorded on a span, kept in its extensions.
struct SpanFields(Map<String, Value>);

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_string()));
    }
}

fn hclog_level(level: &tracing::Level) -> &'static str {
    match *level {
        tracing::Level::TRACE => "trace",
        tracing::Level::DEBUG => "debug",
        tracing::Level::INFO => "info",
        tracing::Level::WARN => "warn",
        tracing::Level::ERROR => "error",
    }
}

/// hclog's JSON timestamp: RFC 3339 with microseconds, UTC.
fn timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.microsecond()
    )
}

impl<S> Layer<S> for HclogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut fields = Map::new();
        attrs.record(&mut JsonVisitor(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(SpanFields(fields)) = ext.get_mut::<SpanFields>() {
                values.record(&mut JsonVisitor(fields));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut entry = Map::new();
        // Span fields first (outermost to innermost), so event fields win.
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>() {
                    entry.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        event.record(&mut JsonVisitor(&mut entry));
        let message = match entry.remove("message") {
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let meta = event.metadata();
        entry.insert("@level".into(), hclog_level(meta.level()).into());
        entry.insert("@message".into(), message.into());
        entry.insert("@module".into(), MODULE.into());
        entry.insert("@timestamp".into(), timestamp().into());
        entry.insert("target".into(), meta.target().into());
        let mut line = Value::Object(entry).to_string();
        line.push('\n');
        // One write per line so concurrent events do not interleave.
        let mut w = (self.make_writer)();
        let _ = w.write_all(line.as_bytes());
        let _ = w.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt as _;

    #[test]
    fn level_selection_follows_terraform() {
        let d = LevelFilter::WARN;
        assert_eq!(level_from_env_values(None, None, d), d);
        assert_eq!(level_from_env_values(None, Some(""), d), d);
        assert_eq!(
            level_from_env_values(None, Some("DEBUG"), d),
            LevelFilter::DEBUG
        );
        assert_eq!(
            level_from_env_values(Some("error"), Some("trace"), d),
            LevelFilter::ERROR
        );
        assert_eq!(
            level_from_env_values(None, Some("json"), d),
            LevelFilter::TRACE
        );
        assert_eq!(
            level_from_env_values(None, Some("off"), d),
            LevelFilter::OFF
        );
    }

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn events_become_hclog_json_lines() {
        let buf = Buf::default();
        let w = buf.clone();
        let layer = HclogLayer::with_writer(move || Box::new(w.clone()));
        let sub =
            tracing_subscriber::registry().with(layer.with_filter(filter(LevelFilter::DEBUG)));
        tracing::subscriber::with_default(sub, || {
            let span = tracing::info_span!("rpc", rpc = "PlanResourceChange");
            let _g = span.enter();
            tracing::debug!(type_name = "hybrid_vnet", count = 3, "planning");
            tracing::trace!("filtered out");
            tracing::warn!("careful");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert_eq!(lines[0]["@level"], "debug");
        assert_eq!(lines[0]["@message"], "planning");
        assert_eq!(lines[0]["@module"], "provider");
        assert_eq!(lines[0]["type_name"], "hybrid_vnet");
        assert_eq!(lines[0]["count"], 3);
        assert_eq!(lines[0]["rpc"], "PlanResourceChange");
        let ts = lines[0]["@timestamp"].as_str().unwrap();
        assert!(
            time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).is_ok(),
            "{ts}"
        );
        assert_eq!(lines[1]["@level"], "warn");
    }
}
