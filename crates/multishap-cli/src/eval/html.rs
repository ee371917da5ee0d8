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
    s += "</table>\n<h2>Samples</h2>\n<table><tr><th>id</th>";
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
