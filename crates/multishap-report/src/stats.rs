//! Dataset-level statistics over explanation records and the dataset report
//! ([`build_report`]: `report.json`, one CSV per table, `report.html`).
//!
//! Definitions (per sample `s` with SII grid `SII_ij`, `P_s`, `N_s` as in [`crate::schema`]):
//! - `mean_positive_ratio`: mean of `P_s / (|P_s| + |N_s|)` over samples where it is defined
//!   (the paper's synergy ratio); samples whose SII are all 0 are left out.
//! - `share_synergy_dominant`: share of *all* samples with `|P_s| > |N_s|`.
//! - `mean_abs_sii`: mean over samples of the per-sample mean of `|SII_ij|` (each sample weighs
//!   the same whatever its number of tokens).
//! - `max_sii` / `min_sii`: the largest / smallest single SII value with where it occurs.
//! - Histograms: positive ratio on `[0, 1]`; SII values of all pairs of all samples pooled, on
//!   `[min, max]`. Bins are half-open `[lo, hi)` except the last, which includes `hi`.
//! - Top tokens: per sample, tokens ranked by `sum_i |SII_ij|`; the `top_k` highest (ties:
//!   earlier token first, tokens with importance 0 skipped) are normalised (lowercase, `##`
//!   prefix and `</w>` suffix removed, trimmed) and counted once per sample; `count` is the
//!   number of samples where the token is in the top k, `share = count / n_samples`.
//! - VQA accuracy of the prediction on the full input, over samples with ground truth: with
//!   several answers `min(#answers equal to the prediction / 3, 1)` (VQAv2 soft accuracy,
//!   without the official leave-one-annotator-out averaging), with one answer exact match.
//!   Answers and prediction are compared after lowercasing, trimming and collapsing whitespace
//!   (the official VQA punctuation / number / article normalisation is not applied).
//! - Breakdowns by answer type / question type use only samples that have that field.
use crate::csv;
use crate::error::{io_err, Result};
use crate::eval::{self, EvalReport, EvalSummary};
use crate::heatmap::{write_average_heatmap, HeatmapOptions};
use crate::html::{page_start, summary_table, url, PAGE_END};
use crate::schema::ExplanationRecord;
use crate::svg::{self, escape, num};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Options of [`compute_stats`] and [`build_report`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    pub title: String,
    /// Tokens per sample counted in the top-token table.
    pub top_k: usize,
    /// Rows of the top-token table / bar chart.
    pub top_tokens_listed: usize,
    pub ratio_bins: usize,
    pub sii_bins: usize,
    /// Example heatmaps in the HTML report (half most synergistic, half most suppressive).
    pub examples: usize,
    /// Folder against which relative `record.image` paths are resolved (else the CWD).
    pub image_root: Option<PathBuf>,
    pub heatmap: HeatmapOptions,
    /// `multishap eval` reports shown in an "Evaluation" section (with their
    /// own pages under `eval/`, `evaluation.csv` and `report.json` "evaluations").
    pub evaluations: Vec<EvalReport>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        Self {
            title: "MultiSHAP dataset report".into(),
            top_k: 3,
            top_tokens_listed: 20,
            ratio_bins: 10,
            sii_bins: 20,
            examples: 4,
            image_root: None,
            heatmap: HeatmapOptions::default(),
            evaluations: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// `counts.len() + 1` bin edges.
    pub edges: Vec<f64>,
    pub counts: Vec<usize>,
}

impl Histogram {
    /// Histogram of `values` on `[lo, hi]` with `bins` bins (values outside are clamped into
    /// the first / last bin). A degenerate range is widened to `[lo - 0.5, lo + 0.5]`.
    pub fn new(values: &[f64], lo: f64, hi: f64, bins: usize) -> Self {
        let bins = bins.max(1);
        let (lo, hi) = if hi > lo {
            (lo, hi)
        } else {
            (lo - 0.5, lo + 0.5)
        };
        let width = (hi - lo) / bins as f64;
        let edges = (0..=bins).map(|k| lo + width * k as f64).collect();
        let mut counts = vec![0; bins];
        for &v in values {
            let k = ((v - lo) / width).floor();
            let k = if k.is_nan() {
                0
            } else {
                (k.max(0.0) as usize).min(bins - 1)
            };
            counts[k] += 1;
        }
        Self { edges, counts }
    }
}

/// Where an extreme SII value occurs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Extreme {
    pub value: f64,
    pub id: String,
    pub patch: usize,
    pub token_index: usize,
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenFrequency {
    /// Normalised token.
    pub token: String,
    /// Samples where it is among the top-k tokens.
    pub count: usize,
    /// `count / n_samples`.
    pub share: f64,
}

/// Statistics of one answer-type / question-type group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupStats {
    pub group: String,
    pub n_samples: usize,
    pub mean_positive_ratio: Option<f64>,
    pub share_synergy_dominant: f64,
    pub mean_abs_sii: f64,
    pub n_with_answers: usize,
    pub vqa_accuracy: Option<f64>,
}

/// One row per sample (also `samples.csv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleStats {
    pub id: String,
    pub text: String,
    pub prediction: String,
    pub positive_sum: f64,
    pub negative_sum: f64,
    pub positive_ratio: Option<f64>,
    pub synergy_dominant: bool,
    pub mean_abs_sii: f64,
    pub max_sii: f64,
    pub min_sii: f64,
    /// Normalised top-k tokens, most important first.
    pub top_tokens: Vec<String>,
    pub vqa_accuracy: Option<f64>,
    pub answer_type: Option<String>,
    pub question_type: Option<String>,
    pub evaluations: usize,
    pub seconds: f64,
}

/// Dataset-level statistics (serialised as `report.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetStats {
    pub n_samples: usize,
    /// Samples whose positive ratio is defined (not all SII zero).
    pub n_ratio_defined: usize,
    pub mean_positive_ratio: Option<f64>,
    pub share_synergy_dominant: Option<f64>,
    pub mean_abs_sii: Option<f64>,
    pub max_sii: Option<Extreme>,
    pub min_sii: Option<Extreme>,
    pub n_with_answers: usize,
    pub vqa_accuracy: Option<f64>,
    pub positive_ratio_histogram: Histogram,
    pub sii_histogram: Histogram,
    pub top_tokens: Vec<TokenFrequency>,
    pub by_answer_type: Vec<GroupStats>,
    pub by_question_type: Vec<GroupStats>,
    pub total_evaluations: usize,
    pub total_seconds: f64,
    pub estimators: Vec<String>,
    pub models: Vec<String>,
    pub samples: Vec<SampleStats>,
}

/// Normalise a word piece for counting: lowercase, strip `##` / `</w>`, trim.
pub fn normalize_token(t: &str) -> String {
    let t = t.trim();
    let t = t.strip_prefix("##").unwrap_or(t);
    let t = t.strip_suffix("</w>").unwrap_or(t);
    t.trim().to_lowercase()
}

/// Normalise an answer for accuracy: lowercase, trim, collapse whitespace.
pub fn normalize_answer(a: &str) -> String {
    a.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// VQA accuracy of `prediction` against ground-truth `answers` (see the module docs);
/// `None` without answers.
pub fn vqa_accuracy(prediction: &str, answers: &[String]) -> Option<f64> {
    if answers.is_empty() {
        return None;
    }
    let p = normalize_answer(prediction);
    let hits = answers.iter().filter(|a| normalize_answer(a) == p).count();
    Some(if answers.len() > 1 {
        (hits as f64 / 3.0).min(1.0)
    } else {
        hits as f64
    })
}

/// Indices of the `k` most important tokens (by `sum_i |SII_ij|`, importance > 0).
fn top_token_indices(r: &ExplanationRecord, k: usize) -> Vec<usize> {
    let imp = r.token_importance();
    let mut idx: Vec<usize> = (0..imp.len()).filter(|&j| imp[j] > 0.0).collect();
    idx.sort_by(|&a, &b| imp[b].total_cmp(&imp[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx
}

fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (mut s, mut n) = (0.0, 0usize);
    for v in values {
        s += v;
        n += 1;
    }
    (n > 0).then(|| s / n as f64)
}

fn sample_stats(r: &ExplanationRecord, top_k: usize) -> SampleStats {
    let count = (r.image_players() * r.text_players()).max(1) as f64;
    let mut top_tokens: Vec<String> = Vec::new();
    for j in top_token_indices(r, top_k) {
        let t = normalize_token(&r.tokens[j]);
        if !t.is_empty() && !top_tokens.contains(&t) {
            top_tokens.push(t);
        }
    }
    SampleStats {
        id: r.id.clone(),
        text: r.text.clone(),
        prediction: r.prediction.label.clone(),
        positive_sum: r.positive_sum,
        negative_sum: r.negative_sum,
        positive_ratio: r.positive_ratio,
        synergy_dominant: r.positive_sum.abs() > r.negative_sum.abs(),
        mean_abs_sii: r.sii_values().map(f64::abs).sum::<f64>() / count,
        max_sii: r.sii_values().fold(f64::NEG_INFINITY, f64::max),
        min_sii: r.sii_values().fold(f64::INFINITY, f64::min),
        top_tokens,
        vqa_accuracy: r
            .answers
            .as_deref()
            .and_then(|a| vqa_accuracy(&r.prediction.label, a)),
        answer_type: r.answer_type.clone(),
        question_type: r.question_type.clone(),
        evaluations: r.evaluations,
        seconds: r.seconds,
    }
}

fn group_stats(
    samples: &[&SampleStats],
    key: impl Fn(&SampleStats) -> Option<&String>,
) -> Vec<GroupStats> {
    let mut groups: BTreeMap<String, Vec<&SampleStats>> = BTreeMap::new();
    for s in samples {
        if let Some(k) = key(s) {
            groups.entry(k.clone()).or_default().push(s);
        }
    }
    groups
        .into_iter()
        .map(|(group, g)| {
            let n = g.len();
            let acc: Vec<f64> = g.iter().filter_map(|s| s.vqa_accuracy).collect();
            GroupStats {
                group,
                n_samples: n,
                mean_positive_ratio: mean(g.iter().filter_map(|s| s.positive_ratio)),
                share_synergy_dominant: g.iter().filter(|s| s.synergy_dominant).count() as f64
                    / n as f64,
                mean_abs_sii: mean(g.iter().map(|s| s.mean_abs_sii)).unwrap_or(0.0),
                n_with_answers: acc.len(),
                vqa_accuracy: mean(acc),
            }
        })
        .collect()
}

fn extreme(records: &[ExplanationRecord], better: impl Fn(f64, f64) -> bool) -> Option<Extreme> {
    let mut best: Option<Extreme> = None;
    for r in records {
        for (i, row) in r.sii.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                if best.as_ref().is_none_or(|b| better(v, b.value)) {
                    best = Some(Extreme {
                        value: v,
                        id: r.id.clone(),
                        patch: i,
                        token_index: j,
                        token: r.tokens[j].clone(),
                    });
                }
            }
        }
    }
    best
}

/// Compute the dataset statistics of `records` (see the module docs for definitions).
pub fn compute_stats(records: &[ExplanationRecord], opts: &ReportOptions) -> DatasetStats {
    let samples: Vec<SampleStats> = records
        .iter()
        .map(|r| sample_stats(r, opts.top_k))
        .collect();
    let n = samples.len();
    let ratios: Vec<f64> = samples.iter().filter_map(|s| s.positive_ratio).collect();
    let all_sii: Vec<f64> = records.iter().flat_map(|r| r.sii_values()).collect();
    let (lo, hi) = all_sii
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let sii_histogram = if all_sii.is_empty() {
        Histogram::new(&[], 0.0, 0.0, opts.sii_bins)
    } else {
        Histogram::new(&all_sii, lo, hi, opts.sii_bins)
    };

    let mut counts: HashMap<&str, usize> = HashMap::new();
    for s in &samples {
        for t in &s.top_tokens {
            *counts.entry(t.as_str()).or_default() += 1;
        }
    }
    let mut top_tokens: Vec<TokenFrequency> = counts
        .into_iter()
        .map(|(token, count)| TokenFrequency {
            token: token.to_string(),
            count,
            share: count as f64 / n.max(1) as f64,
        })
        .collect();
    top_tokens.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.token.cmp(&b.token)));
    top_tokens.truncate(opts.top_tokens_listed);

    let refs: Vec<&SampleStats> = samples.iter().collect();
    let acc: Vec<f64> = samples.iter().filter_map(|s| s.vqa_accuracy).collect();
    let mut estimators: Vec<String> = records.iter().map(|r| r.estimator.clone()).collect();
    estimators.sort();
    estimators.dedup();
    let mut models: Vec<String> = records.iter().map(|r| r.model.id.clone()).collect();
    models.sort();
    models.dedup();
    DatasetStats {
        n_samples: n,
        n_ratio_defined: ratios.len(),
        mean_positive_ratio: mean(ratios.iter().copied()),
        share_synergy_dominant: (n > 0)
            .then(|| samples.iter().filter(|s| s.synergy_dominant).count() as f64 / n as f64),
        mean_abs_sii: mean(samples.iter().map(|s| s.mean_abs_sii)),
        max_sii: extreme(records, |v, b| v > b),
        min_sii: extreme(records, |v, b| v < b),
        n_with_answers: acc.len(),
        vqa_accuracy: mean(acc),
        positive_ratio_histogram: Histogram::new(&ratios, 0.0, 1.0, opts.ratio_bins),
        sii_histogram,
        top_tokens,
        by_answer_type: group_stats(&refs, |s| s.answer_type.as_ref()),
        by_question_type: group_stats(&refs, |s| s.question_type.as_ref()),
        total_evaluations: records.iter().map(|r| r.evaluations).sum(),
        total_seconds: records.iter().map(|r| r.seconds).sum(),
        estimators,
        models,
        samples,
    }
}

/// What [`build_report`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSummary {
    pub stats: DatasetStats,
    /// `report.html` (joined to out_dir).
    pub html: PathBuf,
    /// `report.json` (joined to out_dir).
    pub json: PathBuf,
    /// Every file written, relative to out_dir.
    pub files: Vec<PathBuf>,
    /// Non-fatal problems (e.g. an example image that could not be loaded).
    pub warnings: Vec<String>,
}

/// "value (sample id, patch i, token j)" for the largest / smallest SII, or "n/a".
fn extreme_cell(e: Option<&Extreme>) -> String {
    e.map(|e| {
        format!(
            "{} ({}, patch {}, token {})",
            num(e.value),
            e.id,
            e.patch,
            e.token
        )
    })
    .unwrap_or_else(|| "n/a".into())
}

fn opt_num(v: Option<f64>) -> String {
    v.map(num).unwrap_or_else(|| "n/a".into())
}

fn group_rows(groups: &[GroupStats]) -> Vec<Vec<String>> {
    groups
        .iter()
        .map(|g| {
            vec![
                g.group.clone(),
                g.n_samples.to_string(),
                csv::opt(g.mean_positive_ratio),
                g.share_synergy_dominant.to_string(),
                g.mean_abs_sii.to_string(),
                g.n_with_answers.to_string(),
                csv::opt(g.vqa_accuracy),
            ]
        })
        .collect()
}

/// Group rows with numbers shortened for reading.
fn group_rows_html(groups: &[GroupStats]) -> Vec<Vec<String>> {
    groups
        .iter()
        .map(|g| {
            vec![
                g.group.clone(),
                g.n_samples.to_string(),
                opt_num(g.mean_positive_ratio),
                num(g.share_synergy_dominant),
                num(g.mean_abs_sii),
                g.n_with_answers.to_string(),
                opt_num(g.vqa_accuracy),
            ]
        })
        .collect()
}

const GROUP_HEADER: [&str; 7] = [
    "group",
    "n_samples",
    "mean_positive_ratio",
    "share_synergy_dominant",
    "mean_abs_sii",
    "n_with_answers",
    "vqa_accuracy",
];

fn html_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = String::from("<table><tr>");
    for h in header {
        let _ = write!(s, "<th>{}</th>", escape(h));
    }
    s.push_str("</tr>");
    for r in rows {
        s.push_str("<tr>");
        for c in r {
            let _ = write!(s, "<td>{}</td>", escape(c));
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>\n");
    s
}

fn safe_name(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    if s.is_empty() {
        "sample".into()
    } else {
        s
    }
}

fn resolve_image(r: &ExplanationRecord, root: Option<&Path>) -> Option<PathBuf> {
    let p = PathBuf::from(r.image.as_ref()?);
    Some(match root {
        Some(root) if p.is_relative() => root.join(p),
        _ => p,
    })
}

/// Example records: the most synergistic and the most suppressive (by positive ratio).
fn pick_examples(records: &[ExplanationRecord], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..records.len())
        .filter(|&i| records[i].positive_ratio.is_some())
        .collect();
    idx.sort_by(|&a, &b| {
        let (ra, rb) = (
            records[a].positive_ratio.unwrap_or(0.5),
            records[b].positive_ratio.unwrap_or(0.5),
        );
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    let mut out = Vec::new();
    let (mut lo, mut hi) = (0usize, idx.len());
    while out.len() < k && lo < hi {
        out.push(idx[lo]);
        lo += 1;
        if out.len() < k && lo < hi {
            hi -= 1;
            out.push(idx[hi]);
        }
    }
    out
}

/// Compute the statistics and write `report.json`, the CSV tables, example heatmaps and
/// `report.html` into `out_dir` (created if needed).
pub fn build_report(
    records: &[ExplanationRecord],
    out_dir: &Path,
    opts: &ReportOptions,
) -> Result<ReportSummary> {
    for r in records {
        r.validate()?;
    }
    std::fs::create_dir_all(out_dir).map_err(io_err(out_dir))?;
    let stats = compute_stats(records, opts);
    let mut files = Vec::new();
    let mut warnings = Vec::new();

    let json = out_dir.join("report.json");
    let mut json_value = serde_json::to_value(&stats)?;
    if !opts.evaluations.is_empty() {
        let summaries: Vec<EvalSummary> = opts.evaluations.iter().map(EvalSummary::from).collect();
        json_value["evaluations"] = serde_json::to_value(summaries)?;
    }
    std::fs::write(&json, serde_json::to_vec_pretty(&json_value)?).map_err(io_err(&json))?;
    files.push(PathBuf::from("report.json"));

    // CSV tables.
    let mut write_csv = |name: &str, header: &[&str], rows: &[Vec<String>]| -> Result<()> {
        csv::write(&out_dir.join(name), header, rows)?;
        files.push(PathBuf::from(name));
        Ok(())
    };
    let summary_rows = vec![
        vec!["n_samples".into(), stats.n_samples.to_string()],
        vec!["n_ratio_defined".into(), stats.n_ratio_defined.to_string()],
        vec![
            "mean_positive_ratio".into(),
            csv::opt(stats.mean_positive_ratio),
        ],
        vec![
            "share_synergy_dominant".into(),
            csv::opt(stats.share_synergy_dominant),
        ],
        vec!["mean_abs_sii".into(), csv::opt(stats.mean_abs_sii)],
        vec![
            "max_sii".into(),
            csv::opt(stats.max_sii.as_ref().map(|e| e.value)),
        ],
        vec![
            "min_sii".into(),
            csv::opt(stats.min_sii.as_ref().map(|e| e.value)),
        ],
        vec!["n_with_answers".into(), stats.n_with_answers.to_string()],
        vec!["vqa_accuracy".into(), csv::opt(stats.vqa_accuracy)],
        vec![
            "total_evaluations".into(),
            stats.total_evaluations.to_string(),
        ],
        vec!["total_seconds".into(), stats.total_seconds.to_string()],
    ];
    write_csv("summary.csv", &["metric", "value"], &summary_rows)?;
    let sample_header = [
        "id",
        "text",
        "prediction",
        "positive_sum",
        "negative_sum",
        "positive_ratio",
        "synergy_dominant",
        "mean_abs_sii",
        "max_sii",
        "min_sii",
        "top_tokens",
        "vqa_accuracy",
        "answer_type",
        "question_type",
        "evaluations",
        "seconds",
    ];
    let sample_rows: Vec<Vec<String>> = stats
        .samples
        .iter()
        .map(|s| {
            vec![
                s.id.clone(),
                s.text.clone(),
                s.prediction.clone(),
                s.positive_sum.to_string(),
                s.negative_sum.to_string(),
                csv::opt(s.positive_ratio),
                s.synergy_dominant.to_string(),
                s.mean_abs_sii.to_string(),
                s.max_sii.to_string(),
                s.min_sii.to_string(),
                s.top_tokens.join(" "),
                csv::opt(s.vqa_accuracy),
                s.answer_type.clone().unwrap_or_default(),
                s.question_type.clone().unwrap_or_default(),
                s.evaluations.to_string(),
                s.seconds.to_string(),
            ]
        })
        .collect();
    write_csv("samples.csv", &sample_header, &sample_rows)?;
    let token_rows: Vec<Vec<String>> = stats
        .top_tokens
        .iter()
        .map(|t| vec![t.token.clone(), t.count.to_string(), t.share.to_string()])
        .collect();
    write_csv("top_tokens.csv", &["token", "count", "share"], &token_rows)?;
    write_csv(
        "by_answer_type.csv",
        &GROUP_HEADER,
        &group_rows(&stats.by_answer_type),
    )?;
    write_csv(
        "by_question_type.csv",
        &GROUP_HEADER,
        &group_rows(&stats.by_question_type),
    )?;
    let hist_rows = |h: &Histogram| -> Vec<Vec<String>> {
        h.counts
            .iter()
            .enumerate()
            .map(|(k, c)| {
                vec![
                    h.edges[k].to_string(),
                    h.edges[k + 1].to_string(),
                    c.to_string(),
                ]
            })
            .collect()
    };
    write_csv(
        "hist_positive_ratio.csv",
        &["lo", "hi", "count"],
        &hist_rows(&stats.positive_ratio_histogram),
    )?;
    write_csv(
        "hist_sii.csv",
        &["lo", "hi", "count"],
        &hist_rows(&stats.sii_histogram),
    )?;
    if !opts.evaluations.is_empty() {
        write_csv(
            "evaluation.csv",
            &["measure", "metric", "mean", "std", "samples"],
            &eval::summary_rows(&opts.evaluations),
        )?;
    }

    // Example heatmaps.
    let mut examples = Vec::new();
    for (k, i) in pick_examples(records, opts.examples)
        .into_iter()
        .enumerate()
    {
        let r = &records[i];
        let img = match resolve_image(r, opts.image_root.as_deref()) {
            Some(p) => match image::open(&p) {
                Ok(img) => Some(img),
                Err(e) => {
                    warnings.push(format!("{}: cannot load image {}: {e}", r.id, p.display()));
                    None
                }
            },
            None => None,
        };
        let rel = PathBuf::from(format!("examples/{k:02}_{}.png", safe_name(&r.id)));
        write_average_heatmap(r, img.as_ref(), &out_dir.join(&rel), &opts.heatmap)?;
        files.push(rel.clone());
        examples.push((i, rel));
    }

    // Evaluation pages.
    let mut eval_links = Vec::new();
    if !opts.evaluations.is_empty() {
        std::fs::create_dir_all(out_dir.join("eval")).map_err(io_err(out_dir.join("eval")))?;
        for (k, r) in opts.evaluations.iter().enumerate() {
            let rel = PathBuf::from(format!("eval/{k:02}-{}.html", safe_name(&r.measure)));
            let path = out_dir.join(&rel);
            std::fs::write(&path, eval::eval_page(r)).map_err(io_err(&path))?;
            if !stats.models.is_empty() && !stats.models.contains(&r.model) {
                warnings.push(format!(
                    "eval {} was computed with model {}, the results with {}",
                    r.measure,
                    r.model,
                    stats.models.join(", ")
                ));
            }
            eval_links.push(url(&rel));
            files.push(rel);
        }
    }

    // HTML.
    let mut h = page_start(&opts.title);
    let _ = writeln!(h, "<h1>{}</h1>", escape(&opts.title));
    let overview = vec![
        vec!["samples".to_string(), stats.n_samples.to_string()],
        vec!["models".into(), stats.models.join(", ")],
        vec!["estimators".into(), stats.estimators.join(", ")],
        vec![
            "mean positive ratio (synergy ratio)".into(),
            opt_num(stats.mean_positive_ratio),
        ],
        vec![
            "samples with a defined ratio".into(),
            stats.n_ratio_defined.to_string(),
        ],
        vec![
            "share of samples with |P| > |N|".into(),
            opt_num(stats.share_synergy_dominant),
        ],
        vec!["mean |SII|".into(), opt_num(stats.mean_abs_sii)],
        vec!["max SII".into(), extreme_cell(stats.max_sii.as_ref())],
        vec!["min SII".into(), extreme_cell(stats.min_sii.as_ref())],
        vec![
            "VQA accuracy (full input)".into(),
            format!(
                "{} over {} samples with answers",
                opt_num(stats.vqa_accuracy),
                stats.n_with_answers
            ),
        ],
        vec![
            "game evaluations".into(),
            stats.total_evaluations.to_string(),
        ],
        vec![
            "estimator seconds".into(),
            format!("{:.3}", stats.total_seconds),
        ],
    ];
    h.push_str("<h2>Summary</h2>");
    h.push_str(&html_table(&["metric", "value"], &overview));
    h.push_str("<h2>Distributions</h2><div class=\"maps\">");
    let ph = &stats.positive_ratio_histogram;
    h.push_str(&svg::histogram_svg(
        &ph.counts,
        &ph.edges,
        "Positive ratio P/(|P|+|N|) per sample",
        "positive ratio",
    ));
    let sh = &stats.sii_histogram;
    h.push_str(&svg::histogram_svg(
        &sh.counts,
        &sh.edges,
        "SII values (all pairs, all samples)",
        "SII",
    ));
    h.push_str("</div>\n");
    let _ = write!(
        h,
        "<h2>Top tokens</h2><p>Tokens among the top {} of a sample by &Sigma;<sub>i</sub> |SII<sub>ij</sub>|, counted over samples.</p>",
        opts.top_k
    );
    let bars: Vec<(String, f64)> = stats
        .top_tokens
        .iter()
        .map(|t| (t.token.clone(), t.count as f64))
        .collect();
    h.push_str(&svg::bar_chart_svg(
        &bars,
        "samples with the token in their top-k",
    ));
    let token_html: Vec<Vec<String>> = stats
        .top_tokens
        .iter()
        .map(|t| vec![t.token.clone(), t.count.to_string(), num(t.share)])
        .collect();
    h.push_str(&html_table(&["token", "count", "share"], &token_html));
    for (title, groups) in [
        ("By answer type", &stats.by_answer_type),
        ("By question type", &stats.by_question_type),
    ] {
        if !groups.is_empty() {
            let _ = write!(h, "<h2>{title}</h2>");
            h.push_str(&html_table(&GROUP_HEADER, &group_rows_html(groups)));
        }
    }
    if !examples.is_empty() {
        h.push_str("<h2>Examples (token-average maps)</h2><p>Most synergistic and most suppressive samples; red: positive mean SII, blue: negative; each map has its own symmetric scale.</p><div class=\"maps\">");
        for (i, rel) in &examples {
            let r = &records[*i];
            let _ = write!(
                h,
                "<figure><img src=\"{}\" alt=\"average heatmap of {}\"><figcaption><b>{}</b>: {} &rarr; {} (ratio {})</figcaption></figure>",
                url(rel),
                escape(&r.id),
                escape(&r.id),
                escape(&r.text),
                escape(&r.prediction.label),
                opt_num(r.positive_ratio)
            );
        }
        h.push_str("</div>\n");
        if let Some((i, _)) = examples.first() {
            h.push_str("<h3>First example</h3>");
            h.push_str(&summary_table(&records[*i]));
        }
    }
    if !opts.evaluations.is_empty() {
        h.push_str(&eval::evaluation_section_html(
            &opts.evaluations,
            &eval_links,
        ));
    }
    h.push_str("<h2>Samples</h2>");
    let short_rows: Vec<Vec<String>> = stats
        .samples
        .iter()
        .map(|s| {
            vec![
                s.id.clone(),
                s.text.clone(),
                s.prediction.clone(),
                num(s.positive_sum),
                num(s.negative_sum),
                opt_num(s.positive_ratio),
                s.top_tokens.join(" "),
                opt_num(s.vqa_accuracy),
            ]
        })
        .collect();
    h.push_str(&html_table(
        &[
            "id",
            "text",
            "prediction",
            "P",
            "N",
            "ratio",
            "top tokens",
            "VQA acc",
        ],
        &short_rows,
    ));
    h.push_str(PAGE_END);
    let html = out_dir.join("report.html");
    std::fs::write(&html, h).map_err(io_err(&html))?;
    files.push(PathBuf::from("report.html"));
    Ok(ReportSummary {
        stats,
        html,
        json,
        files,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_and_answer_normalisation() {
        assert_eq!(normalize_token("##Ing"), "ing");
        assert_eq!(normalize_token("Cat</w>"), "cat");
        assert_eq!(normalize_answer("  Two  Cats "), "two cats");
    }

    #[test]
    fn vqa_soft_accuracy() {
        let ans = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            vqa_accuracy("2", &ans(&["2", "2", "3", "two"])),
            Some(2.0 / 3.0)
        );
        assert_eq!(vqa_accuracy("2", &ans(&["2", "2", "2", "2"])), Some(1.0));
        assert_eq!(vqa_accuracy("Yes", &ans(&["yes"])), Some(1.0));
        assert_eq!(vqa_accuracy("no", &ans(&["yes"])), Some(0.0));
        assert_eq!(vqa_accuracy("no", &[]), None);
    }

    #[test]
    fn histogram_bins() {
        let h = Histogram::new(&[0.0, 0.05, 0.1, 0.99, 1.0, 0.5], 0.0, 1.0, 10);
        assert_eq!(h.counts, vec![2, 1, 0, 0, 0, 1, 0, 0, 0, 2]);
        assert_eq!(h.edges.len(), 11);
        let d = Histogram::new(&[2.0, 2.0], 2.0, 2.0, 4);
        assert_eq!(d.counts.iter().sum::<usize>(), 2);
    }

    #[test]
    fn examples_alternate_ends() {
        use crate::schema::tests::{estimate, meta};
        let recs: Vec<ExplanationRecord> = [1.0, -1.0, 0.5]
            .iter()
            .enumerate()
            .map(|(k, &v)| {
                ExplanationRecord::from_estimate(
                    &estimate(1, 2, vec![v, 0.25]),
                    meta(&format!("s{k}"), 1, 1, &["a", "b"]),
                )
                .unwrap()
            })
            .collect();
        // ratios: s0 = 1, s1 = 0.25/1.25 = 0.2, s2 = 1
        assert_eq!(pick_examples(&recs, 2), vec![0, 1]);
        assert_eq!(pick_examples(&recs, 5), vec![0, 1, 2]);
    }
}
