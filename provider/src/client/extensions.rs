//! Extension calls: the extension-type catalogue (`/v1/extension-types`)
//! and the extensions of a cluster (`/v1/clusters/{cluster}/extensions/…`)
//! or of the management host (`/v1/management-host/extensions/…`).
//!
//! Extensions are addressed by their target's id (`/clusters/c1` or
//! `/management-host`) and name; callers check both before calling, so the
//! path can never reach another route. Creates, updates and deletes answer
//! with an operation.

use hybrid_api::extension::{Extension, ExtensionSpec, ExtensionType, extension_id};
use hybrid_api::{List, Operation};
use reqwest::Method;

use super::objects::Put;
use super::{Accepted, ClientError, HostClient};

impl HostClient {
    /// The whole extension-type catalogue.
    pub async fn list_extension_types(&self) -> Result<Vec<ExtensionType>, ClientError> {
        let list: List<ExtensionType> = self
            .call(Method::GET, "/v1/extension-types", None::<&()>, None)
            .await?
            .json()
            .await?;
        Ok(list.items)
    }

    /// One extension type, or `None` when the catalogue has no such type.
    /// `name` must already be a DNS label (it becomes a path segment).
    pub async fn get_extension_type(
        &self,
        name: &str,
    ) -> Result<Option<ExtensionType>, ClientError> {
        self.get_object(&format!("/v1/extension-types/{name}"))
            .await
    }

    /// The extension, or `None` when it (or its target cluster) does not exist.
    pub async fn get_extension(
        &self,
        target_id: &str,
        name: &str,
    ) -> Result<Option<Extension>, ClientError> {
        self.get_object(&path(target_id, name)).await
    }

    /// Creates (`Put::Create`) or updates the extension with the whole spec.
    /// `configuration_protected_settings` absent keeps the stored ones.
    pub async fn put_extension(
        &self,
        target_id: &str,
        name: &str,
        spec: &ExtensionSpec,
        put: Put,
    ) -> Result<Accepted<Extension>, ClientError> {
        self.put_object(&path(target_id, name), spec, put).await
    }

    /// Admission only: the extension as `spec` would make it.
    pub async fn dry_run_extension(
        &self,
        target_id: &str,
        name: &str,
        spec: &ExtensionSpec,
        put: Put,
    ) -> Result<Extension, ClientError> {
        self.dry_run_object(&path(target_id, name), spec, put).await
    }

    /// Starts deleting the extension; `None` when it was already gone.
    pub async fn delete_extension(
        &self,
        target_id: &str,
        name: &str,
    ) -> Result<Option<Operation>, ClientError> {
        self.delete_object(&path(target_id, name)).await
    }
}

fn path(target_id: &str, name: &str) -> String {
    format!("/v1{}", extension_id(target_id, name))
}
