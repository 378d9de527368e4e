//! `--chart out.svg`: p99 latency and throughput (updates, acknowledgements) per second of the run.

use std::fmt::Write as _;

use crate::stats::Report;

const W: f64 = 800.0;
const H: f64 = 200.0;
const PAD: f64 = 40.0;

fn panel(out: &mut String, top: f64, title: &str, series: &[(&str, &str, Vec<f64>)]) {
    let max = series
        .iter()
        .flat_map(|(_, _, v)| v.iter().copied())
        .fold(0.0, f64::max)
        .max(1e-9);
    let n = series.first().map_or(0, |s| s.2.len()).max(2);
    let x = |i: usize| PAD + (W - 2.0 * PAD) * i as f64 / (n - 1) as f64;
    let y = |v: f64| top + H - PAD / 2.0 - (H - PAD) * v / max;
    let _ = write!(
        out,
        r##"<text x="{PAD}" y="{}" font-size="13">{title} (max {max:.1})</text><rect x="{PAD}" y="{}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
        top + 14.0,
        top + PAD / 2.0,
        W - 2.0 * PAD,
        H - PAD
    );
    for (k, (name, color, v)) in series.iter().enumerate() {
        let pts: Vec<String> = v
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect();
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/><text x="{}" y="{}" font-size="11" fill="{color}">{name}</text>"#,
            pts.join(" "),
            W - PAD - 160.0 + 80.0 * k as f64,
            top + 14.0
        );
    }
}

/// The chart of a report's timeline, as an SVG document.
pub fn svg(r: &Report) -> String {
    let t = &r.timeline;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{}" font-family="sans-serif"><text x="{PAD}" y="16" font-size="15">warren-loadtest {}: {} s, one point per second</text>"#,
        2.0 * H + 30.0,
        r.scenario,
        t.len()
    );
    panel(
        &mut out,
        24.0,
        "p99 latency, ms",
        &[("p99", "#c0392b", t.iter().map(|s| s.p99_ms).collect())],
    );
    panel(
        &mut out,
        24.0 + H,
        "per second",
        &[
            (
                "updates",
                "#2471a3",
                t.iter().map(|s| s.updates as f64).collect(),
            ),
            (
                "acked",
                "#229954",
                t.iter().map(|s| s.acked as f64).collect(),
            ),
        ],
    );
    out.push_str("</svg>\n");
    out
}
