//! The `timeouts = { create, update, delete }` attribute every resource has.

use std::time::Duration;

use hybrid_cty::Value;

use super::schema::{Attribute, validators};

/// The attribute's name.
pub const NAME: &str = "timeouts";
pub const CREATE: &str = "create";
pub const UPDATE: &str = "update";
pub const DELETE: &str = "delete";

/// The schema attribute, with the resource's defaults in its description.
pub fn attribute(default: Duration) -> Attribute {
    let default = humanize(default);
    let one = |name: &'static str| {
        Attribute::string(name)
            .optional()
            .description(format!(
                "How long to wait for {name} to finish, e.g. `30m`, `1h30m` (default `{default}`)."
            ))
            .validator(validators::string_rule(check))
    };
    Attribute::nested(NAME, vec![one(CREATE), one(UPDATE), one(DELETE)])
        .optional()
        .description("How long Terraform waits for each kind of operation.")
}

/// The timeout for `operation` from a plan or state, else `default`.
pub fn get(object: &Value, operation: &str, default: Duration) -> Duration {
    object
        .get(NAME)
        .and_then(|t| t.get(operation))
        .and_then(Value::as_str)
        .and_then(|text| parse(text).ok())
        .unwrap_or(default)
}

fn check(text: &str) -> Result<(), String> {
    parse(text).map(|_| ()).map_err(|rule| {
        format!(
            "timeout {text:?} is not a duration: {rule} (use Go-style durations such as \"45s\", \"30m\", \"2h\", \"1h30m\")"
        )
    })
}

/// `90s` → "1m30s": a duration as [`parse`] reads it back (whole seconds),
/// for descriptions and messages.
pub fn humanize(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// Parses Go-style durations made of `h`, `m`, `s` and `ms` parts.
pub fn parse(text: &str) -> Result<Duration, String> {
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err("it is empty".into());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or("a number must be followed by a unit (h, m, s or ms)")?;
        if digits == 0 {
            return Err(format!("expected a number at {rest:?}"));
        }
        let number: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{:?} is not a number", &rest[..digits]))?;
        rest = &rest[digits..];
        let (unit, seconds) = if rest.starts_with("ms") {
            ("ms", 0.001)
        } else if rest.starts_with('h') {
            ("h", 3600.0)
        } else if rest.starts_with('m') {
            ("m", 60.0)
        } else if rest.starts_with('s') {
            ("s", 1.0)
        } else {
            return Err(format!("unknown unit at {rest:?}"));
        };
        total += Duration::from_secs_f64(number * seconds);
        rest = &rest[unit.len()..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse("10").is_err());
        assert!(parse("ten minutes").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn reads_from_state_with_default() {
        let state = Value::object([(
            "timeouts",
            Value::object([
                ("create", Value::from("5m")),
                ("update", Value::Null),
                ("delete", Value::Null),
            ]),
        )]);
        assert_eq!(
            get(&state, CREATE, Duration::ZERO),
            Duration::from_secs(300)
        );
        assert_eq!(
            get(&state, DELETE, Duration::from_secs(7)),
            Duration::from_secs(7)
        );
    }
}
