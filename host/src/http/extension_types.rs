//! `/v1/extension-types`: the extension-type catalogue (release trains,
//! default namespaces, Linux requirement and the JSON Schemas of the
//! settings), as the driver serves it.

use axum::Json;
use axum::extract::State;
use hybrid_api::List;
use hybrid_api::extension::ExtensionType;

use super::AppState;
use super::failure::Failure;
use super::path::StrictPath;
use super::query::{NoQuery, StrictQuery};

pub async fn list(
    State(state): State<AppState>,
    _: StrictQuery<NoQuery>,
) -> Json<List<ExtensionType>> {
    let mut items = state.driver.extension_types();
    items.sort_by(|a, b| a.name.cmp(&b.name));
    Json(List { items })
}

pub async fn get(
    State(state): State<AppState>,
    _: StrictQuery<NoQuery>,
    StrictPath(name): StrictPath<String>,
) -> Result<Json<ExtensionType>, Failure> {
    let types = state.driver.extension_types();
    match types.into_iter().find(|t| t.name == name) {
        Some(t) => Ok(Json(t)),
        None => {
            let known: Vec<String> = state
                .driver
                .extension_types()
                .into_iter()
                .map(|t| t.name)
                .collect();
            Err(Failure::not_found(format!(
                "extension type {name} not found; types: {}",
                known.join(", ")
            )))
        }
    }
}
