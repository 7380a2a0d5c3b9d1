//! Rows to types and back: vnets, reservations and operations, and the
//! queries that load them.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use hybrid_api::{
    ApiError, Condition, Operation, OperationStatus, PoolKind, ProvisioningState, Reservation,
    VnetSpec,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::store::{StoreError, VnetRecord, VnetSnapshot};

pub(super) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

const VNET_COLUMNS: &str =
    "name, spec, etag, provisioning_state, conditions, current_operation, created_at, updated_at";

type VnetRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
);

fn vnet_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<VnetRow> {
    VnetRow::try_from(r)
}

fn record_from_row(row: VnetRow) -> Result<VnetRecord, StoreError> {
    let (name, spec, etag, state, conditions, current_operation, created_at, updated_at) = row;
    let spec: VnetSpec = serde_json::from_str(&spec).map_err(|e| corrupt("vnet spec", e))?;
    let conditions: Vec<Condition> =
        serde_json::from_str(&conditions).map_err(|e| corrupt("vnet conditions", e))?;
    let provisioning_state =
        ProvisioningState::parse(&state).ok_or_else(|| corrupt("provisioning state", &state))?;
    Ok(VnetRecord {
        name,
        spec,
        etag,
        provisioning_state,
        conditions,
        current_operation,
        created_at,
        updated_at,
    })
}

pub(super) fn load_record(conn: &Connection, name: &str) -> Result<Option<VnetRecord>, StoreError> {
    let row = conn
        .prepare_cached(&format!("SELECT {VNET_COLUMNS} FROM vnets WHERE name = ?1"))?
        .query_row([name], vnet_row)
        .optional()?;
    row.map(record_from_row).transpose()
}

/// Every vnet with its reservations and current operation: three queries
/// in all, whatever the number of vnets.
pub(super) fn load_all_snapshots(conn: &Connection) -> Result<Vec<VnetSnapshot>, StoreError> {
    let records = conn
        .prepare_cached(&format!("SELECT {VNET_COLUMNS} FROM vnets ORDER BY name"))?
        .query_map([], vnet_row)?
        .map(|r| record_from_row(r?))
        .collect::<Result<Vec<_>, _>>()?;
    let mut reservations: HashMap<String, Vec<Reservation>> = HashMap::new();
    let mut stmt = conn.prepare_cached(
        "SELECT vnet, address, pool, owner, created_at FROM reservations ORDER BY vnet, address",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, reservation_row(r, 1)?)))?;
    for row in rows {
        let (vnet, row) = row?;
        reservations
            .entry(vnet)
            .or_default()
            .push(reservation_from_row(row)?);
    }
    let ids: Vec<String> = records
        .iter()
        .filter_map(|r| r.current_operation.clone())
        .collect();
    let mut ops: HashMap<String, Operation> = HashMap::new();
    if !ids.is_empty() {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {OP_COLUMNS} FROM operations WHERE id IN (SELECT value FROM json_each(?1))"
        ))?;
        for row in stmt.query_map([json(&ids)?], op_row)? {
            let op = op_from_row(row?)?;
            ops.insert(op.id.clone(), op);
        }
    }
    Ok(records
        .into_iter()
        .map(|record| VnetSnapshot {
            reservations: reservations.remove(&record.name).unwrap_or_default(),
            operation: record
                .current_operation
                .as_ref()
                .and_then(|id| ops.remove(id)),
            record,
        })
        .collect())
}

type ReservationRow = (i64, String, String, String);

/// Reads a reservation's address, pool, owner and created_at from columns
/// `first`..`first + 3`.
fn reservation_row(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<ReservationRow> {
    Ok((
        r.get(first)?,
        r.get(first + 1)?,
        r.get(first + 2)?,
        r.get(first + 3)?,
    ))
}

fn reservation_from_row(row: ReservationRow) -> Result<Reservation, StoreError> {
    let (address, pool, owner, created_at) = row;
    let address = u32::try_from(address).map_err(|e| corrupt("reserved address", e))?;
    Ok(Reservation {
        address: Ipv4Addr::from(address).to_string(),
        pool: PoolKind::parse(&pool).ok_or_else(|| corrupt("reservation pool", &pool))?,
        owner,
        created_at,
    })
}

pub(super) fn load_reservations(
    conn: &Connection,
    vnet: &str,
) -> Result<Vec<Reservation>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT address, pool, owner, created_at FROM reservations WHERE vnet = ?1 ORDER BY address",
    )?;
    let rows = stmt.query_map([vnet], |r| reservation_row(r, 0))?;
    rows.map(|r| reservation_from_row(r?)).collect()
}

pub(super) type OpRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
);

pub(super) fn op_from_row(row: OpRow) -> Result<Operation, StoreError> {
    let (id, kind, target, status, error, created_at, updated_at) = row;
    let error: Option<ApiError> = match error {
        Some(e) => Some(serde_json::from_str(&e).map_err(|e| corrupt("operation error", e))?),
        None => None,
    };
    Ok(Operation {
        id,
        kind,
        target,
        status: OperationStatus::parse(&status)
            .ok_or_else(|| corrupt("operation status", &status))?,
        error,
        created_at,
        updated_at,
    })
}

pub(super) const OP_COLUMNS: &str = "id, kind, target, status, error, created_at, updated_at";

pub(super) fn op_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OpRow> {
    OpRow::try_from(r)
}

pub(super) fn load_operation(conn: &Connection, id: &str) -> Result<Option<Operation>, StoreError> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {OP_COLUMNS} FROM operations WHERE id = ?1"
        ))?
        .query_row([id], op_row)
        .optional()?;
    row.map(op_from_row).transpose()
}

pub(super) fn load_snapshot(
    conn: &Connection,
    name: &str,
) -> Result<Option<VnetSnapshot>, StoreError> {
    let Some(record) = load_record(conn, name)? else {
        return Ok(None);
    };
    let reservations = load_reservations(conn, name)?;
    let operation = match &record.current_operation {
        Some(id) => load_operation(conn, id)?,
        None => None,
    };
    Ok(Some(VnetSnapshot {
        record,
        reservations,
        operation,
    }))
}

pub(super) fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| corrupt("serialising", e))
}

pub(super) fn save_record(tx: &Connection, r: &VnetRecord) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO vnets (name, spec, etag, provisioning_state, conditions, current_operation, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, etag = excluded.etag,
            provisioning_state = excluded.provisioning_state, conditions = excluded.conditions,
            current_operation = excluded.current_operation, updated_at = excluded.updated_at",
        params![
            r.name,
            json(&r.spec)?,
            r.etag,
            r.provisioning_state.as_str(),
            json(&r.conditions)?,
            r.current_operation,
            r.created_at,
            r.updated_at
        ],
    )?;
    Ok(())
}

pub(super) fn insert_operation(
    tx: &Connection,
    op: &Operation,
    resource: &str,
    queue: &str,
) -> Result<(), StoreError> {
    let error = op.error.as_ref().map(json).transpose()?;
    tx.execute(
        "INSERT INTO operations (id, kind, target, resource, status, error, created_at, updated_at, queue)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            op.id,
            op.kind,
            op.target,
            resource,
            op.status.as_str(),
            error,
            op.created_at,
            op.updated_at,
            queue
        ],
    )?;
    Ok(())
}
