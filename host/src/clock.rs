//! Timestamps and identifiers.
//!
//! May depend on: nothing of the crate.

use rand::RngCore;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Now, RFC 3339 in UTC.
pub fn now() -> String {
    // Formatting only fails for years outside 0..=9999, which the clock cannot produce.
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A fresh entity tag.
pub fn new_etag() -> String {
    random_hex(8)
}

/// A fresh operation id.
pub fn new_operation_id() -> String {
    format!("op-{}", random_hex(12))
}

/// File in the data directory holding the test clock's offset: whole
/// seconds (may be negative) added to the system clock.
pub const TEST_CLOCK_FILE: &str = "test-clock";

/// The time the service's certificate work goes by. Normally the system
/// clock; with `serve --test-clock` (never on by default) the system clock
/// plus the offset in `DATA_DIR/test-clock`, so tests can move time on —
/// also across a restart — by writing that file.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// The offset file, for a test clock.
    offset_file: Option<std::sync::Arc<std::path::Path>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock { offset_file: None }
    }

    /// A test clock whose offset is read from `file` at every reading.
    pub fn test(file: impl Into<std::path::PathBuf>) -> Self {
        Clock {
            offset_file: Some(std::sync::Arc::from(file.into().into_boxed_path())),
        }
    }

    /// True for a test clock.
    pub fn is_test(&self) -> bool {
        self.offset_file.is_some()
    }

    /// The test clock's offset in seconds: 0 for the system clock, or when
    /// the file is missing or does not hold a whole number (logged, so a
    /// typo in a test shows).
    pub fn offset_seconds(&self) -> i64 {
        let Some(path) = &self.offset_file else {
            return 0;
        };
        match std::fs::read_to_string(path) {
            Ok(text) => text.trim().parse().unwrap_or_else(|_| {
                tracing::warn!(file = %path.display(), content = %text.trim(), "the test clock's offset is not a whole number of seconds; using 0");
                0
            }),
            Err(_) => 0,
        }
    }

    /// Now, in UTC, whole seconds (what a certificate can hold).
    pub fn now_utc(&self) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc() + time::Duration::seconds(self.offset_seconds());
        now.replace_nanosecond(0).unwrap_or(now)
    }
}

/// RFC 3339 of `t` (years 0..=9999 always format).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_clock_adds_the_offset_in_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(TEST_CLOCK_FILE);
        let clock = Clock::test(&file);
        assert!(clock.is_test());
        assert_eq!(clock.offset_seconds(), 0, "missing file: no offset");
        std::fs::write(&file, "86400\n").unwrap();
        let ahead = clock.now_utc() - OffsetDateTime::now_utc();
        assert!(
            (86_398..=86_400).contains(&ahead.whole_seconds()),
            "{ahead}"
        );
        std::fs::write(&file, "soon").unwrap();
        assert_eq!(clock.offset_seconds(), 0);
        assert_eq!(Clock::system().offset_seconds(), 0);
        assert!(!Clock::system().is_test());
    }
}
