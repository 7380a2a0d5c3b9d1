//! The benchmark report: rows from any benchmark module (each a measure
//! with its baseline, both summarised as median and min–max over the
//! interleaved runs), the targets of docs/guides/performance.md checked
//! against them, and the writers for `.build/bench/report.md` and
//! `.build/bench/results.json`.

use std::time::Duration;

use serde_json::{Value, json};

use super::stats::{median, ratio};

/// How a row's numbers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Milliseconds: lower is better.
    Millis,
    /// Requests per second: higher is better.
    PerSecond,
    /// Mebibytes: lower is better.
    MiB,
}

impl Unit {
    /// `v` in this unit, for people.
    pub fn format(self, v: f64) -> String {
        match self {
            Unit::Millis if v.abs() >= 1000.0 => format!("{:.2} s", v / 1000.0),
            Unit::Millis => format!("{v:.2} ms"),
            Unit::PerSecond => format!("{v:.0} req/s"),
            Unit::MiB => format!("{v:.1} MiB"),
        }
    }

    /// The unit's name in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Millis => "ms",
            Unit::PerSecond => "req/s",
            Unit::MiB => "MiB",
        }
    }
}

/// Median and range of one side's samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// The samples, in the order taken.
    pub samples: Vec<f64>,
}

impl Stat {
    /// The statistics of `samples`; `None` when there are none.
    pub fn of(samples: &[f64]) -> Option<Stat> {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Stat {
            median: median(&sorted)?,
            min: *sorted.first()?,
            max: *sorted.last()?,
            samples: samples.to_vec(),
        })
    }

    /// The statistics of durations, in milliseconds.
    pub fn of_durations(samples: &[Duration]) -> Option<Stat> {
        let ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        Stat::of(&ms)
    }

    /// A single measurement.
    pub fn single(v: f64) -> Stat {
        Stat {
            median: v,
            min: v,
            max: v,
            samples: vec![v],
        }
    }

    fn cell(&self, unit: Unit) -> String {
        if self.samples.len() > 1 {
            format!(
                "{} ({} – {})",
                unit.format(self.median),
                unit.format(self.min),
                unit.format(self.max)
            )
        } else {
            unit.format(self.median)
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "median": self.median,
            "min": self.min,
            "max": self.max,
            "samples": self.samples,
        })
    }
}

/// One measure: ours against a baseline measured side by side.
#[derive(Debug, Clone)]
pub struct Row {
    /// Section of the report, e.g. `terraform` (rows keep their order
    /// within it).
    pub group: String,
    /// Stable key for the targets and the JSON, e.g. `tf.noop_plan.1000`.
    pub key: String,
    /// What is measured, for people.
    pub name: String,
    pub unit: Unit,
    /// What the baseline is; empty when there is none.
    pub baseline_name: String,
    pub baseline: Option<Stat>,
    pub ours: Stat,
}

impl Row {
    /// A measure without a baseline.
    pub fn alone(group: &str, key: &str, name: impl Into<String>, unit: Unit, ours: Stat) -> Row {
        Row {
            group: group.into(),
            key: key.into(),
            name: name.into(),
            unit,
            baseline_name: String::new(),
            baseline: None,
            ours,
        }
    }

    /// A measure with its baseline.
    pub fn paired(
        group: &str,
        key: &str,
        name: impl Into<String>,
        unit: Unit,
        (baseline_name, baseline): (&str, Stat),
        ours: Stat,
    ) -> Row {
        Row {
            baseline_name: baseline_name.into(),
            baseline: Some(baseline),
            ..Row::alone(group, key, name, unit, ours)
        }
    }

    /// `ours / baseline` of the medians.
    pub fn ratio(&self) -> Option<f64> {
        ratio(self.ours.median, self.baseline.as_ref()?.median)
    }

    fn to_json(&self) -> Value {
        json!({
            "group": self.group,
            "key": self.key,
            "name": self.name,
            "unit": self.unit.name(),
            "baseline_name": self.baseline_name,
            "baseline": self.baseline.as_ref().map(Stat::to_json),
            "ours": self.ours.to_json(),
            "ratio": self.ratio(),
        })
    }
}

/// How a target compares a row.
#[derive(Debug, Clone, Copy)]
pub enum Check {
    /// The median of ours is at most this (row's unit).
    AtMost(f64),
    /// The median of ours is at least this (row's unit).
    AtLeast(f64),
    /// The ratio ours / baseline is at most this.
    RatioAtMost(f64),
    /// The ratio ours / baseline is at least this.
    RatioAtLeast(f64),
}

/// One line of the targets table.
#[derive(Debug, Clone)]
pub struct Target {
    pub measure: &'static str,
    pub target: &'static str,
    /// The row keys it checks (all must pass); a missing row is "not
    /// measured".
    pub keys: Vec<String>,
    pub check: Check,
}

/// A target's verdict.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub measure: &'static str,
    pub target: &'static str,
    pub measured: String,
    /// `None`: not measured in this run.
    pub met: Option<bool>,
}

/// The small N of the Terraform targets: most infrastructure repositories
/// hold tens of resources, where a command's fixed cost (plugin starts,
/// connecting to the service) weighs more than the per-resource one.
pub const SMALL_N: usize = 10;

/// The targets of docs/guides/performance.md, for the Terraform sizes
/// measured in this run: the ratio targets apply to the largest `n` and to
/// [`SMALL_N`] (not measured when the run's sizes leave it out).
pub fn targets(largest_n: usize) -> Vec<Target> {
    let n = largest_n;
    let small = SMALL_N;
    vec![
        Target {
            measure: "start → handshake, mTLS",
            target: "≤ 5 ms median",
            keys: vec!["handshake.median".into()],
            check: Check::AtMost(5.0),
        },
        Target {
            measure: "provider peak RSS during plan",
            target: "≤ 16 MiB",
            keys: vec!["provider.peak_rss".into()],
            check: Check::AtMost(16.0),
        },
        Target {
            measure: "no-op plan, largest N, vs terraform_data",
            target: "≤ 1.5×",
            keys: vec![format!("tf.noop_plan.{n}")],
            check: Check::RatioAtMost(1.5),
        },
        Target {
            measure: "plan and apply, largest N, vs terraform_data",
            target: "≤ 1.5×",
            keys: vec![format!("tf.plan.{n}"), format!("tf.apply.{n}")],
            check: Check::RatioAtMost(1.5),
        },
        Target {
            measure: "destroy, largest N, vs terraform_data",
            target: "≤ 1.5×",
            keys: vec![format!("tf.destroy.{n}")],
            check: Check::RatioAtMost(1.5),
        },
        Target {
            measure: "no-op plan, N = 10, vs terraform_data",
            target: "≤ 1.5×",
            keys: vec![format!("tf.noop_plan.{small}")],
            check: Check::RatioAtMost(1.5),
        },
        Target {
            measure: "plan and apply, N = 10, vs terraform_data",
            target: "≤ 1.5×",
            keys: vec![format!("tf.plan.{small}"), format!("tf.apply.{small}")],
            check: Check::RatioAtMost(1.5),
        },
        Target {
            measure: "destroy, N = 10, vs terraform_data",
            target: "≤ 1.5×",
            keys: vec![format!("tf.destroy.{small}")],
            check: Check::RatioAtMost(1.5),
        },
        Target {
            measure: "long-operation wake-up overhead",
            target: "≤ 100 ms",
            keys: vec!["wakeup.overhead".into()],
            check: Check::AtMost(100.0),
        },
        Target {
            measure: "hybrid-host GET, 1 connection pool of 64",
            target: "≥ 10,000 req/s",
            keys: vec!["http.get.rps".into()],
            check: Check::AtLeast(10_000.0),
        },
        Target {
            measure: "hybrid-host GET p99, 1 connection pool of 64",
            target: "≤ 10 ms",
            keys: vec!["http.get.p99".into()],
            check: Check::AtMost(10.0),
        },
        Target {
            measure: "hybrid-host PUT vnet (SQLite)",
            target: "≥ 1,000 req/s",
            keys: vec!["http.put.rps".into()],
            check: Check::AtLeast(1_000.0),
        },
        Target {
            measure: "hybrid-host GET on PostgreSQL, 1 replica, 64 connections",
            target: "≥ 10,000 req/s",
            keys: vec!["pg.get.rps".into()],
            check: Check::AtLeast(10_000.0),
        },
        Target {
            measure: "hybrid-host GET p99 on PostgreSQL, 1 replica",
            target: "≤ 10 ms",
            keys: vec!["pg.get.p99".into()],
            check: Check::AtMost(10.0),
        },
        Target {
            measure: "hybrid-host PUT vnet on PostgreSQL, 1 replica",
            target: "≥ 1,000 req/s",
            keys: vec!["pg.put.rps".into()],
            check: Check::AtLeast(1_000.0),
        },
        Target {
            measure: "3 replicas vs 1 on PostgreSQL, aggregate GET and PUT",
            target: "≥ 1× (not slower)",
            keys: vec!["pg.scale.get".into(), "pg.scale.put".into()],
            check: Check::RatioAtLeast(1.0),
        },
        Target {
            measure: "failover: kill -9 → the operation done elsewhere",
            target: "≤ lease + 2 s (+ its own work)",
            keys: vec!["pg.failover".into()],
            check: Check::RatioAtMost(1.0),
        },
        Target {
            measure: "hybrid-host RSS with 1,000 clusters stored",
            target: "≤ 64 MiB",
            keys: vec!["http.rss_1000_clusters".into()],
            check: Check::AtMost(64.0),
        },
        Target {
            measure: "VM create overhead beyond the guest's own boot",
            target: "≤ 300 ms median",
            keys: vec!["agents.create.overhead".into()],
            check: Check::AtMost(300.0),
        },
        Target {
            measure: "pool of 3 created in parallel vs its slowest guest's own boot",
            target: "≤ slowest + 2 s",
            keys: vec!["agents.pool3.over_own".into()],
            check: Check::AtMost(2000.0),
        },
        Target {
            measure: "hybrid-agent RSS with 10 VMs",
            target: "≤ 32 MiB",
            keys: vec!["agents.rss_10".into()],
            check: Check::AtMost(32.0),
        },
    ]
}

/// Checks every target against the rows.
pub fn verdicts(targets: &[Target], rows: &[Row]) -> Vec<Verdict> {
    targets
        .iter()
        .map(|t| {
            let mut measured = Vec::new();
            let mut met = Some(true);
            for key in &t.keys {
                let Some(row) = rows.iter().find(|r| &r.key == key) else {
                    met = None;
                    measured.push(format!("{key}: not measured"));
                    continue;
                };
                let (text, ok) = match t.check {
                    Check::AtMost(limit) => {
                        (row.unit.format(row.ours.median), row.ours.median <= limit)
                    }
                    Check::AtLeast(limit) => {
                        (row.unit.format(row.ours.median), row.ours.median >= limit)
                    }
                    Check::RatioAtMost(limit) => match row.ratio() {
                        Some(r) => (format!("{r:.2}×"), r <= limit),
                        None => ("no ratio".into(), false),
                    },
                    Check::RatioAtLeast(limit) => match row.ratio() {
                        Some(r) => (format!("{r:.2}×"), r >= limit),
                        None => ("no ratio".into(), false),
                    },
                };
                let text = if t.keys.len() > 1 {
                    format!("{}: {text}", row.name)
                } else {
                    text
                };
                measured.push(text);
                if !ok {
                    met = met.map(|_| false);
                }
            }
            Verdict {
                measure: t.measure,
                target: t.target,
                measured: measured.join("; "),
                met,
            }
        })
        .collect()
}

fn met_cell(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "yes",
        Some(false) => "**NO**",
        None => "not measured",
    }
}

/// The markdown report: header lines, the targets table, a plain list of
/// missed targets, then every measure grouped by section.
pub fn markdown(header: &[String], rows: &[Row], verdicts: &[Verdict], notes: &[String]) -> String {
    let mut out = String::from("# Hybrid benchmark report\n\n");
    for h in header {
        out.push_str(&format!("- {h}\n"));
    }
    out.push_str("\n## Targets\n\n| measure | target | measured | met? |\n|---|---|---|---|\n");
    for v in verdicts {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            v.measure,
            v.target,
            v.measured,
            met_cell(v.met)
        ));
    }
    let missed: Vec<&Verdict> = verdicts.iter().filter(|v| v.met == Some(false)).collect();
    out.push('\n');
    if missed.is_empty() {
        out.push_str("No measured target is missed.\n");
    } else {
        for v in missed {
            out.push_str(&format!(
                "**Target missed:** {} — target {}, measured {}.\n",
                v.measure, v.target, v.measured
            ));
        }
    }
    for n in notes {
        out.push_str(&format!("\n{n}\n"));
    }
    let mut groups: Vec<&str> = Vec::new();
    for r in rows {
        if !groups.contains(&r.group.as_str()) {
            groups.push(&r.group);
        }
    }
    out.push_str(
        "\n## Measures\n\nMedian (min – max) over the interleaved runs; ratio = ours / baseline of the medians \
         (time: above 1 is slower; req/s: below 1 is slower).\n",
    );
    for g in groups {
        out.push_str(&format!(
            "\n### {g}\n\n| measure | baseline | ours | ratio |\n|---|---|---|---|\n"
        ));
        for r in rows.iter().filter(|r| r.group == g) {
            let base = match &r.baseline {
                Some(b) => format!("{} ({})", b.cell(r.unit), r.baseline_name),
                None => "–".into(),
            };
            let ratio = r.ratio().map_or_else(|| "–".into(), |x| format!("{x:.2}×"));
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                r.name,
                base,
                r.ours.cell(r.unit),
                ratio
            ));
        }
    }
    out
}

/// The raw numbers: rows and verdicts, plus whatever `meta` holds.
pub fn json(meta: Value, rows: &[Row], verdicts: &[Verdict]) -> Value {
    json!({
        "meta": meta,
        "rows": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
        "targets": verdicts.iter().map(|v| json!({
            "measure": v.measure,
            "target": v.target,
            "measured": v.measured,
            "met": v.met,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, base: f64, ours: &[f64]) -> Row {
        Row::paired(
            "terraform",
            key,
            key,
            Unit::Millis,
            ("terraform_data", Stat::single(base)),
            Stat::of(ours).unwrap(),
        )
    }

    #[test]
    fn stat_is_median_and_range() {
        let s = Stat::of(&[3.0, 1.0, 2.0, 10.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 10.0));
        assert_eq!(s.samples, vec![3.0, 1.0, 2.0, 10.0]);
        assert_eq!(Stat::of(&[]), None);
    }

    #[test]
    fn verdicts_say_yes_no_and_not_measured() {
        let rows = vec![
            row("tf.noop_plan.1000", 100.0, &[120.0, 130.0, 140.0]),
            row("tf.plan.1000", 100.0, &[140.0]),
            row("tf.apply.1000", 100.0, &[200.0]),
            Row::alone(
                "provider",
                "provider.peak_rss",
                "peak RSS",
                Unit::MiB,
                Stat::single(12.0),
            ),
        ];
        let v = verdicts(&targets(1000), &rows);
        let by = |m: &str| v.iter().find(|v| v.measure.starts_with(m)).unwrap();
        assert_eq!(by("no-op plan").met, Some(true));
        assert_eq!(by("no-op plan").measured, "1.30×");
        assert_eq!(by("plan and apply").met, Some(false));
        assert_eq!(by("provider peak RSS").met, Some(true));
        assert_eq!(by("destroy").met, None);
        assert_eq!(by("plan and apply, N = 10").met, None, "N = 10 not run");
        let md = markdown(&["machine: test".into()], &rows, &v, &[]);
        assert!(
            md.contains("| no-op plan, largest N, vs terraform_data | ≤ 1.5× | 1.30× | yes |"),
            "{md}"
        );
        assert!(md.contains("**Target missed:** plan and apply"), "{md}");
        assert!(md.contains("| tf.noop_plan.1000 | 100.00 ms (terraform_data) | 130.00 ms (120.00 ms – 140.00 ms) | 1.30× |"), "{md}");
        assert!(md.contains("not measured"), "{md}");
    }

    #[test]
    fn the_small_n_targets_read_the_n_10_rows_beside_the_largest() {
        let rows = vec![
            row("tf.plan.10", 100.0, &[140.0]),
            row("tf.apply.10", 100.0, &[160.0]),
            row("tf.noop_plan.10", 100.0, &[120.0]),
            row("tf.plan.1000", 1000.0, &[1100.0]),
            row("tf.apply.1000", 1000.0, &[1200.0]),
        ];
        let v = verdicts(&targets(1000), &rows);
        let by = |m: &str| v.iter().find(|v| v.measure == m).unwrap();
        let small = by("plan and apply, N = 10, vs terraform_data");
        assert_eq!(small.met, Some(false), "apply of 10 is 1.6x");
        assert!(small.measured.contains("1.40×") && small.measured.contains("1.60×"));
        assert_eq!(by("no-op plan, N = 10, vs terraform_data").met, Some(true));
        assert_eq!(by("destroy, N = 10, vs terraform_data").met, None);
        assert_eq!(
            by("plan and apply, largest N, vs terraform_data").met,
            Some(true)
        );
    }
}
