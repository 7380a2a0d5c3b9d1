//! Console sign-in: one-time tickets and browser sessions.
//!
//! `hybrid-host console-link` mints a ticket (a random secret, valid a few
//! minutes, single use) and prints a link carrying it. Visiting the link
//! redeems the ticket for a session (another random secret, valid some
//! hours) that the browser keeps in an HttpOnly cookie. Both are stored in
//! the store by their SHA-256 only, so any replica can redeem or check
//! them and a copy of the database grants nothing. The cookie is an
//! identity for the console's read pages only: the API's routes look at
//! the bearer token and nothing else.

use std::sync::Arc;
use std::time::Duration;

use hybrid_api::{ProvisioningState, codes};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::clock;
use crate::objects::record::tx as rec;
use crate::objects::{Error, Kind, NoInternal, Reason, Record, Refusal};
use crate::security::tokens::hashed_id;
use crate::store::{ObjectKind, Store, Tx};

/// How long a sign-in link works unless `console-link --ttl-seconds` says.
pub const DEFAULT_TICKET_TTL: Duration = Duration::from_secs(300);
/// The longest a sign-in link may work: it is meant to be used at once.
pub const MAX_TICKET_TTL: Duration = Duration::from_secs(900);
/// How long a console session lasts unless `serve --console-session-seconds` says.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Tickets start with this, so a leaked one is recognisable.
const TICKET_PREFIX: &str = "hyc_";

/// A stored ticket or session: only when it stops working (the record's
/// id carries the secret's hash).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TicketSpec {
    pub expires_at: String,
}

impl Kind for TicketSpec {
    const KIND: ObjectKind = ObjectKind::ConsoleTicket;
}

/// A stored session (see [`TicketSpec`]).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SessionSpec {
    pub expires_at: String,
}

impl Kind for SessionSpec {
    const KIND: ObjectKind = ObjectKind::ConsoleSession;
}

/// A freshly minted ticket: the secret (shown once) and its expiry.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub ticket: String,
    pub expires_at: String,
}

/// A session a redeemed ticket opened: the cookie's secret and lifetime.
#[derive(Clone)]
pub struct Session {
    pub secret: String,
    pub expires_at: String,
    pub max_age: Duration,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret is a credential: never in a log line.
        f.debug_struct("Session")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

fn ticket_id(ticket: &str) -> String {
    hashed_id("/console-tickets", ticket)
}

fn session_id(secret: &str) -> String {
    hashed_id("/console-sessions", secret)
}

fn expiry(ttl: Duration) -> Result<String, Error> {
    (OffsetDateTime::now_utc() + ttl)
        .format(&Rfc3339)
        .map_err(|e| Error::Internal(e.to_string()))
}

/// True when `expires_at` has passed (or cannot be read: fail closed).
fn expired(expires_at: &str) -> bool {
    OffsetDateTime::parse(expires_at, &Rfc3339).map_or(true, |at| at <= OffsetDateTime::now_utc())
}

fn record<S>(id: String, name: &str, spec: S) -> Record<S, NoInternal> {
    let now = clock::now();
    Record {
        id,
        parent: None,
        name: name.to_string(),
        spec,
        internal: NoInternal {},
        etag: clock::new_etag(),
        provisioning_state: ProvisioningState::Succeeded,
        current_operation: None,
        created_at: now.clone(),
        updated_at: now,
    }
}

/// Removes the expired tickets and sessions, so the table holds only
/// credentials that still work (run with every mint and redeem).
fn purge_expired(tx: &mut dyn Tx) -> Result<(), Error> {
    for kind in [ObjectKind::ConsoleTicket, ObjectKind::ConsoleSession] {
        for row in tx.objects(kind, None)? {
            let at = row.spec.get("expires_at").and_then(|v| v.as_str());
            if at.is_none_or(expired) {
                tx.delete_object(kind, &row.id)?;
            }
        }
    }
    Ok(())
}

/// Mints a one-time sign-in ticket valid for `ttl`.
pub async fn mint_ticket(store: &Arc<dyn Store>, ttl: Duration) -> Result<Ticket, Error> {
    if ttl.is_zero() || ttl > MAX_TICKET_TTL {
        return Err(Refusal::invalid_field(
            "ttl_seconds",
            format!(
                "ttl_seconds {} is out of range: a sign-in link works 1 to {} seconds",
                ttl.as_secs(),
                MAX_TICKET_TTL.as_secs()
            ),
        )
        .into());
    }
    let ticket = format!("{TICKET_PREFIX}{}", clock::random_hex(24));
    let expires_at = expiry(ttl)?;
    let r = record(
        ticket_id(&ticket),
        "console-ticket",
        TicketSpec {
            expires_at: expires_at.clone(),
        },
    );
    store
        .write(false, move |tx| -> Result<_, Error> {
            purge_expired(tx)?;
            rec::put(tx, &r)?;
            Ok(())
        })
        .await?;
    Ok(Ticket { ticket, expires_at })
}

fn refused(message: impl Into<String>) -> Error {
    Refusal::new(Reason::Unauthenticated, codes::UNAUTHORIZED, message).into()
}

/// Redeems a ticket for a session lasting `session_ttl`. The ticket is
/// consumed whatever the outcome, so a second visit of the link fails.
pub async fn redeem(
    store: &Arc<dyn Store>,
    ticket: &str,
    session_ttl: Duration,
) -> Result<Session, Error> {
    if !ticket.starts_with(TICKET_PREFIX) {
        return Err(refused(
            "this is not a console sign-in link; run `hybrid-host console-link` for one",
        ));
    }
    let tid = ticket_id(ticket);
    let secret = clock::random_hex(32);
    let expires_at = expiry(session_ttl)?;
    let r = record(
        session_id(&secret),
        "console-session",
        SessionSpec {
            expires_at: expires_at.clone(),
        },
    );
    store
        .write(false, move |tx| -> Result<_, Error> {
            let found = rec::get::<TicketSpec, NoInternal>(tx, &tid)?;
            let Some(t) = found else {
                return Err(refused(
                    "this sign-in link is unknown or was already used; run `hybrid-host console-link` for a new one",
                ));
            };
            tx.delete_object(ObjectKind::ConsoleTicket, &tid)?;
            if expired(&t.spec.expires_at) {
                // Answered as `Ok(Err)` so the transaction commits the
                // ticket's removal; the refusal follows below.
                return Ok(Err(t.spec.expires_at));
            }
            purge_expired(tx)?;
            rec::put(tx, &r)?;
            Ok(Ok(()))
        })
        .await?
        .map_err(|at| {
            refused(format!(
                "this sign-in link expired at {at}; run `hybrid-host console-link` for a new one"
            ))
        })?;
    Ok(Session {
        secret,
        expires_at,
        max_age: session_ttl,
    })
}

/// True when `secret` is a live session's.
pub async fn check(store: &Arc<dyn Store>, secret: &str) -> Result<bool, Error> {
    if secret.is_empty() {
        return Ok(false);
    }
    let id = session_id(secret);
    store
        .view(move |tx| -> Result<_, Error> {
            Ok(rec::get::<SessionSpec, NoInternal>(tx, &id)?
                .is_some_and(|s| !expired(&s.spec.expires_at)))
        })
        .await
}

/// Ends the session `secret` (signing out); unknown secrets are ignored.
pub async fn end(store: &Arc<dyn Store>, secret: &str) -> Result<(), Error> {
    let id = session_id(secret);
    store
        .write(false, move |tx| -> Result<_, Error> {
            tx.delete_object(ObjectKind::ConsoleSession, &id)?;
            Ok(())
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_stored_by_hash_only() {
        let id = ticket_id("hyc_abc");
        assert!(id.starts_with("/console-tickets/"));
        assert!(!id.contains("abc"));
        assert_ne!(session_id("x"), session_id("y"));
    }

    #[test]
    fn an_unreadable_expiry_counts_as_expired() {
        assert!(expired("yesterday"));
        assert!(expired("2000-01-01T00:00:00Z"));
        assert!(!expired("2999-01-01T00:00:00Z"));
    }

    #[test]
    fn a_session_debug_hides_its_secret() {
        let s = Session {
            secret: "topsecret".into(),
            expires_at: "2999-01-01T00:00:00Z".into(),
            max_age: Duration::from_secs(1),
        };
        assert!(!format!("{s:?}").contains("topsecret"));
    }
}
