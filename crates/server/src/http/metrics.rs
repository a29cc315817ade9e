//! A small Prometheus registry: counters and histograms with labels, rendered in the text
//! exposition format. Request metrics are recorded by the middleware; engine figures
//! (documents, cache hits) are read from the engines when `/metrics` is scraped.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Latency buckets in seconds, from 100 µs to 10 s. They include every bound of the KATO
/// guide's histograms, which are derived from them at scrape time (see [`Derived`]).
pub const BUCKETS: [f64; 17] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0,
    2.5, 5.0, 10.0,
];

/// KATO's tuning guide's buckets for `kato_request_duration_seconds`.
pub const KATO_REQUEST_BUCKETS: [f64; 10] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
/// The guide's buckets for `kato_observation_duration_seconds`.
pub const KATO_OBSERVATION_BUCKETS: [f64; 6] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1];
/// The guide's buckets for `kato_prediction_duration_seconds`.
pub const KATO_PREDICTION_BUCKETS: [f64; 7] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0];

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

pub type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Default)]
struct Families {
    counters: BTreeMap<&'static str, (&'static str, BTreeMap<Labels, f64>)>,
    histograms: BTreeMap<&'static str, (&'static str, BTreeMap<Labels, Histogram>)>,
}

#[derive(Debug, Default)]
pub struct Metrics {
    families: Mutex<Families>,
}

/// A value read at scrape time: a gauge, or a counter kept by an engine (its cache hits).
pub struct Gauge {
    pub name: &'static str,
    pub help: &'static str,
    pub labels: Labels,
    pub value: f64,
    /// Declared `counter` (`rate()` applies) instead of `gauge`.
    pub counter: bool,
}

/// Picks a recorded series for a derived family and gives its labels there (`None`: not
/// part of it). Called with the source family's name.
pub type Select<'a> = &'a dyn Fn(&str, &Labels) -> Option<Labels>;

/// A family computed at scrape time from recorded ones, summed over the series `select` maps
/// to the same labels.
pub enum Derived<'a> {
    /// Summed from counters, or from the counts of histograms.
    Counter {
        name: &'static str,
        help: &'static str,
        from: &'a [&'static str],
        select: Select<'a>,
    },
    Histogram {
        name: &'static str,
        help: &'static str,
        /// A subset of [`BUCKETS`].
        bounds: &'static [f64],
        from: &'a [&'static str],
        select: Select<'a>,
    },
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

    /// Renders `derived`: families computed from the recorded ones at scrape time, so that
    /// the names the guides query cost the requests nothing.
    pub fn render_derived(&self, derived: &[Derived<'_>]) -> String {
        let families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for family in derived {
            match family {
                Derived::Counter {
                    name,
                    help,
                    from,
                    select,
                } => {
                    let mut merged: BTreeMap<Labels, f64> = BTreeMap::new();
                    for source in *from {
                        // A source is a counter, or a histogram whose count is the counter.
                        let counted =
                            families
                                .counters
                                .get(source)
                                .into_iter()
                                .flat_map(|(_, values)| {
                                    values.iter().map(|(labels, value)| (labels, *value))
                                });
                        let observed =
                            families
                                .histograms
                                .get(source)
                                .into_iter()
                                .flat_map(|(_, values)| {
                                    values.iter().map(|(labels, h)| (labels, h.count as f64))
                                });
                        for (labels, value) in counted.chain(observed) {
                            if let Some(labels) = select(source, labels) {
                                *merged.entry(labels).or_insert(0.0) += value;
                            }
                        }
                    }
                    if merged.is_empty() {
                        continue;
                    }
                    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
                    for (labels, value) in merged {
                        let _ = writeln!(out, "{name}{} {value}", render_labels(&labels, None));
                    }
                }
                Derived::Histogram {
                    name,
                    help,
                    bounds,
                    from,
                    select,
                } => {
                    let mut merged: BTreeMap<Labels, (Vec<u64>, u64, f64)> = BTreeMap::new();
                    for source in *from {
                        let Some((_, values)) = families.histograms.get(source) else {
                            continue;
                        };
                        for (labels, histogram) in values {
                            let Some(labels) = select(source, labels) else {
                                continue;
                            };
                            let entry = merged
                                .entry(labels)
                                .or_insert_with(|| (vec![0; bounds.len()], 0, 0.0));
                            for (i, bound) in bounds.iter().enumerate() {
                                // Every derived bound is one of the recorded ones.
                                if let Some(at) = BUCKETS.iter().position(|b| b == bound) {
                                    entry.0[i] += histogram.counts[at];
                                }
                            }
                            entry.1 += histogram.count;
                            entry.2 += histogram.sum;
                        }
                    }
                    if merged.is_empty() {
                        continue;
                    }
                    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
                    for (labels, (counts, count, sum)) in merged {
                        for (bound, n) in bounds.iter().zip(&counts) {
                            let le = bound.to_string();
                            let _ = writeln!(
                                out,
                                "{name}_bucket{} {n}",
                                render_labels(&labels, Some(&le))
                            );
                        }
                        let _ = writeln!(
                            out,
                            "{name}_bucket{} {count}",
                            render_labels(&labels, Some("+Inf"))
                        );
                        let _ = writeln!(out, "{name}_sum{} {sum}", render_labels(&labels, None));
                        let _ =
                            writeln!(out, "{name}_count{} {count}", render_labels(&labels, None));
                    }
                }
            }
        }
        out
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
                for (bound, count) in BUCKETS.iter().zip(&histogram.counts) {
                    let _ = writeln!(
                        out,
                        "{name}_bucket{} {count}",
                        render_labels(labels, Some(&bound.to_string())),
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
                let kind = if gauge.counter { "counter" } else { "gauge" };
                let _ = writeln!(
                    out,
                    "# HELP {} {}\n# TYPE {} {kind}",
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
