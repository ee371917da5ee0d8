//! `multishap report`: dataset statistics and HTML from one or more results files.
use crate::cli::ReportArgs;
use crate::errors::{user, UserContext};
use anyhow::Result;
use multishap_report::eval::is_eval_report_name;
use multishap_report::{
    build_report, read_shards, EvalReport, ExplanationRecord, ReportOptions, ReportSummary,
};
use std::path::{Path, PathBuf};

/// The files of folder `dir` whose path satisfies `keep`, sorted.
fn files_in(dir: &Path, keep: impl Fn(&Path) -> bool) -> Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .user_ctx(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|f| f.is_file() && keep(f))
        .collect();
    found.sort();
    Ok(found)
}

/// `p` itself when it is a file, else the files `list` finds in folder `p`
/// (an error naming `what` when there are none).
fn expand(
    p: &Path,
    list: impl Fn(&Path) -> Result<Vec<PathBuf>>,
    what: &str,
) -> Result<Vec<PathBuf>> {
    if p.is_dir() {
        let found = list(p)?;
        if found.is_empty() {
            return Err(user(format!("{} holds no {what}", p.display())));
        }
        Ok(found)
    } else if p.is_file() {
        Ok(vec![p.to_path_buf()])
    } else {
        Err(user(format!("{}: no such file or folder", p.display())))
    }
}

/// Files given, with folders expanded to their `results*.jsonl` (sorted), or
/// to their `result.json` (an `explain` output folder).
pub fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let results_in = |dir: &Path| -> Result<Vec<PathBuf>> {
        let mut found = files_in(dir, |f| {
            let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("results") && name.ends_with(".jsonl")
        })?;
        if found.is_empty() && dir.join("result.json").is_file() {
            found.push(dir.join("result.json"));
        }
        Ok(found)
    };
    let mut files = Vec::new();
    for p in inputs {
        files.extend(expand(p, results_in, "results*.jsonl or result.json")?);
    }
    Ok(files)
}

/// The `eval-*.json` files of `multishap eval` to show: those in the input
/// folders, then those named by `--eval` (files, or folders holding them),
/// each once, in that order (sorted within a folder).
pub fn eval_inputs(inputs: &[PathBuf], explicit: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let evals_in = |dir: &Path| files_in(dir, is_eval_report_name);
    let mut files = Vec::new();
    for p in inputs.iter().filter(|p| p.is_dir()) {
        files.extend(evals_in(p)?);
    }
    for p in explicit {
        files.extend(expand(p, evals_in, "eval-*.json").map_err(|e| e.context("--eval"))?);
    }
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| seen.insert(std::fs::canonicalize(f).unwrap_or_else(|_| f.clone())));
    Ok(files)
}

pub fn run(a: &ReportArgs) -> Result<ReportSummary> {
    let files = expand_inputs(&a.inputs)?;
    let evaluations = eval_inputs(&a.inputs, &a.eval)?
        .iter()
        .map(|f| EvalReport::read(f).user_err())
        .collect::<Result<Vec<_>>>()?;
    // `explain`'s result.json files hold one pretty-printed record each.
    let (singles, shards): (Vec<PathBuf>, Vec<PathBuf>) = files
        .iter()
        .cloned()
        .partition(|f| f.extension().is_some_and(|e| e == "json"));
    let mut merged = read_shards(&shards).user_err()?;
    for f in &singles {
        let text =
            std::fs::read_to_string(f).user_ctx(|| format!("cannot read {}", f.display()))?;
        let rec: ExplanationRecord = serde_json::from_str(&text)
            .user_ctx(|| format!("{} is not a multishap result.json", f.display()))?;
        rec.validate().user_ctx(|| f.display().to_string())?;
        if merged.records.iter().any(|r| r.id == rec.id) {
            merged.duplicate_ids.push(rec.id);
        } else {
            merged.records.push(rec);
        }
    }
    for f in &merged.torn_files {
        eprintln!("report: ignored a torn last line in {}", f.display());
    }
    if !merged.duplicate_ids.is_empty() {
        eprintln!(
            "report: {} duplicate ids kept once (first occurrence), e.g. {}",
            merged.duplicate_ids.len(),
            merged.duplicate_ids[0]
        );
    }
    if merged.records.is_empty() {
        return Err(user("no records in the given results files"));
    }
    let mut opts = ReportOptions::default();
    if let Some(t) = &a.title {
        opts.title = t.clone();
    }
    if let Some(e) = a.examples {
        opts.examples = e;
    }
    if let Some(k) = a.top_k {
        opts.top_k = k;
    }
    opts.image_root = a.image_root.clone();
    let n_eval = evaluations.len();
    opts.evaluations = evaluations;
    let summary = build_report(&merged.records, &a.out, &opts)?;
    for w in &summary.warnings {
        eprintln!("report: warning: {w}");
    }
    let s = &summary.stats;
    println!(
        "{} samples from {} file(s); mean positive ratio {}; synergy-dominant share {}",
        s.n_samples,
        files.len(),
        s.mean_positive_ratio
            .map(|v| format!("{v:.3}"))
            .unwrap_or_else(|| "n/a".into()),
        s.share_synergy_dominant
            .map(|v| format!("{v:.3}"))
            .unwrap_or_else(|| "n/a".into()),
    );
    if n_eval > 0 {
        println!("{n_eval} eval report(s) in the Evaluation section");
    }
    println!(
        "wrote {} and {}",
        summary.json.display(),
        summary.html.display()
    );
    Ok(summary)
}
