//! Optimistic concurrency: what a write requires of the stored object's
//! etag. `http/` fills it from `If-Match` / `If-None-Match`; admission checks
//! it inside the transaction that reads the etag.

use super::error::Refusal;

/// What the client required of the stored object.
#[derive(Debug, Clone, Default)]
pub struct Preconditions {
    /// Etags from `If-Match` (unquoted); `Some(["*"])` matches any existing object.
    pub if_match: Option<Vec<String>>,
    /// `If-None-Match: *`: only create.
    pub if_none_match_any: bool,
}

impl Preconditions {
    /// Checks against the stored etag (`None` = object absent); `what`
    /// names the object in the message.
    pub fn check(&self, what: &str, current: Option<&str>) -> Result<(), Refusal> {
        if self.if_none_match_any && current.is_some() {
            return Err(Refusal::precondition(format!(
                "{what} already exists (If-None-Match: *)"
            )));
        }
        if let Some(wanted) = &self.if_match {
            match current {
                None => {
                    return Err(Refusal::precondition(format!(
                        "{what} does not exist, so If-Match {wanted:?} cannot match"
                    )));
                }
                Some(etag) if !wanted.iter().any(|w| w == "*" || w == etag) => {
                    return Err(Refusal::precondition(format!(
                        "{what} has etag {etag:?}, not {wanted:?} (If-Match); it was changed since you read it"
                    )));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_and_if_none_match() {
        let any = Preconditions::default();
        assert!(any.check("x", None).is_ok() && any.check("x", Some("e1")).is_ok());
        let create_only = Preconditions {
            if_none_match_any: true,
            ..Default::default()
        };
        assert!(create_only.check("x", None).is_ok());
        assert!(create_only.check("x", Some("e1")).is_err());
        let pinned = Preconditions {
            if_match: Some(vec!["e1".into()]),
            ..Default::default()
        };
        assert!(pinned.check("x", Some("e1")).is_ok());
        let e = pinned.check("vnet a", Some("e2")).unwrap_err();
        assert!(e.error.message.contains("vnet a has etag \"e2\""), "{e}");
        assert!(pinned.check("x", None).is_err());
    }
}
