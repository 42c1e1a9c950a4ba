//! A small SVG line chart, one line per series (log-log): by default
//! bandwidth vs size; [`svg_axes`] for other axes.

use std::fmt::Write as _;

pub struct Line {
    pub label: String,
    /// (size in bytes, MB/s), or the axes' quantities
    pub points: Vec<(f64, f64)>,
}

/// What the axes show: their titles and how an x tick is labelled.
pub struct Axes {
    pub x: &'static str,
    pub y: &'static str,
    pub x_tick: fn(f64) -> String,
}

/// Size in bytes (log) against MB/s (log).
const SIZE_BANDWIDTH: Axes = Axes {
    x: "object size",
    y: "MB/s (log)",
    x_tick: human,
};

const COLORS: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#17becf",
];

fn human(bytes: f64) -> String {
    crate::csv::fmt_size(bytes.round() as usize)
}

/// Least distance between two labelled ticks, in pixels ("256MiB" at 12 px
/// is about 45 px wide).
const TICK_GAP: f64 = 52.0;

/// Which of the ticks at sorted positions `xs` get a label: from the left,
/// each one at least [`TICK_GAP`] from the previous label (1KB next to 1KiB:
/// one of them), and always the last one (the largest size), for which the
/// labels too close to it make way.
fn tick_labels(xs: &[f64]) -> Vec<usize> {
    let mut kept: Vec<usize> = Vec::new();
    for (i, &x) in xs.iter().enumerate() {
        if kept.last().is_none_or(|&k| x - xs[k] >= TICK_GAP) {
            kept.push(i);
        }
    }
    if let Some(last) = xs.len().checked_sub(1)
        && kept.last() != Some(&last)
    {
        kept.retain(|&k| xs[last] - xs[k] >= TICK_GAP);
        kept.push(last);
    }
    kept
}

pub fn svg(title: &str, lines: &[Line]) -> String {
    svg_axes(title, &SIZE_BANDWIDTH, lines)
}

pub fn svg_axes(title: &str, axes: &Axes, lines: &[Line]) -> String {
    let (w, h) = (940.0, 520.0);
    let (l, r, t, b) = (80.0, 260.0, 50.0, 60.0);
    let pts: Vec<(f64, f64)> = lines
        .iter()
        .flat_map(|l| l.points.iter().copied())
        .filter(|p| p.0 > 0.0 && p.1 > 0.0)
        .collect();
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        out,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{}" y="28" font-size="16" text-anchor="middle">{title}</text>"#,
        (l + w - r) / 2.0
    );
    if pts.is_empty() {
        out.push_str("</svg>");
        return out;
    }
    let lx = |v: f64| v.log10();
    let (xmin, xmax) = pts.iter().fold((f64::MAX, f64::MIN), |(a, c), p| {
        (a.min(lx(p.0)), c.max(lx(p.0)))
    });
    let (ymin, ymax) = pts.iter().fold((f64::MAX, f64::MIN), |(a, c), p| {
        (a.min(lx(p.1)), c.max(lx(p.1)))
    });
    let (ymin, ymax) = (ymin.floor(), ymax.ceil().max(ymin.floor() + 1.0));
    let xspan = (xmax - xmin).max(1e-9);
    let px = |x: f64| l + (lx(x) - xmin) / xspan * (w - l - r);
    let py = |y: f64| h - b - (lx(y) - ymin) / (ymax - ymin) * (h - t - b);
    // axes and grid
    let _ = write!(
        out,
        r#"<line x1="{l}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{l}" y1="{t}" x2="{l}" y2="{}" stroke="black"/>"#,
        h - b,
        w - r,
        h - b,
        h - b
    );
    let mut e = ymin;
    while e <= ymax + 1e-9 {
        let y = h - b - (e - ymin) / (ymax - ymin) * (h - t - b);
        let _ = write!(
            out,
            r##"<line x1="{l}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            w - r,
            l - 6.0,
            y + 4.0,
            10f64.powf(e)
        );
        e += 1.0;
    }
    let mut xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
    xs.sort_by(|a, b| a.total_cmp(b));
    xs.dedup();
    for x in tick_labels(&xs.iter().map(|&x| px(x)).collect::<Vec<_>>())
        .into_iter()
        .map(|i| xs[i])
    {
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            px(x),
            h - b + 18.0,
            (axes.x_tick)(x)
        );
    }
    let _ = write!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text><text x="20" y="{}" transform="rotate(-90 20 {})" text-anchor="middle">{}</text>"#,
        (l + w - r) / 2.0,
        h - 15.0,
        axes.x,
        (t + h - b) / 2.0,
        (t + h - b) / 2.0,
        axes.y
    );
    for (i, line) in lines.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let mut p: Vec<(f64, f64)> = line
            .points
            .iter()
            .copied()
            .filter(|p| p.0 > 0.0 && p.1 > 0.0)
            .collect();
        p.sort_by(|a, b| a.0.total_cmp(&b.0));
        let d: Vec<String> = p
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let dash = if line.label.contains("python") {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{c}" stroke-width="2"{dash} points="{}"/>"#,
            d.join(" ")
        );
        for &(x, y) in &p {
            let _ = write!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{c}"/>"#,
                px(x),
                py(y)
            );
        }
        let ly = t + 10.0 + i as f64 * 20.0;
        let _ = write!(
            out,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{c}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
            w - r + 10.0,
            w - r + 35.0,
            w - r + 40.0,
            ly + 4.0,
            line.label
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(sizes: &[usize]) -> String {
        let line = Line {
            label: "rs file (proxy)".into(),
            points: sizes.iter().map(|&s| (s as f64, 1000.0)).collect(),
        };
        svg("t", &[line])
    }

    #[test]
    fn every_default_size_is_labelled() {
        // The MPI benchmark's default sizes: 1GiB is only 0.6 decades from
        // 256MiB (about 60 px) and was dropped.
        let svg = labels(&[1 << 10, 64 << 10, 1 << 20, 16 << 20, 256 << 20, 1 << 30]);
        for l in ["1KiB", "64KiB", "1MiB", "16MiB", "256MiB", "1GiB"] {
            assert!(svg.contains(&format!(">{l}</text>")), "{l} missing: {svg}");
        }
    }

    #[test]
    fn close_ticks_share_a_label_and_the_largest_keeps_its_own() {
        assert_eq!(tick_labels(&[0.0, 10.0, 100.0]), vec![0, 2]);
        // The last is always labelled; a label too close to it makes way.
        assert_eq!(tick_labels(&[0.0, 100.0, 120.0]), vec![0, 2]);
        assert_eq!(tick_labels(&[0.0]), vec![0]);
        assert!(tick_labels(&[]).is_empty());
        // 1KB and 1KiB side by side (the Python reference's decimal sizes).
        let svg = labels(&[1000, 1024, 1 << 20, 1 << 30]);
        assert_eq!(
            svg.matches(">1KB</text>").count() + svg.matches(">1KiB</text>").count(),
            1
        );
        assert!(svg.contains(">1GiB</text>"), "{svg}");
    }
}
