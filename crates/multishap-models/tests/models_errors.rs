//! One clear error per kind of bad input.

mod common;

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use common::*;
use multishap_models::tokenizer::TextTokenizer;
use multishap_models::{load, ModelError, ModelSource};

fn load_dir(p: &std::path::Path) -> Result<multishap_models::LoadedModel, ModelError> {
    load(
        &ModelSource::Local(p.to_path_buf()),
        &Device::Cpu,
        DType::F32,
    )
}

#[test]
fn unknown_model_type() {
    let d = tempfile::tempdir().unwrap();
    copy_dir(&checkpoint("clip-tiny-b"), d.path());
    std::fs::write(
        d.path().join("config.json"),
        r#"{"model_type": "bert", "architectures": ["BertModel"]}"#,
    )
    .unwrap();
    let e = load_dir(d.path()).unwrap_err();
    assert!(
        matches!(e, ModelError::UnknownModelType { ref model_type, .. } if model_type == "bert")
    );
    assert!(e.to_string().contains("bert"), "{e}");
}

#[test]
fn folder_without_weights() {
    let d = tempfile::tempdir().unwrap();
    copy_dir(&checkpoint("vilt-vqa-tiny"), d.path());
    std::fs::remove_file(d.path().join("model.safetensors")).unwrap();
    let e = load_dir(d.path()).unwrap_err();
    assert!(matches!(e, ModelError::NoWeights(_)), "{e:?}");
    assert!(e.to_string().contains("model.safetensors"), "{e}");
}

#[test]
fn folder_without_config_or_missing_folder() {
    let d = tempfile::tempdir().unwrap();
    assert!(matches!(load_dir(d.path()), Err(ModelError::NoConfig(_))));
    assert!(matches!(
        load_dir(&d.path().join("nope")),
        Err(ModelError::NoConfig(_))
    ));
}

/// Rewrites the checkpoint without `drop` and with `reshape` given a wrong shape.
fn tamper(name: &str, drop: &str, reshape: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    copy_dir(&checkpoint(name), d.path());
    let st = d.path().join("model.safetensors");
    let mut ts = candle_core::safetensors::load(&st, &Device::Cpu).unwrap();
    assert!(ts.remove(drop).is_some(), "{drop} not in fixture");
    let t = ts.get(reshape).unwrap();
    let n = t.elem_count();
    let bad = Tensor::zeros(n + 1, DType::F32, &Device::Cpu).unwrap();
    ts.insert(reshape.to_string(), bad);
    ts.insert(
        "something.unexpected".into(),
        Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap(),
    );
    let ts: HashMap<String, Tensor> = ts;
    candle_core::safetensors::save(&ts, &st).unwrap();
    d
}

#[test]
fn clip_missing_class_embedding_and_misshaped_weight_are_one_error() {
    let d = tamper(
        "clip-tiny-b",
        "vision_model.embeddings.class_embedding",
        "logit_scale",
    );
    let e = load_dir(d.path()).unwrap_err();
    let ModelError::WeightMismatch { report, .. } = &e else {
        panic!("expected WeightMismatch, got {e:?}")
    };
    assert!(
        report.contains("missing (1): vision_model.embeddings.class_embedding"),
        "{report}"
    );
    assert!(
        report.contains("logit_scale expected [] found [2]"),
        "{report}"
    );
    assert!(report.contains("something.unexpected"), "{report}");
}

#[test]
fn vilt_missing_head_is_an_error() {
    let d = tamper(
        "vilt-vqa-tiny",
        "classifier.3.weight",
        "vilt.embeddings.cls_token",
    );
    let e = load_dir(d.path()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("classifier.3.weight"), "{msg}");
    assert!(
        msg.contains("vilt.embeddings.cls_token expected [1, 1, 32]"),
        "{msg}"
    );
}

#[test]
fn empty_text_is_an_error() {
    let t = TextTokenizer::from_file(&checkpoint("clip-tiny-a").join("tokenizer.json")).unwrap();
    assert!(matches!(t.encode("", 77), Err(ModelError::EmptyText)));
    assert!(matches!(
        t.encode("  \n\t ", 77),
        Err(ModelError::EmptyText)
    ));
}

#[test]
fn long_text_is_truncated_keeping_special_tokens() {
    let long = "a photo of a cat sitting on a warm blanket ".repeat(20);
    for (name, max) in [("clip-tiny-a", 77usize), ("vilt-vqa-tiny", 40)] {
        let dir = checkpoint(name);
        let t = TextTokenizer::from_file(&dir.join("tokenizer.json")).unwrap();
        let full = t.encode(&long, 10_000).unwrap();
        assert!(full.ids.len() > max);
        let e = t.encode(&long, max).unwrap();
        assert_eq!(e.ids.len(), max, "{name}");
        assert!(e.special[0] && e.special[max - 1], "{name}: specials kept");
        assert_eq!(e.ids[..max - 1], full.ids[..max - 1], "{name}: prefix kept");
        assert_eq!(
            e.ids[max - 1],
            *full.ids.last().unwrap(),
            "{name}: end token kept"
        );
    }
}

#[test]
fn vocab_txt_tokenizer_equals_tokenizer_json() {
    // The vocab.txt-only fixture and a tokenizer.json built by transformers from the
    // same vocabulary must tokenise alike (special tokens and [MASK] included).
    let v = TextTokenizer::bert_from_vocab(&checkpoint("vilt-vqa-vocab-only").join("vocab.txt"))
        .unwrap();
    assert_eq!(v.mask_token_id(), Some(4));
    assert_eq!(v.pad_token_id(), 0);
    let e = v.encode("Is the CAT [MASK] asleep?", 40).unwrap();
    assert_eq!(e.tokens.first().map(String::as_str), Some("[CLS]"));
    assert_eq!(e.tokens.last().map(String::as_str), Some("[SEP]"));
    assert!(e.tokens.contains(&"[MASK]".to_string()), "{:?}", e.tokens);
    assert!(e.type_ids.iter().all(|&t| t == 0));
    assert!(TextTokenizer::bert_from_vocab(&checkpoint("clip-tiny-a").join("vocab.txt")).is_err());
}

#[test]
fn oversized_ids_are_rejected_by_the_model() {
    let m = load_dir(&checkpoint("clip-tiny-b")).unwrap();
    let multishap_models::AnyModel::Clip(clip) = &m.model else {
        panic!()
    };
    let ids = Tensor::zeros((1, 30), DType::U32, &Device::Cpu).unwrap();
    let eos = Tensor::new(&[29u32], &Device::Cpu).unwrap();
    let e = clip.get_text_features(&ids, &eos).unwrap_err();
    assert!(e.to_string().contains("longer than"), "{e}");
}
