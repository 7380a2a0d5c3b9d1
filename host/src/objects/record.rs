//! Typed stored objects: a kind's accepted spec plus what only the service
//! needs to remember about it ([`Record`]), stored as generic object rows.
//! Each kind names its spec type's [`ObjectKind`] through [`Kind`].

use hybrid_api::ProvisioningState;
use serde::{Deserialize, Serialize};

use crate::store::{ObjectKind, ObjectRow, StoreError};

/// For kinds with nothing internal to remember.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct NoInternal {}

/// A typed object row.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<S, I> {
    pub id: String,
    pub parent: Option<String>,
    pub name: String,
    pub spec: S,
    pub internal: I,
    pub etag: String,
    pub provisioning_state: ProvisioningState,
    pub current_operation: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// Which object kind a spec type is stored as.
pub trait Kind {
    const KIND: ObjectKind;
}

fn corrupt(what: &str, id: &str, e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("{what} of {id}: {e}"))
}

impl<S, I> Record<S, I>
where
    S: Kind + Serialize + for<'de> Deserialize<'de>,
    I: Serialize + for<'de> Deserialize<'de>,
{
    pub fn from_row(row: ObjectRow) -> Result<Self, StoreError> {
        Ok(Record {
            spec: serde_json::from_value(row.spec).map_err(|e| corrupt("spec", &row.id, e))?,
            internal: serde_json::from_value(row.internal)
                .map_err(|e| corrupt("internal state", &row.id, e))?,
            id: row.id,
            parent: row.parent,
            name: row.name,
            etag: row.etag,
            provisioning_state: row.provisioning_state,
            current_operation: row.current_operation,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    pub fn to_row(&self) -> Result<ObjectRow, StoreError> {
        Ok(ObjectRow {
            kind: S::KIND,
            spec: serde_json::to_value(&self.spec).map_err(|e| corrupt("spec", &self.id, e))?,
            internal: serde_json::to_value(&self.internal)
                .map_err(|e| corrupt("internal state", &self.id, e))?,
            id: self.id.clone(),
            parent: self.parent.clone(),
            name: self.name.clone(),
            etag: self.etag.clone(),
            provisioning_state: self.provisioning_state,
            current_operation: self.current_operation.clone(),
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
        })
    }
}

/// Typed reads and writes of records on a transaction.
pub mod tx {
    use super::*;
    use crate::store::Tx;

    pub fn get<S, I>(tx: &dyn Tx, id: &str) -> Result<Option<Record<S, I>>, StoreError>
    where
        S: Kind + Serialize + for<'de> Deserialize<'de>,
        I: Serialize + for<'de> Deserialize<'de>,
    {
        tx.object(S::KIND, id)?.map(Record::from_row).transpose()
    }

    pub fn list<S, I>(tx: &dyn Tx, parent: Option<&str>) -> Result<Vec<Record<S, I>>, StoreError>
    where
        S: Kind + Serialize + for<'de> Deserialize<'de>,
        I: Serialize + for<'de> Deserialize<'de>,
    {
        tx.objects(S::KIND, parent)?
            .into_iter()
            .map(Record::from_row)
            .collect()
    }

    pub fn put<S, I>(tx: &mut dyn Tx, r: &Record<S, I>) -> Result<(), StoreError>
    where
        S: Kind + Serialize + for<'de> Deserialize<'de>,
        I: Serialize + for<'de> Deserialize<'de>,
    {
        tx.put_object(&r.to_row()?)
    }
}
