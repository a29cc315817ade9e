//! Latency summaries: percentiles by linear interpolation between closest ranks (numpy's
//! default), so that P99 of 50 samples is not simply the maximum.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// KnowledgeBeast's latency block (milliseconds, rounded to 0.1 µs), plus the samples'
/// histogram for charts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub count: usize,
    /// Counts per bucket of `histogram_edges_ms` (for the HTML report).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub histogram: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub histogram_edges_ms: Vec<f64>,
}

/// The `p`-th percentile (0-100) of sorted `values`, interpolating linearly between the two
/// closest ranks; `None` for no values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    match sorted.len() {
        0 => None,
        1 => Some(sorted[0]),
        n => {
            let rank = (p / 100.0).clamp(0.0, 1.0) * (n - 1) as f64;
            let low = rank.floor() as usize;
            let high = rank.ceil() as usize;
            let weight = rank - low as f64;
            Some(sorted[low] + (sorted[high] - sorted[low]) * weight)
        }
    }
}

/// Milliseconds rounded to 0.1 µs (cache hits take well under a microsecond).
fn round3(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

impl Latency {
    pub fn of(samples: &[Duration]) -> Latency {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let Some(&min) = ms.first() else {
            return Latency::default();
        };
        let max = ms[ms.len() - 1];
        let mean = ms.iter().sum::<f64>() / ms.len() as f64;
        let (histogram, edges) = histogram(&ms, 20);
        Latency {
            p50_ms: round3(percentile(&ms, 50.0).unwrap_or(0.0)),
            p95_ms: round3(percentile(&ms, 95.0).unwrap_or(0.0)),
            p99_ms: round3(percentile(&ms, 99.0).unwrap_or(0.0)),
            mean_ms: round3(mean),
            min_ms: round3(min),
            max_ms: round3(max),
            count: ms.len(),
            histogram,
            histogram_edges_ms: edges,
        }
    }
}

/// `buckets` equal-width buckets between the minimum and the 99.9th percentile (the last
/// bucket takes everything above), so one outlier does not flatten the chart.
fn histogram(sorted: &[f64], buckets: usize) -> (Vec<u64>, Vec<f64>) {
    let low = sorted[0];
    let high = percentile(sorted, 99.9).unwrap_or(low).max(low + 1e-6);
    let width = (high - low) / buckets as f64;
    let mut counts = vec![0u64; buckets];
    for &x in sorted {
        let i = (((x - low) / width) as usize).min(buckets - 1);
        counts[i] += 1;
    }
    let edges = (0..=buckets)
        .map(|i| round3(low + width * i as f64))
        .collect();
    (counts, edges)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        // numpy.percentile(range(1, 11), [0, 50, 95, 99, 100]) = 1, 5.5, 9.55, 9.91, 10
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&v, 50.0), Some(5.5));
        assert!((percentile(&v, 95.0).unwrap() - 9.55).abs() < 1e-12);
        assert!((percentile(&v, 99.0).unwrap() - 9.91).abs() < 1e-12);
        assert_eq!(percentile(&v, 100.0), Some(10.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[4.0], 99.0), Some(4.0));
    }

    #[test]
    fn latency_summary_of_known_samples() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let l = Latency::of(&samples);
        assert_eq!(l.count, 100);
        assert_eq!(l.min_ms, 1.0);
        assert_eq!(l.max_ms, 100.0);
        assert_eq!(l.mean_ms, 50.5);
        assert_eq!(l.p50_ms, 50.5);
        assert_eq!(l.p99_ms, 99.01);
        assert_eq!(Latency::of(&[Duration::from_nanos(420)]).p50_ms, 0.0004);
        assert_eq!(l.histogram.iter().sum::<u64>(), 100);
        assert_eq!(l.histogram_edges_ms.len(), l.histogram.len() + 1);
        assert_eq!(Latency::of(&[]), Latency::default());
    }
}
