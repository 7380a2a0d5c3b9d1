//! `/v1/custom-locations` calls. The service applies a custom location
//! synchronously (201/200 with the object), so no operation is involved.

use hybrid_api::{CustomLocation, CustomLocationSpec, Operation, custom_location_id};

use super::objects::Put;
use super::{Accepted, ClientError, HostClient};

impl HostClient {
    /// The custom location, or `None` when it does not exist.
    pub async fn get_custom_location(
        &self,
        name: &str,
    ) -> Result<Option<CustomLocation>, ClientError> {
        self.get_object(&path(name)).await
    }

    /// Creates (`Put::Create`) or updates the custom location.
    pub async fn put_custom_location(
        &self,
        name: &str,
        spec: &CustomLocationSpec,
        put: Put,
    ) -> Result<Accepted<CustomLocation>, ClientError> {
        self.put_object(&path(name), spec, put).await
    }

    /// Admission only: the custom location as `spec` would make it.
    pub async fn dry_run_custom_location(
        &self,
        name: &str,
        spec: &CustomLocationSpec,
        put: Put,
    ) -> Result<CustomLocation, ClientError> {
        self.dry_run_object(&path(name), spec, put).await
    }

    /// Deletes the custom location (`InUse` while clusters use it).
    pub async fn delete_custom_location(
        &self,
        name: &str,
    ) -> Result<Option<Operation>, ClientError> {
        self.delete_object(&path(name)).await
    }
}

fn path(name: &str) -> String {
    format!("/v1{}", custom_location_id(name))
}
