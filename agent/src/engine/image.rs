//! Node images: directories under the image directory that hold an
//! `image.json` manifest (written by `cargo xtask node-image`):
//!
//! ```json
//! {"name": "default", "disk": "disk.qcow2", "kernel": "vmlinuz",
//!  "initrd": "initrd.img", "cmdline": "console=ttyS0 …"}
//! ```
//!
//! Paths are relative to the image's directory. `kernel` (with `initrd`
//! and `cmdline`) asks for direct kernel boot; without it QEMU boots the
//! disk's own boot loader.
//!
//! A spec names its image exactly (hybrid-host's Kubernetes-version
//! catalogue maps versions to image names): an image the agent does not
//! have is refused, never stood in for. Images fetched from an image store
//! ([`crate::image_store`]) land here too, manifest last.

use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

/// The manifest's file name.
pub const MANIFEST: &str = "image.json";

/// `image.json` as written.
#[derive(Debug, Clone, Deserialize)]
struct Manifest {
    #[allow(dead_code)]
    #[serde(default)]
    name: Option<String>,
    disk: String,
    #[serde(default)]
    kernel: Option<String>,
    #[serde(default)]
    initrd: Option<String>,
    #[serde(default)]
    cmdline: Option<String>,
}

/// A node image, its paths resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The directory name (what specs ask for).
    pub name: String,
    pub dir: PathBuf,
    /// The qcow2 disk VMs get an overlay of.
    pub disk: PathBuf,
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub cmdline: Option<String>,
}

/// Names of the images under `image_dir` (directories with a manifest),
/// sorted. A missing image directory has none.
pub fn list(image_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(image_dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().join(MANIFEST).is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

/// Why an image cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(
        "node image {name:?} is not in {dir}: this host does not have it (hybrid-host's catalogue maps the Kubernetes version to it); images there: {available}"
    )]
    Missing {
        name: String,
        dir: String,
        available: String,
    },
    #[error("{path}: {reason}")]
    Manifest { path: String, reason: String },
}

/// Whether `name` can name an image: one path component, so that a spec
/// never reaches outside the image directory.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && Path::new(name)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        && !name.contains('/')
}

/// Finds the image a spec asks for: `IMAGE_DIR/{name}/`; any other name is
/// refused, naming the images the agent has.
pub fn resolve(image_dir: &Path, name: &str) -> Result<Image, ImageError> {
    if is_plain_name(name) && image_dir.join(name).join(MANIFEST).is_file() {
        return load(image_dir, name);
    }
    let available = list(image_dir);
    Err(ImageError::Missing {
        name: name.to_string(),
        dir: image_dir.display().to_string(),
        available: if available.is_empty() {
            "none".to_string()
        } else {
            available.join(", ")
        },
    })
}

/// Reads and checks one image's manifest.
pub fn load(image_dir: &Path, name: &str) -> Result<Image, ImageError> {
    let dir = image_dir.join(name);
    let path = dir.join(MANIFEST);
    let bad = |reason: String| ImageError::Manifest {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
    let m: Manifest = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let file = |field: &str, rel: &str| -> Result<PathBuf, ImageError> {
        let ok = Path::new(rel)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        if !ok || rel.is_empty() {
            return Err(bad(format!(
                "{field} {rel:?} must be a path inside the image directory"
            )));
        }
        let p = dir.join(rel);
        if !p.is_file() {
            return Err(bad(format!("{field} {} does not exist", p.display())));
        }
        Ok(p)
    };
    let disk = file("disk", &m.disk)?;
    let kernel = m.kernel.as_deref().map(|k| file("kernel", k)).transpose()?;
    let initrd = m.initrd.as_deref().map(|i| file("initrd", i)).transpose()?;
    if initrd.is_some() && kernel.is_none() {
        return Err(bad(
            "initrd without kernel: direct kernel boot needs both".into()
        ));
    }
    Ok(Image {
        name: name.to_string(),
        dir,
        disk,
        kernel,
        initrd,
        cmdline: m.cmdline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(root: &Path, name: &str, manifest: &str) {
        let d = root.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("disk.qcow2"), b"x").unwrap();
        std::fs::write(d.join("vmlinuz"), b"x").unwrap();
        std::fs::write(d.join(MANIFEST), manifest).unwrap();
    }

    #[test]
    fn lists_resolves_and_never_stands_in() {
        let root = tempfile::tempdir().unwrap();
        assert!(list(root.path()).is_empty());
        let err = resolve(root.path(), "k8s-1.31").unwrap_err().to_string();
        assert!(
            err.contains("\"k8s-1.31\"") && err.contains("none"),
            "{err}"
        );

        image(root.path(), "small", r#"{"disk":"disk.qcow2"}"#);
        std::fs::create_dir(root.path().join("not-an-image")).unwrap();
        assert_eq!(list(root.path()), vec!["small"]);
        let err = resolve(root.path(), "k8s-1.31").unwrap_err().to_string();
        assert!(err.contains("small"), "{err}");
        let img = resolve(root.path(), "small").unwrap();
        assert!(img.kernel.is_none());

        image(
            root.path(),
            "default",
            r#"{"name":"default","disk":"disk.qcow2","kernel":"vmlinuz","cmdline":"console=ttyS0"}"#,
        );
        let img = resolve(root.path(), "default").unwrap();
        assert_eq!(img.name, "default");
        assert_eq!(img.kernel, Some(root.path().join("default/vmlinuz")));
        // A `default` image no longer stands in for one the host lacks.
        let err = resolve(root.path(), "k8s-1.31").unwrap_err().to_string();
        assert!(
            err.contains("\"k8s-1.31\"")
                && err.contains("does not have it")
                && err.contains("default, small"),
            "{err}"
        );
        let err = resolve(root.path(), "../default").unwrap_err().to_string();
        assert!(
            err.contains("\"../default\""),
            "a path is never an image name: {err}"
        );
    }

    #[test]
    fn manifests_may_not_leave_their_directory() {
        let root = tempfile::tempdir().unwrap();
        image(root.path(), "evil", r#"{"disk":"../evil/disk.qcow2"}"#);
        let err = load(root.path(), "evil").unwrap_err().to_string();
        assert!(err.contains("inside the image directory"), "{err}");
        image(root.path(), "gone", r#"{"disk":"nope.qcow2"}"#);
        let err = load(root.path(), "gone").unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
    }
}
