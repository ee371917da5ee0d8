//! A self-contained HTML page of an eval report: definition, summary table,
//! per-sample metrics.
use super::EvalReport;
use crate::html_escape;
use std::fmt::Write as _;

fn num(v: f64) -> String {
    if v == 0.0 || (v.abs() >= 1e-3 && v.abs() < 1e5) {
        format!("{v:.4}")
    } else {
        format!("{v:.3e}")
    }
}

const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// Line plots of the mean curves, one SVG per plot title (`plot: series`).
pub fn curves_svg(r: &EvalReport) -> String {
    let mut plots: Vec<(&str, Vec<&super::MeanCurve>)> = Vec::new();
    for c in &r.mean_curves {
        let title = c.name.split(": ").next().unwrap_or(&c.name);
        match plots.iter_mut().find(|(t, _)| *t == title) {
            Some((_, v)) => v.push(c),
            None => plots.push((title, vec![c])),
        }
    }
    let mut s = String::new();
    let (w, h, pad) = (420.0, 240.0, 40.0);
    for (title, curves) in plots {
        let ys = curves
            .iter()
            .flat_map(|c| c.y.iter().copied())
            .filter(|v| v.is_finite());
        let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        let (lo, hi) = if hi > lo {
            (lo, hi)
        } else {
            (lo - 1.0, lo + 1.0)
        };
        let px = |x: f64| pad + x * (w - 2.0 * pad);
        let py = |y: f64| h - pad - (y - lo) / (hi - lo) * (h - 2.0 * pad);
        let _ = write!(
            s,
            "<figure><figcaption>{}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\">\
             <rect x=\"{pad}\" y=\"{pad}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>\
             <text x=\"2\" y=\"{}\" font-size=\"10\">{}</text><text x=\"2\" y=\"{}\" font-size=\"10\">{}</text>",
            html_escape(title),
            w - 2.0 * pad,
            h - 2.0 * pad,
            pad + 4.0,
            num(hi),
            h - pad,
            num(lo)
        );
        for (k, c) in curves.iter().enumerate() {
            let colour = COLOURS[k % COLOURS.len()];
            let pts: Vec<String> =
                c.x.iter()
                    .zip(&c.y)
                    .filter(|(_, y)| y.is_finite())
                    .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
                    .collect();
            let series = c.name.rsplit(": ").next().unwrap_or(&c.name);
            let _ = write!(
                s,
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\
                 <text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"{colour}\">{} (n={})</text>",
                pts.join(" "),
                pad + 6.0,
                pad + 14.0 + 13.0 * k as f64,
                html_escape(series),
                c.samples
            );
        }
        s += "</svg></figure>\n";
    }
    s
}

pub fn page(r: &EvalReport) -> String {
    let mut s = String::new();
    let title = format!("multishap eval {}", r.measure.name());
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:80em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}th{{background:#eee}}td:first-child{{text-align:left}}</style>\
         </head><body>\n<h1>{t}</h1>\n<p>model <code>{m}</code>, estimator <code>{e}</code>, device {d}, seed {seed}</p>\n<p>{def}</p>\n",
        t = html_escape(&title),
        m = html_escape(&r.model),
        e = html_escape(&r.estimator),
        d = html_escape(&r.device),
        seed = r.seed,
        def = html_escape(&r.definition),
    );
    s += "<h2>Summary</h2>\n<table><tr><th>metric</th><th>mean</th><th>std</th><th>samples</th></tr>\n";
    for (k, row) in &r.summary {
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            html_escape(k),
            num(row.mean),
            num(row.std),
            row.samples
        );
    }
    s += "</table>\n";
    if !r.mean_curves.is_empty() {
        s += "<h2>Mean curves</h2>\n";
        s += &curves_svg(r);
    }
    s += "<h2>Samples</h2>\n<table><tr><th>id</th>";
    let keys: Vec<&String> = r.summary.keys().collect();
    for k in &keys {
        let _ = write!(s, "<th>{}</th>", html_escape(k));
    }
    s += "</tr>\n";
    for e in &r.samples {
        let _ = write!(
            s,
            "<tr><td title=\"{}\">{}</td>",
            html_escape(&e.text),
            html_escape(&e.id)
        );
        for k in &keys {
            let cell = e.metrics.get(*k).map(|v| num(*v)).unwrap_or_default();
            let _ = write!(s, "<td>{cell}</td>");
        }
        s += "</tr>\n";
    }
    s += "</table>\n";
    if !r.failed.is_empty() {
        s += "<h2>Failed samples</h2>\n<ul>\n";
        for (id, err) in &r.failed {
            let _ = writeln!(s, "<li>{}: {}</li>", html_escape(id), html_escape(err));
        }
        s += "</ul>\n";
    }
    s += "<p>Curves, maps and tables per sample: see the JSON file next to this page.</p>\n</body></html>\n";
    s
}
