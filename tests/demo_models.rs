//! The demo models shipped in `models/` load through `loading::load` like any
//! Hugging Face folder and reach their accuracy on held-out generated data
//! (scenes drawn with a seed the trainer never used).

use candle_core::{DType, Device, Tensor, D};
use multishap::models::clip::ClipModel;
use multishap::models::demo::train::load_vilt_twin;
use multishap::models::demo::train::{retrieval_groups, vqa_example, EVAL_SEED};
use multishap::models::demo::SceneConfig;
use multishap::models::loading::{load, AnyImageProcessor, AnyModel, LoadedModel, ModelSource};
use multishap::models::preprocess::vilt_pad_batch;
use multishap::models::vilt::ViltInputs;
use std::path::{Path, PathBuf};

/// Offset keeping these samples apart from the trainer's own held-out evaluation.
const TEST_STREAM: u64 = 0x7E57;

fn model_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name)
}

fn image_size(dir: &Path) -> u32 {
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let v = if cfg["model_type"] == "clip" {
        &cfg["vision_config"]["image_size"]
    } else {
        &cfg["image_size"]
    };
    v.as_u64().unwrap() as u32
}

fn pad(seqs: &[Vec<u32>], pad: u32) -> (Tensor, Tensor) {
    let l = seqs.iter().map(|s| s.len()).max().unwrap();
    let ids: Vec<u32> = seqs
        .iter()
        .flat_map(|s| (0..l).map(move |k| *s.get(k).unwrap_or(&pad)))
        .collect();
    let mask: Vec<u32> = seqs
        .iter()
        .flat_map(|s| (0..l).map(move |k| u32::from(k < s.len())))
        .collect();
    (
        Tensor::from_vec(ids, (seqs.len(), l), &Device::Cpu).unwrap(),
        Tensor::from_vec(mask, (seqs.len(), l), &Device::Cpu).unwrap(),
    )
}

struct VqaBatch {
    ids: Tensor,
    mask: Tensor,
    types: Tensor,
    pixels: Tensor,
    pixel_mask: Tensor,
    answers: Vec<String>,
}

impl VqaBatch {
    fn inputs(&self) -> ViltInputs<'_> {
        ViltInputs {
            input_ids: &self.ids,
            attention_mask: &self.mask,
            token_type_ids: &self.types,
            pixel_values: &self.pixels,
            pixel_mask: &self.pixel_mask,
        }
    }
}

fn vqa_batch(m: &LoadedModel, size: u32, n: usize) -> VqaBatch {
    let AnyImageProcessor::Vilt(proc) = &m.image_processor else {
        panic!("not a ViLT processor")
    };
    let cfg = SceneConfig {
        image_size: size,
        ..SceneConfig::default()
    };
    let mut seqs = Vec::new();
    let mut items = Vec::new();
    let mut answers = Vec::new();
    for k in 0..n {
        let ex = vqa_example(EVAL_SEED ^ TEST_STREAM, k as u64, &cfg);
        items.push(proc.preprocess(&ex.rendered.image.clone().into()).unwrap());
        seqs.push(
            m.tokenizer
                .encode(&ex.question.text, m.max_text_len())
                .unwrap()
                .ids,
        );
        answers.push(ex.question.answer.clone());
    }
    let (ids, mask) = pad(&seqs, m.tokenizer.pad_token_id());
    let types = ids.zeros_like().unwrap();
    let (pixels, pixel_mask) = vilt_pad_batch(&items).unwrap();
    VqaBatch {
        ids,
        mask,
        types,
        pixels,
        pixel_mask,
        answers,
    }
}

#[test]
fn shipped_vilt_vqa_answers_heldout_questions() {
    let dir = model_dir("demo-vilt-vqa");
    let m =
        load(&ModelSource::Local(dir.clone()), &Device::Cpu, DType::F32).expect("demo ViLT loads");
    let AnyModel::ViltVqa(model) = &m.model else {
        panic!("demo-vilt-vqa is not a ViLT VQA model")
    };
    let b = vqa_batch(&m, image_size(&dir), 60);
    let inputs = b.inputs();
    let pred = model
        .forward(&inputs)
        .unwrap()
        .argmax(D::Minus1)
        .unwrap()
        .to_vec1::<u32>()
        .unwrap();
    let correct = pred
        .iter()
        .zip(&b.answers)
        .filter(|(p, a)| model.id2label(**p as usize) == Some(a.as_str()))
        .count();
    let acc = correct as f64 / b.answers.len() as f64;
    eprintln!(
        "demo-vilt-vqa held-out accuracy {acc:.3} on {} questions",
        b.answers.len()
    );
    // The shipped model measures 0.946 on the trainer's 1000 held-out
    // questions (target 0.9; weakest family "how many shapes?", 0.929) and
    // 0.917 on these 60 (benches/RESULTS.md, demo section). 60
    // questions are too few to test 0.9 itself (one answer = 1.7 points): this
    // guards the level against regressions (an earlier model's 0.817 fails).
    assert!(acc >= 0.85, "demo ViLT accuracy {acc}");
}

#[test]
fn training_twin_matches_the_inference_vilt() {
    let dir = model_dir("demo-vilt-vqa");
    let m = load(&ModelSource::Local(dir.clone()), &Device::Cpu, DType::F32).unwrap();
    let AnyModel::ViltVqa(model) = &m.model else {
        panic!("not ViLT VQA")
    };
    let b = vqa_batch(&m, image_size(&dir), 8);
    let inputs = b.inputs();
    let a = model.forward(&inputs).unwrap();
    let twin = load_vilt_twin(&dir).unwrap();
    let t = twin.forward(&b.ids, &b.mask, &b.types, &b.pixels).unwrap();
    let diff = (a - t)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(diff < 1e-3, "twin and inference ViLT differ by {diff}");
}

#[test]
fn shipped_clip_retrieves_heldout_captions() {
    let dir = model_dir("demo-clip");
    let m =
        load(&ModelSource::Local(dir.clone()), &Device::Cpu, DType::F32).expect("demo CLIP loads");
    let AnyModel::Clip(model) = &m.model else {
        panic!("demo-clip is not a CLIP model")
    };
    let AnyImageProcessor::Clip(proc) = &m.image_processor else {
        panic!("not a CLIP processor")
    };
    let cfg = SceneConfig {
        image_size: image_size(&dir),
        ..SceneConfig::default()
    };
    let eos_id = m
        .tokenizer
        .eos_token_id()
        .expect("CLIP tokenizer has <|endoftext|>");
    let (mut hits, mut total) = (0usize, 0usize);
    for group in retrieval_groups(EVAL_SEED ^ TEST_STREAM, 10, 10, &cfg) {
        let pixels: Vec<Tensor> = group
            .iter()
            .map(|g| proc.preprocess(&g.rendered.image.clone().into()).unwrap())
            .collect();
        let pixels = Tensor::stack(&pixels, 0).unwrap();
        let seqs: Vec<Vec<u32>> = group
            .iter()
            .map(|g| {
                m.tokenizer
                    .encode(&g.caption, m.max_text_len())
                    .unwrap()
                    .ids
            })
            .collect();
        let eos: Vec<u32> = seqs
            .iter()
            .map(|s| s.iter().position(|&t| t == eos_id).unwrap() as u32)
            .collect();
        let (ids, _) = pad(&seqs, m.tokenizer.pad_token_id());
        let eos = Tensor::from_vec(eos, group.len(), &Device::Cpu).unwrap();
        let best = retrieval_argmax(model, &pixels, &ids, &eos);
        for (i, b) in best.iter().enumerate() {
            hits += usize::from(*b as usize == i);
            total += 1;
        }
    }
    let r1 = hits as f64 / total as f64;
    eprintln!("demo-clip held-out caption R@1 among 10: {r1:.3} over {total} images");
    // Target 0.9; the shipped model measures 0.994 on the trainer's 1000 held-out
    // images and 0.990 on these 100 (see benches/RESULTS.md): a regression guard
    // (the previous model's 0.960 fails).
    assert!(r1 >= 0.97, "demo CLIP R@1 {r1}");
}

fn retrieval_argmax(model: &ClipModel, pixels: &Tensor, ids: &Tensor, eos: &Tensor) -> Vec<u32> {
    let logits = model.forward(pixels, ids, eos).unwrap();
    logits.argmax(D::Minus1).unwrap().to_vec1::<u32>().unwrap()
}

/// Pointing game on the shipped ViLT (the bench's question kinds and rule: the
/// top-SII patch of the key word must have >= 10% of its pixels on the target
/// shape), on held-out scenes of this test's own stream, at a small budget so
/// that it runs in CI.
#[test]
fn shipped_vilt_points_at_the_shape_a_question_names() {
    use multishap::core::{estimator_by_name, Game};
    use multishap::engine::demo_queries::demo_vqa_query;
    use multishap::engine::EngineConfig;
    use multishap::models::demo::pointing::pointing_game;

    let dir = model_dir("demo-vilt-vqa");
    let model = load(&ModelSource::Local(dir.clone()), &Device::Cpu, DType::F32).unwrap();
    let scfg = SceneConfig {
        image_size: image_size(&dir),
        ..SceneConfig::default()
    };
    let cfg = EngineConfig::default();
    let est = estimator_by_name("shared-stratified").unwrap();
    let (mut hits, mut queries, mut k) = (0, 0, 0u64);
    while queries < 24 {
        let ex = vqa_example(EVAL_SEED ^ TEST_STREAM, k, &scfg);
        k += 1;
        if !ex.question.kind.is_about_one_shape() {
            continue;
        }
        let mut q = demo_vqa_query(&model, &ex, &cfg).unwrap();
        let word = q.key_word.expect("the key word is one word piece");
        let n = q.game.players().text;
        let e = est.approximate(&mut q.game, 512, k).unwrap();
        let target = ex.question.target.expect("a question about one shape");
        let o = pointing_game(&ex.rendered.masks[target], &q.boxes, &e.sii, n, word, 0.1).unwrap();
        hits += usize::from(o.hit);
        queries += 1;
    }
    let rate = hits as f64 / queries as f64;
    // The shipped model: 22 of 24 (0.917); a random patch hits ~0.18. A
    // regression guard (>= 20 of 24): the previous shipped model, trained
    // without key-word masking, scores 16 of 24 (0.667) and fails it.
    assert!(rate >= 0.8, "pointing hit rate {rate} ({hits}/{queries})");
}
