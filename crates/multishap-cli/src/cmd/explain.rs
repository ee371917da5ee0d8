//! `multishap explain`: one (image, text) -> an output folder with
//! `result.json`, `image.png`, `heatmaps/*.png`, `matrix.svg`, `index.html`
//! and `config.used.toml`.
use crate::cli::ExplainArgs;
use crate::config::Settings;
use crate::errors::{user, UserContext};
use crate::explainer::{Explainer, SampleInput};
use anyhow::Result;
use multishap_report::{write_explanation_page, ExplanationRecord, HeatmapOptions};
use std::path::PathBuf;

/// What `explain` wrote.
#[derive(Debug, Clone)]
pub struct ExplainOutput {
    pub record: ExplanationRecord,
    pub result_json: PathBuf,
    pub index_html: PathBuf,
}

pub fn run(a: &ExplainArgs) -> Result<ExplainOutput> {
    let settings = Settings::resolve(&a.common.overrides())?;
    if !a.image.exists() {
        return Err(user(format!("--image {}: no such file", a.image.display())));
    }
    let explainer = Explainer::load(settings)?;
    let text = match (&a.question, &a.caption) {
        (Some(q), None) => {
            if !explainer.is_vqa() {
                return Err(user(format!(
                    "--question given but {} is a retrieval model: use --caption",
                    explainer.settings.model_label
                )));
            }
            q.clone()
        }
        (None, Some(c)) => {
            if explainer.is_vqa() {
                return Err(user(format!(
                    "--caption given but {} is a VQA model: use --question",
                    explainer.settings.model_label
                )));
            }
            c.clone()
        }
        _ => {
            return Err(user(
                "give the text: --question (VQA) or --caption (retrieval)",
            ))
        }
    };
    if text.trim().is_empty() {
        return Err(user("the question / caption is empty"));
    }
    let answers: Vec<String> = a.answer.iter().cloned().collect();
    let input = SampleInput {
        id: &a.id,
        image: &a.image,
        text: &text,
        answers: &answers,
        answer_type: None,
        question_type: None,
    };
    let (record, image) = explainer.explain(&input, explainer.settings.seed)?;
    if crate::explainer::has_undefined_stderr(&record) {
        eprintln!("{}", crate::explainer::UNDEFINED_STDERR_WARNING);
    }

    std::fs::create_dir_all(&a.out)
        .user_ctx(|| format!("cannot create output folder {}", a.out.display()))?;
    let result_json = a.out.join("result.json");
    std::fs::write(&result_json, serde_json::to_string_pretty(&record)? + "\n")
        .user_ctx(|| format!("cannot write {}", result_json.display()))?;
    let page = write_explanation_page(&record, Some(&image), &a.out, &HeatmapOptions::default())?;
    super::write_config_used(&a.out, &explainer.settings.config)?;

    println!(
        "prediction: {} (score {:.4}); value {:.4} full / {:.4} empty",
        record.prediction.label,
        record.prediction.score,
        record.full_score,
        record.empty_score.unwrap_or(f64::NAN)
    );
    println!(
        "{} patches x {} tokens, {} {} evaluations in {:.2} s; P = {:.4}, N = {:.4}, positive ratio = {}",
        record.image_players(),
        record.text_players(),
        record.estimator,
        record.evaluations,
        record.seconds,
        record.positive_sum,
        record.negative_sum,
        record.positive_ratio.map(|r| format!("{r:.3}")).unwrap_or_else(|| "undefined".into())
    );
    println!(
        "wrote {} and {}",
        result_json.display(),
        page.index.display()
    );
    Ok(ExplainOutput {
        record,
        result_json,
        index_html: page.index,
    })
}
