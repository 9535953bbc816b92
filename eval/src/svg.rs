//! Plots as inline SVG (no script, no external file): a histogram, points over time, bars.

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 28.0;
const TOP: f64 = 24.0;
const RIGHT: f64 = 12.0;

/// A named set of values drawn in one colour.
pub struct Series<'a> {
    pub name: &'a str,
    pub colour: &'a str,
    pub values: Vec<(f64, f64)>,
}

fn frame(
    id: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
    body: &str,
    x: (f64, f64),
    y: (f64, f64),
) -> String {
    let mut out = format!(
        "<svg class=\"plot\" id=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{title}\"><title>{title}</title>\
         <text x=\"{LEFT}\" y=\"16\" font-size=\"13\" font-weight=\"bold\">{title}</text>"
    );
    let (x0, x1, y0, y1) = (LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP);
    out += &format!("<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"#444\"/>");
    out += &format!("<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{y1}\" stroke=\"#444\"/>");
    for k in 0..=4 {
        let f = k as f64 / 4.0;
        let (vx, vy) = (x.0 + f * (x.1 - x.0), y.0 + f * (y.1 - y.0));
        let px = x0 + f * (x1 - x0);
        let py = y0 - f * (y0 - y1);
        out += &format!(
            "<text x=\"{px:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
            y0 + 12.0,
            short(vx)
        );
        out += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text>\
             <line x1=\"{x0}\" y1=\"{py:.1}\" x2=\"{x1}\" y2=\"{py:.1}\" stroke=\"#ddd\"/>",
            x0 - 4.0,
            py + 3.0,
            short(vy)
        );
    }
    out += &format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{x_label}</text>\
         <text x=\"4\" y=\"{:.1}\" font-size=\"10\">{y_label}</text>",
        x1,
        HEIGHT - 2.0,
        y1 - 4.0
    );
    out += body;
    out += "</svg>";
    out
}

fn short(v: f64) -> String {
    if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn scale(v: f64, from: (f64, f64), to: (f64, f64)) -> f64 {
    let span = if from.1 > from.0 {
        from.1 - from.0
    } else {
        1.0
    };
    to.0 + (v - from.0) / span * (to.1 - to.0)
}

fn legend(series: &[Series]) -> String {
    series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let x = WIDTH - RIGHT - 170.0;
            let y = 14.0 + 12.0 * i as f64;
            format!(
                "<rect x=\"{x}\" y=\"{:.1}\" width=\"9\" height=\"9\" fill=\"{}\"/>\
                 <text x=\"{:.1}\" y=\"{y:.1}\" font-size=\"10\">{}</text>",
                y - 8.0,
                s.colour,
                x + 13.0,
                s.name
            )
        })
        .collect()
}

/// Counts of each series' values (the `.1` of each pair) in bins of `bin` seconds.
pub fn histogram(id: &str, title: &str, series: &[Series], bin: f64) -> String {
    let all: Vec<f64> = series
        .iter()
        .flat_map(|s| s.values.iter().map(|v| v.1))
        .collect();
    let lo = (all.iter().cloned().fold(0.0f64, f64::min) / bin).floor() * bin;
    let hi = ((all.iter().cloned().fold(lo + bin, f64::max) / bin).floor() + 1.0) * bin;
    let bins = (((hi - lo) / bin).round() as usize).max(1);
    let counts: Vec<Vec<usize>> = series
        .iter()
        .map(|s| {
            let mut c = vec![0; bins];
            for &(_, v) in &s.values {
                c[(((v - lo) / bin).floor() as usize).min(bins - 1)] += 1;
            }
            c
        })
        .collect();
    // A multiple of 4, so the four grid lines fall on whole counts.
    let top = (counts
        .iter()
        .flatten()
        .cloned()
        .max()
        .unwrap_or(0)
        .max(1)
        .div_ceil(4)
        * 4) as f64;
    let (x0, x1, y0, y1) = (LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP);
    let width = (x1 - x0) / bins as f64 / series.len().max(1) as f64;
    let mut body = String::new();
    for (k, (s, c)) in series.iter().zip(&counts).enumerate() {
        for (b, &n) in c.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let h = scale(n as f64, (0.0, top), (0.0, y0 - y1));
            let x = x0 + (b * series.len() + k) as f64 * width;
            body += &format!(
                "<rect class=\"bar\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\">\
                 <title>{}: {n} in {:.1}–{:.1} s</title></rect>",
                y0 - h,
                (width - 1.0).max(1.0),
                s.colour,
                s.name,
                lo + b as f64 * bin,
                lo + (b + 1) as f64 * bin
            );
        }
    }
    body += &legend(series);
    frame(
        id,
        title,
        "seconds",
        "segments",
        &body,
        (lo, hi),
        (0.0, top),
    )
}

/// Each series' (x, y) points; a dashed line at y = 0.
pub fn points(id: &str, title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.values.iter().cloned())
        .collect();
    let x = (0.0, all.iter().map(|p| p.0).fold(1.0f64, f64::max));
    let y = (
        all.iter().map(|p| p.1).fold(0.0f64, f64::min).floor(),
        all.iter().map(|p| p.1).fold(1.0f64, f64::max).ceil(),
    );
    let (x0, x1, y0, y1) = (LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP);
    let zero = scale(0.0, y, (y0, y1));
    let mut body = format!(
        "<line x1=\"{x0}\" y1=\"{zero:.1}\" x2=\"{x1}\" y2=\"{zero:.1}\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>"
    );
    for s in series {
        for &(px, py) in &s.values {
            body += &format!(
                "<circle class=\"point\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{}\"><title>{}: {py:.2} s at {px:.1} s</title></circle>",
                scale(px, x, (x0, x1)),
                scale(py, y, (y0, y1)),
                s.colour,
                s.name
            );
        }
    }
    body += &legend(series);
    frame(id, title, x_label, y_label, &body, x, y)
}

/// One bar per value, in order, coloured `low` under `threshold`.
pub fn bars(
    id: &str,
    title: &str,
    y_label: &str,
    values: &[(String, f64)],
    threshold: f64,
) -> String {
    let (x0, x1, y0, y1) = (LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP);
    let width = (x1 - x0) / values.len().max(1) as f64;
    let mut body = String::new();
    for (i, (label, v)) in values.iter().enumerate() {
        let h = scale(*v, (0.0, 100.0), (0.0, y0 - y1));
        let colour = if *v < threshold { "#c0392b" } else { "#2e86c1" };
        body += &format!(
            "<rect class=\"bar\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{colour}\"><title>{label}: {v:.1}</title></rect>",
            x0 + i as f64 * width,
            y0 - h,
            (width - 1.0).max(1.0)
        );
    }
    let line = scale(threshold, (0.0, 100.0), (y0, y1));
    body += &format!(
        "<line x1=\"{x0}\" y1=\"{line:.1}\" x2=\"{x1}\" y2=\"{line:.1}\" stroke=\"#c0392b\" stroke-dasharray=\"4 3\"/>"
    );
    frame(
        id,
        title,
        "segment",
        y_label,
        &body,
        (0.0, values.len() as f64),
        (0.0, 100.0),
    )
}
