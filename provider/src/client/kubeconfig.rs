//! `POST /v1/clusters/{name}/kubeconfig`: a freshly issued credential. The
//! answer holds a private key, so nothing here logs it (the generic call
//! logs method, path and status only) and the call is never retried: a
//! retry would issue, and audit, a second credential.

use hybrid_api::cluster_id;
use hybrid_api::kubeconfig::{Kubeconfig, KubeconfigRequest};
use reqwest::Method;

use super::{ClientError, HostClient};

impl HostClient {
    /// Issues a kubeconfig for cluster `name`.
    pub async fn issue_kubeconfig(
        &self,
        name: &str,
        request: &KubeconfigRequest,
    ) -> Result<Kubeconfig, ClientError> {
        let path = format!("/v1{}/kubeconfig", cluster_id(name));
        self.call(Method::POST, &path, Some(request), None)
            .await?
            .json()
            .await
    }
}
