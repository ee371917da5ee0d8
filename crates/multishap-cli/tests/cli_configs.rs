//! Every file in configs/ parses (unknown keys are rejected) and names a model.
use multishap_cli::config::{Overrides, RunConfig, Settings};
use std::path::Path;

#[test]
fn every_config_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let cfg = RunConfig::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(
            cfg.model.id.is_some() ^ cfg.model.path.is_some(),
            "{}: one of [model] id / path",
            p.display()
        );
        if let Some(name) = &cfg.estimator.name {
            multishap_cli::config::check_estimator_name(name).unwrap();
        }
        n += 1;
    }
    assert!(n >= 5, "expected the five shipped configs, found {n}");
    let main = RunConfig::load(&dir.join("vilt-b32-vqa.toml")).unwrap();
    assert_eq!(
        main.estimator.name.as_deref(),
        Some(multishap_core::DEFAULT_ESTIMATOR)
    );
    assert_eq!(
        main.model.id.as_deref(),
        Some("dandelin/vilt-b32-finetuned-vqa")
    );
    let paper = RunConfig::load(&dir.join("vilt-b32-vqa-paper.toml")).unwrap();
    assert_eq!(paper.estimator.name.as_deref(), Some("per-pair-stratified"));
    assert_eq!(
        paper.scorer.target,
        multishap_engine::AnswerTarget::GroundTruth
    );
    assert_eq!(
        paper.masking.text.mode,
        multishap_engine::TextMaskMode::Delete
    );
    assert_eq!(
        paper.masking.image.baseline,
        multishap_engine::Baseline::Zero
    );
}

#[test]
fn flags_override_the_config() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let o = Overrides {
        config: Some(dir.join("clip-vit-b32-retrieval.toml")),
        model: Some("some/other@v2".into()),
        estimator: Some("per-pair".into()),
        budget: Some(123),
        seed: Some(9),
        ..Default::default()
    };
    let s = Settings::resolve(&o).unwrap();
    assert_eq!(s.model_label, "some/other@v2");
    assert_eq!(s.estimator, "per-pair");
    assert_eq!(
        s.budget,
        multishap_cli::config::BudgetSpec::Evaluations(123)
    );
    assert_eq!(s.seed, 9);
}
