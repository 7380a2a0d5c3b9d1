//! Secrets at rest: every stored secret is sealed for its owner and name.

use rusqlite::{Connection, params};

use crate::security::secrets::{Sealer, secret_purpose};
use crate::store::StoreError;

/// Seals every secret still stored in plain text (data dirs from before
/// encryption at rest). Runs once per start, inside the migration lock.
pub(super) fn seal_plaintext_secrets(c: &Connection, sealer: &Sealer) -> Result<(), StoreError> {
    let mut stmt = c.prepare("SELECT owner, name, value FROM secrets")?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (owner, name, value) in rows.into_iter().filter(|(_, _, v)| !Sealer::is_sealed(v)) {
        let sealed = sealer.seal(&secret_purpose(&owner, &name), value.as_bytes())?;
        c.execute(
            "UPDATE secrets SET value = ?3 WHERE owner = ?1 AND name = ?2",
            params![owner, name, sealed],
        )?;
    }
    Ok(())
}
