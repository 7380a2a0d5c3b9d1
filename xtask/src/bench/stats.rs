//! Order statistics for benchmark samples: median and percentiles of
//! durations, and the summary each benchmark reports.

use std::time::Duration;

use serde_json::{Value, json};

/// The `p`-th percentile (0–100) of `sorted` (ascending), by linear
/// interpolation between the closest ranks (the method of NumPy's default
/// and of most spreadsheets), so the median of an even count is the mean of
/// the two middle values. `None` for an empty sample or a `p` outside 0–100.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() || !(0.0..=100.0).contains(&p) {
        return None;
    }
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let frac = rank - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

/// The median (50th percentile) of `sorted` (ascending).
pub fn median(sorted: &[f64]) -> Option<f64> {
    percentile(sorted, 50.0)
}

/// Summary of a sample of durations, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Number of samples.
    pub n: usize,
    pub min_ms: f64,
    pub median_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Summary {
    /// Summarises `samples` (any order); `None` when there are none.
    pub fn of(samples: &[Duration]) -> Option<Summary> {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let n = ms.len();
        Some(Summary {
            n,
            min_ms: *ms.first()?,
            median_ms: median(&ms)?,
            p90_ms: percentile(&ms, 90.0)?,
            p99_ms: percentile(&ms, 99.0)?,
            max_ms: *ms.last()?,
            mean_ms: ms.iter().sum::<f64>() / n as f64,
        })
    }

    /// The summary as JSON (milliseconds).
    pub fn to_json(self) -> Value {
        json!({
            "n": self.n,
            "min_ms": self.min_ms,
            "median_ms": self.median_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "mean_ms": self.mean_ms,
        })
    }
}

/// `ours / baseline`, or `None` when the baseline is zero (no ratio).
pub fn ratio(ours: f64, baseline: f64) -> Option<f64> {
    (baseline > 0.0).then(|| ours / baseline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[1.0, 2.0, 9.0]), Some(2.0));
        assert_eq!(median(&[1.0, 2.0, 4.0, 10.0]), Some(3.0));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn percentiles_interpolate_between_ranks() {
        let s: Vec<f64> = (1..=11).map(f64::from).collect();
        assert_eq!(percentile(&s, 0.0), Some(1.0));
        assert_eq!(percentile(&s, 100.0), Some(11.0));
        assert_eq!(percentile(&s, 90.0), Some(10.0));
        // Rank 0.99 * 10 = 9.9: nine tenths of the way from 10 to 11.
        let p99 = percentile(&s, 99.0).unwrap();
        assert!((p99 - 10.9).abs() < 1e-9, "{p99}");
        let two = [10.0, 20.0];
        assert_eq!(percentile(&two, 25.0), Some(12.5));
    }

    #[test]
    fn percentile_rejects_out_of_range() {
        assert_eq!(percentile(&[1.0], -1.0), None);
        assert_eq!(percentile(&[1.0], 100.5), None);
        assert_eq!(percentile(&[1.0], f64::NAN), None);
    }

    #[test]
    fn summary_sorts_its_input() {
        let ms = |v: u64| Duration::from_millis(v);
        let s = Summary::of(&[ms(30), ms(10), ms(20), ms(40)]).unwrap();
        assert_eq!(s.n, 4);
        assert_eq!(s.min_ms, 10.0);
        assert_eq!(s.max_ms, 40.0);
        assert_eq!(s.median_ms, 25.0);
        assert_eq!(s.mean_ms, 25.0);
        assert!((s.p90_ms - 37.0).abs() < 1e-9, "{}", s.p90_ms);
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn ratio_needs_a_baseline() {
        assert_eq!(ratio(3.0, 2.0), Some(1.5));
        assert_eq!(ratio(3.0, 0.0), None);
    }
}
