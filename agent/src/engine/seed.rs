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
//! Cluster VMs also get the bootstrap contract ([`hybrid_api::bootstrap`]):
//! the document and its secret as files under `hybrid/` of the volume, and
//! in user-data as `write_files` entries plus the `runcmd` that runs the
//! image's bootstrap command with them.
//!
//! The seed carries the guest's SSH keys and the bootstrap secret: it is
//! written 0600 and its content is never logged. Once the guest reported
//! in, the engine writes it again without the secret ([`write`] in place).

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use hybrid_api::agent::VmSpec;
use hybrid_api::bootstrap;

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
    /// `hybrid/bootstrap.json`: the bootstrap document (one JSON line).
    pub bootstrap: Option<String>,
    /// `hybrid/bootstrap-secret.json`: its secret part (one JSON line).
    pub bootstrap_secret: Option<String>,
}

impl SeedFiles {
    /// The files of the volume, by path.
    fn files(&self) -> Vec<(&'static str, &String)> {
        let mut files = vec![
            ("meta-data", &self.meta_data),
            ("network-config", &self.network_config),
            ("user-data", &self.user_data),
        ];
        if let Some(doc) = &self.bootstrap {
            files.push((bootstrap::SEED_DOCUMENT, doc));
        }
        if let Some(secret) = &self.bootstrap_secret {
            files.push((bootstrap::SEED_SECRET, secret));
        }
        files
    }
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

    // One JSON line each: serde_json never fails on these plain structs.
    let doc = spec
        .bootstrap
        .as_ref()
        .and_then(|d| serde_json::to_string(d).ok());
    let secret = doc.as_ref().and(
        spec.bootstrap_secret
            .as_ref()
            .and_then(|s| serde_json::to_string(s).ok()),
    );
    if let Some(doc) = &doc {
        ud.push_str("write_files:\n");
        let mut write_file = |path: &str, permissions: &str, content: &str| {
            ud.push_str(&format!("  - path: {}\n", q(path)));
            ud.push_str(&format!("    permissions: {}\n", q(permissions)));
            ud.push_str(&format!("    content: {}\n", q(content)));
        };
        write_file(bootstrap::DOCUMENT_PATH, "0644", doc);
        if let Some(secret) = &secret {
            write_file(bootstrap::SECRET_PATH, "0600", secret);
        }
        ud.push_str("runcmd:\n");
        let mut command = vec![bootstrap::COMMAND, bootstrap::DOCUMENT_PATH];
        if secret.is_some() {
            command.push(bootstrap::SECRET_PATH);
        }
        let command: Vec<String> = command.into_iter().map(q).collect();
        ud.push_str(&format!("  - [{}]\n", command.join(", ")));
    }

    SeedFiles {
        meta_data,
        network_config: nc,
        user_data: ud,
        bootstrap: doc,
        bootstrap_secret: secret,
    }
}

/// Writes the seed volume to `path` (created 0600; replaced if present).
/// An existing file is truncated and rewritten in place (same inode), so a
/// QEMU that has it open sees the new volume, and nothing of the old one
/// stays in the file.
pub fn write(path: &Path, files: &SeedFiles) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // truncate(true) already freed the old blocks; the volume starts sparse.
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
        for (name, content) in files.files() {
            if let Some((dir, _)) = name.split_once('/') {
                root.create_dir(dir)?;
            }
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
    let optional = |name: &str| -> std::io::Result<Option<String>> {
        match get(name) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    };
    let files = SeedFiles {
        meta_data: get("meta-data")?,
        network_config: get("network-config")?,
        user_data: get("user-data")?,
        bootstrap: optional(bootstrap::SEED_DOCUMENT)?,
        bootstrap_secret: optional(bootstrap::SEED_SECRET)?,
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
            bootstrap: None,
            bootstrap_secret: None,
        }
    }

    fn with_bootstrap(mut s: VmSpec) -> VmSpec {
        s.bootstrap = Some(bootstrap::BootstrapDocument {
            api_version: bootstrap::API_VERSION.into(),
            kind: bootstrap::KIND.into(),
            role: bootstrap::BootstrapRole::Worker,
            init: false,
            cluster_name: "c".into(),
            node_name: "c-np-0".into(),
            kubernetes_version: "1.32.3".into(),
            api_endpoint: "10.0.0.200:6443".into(),
            control_plane_vip: None,
            ca_certificate: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
            ca_cert_hash: "sha256:00".into(),
            labels: [("tier".to_string(), "web".to_string())].into(),
            taints: vec!["dedicated=web:NoSchedule".into()],
            max_pods: 110,
            pod_cidr: "10.244.0.0/16".into(),
            service_cidr: "10.96.0.0/12".into(),
            network_plugin: hybrid_api::cluster::NetworkPlugin::Calico,
        });
        s.bootstrap_secret = Some(bootstrap::BootstrapSecret {
            api_version: bootstrap::API_VERSION.into(),
            bootstrap_token: "abcdef.0123456789abcdef".into(),
            expires_at: "2030-01-01T00:00:00Z".into(),
        });
        s
    }

    #[test]
    fn bootstrap_goes_into_files_and_user_data() {
        let s = with_bootstrap(spec(Some("10.0.0.5/24")));
        let f = render(&s);
        let doc: bootstrap::BootstrapDocument =
            serde_json::from_str(f.bootstrap.as_deref().unwrap()).unwrap();
        assert_eq!(Some(&doc), s.bootstrap.as_ref());
        assert!(!f.bootstrap.as_deref().unwrap().contains('\n'));
        let secret: bootstrap::BootstrapSecret =
            serde_json::from_str(f.bootstrap_secret.as_deref().unwrap()).unwrap();
        assert_eq!(secret.bootstrap_token, "abcdef.0123456789abcdef");
        assert!(
            f.user_data
                .contains("  - path: \"/etc/hybrid/bootstrap.json\"\n    permissions: \"0644\"\n")
        );
        assert!(f.user_data.contains(
            "  - path: \"/etc/hybrid/bootstrap-secret.json\"\n    permissions: \"0600\"\n"
        ));
        assert!(f.user_data.contains(
            "runcmd:\n  - [\"/usr/local/bin/hybrid-bootstrap\", \"/etc/hybrid/bootstrap.json\", \"/etc/hybrid/bootstrap-secret.json\"]\n"
        ));

        // Without the secret: no secret file, no secret in user-data, and
        // the command gets the document only.
        let mut wiped = s.clone();
        wiped.bootstrap_secret = None;
        let f = render(&wiped);
        assert!(f.bootstrap.is_some());
        assert_eq!(f.bootstrap_secret, None);
        assert!(!f.user_data.contains("0123456789abcdef"), "{}", f.user_data);
        assert!(f.user_data.contains(
            "  - [\"/usr/local/bin/hybrid-bootstrap\", \"/etc/hybrid/bootstrap.json\"]\n"
        ));

        // No document: no bootstrap at all, even with a stray secret.
        let mut plain = s;
        plain.bootstrap = None;
        let f = render(&plain);
        assert_eq!((f.bootstrap, f.bootstrap_secret), (None, None));
        assert!(!f.user_data.contains("runcmd"));
    }

    #[test]
    fn rewriting_in_place_drops_the_secret_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed.img");
        let s = with_bootstrap(spec(Some("10.0.0.5/24")));
        write(&path, &render(&s)).unwrap();
        let (_, back) = read(&path).unwrap();
        assert!(back.bootstrap_secret.is_some());
        use std::os::unix::fs::MetadataExt;
        let inode = std::fs::metadata(&path).unwrap().ino();
        let mut wiped = s;
        wiped.bootstrap_secret = None;
        write(&path, &render(&wiped)).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode);
        let (_, back) = read(&path).unwrap();
        assert_eq!(back.bootstrap_secret, None);
        assert!(back.bootstrap.is_some());
        let raw = std::fs::read(&path).unwrap();
        assert!(
            !raw.windows(16).any(|w| w == b"0123456789abcdef"),
            "the token's bytes are gone from the volume"
        );
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
