//! Train the shipped demo models (see `multishap_models::demo`).
//!
//! ```text
//! cargo run --release -p multishap-models --example train_demo -- \
//!     [--out models] [--seed 20260601] [--only vilt|clip] [--vilt-steps N] [--clip-steps N] [--batch N] [--vilt-lr X] [--clip-lr X]
//!     [--init-vilt-from-clip DIR] [--vilt-warmup-frac X]
//!     [--vilt-hidden N] [--vilt-intermediate N] [--vilt-layers N] [--vilt-heads N] [--vilt-patch N]
//!     [--vilt-aux X] [--vilt-ground X] [--vilt-aux-layer I] [--vilt-ground-layer I]
//!     [--clip-aux X] [--clip-word-mask-prob X] [--question-weights C,S,E,N] [--word-mask-prob X]
//!     [--key-word-mask-prob X] [--key-word-mask-uniform | --key-word-mask-spread] [--distractor-mask-prob X] [--vilt-content X] [--vilt-sincos-pos X] [--log-every N]
//! ```
//! Defaults reproduce the shipped weights (seed 20260601, batch 32, one thread
//! each): CLIP 6000 steps at lr 3e-3 with the per-patch auxiliary loss
//! (`--clip-aux 1`) and caption-word masking (`--clip-word-mask-prob 0.5`: in
//! half the captions each word becomes id 0 with probability 0.3, as the
//! explainer masks words); ViLT 6500 steps at lr 2e-3 from scratch with the
//! per-patch auxiliary loss (`--vilt-aux 1`) and the grounding loss at weight 3
//! (`--vilt-ground 3`), uniform question families, and masking as the
//! explainer masks words: in 15% of the colour-of / shape-of questions the key
//! word becomes `[MASK]` and the question unanswerable (`--key-word-mask-prob
//! 0.15`, target uniform over the family's answers: `--key-word-mask-uniform`;
//! `--key-word-mask-spread` spreads it over the scene's shapes instead), and in
//! half the questions each template word becomes `[MASK]` with probability 0.3
//! (`--word-mask-prob 0.5`), so that `[MASK]` alone does not signal "unanswerable".
//! `--distractor-mask-prob` (grey other shapes' patches) is off. The auxiliary
//! heads (per-patch shape kind / colour, `--vilt-content`: which colour-kind
//! pairs the scene holds, `--vilt-ground`: is this patch on a shape the question
//! refers to) are training-only and never saved; `--vilt-aux-layer` /
//! `--vilt-ground-layer` put a head on the states after that (0-based) layer
//! instead of the final ones. `--log-every` (default 500)
//! only changes how often held-out accuracy is printed, not the weights.
//! `--init-vilt-from-clip DIR` starts ViLT's patch embedding, position
//! embeddings and encoder layers from a CLIP folder's vision tower.
//!
//! Writes `<out>/demo-vilt-vqa/` and `<out>/demo-clip/` (Hugging Face folders)
//! and prints training time and held-out accuracy / R@1 as JSON lines.

use multishap_models::demo::hf_files::{ClipDemoSpec, ViltDemoSpec};
use multishap_models::demo::train::{
    eval_vilt_twin_by_family, load_vilt_twin, train_clip, train_vilt_from, TrainConfig,
};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Same weights either way; ~25% less wall time (no page-fault churn).
    multishap_models::cpu_alloc::keep_freed_memory_for_reuse();
    let mut out = PathBuf::from("models");
    let mut seed: u64 = 20260601;
    let mut only: Option<String> = None;
    let mut init_from_clip: Option<PathBuf> = None;
    let mut vilt_steps = 6500usize;
    let mut clip_steps = 6000usize;
    let mut batch = 32usize;
    let mut vilt_lr = 2e-3f64;
    let mut clip_lr = 3e-3f64;
    let mut vspec = ViltDemoSpec::default();
    let mut vilt_warmup_frac = 0.03f64;
    let mut vilt_aux = 1.0f64;
    let mut vilt_ground = 3.0f64;
    let mut vilt_aux_layer: Option<usize> = None;
    let mut vilt_ground_layer: Option<usize> = None;
    let mut clip_aux = 1.0f64;
    let mut question_weights = [1.0f64; 4];
    let mut word_mask_prob = 0.5f64;
    let mut clip_word_mask_prob = 0.5f64;
    let mut key_word_mask_prob = 0.15f64;
    let mut distractor_mask_prob = 0.0f64;
    let mut key_word_mask_uniform = true;
    let mut log_every = 500usize;
    let mut content_weight = 0.0f64;
    let mut sincos = 0.0f64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--out" => out = PathBuf::from(val()?),
            "--seed" => seed = val()?.parse()?,
            "--only" => only = Some(val()?),
            "--init-vilt-from-clip" => init_from_clip = Some(PathBuf::from(val()?)),
            "--vilt-steps" => vilt_steps = val()?.parse()?,
            "--clip-steps" => clip_steps = val()?.parse()?,
            "--batch" => batch = val()?.parse()?,
            "--vilt-lr" => vilt_lr = val()?.parse()?,
            "--clip-lr" => clip_lr = val()?.parse()?,
            "--vilt-hidden" => vspec.hidden_size = val()?.parse()?,
            "--vilt-intermediate" => vspec.intermediate_size = val()?.parse()?,
            "--vilt-layers" => vspec.num_hidden_layers = val()?.parse()?,
            "--vilt-heads" => vspec.num_attention_heads = val()?.parse()?,
            "--vilt-patch" => vspec.patch_size = val()?.parse()?,
            "--vilt-warmup-frac" => vilt_warmup_frac = val()?.parse()?,
            "--log-every" => log_every = val()?.parse()?,
            "--eval-vilt" => {
                // Held-out accuracy per question family of a saved ViLT folder.
                let dir = PathBuf::from(val()?);
                let twin = load_vilt_twin(&dir)?;
                let (acc, fam) = eval_vilt_twin_by_family(
                    &twin,
                    &vilt_spec_of(&dir)?,
                    1000,
                    &candle_core::Device::Cpu,
                )?;
                println!(
                    "{{\"dir\":{dir:?},\"heldout_vqa_accuracy\":{acc:.4},\"heldout_colour_shape_exists_count\":{fam:.3?},\"heldout_n\":1000}}"
                );
                return Ok(());
            }
            "--vilt-sincos-pos" => sincos = val()?.parse()?,
            "--vilt-content" => content_weight = val()?.parse()?,
            "--vilt-aux" => vilt_aux = val()?.parse()?,
            "--vilt-ground" => vilt_ground = val()?.parse()?,
            "--vilt-aux-layer" => vilt_aux_layer = Some(val()?.parse()?),
            "--vilt-ground-layer" => vilt_ground_layer = Some(val()?.parse()?),
            "--clip-aux" => clip_aux = val()?.parse()?,
            "--word-mask-prob" => word_mask_prob = val()?.parse()?,
            "--clip-word-mask-prob" => clip_word_mask_prob = val()?.parse()?,
            "--key-word-mask-prob" => key_word_mask_prob = val()?.parse()?,
            "--distractor-mask-prob" => distractor_mask_prob = val()?.parse()?,
            "--key-word-mask-uniform" => key_word_mask_uniform = true,
            "--key-word-mask-spread" => key_word_mask_uniform = false,
            "--question-weights" => {
                let v = val()?;
                let w: Vec<f64> = v.split(',').map(str::parse).collect::<Result<_, _>>()?;
                question_weights = w
                    .try_into()
                    .map_err(|_| format!("--question-weights needs 4 values, got {v}"))?;
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let base = TrainConfig {
        seed,
        steps: 0,
        batch_size: batch,
        lr: 0.0,
        weight_decay: 0.01,
        warmup_frac: 0.03,
        bg_mask_prob: 0.5,
        bg_patch_prob: 0.3,
        log_every,
        eval_samples: 1000,
        aux_weight: 0.0,
        question_weights,
        word_mask_prob: 0.0,
        clip_word_mask_prob: 0.0,
        key_word_mask_prob: 0.0,
        distractor_mask_prob: 0.0,
        key_word_mask_uniform: false,
        content_weight: 0.0,
        sincos_pos_scale: 0.0,
        ground_weight: 0.0,
        aux_layer: None,
        ground_layer: None,
    };
    if only.as_deref() != Some("vilt") {
        let spec = ClipDemoSpec::default();
        let tc = TrainConfig {
            steps: clip_steps,
            lr: clip_lr,
            aux_weight: clip_aux,
            clip_word_mask_prob,
            ..base.clone()
        };
        let dir = out.join("demo-clip");
        let r = train_clip(&spec, &tc, &dir)?;
        println!(
            "{{\"model\":\"demo-clip\",\"dir\":{:?},\"seconds\":{:.1},\"steps\":{},\"batch\":{},\"params\":{},\"final_loss\":{:.4},\"heldout_r1_of_10\":{:.4},\"heldout_images\":{}}}",
            dir, r.seconds, r.steps, batch, r.parameters, r.final_loss, r.heldout_metric, tc.eval_samples
        );
    }
    if only.as_deref() != Some("clip") {
        let spec = vspec;
        if spec.patch_size == 0 || spec.image_size % spec.patch_size != 0 {
            return Err(format!(
                "--vilt-patch {} must divide the image size {}",
                spec.patch_size, spec.image_size
            )
            .into());
        }
        let tc = TrainConfig {
            steps: vilt_steps,
            lr: vilt_lr,
            warmup_frac: vilt_warmup_frac,
            aux_weight: vilt_aux,
            word_mask_prob,
            key_word_mask_prob,
            distractor_mask_prob,
            key_word_mask_uniform,
            content_weight,
            sincos_pos_scale: sincos,
            ground_weight: vilt_ground,
            aux_layer: vilt_aux_layer,
            ground_layer: vilt_ground_layer,
            ..base
        };
        let dir = out.join("demo-vilt-vqa");
        // Optionally start ViLT's image side from a CLIP vision tower (as ViLT starts
        // from a ViT); the shipped model was trained from scratch.
        let r = train_vilt_from(&spec, &tc, &dir, init_from_clip.as_deref())?;
        println!(
            "{{\"model\":\"demo-vilt-vqa\",\"dir\":{:?},\"seconds\":{:.1},\"steps\":{},\"batch\":{},\"params\":{},\"final_loss\":{:.4},\"heldout_vqa_accuracy\":{:.4},\"heldout_colour_shape_exists_count\":{:.3?},\"heldout_n\":{}}}",
            dir, r.seconds, r.steps, batch, r.parameters, r.final_loss, r.heldout_metric, r.heldout_by_family, tc.eval_samples
        );
    }
    Ok(())
}

/// The demo spec of a saved ViLT folder (image and patch size from its config).
fn vilt_spec_of(dir: &std::path::Path) -> Result<ViltDemoSpec, Box<dyn std::error::Error>> {
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json"))?)?;
    let get = |k: &str| {
        cfg[k]
            .as_u64()
            .map(|v| v as usize)
            .ok_or(format!("config has no {k}"))
    };
    Ok(ViltDemoSpec {
        image_size: get("image_size")?,
        patch_size: get("patch_size")?,
        hidden_size: get("hidden_size")?,
        num_hidden_layers: get("num_hidden_layers")?,
        num_attention_heads: get("num_attention_heads")?,
        intermediate_size: get("intermediate_size")?,
        max_position_embeddings: get("max_position_embeddings")?,
    })
}
