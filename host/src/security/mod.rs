//! Who may talk to the service and what it keeps secret: the admin token
//! ([`tokens`]), TLS material ([`tls`]), secrets sealed at rest
//! ([`secrets`]) and the audit log of credential issuance ([`audit`]).
//!
//! May depend on: [`crate::clock`] only. The HTTP side of authentication
//! (the bearer-token middleware, the peer address) lives in `http/`.

pub mod audit;
pub mod secrets;
pub mod tls;
pub mod tokens;
