//! Admission of custom location changes, decided and stored in one
//! transaction: name and spec rules, immutability, etags, references to
//! host extensions, and a delete refused while clusters are placed in it.

use hybrid_api::custom_location::{self, CustomLocationSpec};
use hybrid_api::{ApiError, CustomLocation, ProvisioningState, codes, validate};

use super::CustomLocationRecord;
use super::views::{clusters_in, custom_location};
use crate::clock;
use crate::extensions::admission::check_location_references;
use crate::objects::record::tx as rec;
use crate::objects::{Error, NoInternal, Preconditions, Reason, Refusal};
use crate::store::{ObjectKind, Tx};

fn not_found(name: &str) -> Refusal {
    Refusal::not_found(format!("custom location {name} not found"))
}

/// The rules a PUT body must follow on its own (before any transaction).
pub fn check(name: &str, spec: &CustomLocationSpec) -> Result<(), Refusal> {
    Refusal::check(
        validate::dns_label("name", name)
            .err()
            .into_iter()
            .collect(),
    )?;
    Refusal::check(custom_location::validate_spec(spec))
}

/// What a PUT did.
pub struct Written {
    /// True when the location did not exist before.
    pub created: bool,
    pub view: CustomLocation,
}

/// `PUT /v1/custom-locations/{name}`.
pub fn put(
    tx: &mut dyn Tx,
    name: &str,
    spec: CustomLocationSpec,
    pre: &Preconditions,
) -> Result<Written, Error> {
    let id = custom_location::custom_location_id(name);
    let current: Option<CustomLocationRecord> = rec::get(tx, &id)?;
    pre.check(
        &format!("custom location {name}"),
        current.as_ref().map(|c| c.etag.as_str()),
    )?;
    // Only host extensions that exist and succeeded may be referenced.
    check_location_references(tx, current.as_ref().map(|c| &c.spec), &spec)?;
    let now = clock::now();
    let (created, record) = match current {
        None => (
            true,
            CustomLocationRecord {
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
            },
        ),
        Some(mut cur) => {
            Refusal::check_conflicts(
                codes::FIELD_IMMUTABLE,
                custom_location::immutable_changes(&cur.spec, &spec),
            )?;
            if cur.spec != spec {
                cur.spec = spec;
                cur.etag = clock::new_etag();
                cur.updated_at = now;
            }
            (false, cur)
        }
    };
    rec::put(tx, &record)?;
    Ok(Written {
        created,
        view: custom_location(tx, &record)?,
    })
}

/// `DELETE /v1/custom-locations/{name}`: refused while clusters use it.
pub fn delete(tx: &mut dyn Tx, name: &str, pre: &Preconditions) -> Result<(), Error> {
    let id = custom_location::custom_location_id(name);
    let cur: CustomLocationRecord = rec::get(tx, &id)?.ok_or_else(|| not_found(name))?;
    pre.check(&format!("custom location {name}"), Some(&cur.etag))?;
    let users = clusters_in(tx, &id)?;
    if !users.is_empty() {
        return Err(Refusal {
            reason: Reason::Conflict,
            error: ApiError {
                code: codes::IN_USE.to_string(),
                message: format!(
                    "custom location {name} is in use by {}; delete those clusters first",
                    users.join(", ")
                ),
                target: None,
                request_id: None,
                details: users
                    .iter()
                    .map(|u| {
                        ApiError::new(
                            codes::IN_USE,
                            format!("{u} is placed in custom location {name}"),
                        )
                    })
                    .collect(),
            },
        }
        .into());
    }
    tx.delete_object(ObjectKind::CustomLocation, &id)?;
    Ok(())
}
