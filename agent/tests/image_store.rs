//! Fetching node images from an image store: a tiny HTTP server on
//! loopback serves the disk; the agent fetches it once, checks its
//! SHA-256, refuses (and deletes) a mismatch, and does not follow
//! redirects.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hybrid_agent::engine::image;
use hybrid_agent::image_store::{self, FetchError, Fetched, Source};

const DISK: &[u8] = b"QFI\xfb not really a qcow2, but bytes to hash";

/// Serves `/disk.qcow2` (the disk) and `/moved` (a redirect to it) on
/// 127.0.0.1; counts the requests.
fn serve() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let (count, location) = (hits.clone(), format!("{base}/disk.qcow2"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            count.fetch_add(1, Ordering::SeqCst);
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&request);
            let head = if text.starts_with("GET /disk.qcow2 ") {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    DISK.len()
                )
            } else if text.starts_with("GET /moved ") {
                format!(
                    "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
            };
            let _ = stream.write_all(head.as_bytes());
            if head.starts_with("HTTP/1.1 200") {
                let _ = stream.write_all(DISK);
            }
        }
    });
    (base, hits)
}

fn digest(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes))
}

#[tokio::test]
async fn fetches_once_and_verifies_the_digest() {
    let (base, hits) = serve();
    let images = tempfile::tempdir().unwrap();
    let client = image_store::client().unwrap();
    let source = Source {
        name: "k8s-1.32.3".into(),
        url: format!("{base}/disk.qcow2"),
        sha256: digest(DISK),
    };
    assert!(image::list(images.path()).is_empty());
    let got = image_store::fetch(&client, images.path(), &source)
        .await
        .unwrap();
    assert_eq!(
        got,
        Fetched::Now {
            bytes: DISK.len() as u64
        }
    );
    assert_eq!(image::list(images.path()), ["k8s-1.32.3"]);
    let img = image::resolve(images.path(), "k8s-1.32.3").unwrap();
    assert_eq!(std::fs::read(&img.disk).unwrap(), DISK);
    assert!(img.kernel.is_none());
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Once: the next start finds it and asks nothing.
    let again = image_store::fetch(&client, images.path(), &source)
        .await
        .unwrap();
    assert_eq!(again, Fetched::AlreadyThere);
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Names are immutable: another digest for the same name is refused.
    let changed = Source {
        sha256: "0".repeat(64),
        ..source.clone()
    };
    let e = image_store::fetch(&client, images.path(), &changed)
        .await
        .unwrap_err();
    assert!(
        matches!(e, FetchError::Changed { .. }) && e.to_string().contains("immutable"),
        "{e}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_wrong_digest_is_refused_and_deleted() {
    let (base, hits) = serve();
    let images = tempfile::tempdir().unwrap();
    let client = image_store::client().unwrap();
    let expected = digest(b"some other disk");
    let source = Source {
        name: "k8s-1.33.1".into(),
        url: format!("{base}/disk.qcow2"),
        sha256: expected.clone(),
    };
    let e = image_store::fetch(&client, images.path(), &source)
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(&expected) && text.contains(&digest(DISK)) && text.contains("k8s-1.33.1"),
        "names the image, the expected and the actual digest: {text}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert!(image::list(images.path()).is_empty());
    let left: Vec<_> = std::fs::read_dir(images.path()).unwrap().collect();
    assert!(left.is_empty(), "nothing is left behind: {left:?}");
}

#[tokio::test]
async fn only_the_listed_address_is_fetched() {
    let (base, hits) = serve();
    let images = tempfile::tempdir().unwrap();
    let client = image_store::client().unwrap();
    let source = Source {
        name: "moved".into(),
        url: format!("{base}/moved"),
        sha256: digest(DISK),
    };
    let e = image_store::fetch(&client, images.path(), &source)
        .await
        .unwrap_err();
    assert!(
        matches!(e, FetchError::Status { status: 302, .. }) && e.to_string().contains("redirect"),
        "{e}"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the redirect is not followed"
    );
    assert!(image::list(images.path()).is_empty());
}
