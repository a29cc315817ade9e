//! A small Prometheus registry: counters and histograms with labels, rendered in the text
//! exposition format. Request metrics are recorded by the middleware; engine figures
//! (documents, cache hits) are read from the engines when `/metrics` is scraped.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Latency buckets in seconds, from 100 µs to 10 s.
pub const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

#[derive(Clone, Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Default)]
struct Families {
    counters: BTreeMap<&'static str, (&'static str, BTreeMap<Labels, f64>)>,
    histograms: BTreeMap<&'static str, (&'static str, BTreeMap<Labels, Histogram>)>,
}

#[derive(Debug, Default)]
pub struct Metrics {
    families: Mutex<Families>,
}

/// A gauge value read at scrape time.
pub struct Gauge {
    pub name: &'static str,
    pub help: &'static str,
    pub labels: Labels,
    pub value: f64,
}

impl Metrics {
    pub fn add(&self, name: &'static str, help: &'static str, labels: Labels, by: f64) {
        let mut families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let family = families
            .counters
            .entry(name)
            .or_insert_with(|| (help, BTreeMap::new()));
        *family.1.entry(labels).or_insert(0.0) += by;
    }

    pub fn observe(&self, name: &'static str, help: &'static str, labels: Labels, seconds: f64) {
        let mut families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let family = families
            .histograms
            .entry(name)
            .or_insert_with(|| (help, BTreeMap::new()));
        family.1.entry(labels).or_default().observe(seconds);
    }

    /// A counter's total over all label sets.
    pub fn total(&self, name: &str) -> f64 {
        let families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        families
            .counters
            .get(name)
            .map_or(0.0, |(_, values)| values.values().sum())
    }

    /// Count and sum of a histogram over all label sets.
    pub fn histogram_totals(&self, name: &str) -> (u64, f64) {
        let families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        families
            .histograms
            .get(name)
            .map_or((0, 0.0), |(_, values)| {
                values
                    .values()
                    .fold((0, 0.0), |(c, s), h| (c + h.count, s + h.sum))
            })
    }

    /// The text exposition of every family, plus `gauges`.
    pub fn render(&self, gauges: &[Gauge]) -> String {
        let families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for (name, (help, values)) in &families.counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, value) in values {
                let _ = writeln!(out, "{name}{} {value}", render_labels(labels, None));
            }
        }
        for (name, (help, values)) in &families.histograms {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
            for (labels, histogram) in values {
                for (i, bound) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "{name}_bucket{} {}",
                        render_labels(labels, Some(&bound.to_string())),
                        histogram.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "{name}_bucket{} {}",
                    render_labels(labels, Some("+Inf")),
                    histogram.count
                );
                let _ = writeln!(
                    out,
                    "{name}_sum{} {}",
                    render_labels(labels, None),
                    histogram.sum
                );
                let _ = writeln!(
                    out,
                    "{name}_count{} {}",
                    render_labels(labels, None),
                    histogram.count
                );
            }
        }
        let mut described = std::collections::BTreeSet::new();
        for gauge in gauges {
            if described.insert(gauge.name) {
                let _ = writeln!(
                    out,
                    "# HELP {} {}\n# TYPE {} gauge",
                    gauge.name, gauge.help, gauge.name
                );
            }
            let _ = writeln!(
                out,
                "{}{} {}",
                gauge.name,
                render_labels(&gauge.labels, None),
                gauge.value
            );
        }
        out
    }
}

fn render_labels(labels: &Labels, le: Option<&str>) -> String {
    if labels.is_empty() && le.is_none() {
        return String::new();
    }
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    format!("{{{}}}", parts.join(","))
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
