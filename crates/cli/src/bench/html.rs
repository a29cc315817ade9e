//! The HTML report: one standalone page (no script, no external file) with charts drawn as
//! inline SVG: latency distributions, throughput against workers, latency against corpus size
//! and against stored patterns.

use std::fmt::Write;

use mneme_app::bench::{Latency, Report};

use super::text::show_ms;

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" upper bound for an axis (1, 2 or 5 times a power of ten).
fn nice_max(value: f64) -> f64 {
    if value <= 0.0 || !value.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(value.log10().floor());
    for step in [1.0, 2.0, 5.0, 10.0] {
        if value <= step * power {
            return step * power;
        }
    }
    10.0 * power
}

/// An axis tick: short enough never to reach the axis label (`12.5k`, `2M`).
fn fmt_tick(x: f64) -> String {
    let short = |value: f64, unit: &str| {
        let text = if value >= 100.0 {
            format!("{value:.0}")
        } else {
            format!("{value:.1}")
        };
        format!("{}{unit}", text.strip_suffix(".0").unwrap_or(&text))
    };
    if x >= 1e9 {
        short(x / 1e9, "G")
    } else if x >= 1e6 {
        short(x / 1e6, "M")
    } else if x >= 1e4 {
        short(x / 1e3, "k")
    } else {
        fmt_num(x)
    }
}

fn fmt_num(x: f64) -> String {
    if x >= 100.0 || x == x.round() {
        format!("{x:.0}")
    } else if x >= 1.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

const W: f64 = 520.0;
const H: f64 = 260.0;
const LEFT: f64 = 64.0;
/// Room for half of the last x tick, centred on the plot's right edge.
const RIGHT: f64 = 28.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 46.0;
const COLORS: [&str; 4] = ["#2563eb", "#dc2626", "#16a34a", "#9333ea"];

fn frame(out: &mut String, title: &str, y_max: f64, y_label: &str) {
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"{t}\">\
         <text x=\"{cx}\" y=\"18\" text-anchor=\"middle\" class=\"title\">{t}</text>",
        cx = W / 2.0,
        t = esc(title)
    );
    let plot_h = H - TOP - BOTTOM;
    for i in 0..=4 {
        let value = y_max * f64::from(i) / 4.0;
        let y = TOP + plot_h - plot_h * f64::from(i) / 4.0;
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{x2}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"grid\"/>\
             <text x=\"{tx}\" y=\"{ty:.1}\" text-anchor=\"end\" class=\"tick\">{v}</text>",
            x2 = W - RIGHT,
            tx = LEFT - 6.0,
            ty = y + 4.0,
            v = fmt_tick(value)
        );
    }
    let _ = write!(
        out,
        "<text x=\"14\" y=\"{cy}\" transform=\"rotate(-90 14 {cy})\" text-anchor=\"middle\" class=\"axis\">{}</text>",
        esc(y_label),
        cy = TOP + plot_h / 2.0
    );
}

/// Vertical bars with a label under each.
pub fn bar_chart(
    title: &str,
    labels: &[String],
    values: &[f64],
    y_label: &str,
    x_label: &str,
) -> String {
    let mut out = String::new();
    let y_max = nice_max(values.iter().copied().fold(0.0, f64::max));
    frame(&mut out, title, y_max, y_label);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let n = values.len().max(1) as f64;
    let slot = plot_w / n;
    let bar_w = (slot * 0.7).max(1.0);
    for (i, (label, value)) in labels.iter().zip(values).enumerate() {
        let h = plot_h * value / y_max;
        let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
        let y = TOP + plot_h - h;
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar_w:.1}\" height=\"{h:.1}\" fill=\"{c}\"><title>{l}: {v}</title></rect>",
            c = COLORS[0],
            l = esc(label),
            v = fmt_num(*value)
        );
        if labels.len() <= 12 || i % (labels.len() / 10).max(1) == 0 {
            let _ = write!(
                out,
                "<text x=\"{cx:.1}\" y=\"{ly}\" text-anchor=\"middle\" class=\"tick\">{}</text>",
                esc(label),
                cx = x + bar_w / 2.0,
                ly = TOP + plot_h + 16.0
            );
        }
    }
    let _ = write!(
        out,
        "<text x=\"{cx}\" y=\"{ly}\" text-anchor=\"middle\" class=\"axis\">{}</text></svg>",
        esc(x_label),
        cx = LEFT + plot_w / 2.0,
        ly = H - 8.0
    );
    out
}

/// Lines over numeric x values (log scale on x when the values span more than 20×).
pub fn line_chart(
    title: &str,
    xs: &[f64],
    series: &[(&str, Vec<f64>)],
    y_label: &str,
    x_label: &str,
) -> String {
    let mut out = String::new();
    let y_max = nice_max(
        series
            .iter()
            .flat_map(|(_, ys)| ys.iter().copied())
            .fold(0.0, f64::max),
    );
    frame(&mut out, title, y_max, y_label);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let (lo, hi) = xs
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    let log = lo > 0.0 && hi / lo > 20.0;
    let pos = |x: f64| {
        if (hi - lo).abs() < f64::EPSILON {
            LEFT + plot_w / 2.0
        } else if log {
            LEFT + plot_w * (x.ln() - lo.ln()) / (hi.ln() - lo.ln())
        } else {
            LEFT + plot_w * (x - lo) / (hi - lo)
        }
    };
    for &x in xs {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\" class=\"tick\">{}</text>",
            pos(x),
            TOP + plot_h + 16.0,
            fmt_tick(x)
        );
    }
    for (k, (name, ys)) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let points: Vec<String> = xs
            .iter()
            .zip(ys)
            .map(|(&x, &y)| format!("{:.1},{:.1}", pos(x), TOP + plot_h - plot_h * y / y_max))
            .collect();
        let _ = write!(
            out,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>",
            points.join(" ")
        );
        for (&x, &y) in xs.iter().zip(ys) {
            let _ = write!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{color}\"><title>{}: {} at {}</title></circle>",
                pos(x),
                TOP + plot_h - plot_h * y / y_max,
                esc(name),
                fmt_num(y),
                fmt_num(x)
            );
        }
        let _ = write!(
            out,
            "<rect x=\"{lx}\" y=\"{ly}\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{tx}\" y=\"{ty}\" class=\"tick\">{}</text>",
            esc(name),
            lx = LEFT + 10.0 + 110.0 * k as f64,
            ly = TOP + 2.0,
            tx = LEFT + 24.0 + 110.0 * k as f64,
            ty = TOP + 11.0
        );
    }
    let _ = write!(
        out,
        "<text x=\"{cx}\" y=\"{ly}\" text-anchor=\"middle\" class=\"axis\">{}{}</text></svg>",
        esc(x_label),
        if log { " (log scale)" } else { "" },
        cx = LEFT + plot_w / 2.0,
        ly = H - 8.0
    );
    out
}

fn histogram(title: &str, latency: &Latency) -> String {
    if latency.histogram.is_empty() {
        return String::new();
    }
    let micro = latency
        .histogram_edges_ms
        .last()
        .is_some_and(|&max| max < 0.1);
    let (scale, unit) = if micro { (1000.0, "µs") } else { (1.0, "ms") };
    let labels: Vec<String> = latency.histogram_edges_ms[..latency.histogram.len()]
        .iter()
        .map(|e| fmt_num(e * scale))
        .collect();
    let values: Vec<f64> = latency.histogram.iter().map(|&c| c as f64).collect();
    bar_chart(
        title,
        &labels,
        &values,
        "queries",
        &format!("latency ({unit}, bucket start)"),
    )
}

fn chips(out: &mut String, l: &Latency) {
    let _ = write!(out, "<div class=\"chips\">");
    for (name, value) in [
        ("P50", l.p50_ms),
        ("P95", l.p95_ms),
        ("P99", l.p99_ms),
        ("Mean", l.mean_ms),
    ] {
        let _ = write!(
            out,
            "<div class=\"chip\"><span>{name}</span><b>{}</b></div>",
            show_ms(value)
        );
    }
    let _ = write!(out, "</div>");
}

fn row(out: &mut String, cells: &[String]) {
    let _ = write!(out, "<tr>");
    for cell in cells {
        let _ = write!(out, "<td>{}</td>", esc(cell));
    }
    let _ = write!(out, "</tr>");
}

pub fn render(r: &Report) -> String {
    let mut out = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>mneme benchmark report</title><style>\
         body{font-family:system-ui,sans-serif;max-width:76rem;margin:1.5rem auto;padding:0 1rem;color:#1f2328;background:#fafbfc}\
         h1{margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}\
         table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.25rem .8rem;border-bottom:1px solid #eaeef2;text-align:right}\
         td:first-child,th:first-child{text-align:left}.chips{display:flex;gap:.6rem;margin:.4rem 0 .8rem}\
         .chip{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:.4rem .8rem}.chip span{color:#57606a;margin-right:.4rem}\
         .charts{display:flex;flex-wrap:wrap;gap:1rem}svg{background:#fff;border:1px solid #d0d7de;border-radius:6px}\
         .title{font:bold 13px system-ui}.tick{font:11px system-ui;fill:#57606a}.axis{font:12px system-ui;fill:#1f2328}\
         .grid{stroke:#eaeef2}.muted{color:#57606a}</style></head><body>",
    );
    let s = &r.system_info;
    let _ = write!(
        out,
        "<h1>mneme benchmark report</h1><p class=\"muted\">{} · mneme {} · {} {} · {} CPUs · {:.1} GB</p>",
        esc(&r.timestamp),
        esc(&s.mneme_version),
        esc(&s.platform),
        esc(&s.platform_version),
        s.cpu_count,
        s.total_memory_gb
    );

    let _ = write!(out, "<h2>System information</h2><table>");
    row(&mut out, &["Processor".into(), s.processor.clone()]);
    row(
        &mut out,
        &[
            "Corpus".into(),
            format!(
                "{} ({} documents, {} chunks, {} queries)",
                r.corpus.source, r.corpus.documents, r.corpus.chunks, r.corpus.queries
            ),
        ],
    );
    if let Some(ingest) = &r.ingest {
        row(
            &mut out,
            &[
                "Ingest".into(),
                format!(
                    "{:.3} s, {:.0} docs/s, {:.1} MB/s",
                    ingest.elapsed_seconds, ingest.docs_per_second, ingest.mb_per_second
                ),
            ],
        );
    }
    row(
        &mut out,
        &[
            "Memory".into(),
            format!(
                "resident (RSS) {:.1} MB, {:.2} % of this machine's RAM; virtual size (VMS) {:.1} MB, address space reserved, most of it never in RAM",
                r.memory_usage.rss_mb, r.memory_usage.percent, r.memory_usage.vms_mb
            ),
        ],
    );
    let _ = write!(out, "</table>");

    let _ = write!(out, "<h2>Query latency</h2><h3>Uncached</h3>");
    chips(&mut out, &r.query_latency);
    let _ = write!(out, "<h3>Cached</h3>");
    chips(&mut out, &r.cached_query_latency);
    let _ = write!(
        out,
        "<div class=\"charts\">{}{}</div>",
        histogram("Uncached query latency", &r.query_latency),
        histogram("Cached query latency", &r.cached_query_latency)
    );

    let per_worker = r
        .throughput_concurrent
        .first()
        .map_or(0, |t| t.total_queries / t.workers.max(1));
    let _ = write!(
        out,
        "<h2>Throughput</h2><p class=\"muted\">Uncached queries from several threads at once, in two separate runs: \
         the <b>throughput test</b> (the table, KnowledgeBeast's <code>throughput_sequential</code> and <code>throughput_concurrent</code>: \
         one worker running {seq} queries, then each worker count running {per_worker} queries per worker) and the \
         <b>scalability test</b> (the chart, KnowledgeBeast's <code>scalability</code>: every worker count measured again, {per_worker} queries per worker). \
         Where both measured the same worker count, the figures differ by the run-to-run noise of this machine.</p>\
         <h3>Throughput test</h3><table><tr><th>Workers</th><th>Queries / s</th><th>Total queries</th><th>Elapsed</th></tr>",
        seq = r.throughput_sequential.total_queries,
    );
    for t in std::iter::once(&r.throughput_sequential).chain(&r.throughput_concurrent) {
        row(
            &mut out,
            &[
                if t.workers == 1 {
                    "1 (sequential)".to_owned()
                } else {
                    t.workers.to_string()
                },
                format!("{:.0}", t.queries_per_second),
                t.total_queries.to_string(),
                format!("{:.3} s", t.elapsed_seconds),
            ],
        );
    }
    let _ = write!(out, "</table>");
    let labels: Vec<String> = r
        .scalability
        .worker_counts
        .iter()
        .map(ToString::to_string)
        .collect();
    let _ = write!(
        out,
        "<h3>Scalability test</h3><div class=\"charts\">{}</div>",
        bar_chart(
            "Scalability test: throughput against workers",
            &labels,
            &r.scalability.throughput,
            "queries / s",
            "workers",
        )
    );
    if !r.corpus_scalability.is_empty() {
        let xs: Vec<f64> = r
            .corpus_scalability
            .iter()
            .map(|p| p.documents as f64)
            .collect();
        let _ = write!(
            out,
            "<h2>Corpus size</h2><p class=\"muted\">Uncached query latency on generated corpora of several sizes.</p><div class=\"charts\">{}</div>",
            line_chart(
                "Latency against corpus size",
                &xs,
                &[
                    (
                        "P50",
                        r.corpus_scalability.iter().map(|p| p.p50_ms).collect(),
                    ),
                    (
                        "P99",
                        r.corpus_scalability.iter().map(|p| p.p99_ms).collect(),
                    ),
                ],
                "ms",
                "documents",
            )
        );
    }

    let c = &r.cache_performance;
    let _ = write!(out, "<h2>Cache performance</h2><table>");
    row(
        &mut out,
        &["Hit ratio".into(), format!("{:.1}%", c.hit_ratio * 100.0)],
    );
    row(
        &mut out,
        &["Hits / misses".into(), format!("{} / {}", c.hits, c.misses)],
    );
    row(
        &mut out,
        &[
            "Average hit latency".into(),
            format!("{:.2} µs", c.avg_hit_latency_us),
        ],
    );
    row(
        &mut out,
        &[
            "Average miss latency".into(),
            format!("{:.2} µs", c.avg_miss_latency_us),
        ],
    );
    row(
        &mut out,
        &[
            "Utilisation".into(),
            format!(
                "{:.1}% ({} of {})",
                c.utilization * 100.0,
                c.size,
                c.capacity
            ),
        ],
    );
    let _ = write!(out, "</table>");

    if !r.pattern_engine.is_empty() {
        let _ = write!(
            out,
            "<h2>Pattern engine</h2><table><tr><th>Stored patterns</th><th>Learn / s</th><th>Observe / s</th><th>Observe P99</th><th>Predict / s</th><th>Predict P50</th><th>Predict P99</th><th>Predictions per call</th></tr>"
        );
        for p in &r.pattern_engine {
            row(
                &mut out,
                &[
                    p.patterns.to_string(),
                    format!("{:.0}", p.learn_per_second),
                    format!("{:.0}", p.observe_per_second),
                    show_ms(p.observe.p99_ms),
                    format!("{:.0}", p.predict_per_second),
                    show_ms(p.predict.p50_ms),
                    show_ms(p.predict.p99_ms),
                    format!("{:.1}", p.predictions_avg),
                ],
            );
        }
        let _ = write!(out, "</table>");
        let xs: Vec<f64> = r.pattern_engine.iter().map(|p| p.patterns as f64).collect();
        let _ = write!(
            out,
            "<div class=\"charts\">{}</div>",
            line_chart(
                "Prediction latency against stored patterns",
                &xs,
                &[
                    (
                        "P50",
                        r.pattern_engine.iter().map(|p| p.predict.p50_ms).collect()
                    ),
                    (
                        "P99",
                        r.pattern_engine.iter().map(|p| p.predict.p99_ms).collect()
                    )
                ],
                "ms",
                "stored patterns",
            )
        );
    }

    if !r.http.is_empty() {
        let _ = write!(
            out,
            "<h2>HTTP</h2><table><tr><th>Request</th><th>Connections</th><th>Requests / s</th><th>P50</th><th>P99</th><th>Errors</th></tr>"
        );
        for h in &r.http {
            row(
                &mut out,
                &[
                    h.name.clone(),
                    h.connections.to_string(),
                    format!("{:.0}", h.requests_per_second),
                    show_ms(h.latency.p50_ms),
                    show_ms(h.latency.p99_ms),
                    h.errors.to_string(),
                ],
            );
        }
        let _ = write!(out, "</table>");
    }
    let _ = writeln!(
        out,
        "<p class=\"muted\">Percentiles interpolate linearly between the closest ranks. Generated by <code>mneme bench</code>.</p></body></html>"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_axis_bounds() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(0.37), 0.5);
        assert_eq!(nice_max(3.2), 5.0);
        assert_eq!(nice_max(1000.0), 1000.0);
        assert_eq!(nice_max(1001.0), 2000.0);
    }

    #[test]
    fn ticks_stay_short() {
        assert_eq!(fmt_tick(0.25), "0.250");
        assert_eq!(fmt_tick(2500.0), "2500");
        assert_eq!(fmt_tick(10000.0), "10k");
        assert_eq!(fmt_tick(12500.0), "12.5k");
        assert_eq!(fmt_tick(2_000_000.0), "2M");
        assert_eq!(fmt_tick(123_456.0), "123k");
    }

    /// Issue "The first hour of a new user": the y-axis label overlapped a 5-digit tick and the
    /// last x tick ("10000") was clipped. With ticks of at most 5 characters (about 7 px each
    /// at 11 px), a tick ends left of the rotated axis label (12 px, centred at x = 14) and
    /// half a centred tick fits in the right margin.
    #[test]
    fn ticks_fit_beside_the_axis_label_and_inside_the_right_edge() {
        let widest = (0..55)
            .map(|e| fmt_tick(1.37 * 1.5f64.powi(e)).chars().count())
            .max()
            .unwrap();
        assert!(widest <= 5, "{widest}");
        let tick_px = 7.0 * widest as f64;
        assert!(LEFT - 6.0 - tick_px > 14.0 + 7.0);
        assert!(tick_px / 2.0 < RIGHT);
    }

    #[test]
    fn the_page_is_standalone_with_inline_charts() {
        let report = mneme_app::bench::Report {
            query_latency: Latency::of(&[
                std::time::Duration::from_micros(300),
                std::time::Duration::from_micros(500),
            ]),
            scalability: mneme_app::bench::Scalability {
                worker_counts: vec![1, 2],
                throughput: vec![100.0, 180.0],
            },
            ..Default::default()
        };
        let html = render(&report);
        assert!(html.starts_with("<!doctype html>"));
        // The table and the chart are two runs, and say so.
        assert!(
            html.contains("<h3>Throughput test</h3>") && html.contains("<h3>Scalability test</h3>")
        );
        assert!(html.contains("two separate runs"));
        // The share of RAM is the resident size's, not the virtual size's.
        assert!(
            html.contains("resident (RSS) 0.0 MB, 0.00 % of this machine&#39;s RAM")
                || html.contains("resident (RSS) 0.0 MB, 0.00 % of this machine's RAM"),
            "{html}"
        );
        assert!(html.contains("<svg") && html.contains("<rect"));
        assert!(!html.contains("<script"), "no script");
        assert!(
            !html.contains("src=") && !html.contains("href="),
            "no external resource"
        );
    }
}
