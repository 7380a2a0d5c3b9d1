//! The Hybrid host management service.
