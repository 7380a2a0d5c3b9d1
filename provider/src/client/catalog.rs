//! Read-only calls behind the data sources: the catalogues
//! (`/v1/kubernetes-versions`, `/v1/vm-sizes`), the datacenter inventory
//! (`/v1/hosts`), and plain reads of a cluster and of a cluster's node pools.
//!
//! The cluster and node pool reads are kept here, apart from the resources'
//! client calls, so the data sources depend only on GETs.

use hybrid_api::{HostList, KubernetesVersion, List, NodePool, VmSize};
use reqwest::Method;

use super::{ClientError, HostClient};

impl HostClient {
    /// The Kubernetes version catalogue, sorted by version.
    pub async fn list_kubernetes_versions(&self) -> Result<Vec<KubernetesVersion>, ClientError> {
        self.list("/v1/kubernetes-versions").await
    }

    /// The VM size catalogue.
    pub async fn list_vm_sizes(&self) -> Result<Vec<VmSize>, ClientError> {
        self.list("/v1/vm-sizes").await
    }

    /// The physical hosts and which infrastructure driver reports them.
    pub async fn list_hosts(&self) -> Result<HostList, ClientError> {
        self.call(Method::GET, "/v1/hosts", None::<&()>, None)
            .await?
            .json()
            .await
    }

    /// The node pools of the cluster named `cluster`, or `None` when the
    /// cluster does not exist.
    pub async fn list_nodepools(
        &self,
        cluster: &str,
    ) -> Result<Option<Vec<NodePool>>, ClientError> {
        let path = format!("/v1/clusters/{}/nodepools", segment(cluster));
        match self.list(&path).await {
            Ok(items) => Ok(Some(items)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn list<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Vec<T>, ClientError> {
        let list: List<T> = self
            .call(Method::GET, path, None::<&()>, None)
            .await?
            .json()
            .await?;
        Ok(list.items)
    }
}

/// `name` made safe as one URL path segment. The data sources check names
/// before calling; this is defence in depth so a `/` or `?` can never reach
/// another route.
fn segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn segment_escapes_everything_but_unreserved() {
        assert_eq!(segment("prod-a"), "prod-a");
        assert_eq!(segment("a/b?c"), "a%2Fb%3Fc");
        assert_eq!(segment("é"), "%C3%A9");
    }
}
