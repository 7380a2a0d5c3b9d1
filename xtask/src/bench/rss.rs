//! Peak RSS of a program while something else runs: a thread scans `/proc`
//! every few milliseconds for processes running that executable and keeps
//! the largest `VmHWM` (the kernel's high-water mark of the resident set)
//! read from `/proc/<pid>/status`. `VmHWM` only grows, so the last read
//! before a process exits is within one poll of its peak. Linux only; on
//! other systems nothing is found.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often `/proc` is scanned.
const POLL: Duration = Duration::from_millis(2);

/// A running watch; [`Watch::stop`] returns what it saw.
pub struct Watch {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<BTreeMap<u32, u64>>,
}

impl Watch {
    /// Starts watching processes whose executable is `exe`.
    pub fn start(exe: &Path) -> Watch {
        let exe = fs::canonicalize(exe).unwrap_or_else(|_| exe.to_path_buf());
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut peaks = BTreeMap::new();
            loop {
                let last = flag.load(Ordering::Relaxed);
                scan(&exe, &mut peaks);
                if last {
                    return peaks;
                }
                std::thread::sleep(POLL);
            }
        });
        Watch { stop, thread }
    }

    /// Stops watching; the peak `VmHWM` of each process seen, in KiB.
    pub fn stop(self) -> BTreeMap<u32, u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

fn scan(exe: &PathBuf, peaks: &mut BTreeMap<u32, u64>) {
    let Ok(dir) = fs::read_dir("/proc") else {
        return;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let proc = entry.path();
        match fs::read_link(proc.join("exe")) {
            Ok(target) if &target == exe => {}
            _ => continue,
        }
        if let Some(kib) = fs::read_to_string(proc.join("status"))
            .ok()
            .as_deref()
            .and_then(vm_hwm_kib)
        {
            let peak = peaks.entry(pid).or_insert(0);
            *peak = (*peak).max(kib);
        }
    }
}

/// The `VmHWM` line of a `/proc/<pid>/status`, in KiB.
pub fn vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_hwm() {
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmHWM:\t    4321 kB\nVmRSS:\t 4000 kB\n";
        assert_eq!(vm_hwm_kib(status), Some(4321));
        assert_eq!(vm_hwm_kib("Name:\tx\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sees_a_child_process() {
        let sleep = Path::new("/bin/sleep");
        if !sleep.exists() {
            return;
        }
        let watch = Watch::start(sleep);
        let mut child = std::process::Command::new(sleep)
            .arg("0.2")
            .spawn()
            .unwrap();
        child.wait().unwrap();
        let peaks = watch.stop();
        assert!(peaks.values().any(|&k| k > 0), "{peaks:?}");
    }
}
