//! Asking the service to admit a planned change without doing it
//! (`?dry_run=true`), and turning its answer into plan diagnostics at the
//! attribute at fault.

use hybrid_api::{ApiError, codes};
use hybrid_cty::Value;

use super::planning::forces_replacement;
use crate::client::{ClientError, HostClient, Put};
use crate::errors;
use crate::framework::path::Step;
use crate::framework::{AttrPath, Diagnostics, PlanContext, Schema};

/// How to ask the service to check the planned change (`?dry_run=true`),
/// or `None` when it cannot or need not be asked: no configured client, a
/// configuration with values not known until apply, or a replacement (the
/// create half of it is planned, and checked, separately).
pub(crate) fn put<'a>(
    ctx: &PlanContext<'a, HostClient>,
    planned: &Value,
    schema: &Schema,
) -> Option<(&'a HostClient, Put)> {
    let client = ctx.data?;
    if !ctx.config.is_fully_known() {
        return None;
    }
    if ctx.prior.is_null() {
        return Some((client, Put::Create));
    }
    if forces_replacement(&schema.attributes, ctx.prior, planned) {
        return None;
    }
    Some((client, Put::Upsert))
}

/// The outcome of asking the service to admit a change without doing it
/// (`?dry_run=true`). Real admission errors become plan errors at the
/// attribute they name. A missing referenced object (404: the vnet, custom
/// location or cluster is created in the same apply), an existing object on
/// create (412, or an immutability complaint about it: a replacement in
/// progress, or a take-over the create will refuse), and a service that
/// cannot answer never fail the plan: the apply checks again.
pub(crate) fn outcome<T>(
    answer: Result<T, ClientError>,
    creating: bool,
    summary: &str,
    schema: &Schema,
    diags: &mut Diagnostics,
) -> Option<T> {
    let error = match answer {
        Ok(object) => return Some(object),
        Err(error) => error,
    };
    match &error {
        ClientError::Api { status, error: api }
            if admission_refusal(*status, &api.code, creating) =>
        {
            let located = ClientError::Api {
                status: *status,
                error: locate(api, schema),
            };
            errors::report(diags, summary, &located);
        }
        other => tracing::debug!(error = %other, "dry run gave no verdict; the apply will check"),
    }
    None
}

/// Whether an error answer to a dry run is the service refusing the change
/// itself (as opposed to "cannot tell yet").
fn admission_refusal(status: u16, code: &str, creating: bool) -> bool {
    if code == codes::NOT_FOUND || code == codes::PRECONDITION_FAILED {
        return false;
    }
    if creating && code == codes::FIELD_IMMUTABLE {
        return false;
    }
    matches!(status, 400 | 409 | 422)
}

/// `error` with each `target` kept only when it names an attribute of
/// `schema`: a target such as the vnet's `vm_ip_pool` (address exhaustion)
/// is another object's field, and pointing at it here would mislead.
fn locate(error: &ApiError, schema: &Schema) -> ApiError {
    let known = |target: &Option<String>| {
        target.clone().filter(|t| {
            matches!(AttrPath::parse(t).0.first(),
                Some(Step::Attribute(name)) if schema.attributes.iter().any(|a| a.name == name))
        })
    };
    ApiError {
        code: error.code.clone(),
        message: error.message.clone(),
        target: known(&error.target),
        request_id: error.request_id.clone(),
        details: error
            .details
            .iter()
            .map(|detail| locate(detail, schema))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Attribute;

    fn api(status: u16, code: &str, target: Option<&str>) -> ClientError {
        ClientError::Api {
            status,
            error: ApiError {
                code: code.into(),
                message: format!("{code} message"),
                target: target.map(str::to_string),
                details: Vec::new(),
                request_id: None,
            },
        }
    }

    fn schema() -> Schema {
        Schema::new(
            "t",
            vec![
                Attribute::string("kubernetes_version").optional(),
                Attribute::number("node_count").optional(),
            ],
        )
    }

    #[test]
    fn dry_run_reports_refusals_at_known_attributes_only() {
        let mut diags = Diagnostics::new();
        let answer: Result<(), _> = Err(api(
            400,
            codes::VERSION_NOT_ALLOWED,
            Some("kubernetes_version"),
        ));
        assert!(outcome(answer, false, "s", &schema(), &mut diags).is_none());
        assert_eq!(diags.0[0].path, Some(AttrPath::attr("kubernetes_version")));
        assert!(diags.0[0].detail.contains("VersionNotAllowed message"));

        // Another object's field: reported, but not at a foreign path.
        let mut diags = Diagnostics::new();
        let answer: Result<(), _> = Err(api(409, codes::POOL_EXHAUSTED, Some("vm_ip_pool")));
        outcome(answer, false, "s", &schema(), &mut diags);
        assert_eq!(diags.0.len(), 1);
        assert_eq!(diags.0[0].path, None);
    }

    #[test]
    fn dry_run_never_fails_the_plan_for_missing_references_or_an_unreachable_service() {
        let ignored = [
            (api(404, codes::NOT_FOUND, Some("vnet_id")), false),
            (api(412, codes::PRECONDITION_FAILED, None), true),
            (api(409, codes::FIELD_IMMUTABLE, Some("os_sku")), true),
            (api(500, codes::INTERNAL, None), false),
            (api(405, codes::BAD_REQUEST, None), false),
            (
                ClientError::Unreachable {
                    endpoint: "https://x".into(),
                    cause: "refused".into(),
                },
                false,
            ),
        ];
        for (error, creating) in ignored {
            let mut diags = Diagnostics::new();
            let text = error.to_string();
            assert!(outcome::<()>(Err(error), creating, "s", &schema(), &mut diags).is_none());
            assert!(diags.is_empty(), "{text} should not fail the plan");
        }
        // An immutability refusal on an update is real.
        let mut diags = Diagnostics::new();
        outcome::<()>(
            Err(api(409, codes::FIELD_IMMUTABLE, Some("node_count"))),
            false,
            "s",
            &schema(),
            &mut diags,
        );
        assert!(diags.has_errors());
    }
}
