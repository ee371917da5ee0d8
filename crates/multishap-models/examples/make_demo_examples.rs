//! Writes the example scenes under `examples/shapes/` (committed): images, one exact mask
//! per question target, and a manifest for `multishap run` / `multishap eval`, including
//! `pointing_mask` / `pointing_word` for the pointing game.
//!
//! Re-run: `cargo run -p multishap-models --example make_demo_examples -- examples/shapes`
use multishap_models::demo::{caption, generate_question, DemoRng, Scene, SceneConfig};
use std::fs;
use std::io::Write;
use std::path::PathBuf;

/// Stream far from the trainer's (training and held-out) streams.
const EXAMPLE_SEED: u64 = 7_000_001;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "examples/shapes".into()),
    );
    let count: usize = std::env::args()
        .nth(2)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(12);
    fs::create_dir_all(&out)?;
    let mut manifest = fs::File::create(out.join("manifest.jsonl"))?;
    let mut captions = fs::File::create(out.join("captions.jsonl"))?;
    let cfg = SceneConfig::default();
    for k in 0..count {
        let mut rng = DemoRng::for_stream(EXAMPLE_SEED, k as u64);
        let scene = Scene::generate(&mut rng, &cfg);
        let rendered = scene.render();
        let name = format!("scene-{k:02}.png");
        rendered.image.save(out.join(&name))?;
        let q = generate_question(&mut rng, &scene);
        let mut line = serde_json::json!({
            "id": format!("q{k:02}"), "image": name, "text": q.text, "answer": q.answer,
        });
        if let (Some(t), Some(word)) = (q.target, q.key_word.as_ref()) {
            let m = &rendered.masks[t];
            let mask = image::GrayImage::from_fn(m.width, m.height, |x, y| {
                image::Luma([if m.get(x, y) { 255 } else { 0 }])
            });
            let mask_name = format!("scene-{k:02}-mask.png");
            mask.save(out.join(&mask_name))?;
            line["pointing_mask"] = mask_name.into();
            line["pointing_word"] = word.clone().into();
        }
        writeln!(manifest, "{line}")?;
        let c = serde_json::json!({"id": format!("c{k:02}"), "image": name, "text": caption(&mut rng, &scene)});
        writeln!(captions, "{c}")?;
    }
    println!("wrote {count} scenes to {}", out.display());
    Ok(())
}
