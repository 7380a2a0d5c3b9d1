//! [`Tx`] over one PostgreSQL transaction.
//!
//! The [`Tx`] trait is synchronous (admission decides inside it, between
//! reads and writes), so the store runs the transaction body on a blocking
//! thread and every call here waits on its query with [`Handle::block_on`].
//! Statements are prepared once per connection and cached.

use std::collections::HashMap;

use deadpool_postgres::Transaction;
use hybrid_api::kubeconfig::AuditEntry;
use hybrid_api::{ApiError, Operation, OperationStatus, Reservation};
use tokio::runtime::Handle;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::clock;
use crate::security::secrets::{Sealer, secret_purpose};
use crate::store::decode::{
    OBJECT_COLUMNS, OP_COLUMNS, VM_COLUMNS, VNET_COLUMNS, VNET_SPAN_COLUMNS, corrupt, json, object,
    op_from_row, overlapping_vnets_params, overlapping_vnets_sql, parse_address, record_from_row,
    reservation_from_row, snapshots, to_i64, vm, vnet_span,
};
use crate::store::{ObjectKind, ObjectRow, StoreError, Tx, VmRow, VnetRecord, VnetSnapshot};

/// Channel every replica listens on: new work and finished operations.
pub(super) const EVENTS_CHANNEL: &str = "hybrid_events";

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

/// A [`Tx`] over an open transaction, the runtime its queries run on, and
/// the sealer every secret passes through on its way in and out.
pub(super) struct PgTx<'a> {
    pub tx: &'a Transaction<'a>,
    pub rt: &'a Handle,
    pub sealer: &'a Sealer,
}

impl PgTx<'_> {
    pub(super) fn query(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, StoreError> {
        self.rt.block_on(async {
            let stmt = self.tx.prepare_cached(sql).await?;
            Ok(self.tx.query(&stmt, params).await?)
        })
    }

    fn query_opt(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    pub(super) fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
        self.rt.block_on(async {
            let stmt = self.tx.prepare_cached(sql).await?;
            Ok(self.tx.execute(&stmt, params).await?)
        })
    }

    fn notify(&self, payload: &str) -> Result<(), StoreError> {
        // Delivered to every listening replica when (if) this commits.
        self.execute("SELECT pg_notify($1, $2)", &[&EVENTS_CHANNEL, &payload])?;
        Ok(())
    }

    fn record(&self, name: &str) -> Result<Option<VnetRecord>, StoreError> {
        self.query_opt(
            &format!("SELECT {VNET_COLUMNS} FROM vnets WHERE name = $1"),
            &[&name],
        )?
        .map(|r| record_from_row(vnet_cols(&r)?))
        .transpose()
    }

    fn reservations(&self, vnet: &str) -> Result<Vec<Reservation>, StoreError> {
        self.query(
            "SELECT address, pool, owner, created_at FROM reservations WHERE vnet = $1 ORDER BY address",
            &[&vnet],
        )?
        .iter()
        .map(|r| reservation_from_row((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
        .collect()
    }
}

fn vnet_cols(r: &Row) -> Result<crate::store::decode::VnetRow, StoreError> {
    Ok((
        r.try_get(0)?,
        r.try_get(1)?,
        r.try_get(2)?,
        r.try_get(3)?,
        r.try_get(4)?,
        r.try_get(5)?,
        r.try_get(6)?,
        r.try_get(7)?,
    ))
}

/// An operation from the [`OP_COLUMNS`] starting at column `first`.
pub(super) fn op_cols(r: &Row, first: usize) -> Result<Operation, StoreError> {
    op_from_row((
        r.try_get(first)?,
        r.try_get(first + 1)?,
        r.try_get(first + 2)?,
        r.try_get(first + 3)?,
        r.try_get(first + 4)?,
        r.try_get(first + 5)?,
        r.try_get(first + 6)?,
        r.try_get(first + 7)?,
        r.try_get(first + 8)?,
    ))
}

fn object_cols(r: &Row) -> Result<ObjectRow, StoreError> {
    let mut cols: [Option<String>; 11] = Default::default();
    for (i, slot) in cols.iter_mut().enumerate() {
        *slot = r.try_get(i)?;
    }
    object(cols)
}

fn vm_cols(r: &Row) -> Result<VmRow, StoreError> {
    vm((
        r.try_get(0)?,
        r.try_get(1)?,
        r.try_get(2)?,
        r.try_get(3)?,
        r.try_get(4)?,
        r.try_get(5)?,
        r.try_get(6)?,
        r.try_get(7)?,
        r.try_get(8)?,
        r.try_get(9)?,
        r.try_get(10)?,
        r.try_get(11)?,
        (
            r.try_get(12)?,
            r.try_get(13)?,
            r.try_get(14)?,
            r.try_get(15)?,
            r.try_get(16)?,
            r.try_get(17)?,
        ),
    ))
}

impl Tx for PgTx<'_> {
    fn object(&self, kind: ObjectKind, id: &str) -> Result<Option<ObjectRow>, StoreError> {
        self.query_opt(
            &format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE kind = $1 AND id = $2"),
            &[&kind.as_str(), &id],
        )?
        .map(|r| object_cols(&r))
        .transpose()
    }

    fn objects(
        &self,
        kind: ObjectKind,
        parent: Option<&str>,
    ) -> Result<Vec<ObjectRow>, StoreError> {
        let rows = match parent {
            Some(p) => self.query(
                &format!(
                    "SELECT {OBJECT_COLUMNS} FROM objects WHERE kind = $1 AND parent = $2 ORDER BY id"
                ),
                &[&kind.as_str(), &p],
            )?,
            None => self.query(
                &format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE kind = $1 ORDER BY id"),
                &[&kind.as_str()],
            )?,
        };
        rows.iter().map(object_cols).collect()
    }

    fn put_object(&mut self, r: &ObjectRow) -> Result<(), StoreError> {
        self.execute(
            &format!(
                "INSERT INTO objects ({OBJECT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (kind, id) DO UPDATE SET parent = excluded.parent, name = excluded.name,
                    spec = excluded.spec, internal = excluded.internal, etag = excluded.etag,
                    provisioning_state = excluded.provisioning_state,
                    current_operation = excluded.current_operation, updated_at = excluded.updated_at"
            ),
            &[
                &r.kind.as_str(),
                &r.id,
                &r.parent,
                &r.name,
                &json(&r.spec)?,
                &json(&r.internal)?,
                &r.etag,
                &r.provisioning_state.as_str(),
                &r.current_operation,
                &r.created_at,
                &r.updated_at,
            ],
        )?;
        Ok(())
    }

    fn delete_object(&mut self, kind: ObjectKind, id: &str) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM objects WHERE kind = $1 AND id = $2",
            &[&kind.as_str(), &id],
        )?;
        Ok(())
    }

    fn vms(&self, cluster: Option<&str>) -> Result<Vec<VmRow>, StoreError> {
        let rows = match cluster {
            Some(c) => self.query(
                &format!("SELECT {VM_COLUMNS} FROM vms WHERE cluster = $1 ORDER BY name"),
                &[&c],
            )?,
            None => self.query(&format!("SELECT {VM_COLUMNS} FROM vms ORDER BY name"), &[])?,
        };
        rows.iter().map(vm_cols).collect()
    }

    fn put_vm(&mut self, v: &VmRow) -> Result<(), StoreError> {
        self.execute(
            &format!(
                "INSERT INTO vms ({VM_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
                 ON CONFLICT (name) DO UPDATE SET host = excluded.host, ip = excluded.ip,
                    image = excluded.image, kubernetes_version = excluded.kubernetes_version,
                    phase = excluded.phase, updated_at = excluded.updated_at"
            ),
            &[
                &v.name,
                &v.cluster,
                &v.pool,
                &v.role.as_str(),
                &i64::from(v.index),
                &v.host,
                &v.vnet,
                &v.ip,
                &v.vm_size,
                &i64::from(v.vcpus),
                &to_i64(v.memory_mib),
                &to_i64(v.disk_gib),
                &v.os_type,
                &v.image,
                &v.kubernetes_version,
                &v.phase.as_str(),
                &v.created_at,
                &v.updated_at,
            ],
        )?;
        Ok(())
    }

    fn delete_vm(&mut self, name: &str) -> Result<(), StoreError> {
        self.execute("DELETE FROM vms WHERE name = $1", &[&name])?;
        Ok(())
    }

    fn vnet(&self, name: &str) -> Result<Option<VnetSnapshot>, StoreError> {
        let Some(record) = self.record(name)? else {
            return Ok(None);
        };
        let reservations = self.reservations(name)?;
        let operation = match &record.current_operation {
            Some(id) => self.operation(id)?,
            None => None,
        };
        Ok(Some(VnetSnapshot {
            record,
            reservations,
            operation,
        }))
    }

    fn vnets(&self) -> Result<Vec<VnetSnapshot>, StoreError> {
        // Three queries in all, whatever the number of vnets.
        let records = self
            .query(
                &format!("SELECT {VNET_COLUMNS} FROM vnets ORDER BY name"),
                &[],
            )?
            .iter()
            .map(|r| record_from_row(vnet_cols(r)?))
            .collect::<Result<Vec<_>, _>>()?;
        let mut reservations: HashMap<String, Vec<Reservation>> = HashMap::new();
        for r in self.query(
            "SELECT vnet, address, pool, owner, created_at FROM reservations ORDER BY vnet, address",
            &[],
        )? {
            let vnet: String = r.try_get(0)?;
            let res =
                reservation_from_row((r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?))?;
            reservations.entry(vnet).or_default().push(res);
        }
        let ids: Vec<String> = records
            .iter()
            .filter_map(|r| r.current_operation.clone())
            .collect();
        let ops: HashMap<String, Operation> = self
            .operations(&ids)?
            .into_iter()
            .map(|op| (op.id.clone(), op))
            .collect();
        Ok(snapshots(records, reservations, ops))
    }

    fn put_vnet(&mut self, r: &VnetRecord) -> Result<(), StoreError> {
        let (segment, first, last) = vnet_span(&r.spec);
        self.execute(
            &format!(
                "INSERT INTO vnets ({VNET_COLUMNS}, {VNET_SPAN_COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, etag = excluded.etag,
                    provisioning_state = excluded.provisioning_state, conditions = excluded.conditions,
                    current_operation = excluded.current_operation, updated_at = excluded.updated_at,
                    segment = excluded.segment, prefix_first = excluded.prefix_first,
                    prefix_last = excluded.prefix_last"
            ),
            &[
                &r.name,
                &json(&r.spec)?,
                &r.etag,
                &r.provisioning_state.as_str(),
                &json(&r.conditions)?,
                &r.current_operation,
                &r.created_at,
                &r.updated_at,
                &segment,
                &first,
                &last,
            ],
        )?;
        Ok(())
    }

    fn vnets_overlapping(
        &self,
        segment: u16,
        first: u32,
        last: u32,
    ) -> Result<Vec<VnetRecord>, StoreError> {
        let values = overlapping_vnets_params(segment, first, last);
        let params: Vec<&(dyn ToSql + Sync)> =
            values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        self.query(&overlapping_vnets_sql('$'), &params)?
            .iter()
            .map(|r| record_from_row(vnet_cols(r)?))
            .collect()
    }

    fn delete_vnet(&mut self, name: &str) -> Result<(), StoreError> {
        self.execute("DELETE FROM reservations WHERE vnet = $1", &[&name])?;
        self.execute("DELETE FROM vnets WHERE name = $1", &[&name])?;
        Ok(())
    }

    fn insert_reservation(&mut self, vnet: &str, r: &Reservation) -> Result<(), StoreError> {
        let address = parse_address(&r.address)?;
        self.execute(
            "INSERT INTO reservations (vnet, address, pool, owner, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[&vnet, &address, &r.pool.as_str(), &r.owner, &r.created_at],
        )?;
        Ok(())
    }

    fn delete_reservation(&mut self, vnet: &str, address: &str) -> Result<bool, StoreError> {
        let address = parse_address(address)?;
        let n = self.execute(
            "DELETE FROM reservations WHERE vnet = $1 AND address = $2",
            &[&vnet, &address],
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
        self.execute(
            "UPDATE reservations SET owner = $3 WHERE vnet = $1 AND address = $2",
            &[&vnet, &address, &owner],
        )?;
        Ok(())
    }

    fn operation(&self, id: &str) -> Result<Option<Operation>, StoreError> {
        self.query_opt(
            &format!("SELECT {OP_COLUMNS} FROM operations WHERE id = $1"),
            &[&id],
        )?
        .map(|r| op_cols(&r, 0))
        .transpose()
    }

    fn operations(&self, ids: &[String]) -> Result<Vec<Operation>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One array parameter: a statement of fixed text, cached.
        self.query(
            &format!("SELECT {OP_COLUMNS} FROM operations WHERE id = ANY($1)"),
            &[&ids],
        )?
        .iter()
        .map(|r| op_cols(r, 0))
        .collect()
    }

    fn recent_operations(&self, limit: usize) -> Result<Vec<Operation>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.query(
            &format!("SELECT {OP_COLUMNS} FROM operations ORDER BY seq DESC LIMIT $1"),
            &[&limit],
        )?
        .iter()
        .map(|r| op_cols(r, 0))
        .collect()
    }

    fn insert_operation(
        &mut self,
        op: &Operation,
        resource: &str,
        queue: &str,
    ) -> Result<(), StoreError> {
        let error = op.error.as_ref().map(json).transpose()?;
        self.execute(
            "INSERT INTO operations (id, kind, target, resource, status, error, created_at, updated_at, queue, trace_id, reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &op.id,
                &op.kind,
                &op.target,
                &resource,
                &op.status.as_str(),
                &error,
                &op.created_at,
                &op.updated_at,
                &queue,
                &op.request_id,
                &op.reason,
            ],
        )?;
        self.notify("queued")
    }

    fn finish_operation(&mut self, id: &str, error: Option<&ApiError>) -> Result<(), StoreError> {
        let status = match error {
            None => OperationStatus::Succeeded,
            Some(_) => OperationStatus::Failed,
        };
        let error = error.map(json).transpose()?;
        let n = self.execute(
            "UPDATE operations SET status = $2, error = $3, updated_at = $4,
                lease_owner = NULL, lease_expires = NULL
             WHERE id = $1 AND status = 'Running'",
            &[&id, &status.as_str(), &error, &clock::now()],
        )?;
        if n > 0 {
            self.notify(&format!("finished:{id}"))?;
        }
        Ok(())
    }

    fn secret(&self, owner: &str, name: &str) -> Result<Option<String>, StoreError> {
        let Some(row) = self.query_opt(
            "SELECT value FROM secrets WHERE owner = $1 AND name = $2",
            &[&owner, &name],
        )?
        else {
            return Ok(None);
        };
        let stored: String = row.try_get(0)?;
        let plain = self.sealer.open(&secret_purpose(owner, name), &stored)?;
        String::from_utf8(plain)
            .map(Some)
            .map_err(|_| StoreError::Corrupt(format!("secret {name} of {owner} is not UTF-8")))
    }

    fn put_secret(&mut self, owner: &str, name: &str, value: &str) -> Result<(), StoreError> {
        let sealed = self
            .sealer
            .seal(&secret_purpose(owner, name), value.as_bytes())?;
        self.execute(
            "INSERT INTO secrets (owner, name, value) VALUES ($1, $2, $3)
             ON CONFLICT (owner, name) DO UPDATE SET value = excluded.value",
            &[&owner, &name, &sealed],
        )?;
        Ok(())
    }

    fn delete_secrets(&mut self, owner: &str) -> Result<(), StoreError> {
        self.execute("DELETE FROM secrets WHERE owner = $1", &[&owner])?;
        Ok(())
    }

    fn insert_audit(&mut self, e: &AuditEntry) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO audit (time, actor, action, target, details) VALUES ($1, $2, $3, $4, $5)",
            &[&e.time, &e.actor, &e.action, &e.target, &json(&e.details)?],
        )?;
        Ok(())
    }

    fn audit(&self, target: Option<&str>, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match target {
            Some(t) => self.query(
                "SELECT time, actor, action, target, details FROM audit
                 WHERE target = $1 ORDER BY seq DESC LIMIT $2",
                &[&t, &limit],
            )?,
            None => self.query(
                "SELECT time, actor, action, target, details FROM audit ORDER BY seq DESC LIMIT $1",
                &[&limit],
            )?,
        };
        rows.iter()
            .map(|r| {
                let details: String = r.try_get(4)?;
                Ok(AuditEntry {
                    time: r.try_get(0)?,
                    actor: r.try_get(1)?,
                    action: r.try_get(2)?,
                    target: r.try_get(3)?,
                    details: serde_json::from_str(&details)
                        .map_err(|e| corrupt("audit details", e))?,
                })
            })
            .collect()
    }
}
