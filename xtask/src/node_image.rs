//! `cargo xtask node-image`: builds the small Linux node image the agent's
//! tests boot under QEMU, from Debian packages only (so tests need nothing
//! from outside but the Debian archive, fetched with `apt-get download`).
//!
//! Output, under `.build/node-image/default/` (the image directory the
//! agent reads, named `default`):
//!
//! - `vmlinuz`: the kernel of Debian's current `linux-image-<abi>-amd64`
//!   (unpacked, never installed on this machine);
//! - `initrd.img`: an uncompressed newc initramfs (QEMU loads it as is, and
//!   under TCG not decompressing saves boot time) holding busybox-static,
//!   the virtio, FAT and power-button modules with their dependencies, and
//!   `init.sh` as `/init`, which keeps `hybrid_api::agent::GUEST_CONTRACT`;
//! - `disk.qcow2`: an empty 64 MiB qcow2, the base of the VMs' overlays
//!   (the image boots from its initramfs; the disk makes overlays real);
//! - `image.json`: what the agent reads (names relative to the directory);
//! - `stamp`: the inputs it was built from (package versions, hashes of the
//!   init script and of this builder); a run whose inputs match is a no-op.
//!
//! `--boot-check` then boots the image once, as the agent would (seed disk,
//! overlay, two serial ports, user-mode networking that reaches nothing),
//! and fails unless the guest reports in with the seed's address and powers
//! off on ACPI power-button.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::util;

/// Arguments of `cargo xtask node-image`.
#[derive(clap::Args)]
pub struct Args {
    /// Boot the image once under QEMU and fail unless the guest reports in
    /// with the seed's address and powers off on the ACPI power button.
    #[arg(long)]
    boot_check: bool,
    /// Rebuild even when the stamp says the image is up to date.
    #[arg(long)]
    force: bool,
    /// Accelerator for --boot-check: `auto` uses KVM only when a probe
    /// boot shows it really runs a kernel (it may exist and hang, e.g.
    /// under nested virtualization).
    #[arg(long, value_enum, default_value_t = Accel::Auto)]
    accel: Accel,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
enum Accel {
    Auto,
    Kvm,
    Tcg,
}

/// The image's name: its directory under `.build/node-image/`.
const IMAGE: &str = "default";
/// Debian's meta-package that depends on the current kernel package.
const KERNEL_META: &str = "linux-image-amd64";
const BUSYBOX: &str = "busybox-static";
/// Kernel command line the agent passes (it reads it from image.json).
const CMDLINE: &str = "console=ttyS0 panic=-1 quiet";
const DISK_SIZE: &str = "64M";
/// The guest's /init (busybox sh): the contract's guest side.
const INIT: &str = include_str!("node_image/init.sh");
/// This file: a change to how the image is put together rebuilds it too.
const BUILDER: &str = include_str!("node_image.rs");

/// Modules the guest loads (their dependencies are added from the modules'
/// own `depends=`; Debian's package ships no modules.dep, `depmod` makes
/// it at install time). Modules built into the kernel are skipped.
const MODULES: &[&str] = &[
    // virtio over PCI: QEMU's disks and NIC.
    "virtio",
    "virtio_ring",
    "virtio_pci_legacy_dev",
    "virtio_pci_modern_dev",
    "virtio_pci",
    // The NIC (virtio_net needs net_failover, which needs failover).
    "failover",
    "net_failover",
    "virtio_net",
    // The seed disk and the overlay disk.
    "virtio_blk",
    // The NoCloud seed is FAT. vfat mounts with codepage 437 and the
    // iocharset ascii by default (Debian's FAT_DEFAULT_*), utf8 when asked
    // for; iso8859-1 is the other usual iocharset=.
    "fat",
    "vfat",
    "nls_cp437",
    "nls_ascii",
    "nls_utf8",
    "nls_iso8859_1",
    // ACPI power button as an input device: QEMU's system_powerdown.
    "button",
    "evdev",
];

/// busybox init's table, once /init has done the contract's work and
/// handed PID 1 over: nothing to start (the power-button watcher already
/// runs). At shutdown only a sync: every filesystem is in memory and the
/// seed, the one disk mounted, was read-only and is unmounted already.
const INITTAB: &str = "::shutdown:/bin/sync\n";

/// The image's files, relative to its directory (what image.json names).
const FILES: &[&str] = &["vmlinuz", "initrd.img", "disk.qcow2", "image.json"];

/// Runs `cargo xtask node-image`.
pub fn run(args: &Args) -> Result<()> {
    let dir = util::root().join(".build").join("node-image");
    let image = build(&dir, args.force)?;
    if args.boot_check {
        boot_check(&image, args.accel)?;
    }
    Ok(())
}

/// Builds (or finds up to date) the image under `dir/default`; returns
/// the image directory.
fn build(dir: &Path, force: bool) -> Result<PathBuf> {
    check_tools()?;
    let kernel_pkg = kernel_package()?;
    let [kernel_version, busybox_version] = candidates([kernel_pkg.as_str(), BUSYBOX])?;
    let stamp = format!(
        "{kernel_pkg} {kernel_version}\n{BUSYBOX} {busybox_version}\n\
         modules {}\ninit.sh {:016x}\nnode_image.rs {:016x}\n",
        MODULES.join(","),
        fnv1a(INIT.as_bytes()),
        fnv1a(BUILDER.as_bytes()),
    );
    let out = dir.join(IMAGE);
    let up_to_date = fs::read_to_string(out.join("stamp")).is_ok_and(|s| s == stamp)
        && FILES.iter().all(|f| out.join(f).is_file());
    if up_to_date && !force {
        eprintln!(
            "node image up to date: {} ({kernel_pkg} {kernel_version}, {BUSYBOX} {busybox_version})",
            out.display()
        );
        return Ok(out);
    }
    let t = util::step(&format!(
        "building node image {} from {kernel_pkg} {kernel_version} and {BUSYBOX} {busybox_version}",
        out.display()
    ));

    let debs = dir.join("debs");
    fs::create_dir_all(&debs).with_context(|| format!("creating {}", debs.display()))?;
    let kernel_deb = debs.join(deb_name(&kernel_pkg, &kernel_version));
    let busybox_deb = debs.join(deb_name(BUSYBOX, &busybox_version));
    // Older kernels are other packages (the ABI is in the name): drop every
    // .deb the image no longer uses before fetching (~70 MiB a kernel).
    for entry in fs::read_dir(&debs).with_context(|| format!("listing {}", debs.display()))? {
        let path = entry?.path();
        if path != kernel_deb && path != busybox_deb {
            fs::remove_file(&path)
                .with_context(|| format!("removing the stale {}", path.display()))?;
        }
    }
    download(&kernel_deb, &kernel_pkg, &kernel_version)?;
    download(&busybox_deb, BUSYBOX, &busybox_version)?;

    // Unpacked only while building: the kernel package is ~400 MiB unpacked.
    let work = dir.join("work");
    remove_dir(&work)?;
    let kernel_root = work.join("kernel");
    let busybox_root = work.join("busybox");
    extract(&kernel_deb, &kernel_root)?;
    extract(&busybox_deb, &busybox_root)?;

    let (vmlinuz, modules_dir) = kernel_files(&kernel_root, &kernel_pkg)?;
    let modules = resolve_modules(&modules_dir, &kernel_pkg)?;
    eprintln!(
        "modules (load order): {}",
        modules
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let busybox = busybox_root.join("bin").join("busybox");
    let busybox = fs::read(&busybox)
        .with_context(|| format!("{BUSYBOX} has no /bin/busybox ({})", busybox.display()))?;

    // Built beside the image and renamed into place, so a failed build
    // never leaves a half image where the agent looks.
    let tmp = dir.join(format!("{IMAGE}.tmp"));
    remove_dir(&tmp)?;
    fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    fs::copy(&vmlinuz, tmp.join("vmlinuz"))
        .with_context(|| format!("copying {}", vmlinuz.display()))?;
    let initrd = initramfs(&busybox, &modules);
    fs::write(tmp.join("initrd.img"), &initrd).context("writing initrd.img")?;
    util::output(
        Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(tmp.join("disk.qcow2"))
            .arg(DISK_SIZE),
    )
    .context("creating disk.qcow2 with qemu-img (Debian package qemu-utils)")?;
    let manifest = serde_json::json!({
        "name": IMAGE,
        "disk": "disk.qcow2",
        "kernel": "vmlinuz",
        "initrd": "initrd.img",
        "cmdline": CMDLINE,
    });
    fs::write(
        tmp.join("image.json"),
        serde_json::to_string_pretty(&manifest)? + "\n",
    )
    .context("writing image.json")?;
    fs::write(tmp.join("stamp"), &stamp).context("writing the stamp")?;
    remove_dir(&out)?;
    fs::rename(&tmp, &out)
        .with_context(|| format!("renaming {} to {}", tmp.display(), out.display()))?;
    remove_dir(&work)?;

    let size: u64 = FILES
        .iter()
        .filter_map(|f| fs::metadata(out.join(f)).ok())
        .map(|m| m.len())
        .sum();
    eprintln!(
        "node image built in {:.1}s: {} (initrd {} KiB, {} KiB in all)",
        t.elapsed().as_secs_f64(),
        out.display(),
        initrd.len() / 1024,
        size / 1024
    );
    Ok(out)
}

/// Fails early, naming the package, when a tool the build needs is missing.
fn check_tools() -> Result<()> {
    for (tool, package) in [
        ("apt-get", "apt"),
        ("apt-cache", "apt"),
        ("dpkg-deb", "dpkg"),
        ("qemu-img", "qemu-utils"),
    ] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ensure!(
            found,
            "`{tool}` is not available: the node image is built from Debian packages \
             and needs {tool} (Debian package {package}) on a Debian-based machine"
        );
    }
    let arch = util::output(Command::new("dpkg").arg("--print-architecture"))
        .context("asking dpkg for the machine's architecture")?;
    ensure!(
        arch.trim() == "amd64",
        "the node image is x86_64 (amd64 packages); this machine is {}",
        arch.trim()
    );
    Ok(())
}

/// The kernel package `linux-image-amd64` currently depends on, e.g.
/// `linux-image-6.1.0-48-amd64`.
fn kernel_package() -> Result<String> {
    let out = util::output(Command::new("apt-cache").args(["depends", KERNEL_META]))
        .with_context(|| not_found(KERNEL_META))?;
    out.lines()
        .filter_map(|l| l.trim().trim_start_matches('|').strip_prefix("Depends:"))
        .map(str::trim)
        .find(|p| p.starts_with("linux-image-") && p.ends_with("-amd64"))
        .map(str::to_string)
        .with_context(|| not_found(KERNEL_META))
}

/// The versions `apt-get download` would fetch of `packages` (one
/// apt-cache call: each one reads all of apt's lists).
fn candidates<const N: usize>(packages: [&str; N]) -> Result<[String; N]> {
    let out = util::output(Command::new("apt-cache").arg("policy").args(packages))
        .with_context(|| format!("asking apt-cache for {}", packages.join(", ")))?;
    // Sections of `name:` then indented fields, `Candidate: (none)` when
    // no list has the package; unknown packages have no section at all.
    let mut found = BTreeMap::new();
    let mut current = None;
    for line in out.lines() {
        if let Some(name) = line.strip_suffix(':').filter(|_| !line.starts_with(' ')) {
            current = Some(name);
        } else if let (Some(name), Some(version)) = (
            current,
            line.trim().strip_prefix("Candidate:").map(str::trim),
        ) && version != "(none)"
        {
            found.insert(name, version.to_string());
        }
    }
    let mut versions = Vec::with_capacity(N);
    for package in packages {
        let version = found.remove(package).with_context(|| not_found(package))?;
        versions.push(version);
    }
    Ok(versions.try_into().expect("one version per package"))
}

fn not_found(package: &str) -> String {
    format!(
        "Debian package {package} not found in apt's package lists: \
         run `apt-get update` (as root) first"
    )
}

/// The file name `apt-get download` gives a package (the epoch's colon
/// URL-escaped).
fn deb_name(package: &str, version: &str) -> String {
    format!("{package}_{}_amd64.deb", version.replace(':', "%3a"))
}

/// Fetches `package=version` to `deb` (in its directory, where apt-get
/// download puts it) unless it is there already.
fn download(deb: &Path, package: &str, version: &str) -> Result<()> {
    if deb.is_file() {
        return Ok(());
    }
    eprintln!("downloading {package} {version}");
    util::output(
        Command::new("apt-get")
            .args(["download", "-q", &format!("{package}={version}")])
            .current_dir(deb.parent().context("a .deb path without a directory")?),
    )
    .with_context(|| format!("downloading Debian package {package} {version} with apt-get"))?;
    ensure!(
        deb.is_file(),
        "apt-get download {package}={version} did not leave {}",
        deb.display()
    );
    Ok(())
}

fn extract(deb: &Path, into: &Path) -> Result<()> {
    fs::create_dir_all(into).with_context(|| format!("creating {}", into.display()))?;
    util::output(Command::new("dpkg-deb").arg("-x").arg(deb).arg(into))
        .with_context(|| format!("unpacking {} (delete it to fetch it again)", deb.display()))?;
    Ok(())
}

/// The kernel image and the modules directory in the unpacked package.
fn kernel_files(root: &Path, package: &str) -> Result<(PathBuf, PathBuf)> {
    let boot = root.join("boot");
    let mut kernels = Vec::new();
    for entry in fs::read_dir(&boot).with_context(|| format!("{package} has no /boot"))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(abi) = name.strip_prefix("vmlinuz-") {
            kernels.push(abi.to_string());
        }
    }
    let [abi] = kernels.as_slice() else {
        bail!("{package}: expected one /boot/vmlinuz-*, found {kernels:?}");
    };
    // Debian 12 ships modules under /lib; later releases under /usr/lib.
    let modules = ["lib", "usr/lib"]
        .iter()
        .map(|prefix| root.join(prefix).join("modules").join(abi))
        .find(|d| d.is_dir())
        .with_context(|| format!("{package} has no lib/modules/{abi}"))?;
    Ok((boot.join(format!("vmlinuz-{abi}")), modules))
}

/// One kernel module for the initramfs.
struct Module {
    /// Normalized name (`-` as `_`), as insmod and the init script see it.
    name: String,
    /// Uncompressed .ko.
    data: Vec<u8>,
}

/// [`MODULES`] and their dependencies, dependencies first; built-in ones
/// left out.
fn resolve_modules(dir: &Path, package: &str) -> Result<Vec<Module>> {
    let mut files = BTreeMap::new();
    index_modules(&dir.join("kernel"), &mut files)?;
    let builtin: BTreeSet<String> = fs::read_to_string(dir.join("modules.builtin"))
        .with_context(|| format!("{package} has no modules.builtin"))?
        .lines()
        .filter_map(|l| l.rsplit('/').next())
        .filter_map(module_name)
        .collect();
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    for name in MODULES {
        add_module(name, &files, &builtin, &mut seen, &mut order, package)
            .with_context(|| format!("resolving kernel module {name}"))?;
    }
    Ok(order)
}

/// Depth-first: a module's dependencies are pushed before it.
fn add_module(
    name: &str,
    files: &BTreeMap<String, PathBuf>,
    builtin: &BTreeSet<String>,
    seen: &mut BTreeSet<String>,
    order: &mut Vec<Module>,
    package: &str,
) -> Result<()> {
    let name = name.replace('-', "_");
    if builtin.contains(&name) || !seen.insert(name.clone()) {
        return Ok(());
    }
    let path = files
        .get(&name)
        .with_context(|| format!("{package} has no module {name} (neither a .ko nor built in)"))?;
    let data = read_module(path)?;
    let depends = modinfo(&data, "depends")
        .with_context(|| format!("reading the .modinfo of {}", path.display()))?;
    for dep in depends.split(',').filter(|d| !d.is_empty()) {
        add_module(dep, files, builtin, seen, order, package)
            .with_context(|| format!("{name} depends on {dep}"))?;
    }
    order.push(Module { name, data });
    Ok(())
}

/// Module name → file, for every module file under `dir`.
fn index_modules(dir: &Path, files: &mut BTreeMap<String, PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            index_modules(&path, files)?;
        } else if let Some(name) = module_name(&entry.file_name().to_string_lossy()) {
            files.insert(name, path);
        }
    }
    Ok(())
}

/// `nls_iso8859-1.ko.xz` → `nls_iso8859_1`.
fn module_name(file: &str) -> Option<String> {
    let stem = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))?;
    Some(stem.replace('-', "_"))
}

/// A module file's bytes, decompressed (the guest's busybox insmod takes
/// plain .ko files; Debian 12's are plain already, later ones are .xz).
fn read_module(path: &Path) -> Result<Vec<u8>> {
    let file = path.to_string_lossy();
    let tool = if file.ends_with(".xz") {
        "xz"
    } else if file.ends_with(".zst") {
        "zstd"
    } else if file.ends_with(".gz") {
        "gzip"
    } else {
        return fs::read(path).with_context(|| format!("reading {}", path.display()));
    };
    let out = Command::new(tool)
        .arg("-dc")
        .arg(path)
        .output()
        .with_context(|| format!("cannot run `{tool}` to decompress {}", path.display()))?;
    ensure!(
        out.status.success(),
        "`{tool} -dc {}` failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out.stdout)
}

/// The value of `key` in a module's `.modinfo` ELF section (NUL-separated
/// `key=value` strings); empty when the key is absent.
fn modinfo(elf: &[u8], key: &str) -> Result<String> {
    let u16_at = |o: usize| -> Result<usize> {
        let b = elf.get(o..o + 2).context("truncated ELF")?;
        Ok(usize::from(u16::from_le_bytes([b[0], b[1]])))
    };
    let u32_at = |o: usize| -> Result<usize> {
        let b = elf.get(o..o + 4).context("truncated ELF")?;
        Ok(u32::from_le_bytes(b.try_into()?) as usize)
    };
    let u64_at = |o: usize| -> Result<usize> {
        let b = elf.get(o..o + 8).context("truncated ELF")?;
        Ok(usize::try_from(u64::from_le_bytes(b.try_into()?))?)
    };
    // 64-bit little-endian ELF: the only kind an amd64 kernel loads.
    ensure!(
        elf.starts_with(b"\x7fELF\x02\x01"),
        "not a 64-bit little-endian ELF file"
    );
    let (shoff, shentsize, shnum, shstrndx) =
        (u64_at(0x28)?, u16_at(0x3a)?, u16_at(0x3c)?, u16_at(0x3e)?);
    let section = |i: usize| -> Result<(usize, usize, usize)> {
        let h = shoff + i * shentsize;
        Ok((u32_at(h)?, u64_at(h + 0x18)?, u64_at(h + 0x20)?))
    };
    let (_, strtab, _) = section(shstrndx)?;
    for i in 0..shnum {
        let (name, offset, size) = section(i)?;
        let name = elf.get(strtab + name..).context("truncated ELF")?;
        if !name.starts_with(b".modinfo\0") {
            continue;
        }
        let info = elf.get(offset..offset + size).context("truncated ELF")?;
        let prefix = format!("{key}=");
        return Ok(info
            .split(|b| *b == 0)
            .filter_map(|s| s.strip_prefix(prefix.as_bytes()))
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .next()
            .unwrap_or_default());
    }
    bail!("no .modinfo section")
}

/// The initramfs: busybox, the modules (in load order in /etc/modules),
/// /init and the few files and device nodes it needs before devtmpfs.
fn initramfs(busybox: &[u8], modules: &[Module]) -> Vec<u8> {
    let mut cpio = Cpio::default();
    for dir in [
        "bin", "dev", "etc", "lib", "mnt", "proc", "root", "run", "sbin", "sys", "tmp", "usr",
        "usr/bin", "usr/sbin",
    ] {
        cpio.dir(dir);
    }
    // The kernel opens /dev/console for init's stdio before anything is
    // mounted: without this node /init would start without one.
    cpio.char_device("dev/console", 0o600, 5, 1);
    cpio.file("bin/busybox", 0o755, busybox);
    cpio.file("init", 0o755, INIT.as_bytes());
    cpio.file("etc/inittab", 0o644, INITTAB.as_bytes());
    let order: String = modules.iter().map(|m| format!("{}\n", m.name)).collect();
    cpio.file("etc/modules", 0o644, order.as_bytes());
    cpio.dir("lib/modules");
    for module in modules {
        cpio.file(
            &format!("lib/modules/{}.ko", module.name),
            0o644,
            &module.data,
        );
    }
    cpio.finish()
}

/// A writer of the newc cpio format the kernel unpacks as its initramfs.
/// Every entry is owned by root with mtime 0, so the same inputs give the
/// same bytes.
#[derive(Default)]
struct Cpio {
    out: Vec<u8>,
    inode: u32,
}

impl Cpio {
    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040_755, 2, (0, 0), &[]);
    }

    fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, 0o100_000 | mode, 1, (0, 0), data);
    }

    fn char_device(&mut self, name: &str, mode: u32, major: u32, minor: u32) {
        self.entry(name, 0o020_000 | mode, 1, (major, minor), &[]);
    }

    fn entry(&mut self, name: &str, mode: u32, nlink: u32, rdev: (u32, u32), data: &[u8]) {
        self.inode += 1;
        let size = u32::try_from(data.len()).expect("an initramfs file under 4 GiB");
        let namesize = u32::try_from(name.len() + 1).expect("a short file name");
        // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
        // devminor, rdevmajor, rdevminor, namesize, check.
        let fields = [
            self.inode, mode, 0, 0, nlink, 0, size, 0, 0, rdev.0, rdev.1, namesize, 0,
        ];
        self.out.extend_from_slice(b"070701");
        for field in fields {
            self.out
                .extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    /// Header+name and data are each padded to 4 bytes.
    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, 1, (0, 0), &[]);
        self.out
    }
}

/// FNV-1a, 64 bits: a stable hash for the stamp (std's hasher may change
/// between Rust releases, which would only cost a rebuild, but why).
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn remove_dir(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", dir.display()))
        }
        _ => Ok(()),
    }
}

// --- --boot-check ------------------------------------------------------------

/// What the boot check's seed says and the report must echo.
const CHECK_INSTANCE: &str = "i-boot-check";
const CHECK_HOSTNAME: &str = "boot-check";
const CHECK_MAC: &str = "52:54:00:12:34:56";
/// QEMU's user-mode network is 10.0.2.0/24 with its router at .2 and DNS at
/// .3; the address is static here, from the seed, not from its DHCP, and
/// is the one slirp's port forwarding sends to.
const CHECK_ADDRESS: &str = "10.0.2.15/24";
/// Generous for TCG on a busy 2-core machine (it takes ~10 s when idle).
const REPORT_TIMEOUT: Duration = Duration::from_secs(90);
const POWEROFF_TIMEOUT: Duration = Duration::from_secs(30);

/// Boots the image once as the agent would and checks the guest contract.
fn boot_check(image: &Path, accel: Accel) -> Result<()> {
    let t = util::step("node image boot check");
    let dir = image
        .parent()
        .context("the image directory has no parent")?
        .join("boot-check");
    remove_dir(&dir)?;
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    write_seed(&dir.join("seed.img")).context("writing the NoCloud seed")?;
    // An overlay on the image's disk, as the agent gives each VM.
    util::output(
        Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
            .arg(image.join("disk.qcow2"))
            .arg(dir.join("overlay.qcow2")),
    )
    .context("creating the overlay with qemu-img")?;
    let accel = match accel {
        Accel::Auto if kvm_works(image, &dir) => Accel::Kvm,
        Accel::Auto => Accel::Tcg,
        other => other,
    };
    let accel_name = if accel == Accel::Kvm { "kvm" } else { "tcg" };
    eprintln!("booting {} under {accel_name}", image.display());

    // A loopback port forwarded to the guest's port 80, for the TCP check.
    let http_port = free_port()?;
    let report_log = dir.join("report.log");
    let console_log = dir.join("console.log");
    let started = Instant::now();
    let mut qemu = Qemu::start(
        qemu_command(image, &dir, accel_name, http_port)
            // QMP on stdin/stdout: no socket path (whose length is limited)
            // to place; the check only needs to send system_powerdown.
            .args(["-qmp", "stdio"])
            .stdin(Stdio::piped())
            .stdout(fs::File::create(dir.join("qmp.log")).context("creating qmp.log")?)
            .stderr(fs::File::create(dir.join("qemu.log")).context("creating qemu.log")?),
    )?;
    let report = loop {
        let text = fs::read_to_string(&report_log).unwrap_or_default();
        // Only whole lines: the guest may be halfway through writing one.
        let complete = text.rsplit_once('\n').map_or("", |(lines, _)| lines);
        if let Some(line) = complete.lines().find(|l| l.contains("hybrid_ready")) {
            break line.trim().to_string();
        }
        if let Some(status) = qemu.0.try_wait()? {
            bail!(
                "QEMU exited ({status}) before the guest reported in; {}",
                diagnostics(&dir)
            );
        }
        if started.elapsed() > REPORT_TIMEOUT {
            bail!(
                "the guest did not report on ttyS1 within {}s; {}",
                REPORT_TIMEOUT.as_secs(),
                diagnostics(&dir)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let booted = started.elapsed();
    let value: serde_json::Value = serde_json::from_str(&report)
        .with_context(|| format!("the report line is not JSON: {report}"))?;
    let expected = serde_json::json!({"hybrid_ready": {
        "instance_id": CHECK_INSTANCE,
        "hostname": CHECK_HOSTNAME,
        "addresses": [CHECK_ADDRESS],
    }});
    ensure!(
        value == expected,
        "the guest reported {report}, expected {expected}; {}",
        diagnostics(&dir)
    );
    eprintln!(
        "guest reported in {:.1}s under {accel_name}: {report}",
        booted.as_secs_f64()
    );

    // TCP to the guest: slirp forwards to 10.0.2.15 (CHECK_ADDRESS), so an
    // answer also shows the seed's network configuration took.
    let page = http_get(http_port).with_context(|| {
        format!(
            "the guest's port 80 (forwarded from 127.0.0.1:{http_port}) did not serve the report; {}",
            diagnostics(&dir)
        )
    })?;
    ensure!(
        page.contains("hybrid_ready"),
        "the guest's port 80 answered without the report: {page}"
    );
    eprintln!("the guest's port 80 serves the report (TCP through 127.0.0.1:{http_port})");
    let console = fs::read_to_string(&console_log).unwrap_or_default();
    ensure!(
        !console.contains("ssh-ed25519"),
        "the console log shows the seed's SSH key: {}",
        console_log.display()
    );

    // The agent stops VMs with QMP system_powerdown (ACPI power button)
    // before it falls back to quit: the guest must power off by itself.
    let powering_off = Instant::now();
    let stdin = qemu.0.stdin.as_mut().context("QEMU's stdin")?;
    stdin
        .write_all(b"{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"system_powerdown\"}\n")
        .context("sending system_powerdown over QMP")?;
    stdin.flush()?;
    loop {
        if let Some(status) = qemu.0.try_wait()? {
            ensure!(status.success(), "QEMU exited with {status} on powerdown");
            break;
        }
        if powering_off.elapsed() > POWEROFF_TIMEOUT {
            bail!(
                "the guest did not power off within {}s of system_powerdown; {}",
                POWEROFF_TIMEOUT.as_secs(),
                diagnostics(&dir)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "guest powered off {:.1}s after system_powerdown; boot check passed in {:.1}s",
        powering_off.elapsed().as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
    remove_dir(&dir)
}

/// QEMU as the agent runs it, minus the tap: the image's kernel, initrd
/// and command line; the seed and the overlay on virtio; the console on
/// ttyS0 and the report port on ttyS1, both to files; one virtio NIC on a
/// user-mode network with `restrict=on`, which reaches neither this host
/// nor anything else (and needs no host network configuration); only
/// 127.0.0.1:`http_port` is forwarded in, to the guest's port 80.
fn qemu_command(image: &Path, dir: &Path, accel: &str, http_port: u16) -> Command {
    let mut cmd = Command::new("qemu-system-x86_64");
    let chardev = |id: &str, file: &str| format!("file,id={id},path={}", dir.join(file).display());
    cmd.args(["-accel", accel, "-m", "160", "-smp", "1"])
        .args(["-nodefaults", "-display", "none", "-no-user-config"])
        // A kernel panic (panic=-1 reboots at once) ends QEMU instead.
        .arg("-no-reboot")
        .arg("-kernel")
        .arg(image.join("vmlinuz"))
        .arg("-initrd")
        .arg(image.join("initrd.img"))
        .args(["-append", CMDLINE])
        .args([
            "-chardev",
            &chardev("c0", "console.log"),
            "-serial",
            "chardev:c0",
        ])
        .args([
            "-chardev",
            &chardev("c1", "report.log"),
            "-serial",
            "chardev:c1",
        ])
        .arg("-drive")
        .arg(format!(
            "file={},if=virtio,format=raw,readonly=on",
            dir.join("seed.img").display()
        ))
        .arg("-drive")
        .arg(format!(
            "file={},if=virtio,format=qcow2",
            dir.join("overlay.qcow2").display()
        ))
        .arg("-netdev")
        .arg(format!(
            "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{http_port}-:80"
        ))
        .args([
            "-device",
            &format!("virtio-net-pci,netdev=n0,mac={CHECK_MAC}"),
        ]);
    cmd
}

/// Whether KVM really runs a kernel here: /dev/kvm can exist, open and
/// start a VM whose kernel then hangs (nested virtualization on some
/// clouds). A working KVM prints the kernel's banner in well under a
/// second; a broken one never does.
fn kvm_works(image: &Path, dir: &Path) -> bool {
    if fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return false;
    }
    let log = dir.join("kvm-probe.log");
    let started = Command::new("qemu-system-x86_64")
        .args([
            "-accel",
            "kvm",
            "-m",
            "128",
            "-nodefaults",
            "-display",
            "none",
        ])
        .args(["-no-user-config", "-no-reboot", "-kernel"])
        .arg(image.join("vmlinuz"))
        .args(["-append", "console=ttyS0 panic=-1"])
        .arg("-chardev")
        .arg(format!("file,id=c0,path={}", log.display()))
        .args(["-serial", "chardev:c0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(child) = started else {
        return false;
    };
    let mut probe = Qemu(child);
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(3) {
        if fs::read_to_string(&log).is_ok_and(|s| s.contains("Linux version")) {
            eprintln!("KVM works: the probe kernel started");
            return true;
        }
        if probe.0.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("/dev/kvm is there but a kernel does not start under KVM: using TCG");
    false
}

/// A loopback port nobody listens on now (QEMU binds it a moment later).
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// `GET /` on the forwarded port; retried for a while, as the guest starts
/// its httpd just after writing the report.
fn http_get(port: u16) -> Result<String> {
    use std::io::Read;
    let started = Instant::now();
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
            stream.set_read_timeout(Some(Duration::from_secs(10)))?;
            stream.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
            let mut page = String::new();
            stream.read_to_string(&mut page)?;
            Ok(page)
        })();
        match attempt {
            // slirp accepts the connection itself and closes it at once
            // while nothing listens in the guest: an empty answer is a retry.
            Ok(page) if !page.is_empty() => return Ok(page),
            Ok(_) if started.elapsed() < Duration::from_secs(20) => {}
            Err(_) if started.elapsed() < Duration::from_secs(20) => {}
            Ok(_) => bail!("empty answers for 20s"),
            Err(e) => return Err(e).context("connecting"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A QEMU process that is killed when dropped, so a failed check leaves
/// no VM behind.
struct Qemu(Child);

impl Qemu {
    fn start(cmd: &mut Command) -> Result<Self> {
        let line = util::describe(cmd);
        let child = cmd.spawn().with_context(|| {
            format!("cannot start `{line}`: is QEMU installed (Debian package qemu-system-x86)?")
        })?;
        Ok(Self(child))
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The tails of the console and QEMU's own log, for failure messages.
fn diagnostics(dir: &Path) -> String {
    let tail = |file: &str| {
        let text = fs::read_to_string(dir.join(file)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    };
    format!(
        "files kept in {}\n--- console (ttyS0) ---\n{}\n--- qemu ---\n{}",
        dir.display(),
        tail("console.log"),
        tail("qemu.log")
    )
}

/// A NoCloud seed as the agent writes one: a small FAT volume labelled
/// CIDATA with meta-data, network-config (version 2) and user-data.
fn write_seed(path: &Path) -> Result<()> {
    let files = [
        (
            "meta-data",
            format!("instance-id: {CHECK_INSTANCE}\nlocal-hostname: {CHECK_HOSTNAME}\n"),
        ),
        (
            "network-config",
            format!(
                "version: 2\n\
                 ethernets:\n  \
                   eth0:\n    \
                     match:\n      \
                       macaddress: \"{CHECK_MAC}\"\n    \
                     set-name: eth0\n    \
                     addresses:\n      \
                       - {CHECK_ADDRESS}\n    \
                     routes:\n      \
                       - to: 0.0.0.0/0\n        \
                         via: 10.0.2.2\n    \
                     nameservers:\n      \
                       addresses: [10.0.2.3]\n"
            ),
        ),
        (
            "user-data",
            format!(
                "#cloud-config\nhostname: {CHECK_HOSTNAME}\nusers:\n  \
                 - name: hybrid\n    ssh_authorized_keys:\n      \
                 - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBootCheckKeyOnly boot-check\n"
            ),
        ),
    ];
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.set_len(1024 * 1024)?;
    fatfs::format_volume(
        &file,
        fatfs::FormatVolumeOptions::new()
            .volume_label(*b"CIDATA     ")
            .fat_type(fatfs::FatType::Fat12),
    )
    .context("formatting the seed as FAT")?;
    let fs = fatfs::FileSystem::new(&file, fatfs::FsOptions::new())
        .context("opening the seed's FAT volume")?;
    for (name, content) in files {
        let mut f = fs
            .root_dir()
            .create_file(name)
            .with_context(|| format!("creating {name} on the seed"))?;
        f.truncate()?;
        f.write_all(content.as_bytes())
            .with_context(|| format!("writing {name} on the seed"))?;
    }
    fs.unmount().context("closing the seed's FAT volume")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_are_normalized() {
        assert_eq!(
            module_name("nls_iso8859-1.ko").as_deref(),
            Some("nls_iso8859_1")
        );
        assert_eq!(
            module_name("virtio_net.ko.xz").as_deref(),
            Some("virtio_net")
        );
        assert_eq!(module_name("modules.dep"), None);
    }

    #[test]
    fn cpio_entries_are_aligned_and_terminated() {
        let mut cpio = Cpio::default();
        cpio.dir("etc");
        cpio.file("etc/x", 0o644, b"abc");
        let out = cpio.finish();
        assert!(out.len().is_multiple_of(4));
        assert!(out.starts_with(b"070701"));
        let trailer = out.windows(10).position(|w| w == b"TRAILER!!!");
        assert!(trailer.is_some());
        // Same input, same bytes: the image is reproducible.
        let mut again = Cpio::default();
        again.dir("etc");
        again.file("etc/x", 0o644, b"abc");
        assert_eq!(again.finish(), out);
    }
}
