//! The template language of `templates/**/*.md.tmpl`: Markdown with
//! `{{ … }}` placeholders, in the spirit of tfplugindocs but with no logic:
//!
//! - `{{ .Name }}` and the other page values the generator provides (an
//!   unknown name is an error listing the known ones);
//! - `{{ tffile "examples/x.tf" }}`: a file embedded verbatim in a
//!   ```` ```terraform ```` block;
//! - `{{ codefile "shell" "examples/x.sh" }}`: likewise with another language.
//!
//! A placeholder alone on its line after some indentation indents every line
//! of a multi-line value the same way (front-matter descriptions, lists).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Renders `text` (the template at `origin`, for messages) with `values`,
/// reading embedded files relative to `root`.
pub fn render(
    text: &str,
    origin: &str,
    values: &BTreeMap<&'static str, String>,
    root: &Path,
) -> Result<String> {
    let mut out = String::with_capacity(text.len() * 2);
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let (before, after) = rest.split_at(start);
        out.push_str(before);
        let Some(end) = after.find("}}") else {
            bail!("{origin}: `{{{{` without a closing `}}}}`");
        };
        let inner = after[2..end].trim();
        let value = expand(inner, origin, values, root)?;
        // The text between the last newline and the placeholder.
        let line_start = out.rfind('\n').map_or(0, |i| i + 1);
        let prefix = &out[line_start..];
        if !prefix.is_empty() && prefix.chars().all(|c| c == ' ') {
            let prefix = prefix.to_string();
            let mut lines = value.lines();
            if let Some(first) = lines.next() {
                out.push_str(first);
            }
            for line in lines {
                out.push('\n');
                if !line.is_empty() {
                    out.push_str(&prefix);
                }
                out.push_str(line);
            }
        } else {
            out.push_str(&value);
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn expand(
    inner: &str,
    origin: &str,
    values: &BTreeMap<&'static str, String>,
    root: &Path,
) -> Result<String> {
    if let Some(name) = inner.strip_prefix('.') {
        return values.get(name).cloned().with_context(|| {
            format!(
                "{origin}: unknown placeholder {{{{ .{name} }}}}; this page knows: {}",
                values
                    .keys()
                    .map(|k| format!(".{k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        });
    }
    let words = quoted_words(inner).with_context(|| format!("{origin}: {{{{ {inner} }}}}"))?;
    match words.as_slice() {
        [f, path] if f == "tffile" => Ok(code_block("terraform", &read(root, path, origin)?)),
        [f, lang, path] if f == "codefile" => Ok(code_block(lang, &read(root, path, origin)?)),
        _ => bail!(
            "{origin}: unknown placeholder {{{{ {inner} }}}}; use {{{{ .Name }}}}, \
             {{{{ tffile \"path\" }}}} or {{{{ codefile \"lang\" \"path\" }}}}"
        ),
    }
}

/// A fenced code block holding `text` without its trailing newlines.
pub fn code_block(lang: &str, text: &str) -> String {
    format!("```{lang}\n{}\n```", text.trim_end())
}

fn read(root: &Path, path: &str, origin: &str) -> Result<String> {
    std::fs::read_to_string(root.join(path))
        .with_context(|| format!("{origin}: reading {path} (embedded by the template)"))
}

/// `tffile "a b"` → `["tffile", "a b"]`: bare words and double-quoted strings.
fn quoted_words(text: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut word = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some(c) => word.push(c),
                    None => bail!("unterminated string"),
                }
            }
            words.push(word);
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
            words.push(word);
        }
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("Name", "hybrid_x".to_string()),
            ("List", "a\nb\n\nc".to_string()),
        ])
    }

    #[test]
    fn placeholders_are_replaced_and_indented() {
        let out = render(
            "# {{ .Name }}\nd: |-\n  {{ .List }}\nend",
            "t",
            &values(),
            Path::new("."),
        )
        .unwrap();
        assert_eq!(out, "# hybrid_x\nd: |-\n  a\n  b\n\n  c\nend");
    }

    #[test]
    fn unknown_placeholders_and_files_are_errors() {
        let err = render("{{ .Nope }}", "t.tmpl", &values(), Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(err.contains("t.tmpl") && err.contains(".Name"), "{err}");
        let err = render(
            "{{ tffile \"no/such.tf\" }}",
            "t.tmpl",
            &values(),
            Path::new("."),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("no/such.tf"), "{err:#}");
        assert!(render("{{ .Name ", "t", &values(), Path::new(".")).is_err());
    }
}
