//! The flags of `hybrid-host` and `hybrid-agent` as Markdown tables, read
//! from the clap commands the binaries themselves parse with
//! (host/src/cli.rs, agent/src/cli.rs), so the operator's pages list exactly
//! the flags, variables and defaults `--help` shows.

use std::fmt::Write as _;

use clap::{Arg, ArgAction, Command, CommandFactory};

/// One table per (sub)command: `hybrid-host` itself and each subcommand.
pub fn tables() -> String {
    all(hybrid_host::cli::Cli::command(), "hybrid-host")
}

/// The same for `hybrid-agent` (agent/src/cli.rs).
pub fn agent_tables() -> String {
    all(hybrid_agent::cli::Cli::command(), "hybrid-agent")
}

fn all(mut root: Command, name: &str) -> String {
    root.build();
    let mut out = String::new();
    walk(&root, name, &mut out);
    out.trim_end().to_string()
}

/// The command's table, then its subcommands', depth first
/// (`hybrid-host agent-token create`).
fn walk(cmd: &Command, name: &str, out: &mut String) {
    table(cmd, name, out);
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        walk(sub, &format!("{name} {}", sub.get_name()), out);
    }
}

fn table(cmd: &Command, name: &str, out: &mut String) {
    let about = cmd.get_about().map(|s| s.to_string()).unwrap_or_default();
    let _ = writeln!(out, "`{name}` — {about}\n");
    let _ = writeln!(out, "| Flag | Environment | Default | Meaning |");
    let _ = writeln!(out, "|---|---|---|---|");
    for arg in cmd.get_arguments() {
        if arg.is_positional() {
            continue;
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            flag(arg),
            arg.get_env()
                .map(|e| format!("`{}`", e.to_string_lossy()))
                .unwrap_or_default(),
            default(arg),
            meaning(arg, cmd)
        );
    }
    out.push('\n');
    let subs: Vec<_> = cmd
        .get_subcommands()
        .filter(|s| s.get_name() != "help")
        .collect();
    if !subs.is_empty() {
        let _ = writeln!(
            out,
            "Subcommands: {}.\n",
            subs.iter()
                .map(|s| format!(
                    "`{}` ({})",
                    s.get_name(),
                    s.get_about().map(|a| a.to_string()).unwrap_or_default()
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

fn flag(arg: &Arg) -> String {
    let mut names = Vec::new();
    if let Some(short) = arg.get_short() {
        names.push(format!("-{short}"));
    }
    if let Some(long) = arg.get_long() {
        names.push(format!("--{long}"));
    }
    let takes_value = matches!(arg.get_action(), ArgAction::Set | ArgAction::Append);
    let value = if takes_value {
        arg.get_value_names()
            .and_then(|v| v.first())
            .map(|v| format!(" <{v}>"))
            .unwrap_or_else(|| format!(" <{}>", arg.get_id().as_str().to_uppercase()))
    } else {
        String::new()
    };
    format!("`{}{value}`", names.join(", "))
}

fn default(arg: &Arg) -> String {
    if arg.is_required_set() {
        return "required".into();
    }
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| format!("`{}`", v.to_string_lossy()))
        .collect();
    defaults.join(", ")
}

fn meaning(arg: &Arg, cmd: &Command) -> String {
    let mut text = arg
        .get_long_help()
        .or(arg.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default()
        .replace('\n', " ")
        .replace('|', "\\|");
    // clap drops a doc comment's closing full stop; put it back so the
    // notes appended below read as sentences.
    if !text.is_empty() && !text.ends_with('.') {
        text.push('.');
    }
    let values: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| format!("`{}`", v.get_name()))
        .collect();
    let takes_value = matches!(arg.get_action(), ArgAction::Set | ArgAction::Append);
    if takes_value && !values.is_empty() {
        let _ = write!(text, " One of {}.", values.join(", "));
    }
    // `requires = "…"` pairs (e.g. --tls-cert with --tls-key).
    let requires: Vec<String> = cmd
        .get_arguments()
        .filter(|other| arg.get_id() != other.get_id() && requires_arg(cmd, arg, other))
        .filter_map(|other| other.get_long().map(|l| format!("`--{l}`")))
        .collect();
    if !requires.is_empty() {
        let _ = write!(text, " Requires {}.", requires.join(", "));
    }
    text
}

/// Whether `arg` requires `other`: clap keeps `requires` private, so ask it
/// by rendering the usage it would print for `arg` alone.
fn requires_arg(cmd: &Command, arg: &Arg, other: &Arg) -> bool {
    let (Some(long), Some(other_long)) = (arg.get_long(), other.get_long()) else {
        return false;
    };
    let mut probe = cmd.clone();
    let value = "x";
    let mut argv = vec![cmd.get_name().to_string(), format!("--{long}")];
    if matches!(arg.get_action(), ArgAction::Set | ArgAction::Append) {
        argv.push(value.into());
    }
    // Every other required argument, so the only error left is `requires`.
    for required in cmd.get_arguments().filter(|a| a.is_required_set()) {
        if let Some(l) = required.get_long() {
            argv.push(format!("--{l}"));
            argv.push(value.into());
        }
    }
    match probe.try_get_matches_from_mut(argv) {
        Err(e) if e.kind() == clap::error::ErrorKind::MissingRequiredArgument => {
            // Only the list of missing arguments, not the usage line after it.
            let text = e.to_string();
            let missing = text.split("Usage:").next().unwrap_or_default();
            missing.contains(&format!("--{other_long} "))
                || missing.contains(&format!("--{other_long}\n"))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_serve_flag_is_in_the_table_with_its_environment_and_default() {
        let md = super::tables();
        for needle in [
            "`--listen <LISTEN>`",
            "`HYBRID_HOST_LISTEN`",
            "`127.0.0.1:8443`",
            "`--data-dir <DATA_DIR>` | `HYBRID_HOST_DATA_DIR` | required",
            "`--sim <SIM>`",
            "`--database-url <DATABASE_URL>`",
            "`--token-file <TOKEN_FILE>`",
            "instead of the generated one. Requires `--tls-key`. |",
            "for --tls-cert. Requires `--tls-cert`. |",
            "One of `pretty`, `json`.",
            "`-h, --help`",
            "`-V, --version`",
        ] {
            assert!(md.contains(needle), "{needle} missing from:\n{md}");
        }
    }
}
