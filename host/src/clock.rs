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
