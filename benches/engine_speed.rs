//! Engine speed benchmarks (random weights at the real CLIP-B/32 and
//! ViLT-B/32 sizes; speed does not depend on weight values). They are
//! `#[ignore]`d tests in a bench target, so `cargo test --workspace` never
//! builds or runs them. Run:
//!
//! ```text
//! cargo test --release --bench engine_speed -- --ignored --nocapture --test-threads 1
//! MULTISHAP_BENCH_BATCHES=1,8,32,64 (default) selects the batch sweep,
//! MULTISHAP_BENCH_MODELS=clip_image,clip_text,vilt_vqa the models,
//! MULTISHAP_BENCH_EVALS=192 / MULTISHAP_BENCH_ENGINE_BATCHES=64,1 the
//! end-to-end sample size and engine batch sizes.
//! ```
//! PyTorch side: `scripts/bench_torch.py` (same shapes, same thread count).
//! Output: one JSON object per line (prefix `BENCH `).
use candle_core::{DType, Device, Tensor};
use multishap::core::{Coalition, CoalitionBatch, DualEncoderGame, Game};
use multishap::engine::bench_support::{random_clip_b32, random_vilt_b32_vqa, uniform_host};
use multishap::engine::speed::{time_forward, SpeedModel, Tower};
use multishap::engine::{
    BatchConfig, ClipRetrievalGame, EngineConfig, ViltHead, ViltRows, ViltVqaGame,
};
use multishap::models::tokenizer::Encoding;
use rand::{Rng, SeedableRng};
use std::collections::HashSet;
use std::time::Instant;

const CLIP_TEXT_LEN: usize = 12;
const VILT_TEXT_LEN: usize = 12;

fn batches() -> Vec<usize> {
    std::env::var("MULTISHAP_BENCH_BATCHES")
        .unwrap_or_else(|_| "1,8,32,64".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// Keep freed memory for reuse, as the `multishap` binary does
/// (`MULTISHAP_DEFAULT_MALLOC=1` measures glibc's defaults); prints which.
fn tune_allocator() {
    let t = multishap::models::cpu_alloc::keep_freed_memory_for_reuse();
    println!("allocator: {t:?}");
}

fn threads() -> usize {
    candle_core::utils::get_num_threads()
}

fn report(model: &str, batch: usize, secs: f64) {
    println!(
        "BENCH {{\"framework\": \"candle\", \"threads\": {}, \"model\": \"{model}\", \"batch\": {batch}, \"seconds_per_batch\": {secs:.6}, \"evals_per_s\": {:.4}}}",
        threads(),
        batch as f64 / secs
    );
}

/// Forward throughput through [`multishap::engine::speed`], the code behind
/// `multishap speed` (which also runs on CUDA, in f16 / bf16, and checks parity).
#[test]
#[ignore]
fn forward_throughput() {
    tune_allocator();
    let dev = Device::Cpu;
    let towers: Vec<Tower> = std::env::var("MULTISHAP_BENCH_MODELS")
        .unwrap_or_else(|_| "clip_image,clip_text,vilt_vqa".into())
        .split(',')
        .map(|t| Tower::parse(t).unwrap())
        .collect();
    let clip = SpeedModel::random_clip_b32(0, &dev, DType::F32).unwrap();
    let vilt = SpeedModel::random_vilt_b32_vqa(0, &dev, DType::F32).unwrap();
    for tower in towers {
        let model = if tower == Tower::ViltVqa {
            &vilt
        } else {
            &clip
        };
        let text_len = if tower == Tower::ViltVqa {
            VILT_TEXT_LEN
        } else {
            CLIP_TEXT_LEN
        };
        for b in batches() {
            let inputs = model.inputs(tower, b, text_len, 1).unwrap();
            let secs = time_forward(&dev, 3, 3.0, || model.forward(tower, &inputs)).unwrap();
            report(tower.name(), b, secs);
        }
    }
}

/// The reference procedure's coalitions: for every (patch i, token j) pair
/// and every size s = 0..d-2 one random context T of size s from N \ {i, j},
/// evaluated at T, T+i, T+j, T+i+j (4 (d-1) m n evaluations).
fn per_pair_design(m: usize, n: usize, seed: u64, pairs: Option<usize>) -> CoalitionBatch {
    let d = m + n;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut out = CoalitionBatch::new(d);
    let mut all: Vec<(usize, usize)> = (0..m)
        .flat_map(|i| (0..n).map(move |j| (i, j + m)))
        .collect();
    if let Some(k) = pairs {
        // a random subset of pairs (for timing)
        for a in 0..all.len() {
            let b = rng.random_range(a..all.len());
            all.swap(a, b);
        }
        all.truncate(k);
    }
    for (i, j) in all {
        let rest: Vec<usize> = (0..d).filter(|&p| p != i && p != j).collect();
        for s in 0..=d - 2 {
            let mut r = rest.clone();
            for a in 0..s {
                let b = rng.random_range(a..r.len());
                r.swap(a, b);
            }
            let t = Coalition::from_members(d, r[..s].iter().copied());
            out.push(&t);
            out.push(&t.with(i, true));
            out.push(&t.with(j, true));
            out.push(&t.with(i, true).with(j, true));
        }
    }
    out
}

fn unique(b: &CoalitionBatch) -> usize {
    (0..b.len())
        .map(|i| b.words(i))
        .collect::<HashSet<_>>()
        .len()
}

fn vilt_encoding(n: usize) -> Encoding {
    let mut ids = vec![101];
    ids.extend((0..n).map(|k| 2000 + k as u32));
    ids.push(102);
    let l = ids.len();
    let mut special = vec![false; l];
    special[0] = true;
    special[l - 1] = true;
    Encoding {
        tokens: ids.iter().map(|i| format!("t{i}")).collect(),
        ids,
        special,
        type_ids: vec![0; l],
    }
}

/// Seconds per explained sample, ViLT VQA (144 patches x 10 tokens) with the
/// reference's per-pair design: counts the design's evaluations and unique
/// coalitions exactly, times the engine on a sample of it, extrapolates.
#[test]
#[ignore]
fn vilt_explain_cost() {
    tune_allocator();
    let dev = Device::Cpu;
    let vilt = random_vilt_b32_vqa(0, &dev, DType::F32).unwrap();
    let n_tokens = VILT_TEXT_LEN - 2;
    let (m, n) = (144, n_tokens);
    let full = per_pair_design(m, n, 7, None);
    let (total, uniq) = (full.len(), unique(&full));
    drop(full);
    println!("BENCH {{\"what\": \"vilt_design\", \"m\": {m}, \"n\": {n}, \"evaluations\": {total}, \"unique\": {uniq}}}");
    let sample = per_pair_design(m, n, 8, Some(1));
    let k = std::env::var("MULTISHAP_BENCH_EVALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(192);
    let mut sub = CoalitionBatch::new(m + n);
    for i in 0..k.min(sample.len()) {
        sub.push(&sample.get(i));
    }
    let engine_batches: Vec<usize> = std::env::var("MULTISHAP_BENCH_ENGINE_BATCHES")
        .unwrap_or_else(|_| "64,1".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    for max_batch in engine_batches {
        let cfg = EngineConfig {
            batch: BatchConfig {
                max_batch,
                cache_capacity: 0,
                // measure exactly the batch asked for, not the CPU cap
                cpu_memory_budget_mib: usize::MAX,
                ..Default::default()
            },
            ..Default::default()
        };
        let rows = ViltRows::new(ViltHead::Vqa(&vilt), &dev, &cfg);
        let pixels = uniform_host(&[3, 384, 384], 5).unwrap();
        let pm = Tensor::ones((384, 384), DType::U32, &dev).unwrap();
        let s = rows
            .prepare(&pixels, &pm, &vilt_encoding(n_tokens), Some(103), 0)
            .unwrap();
        let mut game = ViltVqaGame::from_sample(rows, s, &cfg).unwrap();
        game.evaluate(&CoalitionBatch::from_iter([Coalition::full(m + n)]))
            .unwrap(); // warm-up
        let t = Instant::now();
        game.evaluate(&sub).unwrap();
        let secs = t.elapsed().as_secs_f64();
        let per = secs / sub.len() as f64;
        println!(
            "BENCH {{\"framework\": \"candle\", \"threads\": {}, \"what\": \"vilt_engine\", \"max_batch\": {max_batch}, \"evals\": {}, \"seconds\": {secs:.3}, \"seconds_per_eval\": {per:.5}, \"extrapolated_seconds_per_sample\": {:.1}}}",
            threads(),
            sub.len(),
            per * uniq as f64
        );
    }
}

/// CLIP retrieval (49 patches x 10 tokens), the same per-pair design through
/// the dual-encoder path: each joint coalition needs its image part and its
/// text part encoded; unique parts are counted exactly over the whole design.
#[test]
#[ignore]
fn clip_explain_cost() {
    tune_allocator();
    let dev = Device::Cpu;
    let clip = random_clip_b32(0, &dev, DType::F32).unwrap();
    let n = CLIP_TEXT_LEN - 2;
    let m = 49;
    let full = per_pair_design(m, n, 7, None);
    let imgs = full.slice_players(0..m);
    let txts = full.slice_players(m..m + n);
    let (total, ui, ut) = (full.len(), unique(&imgs), unique(&txts));
    println!("BENCH {{\"what\": \"clip_design\", \"m\": {m}, \"n\": {n}, \"evaluations\": {total}, \"unique_image_parts\": {ui}, \"unique_text_parts\": {ut}}}");
    let mut ids = vec![49406u32];
    ids.extend((0..n).map(|k| 1000 + k as u32));
    ids.push(49407);
    let l = ids.len();
    let mut special = vec![false; l];
    special[0] = true;
    special[l - 1] = true;
    let enc = Encoding {
        tokens: ids.iter().map(|i| format!("t{i}")).collect(),
        ids,
        special,
        type_ids: vec![0; l],
    };
    let cfg = EngineConfig::default();
    let mut game = ClipRetrievalGame::from_parts(
        &clip,
        &dev,
        &uniform_host(&[3, 224, 224], 6).unwrap(),
        &enc,
        49407,
        49407,
        &cfg,
    )
    .unwrap();
    // time image and text encoders at the engine's batch size on the design's first parts
    let take = |b: &CoalitionBatch, k: usize| -> CoalitionBatch {
        let mut out = CoalitionBatch::new(b.num_players());
        let mut seen = HashSet::new();
        for i in 0..b.len() {
            if seen.insert(b.words(i).to_vec()) {
                out.push(&b.get(i));
            }
            if out.len() == k {
                break;
            }
        }
        out
    };
    let ib = take(&imgs, 128);
    let tb = take(&txts, 128);
    let one_t = CoalitionBatch::from_iter([Coalition::full(n)]);
    let one_i = CoalitionBatch::from_iter([Coalition::full(m)]);
    game.evaluate_grid(&one_i, &one_t).unwrap(); // warm-up, caches the full coalitions
    let t = Instant::now();
    game.evaluate_grid(&ib, &one_t).unwrap();
    let per_img = t.elapsed().as_secs_f64() / ib.len() as f64;
    let t = Instant::now();
    game.evaluate_grid(&one_i, &tb).unwrap();
    let per_txt = t.elapsed().as_secs_f64() / tb.len() as f64;
    println!(
        "BENCH {{\"framework\": \"candle\", \"threads\": {}, \"what\": \"clip_engine\", \"image_evals\": {}, \"seconds_per_image_encode\": {per_img:.5}, \"text_evals\": {}, \"seconds_per_text_encode\": {per_txt:.5}, \"extrapolated_seconds_per_sample\": {:.1}}}",
        threads(),
        ib.len(),
        tb.len(),
        per_img * ui as f64 + per_txt * ut as f64
    );
}
