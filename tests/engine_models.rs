//! Engine games on the tiny fixture models (tests/fixtures/models): values
//! equal direct model calls on hand-built masked inputs, batch size and OOM
//! retries do not change results, and CLIP's grid equals the joint game.
use candle_core::{DType, Device, Tensor};
use multishap::core::{Coalition, CoalitionBatch, DualEncoderGame, Game};
use multishap::engine::{
    BatchConfig, ClipRetrievalGame, EngineConfig, TextMaskMode, ViltItmGame, ViltVqaGame, VqaScore,
};
use multishap::models::loading::{AnyImageProcessor, AnyModel, LoadedModel};
use multishap::models::vilt::ViltInputs;
use rand::{Rng, SeedableRng};

mod common;
use common::{image, load};

fn random_batch(d: usize, n: usize, seed: u64) -> CoalitionBatch {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut b = CoalitionBatch::new(d);
    b.push(&Coalition::empty(d));
    b.push(&Coalition::full(d));
    for _ in 0..n {
        let p: f64 = rng.random_range(0.1..0.9);
        b.push(&Coalition::from_members(
            d,
            (0..d).filter(|_| rng.random_bool(p)),
        ));
    }
    b
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Hand-built masked ViLT input for one coalition: pixel boxes copied or 0,
/// text pieces replaced by [MASK] or deleted; then a direct model call.
fn vilt_direct_inputs(
    model: &LoadedModel,
    img: &multishap::engine::DynamicImage,
    text: &str,
    c: &Coalition,
    mode: TextMaskMode,
    boxes: &[multishap::engine::PatchBox],
) -> (Tensor, Tensor, Tensor, Tensor, Tensor) {
    let AnyImageProcessor::Vilt(proc) = &model.image_processor else {
        panic!("not vilt")
    };
    let (pixels, pmask) = proc.preprocess(img).unwrap();
    let (ch, h, w) = pixels.dims3().unwrap();
    let src: Vec<f32> = pixels.flatten_all().unwrap().to_vec1().unwrap();
    let mut px = vec![0f32; src.len()];
    for (p, b) in boxes.iter().enumerate() {
        if c.contains(p) {
            for k in 0..ch {
                for y in b.y0..b.y1 {
                    for x in b.x0..b.x1 {
                        px[k * h * w + y * w + x] = src[k * h * w + y * w + x];
                    }
                }
            }
        }
    }
    let enc = model.tokenizer.encode(text, 40).unwrap();
    let m = boxes.len();
    let mut ids = Vec::new();
    let mut j = 0;
    for (pos, &id) in enc.ids.iter().enumerate() {
        if enc.special[pos] {
            ids.push(id);
            continue;
        }
        let keep = c.contains(m + j);
        j += 1;
        match (keep, mode) {
            (true, _) => ids.push(id),
            (false, TextMaskMode::Mask) => ids.push(model.tokenizer.mask_token_id().unwrap()),
            (false, TextMaskMode::Delete) => {}
        }
    }
    let l = ids.len();
    let dev = Device::Cpu;
    (
        Tensor::from_vec(ids, (1, l), &dev).unwrap(),
        Tensor::ones((1, l), DType::U32, &dev).unwrap(),
        Tensor::zeros((1, l), DType::U32, &dev).unwrap(),
        Tensor::from_vec(px, (1, ch, h, w), &dev).unwrap(),
        pmask.to_dtype(DType::U32).unwrap().unsqueeze(0).unwrap(),
    )
}

#[test]
fn vilt_vqa_values_equal_direct_calls_in_both_text_modes() {
    let model = load("vilt-vqa-tiny");
    let AnyModel::ViltVqa(vqa) = &model.model else {
        panic!("not vqa")
    };
    let img = image("chelsea.png");
    let q = "how many cats are there?";
    for mode in [TextMaskMode::Mask, TextMaskMode::Delete] {
        let mut cfg = EngineConfig::default();
        cfg.masking.text.mode = mode;
        let mut game = ViltVqaGame::new(&model, &img, q, &cfg).unwrap();
        let players = game.players();
        assert_eq!(players.image, game.patch_boxes().len());
        assert_eq!(players.text, game.tokens().len());
        assert!(!game.tokens().iter().any(|t| t == "[CLS]" || t == "[SEP]"));
        let (label, prob) = game.prediction();
        assert!(!label.is_empty() && prob > 0.0 && prob <= 1.0);
        let target = game.target().0 as usize;
        let batch = random_batch(players.total(), 6, 11);
        let got: Vec<f32> = game.evaluate(&batch).unwrap().to_vec1().unwrap();
        let boxes = game.patch_boxes();
        for (i, c) in batch.iter().enumerate() {
            let (ids, att, tt, px, pm) = vilt_direct_inputs(&model, &img, q, &c, mode, &boxes);
            let inputs = ViltInputs {
                input_ids: &ids,
                attention_mask: &att,
                token_type_ids: &tt,
                pixel_values: &px,
                pixel_mask: &pm,
            };
            let logits: Vec<f32> = vqa
                .forward(&inputs)
                .unwrap()
                .get(0)
                .unwrap()
                .to_vec1()
                .unwrap();
            assert!(
                (got[i] - logits[target]).abs() < 1e-4,
                "{mode:?} row {i}: {} vs {}",
                got[i],
                logits[target]
            );
            if i == 1 {
                // the full coalition is the unmasked input: its top answer is the prediction
                let top = logits
                    .iter()
                    .enumerate()
                    .fold(0, |b, (k, v)| if *v > logits[b] { k } else { b });
                assert_eq!(vqa.id2label(top).unwrap(), label);
            }
        }
    }
}

#[test]
fn vilt_batch_size_and_oom_retries_do_not_change_values() {
    let model = load("vilt-vqa-tiny");
    let img = image("coffee_portrait.png");
    let q = "what is in the cup?";
    let mut results = Vec::new();
    for (max_batch, oom) in [(1, None), (5, None), (64, None), (64, Some(6))] {
        let mut cfg = EngineConfig::default();
        cfg.scorer.vqa = VqaScore::LogOdds;
        cfg.batch = BatchConfig {
            max_batch,
            cache_capacity: 0,
            ..Default::default()
        };
        let mut game = ViltVqaGame::new(&model, &img, q, &cfg).unwrap();
        game.engine_mut().scheduler_mut().simulate_memory_limit(oom);
        let batch = random_batch(game.players().total(), 30, 5);
        results.push(game.evaluate(&batch).unwrap().to_vec1::<f32>().unwrap());
        if oom.is_some() {
            assert!(game.engine().stats().oom_retries > 0);
            assert!(game.engine().scheduler().batch_size() <= 6);
        }
    }
    for r in &results[1..] {
        assert!(
            max_diff(r, &results[0]) <= 1e-5,
            "{}",
            max_diff(r, &results[0])
        );
    }
}

#[test]
fn vilt_ground_truth_and_given_targets() {
    let model = load("vilt-vqa-tiny");
    let img = image("chelsea.png");
    let mut cfg = EngineConfig::default();
    cfg.scorer.target = multishap::engine::AnswerTarget::GroundTruth;
    let g =
        ViltVqaGame::with_ground_truth(&model, &img, "what animal?", Some("cat"), &cfg).unwrap();
    assert_eq!(g.target().1, Some("cat"));
    assert!(ViltVqaGame::new(&model, &img, "what animal?", &cfg).is_err());
    cfg.scorer.target = multishap::engine::AnswerTarget::Given;
    cfg.scorer.answer = Some("not-an-answer".into());
    assert!(ViltVqaGame::new(&model, &img, "what animal?", &cfg).is_err());
}

#[test]
fn vilt_itm_values_equal_direct_calls() {
    let model = load("vilt-itm-tiny");
    let AnyModel::ViltRetrieval(itm) = &model.model else {
        panic!("not itm")
    };
    let img = image("chelsea.png");
    let caption = "a cat on a red blanket";
    let mut game = ViltItmGame::new(&model, &img, caption, &EngineConfig::default()).unwrap();
    let batch = random_batch(game.players().total(), 4, 2);
    let got: Vec<f32> = game.evaluate(&batch).unwrap().to_vec1().unwrap();
    let boxes = game.patch_boxes();
    for (i, c) in batch.iter().enumerate() {
        let (ids, att, tt, px, pm) =
            vilt_direct_inputs(&model, &img, caption, &c, TextMaskMode::Mask, &boxes);
        let inputs = ViltInputs {
            input_ids: &ids,
            attention_mask: &att,
            token_type_ids: &tt,
            pixel_values: &px,
            pixel_mask: &pm,
        };
        let want: f32 = itm
            .forward(&inputs)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()[0];
        assert!(
            (got[i] - want).abs() < 1e-4,
            "row {i}: {} vs {want}",
            got[i]
        );
    }
    assert!((game.full_score().unwrap() - got[1]).abs() < 1e-6);
}

#[test]
fn clip_grid_equals_joint_game_and_direct_calls() {
    let model = load("clip-tiny-a");
    let AnyModel::Clip(clip) = &model.model else {
        panic!("not clip")
    };
    let img = image("franz-kafka.jpg");
    let caption = "a portrait of a man in a suit";
    for mode in [TextMaskMode::Mask, TextMaskMode::Delete] {
        let mut cfg = EngineConfig::default();
        cfg.masking.text.mode = mode;
        cfg.batch.max_batch = 4;
        let mut game = ClipRetrievalGame::new(&model, &img, caption, &cfg).unwrap();
        let p = DualEncoderGame::players(&game);
        assert_eq!(p.image, 49);
        let imgs = random_batch(p.image, 5, 3);
        let txts = random_batch(p.text, 4, 4);
        let grid: Vec<Vec<f32>> = game.evaluate_grid(&imgs, &txts).unwrap().to_vec2().unwrap();
        let unique = |b: &CoalitionBatch| b.iter().collect::<std::collections::HashSet<_>>().len();
        assert_eq!(game.stats.image_rows_encoded, unique(&imgs));
        assert_eq!(game.stats.text_rows_encoded, unique(&txts));
        let mut joint = CoalitionBatch::new(p.total());
        for a in imgs.iter() {
            for b in txts.iter() {
                let members = a.members().chain(b.members().map(|j| p.image + j));
                joint.push(&Coalition::from_members(p.total(), members));
            }
        }
        let mut fresh = ClipRetrievalGame::new(&model, &img, caption, &cfg).unwrap();
        let jv: Vec<f32> = Game::evaluate(&mut fresh, &joint)
            .unwrap()
            .to_vec1()
            .unwrap();
        let flat: Vec<f32> = grid.concat();
        assert!(
            max_diff(&flat, &jv) <= 1e-5,
            "{mode:?}: {}",
            max_diff(&flat, &jv)
        );

        // direct call for a few pairs: hand-masked image (baseline 0) and text
        let AnyImageProcessor::Clip(proc) = &model.image_processor else {
            panic!()
        };
        let pixels = proc.preprocess(&img).unwrap();
        let src: Vec<f32> = pixels.flatten_all().unwrap().to_vec1().unwrap();
        let enc = model.tokenizer.encode(caption, 77).unwrap();
        let boxes = game.patch_boxes();
        for (ai, bi) in [(0usize, 0usize), (1, 1), (2, 3), (4, 5)] {
            let (a, b) = (imgs.get(ai), txts.get(bi));
            let mut px = vec![0f32; src.len()];
            for (q, bx) in boxes.iter().enumerate() {
                if a.contains(q) {
                    for k in 0..3 {
                        for y in bx.y0..bx.y1 {
                            for x in bx.x0..bx.x1 {
                                px[k * 224 * 224 + y * 224 + x] = src[k * 224 * 224 + y * 224 + x];
                            }
                        }
                    }
                }
            }
            let mut ids = Vec::new();
            let mut j = 0;
            for (pos, &id) in enc.ids.iter().enumerate() {
                if enc.special[pos] {
                    ids.push(id);
                } else {
                    let keep = b.contains(j);
                    j += 1;
                    match (keep, mode) {
                        (true, _) => ids.push(id),
                        (false, TextMaskMode::Mask) => ids.push(0),
                        (false, TextMaskMode::Delete) => {}
                    }
                }
            }
            let eos = ids.len() as u32 - 1;
            let l = ids.len();
            let logits = clip
                .forward(
                    &Tensor::from_vec(px, (1, 3, 224, 224), &Device::Cpu).unwrap(),
                    &Tensor::from_vec(ids, (1, l), &Device::Cpu).unwrap(),
                    &Tensor::new(&[eos], &Device::Cpu).unwrap(),
                )
                .unwrap();
            let cos = logits.flatten_all().unwrap().to_vec1::<f32>().unwrap()[0]
                / clip.logit_scale().unwrap();
            assert!(
                (grid[ai][bi] - cos).abs() < 1e-5,
                "{mode:?} ({ai},{bi}): {} vs {cos}",
                grid[ai][bi]
            );
        }
        // the cache serves repeated coalitions without new encoder passes
        let before = game.stats;
        game.evaluate_grid(&imgs, &txts).unwrap();
        assert_eq!(game.stats.image_rows_encoded, before.image_rows_encoded);
        assert_eq!(game.stats.text_rows_encoded, before.text_rows_encoded);
    }
}

/// The two (image, question) samples of the multi-sample tests.
const TWO_QUESTIONS: [(&str, &str); 2] = [
    ("chelsea.png", "how many cats are there?"),
    ("coffee_portrait.png", "what color is the cup?"),
];

/// Each sample's values of `batches[k]` equal a single-sample game's within 1e-5.
fn assert_single_games_agree(
    model: &LoadedModel,
    cfg: &EngineConfig,
    batches: &[CoalitionBatch],
    got: &[Vec<f32>],
) {
    for (k, (im, q)) in TWO_QUESTIONS.iter().enumerate() {
        let mut single = ViltVqaGame::new(model, &image(im), q, cfg).unwrap();
        let want: Vec<f32> = single.evaluate(&batches[k]).unwrap().to_vec1().unwrap();
        assert!(
            max_diff(&got[k], &want) <= 1e-5,
            "sample {k}: {}",
            max_diff(&got[k], &want)
        );
    }
}

#[test]
fn vilt_many_samples_in_one_engine_match_single_games() {
    let model = load("vilt-vqa-tiny");
    let cfg = EngineConfig::default();
    let mut eng = multishap::engine::ViltEngine::for_vqa(&model, &cfg).unwrap();
    let ids: Vec<usize> = TWO_QUESTIONS
        .iter()
        .map(|(im, q)| eng.add_vqa(&model, &image(im), q, None).unwrap())
        .collect();
    let batches: Vec<CoalitionBatch> = ids
        .iter()
        .map(|&i| random_batch(Game::players(&eng.game(i)).total(), 5, 40 + i as u64))
        .collect();
    let reqs: Vec<(usize, &CoalitionBatch)> = ids.iter().copied().zip(batches.iter()).collect();
    let many: Vec<Vec<f32>> = eng
        .evaluate_many(&reqs)
        .unwrap()
        .iter()
        .map(|t| t.to_vec1().unwrap())
        .collect();
    assert_single_games_agree(&model, &cfg, &batches, &many);
}

#[test]
fn vilt_samples_packed_from_threads_match_single_games() {
    use multishap::engine::{Engine, Packer, ViltRows};
    let model = load("vilt-vqa-tiny");
    let cfg = EngineConfig::default();
    let rows = ViltRows::for_model(&model, &cfg).unwrap();
    let packer = Packer::new(Engine::new(rows.clone(), cfg.batch.clone()).unwrap());
    let samples: Vec<_> = TWO_QUESTIONS
        .iter()
        .map(|(im, q)| rows.prepare_input(&model, &image(im), q, None).unwrap())
        .collect();
    let batches: Vec<CoalitionBatch> = samples
        .iter()
        .enumerate()
        .map(|(k, s)| random_batch(s.players().total(), 30, 70 + k as u64))
        .collect();
    let got: Vec<Vec<f32>> = std::thread::scope(|scope| {
        let handles: Vec<_> = packer
            .seats(2)
            .into_iter()
            .zip(samples)
            .zip(&batches)
            .map(|((mut seat, sample), batch)| {
                scope.spawn(move || {
                    seat.enter(sample).unwrap();
                    seat.evaluate(batch).unwrap().to_vec1::<f32>().unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(packer.stats().max_samples_per_dispatch, 2);
    assert_single_games_agree(&model, &cfg, &batches, &got);
}
