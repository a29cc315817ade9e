//! `--baseline FILE --max-regression PCT`: the current report against an earlier one, figure
//! by figure, as ratios; a regression is a figure worse by more than PCT percent.

use std::fmt::Write;

use mneme_app::bench::Report;

/// One compared figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub name: String,
    pub baseline: f64,
    pub current: f64,
    /// Whether a larger value is better (throughput) or worse (latency).
    pub higher_is_better: bool,
    pub regressed: bool,
}

impl Line {
    /// current / baseline.
    pub fn ratio(&self) -> f64 {
        if self.baseline == 0.0 {
            f64::NAN
        } else {
            self.current / self.baseline
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Comparison {
    pub lines: Vec<Line>,
    pub max_regression: f64,
}

impl Comparison {
    pub fn regressed(&self) -> bool {
        self.lines.iter().any(|l| l.regressed)
    }

    pub fn render(&self) -> String {
        let mut out = format!(
            "comparison with the baseline (regression: worse by more than {}%)\n",
            self.max_regression
        );
        for line in &self.lines {
            let _ = writeln!(
                out,
                "  {:<44} {:>12.3} -> {:>12.3}  x{:<7.3} {}",
                line.name,
                line.baseline,
                line.current,
                line.ratio(),
                if line.regressed { "REGRESSION" } else { "ok" }
            );
        }
        let regressions = self.lines.iter().filter(|l| l.regressed).count();
        let _ = writeln!(
            out,
            "  {} figures compared, {regressions} regressed",
            self.lines.len()
        );
        out
    }
}

/// Figures present in both reports.
pub fn compare(baseline: &Report, current: &Report, max_regression: f64) -> Comparison {
    let mut pairs: Vec<(String, f64, f64, bool)> = vec![
        (
            "query_latency.p50_ms".into(),
            baseline.query_latency.p50_ms,
            current.query_latency.p50_ms,
            false,
        ),
        (
            "query_latency.p99_ms".into(),
            baseline.query_latency.p99_ms,
            current.query_latency.p99_ms,
            false,
        ),
        (
            "cached_query_latency.p99_ms".into(),
            baseline.cached_query_latency.p99_ms,
            current.cached_query_latency.p99_ms,
            false,
        ),
        (
            "throughput_sequential.queries_per_second".into(),
            baseline.throughput_sequential.queries_per_second,
            current.throughput_sequential.queries_per_second,
            true,
        ),
    ];
    for b in &baseline.throughput_concurrent {
        if let Some(c) = current
            .throughput_concurrent
            .iter()
            .find(|c| c.workers == b.workers)
        {
            pairs.push((
                format!("throughput_concurrent[{} workers].qps", b.workers),
                b.queries_per_second,
                c.queries_per_second,
                true,
            ));
        }
    }
    if let (Some(b), Some(c)) = (&baseline.ingest, &current.ingest) {
        pairs.push((
            "ingest.docs_per_second".into(),
            b.docs_per_second,
            c.docs_per_second,
            true,
        ));
    }
    for b in &baseline.pattern_engine {
        if let Some(c) = current
            .pattern_engine
            .iter()
            .find(|c| c.patterns == b.patterns)
        {
            pairs.push((
                format!("pattern_engine[{}].learn_per_second", b.patterns),
                b.learn_per_second,
                c.learn_per_second,
                true,
            ));
            pairs.push((
                format!("pattern_engine[{}].observe.p99_ms", b.patterns),
                b.observe.p99_ms,
                c.observe.p99_ms,
                false,
            ));
            pairs.push((
                format!("pattern_engine[{}].predict.p99_ms", b.patterns),
                b.predict.p99_ms,
                c.predict.p99_ms,
                false,
            ));
        }
    }
    for b in &baseline.http {
        if let Some(c) = current
            .http
            .iter()
            .find(|c| c.name == b.name && c.connections == b.connections)
        {
            pairs.push((
                format!("http[{} c={}].rps", b.name, b.connections),
                b.requests_per_second,
                c.requests_per_second,
                true,
            ));
        }
    }
    let limit = max_regression / 100.0;
    let lines = pairs
        .into_iter()
        .filter(|(_, b, c, _)| *b > 0.0 && *c >= 0.0)
        .map(|(name, baseline, current, higher_is_better)| {
            let regressed = if higher_is_better {
                current < baseline * (1.0 - limit)
            } else {
                current > baseline * (1.0 + limit)
            };
            Line {
                name,
                baseline,
                current,
                higher_is_better,
                regressed,
            }
        })
        .collect();
    Comparison {
        lines,
        max_regression,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(p99: f64, qps: f64) -> Report {
        let mut r = Report::default();
        r.query_latency.p50_ms = p99 / 2.0;
        r.query_latency.p99_ms = p99;
        r.cached_query_latency.p99_ms = 0.001;
        r.throughput_sequential.queries_per_second = qps;
        r
    }

    #[test]
    fn ratios_decide_regressions_in_both_directions() {
        let baseline = report(1.0, 1000.0);
        assert!(
            !compare(&baseline, &report(1.05, 960.0), 10.0).regressed(),
            "within 10%"
        );
        let slower = compare(&baseline, &report(1.2, 1000.0), 10.0);
        assert!(slower.regressed());
        assert_eq!(
            slower
                .lines
                .iter()
                .filter(|l| l.regressed)
                .map(|l| l.name.as_str())
                .collect::<Vec<_>>(),
            ["query_latency.p50_ms", "query_latency.p99_ms"]
        );
        let fewer = compare(&baseline, &report(1.0, 850.0), 10.0);
        assert!(fewer.regressed());
        assert!((fewer.lines[3].ratio() - 0.85).abs() < 1e-12);
        assert!(
            !compare(&baseline, &report(0.5, 2000.0), 10.0).regressed(),
            "better is never a regression"
        );
        assert!(
            compare(&baseline, &report(1.2, 1000.0), 25.0)
                .render()
                .contains("0 regressed")
        );
    }
}
