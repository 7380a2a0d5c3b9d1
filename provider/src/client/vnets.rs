//! `/v1/vnets` calls.

use hybrid_api::{Operation, Reservation, Vnet, VnetPatch, VnetSpec};
use reqwest::Method;

use super::objects::{Put, accepted};
use super::{Accepted, ClientError, HostClient};

impl HostClient {
    /// The vnet, or `None` when it does not exist.
    pub async fn get_vnet(&self, name: &str) -> Result<Option<Vnet>, ClientError> {
        match self
            .call(Method::GET, &vnet_path(name), None::<&()>, None)
            .await
        {
            Ok(response) => response.json().await.map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates the vnet, refusing (412) to take over one that already exists.
    pub async fn create_vnet(
        &self,
        name: &str,
        spec: &VnetSpec,
    ) -> Result<Accepted<Vnet>, ClientError> {
        let response = self
            .call_with(
                Method::PUT,
                &vnet_path(name),
                Some(spec),
                &[("If-None-Match", "*")],
            )
            .await?;
        accepted(response).await
    }

    /// Admission only: the vnet as `spec` would make it, or the refusal
    /// (e.g. an `address_prefix` overlapping another vnet on its segment).
    pub async fn dry_run_vnet(
        &self,
        name: &str,
        spec: &VnetSpec,
        put: Put,
    ) -> Result<Vnet, ClientError> {
        self.dry_run_object(&vnet_path(name), spec, put).await
    }

    pub async fn patch_vnet(
        &self,
        name: &str,
        patch: &VnetPatch,
    ) -> Result<Accepted<Vnet>, ClientError> {
        let response = self
            .call(Method::PATCH, &vnet_path(name), Some(patch), None)
            .await?;
        accepted(response).await
    }

    /// Starts deleting the vnet; `None` when it was already gone.
    pub async fn delete_vnet(&self, name: &str) -> Result<Option<Operation>, ClientError> {
        match self
            .call(Method::DELETE, &vnet_path(name), None::<&()>, None)
            .await
        {
            Ok(response) => response.json().await.map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The addresses currently allocated in the vnet's pools.
    pub async fn list_reservations(&self, name: &str) -> Result<Vec<Reservation>, ClientError> {
        let list: hybrid_api::List<Reservation> = self
            .call(
                Method::GET,
                &format!("{}/reservations", vnet_path(name)),
                None::<&()>,
                None,
            )
            .await?
            .json()
            .await?;
        Ok(list.items)
    }
}

fn vnet_path(name: &str) -> String {
    format!("/v1/vnets/{name}")
}
