//! [`Tx`] over one SQLite connection inside a transaction (or a read
//! snapshot).

use hybrid_api::kubeconfig::AuditEntry;
use hybrid_api::{ApiError, Operation, OperationStatus, Reservation};
use rusqlite::{Connection, OptionalExtension, params};

use super::codec::{
    insert_operation, load_all_snapshots, load_operation, load_overlapping, load_snapshot, op_row,
    save_record,
};
use crate::clock;
use crate::security::secrets::{Sealer, secret_purpose};
use crate::store::decode::{
    OBJECT_COLUMNS, OP_COLUMNS, VM_COLUMNS, VmCols, corrupt, json, object, op_from_row,
    parse_address, to_i64, vm,
};
use crate::store::{ObjectKind, ObjectRow, StoreError, Tx, VmRow, VnetRecord, VnetSnapshot};

/// A [`Tx`] borrowing a connection that is inside a transaction, and the
/// sealer every secret passes through on its way in and out.
pub(super) struct SqlTx<'a>(pub &'a Connection, pub &'a Sealer);

fn object_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<[Option<String>; 11]> {
    let mut out: [Option<String>; 11] = Default::default();
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = r.get(i)?;
    }
    Ok(out)
}

fn vm_cols(r: &rusqlite::Row<'_>) -> rusqlite::Result<VmCols> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        (
            r.get(12)?,
            r.get(13)?,
            r.get(14)?,
            r.get(15)?,
            r.get(16)?,
            r.get(17)?,
        ),
    ))
}

impl Tx for SqlTx<'_> {
    fn object(&self, kind: ObjectKind, id: &str) -> Result<Option<ObjectRow>, StoreError> {
        let row = self
            .0
            .prepare_cached(&format!(
                "SELECT {OBJECT_COLUMNS} FROM objects WHERE kind = ?1 AND id = ?2"
            ))?
            .query_row(params![kind.as_str(), id], object_from_row)
            .optional()?;
        row.map(object).transpose()
    }

    fn objects(
        &self,
        kind: ObjectKind,
        parent: Option<&str>,
    ) -> Result<Vec<ObjectRow>, StoreError> {
        // Two statements, not `?2 IS NULL OR parent = ?2`: SQLite cannot
        // use the (kind, parent, id) index for that and would scan every
        // object of the kind (every pool of every cluster).
        let mut stmt = match parent {
            Some(_) => self.0.prepare_cached(&format!(
                "SELECT {OBJECT_COLUMNS} FROM objects WHERE kind = ?1 AND parent = ?2 ORDER BY id"
            ))?,
            None => self.0.prepare_cached(&format!(
                "SELECT {OBJECT_COLUMNS} FROM objects WHERE kind = ?1 AND ?2 IS NULL ORDER BY id"
            ))?,
        };
        let rows = stmt.query_map(params![kind.as_str(), parent], object_from_row)?;
        rows.map(|r| object(r?)).collect()
    }

    fn put_object(&mut self, r: &ObjectRow) -> Result<(), StoreError> {
        self.0.prepare_cached(&format!(
            "INSERT INTO objects ({OBJECT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (kind, id) DO UPDATE SET parent = excluded.parent, name = excluded.name,
                spec = excluded.spec, internal = excluded.internal, etag = excluded.etag,
                provisioning_state = excluded.provisioning_state,
                current_operation = excluded.current_operation, updated_at = excluded.updated_at"
        ))?
        .execute(params![
            r.kind.as_str(),
            r.id,
            r.parent,
            r.name,
            json(&r.spec)?,
            json(&r.internal)?,
            r.etag,
            r.provisioning_state.as_str(),
            r.current_operation,
            r.created_at,
            r.updated_at
        ])?;
        Ok(())
    }

    fn delete_object(&mut self, kind: ObjectKind, id: &str) -> Result<(), StoreError> {
        self.0.execute(
            "DELETE FROM objects WHERE kind = ?1 AND id = ?2",
            params![kind.as_str(), id],
        )?;
        Ok(())
    }

    fn vms(&self, cluster: Option<&str>) -> Result<Vec<VmRow>, StoreError> {
        // Not `?1 IS NULL OR cluster = ?1`: that defeats the vms_by_cluster
        // index and reads every VM for one cluster's.
        let mut stmt = match cluster {
            Some(_) => self.0.prepare_cached(&format!(
                "SELECT {VM_COLUMNS} FROM vms WHERE cluster = ?1 ORDER BY name"
            ))?,
            None => self.0.prepare_cached(&format!(
                "SELECT {VM_COLUMNS} FROM vms WHERE ?1 IS NULL ORDER BY name"
            ))?,
        };
        let rows = stmt.query_map(params![cluster], vm_cols)?;
        rows.map(|r| vm(r?)).collect()
    }

    fn put_vm(&mut self, v: &VmRow) -> Result<(), StoreError> {
        self.0.prepare_cached(&format!(
            "INSERT INTO vms ({VM_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
             ON CONFLICT (name) DO UPDATE SET host = excluded.host, ip = excluded.ip,
                image = excluded.image, kubernetes_version = excluded.kubernetes_version,
                phase = excluded.phase, updated_at = excluded.updated_at"
        ))?
        .execute(params![
            v.name,
            v.cluster,
            v.pool,
            v.role.as_str(),
            i64::from(v.index),
            v.host,
            v.vnet,
            v.ip,
            v.vm_size,
            i64::from(v.vcpus),
            to_i64(v.memory_mib),
            to_i64(v.disk_gib),
            v.os_type,
            v.image,
            v.kubernetes_version,
            v.phase.as_str(),
            v.created_at,
            v.updated_at
        ])?;
        Ok(())
    }

    fn delete_vm(&mut self, name: &str) -> Result<(), StoreError> {
        self.0.execute("DELETE FROM vms WHERE name = ?1", [name])?;
        Ok(())
    }

    fn vnet(&self, name: &str) -> Result<Option<VnetSnapshot>, StoreError> {
        load_snapshot(self.0, name)
    }

    fn vnets(&self) -> Result<Vec<VnetSnapshot>, StoreError> {
        load_all_snapshots(self.0)
    }

    fn put_vnet(&mut self, record: &VnetRecord) -> Result<(), StoreError> {
        save_record(self.0, record)
    }

    fn vnets_overlapping(
        &self,
        segment: u16,
        first: u32,
        last: u32,
    ) -> Result<Vec<VnetRecord>, StoreError> {
        load_overlapping(self.0, segment, first, last)
    }

    fn delete_vnet(&mut self, name: &str) -> Result<(), StoreError> {
        self.0
            .execute("DELETE FROM reservations WHERE vnet = ?1", [name])?;
        self.0
            .execute("DELETE FROM vnets WHERE name = ?1", [name])?;
        Ok(())
    }

    fn insert_reservation(&mut self, vnet: &str, r: &Reservation) -> Result<(), StoreError> {
        let address = parse_address(&r.address)?;
        self.0.execute(
            "INSERT INTO reservations (vnet, address, pool, owner, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![vnet, address, r.pool.as_str(), r.owner, r.created_at],
        )?;
        Ok(())
    }

    fn delete_reservation(&mut self, vnet: &str, address: &str) -> Result<bool, StoreError> {
        let address = parse_address(address)?;
        let n = self.0.execute(
            "DELETE FROM reservations WHERE vnet = ?1 AND address = ?2",
            params![vnet, address],
        )?;
        Ok(n > 0)
    }

    fn set_reservation_owner(
        &mut self,
        vnet: &str,
        address: &str,
        owner: &str,
    ) -> Result<(), StoreError> {
        let address = parse_address(address)?;
        self.0.execute(
            "UPDATE reservations SET owner = ?3 WHERE vnet = ?1 AND address = ?2",
            params![vnet, address, owner],
        )?;
        Ok(())
    }

    fn operation(&self, id: &str) -> Result<Option<Operation>, StoreError> {
        load_operation(self.0, id)
    }

    fn operations(&self, ids: &[String]) -> Result<Vec<Operation>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // The ids as one JSON array parameter: a statement of fixed text
        // (cached), still answered from the primary-key index.
        let mut stmt = self.0.prepare_cached(&format!(
            "SELECT {OP_COLUMNS} FROM operations WHERE id IN (SELECT value FROM json_each(?1))"
        ))?;
        let rows = stmt.query_map([json(&ids)?], op_row)?;
        rows.map(|r| op_from_row(r?)).collect()
    }

    fn recent_operations(&self, limit: usize) -> Result<Vec<Operation>, StoreError> {
        let mut stmt = self.0.prepare_cached(&format!(
            "SELECT {OP_COLUMNS} FROM operations ORDER BY seq DESC LIMIT ?1"
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map([limit], op_row)?;
        rows.map(|r| op_from_row(r?)).collect()
    }

    fn insert_operation(
        &mut self,
        op: &Operation,
        resource: &str,
        queue: &str,
    ) -> Result<(), StoreError> {
        insert_operation(self.0, op, resource, queue)
    }

    fn finish_operation(&mut self, id: &str, error: Option<&ApiError>) -> Result<(), StoreError> {
        let status = match error {
            None => OperationStatus::Succeeded,
            Some(_) => OperationStatus::Failed,
        };
        let error = error.map(json).transpose()?;
        self.0.execute(
            "UPDATE operations SET status = ?2, error = ?3, updated_at = ?4 WHERE id = ?1 AND status = 'Running'",
            params![id, status.as_str(), error, clock::now()],
        )?;
        Ok(())
    }

    fn secret(&self, owner: &str, name: &str) -> Result<Option<String>, StoreError> {
        let stored: Option<String> = self
            .0
            .query_row(
                "SELECT value FROM secrets WHERE owner = ?1 AND name = ?2",
                params![owner, name],
                |r| r.get(0),
            )
            .optional()?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let plain = self.1.open(&secret_purpose(owner, name), &stored)?;
        String::from_utf8(plain)
            .map(Some)
            .map_err(|_| StoreError::Corrupt(format!("secret {name} of {owner} is not UTF-8")))
    }

    fn put_secret(&mut self, owner: &str, name: &str, value: &str) -> Result<(), StoreError> {
        let sealed = self
            .1
            .seal(&secret_purpose(owner, name), value.as_bytes())?;
        self.0.execute(
            "INSERT INTO secrets (owner, name, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (owner, name) DO UPDATE SET value = excluded.value",
            params![owner, name, sealed],
        )?;
        Ok(())
    }

    fn delete_secrets(&mut self, owner: &str) -> Result<(), StoreError> {
        self.0
            .execute("DELETE FROM secrets WHERE owner = ?1", [owner])?;
        Ok(())
    }

    fn insert_audit(&mut self, e: &AuditEntry) -> Result<(), StoreError> {
        self.0
            .prepare_cached(
                "INSERT INTO audit (time, actor, action, target, details) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![e.time, e.actor, e.action, e.target, json(&e.details)?])?;
        Ok(())
    }

    fn audit(&self, target: Option<&str>, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        // One statement per case, so a target's entries come from the
        // audit_by_target index rather than a scan of the whole log.
        let mut stmt = match target {
            Some(_) => self.0.prepare_cached(
                "SELECT time, actor, action, target, details FROM audit
                 WHERE target = ?1 ORDER BY seq DESC LIMIT ?2",
            )?,
            None => self.0.prepare_cached(
                "SELECT time, actor, action, target, details FROM audit
                 WHERE ?1 IS NULL ORDER BY seq DESC LIMIT ?2",
            )?,
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![target, limit], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        rows.map(|row| {
            let (time, actor, action, target, details) = row?;
            Ok(AuditEntry {
                details: serde_json::from_str(&details).map_err(|e| corrupt("audit details", e))?,
                time,
                actor,
                action,
                target,
            })
        })
        .collect()
    }
}
