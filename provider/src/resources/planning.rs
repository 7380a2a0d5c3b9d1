//! Plan-time steps several resources share: what an update leaves as it
//! was, re-driving unfinished work, whether a plan is a replacement, and
//! the service's own admission rules reported at the attribute at fault
//! (never on a value not known yet).

use hybrid_api::validate::FieldError;
use hybrid_cty::Value;

use crate::framework::path::Step;
use crate::framework::schema::{Attribute, Kind};
use crate::framework::values::set;
use crate::framework::{AttrPath, Diagnostics};

/// The attributes every managed resource has, by which the shared steps
/// find their way in any kind's plan or state.
pub(crate) const ID: &str = "id";
pub(crate) const NAME: &str = "name";
pub(crate) const PROVISIONING_STATE: &str = "provisioning_state";

/// An update of a healthy object either succeeds, leaving it `Succeeded`, or
/// fails with an error (when Terraform checks nothing against the plan), so
/// the plan can say so instead of "known after apply" on every change.
pub(crate) fn keep_succeeded_state(prior: &Value, planned: &mut Value) {
    let succeeded = prior.get(PROVISIONING_STATE).and_then(Value::as_str) == Some("Succeeded");
    if succeeded
        && planned
            .get(PROVISIONING_STATE)
            .is_some_and(Value::is_unknown)
    {
        set(planned, PROVISIONING_STATE, Value::from("Succeeded"));
    }
}

/// Plans every value the configuration leaves to the service as it was.
/// For a change of configuration-only attributes (`timeouts`) alone, which
/// asks nothing of the service, so nothing it reports can change.
/// A value the configuration itself leaves unknown (e.g. `cluster_id =
/// hybrid_cluster.x.id` while that cluster is being replaced) stays
/// unknown: it is not the service's to fill in, and planning the prior
/// value would hide the replacement it forces.
pub(crate) fn keep_prior_values(prior: &Value, config: &Value, planned: &mut Value) {
    if let (Value::Object(old), Value::Object(new)) = (prior, planned) {
        for (name, value) in new.iter_mut() {
            if value.is_unknown()
                && config.get(name).is_none_or(Value::is_fully_known)
                && let Some(before) = old.get(name)
            {
                *value = before.clone();
            }
        }
    }
}

/// When the last operation on an existing object did not succeed (it failed,
/// was canceled, or was still running when Terraform stopped waiting), plan
/// an update even if the configuration did not change: applying the same
/// spec again re-drives the work, so re-applying converges. Everything the
/// work may change (`observed`) is then unknown.
pub(crate) fn redrive_unfinished(prior: &Value, planned: &mut Value, observed: &[&str]) {
    let Some(state) = prior.get(PROVISIONING_STATE).and_then(Value::as_str) else {
        return;
    };
    if state == "Succeeded" || planned.is_null() {
        return;
    }
    set(planned, PROVISIONING_STATE, Value::Unknown);
    for name in observed {
        set(planned, name, Value::Unknown);
    }
}

/// Whether any requires-replace attribute (at any depth of nested objects)
/// differs between `prior` and `planned`: the plan is then a replacement,
/// and an update-shaped check against the service would be meaningless.
pub(crate) fn forces_replacement(attributes: &[Attribute], prior: &Value, planned: &Value) -> bool {
    attributes.iter().any(|attribute| {
        let old = prior.get(attribute.name).unwrap_or(&Value::Null);
        let new = planned.get(attribute.name).unwrap_or(&Value::Null);
        (attribute.requires_replace && old != new)
            || match &attribute.kind {
                Kind::Nested(inner) => forces_replacement(inner, old, new),
                _ => false,
            }
    })
}

/// Reports the shared admission rules' findings at their attributes, except
/// where the configuration is not known yet: a rule must not fire on a
/// placeholder that stood in for an unknown value. `linked` lists groups of
/// fields checked against each other (`pod_cidr` vs `service_cidr`): when
/// one of a group is unknown, no finding about the group is reported.
pub(crate) fn report_rules(
    errors: Vec<FieldError>,
    config: &Value,
    linked: &[&[&str]],
    diags: &mut Diagnostics,
) {
    let unknown = |target: &str| touches_unknown(config, &AttrPath::parse(target));
    for error in errors {
        let blocked = unknown(&error.target)
            || linked.iter().any(|group| {
                group.contains(&error.target.as_str()) && group.iter().any(|f| unknown(f))
            });
        if blocked {
            continue;
        }
        diags.error_at(
            AttrPath::parse(&error.target),
            format!("Invalid {}", error.target),
            error.message,
        );
    }
}

/// Whether `path` in `value` is, or passes through, an unknown value.
fn touches_unknown(value: &Value, path: &AttrPath) -> bool {
    let mut current = value;
    for step in &path.0 {
        if current.is_unknown() {
            return true;
        }
        let next = match step {
            Step::Attribute(name) | Step::Key(name) => current.get(name),
            Step::Index(index) => usize::try_from(*index)
                .ok()
                .and_then(|i| current.elements().and_then(|items| items.get(i))),
        };
        match next {
            Some(next) => current = next,
            None => return false,
        }
    }
    current.is_unknown()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_paths_are_detected_through_collections() {
        let config = Value::object([
            ("name", Value::from("a")),
            ("vnet_id", Value::Unknown),
            (
                "taints",
                Value::list([Value::from("a=b:NoSchedule"), Value::Unknown]),
            ),
            (
                "network",
                Value::object([("pod_cidr", Value::Unknown), ("plugin", Value::from("x"))]),
            ),
        ]);
        assert!(touches_unknown(&config, &AttrPath::parse("vnet_id")));
        assert!(touches_unknown(&config, &AttrPath::parse("taints[1]")));
        assert!(!touches_unknown(&config, &AttrPath::parse("taints[0]")));
        assert!(touches_unknown(
            &config,
            &AttrPath::parse("network.pod_cidr")
        ));
        assert!(!touches_unknown(
            &config,
            &AttrPath::parse("network.plugin")
        ));
        assert!(!touches_unknown(&config, &AttrPath::parse("name")));
        let mut diags = Diagnostics::new();
        report_rules(
            vec![
                FieldError::new("vnet_id", "bad"),
                FieldError::new("name", "bad name"),
                FieldError::new("network.plugin", "overlaps pod_cidr"),
            ],
            &config,
            &[&["network.pod_cidr", "network.plugin"]],
            &mut diags,
        );
        assert_eq!(diags.0.len(), 1);
        assert_eq!(diags.0[0].path, Some(AttrPath::attr("name")));
    }

    #[test]
    fn failed_or_unfinished_objects_plan_an_update_that_redrives_them() {
        let prior = Value::object([
            ("provisioning_state", Value::from("Failed")),
            ("nodes", Value::list([])),
        ]);
        let mut planned = prior.clone();
        redrive_unfinished(&prior, &mut planned, &["nodes"]);
        assert_eq!(planned.get("provisioning_state"), Some(&Value::Unknown));
        assert_eq!(planned.get("nodes"), Some(&Value::Unknown));

        let prior = Value::object([("provisioning_state", Value::from("Succeeded"))]);
        let mut planned = Value::object([("provisioning_state", Value::Unknown)]);
        redrive_unfinished(&prior, &mut planned, &[]);
        keep_succeeded_state(&prior, &mut planned);
        assert_eq!(planned, prior);
    }
}
