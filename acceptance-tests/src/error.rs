//! The harness's error type: what went wrong while setting up or running a step.

use std::path::PathBuf;

/// Shorthand used by the harness and by tests (`fn t() -> Result<()>`).
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a harness step failed. Messages carry the command output so that a
/// failing test shows what Terraform or the host said.
///
/// `Debug` prints the same text as `Display`: a test returning `Err` is
/// reported through `Debug`, and raw struct dumps of multi-line output are
/// unreadable.
#[derive(thiserror::Error)]
pub enum Error {
    /// `cargo build` of the binaries under test failed.
    #[error("building {what} with `{command}` failed:\n{output}")]
    Build {
        what: String,
        command: String,
        output: String,
    },
    /// A binary the harness needs is not where it should be.
    #[error("binary {path} not found: {hint}")]
    MissingBinary { path: PathBuf, hint: String },
    /// A file-system or process operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `hybrid-host` did not come up.
    #[error("hybrid-host did not become ready: {reason}\n--- host log ({log}) ---\n{log_tail}")]
    HostStart {
        reason: String,
        log: PathBuf,
        log_tail: String,
    },
    /// An HTTP call to the host API failed below the HTTP level.
    #[error("{method} {url}: {source}")]
    Http {
        method: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// A command exited with an unexpected status.
    #[error(
        "`{command}` exited with {code:?}, expected {expected}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    )]
    Command {
        command: String,
        code: Option<i32>,
        expected: String,
        stdout: String,
        stderr: String,
    },
    /// JSON output could not be parsed.
    #[error("parsing JSON from {what}: {source}\n--- text ---\n{text}")]
    Json {
        what: String,
        text: String,
        #[source]
        source: serde_json::Error,
    },
    /// A check made by the test did not hold.
    #[error("check failed: {0}")]
    Check(String),
    /// A fixture the test needs (e.g. its PostgreSQL database) could not
    /// be set up.
    #[error("test set-up failed: {0}")]
    Setup(String),
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Fails the step with [`Error::Check`] unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::Error::Check(format!($($fmt)+)));
        }
    };
}
