//! Read-only views of the datacenter: `/v1/kubernetes-versions`,
//! `/v1/vm-sizes` (the catalogues admission uses) and `/v1/hosts` (the
//! inventory, labelled with the driver that reports it).

use axum::Json;
use axum::extract::State;
use hybrid_api::catalog::Semver;
use hybrid_api::{HostList, KubernetesVersion, List, VmSize};

use super::AppState;
use super::failure::Failure;
use super::query::{NoQuery, StrictQuery};

pub async fn kubernetes_versions(
    State(state): State<AppState>,
    _: StrictQuery<NoQuery>,
) -> Json<List<KubernetesVersion>> {
    let mut items = state.driver.kubernetes_versions();
    items.sort_by_key(|v| Semver::parse(&v.version));
    Json(List { items })
}

pub async fn vm_sizes(
    State(state): State<AppState>,
    _: StrictQuery<NoQuery>,
) -> Json<List<VmSize>> {
    Json(List {
        items: state.driver.vm_sizes(),
    })
}

pub async fn hosts(
    State(state): State<AppState>,
    _: StrictQuery<NoQuery>,
) -> Result<Json<HostList>, Failure> {
    let items = state.driver.inventory().await.map_err(|e| {
        tracing::error!(error = %e, "cannot read the datacenter inventory");
        Failure::internal()
    })?;
    Ok(Json(HostList {
        driver: state.driver.name().to_string(),
        simulated: state.driver.simulated(),
        items,
    }))
}
