//! Request ids: the W3C Trace Context (`traceparent`) a request carries,
//! or one made up when it has none (or an invalid one), and how that id
//! reaches everything the request causes.
//!
//! The id is the trace id, 32 lowercase hex digits. It travels:
//! - in the request's `tracing` span (`request_id` field), so every log
//!   line the request causes carries it;
//! - in a task-local ([`scope`], [`current`]) for code that is not handed
//!   it, e.g. the error envelope;
//! - into store transactions: [`crate::store`] hands it to the thread that
//!   runs the transaction's body ([`on_thread`], [`current_on_thread`]), so
//!   an operation queued there is stored with it and its work, later and
//!   maybe on another replica, logs it too.

use std::cell::RefCell;
use std::future::Future;

use crate::clock;

/// The `traceparent` header's name.
pub const TRACEPARENT: &str = "traceparent";
/// A response header repeating the request id on its own.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// One request's place in a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lowercase hex digits, not all zero: the request id.
    pub trace_id: String,
    /// 16 hex digits: this service's span for the request.
    pub span_id: String,
    /// The caller's span (`parent-id`), when it sent one.
    pub parent_id: Option<String>,
    /// `trace-flags` (bit 0: sampled), kept as received.
    pub flags: u8,
}

impl TraceContext {
    /// The context of a request with this `traceparent` value (`None`: no
    /// header): the caller's trace continued, or a new trace when the
    /// header is absent or not valid W3C Trace Context.
    pub fn for_request(traceparent: Option<&str>) -> Self {
        match traceparent.and_then(parse) {
            Some((trace_id, parent_id, flags)) => TraceContext {
                trace_id,
                span_id: new_span_id(),
                parent_id: Some(parent_id),
                flags,
            },
            None => TraceContext {
                trace_id: new_trace_id(),
                span_id: new_span_id(),
                parent_id: None,
                flags: 0,
            },
        }
    }

    /// The `traceparent` naming this service's span, for the response.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{:02x}", self.trace_id, self.span_id, self.flags)
    }
}

/// A fresh trace id (never all zero: 16 random bytes are, with
/// probability 2^-128, and then the id is made again).
pub fn new_trace_id() -> String {
    loop {
        let id = clock::random_hex(16);
        if !all_zero(&id) {
            return id;
        }
    }
}

/// A fresh span id.
pub fn new_span_id() -> String {
    loop {
        let id = clock::random_hex(8);
        if !all_zero(&id) {
            return id;
        }
    }
}

fn all_zero(hex: &str) -> bool {
    hex.bytes().all(|b| b == b'0')
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `version-traceid-parentid-flags` as W3C Trace Context level 1 defines
/// it: version `00` exactly so; a later version may append fields after the
/// flags, which are ignored; version `ff`, uppercase hex and all-zero ids
/// are invalid. Returns the trace id, parent id and flags.
pub fn parse(header: &str) -> Option<(String, String, u8)> {
    let header = header.trim_matches([' ', '\t']);
    let mut parts = header.splitn(5, '-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let parent_id = parts.next()?;
    let flags = parts.next()?;
    let rest = parts.next();
    if !is_lower_hex(version, 2) || version == "ff" {
        return None;
    }
    if version == "00" && rest.is_some() {
        return None;
    }
    if !is_lower_hex(trace_id, 32) || all_zero(trace_id) {
        return None;
    }
    if !is_lower_hex(parent_id, 16) || all_zero(parent_id) {
        return None;
    }
    if !is_lower_hex(flags, 2) {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some((trace_id.to_string(), parent_id.to_string(), flags))
}

/// True for a well-formed request id (a trace id).
pub fn is_request_id(s: &str) -> bool {
    is_lower_hex(s, 32) && !all_zero(s)
}

tokio::task_local! {
    static CURRENT: String;
}

/// Runs `fut` with `request_id` as the task's current request id.
pub async fn scope<F: Future>(request_id: String, fut: F) -> F::Output {
    CURRENT.scope(request_id, fut).await
}

/// The request id of the task this runs in, if it has one.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

thread_local! {
    static ON_THREAD: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f` with `request_id` as this thread's request id (for code that
/// runs outside the task, e.g. a store transaction on a database thread),
/// restoring the one before afterwards.
pub fn on_thread<R>(request_id: Option<String>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<String>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            ON_THREAD.with(|c| *c.borrow_mut() = previous);
        }
    }
    let previous = ON_THREAD.with(|c| c.replace(request_id));
    let _restore = Restore(previous);
    f()
}

/// The request id [`on_thread`] set for this thread, else the task's.
pub fn current_on_thread() -> Option<String> {
    ON_THREAD.with(|c| c.borrow().clone()).or_else(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    #[test]
    fn a_valid_traceparent_is_continued_with_a_new_span() {
        let t = TraceContext::for_request(Some(&format!("00-{ID}-00f067aa0ba902b7-01")));
        assert_eq!(t.trace_id, ID);
        assert_eq!(t.parent_id.as_deref(), Some("00f067aa0ba902b7"));
        assert_ne!(t.span_id, "00f067aa0ba902b7");
        assert_eq!(t.flags, 1);
        assert_eq!(t.traceparent(), format!("00-{ID}-{}-01", t.span_id));
        // A later version's extra fields are ignored.
        assert!(parse(&format!("01-{ID}-00f067aa0ba902b7-00-what-ever")).is_some());
    }

    #[test]
    fn an_invalid_or_missing_traceparent_starts_a_new_trace() {
        for bad in [
            String::new(),
            "garbage".to_string(),
            format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32)),
            format!("00-{ID}-0000000000000000-01"),
            format!("00-{}-00f067aa0ba902b7-01", ID.to_uppercase()),
            format!("ff-{ID}-00f067aa0ba902b7-01"),
            format!("00-{ID}-00f067aa0ba902b7-01-extra"),
            format!("00-{ID}-00f067aa0ba902b7-1"),
            format!("00-{ID}x-00f067aa0ba902b7-01"),
        ] {
            assert_eq!(parse(&bad), None, "{bad}");
            let t = TraceContext::for_request(Some(&bad));
            assert_ne!(t.trace_id, ID, "{bad}");
            assert!(is_request_id(&t.trace_id), "{}", t.trace_id);
            assert_eq!(t.parent_id, None);
        }
        let a = TraceContext::for_request(None);
        let b = TraceContext::for_request(None);
        assert_ne!(a.trace_id, b.trace_id);
    }

    #[tokio::test]
    async fn the_id_reaches_the_task_and_a_thread_it_is_handed_to() {
        assert_eq!(current(), None);
        let seen = scope(ID.to_string(), async {
            let id = current();
            let on_thread = std::thread::spawn(move || on_thread(id, current_on_thread))
                .join()
                .unwrap();
            (current(), on_thread)
        })
        .await;
        assert_eq!(seen, (Some(ID.to_string()), Some(ID.to_string())));
        assert_eq!(current(), None);
        // Restored after the body.
        assert_eq!(
            on_thread(Some(ID.into()), current_on_thread).as_deref(),
            Some(ID)
        );
        assert_eq!(current_on_thread(), None);
    }
}
