//! `GET /v1/operations/{id}[?wait=30s]`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use hybrid_api::Operation;
use serde::Deserialize;

use super::AppState;
use super::failure::Failure;
use super::path::StrictPath;
use super::query::StrictQuery;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitQuery {
    wait: Option<String>,
}

pub async fn get(
    State(state): State<AppState>,
    StrictPath(id): StrictPath<String>,
    StrictQuery(q): StrictQuery<WaitQuery>,
) -> Result<Json<Operation>, Failure> {
    let wait = match q.wait.as_deref() {
        Some(w) => parse_wait(w)?,
        None => Duration::ZERO,
    };
    state
        .operations
        .wait_for(&id, wait, state.shutdown.clone())
        .await?
        .map(Json)
        .ok_or_else(|| Failure::not_found(format!("operation {id} not found")))
}

/// Parses a wait duration: `30s`, `500ms`, `2m` (capped at 60 s).
pub fn parse_wait(value: &str) -> Result<Duration, Failure> {
    let bad = || {
        Failure::bad_request(format!(
            "wait {value:?} is not a duration; use e.g. 500ms, 30s or 2m"
        ))
        .target("wait")
    };
    let (digits, unit) = value
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| value.split_at(i))
        .ok_or_else(bad)?;
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err(bad()),
    };
    Ok(d.min(Duration::from_secs(60)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_durations() {
        assert_eq!(parse_wait("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_wait("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_wait("2m").unwrap(), Duration::from_secs(60), "capped");
        for bad in ["", "s", "10", "1h", "-1s", "1.5s"] {
            let e = parse_wait(bad).unwrap_err();
            assert_eq!(e.error.target.as_deref(), Some("wait"), "{bad}");
        }
    }
}
