//! `multishap run`: explain a dataset into an append-only `results.jsonl`.
//!
//! - One record per sample, flushed and fsynced before the next sample starts
//!   (with `[batch] samples_in_flight = n`, before the next group of n
//!   samples, explained together, starts).
//! - `--resume` skips ids already in the results file (a torn last line from a
//!   crash is ignored and repaired); without `--resume` or `--force` an existing
//!   non-empty results file is never overwritten.
//! - A failing sample goes to `errors.jsonl` and the run continues (failed
//!   samples are retried by `--resume`).
//! - `--shard i/n` (or the Slurm / Kubernetes environment) keeps samples
//!   k = i mod n and writes `results-I-of-N.jsonl` / `errors-I-of-N.jsonl`;
//!   `multishap report` merges the shards.
//! - Each sample's seed is derived from the run seed and its id
//!   ([`crate::explainer::sample_seed`]), so shards and resumed runs give the
//!   same records as one uninterrupted run.
use crate::cli::{DatasetArgs, RunArgs};
use crate::config::Settings;
use crate::datasets::{self, DatasetSpec};
use crate::errors::{one_line, user, UserContext};
use crate::explainer::{sample_seed, Explainer, SampleInput};
use crate::progress::Progress;
use crate::shard::Shard;
use anyhow::Result;
use multishap_report::{completed_ids, ErrorsWriter, ResultsWriter};
use std::path::{Path, PathBuf};

/// Counts of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub total: usize,
    pub skipped: usize,
    pub done: usize,
    pub failed: usize,
    pub results: PathBuf,
    pub errors: PathBuf,
}

/// The dataset named by the flags (exactly one source).
pub fn dataset_spec(d: &DatasetArgs) -> Result<DatasetSpec> {
    let images = |what: &str| -> Result<PathBuf> {
        d.images
            .clone()
            .ok_or_else(|| user(format!("{what} needs --images DIR (the image folder)")))
    };
    let given = [
        d.manifest.is_some(),
        d.vqa_questions.is_some(),
        d.coco_captions.is_some(),
        d.flickr30k.is_some(),
    ];
    match given.iter().filter(|g| **g).count() {
        0 => {
            return Err(user(
                "no dataset: give --manifest, --vqa-questions, --coco-captions or --flickr30k",
            ))
        }
        1 => {}
        _ => {
            return Err(user(
                "give only one of --manifest, --vqa-questions, --coco-captions, --flickr30k",
            ))
        }
    }
    let spec = if let Some(m) = &d.manifest {
        DatasetSpec::Manifest(m.clone())
    } else if let Some(q) = &d.vqa_questions {
        DatasetSpec::Vqa2 {
            questions: q.clone(),
            annotations: d.vqa_annotations.clone(),
            images: images("--vqa-questions")?,
        }
    } else if let Some(c) = &d.coco_captions {
        DatasetSpec::CocoCaptions {
            captions: c.clone(),
            images: images("--coco-captions")?,
        }
    } else if let Some(k) = &d.flickr30k {
        DatasetSpec::Flickr30k {
            karpathy: k.clone(),
            images: images("--flickr30k")?,
            split: d.split.clone(),
        }
    } else {
        unreachable!("one dataset source was counted above")
    };
    Ok(spec)
}

/// File names of a shard.
pub fn output_files(out: &Path, shard: Shard) -> (PathBuf, PathBuf) {
    if shard == Shard::ALL {
        (out.join("results.jsonl"), out.join("errors.jsonl"))
    } else {
        let tag = format!("{}-of-{}", shard.index, shard.count);
        (
            out.join(format!("results-{tag}.jsonl")),
            out.join(format!("errors-{tag}.jsonl")),
        )
    }
}

fn non_empty(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.len() > 0)
        .unwrap_or(false)
}

pub fn run(a: &RunArgs) -> Result<RunSummary> {
    let shard = Shard::resolve(a.shard.as_deref(), |k| std::env::var(k).ok()).user_err()?;
    let spec = dataset_spec(&a.dataset)?;
    let settings = Settings::resolve(&a.common.overrides())?;
    let samples = datasets::load(&spec).user_err()?;
    let mut samples = shard.select(samples);
    if let Some(limit) = a.limit {
        samples.truncate(limit);
    }
    let (results_path, errors_path) = output_files(&a.out, shard);
    if non_empty(&results_path) && !a.resume && !a.force {
        return Err(user(format!(
            "{} exists and is not empty: pass --resume to continue it or --force to overwrite it",
            results_path.display()
        )));
    }
    std::fs::create_dir_all(&a.out)
        .user_ctx(|| format!("cannot create output folder {}", a.out.display()))?;
    if a.force {
        for p in [&results_path, &errors_path] {
            if p.exists() {
                std::fs::remove_file(p).user_ctx(|| format!("cannot remove {}", p.display()))?;
            }
        }
    }
    let done_ids = if a.resume {
        completed_ids(&results_path)?
    } else {
        Default::default()
    };
    let total = samples.len();
    let todo: Vec<_> = samples
        .into_iter()
        .filter(|s| !done_ids.contains(&s.id))
        .collect();
    let skipped = total - todo.len();

    let explainer = Explainer::load(settings)?;
    super::write_config_used(&a.out, &explainer.settings.config)?;
    let mut results = ResultsWriter::open(&results_path)?;
    if let Some(t) = &results.writer().repair().truncated {
        eprintln!(
            "run: dropped a torn last line ({} bytes) of {}",
            t.bytes,
            results_path.display()
        );
    }
    let mut errors = ErrorsWriter::open(&errors_path)?;
    let label = if shard == Shard::ALL {
        "run".to_string()
    } else {
        format!("run {}/{}", shard.index, shard.count)
    };
    if skipped > 0 {
        eprintln!(
            "{label}: {skipped} of {total} samples already in {} (resume)",
            results_path.display()
        );
    }
    let mut progress = Progress::new(&label, todo.len(), a.log_every);
    let (mut done, mut failed) = (0, 0);
    let mut warned_nan = false;
    let in_flight = match a.samples_in_flight {
        Some(n) => n as usize,
        None => explainer.settings.engine.batch.samples_in_flight_resolved(),
    };
    let (mut packed_calls, mut most_packed) = (0, 0);
    for group in todo.chunks(in_flight) {
        let inputs: Vec<(SampleInput, u64)> = group
            .iter()
            .map(|s| {
                (
                    SampleInput::from(s),
                    sample_seed(explainer.settings.seed, &s.id),
                )
            })
            .collect();
        let outcome = explainer.explain_group(&inputs)?;
        if let Some(p) = outcome.packing {
            packed_calls += p.dispatches;
            most_packed = most_packed.max(p.max_samples_per_dispatch);
        }
        for (s, outcome) in group.iter().zip(outcome.results) {
            match outcome {
                Ok(record) => {
                    if !warned_nan && crate::explainer::has_undefined_stderr(&record) {
                        warned_nan = true;
                        progress.println(crate::explainer::UNDEFINED_STDERR_WARNING);
                    }
                    results.append(&record)?;
                    done += 1;
                    progress.sample(record.evaluations, true);
                }
                Err(e) => {
                    let msg = one_line(&e);
                    errors.append(&s.id, &msg)?;
                    failed += 1;
                    progress.println(&format!("{label}: sample {} failed: {msg}", s.id));
                    progress.sample(0, false);
                }
            }
        }
    }
    progress.finish();
    if packed_calls > 0 {
        eprintln!(
            "{label}: samples_in_flight = {in_flight}: up to {most_packed} samples per packed engine call ({packed_calls} calls)"
        );
    }
    eprintln!(
        "{label}: {done} explained, {failed} failed, {skipped} skipped -> {}{}",
        results_path.display(),
        if failed > 0 {
            format!(" (errors in {})", errors_path.display())
        } else {
            String::new()
        }
    );
    Ok(RunSummary {
        total,
        skipped,
        done,
        failed,
        results: results_path,
        errors: errors_path,
    })
}
