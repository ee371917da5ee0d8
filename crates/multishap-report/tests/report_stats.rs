//! Dataset statistics recomputed by hand on a small, hand-written results file.
//!
//! The four records below are written as raw JSON lines (as another producer would), with
//! P, N and the ratio computed by hand; all SII values are dyadic so sums are exact.
use multishap_report::eval::{summarise, EvalReport, MeanCurve, SampleEval};
use multishap_report::jsonl::read_records;
use multishap_report::stats::{compute_stats, normalize_token};
use multishap_report::{build_report, ExplanationRecord, ReportOptions};
use serde_json::{json, Value};

#[allow(clippy::too_many_arguments)]
fn line(
    id: &str,
    tokens: &[&str],
    rows: usize,
    cols: usize,
    sii: Value,
    p: f64,
    n: f64,
    ratio: Option<f64>,
    prediction: &str,
    answers: Option<&[&str]>,
    answer_type: Option<&str>,
    question_type: Option<&str>,
) -> String {
    let m = rows * cols;
    let zeros: Vec<Vec<f64>> = vec![vec![0.0; tokens.len()]; m];
    json!({
        "schema_version": 1,
        "id": id,
        "model": {"id": "dandelin/vilt-b32-finetuned-vqa", "revision": "r1"},
        "preprocessing": {"resize": 384},
        "masking": {"image": "gray", "text": "delete"},
        "scorer": "vqa-logit",
        "estimator": "exact",
        "budget": 64,
        "seed": 1,
        "evaluations": 10 * m,
        "seconds": 0.25,
        "prediction": {"label": prediction, "score": 2.5},
        "full_score": 2.5,
        "answers": answers,
        "answer_type": answer_type,
        "question_type": question_type,
        "text": tokens.join(" "),
        "tokens": tokens,
        "grid": {"rows": rows, "cols": cols},
        "sii": sii,
        "sii_stderr": zeros,
        "positive_sum": p,
        "negative_sum": n,
        "positive_ratio": ratio,
    })
    .to_string()
}

fn results_file() -> String {
    let ten: Vec<&str> = ["red"; 4].into_iter().chain(["blue"; 6]).collect();
    [
        // P = .5 + .25 + .125 = .875, N = -.25 - .75 = -1, ratio = .875 / 1.875 = 7/15.
        // token importance: What .5, color 1.0, ##s .375 -> top: color, what, s.
        // mean |SII| = 1.875 / 6 = .3125; VQA: 4 of 10 say "red" -> min(4/3, 1) = 1.
        line(
            "q1",
            &["What", "color", "##s"],
            1,
            2,
            json!([[0.5, -0.25, 0.25], [0.0, -0.75, 0.125]]),
            0.875,
            -1.0,
            Some(7.0 / 15.0),
            "Red",
            Some(&ten[..]),
            Some("other"),
            Some("what color"),
        ),
        // P = 1.75, N = -.5, ratio = 7/9; importance: is 1.25, the 0, cat 1.0 -> top: is, cat.
        // mean |SII| = 2.25 / 6 = .375; VQA: 1 of 3 -> 1/3.
        line(
            "q2",
            &["Is</w>", "the</w>", "cat</w>"],
            2,
            1,
            json!([[1.0, 0.0, 0.5], [0.25, 0.0, -0.5]]),
            1.75,
            -0.5,
            Some(7.0 / 9.0),
            "no",
            Some(&["yes", "yes", "no"]),
            Some("yes/no"),
            Some("is the"),
        ),
        // P = .75, N = -.25, ratio .75; top: cat, color; mean |SII| = .5; single answer exact.
        line(
            "q3",
            &["color", "cat"],
            1,
            1,
            json!([[-0.25, 0.75]]),
            0.75,
            -0.25,
            Some(0.75),
            "2",
            Some(&["2"]),
            Some("other"),
            None,
        ),
        // All zero: ratio undefined (null), not synergy-dominant, no top tokens, no answers.
        line(
            "q4",
            &["x"],
            1,
            1,
            json!([[0.0]]),
            0.0,
            0.0,
            None,
            "x",
            None,
            None,
            None,
        ),
    ]
    .join("\n")
        + "\n"
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

fn records() -> (tempfile::TempDir, Vec<ExplanationRecord>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.jsonl");
    std::fs::write(&path, results_file()).unwrap();
    let out = read_records(&path).unwrap();
    assert!(out.torn_tail.is_none());
    (dir, out.records)
}

#[test]
fn dataset_stats_match_hand_computation() {
    let (_dir, recs) = records();
    assert_eq!(recs.len(), 4);
    let s = compute_stats(&recs, &ReportOptions::default());
    assert_eq!(s.n_samples, 4);
    assert_eq!(s.n_ratio_defined, 3);
    assert!(close(
        s.mean_positive_ratio.unwrap(),
        (7.0 / 15.0 + 7.0 / 9.0 + 0.75) / 3.0
    ));
    assert!(close(s.share_synergy_dominant.unwrap(), 0.5)); // q2, q3
    assert!(close(
        s.mean_abs_sii.unwrap(),
        (0.3125 + 0.375 + 0.5 + 0.0) / 4.0
    ));
    let max = s.max_sii.as_ref().unwrap();
    assert_eq!(
        (max.value, max.id.as_str(), max.patch, max.token_index),
        (1.0, "q2", 0, 0)
    );
    assert_eq!(max.token, "Is</w>");
    let min = s.min_sii.as_ref().unwrap();
    assert_eq!(
        (min.value, min.id.as_str(), min.patch, min.token.as_str()),
        (-0.75, "q1", 1, "color")
    );
    assert_eq!(s.n_with_answers, 3);
    assert!(close(
        s.vqa_accuracy.unwrap(),
        (1.0 + 1.0 / 3.0 + 1.0) / 3.0
    ));
    assert_eq!(s.total_evaluations, 20 + 20 + 10 + 10);

    let top: Vec<(&str, usize)> = s
        .top_tokens
        .iter()
        .map(|t| (t.token.as_str(), t.count))
        .collect();
    assert_eq!(
        top,
        vec![("cat", 2), ("color", 2), ("is", 1), ("s", 1), ("what", 1)]
    );
    assert!(close(s.top_tokens[0].share, 0.5));
    assert_eq!(s.samples[0].top_tokens, vec!["color", "what", "s"]);
    assert_eq!(s.samples[1].top_tokens, vec!["is", "cat"]);
    assert!(s.samples[3].top_tokens.is_empty());
    assert_eq!(normalize_token("##S"), "s");

    // Positive ratio histogram on [0, 1], 10 bins: 7/15 -> bin 4, 7/9 and .75 -> bin 7.
    assert_eq!(
        s.positive_ratio_histogram.counts,
        vec![0, 0, 0, 0, 1, 0, 0, 2, 0, 0]
    );
    // SII histogram on [-.75, 1], 20 bins of .0875: 15 values; -.75 alone in the first bin,
    // 1.0 alone in the last, the four zeros in bin 8 = [-.05, .0375).
    let h = &s.sii_histogram;
    assert_eq!(h.counts.iter().sum::<usize>(), 15);
    assert!(close(h.edges[0], -0.75) && close(h.edges[20], 1.0));
    assert_eq!((h.counts[0], h.counts[19], h.counts[8]), (1, 1, 4));

    let at = &s.by_answer_type;
    assert_eq!(at.len(), 2);
    assert_eq!((at[0].group.as_str(), at[0].n_samples), ("other", 2));
    assert!(close(
        at[0].mean_positive_ratio.unwrap(),
        (7.0 / 15.0 + 0.75) / 2.0
    ));
    assert!(close(at[0].share_synergy_dominant, 0.5));
    assert!(close(at[0].mean_abs_sii, (0.3125 + 0.5) / 2.0));
    assert!(close(at[0].vqa_accuracy.unwrap(), 1.0));
    assert_eq!((at[1].group.as_str(), at[1].n_samples), ("yes/no", 1));
    assert!(close(at[1].vqa_accuracy.unwrap(), 1.0 / 3.0));
    assert!(close(at[1].share_synergy_dominant, 1.0));
    let qt: Vec<(&str, usize)> = s
        .by_question_type
        .iter()
        .map(|g| (g.group.as_str(), g.n_samples))
        .collect();
    assert_eq!(qt, vec![("is the", 1), ("what color", 1)]);
}

#[test]
fn report_files_agree_with_stats() {
    let (dir, recs) = records();
    let out = dir.path().join("report");
    let summary = build_report(&recs, &out, &ReportOptions::default()).unwrap();
    for f in [
        "report.json",
        "report.html",
        "summary.csv",
        "samples.csv",
        "top_tokens.csv",
        "by_answer_type.csv",
        "by_question_type.csv",
        "hist_positive_ratio.csv",
        "hist_sii.csv",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
        assert!(
            summary.files.iter().any(|p| p.to_str() == Some(f)),
            "{f} not listed"
        );
    }
    let json: Value = serde_json::from_slice(&std::fs::read(&summary.json).unwrap()).unwrap();
    assert!(close(json["share_synergy_dominant"].as_f64().unwrap(), 0.5));
    assert_eq!(json["n_samples"], 4);
    assert!(json["samples"][3]["positive_ratio"].is_null());

    let top = std::fs::read_to_string(out.join("top_tokens.csv")).unwrap();
    assert_eq!(
        top,
        "token,count,share\ncat,2,0.5\ncolor,2,0.5\nis,1,0.25\ns,1,0.25\nwhat,1,0.25\n"
    );
    let summary_csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(
        summary_csv.contains("\nshare_synergy_dominant,0.5\n"),
        "{summary_csv}"
    );
    assert!(summary_csv.contains("\nn_with_answers,3\n"));
    let samples = std::fs::read_to_string(out.join("samples.csv")).unwrap();
    assert_eq!(samples.lines().count(), 5);
    assert!(samples
        .lines()
        .nth(4)
        .unwrap()
        .starts_with("q4,x,x,0,0,,false,"));
    let by_type = std::fs::read_to_string(out.join("by_answer_type.csv")).unwrap();
    assert!(by_type.contains("\nyes/no,1,"));
    // Examples: 3 samples have a ratio; the default asks for 4 -> 3 example maps.
    let examples: Vec<_> = summary
        .files
        .iter()
        .filter(|p| p.starts_with("examples"))
        .collect();
    assert_eq!(examples.len(), 3);
}

fn eval_report(measure: &str, model: &str, values: &[f64]) -> EvalReport {
    let samples: Vec<SampleEval> = values
        .iter()
        .enumerate()
        .map(|(k, v)| SampleEval {
            id: format!("q{k}"),
            text: "what color is the cat?".into(),
            metrics: [("auc_sii".to_string(), *v)].into_iter().collect(),
            detail: Value::Null,
        })
        .collect();
    EvalReport {
        measure: measure.into(),
        definition: "area under the score-drop curve".into(),
        model: model.into(),
        estimator: "shared-stratified".into(),
        device: "cpu".into(),
        seed: 7,
        parameters: serde_json::json!({"max_pairs": 4}),
        summary: summarise(&samples),
        mean_curves: vec![MeanCurve {
            name: "score drop vs pairs removed: sii".into(),
            x: vec![0.0, 0.5, 1.0],
            y: vec![0.0, 0.2, 0.3],
            samples: values.len(),
        }],
        samples,
        failed: vec![],
    }
}

#[test]
fn eval_reports_join_the_dataset_report() {
    let (dir, recs) = records();
    let out = dir.path().join("report");
    let model = recs[0].model.id.clone();
    let opts = ReportOptions {
        evaluations: vec![
            eval_report("pair-masking", &model, &[0.2, 0.4]),
            eval_report("deletion", "another-model", &[1.0]),
        ],
        ..Default::default()
    };
    let summary = build_report(&recs, &out, &opts).unwrap();
    // one page per eval report, listed, plus evaluation.csv
    for f in [
        "eval/00-pair-masking.html",
        "eval/01-deletion.html",
        "evaluation.csv",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
        assert!(summary.files.iter().any(|p| p.to_str() == Some(f)), "{f}");
    }
    let csv = std::fs::read_to_string(out.join("evaluation.csv")).unwrap();
    let mean = (0.2 + 0.4) / 2.0;
    assert_eq!(
        csv,
        format!(
            "measure,metric,mean,std,samples\npair-masking,auc_sii,{mean},{},2\ndeletion,auc_sii,1,0,1\n",
            (((0.2f64 - mean).powi(2) + (0.4f64 - mean).powi(2)) / 2.0).sqrt()
        )
    );
    let json: Value = serde_json::from_slice(&std::fs::read(&summary.json).unwrap()).unwrap();
    assert_eq!(json["n_samples"], 4);
    let ev = &json["evaluations"];
    assert_eq!(ev.as_array().unwrap().len(), 2);
    assert_eq!(ev[0]["measure"], "pair-masking");
    assert!(close(
        ev[0]["summary"]["auc_sii"]["mean"].as_f64().unwrap(),
        mean
    ));
    assert_eq!(ev[0]["samples"], 2);
    assert!(ev[0].get("detail").is_none());
    let html = std::fs::read_to_string(&summary.html).unwrap();
    assert!(html.contains("<h2 id=\"evaluation\">Evaluation</h2>"));
    assert!(html.contains("href=\"eval/00-pair-masking.html\""));
    assert!(html.contains("<polyline"));
    // the deletion eval names another model: a warning, not an error
    assert_eq!(summary.warnings.len(), 1, "{:?}", summary.warnings);
    assert!(summary.warnings[0].contains("another-model"));
    // without eval reports there is no section and no eval folder
    let plain = dir.path().join("plain");
    build_report(&recs, &plain, &ReportOptions::default()).unwrap();
    assert!(!plain.join("eval").exists());
    let html = std::fs::read_to_string(plain.join("report.html")).unwrap();
    assert!(!html.contains("Evaluation"));
}
