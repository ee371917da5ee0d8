//! Evaluation reports of `multishap eval <measure>` (faithfulness, stability,
//! modality influence): the schema of `eval-<measure>.json`, its standalone
//! HTML page, and the "Evaluation" section the dataset report
//! ([`crate::build_report`]) shows for every eval report given to it.
//!
//! The measures themselves are computed elsewhere (core's `faithfulness`
//! module and the CLI); this module only stores and shows their numbers.
use crate::error::{io_err, ReportError, Result};
use crate::svg::escape;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// One sample's numbers and details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleEval {
    pub id: String,
    pub text: String,
    pub metrics: BTreeMap<String, f64>,
    pub detail: serde_json::Value,
}

/// Mean and (population) standard deviation of one metric over the samples defining it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    pub mean: f64,
    pub std: f64,
    pub samples: usize,
}

/// One curve averaged point-wise over the samples that have it; `name` is
/// `"plot title: series"` (curves sharing a title are drawn in one plot).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeanCurve {
    pub name: String,
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    pub samples: usize,
}

/// `eval-<measure>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// The measure's kebab-case name (`pair-masking`, `deletion`, ...).
    pub measure: String,
    /// What the measure computes (definitions of every metric).
    pub definition: String,
    pub model: String,
    pub estimator: String,
    pub device: String,
    pub seed: u64,
    /// The `eval` parameters used.
    pub parameters: serde_json::Value,
    pub summary: BTreeMap<String, SummaryRow>,
    /// Curves averaged over the samples (pair-masking drops, deletion / insertion).
    pub mean_curves: Vec<MeanCurve>,
    pub samples: Vec<SampleEval>,
    /// Samples that failed: (id, error).
    pub failed: Vec<(String, String)>,
}

impl EvalReport {
    /// Reads an `eval-<measure>.json` file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(io_err(path))?;
        serde_json::from_str(&text).map_err(|e| {
            ReportError::InvalidArgument(format!(
                "{} is not a multishap eval report: {e}",
                path.display()
            ))
        })
    }

    /// The file name `eval` writes it to.
    pub fn file_name(&self) -> String {
        format!("eval-{}.json", self.measure)
    }
}

/// Whether `path`'s file name looks like an eval report (`eval-*.json`).
pub fn is_eval_report_name(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("eval-") && n.ends_with(".json"))
}

/// Mean and std of every metric over the samples where it is finite.
pub fn summarise(samples: &[SampleEval]) -> BTreeMap<String, SummaryRow> {
    let mut acc: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for s in samples {
        for (k, v) in &s.metrics {
            if v.is_finite() {
                acc.entry(k.clone()).or_default().push(*v);
            }
        }
    }
    acc.into_iter()
        .map(|(k, v)| {
            let n = v.len() as f64;
            let mean = v.iter().sum::<f64>() / n;
            let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
            let row = SummaryRow {
                mean,
                std,
                samples: v.len(),
            };
            (k, row)
        })
        .collect()
}

/// Adds curve (`name`, `x`, `y`) of one sample to the point-wise means in
/// `acc` (curves match by name and x values); call [`finish_mean_curves`] after the last.
pub fn accumulate_curve(acc: &mut Vec<MeanCurve>, name: String, x: Vec<f64>, y: Vec<f64>) {
    if x.len() != y.len() || x.is_empty() {
        return;
    }
    match acc.iter_mut().find(|c| c.name == name && c.x == x) {
        Some(c) => {
            c.y.iter_mut().zip(&y).for_each(|(a, b)| *a += b);
            c.samples += 1;
        }
        None => acc.push(MeanCurve {
            name,
            x,
            y,
            samples: 1,
        }),
    }
}

/// Turns the sums of [`accumulate_curve`] into means.
pub fn finish_mean_curves(acc: &mut [MeanCurve]) {
    for c in acc {
        let n = c.samples as f64;
        c.y.iter_mut().for_each(|v| *v /= n);
    }
}

/// Table number format: fixed for ordinary magnitudes, scientific otherwise.
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

/// Line plots of the mean curves, one SVG per plot title.
pub fn curves_svg(curves: &[MeanCurve]) -> String {
    let mut plots: Vec<(&str, Vec<&MeanCurve>)> = Vec::new();
    for c in curves {
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
        } else if lo.is_finite() {
            (lo - 1.0, lo + 1.0)
        } else {
            (0.0, 1.0)
        };
        let px = |x: f64| pad + x * (w - 2.0 * pad);
        let py = |y: f64| h - pad - (y - lo) / (hi - lo) * (h - 2.0 * pad);
        let _ = write!(
            s,
            "<figure><figcaption>{}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\">\
             <rect x=\"{pad}\" y=\"{pad}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>\
             <text x=\"2\" y=\"{}\" font-size=\"10\">{}</text><text x=\"2\" y=\"{}\" font-size=\"10\">{}</text>",
            escape(title),
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
                escape(series),
                c.samples
            );
        }
        s += "</svg></figure>\n";
    }
    s
}

/// The summary table (metric, mean, std, samples) of a report.
pub fn summary_table_html(r: &EvalReport) -> String {
    let mut s =
        String::from("<table><tr><th>metric</th><th>mean</th><th>std</th><th>samples</th></tr>\n");
    for (k, row) in &r.summary {
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape(k),
            num(row.mean),
            num(row.std),
            row.samples
        );
    }
    s + "</table>\n"
}

fn run_line(r: &EvalReport) -> String {
    format!(
        "model <code>{}</code>, estimator <code>{}</code>, device {}, seed {}; {} samples, {} failed",
        escape(&r.model),
        escape(&r.estimator),
        escape(&r.device),
        r.seed,
        r.samples.len(),
        r.failed.len()
    )
}

/// A self-contained HTML page of one eval report: definition, summary table,
/// mean curves, per-sample metrics and failed samples.
pub fn eval_page(r: &EvalReport) -> String {
    let title = format!("multishap eval {}", r.measure);
    let mut s = crate::html::page_start(&title);
    let _ = write!(
        s,
        "<h1>{}</h1>\n<p>{}</p>\n<p>{}</p>\n<h2>Summary</h2>\n",
        escape(&title),
        run_line(r),
        escape(&r.definition),
    );
    s += &summary_table_html(r);
    if !r.mean_curves.is_empty() {
        s += "<h2>Mean curves</h2>\n<div class=\"maps\">";
        s += &curves_svg(&r.mean_curves);
        s += "</div>\n";
    }
    s += "<h2>Samples</h2>\n<table><tr><th>id</th>";
    let keys: Vec<&String> = r.summary.keys().collect();
    for k in &keys {
        let _ = write!(s, "<th>{}</th>", escape(k));
    }
    s += "</tr>\n";
    for e in &r.samples {
        let _ = write!(
            s,
            "<tr><td title=\"{}\">{}</td>",
            escape(&e.text),
            escape(&e.id)
        );
        for k in &keys {
            let cell = e.metrics.get(*k).map(|v| num(*v)).unwrap_or_default();
            let _ = write!(s, "<td class=\"num\">{cell}</td>");
        }
        s += "</tr>\n";
    }
    s += "</table>\n";
    s += &failed_list(r);
    s += "<p>Curves, maps and tables per sample: see the JSON file of this report.</p>\n";
    s + crate::html::PAGE_END
}

fn failed_list(r: &EvalReport) -> String {
    if r.failed.is_empty() {
        return String::new();
    }
    let mut s = String::from("<h3>Failed samples</h3>\n<ul>\n");
    for (id, err) in &r.failed {
        let _ = writeln!(s, "<li>{}: {}</li>", escape(id), escape(err));
    }
    s + "</ul>\n"
}

/// The "Evaluation" section of the dataset report: per report its
/// definition, summary table, mean curves and a link (`links[k]`, relative
/// URL) to its full page.
pub fn evaluation_section_html(reports: &[EvalReport], links: &[String]) -> String {
    let mut s = String::from(
        "<h2 id=\"evaluation\">Evaluation</h2>\n<p>Faithfulness, stability and modality measures \
         of the explanations (<code>multishap eval</code>); means over the samples that define \
         each metric.</p>\n",
    );
    for (r, link) in reports.iter().zip(links) {
        let _ = write!(
            s,
            "<h3>{}</h3>\n<p>{} &mdash; <a href=\"{}\">full page</a></p>\n<p>{}</p>\n",
            escape(&r.measure),
            run_line(r),
            escape(link),
            escape(&r.definition)
        );
        s += &summary_table_html(r);
        if !r.mean_curves.is_empty() {
            s += "<div class=\"maps\">";
            s += &curves_svg(&r.mean_curves);
            s += "</div>\n";
        }
        s += &failed_list(r);
    }
    s
}

/// Rows (measure, metric, mean, std, samples) of every report, for `evaluation.csv`.
pub fn summary_rows(reports: &[EvalReport]) -> Vec<Vec<String>> {
    reports
        .iter()
        .flat_map(|r| {
            r.summary.iter().map(move |(k, row)| {
                vec![
                    r.measure.clone(),
                    k.clone(),
                    row.mean.to_string(),
                    row.std.to_string(),
                    row.samples.to_string(),
                ]
            })
        })
        .collect()
}

/// What `report.json` keeps of an eval report: everything but the per-sample details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalSummary {
    pub measure: String,
    pub model: String,
    pub estimator: String,
    pub seed: u64,
    pub parameters: serde_json::Value,
    pub summary: BTreeMap<String, SummaryRow>,
    pub mean_curves: Vec<MeanCurve>,
    pub samples: usize,
    pub failed: usize,
}

impl From<&EvalReport> for EvalSummary {
    fn from(r: &EvalReport) -> Self {
        Self {
            measure: r.measure.clone(),
            model: r.model.clone(),
            estimator: r.estimator.clone(),
            seed: r.seed,
            parameters: r.parameters.clone(),
            summary: r.summary.clone(),
            mean_curves: r.mean_curves.clone(),
            samples: r.samples.len(),
            failed: r.failed.len(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample(id: &str, kv: &[(&str, f64)]) -> SampleEval {
        SampleEval {
            id: id.into(),
            text: format!("text of {id}"),
            metrics: kv.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            detail: serde_json::Value::Null,
        }
    }

    pub(crate) fn report(measure: &str, samples: Vec<SampleEval>) -> EvalReport {
        let mut curves = Vec::new();
        accumulate_curve(
            &mut curves,
            "drop vs k: sii".into(),
            vec![0.0, 1.0],
            vec![0.0, 2.0],
        );
        accumulate_curve(
            &mut curves,
            "drop vs k: sii".into(),
            vec![0.0, 1.0],
            vec![0.0, 4.0],
        );
        finish_mean_curves(&mut curves);
        EvalReport {
            measure: measure.into(),
            definition: "a <definition>".into(),
            model: "m".into(),
            estimator: "e".into(),
            device: "cpu".into(),
            seed: 1,
            parameters: serde_json::json!({"k": 2}),
            summary: summarise(&samples),
            mean_curves: curves,
            samples,
            failed: vec![("bad".into(), "it broke".into())],
        }
    }

    #[test]
    fn summary_is_mean_and_std_over_defining_samples() {
        let s = summarise(&[
            sample("a", &[("x", 1.0), ("y", 5.0)]),
            sample("b", &[("x", 3.0), ("y", f64::NAN)]),
        ]);
        assert_eq!((s["x"].mean, s["x"].std, s["x"].samples), (2.0, 1.0, 2));
        assert_eq!((s["y"].mean, s["y"].samples), (5.0, 1));
    }

    #[test]
    fn curves_average_point_wise_by_name_and_x() {
        let mut acc = Vec::new();
        accumulate_curve(&mut acc, "p: a".into(), vec![0.0, 1.0], vec![1.0, 2.0]);
        accumulate_curve(&mut acc, "p: a".into(), vec![0.0, 1.0], vec![3.0, 6.0]);
        accumulate_curve(&mut acc, "p: a".into(), vec![0.0, 0.5], vec![9.0, 9.0]);
        accumulate_curve(&mut acc, "p: b".into(), vec![0.0], vec![1.0, 2.0]); // ragged: skipped
        finish_mean_curves(&mut acc);
        assert_eq!(acc.len(), 2);
        assert_eq!((acc[0].y.clone(), acc[0].samples), (vec![2.0, 4.0], 2));
        assert_eq!((acc[1].y.clone(), acc[1].samples), (vec![9.0, 9.0], 1));
    }

    #[test]
    fn page_and_section_show_the_numbers_escaped() {
        let r = report(
            "pair-masking",
            vec![
                sample("a<1>", &[("auc", 0.25)]),
                sample("b", &[("auc", 0.75)]),
            ],
        );
        let page = eval_page(&r);
        assert!(page.contains("<td>auc</td><td class=\"num\">0.5000</td>"));
        assert!(page.contains("a&lt;1&gt;") && !page.contains("a<1>"));
        assert!(page.contains("a &lt;definition&gt;"));
        assert!(page.contains("<polyline") && page.contains("(n=2)"));
        assert!(page.contains("bad: it broke"));
        let sec = evaluation_section_html(std::slice::from_ref(&r), &["eval/pm.html".into()]);
        assert!(sec.contains("<h3>pair-masking</h3>"));
        assert!(sec.contains("href=\"eval/pm.html\""));
        assert!(sec.contains("0.2500")); // std of 0.25 / 0.75
        let rows = summary_rows(&[r]);
        assert_eq!(rows, vec![vec!["pair-masking", "auc", "0.5", "0.25", "2"]]);
    }

    #[test]
    fn reads_back_what_it_writes_and_rejects_other_json() {
        let dir = tempfile::tempdir().unwrap();
        let r = report("deletion", vec![sample("a", &[("x", 1.0)])]);
        let p = dir.path().join(r.file_name());
        std::fs::write(&p, serde_json::to_string_pretty(&r).unwrap()).unwrap();
        assert!(is_eval_report_name(&p));
        assert_eq!(EvalReport::read(&p).unwrap(), r);
        let other = dir.path().join("eval-x.json");
        std::fs::write(&other, "{\"id\": 1}").unwrap();
        let e = EvalReport::read(&other).unwrap_err().to_string();
        assert!(e.contains("not a multishap eval report"), "{e}");
        assert!(!is_eval_report_name(Path::new("report.json")));
    }
}
