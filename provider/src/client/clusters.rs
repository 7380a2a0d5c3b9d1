//! `/v1/clusters` calls. Creates, updates and deletes answer with an
//! operation the caller waits for.

use hybrid_api::{Cluster, ClusterSpec, Operation, cluster_id};

use super::objects::Put;
use super::{Accepted, ClientError, HostClient};

impl HostClient {
    /// The cluster, or `None` when it does not exist.
    pub async fn get_cluster(&self, name: &str) -> Result<Option<Cluster>, ClientError> {
        self.get_object(&path(name)).await
    }

    /// Creates (`Put::Create`) or updates the cluster with the whole spec.
    pub async fn put_cluster(
        &self,
        name: &str,
        spec: &ClusterSpec,
        put: Put,
    ) -> Result<Accepted<Cluster>, ClientError> {
        self.put_object(&path(name), spec, put).await
    }

    /// Admission only: the cluster as `spec` would make it.
    pub async fn dry_run_cluster(
        &self,
        name: &str,
        spec: &ClusterSpec,
        put: Put,
    ) -> Result<Cluster, ClientError> {
        self.dry_run_object(&path(name), spec, put).await
    }

    /// Starts deleting the cluster; `None` when it was already gone.
    pub async fn delete_cluster(&self, name: &str) -> Result<Option<Operation>, ClientError> {
        self.delete_object(&path(name)).await
    }
}

fn path(name: &str) -> String {
    format!("/v1{}", cluster_id(name))
}
