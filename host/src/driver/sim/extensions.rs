//! Extensions in the simulated datacenter: what is installed on each target
//! (cluster or management host), with its type, version, namespace and
//! settings, and a SHA-256 of its protected settings (never the values).
//!
//! Like a VM boot, an install is a wall-clock deadline stored with the row
//! and settled when it has passed, so an install interrupted by a restart
//! of the service has finished when the resumed operation asks again.
//! Timings and faults come from the sim file's `[extensions]` table.

use std::collections::BTreeMap;

use aws_lc_rs::digest::{SHA256, digest};
use rusqlite::{OptionalExtension, Transaction, params};

use super::{SimDriver, ms, now_ms, sleep_ms};
use crate::driver::{DriverError, ExtensionChange, ExtensionRequest, InstalledExtension};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS extensions (
    target            TEXT NOT NULL,
    name              TEXT NOT NULL,
    extension_type    TEXT NOT NULL,
    -- the version asked for last, and the one that last installed
    version           TEXT NOT NULL,
    installed_version TEXT,
    namespace         TEXT NOT NULL,
    -- JSON object of the (non-secret) configuration settings
    settings          TEXT NOT NULL,
    -- SHA-256 hex of the protected settings; never the values
    protected_sha256  TEXT,
    -- installing | installed | failed
    state             TEXT NOT NULL,
    -- Unix ms at which an install in progress is over
    ready_at          INTEGER NOT NULL,
    PRIMARY KEY (target, name)
);
";

const INSTALLING: &str = "installing";
const INSTALLED: &str = "installed";
const FAILED: &str = "failed";

/// SHA-256 of the protected settings in a canonical form (sorted keys).
fn protected_hash(req: &ExtensionRequest) -> Option<String> {
    if req.protected.0.is_empty() {
        return None;
    }
    let canonical = serde_json::to_vec(&req.protected.0).unwrap_or_default();
    Some(hex::encode(digest(&SHA256, &canonical).as_ref()))
}

fn settings_json(settings: &BTreeMap<String, String>) -> String {
    serde_json::to_string(settings).unwrap_or_else(|_| "{}".to_string())
}

fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<(InstalledExtension, i64)> {
    let settings: String = r.get(6)?;
    Ok((
        InstalledExtension {
            target: r.get(0)?,
            name: r.get(1)?,
            extension_type: r.get(2)?,
            version: r.get(3)?,
            installed_version: r.get(4)?,
            namespace: r.get(5)?,
            settings: serde_json::from_str(&settings).unwrap_or_default(),
            protected_sha256: r.get(7)?,
            state: r.get(8)?,
        },
        r.get(9)?,
    ))
}

const COLUMNS: &str = "target, name, extension_type, version, installed_version, namespace, settings, protected_sha256, state, ready_at";

/// Whether the stored row already asks for what `req` asks for.
fn same_request(row: &InstalledExtension, req: &ExtensionRequest, hash: &Option<String>) -> bool {
    row.extension_type == req.extension_type
        && row.version == req.version
        && row.namespace == req.namespace
        && row.settings == req.settings
        && &row.protected_sha256 == hash
}

/// What to do after looking at the row.
enum Next {
    Done(ExtensionChange),
    /// Wait until this deadline, then settle.
    Wait(i64),
}

impl SimDriver {
    fn extension_row(
        &self,
        tx: &Transaction,
        target: &str,
        name: &str,
    ) -> Result<Option<(InstalledExtension, i64)>, DriverError> {
        tx.query_row(
            &format!("SELECT {COLUMNS} FROM extensions WHERE target = ?1 AND name = ?2"),
            params![target, name],
            read,
        )
        .optional()
        .map_err(|e| self.state_err(e))
    }

    pub(super) async fn sim_apply_extension(
        &self,
        req: &ExtensionRequest,
    ) -> Result<ExtensionChange, DriverError> {
        let hash = protected_hash(req);
        let timings = &self.inner.config.extensions;
        let next = self.with_tx(|tx| {
            let row = self.extension_row(tx, &req.target, &req.name)?;
            if let Some((row, ready_at)) = &row
                && same_request(row, req, &hash)
            {
                match row.state.as_str() {
                    INSTALLED => return Ok(Next::Done(ExtensionChange::Unchanged)),
                    INSTALLING => return Ok(Next::Wait(*ready_at)),
                    _ => {} // failed: try again
                }
            }
            let installed = row.as_ref().and_then(|(r, _)| r.installed_version.clone());
            let duration = if installed.is_some() {
                timings.upgrade_ms
            } else {
                timings.install_ms
            };
            let ready_at = now_ms().saturating_add(ms(duration));
            tx.execute(
                "INSERT INTO extensions (target, name, extension_type, version, installed_version, namespace, settings, protected_sha256, state, ready_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (target, name) DO UPDATE SET extension_type = excluded.extension_type,
                    version = excluded.version, namespace = excluded.namespace,
                    settings = excluded.settings, protected_sha256 = excluded.protected_sha256,
                    state = excluded.state, ready_at = excluded.ready_at",
                params![
                    req.target,
                    req.name,
                    req.extension_type,
                    req.version,
                    installed,
                    req.namespace,
                    settings_json(&req.settings),
                    hash,
                    INSTALLING,
                    ready_at
                ],
            )
            .map_err(|e| self.state_err(e))?;
            tracing::debug!(target_id = %req.target, extension = %req.name, r#type = %req.extension_type, version = %req.version, "sim: installing extension");
            Ok(Next::Wait(ready_at))
        })?;
        let deadline = match next {
            Next::Done(change) => return Ok(change),
            Next::Wait(t) => t,
        };
        let wait = deadline.saturating_sub(now_ms());
        if wait > 0 {
            sleep_ms(u64::try_from(wait).unwrap_or(0)).await;
        }
        // The outcome travels inside `Ok` so that a failed install is
        // committed as `failed` (an `Err` would roll the transaction back).
        self.with_tx(|tx| {
            let Some((row, _)) = self.extension_row(tx, &req.target, &req.name)? else {
                return Err(DriverError::State(format!(
                    "extension {} on {} was removed while it was being installed",
                    req.name, req.target
                )));
            };
            if !same_request(&row, req, &hash) {
                return Err(DriverError::State(format!(
                    "extension {} on {} was changed by another request while it was being installed",
                    req.name, req.target
                )));
            }
            if row.state == INSTALLED {
                return Ok(Ok(ExtensionChange::Unchanged));
            }
            if timings.install_fails(&req.name, &req.extension_type) {
                tx.execute(
                    "UPDATE extensions SET state = ?3 WHERE target = ?1 AND name = ?2",
                    params![req.target, req.name, FAILED],
                )
                .map_err(|e| self.state_err(e))?;
                tracing::warn!(target_id = %req.target, extension = %req.name, "simulated fault: extension install failed (extensions.fail_install)");
                return Ok(Err(DriverError::ExtensionInstallFault {
                    name: req.name.clone(),
                    extension_type: req.extension_type.clone(),
                    version: req.version.clone(),
                    target: req.target.clone(),
                }));
            }
            tx.execute(
                "UPDATE extensions SET state = ?3, installed_version = ?4 WHERE target = ?1 AND name = ?2",
                params![req.target, req.name, INSTALLED, req.version],
            )
            .map_err(|e| self.state_err(e))?;
            Ok(Ok(match row.installed_version {
                None => ExtensionChange::Installed,
                Some(from) if from != req.version => ExtensionChange::VersionChanged { from },
                Some(_) => ExtensionChange::Reconfigured,
            }))
        })?
    }

    pub(super) async fn sim_remove_extension(
        &self,
        target: &str,
        name: &str,
    ) -> Result<(), DriverError> {
        let row = self.with_tx(|tx| self.extension_row(tx, target, name))?;
        let Some((row, _)) = row else {
            return Ok(());
        };
        let config = &self.inner.config.extensions;
        // The extension stays until the removal is over (a restart meanwhile
        // leaves it, and the retried delete removes it).
        sleep_ms(config.delete_ms).await;
        if config.delete_sticks(name, &row.extension_type) {
            tracing::warn!(target_id = %target, extension = %name, "simulated fault: extension stuck on removal (extensions.stuck_delete)");
            return Err(DriverError::ExtensionStuck {
                name: name.to_string(),
                extension_type: row.extension_type,
                target: target.to_string(),
            });
        }
        self.with_tx(|tx| {
            tx.execute(
                "DELETE FROM extensions WHERE target = ?1 AND name = ?2",
                params![target, name],
            )
            .map_err(|e| self.state_err(e))
        })?;
        tracing::debug!(target_id = %target, extension = %name, "sim: extension removed");
        Ok(())
    }

    pub(super) async fn sim_remove_target_extensions(
        &self,
        target: &str,
    ) -> Result<(), DriverError> {
        self.with_tx(|tx| {
            tx.execute("DELETE FROM extensions WHERE target = ?1", [target])
                .map_err(|e| self.state_err(e))
        })?;
        Ok(())
    }

    pub(super) async fn sim_installed_extensions(
        &self,
        target: Option<&str>,
    ) -> Result<Vec<InstalledExtension>, DriverError> {
        self.with_tx(|tx| {
            let mut st = tx
                .prepare(&match target {
                    // Not `?1 IS NULL OR target = ?1`, which scans the table.
                    Some(_) => format!(
                        "SELECT {COLUMNS} FROM extensions WHERE target = ?1 ORDER BY target, name"
                    ),
                    None => format!(
                        "SELECT {COLUMNS} FROM extensions WHERE ?1 IS NULL ORDER BY target, name"
                    ),
                })
                .map_err(|e| self.state_err(e))?;
            st.query_map([target], read)
                .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
                .map(|rows| rows.into_iter().map(|(r, _)| r).collect())
                .map_err(|e| self.state_err(e))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::driver::sim::SimConfig;
    use crate::driver::{Driver, ProtectedSettings};

    fn req(name: &str, ty: &str, version: &str) -> ExtensionRequest {
        ExtensionRequest {
            target: "/clusters/c1".into(),
            name: name.into(),
            extension_type: ty.into(),
            version: version.into(),
            namespace: "flux-system".into(),
            settings: BTreeMap::from([("multiTenancy.enforce".into(), "true".into())]),
            protected: ProtectedSettings(BTreeMap::from([(
                "httpsPassword".into(),
                "s3cr3t-value".into(),
            )])),
        }
    }

    fn sim(toml: &str) -> SimDriver {
        SimDriver::new(SimConfig::parse(toml).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn install_upgrade_reconfigure_remove() {
        let d = sim("[extensions]\ninstall_ms = 0\nupgrade_ms = 0\ndelete_ms = 0\n");
        let r = req("flux", "flux", "1.13.3");
        assert_eq!(
            d.apply_extension(&r).await.unwrap(),
            ExtensionChange::Installed
        );
        assert_eq!(
            d.apply_extension(&r).await.unwrap(),
            ExtensionChange::Unchanged
        );
        let mut up = r.clone();
        up.version = "1.14.1".into();
        assert_eq!(
            d.apply_extension(&up).await.unwrap(),
            ExtensionChange::VersionChanged {
                from: "1.13.3".into()
            }
        );
        up.protected.0.insert("httpsUser".into(), "me".into());
        assert_eq!(
            d.apply_extension(&up).await.unwrap(),
            ExtensionChange::Reconfigured
        );
        let all = d.installed_extensions(None).await.unwrap();
        assert_eq!(all.len(), 1);
        let e = &all[0];
        assert_eq!(
            (
                e.version.as_str(),
                e.installed_version.as_deref(),
                e.state.as_str()
            ),
            ("1.14.1", Some("1.14.1"), "installed")
        );
        let hash = e.protected_sha256.clone().unwrap();
        assert_eq!(hash.len(), 64);
        assert!(!format!("{e:?}").contains("s3cr3t"));
        assert!(
            !format!("{up:?}").contains("s3cr3t"),
            "requests never print secrets"
        );
        d.remove_extension("/clusters/c1", "flux").await.unwrap();
        d.remove_extension("/clusters/c1", "flux").await.unwrap();
        assert!(
            d.installed_extensions(Some("/clusters/c1"))
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn faults_and_timings() {
        let d = sim(
            "[extensions]\ninstall_ms = 60\ndelete_ms = 0\nfail_install = [\"defender\"]\nstuck_delete = [\"pol1\"]\n",
        );
        let t = Instant::now();
        d.apply_extension(&req("f", "flux", "1.13.3"))
            .await
            .unwrap();
        assert!(t.elapsed() >= Duration::from_millis(55));
        let e = d
            .apply_extension(&req("def1", "defender", "0.8.2"))
            .await
            .unwrap_err();
        assert!(e.is_simulated_fault());
        assert_eq!(
            e.to_string(),
            "simulated fault: extension def1 (defender 0.8.2) failed to install on /clusters/c1 (extensions.fail_install)"
        );
        d.apply_extension(&req("pol1", "policy", "1.8.0"))
            .await
            .unwrap();
        let e = d
            .remove_extension("/clusters/c1", "pol1")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("stuck"), "{e}");
        let left: Vec<String> = d
            .installed_extensions(None)
            .await
            .unwrap()
            .into_iter()
            .map(|e| format!("{}:{}", e.name, e.state))
            .collect();
        assert_eq!(left, ["def1:failed", "f:installed", "pol1:installed"]);
        d.remove_target_extensions("/clusters/c1").await.unwrap();
        assert!(d.installed_extensions(None).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_install_interrupted_by_a_restart_completes() {
        let dir = tempfile::tempdir().unwrap();
        let slow = SimConfig::parse("[extensions]\ninstall_ms = 600\n").unwrap();
        let r = req("flux", "flux", "1.13.3");
        {
            let d = SimDriver::open(slow.clone(), dir.path()).unwrap();
            let _ = tokio::time::timeout(Duration::from_millis(200), d.apply_extension(&r)).await;
            let e = d.installed_extensions(None).await.unwrap();
            assert_eq!(e[0].state, "installing");
        }
        let d = SimDriver::open(slow, dir.path()).unwrap();
        let t = Instant::now();
        assert_eq!(
            d.apply_extension(&r).await.unwrap(),
            ExtensionChange::Installed
        );
        assert!(
            t.elapsed() < Duration::from_millis(560),
            "waits only for the rest"
        );
    }
}
