//! Host client errors as diagnostics at the attribute they name: the one
//! place that turns a [`ClientError`] (and the service's error envelope in
//! it) into what Terraform shows.
//!
//! May depend on the [`client`](crate::client)'s error type and the
//! framework's diagnostics only.

use crate::client::{ClientError, request_id_line};
use crate::framework::{AttrPath, Diagnostics};

/// Adds `error` to `diags` under `summary`. An API error with a field
/// `target` (and each of its `details`) points at that attribute, and its
/// detail ends with the service's request id, which the service's log
/// lines about the request (and its operation) carry.
pub fn report(diags: &mut Diagnostics, summary: &str, error: &ClientError) {
    let request_id = match error {
        ClientError::Api { error, .. } => error.request_id.as_deref(),
        _ => None,
    };
    let with_id = |detail: String| match request_id {
        Some(id) => format!("{detail}\n\n{}", request_id_line(id)),
        None => detail,
    };
    match error {
        // Details that point nowhere (e.g. each user of an object in use)
        // elaborate the message: keep the message, list them under it.
        ClientError::Api { error, .. }
            if !error.details.is_empty() && error.details.iter().all(|d| d.target.is_none()) =>
        {
            let mut detail = error.message.clone();
            for item in &error.details {
                detail.push_str("\n- ");
                detail.push_str(&item.message);
            }
            let path = error
                .target
                .as_deref()
                .map(AttrPath::parse)
                .unwrap_or_default();
            diags.error_at(path, summary, with_id(detail));
        }
        ClientError::Api { error, .. } if !error.details.is_empty() => {
            for detail in &error.details {
                let path = detail
                    .target
                    .as_deref()
                    .map(AttrPath::parse)
                    .unwrap_or_default();
                diags.error_at(path, summary, with_id(detail.message.clone()));
            }
        }
        ClientError::Api { error, .. } => {
            let path = error
                .target
                .as_deref()
                .map(AttrPath::parse)
                .unwrap_or_default();
            diags.error_at(path, summary, with_id(error.message.clone()));
        }
        other => diags.error(summary, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use hybrid_api::ApiError;

    use super::*;

    fn api(error: ApiError) -> ClientError {
        ClientError::Api { status: 409, error }
    }

    #[test]
    fn details_with_targets_each_point_at_their_attribute() {
        let mut error = ApiError::new("InvalidField", "2 fields are invalid");
        error.details = vec![
            ApiError::new("InvalidField", "bad start").with_target("vm_ip_pool.start"),
            ApiError::new("InvalidField", "bad vlan").with_target("vlan_id"),
        ];
        let mut diags = Diagnostics::new();
        report(&mut diags, "s", &api(error));
        let paths: Vec<_> = diags.iter().map(|d| d.path.clone()).collect();
        assert_eq!(
            paths,
            vec![
                Some(AttrPath::attr("vm_ip_pool").then_attr("start")),
                Some(AttrPath::attr("vlan_id"))
            ]
        );
    }

    #[test]
    fn the_request_id_ends_every_detail_of_an_api_error() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let mut error = ApiError::new("InvalidField", "2 fields are invalid");
        error.request_id = Some(id.into());
        error.details = vec![
            ApiError::new("InvalidField", "bad start").with_target("vm_ip_pool.start"),
            ApiError::new("InvalidField", "bad vlan").with_target("vlan_id"),
        ];
        let mut diags = Diagnostics::new();
        report(&mut diags, "s", &api(error));
        assert_eq!(diags.0.len(), 2);
        for d in &diags.0 {
            assert!(
                d.detail.ends_with(&format!(
                    "request id: {id} (the hybrid-host log's lines about this request carry it)"
                )),
                "{}",
                d.detail
            );
        }
        let mut timeout = Diagnostics::new();
        let waited = ClientError::Timeout {
            operation: "op-1".into(),
            target: "/clusters/c".into(),
            after: "20m".into(),
            request_id: Some(id.into()),
        };
        report(&mut timeout, "s", &waited);
        assert!(
            timeout.0[0]
                .detail
                .starts_with("timed out after 20m waiting for operation op-1")
                && timeout.0[0].detail.ends_with(&request_id_line(id)),
            "{}",
            timeout.0[0].detail
        );
        let mut plain = Diagnostics::new();
        report(&mut plain, "s", &api(ApiError::new("Conflict", "no")));
        assert_eq!(plain.0[0].detail, "no");
    }

    #[test]
    fn untargeted_details_are_listed_under_the_message() {
        let mut error = ApiError::new("InUse", "custom location a is in use by /clusters/x");
        error.details = vec![ApiError::new("InUse", "/clusters/x is placed in a")];
        let mut diags = Diagnostics::new();
        report(&mut diags, "s", &api(error));
        assert_eq!(diags.0.len(), 1);
        assert_eq!(
            diags.0[0].detail,
            "custom location a is in use by /clusters/x\n- /clusters/x is placed in a"
        );
    }
}
