//! `index.html` of one explanation: summary table, the image, the token-average heatmap,
//! one heatmap per token (with its token), the token x patch matrix and a token table.
//! Only relative links to files written next to it; no network resources.
use crate::error::{io_err, Result};
use crate::heatmap::{write_heatmaps, HeatmapOptions, HeatmapSet};
use crate::schema::ExplanationRecord;
use crate::svg::{self, escape, num};
use image::DynamicImage;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Files of one explanation page (paths relative to its folder except `index`).
#[derive(Debug, Clone, PartialEq)]
pub struct ExplanationPage {
    /// Absolute (or out_dir-joined) path of `index.html`.
    pub index: PathBuf,
    pub heatmaps: HeatmapSet,
    /// `matrix.svg`, relative.
    pub matrix: PathBuf,
}

pub(crate) const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222;max-width:1400px}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:13px}\
th{background:#f0f0f0}.maps{display:flex;flex-wrap:wrap;gap:12px}.maps figure{margin:0;text-align:center}\
.maps img{max-width:260px;height:auto;border:1px solid #ccc}figcaption{font-size:13px}\
img.main{max-width:520px;height:auto;border:1px solid #ccc}.num{text-align:right;font-variant-numeric:tabular-nums}";

/// Start of a self-contained HTML page.
pub(crate) fn page_start(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
<link rel=\"icon\" href=\"data:,\"><style>{STYLE}</style></head><body>\n",
        escape(title)
    )
}

pub(crate) const PAGE_END: &str = "</body></html>\n";

/// Forward-slash relative URL of a relative path.
pub(crate) fn url(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

fn row(out: &mut String, k: &str, v: &str) {
    let _ = write!(out, "<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(v));
}

/// The summary table of a record.
pub(crate) fn summary_table(r: &ExplanationRecord) -> String {
    let mut t = String::from("<table class=\"summary\">");
    row(&mut t, "id", &r.id);
    let model = match &r.model.revision {
        Some(rev) => format!("{} @ {rev}", r.model.id),
        None => r.model.id.clone(),
    };
    row(&mut t, "model", &model);
    row(&mut t, "text", &r.text);
    row(
        &mut t,
        "prediction",
        &format!("{} (score {})", r.prediction.label, num(r.prediction.score)),
    );
    if let Some(target) = &r.target {
        row(&mut t, "explained target", target);
    }
    row(&mut t, "score on full input", &num(r.full_score));
    if let Some(e) = r.empty_score {
        row(&mut t, "score on empty input", &num(e));
    }
    if let Some(a) = &r.answers {
        row(&mut t, "ground truth", &a.join(" | "));
    }
    if let Some(a) = &r.answer_type {
        row(&mut t, "answer type", a);
    }
    if let Some(q) = &r.question_type {
        row(&mut t, "question type", q);
    }
    row(&mut t, "scorer", &r.scorer);
    row(&mut t, "estimator", &r.estimator);
    row(
        &mut t,
        "budget / evaluations",
        &format!("{} / {}", r.budget, r.evaluations),
    );
    row(&mut t, "seconds", &format!("{:.3}", r.seconds));
    row(&mut t, "seed", &r.seed.to_string());
    row(&mut t, "masking", &r.masking.to_string());
    row(&mut t, "preprocessing", &r.preprocessing.to_string());
    row(
        &mut t,
        "players",
        &format!(
            "{} patches ({} x {} grid) x {} tokens",
            r.image_players(),
            r.grid.rows,
            r.grid.cols,
            r.text_players()
        ),
    );
    row(&mut t, "P (sum of positive SII)", &num(r.positive_sum));
    row(&mut t, "N (sum of negative SII)", &num(r.negative_sum));
    row(
        &mut t,
        "positive ratio P/(|P|+|N|)",
        &r.positive_ratio
            .map(num)
            .unwrap_or_else(|| "undefined (all SII = 0)".into()),
    );
    t.push_str("</table>\n");
    t
}

/// Write `index.html`, `image.png`, `heatmaps/*.png` and `matrix.svg` for one record into
/// `out_dir` (created if needed). `image` is the original input image, if available.
pub fn write_explanation_page(
    record: &ExplanationRecord,
    image: Option<&DynamicImage>,
    out_dir: &Path,
    opts: &HeatmapOptions,
) -> Result<ExplanationPage> {
    std::fs::create_dir_all(out_dir).map_err(io_err(out_dir))?;
    let maps = write_heatmaps(record, image, out_dir, opts)?;
    let matrix = PathBuf::from("matrix.svg");
    let matrix_path = out_dir.join(&matrix);
    std::fs::write(&matrix_path, svg::matrix_svg(record)).map_err(io_err(&matrix_path))?;

    let mut h = page_start(&format!("MultiSHAP explanation {}", record.id));
    let _ = writeln!(h, "<h1>Explanation of sample {}</h1>", escape(&record.id));
    h.push_str(&summary_table(record));
    let _ = writeln!(
        h,
        "<h2>Image and token-average interaction map</h2><div class=\"maps\">\
<figure><img class=\"main\" src=\"{}\" alt=\"input image\"><figcaption>input image</figcaption></figure>\
<figure><img class=\"main\" src=\"{}\" alt=\"average heatmap\"><figcaption>mean SII over tokens</figcaption>{}</figure></div>",
        url(&maps.base),
        url(&maps.average),
        svg::colorbar_svg(maps.average_scale, 300, "mean SII over tokens")
    );
    let shared = opts.shared_scale;
    let _ = write!(
        h,
        "<h2>Per-token interaction maps</h2><p>Red: synergy (positive SII), blue: suppression (negative SII). {}</p>",
        if shared {
            "All token maps share one symmetric colour scale (max |SII| of the grid)."
        } else {
            "Each token map has its own symmetric colour scale."
        }
    );
    if shared {
        let scale = maps.tokens.first().map(|t| t.scale).unwrap_or(0.0);
        h.push_str(&svg::colorbar_svg(scale, 300, "SII"));
    }
    h.push_str("<div class=\"maps\">");
    let importance = record.token_importance();
    for t in &maps.tokens {
        let _ = write!(
            h,
            "<figure><img src=\"{}\" alt=\"heatmap of token {}\"><figcaption>#{} <b>{}</b> &middot; &Sigma;|SII| = {}</figcaption></figure>",
            url(&t.file),
            escape(&t.token),
            t.token_index,
            escape(&t.token),
            num(importance[t.token_index])
        );
    }
    h.push_str("</div>\n");
    let _ = writeln!(
        h,
        "<h2>Token x patch matrix</h2><img src=\"{}\" alt=\"token by patch SII matrix\">",
        url(&matrix)
    );
    h.push_str("<h2>Tokens</h2><table><tr><th>#</th><th>token</th><th>&Sigma; SII</th><th>&Sigma; |SII|</th>");
    let m = record.image_players();
    if record.shapley.is_some() {
        h.push_str("<th>Shapley value</th>");
    }
    h.push_str("</tr>");
    for (j, tok) in record.tokens.iter().enumerate() {
        let sum: f64 = record.token_map(j).iter().sum();
        let _ = write!(
            h,
            "<tr><td>{j}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
            escape(tok),
            num(sum),
            num(importance[j])
        );
        if let Some(s) = &record.shapley {
            let _ = write!(h, "<td class=\"num\">{}</td>", num(s[m + j]));
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>\n");
    h.push_str(PAGE_END);
    let index = out_dir.join("index.html");
    std::fs::write(&index, h).map_err(io_err(&index))?;
    Ok(ExplanationPage {
        index,
        heatmaps: maps,
        matrix,
    })
}
