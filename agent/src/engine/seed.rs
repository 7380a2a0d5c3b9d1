//! The NoCloud seed a VM boots with: a small FAT volume labelled `CIDATA`
//! holding `meta-data`, `network-config` (version 2) and `user-data`
//! (`#cloud-config`), as [`hybrid_api::agent::GUEST_CONTRACT`] describes.
//! Written in Rust with `fatfs`, so the agent needs no mkfs/mtools.
//!
//! Every string value is written as a JSON string: JSON strings are valid
//! YAML double-quoted scalars, so a key or host name can never break the
//! document's structure. The layout is one key per line, two spaces per
//! level, so that a minimal guest (a shell script) can read it line by line.
//!
//! The seed carries the guest's SSH keys: it is written 0600 and its
//! content is never logged.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use hybrid_api::agent::VmSpec;

/// Size of the seed volume: a FAT12 volume this small holds the three files
/// with room to spare and costs nothing on disk (the file is sparse).
pub const SEED_BYTES: u64 = 1024 * 1024;

/// The volume label NoCloud looks for (11 bytes, space-padded).
pub const LABEL: [u8; 11] = *b"CIDATA     ";

/// The three files of a seed, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedFiles {
    pub meta_data: String,
    pub network_config: String,
    pub user_data: String,
}

/// A YAML scalar for `s`, safe whatever `s` holds.
fn q(s: &str) -> String {
    // serde_json never fails on a &str.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// Renders the seed files for a VM.
pub fn render(spec: &VmSpec) -> SeedFiles {
    let meta_data = format!(
        "instance-id: {}\nlocal-hostname: {}\n",
        q(&spec.name),
        q(&spec.hostname)
    );

    let net = &spec.network;
    let mut nc = String::from("version: 2\nethernets:\n  eth0:\n    match:\n");
    nc.push_str(&format!("      macaddress: {}\n", q(&net.mac)));
    nc.push_str("    set-name: \"eth0\"\n");
    match &net.address {
        Some(address) => {
            nc.push_str("    dhcp4: false\n    addresses:\n");
            nc.push_str(&format!("      - {}\n", q(address)));
        }
        None => nc.push_str("    dhcp4: true\n"),
    }
    if let Some(gateway) = &net.gateway {
        // gateway4 rather than `routes: [{to: default}]`: every cloud-init
        // release reads it, and so does the test image's line-based init.
        nc.push_str(&format!("    gateway4: {}\n", q(gateway)));
    }
    if !net.dns_servers.is_empty() {
        nc.push_str("    nameservers:\n      addresses:\n");
        for dns in &net.dns_servers {
            nc.push_str(&format!("        - {}\n", q(dns)));
        }
    }

    let mut ud = String::from("#cloud-config\n");
    ud.push_str(&format!("hostname: {}\n", q(&spec.hostname)));
    ud.push_str("users:\n  - name: \"hybrid\"\n    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n");
    ud.push_str("    shell: \"/bin/sh\"\n");
    if !spec.ssh_authorized_keys.is_empty() {
        ud.push_str("    ssh_authorized_keys:\n");
    }
    for key in &spec.ssh_authorized_keys {
        ud.push_str(&format!("      - {}\n", q(key)));
    }

    SeedFiles {
        meta_data,
        network_config: nc,
        user_data: ud,
    }
}

/// Writes the seed volume to `path` (created 0600; replaced if present).
pub fn write(path: &Path, files: &SeedFiles) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_len(SEED_BYTES)?;
    file.seek(SeekFrom::Start(0))?;
    fatfs::format_volume(
        &mut file,
        fatfs::FormatVolumeOptions::new().volume_label(LABEL),
    )?;
    file.seek(SeekFrom::Start(0))?;
    {
        let fs = fatfs::FileSystem::new(&mut file, fatfs::FsOptions::new())?;
        let root = fs.root_dir();
        for (name, content) in [
            ("meta-data", &files.meta_data),
            ("network-config", &files.network_config),
            ("user-data", &files.user_data),
        ] {
            let mut f = root.create_file(name)?;
            f.truncate()?;
            f.write_all(content.as_bytes())?;
            f.flush()?;
        }
        drop(root);
        fs.unmount()?;
    }
    file.sync_all()
}

/// Reads the seed files back from a seed volume (tests and diagnostics).
pub fn read(path: &Path) -> std::io::Result<(String, SeedFiles)> {
    use std::io::Read;
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    let fs = fatfs::FileSystem::new(file, fatfs::FsOptions::new())?;
    let label = fs.volume_label();
    let root = fs.root_dir();
    let get = |name: &str| -> std::io::Result<String> {
        let mut s = String::new();
        root.open_file(name)?.read_to_string(&mut s)?;
        Ok(s)
    };
    let files = SeedFiles {
        meta_data: get("meta-data")?,
        network_config: get("network-config")?,
        user_data: get("user-data")?,
    };
    Ok((label.trim_end().to_string(), files))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hybrid_api::agent::VmNetwork;

    fn spec(address: Option<&str>) -> VmSpec {
        VmSpec {
            name: "c-np-0".into(),
            hostname: "c-np-0".into(),
            vcpus: 1,
            memory_mib: 128,
            disk_gib: 1,
            image: "default".into(),
            role: "node".into(),
            network: VmNetwork {
                vnet: "v".into(),
                vlan_id: Some(42),
                address: address.map(str::to_string),
                gateway: Some("10.0.0.1".into()),
                dns_servers: vec!["10.0.0.2".into()],
                mac: "52:54:00:01:02:03".into(),
            },
            ssh_authorized_keys: vec!["ssh-ed25519 AAAA \"quoted\" user@x".into()],
            boot_timeout_seconds: 60,
            labels: Default::default(),
        }
    }

    #[test]
    fn static_seed_renders_the_contract() {
        let f = render(&spec(Some("10.0.0.5/24")));
        assert_eq!(
            f.meta_data,
            "instance-id: \"c-np-0\"\nlocal-hostname: \"c-np-0\"\n"
        );
        assert!(
            f.network_config
                .contains("macaddress: \"52:54:00:01:02:03\"")
        );
        assert!(f.network_config.contains("      - \"10.0.0.5/24\"\n"));
        assert!(f.network_config.contains("gateway4: \"10.0.0.1\""));
        assert!(f.network_config.contains("dhcp4: false"));
        assert!(f.network_config.contains("        - \"10.0.0.2\"\n"));
        assert!(f.user_data.starts_with("#cloud-config\n"));
        assert!(
            f.user_data
                .contains("      - \"ssh-ed25519 AAAA \\\"quoted\\\" user@x\"\n")
        );
    }

    #[test]
    fn dhcp_seed_asks_for_dhcp_and_keyless_users_have_no_key_list() {
        let mut s = spec(None);
        s.ssh_authorized_keys.clear();
        let f = render(&s);
        assert!(f.network_config.contains("dhcp4: true"));
        assert!(!f.network_config.contains("addresses:\n      -"));
        assert!(!f.user_data.contains("ssh_authorized_keys"));
    }

    #[test]
    fn seed_volume_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed.img");
        let files = render(&spec(Some("10.0.0.5/24")));
        write(&path, &files).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), SEED_BYTES);
        let (label, back) = read(&path).unwrap();
        assert_eq!(label, "CIDATA");
        assert_eq!(back, files);
        // Writing again replaces the volume rather than failing.
        write(&path, &files).unwrap();
        assert_eq!(read(&path).unwrap().1, files);
    }
}
