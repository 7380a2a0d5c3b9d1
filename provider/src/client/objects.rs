//! Generic calls on the service's declarative objects (custom locations,
//! clusters, node pools): GET, PUT of the whole spec (create, update or
//! dry run) and DELETE, all addressed by the object's API path.
//!
//! The typed calls in `custom_locations.rs`, `clusters.rs` and
//! `nodepools.rs` are thin wrappers that fix the path and the types.

use hybrid_api::Operation;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Accepted, ClientError, HostClient, Response};

/// How a PUT is meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// Create only: `If-None-Match: *`, so an existing object is never
    /// silently taken over (the service answers 412).
    Create,
    /// Create or replace the spec (idempotent).
    Upsert,
}

impl HostClient {
    /// The object at `path`, or `None` when it does not exist.
    pub(super) async fn get_object<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Option<T>, ClientError> {
        match self.call(Method::GET, path, None::<&()>, None).await {
            Ok(response) => response.json().await.map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// PUTs the whole spec. The answer is the object (done at once) or the
    /// operation that will do the work.
    pub(super) async fn put_object<S: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        spec: &S,
        put: Put,
    ) -> Result<Accepted<T>, ClientError> {
        let headers: &[(&str, &str)] = match put {
            Put::Create => &[("If-None-Match", "*")],
            Put::Upsert => &[],
        };
        let response = self
            .call_with(Method::PUT, path, Some(spec), headers)
            .await?;
        accepted(response).await
    }

    /// Runs the service's full admission on `spec` without storing anything
    /// (`?dry_run=true`): the object as it would be, or the refusal.
    pub(super) async fn dry_run_object<S: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        spec: &S,
        put: Put,
    ) -> Result<T, ClientError> {
        let headers: &[(&str, &str)] = match put {
            Put::Create => &[("If-None-Match", "*")],
            Put::Upsert => &[],
        };
        self.call_with(
            Method::PUT,
            &format!("{path}?dry_run=true"),
            Some(spec),
            headers,
        )
        .await?
        .json()
        .await
    }

    /// Starts deleting the object. `None` when there is nothing to wait for:
    /// it was already gone (404) or went at once (204).
    pub(super) async fn delete_object(&self, path: &str) -> Result<Option<Operation>, ClientError> {
        match self.call(Method::DELETE, path, None::<&()>, None).await {
            Ok(response) if response.status() == StatusCode::NO_CONTENT => Ok(None),
            Ok(response) => response.json().await.map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// `202 Accepted` carries an operation; any other success, the object.
pub(super) async fn accepted<T: DeserializeOwned>(
    response: Response,
) -> Result<Accepted<T>, ClientError> {
    if response.status() == StatusCode::ACCEPTED {
        Ok(Accepted::Queued(Box::new(response.json().await?)))
    } else {
        Ok(Accepted::Done(Box::new(response.json().await?)))
    }
}
