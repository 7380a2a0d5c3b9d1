//! Admission of extension changes, inside one store transaction: the
//! target exists, the type is in the catalogue and fits the target, the
//! settings keys and values follow the type's schema, immutable fields stay,
//! and a PUT of what is already there starts nothing. Also the custom
//! location rules that involve host extensions (references must be to
//! extensions that exist and succeeded; a referenced extension cannot be
//! deleted).

use std::collections::BTreeMap;

use hybrid_api::extension::{
    self, DEFAULT_RELEASE_TRAIN, ExtensionScope, ExtensionSpec, ExtensionType,
};
use hybrid_api::{
    ApiError, CustomLocationSpec, MANAGEMENT_HOST_ID, OperationStatus, ProvisioningState, codes,
    operation_kinds,
};

use super::{ExtensionInternal, ExtensionRecord, PROTECTED_SECRET, Target, describe};
use crate::clock;
use crate::clusters::{ClusterInternal, ClusterRecord};
use crate::extension_types as catalog;
use crate::objects::record::tx as rec;
use crate::objects::{Error, NoInternal, Outcome, Preconditions, Reason, Refusal, new_operation};
use crate::store::{ObjectKind, StoreError, Tx};

fn reject(f: Refusal) -> Error {
    Error::Refused(f)
}

fn conflict(target: &str, message: String) -> Error {
    reject(Refusal::new(Reason::Conflict, codes::CONFLICT, message).target(target))
}

fn invalid(errors: Vec<hybrid_api::validate::FieldError>) -> Result<(), Error> {
    Ok(Refusal::check(errors)?)
}

/// The cluster an extension goes on: it must exist and not be going away.
fn check_target(tx: &dyn Tx, target: &Target) -> Result<(), Error> {
    let Target::Cluster(name) = target else {
        return Ok(()); // the management host always exists
    };
    let id = target.id();
    let c: Option<ClusterRecord> = rec::get(tx, &id)?;
    match c {
        None => Err(reject(
            Refusal::not_found(format!(
                "target_id {id:?}: cluster {name} not found; create it first"
            ))
            .target("target_id"),
        )),
        Some(c) if c.provisioning_state == ProvisioningState::Deleting => Err(conflict(
            "target_id",
            format!(
                "target_id {id:?}: cluster {name} is being deleted; no extensions can be added or changed"
            ),
        )),
        Some(_) => Ok(()),
    }
}

/// The catalogue entry of `name`, or an error listing the types.
pub fn find_type<'a>(types: &'a [ExtensionType], name: &str) -> Result<&'a ExtensionType, Refusal> {
    types.iter().find(|t| t.name == name).ok_or_else(|| {
        Refusal::new(
            Reason::Invalid,
            codes::INVALID_FIELD,
            format!(
                "extension_type {name:?} is not in the catalogue; types: {}",
                types
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .target("extension_type")
    })
}

/// Resolves the scope: cluster scope in the type's default namespace when
/// absent (or when the cluster scope names no namespace).
fn resolve_scope(scope: Option<ExtensionScope>, ty: &ExtensionType) -> ExtensionScope {
    match scope {
        None
        | Some(ExtensionScope::Cluster {
            release_namespace: None,
        }) => ExtensionScope::Cluster {
            release_namespace: Some(ty.default_namespace.clone()),
        },
        Some(s) => s,
    }
}

/// The namespace an extension's resources go to.
pub fn namespace_of(spec: &ExtensionSpec, ty: &ExtensionType) -> String {
    match resolve_scope(spec.scope.clone(), ty) {
        ExtensionScope::Cluster { release_namespace } => {
            release_namespace.unwrap_or_else(|| ty.default_namespace.clone())
        }
        ExtensionScope::Namespace { target_namespace } => target_namespace,
    }
}

/// The stored protected settings of extension `id`.
pub fn stored_protected(
    tx: &dyn Tx,
    id: &str,
) -> Result<Option<BTreeMap<String, String>>, StoreError> {
    tx.secret(id, PROTECTED_SECRET)?
        .map(|json| {
            // Never put the text in the error: it is the secret.
            serde_json::from_str(&json).map_err(|_| {
                StoreError::Corrupt(format!("protected settings of {id} are not a JSON object"))
            })
        })
        .transpose()
}

/// `PUT /v1/{target}/extensions/{name}` (PATCH merges first, then comes here).
pub fn put_extension(
    tx: &mut dyn Tx,
    types: &[ExtensionType],
    target: &Target,
    name: &str,
    mut spec: ExtensionSpec,
    pre: &Preconditions,
) -> Result<Outcome, Error> {
    let target_id = target.id();
    let id = extension::extension_id(&target_id, name);
    let what = describe(target, name);
    check_target(tx, target)?;
    let current: Option<ExtensionRecord> = rec::get(tx, &id)?;
    pre.check(&what, current.as_ref().map(|c| c.etag.as_str()))
        .map_err(reject)?;
    if current
        .as_ref()
        .is_some_and(|c| c.provisioning_state == ProvisioningState::Deleting)
    {
        return Err(conflict(
            "name",
            format!("{what} is being deleted; wait for the delete to finish, then create it again"),
        ));
    }
    // A type change is refused as such, before the settings are judged
    // against a type the extension can never have.
    if let Some(cur) = &current
        && cur.spec.extension_type != spec.extension_type
    {
        return Err(reject(
            Refusal::from_fields(
                Reason::Conflict,
                codes::FIELD_IMMUTABLE,
                extension::immutable_changes(&cur.spec, &spec),
            )
            .unwrap_or_else(|| {
                Refusal::conflict(codes::FIELD_IMMUTABLE, "extension_type cannot change")
            }),
        ));
    }
    let ty = find_type(types, &spec.extension_type).map_err(reject)?;
    // Keys and values, protected ones included, before they are taken out.
    invalid(extension::check_against_type(&spec, target.kind(), ty))?;
    invalid(catalog::check_values_of(&spec, ty))?;

    let protected = spec.configuration_protected_settings.take();
    spec.scope = Some(resolve_scope(
        spec.scope
            .or_else(|| current.as_ref().and_then(|c| c.spec.scope.clone())),
        ty,
    ));
    spec.release_train = Some(
        spec.release_train
            .unwrap_or_else(|| DEFAULT_RELEASE_TRAIN.to_string()),
    );
    spec.auto_upgrade_minor_version = Some(
        spec.auto_upgrade_minor_version
            .unwrap_or(spec.version.is_none()),
    );

    if let Some(cur) = &current
        && let Some(f) = Refusal::from_fields(
            Reason::Conflict,
            codes::FIELD_IMMUTABLE,
            extension::immutable_changes(&cur.spec, &spec),
        )
    {
        return Err(Error::Refused(f));
    }

    let stored = match &current {
        Some(_) => stored_protected(tx, &id)?,
        None => None,
    };
    let (protected, protected_changed) = match protected {
        None => (stored, false),
        Some(m) if m.is_empty() => (None, stored.is_some()),
        Some(m) => {
            let changed = stored.as_ref() != Some(&m);
            (Some(m), changed)
        }
    };

    if let Some(cur) = &current
        && cur.spec == spec
        && !protected_changed
    {
        let desired = catalog::desired_version(ty, &spec, cur.internal.current_version.as_deref());
        let settled = cur.provisioning_state == ProvisioningState::Pending
            || desired == cur.internal.current_version;
        if let Some(op) = cur
            .current_operation
            .as_deref()
            .map(|o| tx.operation(o))
            .transpose()?
            .flatten()
            && op.status == OperationStatus::Running
        {
            return Ok(Outcome::InFlight {
                operation: op,
                etag: cur.etag.clone(),
            });
        }
        if settled
            && matches!(
                cur.provisioning_state,
                ProvisioningState::Succeeded | ProvisioningState::Pending
            )
        {
            return Ok(Outcome::Unchanged { id, view: None });
        }
        // Failed: the same request again means "retry"; Succeeded on an
        // older version than its train offers: upgrade.
    }

    if protected_changed {
        match &protected {
            Some(m) => {
                let json = serde_json::to_string(m).map_err(|_| {
                    StoreError::Corrupt(format!("cannot encode the protected settings of {id}"))
                })?;
                tx.put_secret(&id, PROTECTED_SECRET, &json)?;
            }
            None => tx.delete_secrets(&id)?,
        }
    }

    let now = clock::now();
    let (kind, mut record) = match current {
        Some(cur) => (operation_kinds::EXTENSION_UPDATE, cur),
        None => (
            operation_kinds::EXTENSION_CREATE,
            ExtensionRecord {
                id: id.clone(),
                parent: Some(target_id),
                name: name.to_string(),
                spec: spec.clone(),
                internal: ExtensionInternal::default(),
                etag: String::new(),
                provisioning_state: ProvisioningState::Accepted,
                current_operation: None,
                created_at: now.clone(),
                updated_at: now.clone(),
            },
        ),
    };
    let op = new_operation(kind, &id);
    if record.etag.is_empty() || record.spec != spec || protected_changed {
        record.etag = clock::new_etag();
    }
    if kind == operation_kinds::EXTENSION_UPDATE {
        record.provisioning_state = ProvisioningState::Updating;
    }
    record.spec = spec;
    record.internal.has_protected_settings = protected.is_some();
    record.current_operation = Some(op.id.clone());
    record.updated_at = now;
    rec::put(tx, &record)?;
    tx.insert_operation(&op, &id, &target.queue(name))?;
    Ok(Outcome::Started {
        operation: op,
        etag: record.etag,
    })
}

/// Custom locations whose `cluster_extension_ids` hold `extension_id`.
pub fn locations_using(tx: &dyn Tx, extension_id: &str) -> Result<Vec<String>, StoreError> {
    Ok(rec::list::<CustomLocationSpec, NoInternal>(tx, None)?
        .into_iter()
        .filter(|l| {
            l.spec
                .cluster_extension_ids
                .iter()
                .any(|e| e == extension_id)
        })
        .map(|l| l.id)
        .collect())
}

fn refuse_if_referenced(tx: &dyn Tx, target: &Target, name: &str) -> Result<(), Error> {
    if *target != Target::ManagementHost {
        return Ok(());
    }
    let id = extension::extension_id(MANAGEMENT_HOST_ID, name);
    let users = locations_using(tx, &id)?;
    if users.is_empty() {
        return Ok(());
    }
    Err(reject(Refusal {
        reason: Reason::Conflict,
        error: ApiError {
            code: codes::IN_USE.to_string(),
            message: format!(
                "extension {name} of the management host is in use by custom locations {}; remove {id} from their cluster_extension_ids first",
                users.join(", ")
            ),
            target: None,
            request_id: None,
            details: users
                .iter()
                .map(|u| {
                    ApiError::new(
                        codes::IN_USE,
                        format!("{u} lists {id} in cluster_extension_ids"),
                    )
                })
                .collect(),
        },
    }))
}

fn load(tx: &dyn Tx, target: &Target, name: &str) -> Result<ExtensionRecord, Error> {
    let id = extension::extension_id(&target.id(), name);
    rec::get(tx, &id)?.ok_or_else(|| {
        reject(Refusal::not_found(format!(
            "{} not found",
            describe(target, name)
        )))
    })
}

/// `DELETE /v1/{target}/extensions/{name}`: queues the removal. Always
/// retryable: a failed delete leaves the extension `Failed`, and deleting
/// again starts a new removal.
pub fn delete_extension(
    tx: &mut dyn Tx,
    target: &Target,
    name: &str,
    pre: &Preconditions,
) -> Result<Outcome, Error> {
    let mut record = load(tx, target, name)?;
    pre.check(&describe(target, name), Some(&record.etag))
        .map_err(reject)?;
    refuse_if_referenced(tx, target, name)?;
    if let Some(op) = record
        .current_operation
        .as_deref()
        .map(|o| tx.operation(o))
        .transpose()?
        .flatten()
        && op.status == OperationStatus::Running
        && op.kind == operation_kinds::EXTENSION_DELETE
    {
        return Ok(Outcome::InFlight {
            operation: op,
            etag: record.etag,
        });
    }
    let op = new_operation(operation_kinds::EXTENSION_DELETE, &record.id);
    record.provisioning_state = ProvisioningState::Deleting;
    record.current_operation = Some(op.id.clone());
    record.updated_at = clock::now();
    rec::put(tx, &record)?;
    tx.insert_operation(&op, &record.id, &target.queue(name))?;
    Ok(Outcome::Started {
        operation: op,
        etag: record.etag,
    })
}

/// `DELETE …?force=true`: forgets the extension and its protected settings
/// at once, whatever the datacenter says; an operation still queued or
/// running for it is ended as failed so it does nothing more.
pub fn force_delete(
    tx: &mut dyn Tx,
    target: &Target,
    name: &str,
    pre: &Preconditions,
) -> Result<(), Error> {
    let record = load(tx, target, name)?;
    pre.check(&describe(target, name), Some(&record.etag))
        .map_err(reject)?;
    refuse_if_referenced(tx, target, name)?;
    // Only the extension's own operation: under a cluster delete, the
    // current operation is the cluster's, which must run on.
    if let Some(op) = record.current_operation.as_deref()
        && tx.operation(op)?.is_some_and(|o| o.target == record.id)
    {
        let error = ApiError::new(
            codes::EXTENSION_FAILED,
            format!(
                "{} was deleted with force=true before this operation finished",
                describe(target, name)
            ),
        );
        tx.finish_operation(op, Some(&error))?;
    }
    tx.delete_secrets(&record.id)?;
    tx.delete_object(ObjectKind::Extension, &record.id)?;
    Ok(())
}

/// Custom locations may reference only host extensions that exist and
/// succeeded. Only references that are new (not in `old`) are checked, so
/// an unrelated change to a location is not refused while one of its
/// extensions is being upgraded.
pub fn check_location_references(
    tx: &dyn Tx,
    old: Option<&CustomLocationSpec>,
    new: &CustomLocationSpec,
) -> Result<(), Error> {
    let mut errors = Vec::new();
    for (i, id) in new.cluster_extension_ids.iter().enumerate() {
        if old.is_some_and(|o| o.cluster_extension_ids.contains(id)) {
            continue;
        }
        let field = format!("cluster_extension_ids[{i}]");
        let problem = match extension::parse_extension_id(id) {
            None => Some(format!(
                "{field} {id:?} is not an extension id; expected \"/management-host/extensions/{{name}}\""
            )),
            Some((t, _)) if t != MANAGEMENT_HOST_ID => Some(format!(
                "{field} {id:?} is an extension of {t}; a custom location can only reference extensions on the management host (\"/management-host/extensions/{{name}}\")"
            )),
            Some(_) => match rec::get::<ExtensionSpec, ExtensionInternal>(tx, id)? {
                None => Some(format!(
                    "{field} {id:?} does not exist; install it on the management host first (target_id = \"/management-host\"), then reference it"
                )),
                Some(e) if e.provisioning_state != ProvisioningState::Succeeded => Some(format!(
                    "{field} {id:?} has provisioning_state {}; a custom location can only reference an extension whose provisioning_state is Succeeded",
                    e.provisioning_state.as_str()
                )),
                Some(_) => None,
            },
        };
        if let Some(message) = problem {
            errors.push(hybrid_api::validate::FieldError::new(field, message));
        }
    }
    invalid(errors)
}

/// Whether the cluster has a Linux node running (what extensions that
/// need Linux nodes wait for).
pub fn has_linux_nodes(tx: &dyn Tx, cluster: &str) -> Result<bool, StoreError> {
    let cid = hybrid_api::cluster_id(cluster);
    if rec::get::<hybrid_api::ClusterSpec, ClusterInternal>(tx, &cid)?.is_none() {
        return Ok(false);
    }
    Ok(tx.vms(Some(cluster))?.iter().any(|v| {
        v.role == crate::store::VmRole::Node
            && v.os_type == hybrid_api::OsType::Linux.as_str()
            && v.phase == crate::store::VmPhase::Running
    }))
}
