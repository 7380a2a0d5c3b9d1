//! What this host can give VMs: measured vCPUs, memory and disk, minus the
//! reserve the operator keeps for the host itself.
//!
//! Measured on every `GET /v1/status` (hybrid-host's heartbeat), so a disk
//! filling up shows at the next poll: vCPUs from the CPUs this process may
//! run on (`available_parallelism`, which honours CPU affinity and cgroup
//! quotas; `/proc/cpuinfo` when that fails), memory from `/proc/meminfo`'s
//! `MemTotal`, disk from what `statvfs` says is available under the data
//! directory (where the VMs' overlays grow).

use std::path::{Path, PathBuf};

use hybrid_api::inventory::Resources;

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

/// Why a measurement failed.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error("cannot count CPUs: {0}")]
    Cpus(String),
    #[error("cannot read MemTotal from /proc/meminfo: {0}")]
    Memory(String),
    #[error("cannot statvfs {path}: {source}")]
    Disk {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// vCPUs this process may use.
pub fn vcpus() -> Result<u32, MeasureError> {
    if let Ok(n) = std::thread::available_parallelism() {
        return Ok(u32::try_from(n.get()).unwrap_or(u32::MAX));
    }
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo")
        .map_err(|e| MeasureError::Cpus(format!("/proc/cpuinfo: {e}")))?;
    let n = cpuinfo
        .lines()
        .filter(|l| l.split(':').next().is_some_and(|k| k.trim() == "processor"))
        .count();
    if n == 0 {
        return Err(MeasureError::Cpus("no processor in /proc/cpuinfo".into()));
    }
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// `MemTotal` (MiB) from the text of `/proc/meminfo`.
pub fn parse_mem_total_mib(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line["MemTotal:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    // The kernel always says kB (KiB).
    match words.next() {
        Some("kB") | None => Some(value / 1024),
        Some(_) => None,
    }
}

/// Total memory (MiB).
pub fn memory_mib() -> Result<u64, MeasureError> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")
        .map_err(|e| MeasureError::Memory(e.to_string()))?;
    parse_mem_total_mib(&meminfo).ok_or_else(|| MeasureError::Memory("no MemTotal line".into()))
}

/// Disk available (GiB, rounded down) on the file system holding `dir`.
pub fn disk_gib(dir: &Path) -> Result<u64, MeasureError> {
    let st = rustix::fs::statvfs(dir).map_err(|e| MeasureError::Disk {
        path: dir.to_path_buf(),
        source: e.into(),
    })?;
    // f_bavail: what an unprivileged writer gets, leaving root's reserve
    // for the host's own emergencies.
    Ok(st.f_bavail.saturating_mul(st.f_frsize) / GIB)
}

/// Measured resources of this host.
pub fn measure(data_dir: &Path) -> Result<Resources, MeasureError> {
    Ok(Resources {
        vcpus: vcpus()?,
        memory_mib: memory_mib()?,
        disk_gib: disk_gib(data_dir)?,
    })
}

/// `measured - reserve`, never below zero.
pub fn minus_reserve(measured: Resources, reserve: Resources) -> Resources {
    Resources {
        vcpus: measured.vcpus.saturating_sub(reserve.vcpus),
        memory_mib: measured.memory_mib.saturating_sub(reserve.memory_mib),
        disk_gib: measured.disk_gib.saturating_sub(reserve.disk_gib),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_is_parsed_in_mib() {
        let text = "MemTotal:       16323460 kB\nMemFree:         1000 kB\n";
        assert_eq!(parse_mem_total_mib(text), Some(15940));
        assert_eq!(parse_mem_total_mib("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn reserve_saturates() {
        let m = Resources {
            vcpus: 4,
            memory_mib: 8192,
            disk_gib: 100,
        };
        let r = Resources {
            vcpus: 8,
            memory_mib: 1024,
            disk_gib: 10,
        };
        assert_eq!(
            minus_reserve(m, r),
            Resources {
                vcpus: 0,
                memory_mib: 7168,
                disk_gib: 90
            }
        );
    }

    #[test]
    fn this_machine_measures() {
        let dir = tempfile::tempdir().unwrap();
        let r = measure(dir.path()).unwrap();
        assert!(r.vcpus > 0 && r.memory_mib > 0, "{r:?}");
    }
}
