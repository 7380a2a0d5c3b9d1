//! Node images fetched from an image store. `hybrid-agent run
//! --image-sources FILE` names, per image, the URL of its qcow2 disk and
//! the disk's SHA-256:
//!
//! ```toml
//! [[images]]
//! name = "k8s-1.32.3"
//! url = "https://images.example.com/k8s-1.32.3.qcow2"
//! sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//! ```
//!
//! The agent fetches each image it does not have yet, once, into its image
//! directory (`IMAGE_DIR/{name}/disk.qcow2`), checks the digest — a
//! mismatch is refused and the download deleted — and writes the manifest
//! last (`{"name": …, "disk": "disk.qcow2"}`: QEMU boots the disk's own boot
//! loader), so the heartbeat reports an image only once it is whole and
//! verified. `source.json` beside it records where it came from: the next
//! start sees the image is there. Image names are immutable: VMs' overlays
//! are backed by the disk, so a name listed again with another digest is
//! refused, not replaced. Only the listed URLs are fetched; redirects are
//! not followed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::engine::image::{self, MANIFEST};

/// Where a fetched image's origin is recorded, beside its manifest.
pub const SOURCE: &str = "source.json";
/// The disk's file name inside a fetched image's directory.
pub const DISK: &str = "disk.qcow2";

/// One image to fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The image's name: its directory under the image directory, and what
    /// hybrid-host's catalogue names.
    pub name: String,
    /// `http://` or `https://` address of the qcow2 disk.
    pub url: String,
    /// SHA-256 of the disk, 64 hex digits.
    pub sha256: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourcesFile {
    #[serde(default)]
    images: Vec<Source>,
}

/// Why the `--image-sources` file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    #[error("cannot read image sources {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("image sources {path}: {message}")]
    Invalid { path: String, message: String },
}

/// Why one image could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "image {name}: the download from {url} has SHA-256 {actual}, but {expected} was expected; it was deleted"
    )]
    Digest {
        name: String,
        url: String,
        expected: String,
        actual: String,
    },
    #[error("image {name}: {url} answered HTTP {status}{hint}")]
    Status {
        name: String,
        url: String,
        status: u16,
        hint: &'static str,
    },
    #[error("image {name}: fetching {url}: {message}")]
    Transfer {
        name: String,
        url: String,
        message: String,
    },
    #[error(
        "image {name} is already in the image directory from {url} with SHA-256 {have}, not {wanted}: image names are immutable (VMs' disks are backed by it); give the new image a new name"
    )]
    Changed {
        name: String,
        url: String,
        have: String,
        wanted: String,
    },
    #[error("image {name}: {path}: {source}")]
    Io {
        name: String,
        path: String,
        source: std::io::Error,
    },
}

/// What [`fetch`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// Fetched and verified now: this many bytes.
    Now { bytes: u64 },
    /// Already fetched (same digest) earlier.
    AlreadyThere,
    /// A local image of that name exists (not from a store): kept as is.
    LocalImage,
}

/// Reads and checks the `--image-sources` file.
pub fn load(path: &Path) -> Result<Vec<Source>, SourcesError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| SourcesError::Read {
        path: shown.clone(),
        source,
    })?;
    parse(&text).map_err(|message| SourcesError::Invalid {
        path: shown,
        message,
    })
}

/// Parses and checks the file's text: plain, unique names; `http(s)` URLs;
/// 64-hex-digit digests (kept lower-case).
pub fn parse(text: &str) -> Result<Vec<Source>, String> {
    let file: SourcesFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::with_capacity(file.images.len());
    for (i, mut s) in file.images.into_iter().enumerate() {
        if !image::is_plain_name(&s.name) {
            return Err(format!(
                "images[{i}].name {:?} is not an image name: one path component, not starting with '.'",
                s.name
            ));
        }
        if !seen.insert(s.name.clone()) {
            return Err(format!(
                "images[{i}].name {:?} is listed twice: names must be unique",
                s.name
            ));
        }
        let scheme_ok = reqwest::Url::parse(&s.url)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
        if !scheme_ok {
            return Err(format!(
                "images[{i}].url {:?} (image {}) is not an http:// or https:// URL",
                s.url, s.name
            ));
        }
        s.sha256 = s.sha256.to_ascii_lowercase();
        if s.sha256.len() != 64 || !s.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "images[{i}].sha256 {:?} (image {}) is not a SHA-256: 64 hex digits",
                s.sha256, s.name
            ));
        }
        out.push(s);
    }
    Ok(out)
}

/// The HTTP client image fetches use: no redirects (only the listed
/// address is fetched), bounded connects and stalls, no overall bound (a
/// disk may take long).
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(120))
        .build()
}

/// Fetches one image into `image_dir` unless it is there (see the module
/// doc).
pub async fn fetch(
    client: &reqwest::Client,
    image_dir: &Path,
    source: &Source,
) -> Result<Fetched, FetchError> {
    let name = &source.name;
    let dir = image_dir.join(name);
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source: std::io::Error| FetchError::Io {
            name: name.clone(),
            path,
            source,
        }
    };
    if dir.join(MANIFEST).is_file() {
        let recorded = match std::fs::read(dir.join(SOURCE)) {
            Ok(bytes) => serde_json::from_slice::<Source>(&bytes).ok(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Fetched::LocalImage),
            Err(e) => return Err(io(&dir.join(SOURCE))(e)),
        };
        return match recorded {
            Some(r) if r.sha256 == source.sha256 => Ok(Fetched::AlreadyThere),
            Some(r) => Err(FetchError::Changed {
                name: name.clone(),
                url: r.url,
                have: r.sha256,
                wanted: source.sha256.clone(),
            }),
            None => Err(FetchError::Io {
                name: name.clone(),
                path: dir.join(SOURCE).display().to_string(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not a source record"),
            }),
        };
    }
    tokio::fs::create_dir_all(image_dir)
        .await
        .map_err(io(image_dir))?;
    // Hidden and outside the image's directory: never listed as an image.
    let partial = image_dir.join(format!(".{name}.download"));
    let result = download(client, source, &partial).await;
    let (bytes, actual) = match result {
        Ok(done) => done,
        Err(e) => {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(e);
        }
    };
    if actual != source.sha256 {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(FetchError::Digest {
            name: name.clone(),
            url: source.url.clone(),
            expected: source.sha256.clone(),
            actual,
        });
    }
    tokio::fs::create_dir_all(&dir).await.map_err(io(&dir))?;
    let disk = dir.join(DISK);
    tokio::fs::rename(&partial, &disk)
        .await
        .map_err(io(&disk))?;
    let record = serde_json::to_vec_pretty(source).unwrap_or_default();
    write_then_rename(&dir.join(SOURCE), &record)
        .await
        .map_err(io(&dir.join(SOURCE)))?;
    let manifest = serde_json::json!({ "name": name, "disk": DISK });
    write_then_rename(&dir.join(MANIFEST), manifest.to_string().as_bytes())
        .await
        .map_err(io(&dir.join(MANIFEST)))?;
    Ok(Fetched::Now { bytes })
}

/// Streams `source.url` into `to`, hashing as it goes: (bytes, hex digest).
async fn download(
    client: &reqwest::Client,
    source: &Source,
    to: &Path,
) -> Result<(u64, String), FetchError> {
    let transfer = |message: String| FetchError::Transfer {
        name: source.name.clone(),
        url: source.url.clone(),
        message,
    };
    let mut response = client
        .get(&source.url)
        .send()
        .await
        .map_err(|e| transfer(error_chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::Status {
            name: source.name.clone(),
            url: source.url.clone(),
            status: status.as_u16(),
            hint: if status.is_redirection() {
                " (a redirect: only the listed address is fetched; list the final one)"
            } else {
                ""
            },
        });
    }
    let mut file = tokio::fs::File::create(to)
        .await
        .map_err(|e| transfer(format!("creating {}: {e}", to.display())))?;
    let mut hasher = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut bytes = 0u64;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transfer(error_chain(&e)))?
    {
        hasher.update(&chunk);
        bytes += chunk.len() as u64;
        file.write_all(&chunk)
            .await
            .map_err(|e| transfer(format!("writing {}: {e}", to.display())))?;
    }
    file.sync_all()
        .await
        .map_err(|e| transfer(format!("writing {}: {e}", to.display())))?;
    Ok((bytes, hex::encode(hasher.finish())))
}

async fn write_then_rename(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = PathBuf::from(path);
    tmp.set_extension("tmp");
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, path).await
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// Fetches every listed image, one after another, logging each outcome (a
/// failed image is skipped: the others still come).
pub async fn fetch_all(image_dir: PathBuf, sources: Vec<Source>) {
    let client = match client() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %error_chain(&e), "cannot build the image store client; no image is fetched");
            return;
        }
    };
    for s in &sources {
        match fetch(&client, &image_dir, s).await {
            Ok(Fetched::Now { bytes }) => {
                tracing::info!(image = %s.name, url = %s.url, bytes, "node image fetched and verified")
            }
            Ok(Fetched::AlreadyThere) => {
                tracing::debug!(image = %s.name, "node image already fetched")
            }
            Ok(Fetched::LocalImage) => tracing::warn!(
                image = %s.name,
                url = %s.url,
                "a local image of this name is in the image directory: it is used, the listed one is not fetched"
            ),
            Err(e) => tracing::error!(error = %e, "node image not fetched"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_file_is_checked() {
        let good = format!(
            "[[images]]\nname = \"k8s-1.32.3\"\nurl = \"http://127.0.0.1:8080/a.qcow2\"\nsha256 = \"{}\"\n",
            "AB".repeat(32)
        );
        let s = parse(&good).unwrap();
        assert_eq!(s[0].sha256, "ab".repeat(32));
        assert!(parse("").unwrap().is_empty());
        for (text, wants) in [
            (
                good.replace("k8s-1.32.3", "../x"),
                "images[0].name \"../x\"",
            ),
            (
                good.replace("http://127.0.0.1:8080/a.qcow2", "file:///etc/passwd"),
                "images[0].url \"file:///etc/passwd\"",
            ),
            (
                good.replace(&"AB".repeat(32), "abc"),
                "images[0].sha256 \"abc\"",
            ),
            (
                format!("{good}{good}"),
                "images[1].name \"k8s-1.32.3\" is listed twice",
            ),
            (good.replace("sha256", "sha512"), "sha512"),
        ] {
            let e = parse(&text).unwrap_err();
            assert!(e.contains(wants), "{text}: {e}");
        }
    }
}
