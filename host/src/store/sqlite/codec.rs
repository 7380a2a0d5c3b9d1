//! The SQLite queries that load and save vnets, reservations and
//! operations (decoding is [`crate::store::decode`]'s).

use std::collections::HashMap;

use hybrid_api::{Operation, Reservation};
use rusqlite::{Connection, OptionalExtension, params};

use crate::store::decode::{
    OP_COLUMNS, OpRow, ReservationRow, VNET_COLUMNS, VNET_SPAN_COLUMNS, VnetRow, json, op_from_row,
    overlapping_vnets_params, overlapping_vnets_sql, record_from_row, reservation_from_row,
    snapshots, vnet_span,
};
use crate::store::{StoreError, VnetRecord, VnetSnapshot};

fn vnet_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<VnetRow> {
    VnetRow::try_from(r)
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
    Ok(snapshots(records, reservations, ops))
}

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

pub(super) fn save_record(tx: &Connection, r: &VnetRecord) -> Result<(), StoreError> {
    let (segment, first, last) = vnet_span(&r.spec);
    tx.prepare_cached(&format!(
        "INSERT INTO vnets ({VNET_COLUMNS}, {VNET_SPAN_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, etag = excluded.etag,
            provisioning_state = excluded.provisioning_state, conditions = excluded.conditions,
            current_operation = excluded.current_operation, updated_at = excluded.updated_at,
            segment = excluded.segment, prefix_first = excluded.prefix_first,
            prefix_last = excluded.prefix_last"
    ))?
    .execute(params![
        r.name,
        json(&r.spec)?,
        r.etag,
        r.provisioning_state.as_str(),
        json(&r.conditions)?,
        r.current_operation,
        r.created_at,
        r.updated_at,
        segment,
        first,
        last
    ])?;
    Ok(())
}

/// See [`crate::store::Tx::vnets_overlapping`].
pub(super) fn load_overlapping(
    conn: &Connection,
    segment: u16,
    first: u32,
    last: u32,
) -> Result<Vec<VnetRecord>, StoreError> {
    let params = overlapping_vnets_params(segment, first, last);
    conn.prepare_cached(&overlapping_vnets_sql('?'))?
        .query_map(rusqlite::params_from_iter(params), vnet_row)?
        .map(|row| record_from_row(row?))
        .collect()
}

pub(super) fn insert_operation(
    tx: &Connection,
    op: &Operation,
    resource: &str,
    queue: &str,
) -> Result<(), StoreError> {
    let error = op.error.as_ref().map(json).transpose()?;
    tx.execute(
        "INSERT INTO operations (id, kind, target, resource, status, error, created_at, updated_at, queue, trace_id, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            op.id,
            op.kind,
            op.target,
            resource,
            op.status.as_str(),
            error,
            op.created_at,
            op.updated_at,
            queue,
            op.request_id,
            op.reason
        ],
    )?;
    Ok(())
}
