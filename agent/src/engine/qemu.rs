//! Talking to QEMU: the accelerator probe, the command line a VM runs with,
//! the QMP client used for lifecycle, and the /proc checks that tell
//! whether a pid is still that VM's QEMU.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::process::Command;

use super::Accelerator;
use super::image::Image;

/// A tiny multiboot guest for the KVM probe (206 bytes, loaded at 1 MiB by
/// QEMU's `-kernel`). It does what a Linux boot does first — builds page
/// tables, enters long mode, and copies 8 MiB backwards with `std; rep
/// movsq` (the kernel's decompressor moves itself exactly so) — then writes
/// 1 to the `isa-debug-exit` port, which makes QEMU exit with status 3.
///
/// Why this much: under nested virtualization `/dev/kvm` can open, create
/// VMs and vCPUs and run simple real- and long-mode code, yet take seconds
/// per MiB for that copy (seen on the CI machine: 6 s for 8 MiB, and a
/// Linux kernel that never gets past its decompressor). A working KVM does
/// it in milliseconds, TCG in about 0.1 s; so the probe must finish within
/// [`PROBE_DEADLINE`] to count.
///
/// Source (GNU as, `gcc -m32 -c`; `ld -m elf_i386 -Ttext=0x100000
/// --oformat binary`):
///
/// ```text
/// .code32
/// hdr:  .long 0x1BADB002, 0x00010000, -(0x1BADB002+0x00010000)
///       .long hdr, hdr, 0, 0, entry          # a.out kludge: flat binary
/// entry: mov $0x200000,%edi; xor %eax,%eax; mov $3072,%ecx; rep stosl
///       movl $0x201003,0x200000; movl $0x202003,0x201000   # PML4, PDPT
///       mov $0x202000,%edi; mov $0x83,%eax; mov $16,%ecx   # 16 × 2 MiB
/// 1:    movl %eax,(%edi); add $0x200000,%eax; add $8,%edi; loop 1b
///       mov %cr4,%eax; or $0x20,%eax; mov %eax,%cr4         # PAE
///       mov $0x200000,%eax; mov %eax,%cr3
///       mov $0xC0000080,%ecx; rdmsr; or $0x100,%eax; wrmsr  # EFER.LME
///       mov %cr0,%eax; or $0x80000001,%eax; mov %eax,%cr0   # PG
///       lgdt gdtr; ljmp $0x08,$lm
/// .code64
/// lm:   mov $0x0fffff8,%rsi; mov $0x17ffff8,%rdi; mov $0x100000,%rcx
///       std; rep movsq; cld
///       mov $1,%al; out %al,$0xf4; hlt
/// .align 8
/// gdt:  .quad 0, 0x00209A0000000000
/// gdtr: .word 15; .long gdt
/// ```
const KVM_PROBE_GUEST: [u8; 206] = [
    0x02, 0xb0, 0xad, 0x1b, 0x00, 0x00, 0x01, 0x00, 0xfe, 0x4f, 0x51, 0xe4, 0x00, 0x00, 0x10, 0x00,
    0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x10, 0x00,
    0xbf, 0x00, 0x00, 0x20, 0x00, 0x31, 0xc0, 0xb9, 0x00, 0x0c, 0x00, 0x00, 0xf3, 0xab, 0xc7, 0x05,
    0x00, 0x00, 0x20, 0x00, 0x03, 0x10, 0x20, 0x00, 0xc7, 0x05, 0x00, 0x10, 0x20, 0x00, 0x03, 0x20,
    0x20, 0x00, 0xbf, 0x00, 0x20, 0x20, 0x00, 0xb8, 0x83, 0x00, 0x00, 0x00, 0xb9, 0x10, 0x00, 0x00,
    0x00, 0x89, 0x07, 0x05, 0x00, 0x00, 0x20, 0x00, 0x83, 0xc7, 0x08, 0xe2, 0xf4, 0x0f, 0x20, 0xe0,
    0x83, 0xc8, 0x20, 0x0f, 0x22, 0xe0, 0xb8, 0x00, 0x00, 0x20, 0x00, 0x0f, 0x22, 0xd8, 0xb9, 0x80,
    0x00, 0x00, 0xc0, 0x0f, 0x32, 0x0d, 0x00, 0x01, 0x00, 0x00, 0x0f, 0x30, 0x0f, 0x20, 0xc0, 0x0d,
    0x01, 0x00, 0x00, 0x80, 0x0f, 0x22, 0xc0, 0x0f, 0x01, 0x15, 0xc8, 0x00, 0x10, 0x00, 0xea, 0x95,
    0x00, 0x10, 0x00, 0x08, 0x00, 0x48, 0xc7, 0xc6, 0xf8, 0xff, 0xff, 0x00, 0x48, 0xc7, 0xc7, 0xf8,
    0xff, 0x7f, 0x01, 0x48, 0xc7, 0xc1, 0x00, 0x00, 0x10, 0x00, 0xfd, 0xf3, 0x48, 0xa5, 0xfc, 0xb0,
    0x01, 0xe6, 0xf4, 0xf4, 0x8d, 0x74, 0x26, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x9a, 0x20, 0x00, 0x0f, 0x00, 0xb8, 0x00, 0x10, 0x00,
];

/// How long the probe guest may take under KVM (QEMU's own start-up
/// included) before KVM counts as unusable.
pub const PROBE_DEADLINE: Duration = Duration::from_millis(1500);

/// Tries KVM for real; returns the accelerator and why.
pub async fn probe_accelerator(qemu: &Path, scratch: &Path) -> (Accelerator, String) {
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        return (Accelerator::Tcg, format!("/dev/kvm cannot be opened: {e}"));
    }
    let guest = scratch.join("kvm-probe.bin");
    if let Err(e) = std::fs::write(&guest, KVM_PROBE_GUEST) {
        return (
            Accelerator::Tcg,
            format!("writing the KVM probe guest {}: {e}", guest.display()),
        );
    }
    let mut cmd = Command::new(qemu);
    cmd.args(["-accel", "kvm", "-machine", "pc", "-m", "32"])
        .args([
            "-display",
            "none",
            "-nodefaults",
            "-no-user-config",
            "-no-reboot",
        ])
        .arg("-kernel")
        .arg(&guest)
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let started = Instant::now();
    let outcome = tokio::time::timeout(PROBE_DEADLINE, cmd.output()).await;
    let _ = std::fs::remove_file(&guest);
    match outcome {
        Err(_) => (
            Accelerator::Tcg,
            format!(
                "/dev/kvm opens, but a probe guest did not finish within {} ms under KVM (nested virtualization?)",
                PROBE_DEADLINE.as_millis()
            ),
        ),
        Ok(Err(e)) => (
            Accelerator::Tcg,
            format!("running {} for the KVM probe: {e}", qemu.display()),
        ),
        Ok(Ok(out)) if out.status.code() == Some(3) => (
            Accelerator::Kvm,
            format!(
                "a probe guest ran under KVM in {} ms",
                started.elapsed().as_millis()
            ),
        ),
        Ok(Ok(out)) => (
            Accelerator::Tcg,
            format!(
                "the KVM probe guest failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ),
    }
}

/// The files of one VM's directory.
#[derive(Debug, Clone)]
pub struct VmPaths {
    pub dir: PathBuf,
}

impl VmPaths {
    pub fn spec(&self) -> PathBuf {
        self.dir.join("spec.json")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    pub fn overlay(&self) -> PathBuf {
        self.dir.join("overlay.qcow2")
    }
    pub fn seed(&self) -> PathBuf {
        self.dir.join("seed.img")
    }
    pub fn pidfile(&self) -> PathBuf {
        self.dir.join("qemu.pid")
    }
    pub fn qmp(&self) -> PathBuf {
        self.dir.join("qmp.sock")
    }
    pub fn console(&self) -> PathBuf {
        self.dir.join("console.log")
    }
    pub fn report(&self) -> PathBuf {
        self.dir.join("report.log")
    }
}

/// QEMU's `-name` for a VM: how a pid is recognised as ours.
pub fn guest_name(vm: &str) -> String {
    format!("hy-{vm}")
}

/// QEMU option values are comma-separated; a comma in a path is doubled.
fn opt_path(p: &Path) -> String {
    p.display().to_string().replace(',', ",,")
}

/// What a VM's QEMU runs with.
pub struct Launch<'a> {
    pub vm: &'a str,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub mac: &'a str,
    pub tap: &'a str,
    pub accelerator: Accelerator,
    pub image: &'a Image,
    pub paths: &'a VmPaths,
}

impl Launch<'_> {
    /// The arguments after the QEMU binary. QEMU daemonizes (its own
    /// session, so it outlives the agent), writes its pidfile, and keeps its
    /// two serial ports in files: ttyS0 the console, ttyS1 the guest's
    /// report line. All paths are absolute because a daemon runs in `/`.
    pub fn args(&self) -> Vec<OsString> {
        let p = self.paths;
        let mut a: Vec<String> = vec![
            "-name".into(),
            guest_name(self.vm),
            "-machine".into(),
            "q35".into(),
            "-accel".into(),
            self.accelerator.as_str().into(),
            "-m".into(),
            self.memory_mib.to_string(),
            "-smp".into(),
            self.vcpus.to_string(),
            "-display".into(),
            "none".into(),
            "-nodefaults".into(),
            "-no-user-config".into(),
            "-daemonize".into(),
            "-pidfile".into(),
            p.pidfile().display().to_string(),
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", opt_path(&p.qmp())),
            "-chardev".into(),
            format!("file,id=console,path={}", opt_path(&p.console())),
            "-serial".into(),
            "chardev:console".into(),
            "-chardev".into(),
            format!("file,id=report,path={}", opt_path(&p.report())),
            "-serial".into(),
            "chardev:report".into(),
            "-drive".into(),
            format!(
                "file={},format=qcow2,if=virtio,index=0",
                opt_path(&p.overlay())
            ),
            "-drive".into(),
            format!(
                "file={},format=raw,if=virtio,index=1,readonly=on",
                opt_path(&p.seed())
            ),
            "-netdev".into(),
            format!("tap,id=net0,ifname={},script=no,downscript=no", self.tap),
            "-device".into(),
            format!("virtio-net-pci,netdev=net0,mac={}", self.mac),
        ];
        if let Some(kernel) = &self.image.kernel {
            a.push("-kernel".into());
            a.push(kernel.display().to_string());
            if let Some(initrd) = &self.image.initrd {
                a.push("-initrd".into());
                a.push(initrd.display().to_string());
            }
            a.push("-append".into());
            a.push(
                self.image
                    .cmdline
                    .clone()
                    .unwrap_or_else(|| "console=ttyS0".into()),
            );
        }
        a.into_iter().map(OsString::from).collect()
    }
}

/// The pid in a pidfile, if it holds one.
pub fn read_pidfile(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Whether `pid` runs (a zombie does not count).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Whether `pid` is the QEMU of the VM whose pidfile is `pidfile`: its
/// command line carries the VM's `-name` and that pidfile, so a recycled
/// pid is never mistaken for it.
pub fn is_our_qemu(pid: u32, vm: &str, pidfile: &Path) -> bool {
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
    let name = guest_name(vm);
    let pidfile = pidfile.display().to_string();
    let has_pair = |flag: &str, value: &str| {
        args.windows(2)
            .any(|w| w[0] == flag.as_bytes() && w[1] == value.as_bytes())
    };
    has_pair("-name", &name) && has_pair("-pidfile", &pidfile)
}

/// Sends SIGKILL (via kill(1): no unsafe code for one signal).
pub async fn kill9(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .output()
        .await;
}

/// Waits until `pid` is gone, at most `limit`; true when it is.
pub async fn wait_exit(pid: u32, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    loop {
        if !alive(pid) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How long one QMP exchange may take.
const QMP_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs one QMP command on the VM's socket and returns its `return` value.
/// A connection per command: QEMU serves one QMP client at a time, and the
/// agent only needs a command now and then.
pub async fn qmp(socket: &Path, command: &str) -> Result<Value, String> {
    tokio::time::timeout(QMP_TIMEOUT, qmp_inner(socket, command))
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "QMP {command} on {}: no answer within {}s",
                socket.display(),
                QMP_TIMEOUT.as_secs()
            ))
        })
}

async fn qmp_inner(socket: &Path, command: &str) -> Result<Value, String> {
    let at = |what: &str, e: &dyn std::fmt::Display| {
        format!("QMP {command} on {}: {what}: {e}", socket.display())
    };
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|e| at("connecting", &e))?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    // The greeting, then capabilities negotiation, then the command.
    next_reply(&mut lines, true)
        .await
        .map_err(|e| at("greeting", &e))?;
    for cmd in ["qmp_capabilities", command] {
        let mut line = json!({ "execute": cmd }).to_string();
        line.push('\n');
        write
            .write_all(line.as_bytes())
            .await
            .map_err(|e| at("writing", &e))?;
        let reply = next_reply(&mut lines, false)
            .await
            .map_err(|e| at("reading", &e))?;
        if let Some(err) = reply.get("error") {
            return Err(at("refused", &err));
        }
        if cmd == command {
            return Ok(reply.get("return").cloned().unwrap_or(Value::Null));
        }
    }
    Ok(Value::Null)
}

/// The next reply (skipping asynchronous events); the greeting when
/// `greeting` is set.
async fn next_reply(
    lines: &mut tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    greeting: bool,
) -> Result<Value, String> {
    loop {
        let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? else {
            return Err("QEMU closed the connection".to_string());
        };
        let v: Value = serde_json::from_str(&line).map_err(|e| format!("{e} in {line:?}"))?;
        if greeting && v.get("QMP").is_some() {
            return Ok(v);
        }
        if !greeting && (v.get("return").is_some() || v.get("error").is_some()) {
            return Ok(v);
        }
    }
}
