//! `terraform test` under the harness's rule that the plan right after an
//! apply is quiet ([`crate::plan::expect_quiet`]).
//!
//! A module's `.tftest.hcl` files hold `run` blocks with `command = apply`.
//! `terraform test` cannot assert that the next plan changes nothing, so
//! [`terraform_test`] runs a rewritten copy of the test files: after every
//! apply run it inserts a plan run of the same configuration (the run's
//! `module`, `variables`, `providers` and `state_key`, without its
//! assertions), runs `terraform test -json -verbose`, and checks the JSON
//! plan each inserted run reports (`test_plan`): no changes, no output
//! changes, no `resource_drift`.
//!
//! A run that leaves changes on purpose opts out with a comment line right
//! above it that starts with [`OPT_OUT`] and says why.

use std::fs;

use serde_json::Value;

use crate::plan::expect_quiet;
use crate::{Error, Result, Workdir};

/// Suffix of the plan run inserted after apply run `<name>`.
pub const QUIET_PLAN_SUFFIX: &str = "__quiet_plan";

/// A comment line starting with this right above an apply run skips the
/// quiet-plan check after it; the rest of the line says why.
pub const OPT_OUT: &str = "# not quiet on purpose:";

/// What one `terraform test` of a module did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestReport {
    /// `run` blocks in the module's own test files.
    pub runs: usize,
    /// Plan runs the harness inserted (one per apply run not opted out).
    pub quiet_plans: usize,
    /// Runs Terraform reports as passed (both kinds).
    pub passed: usize,
}

/// Runs `terraform test -json -verbose` in `module` (a directory relative
/// to the workdir's [`Workdir::dir`]; initialised here, after the rewrite),
/// with a quiet-plan check after every apply run. Fails unless every run passes and every
/// inserted plan is quiet.
pub fn terraform_test(wd: &Workdir, module: &str) -> Result<TestReport> {
    let tests = wd.dir().join(module).join("tests");
    let mut report = TestReport::default();
    let mut inserted = Vec::new();
    for entry in fs::read_dir(&tests).map_err(|e| Error::io("listing", &tests, e))? {
        let path = entry.map_err(|e| Error::io("listing", &tests, e))?.path();
        if !path.to_string_lossy().ends_with(".tftest.hcl") {
            continue;
        }
        let text = fs::read_to_string(&path).map_err(|e| Error::io("reading", &path, e))?;
        let rewritten = with_quiet_plans(&text)
            .map_err(|e| Error::Check(format!("{}: {e}", path.display())))?;
        report.runs += rewritten.runs;
        inserted.extend(rewritten.quiet_plans.iter().cloned());
        crate::write(&path, &rewritten.text)?;
    }
    report.quiet_plans = inserted.len();

    // `terraform init` installs a run's `module` per run name, so the
    // inserted runs need another init.
    let chdir = format!("-chdir={module}");
    wd.terraform_ok(&[chdir.as_str(), "init", "-input=false"])?;
    let out = wd.terraform(&[chdir.as_str(), "test", "-json", "-verbose"])?;
    let mut failed = Vec::new();
    let mut diagnostics = Vec::new();
    let mut checked = Vec::new();
    for line in out.stdout.lines() {
        let Ok(message) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let run = message["@testrun"].as_str().unwrap_or_default().to_string();
        match message["type"].as_str() {
            Some("test_run") if message["test_run"]["progress"] == "complete" => {
                match message["test_run"]["status"].as_str() {
                    Some("pass") => report.passed += 1,
                    status => failed.push(format!("{run}: {}", status.unwrap_or("?"))),
                }
            }
            Some("test_plan") if run.ends_with(QUIET_PLAN_SUFFIX) => {
                let applied = run.trim_end_matches(QUIET_PLAN_SUFFIX);
                expect_quiet(&message["test_plan"]).map_err(|e| {
                    Error::Check(format!(
                        "`terraform test` in {module}: after apply run {applied:?}, {e}"
                    ))
                })?;
                checked.push(run);
            }
            Some("diagnostic") => diagnostics.push(format!(
                "{run}: {}",
                message["@message"].as_str().unwrap_or_default()
            )),
            _ => {}
        }
    }
    if out.code != Some(0) || !failed.is_empty() {
        return Err(Error::Check(format!(
            "`terraform test` in {module} exited with {:?}; runs not passed: {failed:?}\n  {}\n--- stderr ---\n{}",
            out.code,
            diagnostics.join("\n  "),
            out.stderr
        )));
    }
    let missing: Vec<&String> = inserted.iter().filter(|r| !checked.contains(r)).collect();
    if !missing.is_empty() {
        return Err(Error::Check(format!(
            "`terraform test` in {module} reported no plan for {missing:?} (is -verbose still \
             printing plans as `test_plan`?)"
        )));
    }
    Ok(report)
}

/// A test file with a plan run after each apply run.
#[derive(Debug)]
struct Rewritten {
    text: String,
    runs: usize,
    /// Names of the inserted runs.
    quiet_plans: Vec<String>,
}

/// The parts of a run that say which configuration it applies, copied into
/// its quiet-plan run.
const CONFIGURATION: [&str; 4] = ["module", "variables", "providers", "state_key"];

fn with_quiet_plans(text: &str) -> Result<Rewritten, String> {
    let mut out = String::new();
    let mut done = 0;
    let mut runs = 0;
    let mut quiet_plans = Vec::new();
    for item in items(text)? {
        if item.name != "run" {
            continue;
        }
        runs += 1;
        let Some((open, close)) = item.body else {
            return Err(format!("`run` at byte {} has no body", item.start));
        };
        let body = &text[open + 1..close];
        let parts = items(body)?;
        let command = parts
            .iter()
            .find(|p| p.name == "command")
            .map(|p| body[p.start..p.end].trim().to_string());
        let is_apply = command.as_deref().is_none_or(|c| c.ends_with("apply"));
        let expects_failure = parts.iter().any(|p| p.name == "expect_failures");
        if !is_apply || expects_failure || opted_out(text, item.start) {
            continue;
        }
        let label = item.labels.first().cloned().unwrap_or_default();
        let name = format!("{label}{QUIET_PLAN_SUFFIX}");
        let mut block = format!(
            "\n\n# Inserted by the acceptance harness: the plan right after run \"{label}\" must be quiet.\nrun \"{name}\" {{\n  command = plan\n"
        );
        for part in parts
            .iter()
            .filter(|p| CONFIGURATION.contains(&p.name.as_str()))
        {
            block.push_str("\n  ");
            block.push_str(body[part.start..part.end].trim());
            block.push('\n');
        }
        block.push_str("}\n");
        out.push_str(&text[done..=close]);
        out.push_str(&block);
        done = close + 1;
        quiet_plans.push(name);
    }
    out.push_str(&text[done..]);
    Ok(Rewritten {
        text: out,
        runs,
        quiet_plans,
    })
}

/// Whether the line right above byte `start` is an [`OPT_OUT`] comment.
fn opted_out(text: &str, start: usize) -> bool {
    text[..start]
        .trim_end()
        .lines()
        .next_back()
        .is_some_and(|line| line.trim_start().starts_with(OPT_OUT))
}

/// One attribute (`name = expr`) or block (`name "label" { … }`) of HCL.
#[derive(Debug)]
struct Item {
    name: String,
    labels: Vec<String>,
    /// Where the item starts and ends (exclusive).
    start: usize,
    end: usize,
    /// A block's `{` and `}` positions.
    body: Option<(usize, usize)>,
}

/// The top-level attributes and blocks of HCL `text`. Enough HCL for test
/// files: comments, strings with `${…}` templates, brackets; no heredocs.
fn items(text: &str) -> Result<Vec<Item>, String> {
    let bytes = text.as_bytes();
    let mut items = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        i = skip_space_and_comments(bytes, i, true);
        if i >= bytes.len() {
            break;
        }
        let start = i;
        let name_end = ident_end(bytes, i);
        if name_end == i {
            return Err(format!(
                "unexpected {:?} at byte {i}",
                text[i..].chars().next().unwrap_or(' ')
            ));
        }
        let name = text[i..name_end].to_string();
        i = skip_space_and_comments(bytes, name_end, false);
        let mut labels = Vec::new();
        while i < bytes.len() && bytes[i] == b'"' {
            let close = string_end(bytes, i)?;
            labels.push(text[i + 1..close].to_string());
            i = skip_space_and_comments(bytes, close + 1, false);
        }
        match bytes.get(i) {
            Some(b'{') => {
                let close = matching_close(bytes, i)?;
                items.push(Item {
                    name,
                    labels,
                    start,
                    end: close + 1,
                    body: Some((i, close)),
                });
                i = close + 1;
            }
            Some(b'=') if labels.is_empty() => {
                // The expression runs to the end of the line, brackets and
                // strings included.
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] != b'\n' {
                    j = match bytes[j] {
                        b'{' | b'[' | b'(' => matching_close(bytes, j)? + 1,
                        b'"' => string_end(bytes, j)? + 1,
                        b'#' => line_end(bytes, j),
                        b'/' if bytes.get(j + 1) == Some(&b'/') => line_end(bytes, j),
                        _ => j + 1,
                    };
                }
                items.push(Item {
                    name,
                    labels,
                    start,
                    end: j,
                    body: None,
                });
                i = j;
            }
            _ => {
                return Err(format!(
                    "`{name}` at byte {start} is neither a block nor an attribute"
                ));
            }
        }
    }
    Ok(items)
}

fn ident_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len()
        && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'-')
    {
        i += 1;
    }
    i
}

fn line_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && bytes[i] != b'\n' {
        i += 1;
    }
    i
}

/// Skips blanks and comments (and newlines when `newlines`).
fn skip_space_and_comments(bytes: &[u8], mut i: usize, newlines: bool) -> usize {
    while i < bytes.len() {
        match bytes[i] {
            b'\n' if !newlines => break,
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'#' => i = line_end(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'/') => i = line_end(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            _ => break,
        }
    }
    i.min(bytes.len())
}

/// The position of the `"` that closes the string opening at `open`,
/// templates (`${ … }`, which may hold strings) included.
fn string_end(bytes: &[u8], open: usize) -> Result<usize, String> {
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Ok(i),
            b'$' | b'%' if bytes.get(i + 1) == Some(&b'{') => i = matching_close(bytes, i + 1)? + 1,
            _ => i += 1,
        }
    }
    Err(format!("unterminated string at byte {open}"))
}

/// The position of the bracket that closes the one at `open`.
fn matching_close(bytes: &[u8], open: usize) -> Result<usize, String> {
    let mut stack = vec![bytes[open]];
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = string_end(bytes, i)?,
            b'#' => i = line_end(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'/') => i = line_end(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = skip_space_and_comments(bytes, i, true).saturating_sub(1);
            }
            b'<' if bytes.get(i + 1) == Some(&b'<') => {
                return Err(format!("heredoc at byte {i}: not supported by the harness"));
            }
            c @ (b'{' | b'[' | b'(') => stack.push(c),
            c @ (b'}' | b']' | b')') => {
                let want = match stack.pop() {
                    Some(b'{') => b'}',
                    Some(b'[') => b']',
                    _ => b')',
                };
                if c != want {
                    return Err(format!("unbalanced {:?} at byte {i}", c as char));
                }
                if stack.is_empty() {
                    return Ok(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    Err(format!("unclosed {:?} at byte {open}", bytes[open] as char))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
# A comment with a { brace
variables {
  name = "tt"
}

run "plan_only" {
  command = plan
  assert {
    condition     = x == "}"
    error_message = "got ${jsonencode({ a = "}" })}"
  }
}

run "site" {
  command = apply

  module {
    source = "../site"
  }

  variables {
    pools = { a = { n = 1 } } # trailing }
    name  = run.x.name
  }

  assert {
    condition     = output.id == "/x"
    error_message = "id: ${output.id}"
  }
}

run "fails" {
  command         = apply
  expect_failures = [var.name]
}

# not quiet on purpose: the test changes the vnet out of band
run "drifts" {
  command = apply
}

run "implicit_apply" {
  state_key = "other"
}
"#;

    #[test]
    fn a_plan_run_follows_each_apply_run_with_its_configuration() {
        let r = with_quiet_plans(FILE).unwrap();
        assert_eq!(r.runs, 5);
        assert_eq!(
            r.quiet_plans,
            ["site__quiet_plan", "implicit_apply__quiet_plan"]
        );
        let inserted = r.text.split("run \"site__quiet_plan\" {").nth(1).unwrap();
        let inserted = &inserted[..inserted.find("\n}\n").unwrap()];
        assert!(inserted.contains("command = plan"), "{inserted}");
        assert!(inserted.contains("source = \"../site\""), "{inserted}");
        assert!(inserted.contains("name  = run.x.name"), "{inserted}");
        assert!(!inserted.contains("assert"), "{inserted}");
        // The original text is all still there, in order.
        let without: String = r
            .text
            .split("\n\n# Inserted by the acceptance harness")
            .enumerate()
            .map(|(i, part)| {
                if i == 0 {
                    part.to_string()
                } else {
                    part[part.find("\n}\n").unwrap() + 3..].to_string()
                }
            })
            .collect();
        assert_eq!(without, FILE);
        let implicit = r
            .text
            .split("run \"implicit_apply__quiet_plan\" {")
            .nth(1)
            .unwrap();
        assert!(implicit.contains("state_key = \"other\""), "{implicit}");
        // The rewritten file parses again, with the inserted runs.
        assert_eq!(with_quiet_plans(&r.text).unwrap().runs, 7);
    }

    #[test]
    fn unbalanced_or_unsupported_input_is_an_error() {
        assert!(with_quiet_plans("run \"a\" {\n command = apply\n").is_err());
        assert!(with_quiet_plans("run \"a\" {\n x = <<EOT\nhi\nEOT\n}\n").is_err());
        assert!(with_quiet_plans("run \"a\" ]").is_err());
    }
}
