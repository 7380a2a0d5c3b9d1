//! `/v1/clusters/{cluster}/nodepools` calls. Creates, updates and deletes
//! answer with an operation; the service queues the operations of one
//! cluster and runs them one at a time.

use hybrid_api::{NodePool, NodePoolSpec, Operation, nodepool_id};

use super::objects::Put;
use super::{Accepted, ClientError, HostClient};

impl HostClient {
    /// The node pool, or `None` when it (or its cluster) does not exist.
    pub async fn get_nodepool(
        &self,
        cluster: &str,
        name: &str,
    ) -> Result<Option<NodePool>, ClientError> {
        self.get_object(&path(cluster, name)).await
    }

    /// Creates (`Put::Create`) or updates the pool with the whole spec.
    pub async fn put_nodepool(
        &self,
        cluster: &str,
        name: &str,
        spec: &NodePoolSpec,
        put: Put,
    ) -> Result<Accepted<NodePool>, ClientError> {
        self.put_object(&path(cluster, name), spec, put).await
    }

    /// Admission only: the pool as `spec` would make it.
    pub async fn dry_run_nodepool(
        &self,
        cluster: &str,
        name: &str,
        spec: &NodePoolSpec,
        put: Put,
    ) -> Result<NodePool, ClientError> {
        self.dry_run_object(&path(cluster, name), spec, put).await
    }

    /// Starts deleting the pool; `None` when it was already gone.
    pub async fn delete_nodepool(
        &self,
        cluster: &str,
        name: &str,
    ) -> Result<Option<Operation>, ClientError> {
        self.delete_object(&path(cluster, name)).await
    }
}

fn path(cluster: &str, name: &str) -> String {
    format!("/v1{}", nodepool_id(cluster, name))
}
