//! The read-only web console served at `/`: sites, clusters, pools and
//! nodes; hosts and their VMs; vnets and their address pools; operations
//! and the audit trail.
//!
//! - [`snapshot`] reads what the pages show through the same views the
//!   API answers with (never over HTTP);
//! - [`pages`] renders it as server-side HTML, escaped, with no inline
//!   script or style;
//! - [`session`] holds the sign-in rules: one-time tickets from
//!   `hybrid-host console-link` become cookie sessions, both stored hashed;
//! - [`assets`] is the stylesheet and the small refresh script, compiled
//!   into the binary (no build step, nothing fetched at run time).
//!
//! The routes themselves (cookies, headers) live in `http/console.rs`.
//!
//! May depend on: every kind's views, [`crate::objects`], [`crate::store`],
//! [`crate::driver`] (the inventory) and [`crate::clock`].

pub mod pages;
pub mod session;
pub mod snapshot;

/// The stylesheet and script, served from `/console/static/`.
pub mod assets {
    pub const CONSOLE_JS: &str = include_str!("assets/console.js");
    pub const CONSOLE_CSS: &str = include_str!("assets/console.css");
}
