//! Attribute paths: where in a configuration a diagnostic points.
//!
//! The host API reports field paths as text (`vm_ip_pool.start`, `dns_servers[1]`,
//! `tags["env"]`); Terraform wants structured steps so it can underline the exact
//! attribute in the user's configuration.

use std::fmt;

/// One step of an attribute path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Attribute(String),
    Key(String),
    Index(i64),
}

/// A path from the root of a resource's schema to one attribute or element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttrPath(pub Vec<Step>);

impl AttrPath {
    pub fn root() -> Self {
        Self::default()
    }

    /// A path of one top-level attribute.
    pub fn attr(name: impl Into<String>) -> Self {
        Self(vec![Step::Attribute(name.into())])
    }

    pub fn then_attr(mut self, name: impl Into<String>) -> Self {
        self.0.push(Step::Attribute(name.into()));
        self
    }

    pub fn then_key(mut self, key: impl Into<String>) -> Self {
        self.0.push(Step::Key(key.into()));
        self
    }

    pub fn then_index(mut self, index: i64) -> Self {
        self.0.push(Step::Index(index));
        self
    }

    /// Parses the API's textual field path. Anything that does not parse
    /// yields the longest prefix that did, so a diagnostic still points close
    /// to the problem rather than nowhere.
    pub fn parse(text: &str) -> Self {
        let mut steps = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('.') {
                rest = after;
                continue;
            }
            if let Some(after) = rest.strip_prefix("[\"") {
                let Some(end) = after.find("\"]") else { break };
                steps.push(Step::Key(after[..end].to_string()));
                rest = &after[end + 2..];
                continue;
            }
            if let Some(after) = rest.strip_prefix('[') {
                let Some(end) = after.find(']') else { break };
                let Ok(index) = after[..end].parse::<i64>() else {
                    break;
                };
                steps.push(Step::Index(index));
                rest = &after[end + 1..];
                continue;
            }
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            steps.push(Step::Attribute(rest[..end].to_string()));
            rest = &rest[end..];
        }
        Self(steps)
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Attribute(name) if i == 0 => write!(f, "{name}")?,
                Step::Attribute(name) => write!(f, ".{name}")?,
                Step::Key(key) => write!(f, "[{key:?}]")?,
                Step::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_api_targets() {
        assert_eq!(
            AttrPath::parse("vm_ip_pool.start"),
            AttrPath::attr("vm_ip_pool").then_attr("start")
        );
        assert_eq!(
            AttrPath::parse("dns_servers[1]"),
            AttrPath::attr("dns_servers").then_index(1)
        );
        assert_eq!(
            AttrPath::parse("tags[\"env.tier\"]"),
            AttrPath::attr("tags").then_key("env.tier")
        );
        assert_eq!(AttrPath::parse(""), AttrPath::root());
    }

    #[test]
    fn displays_like_terraform() {
        let path = AttrPath::attr("tags").then_key("env");
        assert_eq!(path.to_string(), "tags[\"env\"]");
        assert_eq!(AttrPath::parse(&path.to_string()), path);
    }

    #[test]
    fn stops_at_malformed_steps() {
        assert_eq!(AttrPath::parse("pools[x].start"), AttrPath::attr("pools"));
    }
}
