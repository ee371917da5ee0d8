//! Where does the variance of the shared estimators come from, by context
//! size? Records, for one ViLT VQA sample, the raw values of the
//! shared-stratified design ((m+1)(n+1) toggles of one base coalition) for
//! `STRATA_PER_SIZE` base coalitions of every size 0..=d, so that
//! `scripts/size_strata.py` can split each pair's variance into its
//! between-size and within-size parts and compare size allocations (uniform,
//! proportional to the measured spread) without re-running the model.
//!
//! ```text
//! STRATA_MODEL=target/vilt192 STRATA_IMAGE=examples/shapes/scene-05.png \
//!   STRATA_QUESTION="what color is the circle?" STRATA_OUT=target/strata.json \
//!   cargo bench --bench size_strata
//! ```
//! Output (JSON): `m`, `n`, `d`, `sizes` (base size per draw), `bases`
//! (members per draw) and `values` (per draw, (m+1) x (n+1) row-major: row a =
//! patch a-1 toggled (row 0: none), column b = token b-1 toggled).
use multishap::core::estimators::shared::push_toggle_grid;
use multishap::core::eval::evaluate_to_host;
use multishap::core::sampling::{random_subset, rng_from_seed};
use multishap::core::{CoalitionBatch, Game};
use multishap::engine::vilt::ViltVqaGame;
use multishap::engine::EngineConfig;
use multishap::models::loading::{load, ModelSource};
use rand::seq::SliceRandom;

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.into())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    multishap::models::cpu_alloc::keep_freed_memory_for_reuse();
    let model_dir = env_or(
        "STRATA_MODEL",
        concat!(env!("CARGO_MANIFEST_DIR"), "/models/demo-vilt-vqa"),
    );
    let image_path = env_or(
        "STRATA_IMAGE",
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/shapes/scene-05.png"),
    );
    let question = env_or("STRATA_QUESTION", "what color is the circle?");
    let per_size: usize = env_or("STRATA_PER_SIZE", "2").parse()?;
    let seed: u64 = env_or("STRATA_SEED", "7").parse()?;
    let out = env_or("STRATA_OUT", "target/size_strata.json");
    let chunk: usize = env_or("STRATA_CHUNK_DRAWS", "8").parse()?;

    let dev = candle_core::Device::Cpu;
    let model = load(
        &ModelSource::Local(model_dir.clone().into()),
        &dev,
        candle_core::DType::F32,
    )?;
    let image = image::open(&image_path)?;
    let cfg = EngineConfig::default();
    let mut game = ViltVqaGame::new(&model, &image, &question, &cfg)?;
    let players = game.players();
    let (m, n) = (players.image, players.text);
    let d = m + n;
    eprintln!(
        "{image_path} / {question:?}: m = {m}, n = {n}, d = {d}, prediction {:?}",
        game.prediction()
    );

    let mut rng = rng_from_seed(seed);
    let mut pool: Vec<usize> = (0..d).collect();
    let mut sizes = Vec::with_capacity(per_size * (d + 1));
    for _ in 0..per_size {
        let mut round: Vec<usize> = (0..=d).collect();
        round.shuffle(&mut rng);
        sizes.extend(round);
    }
    let bases: Vec<_> = sizes
        .iter()
        .map(|&s| random_subset(&mut rng, d, &mut pool, s))
        .collect();
    let mut values: Vec<f64> = Vec::with_capacity(bases.len() * (m + 1) * (n + 1));
    let start = std::time::Instant::now();
    for (c, group) in bases.chunks(chunk).enumerate() {
        let mut batch = CoalitionBatch::with_capacity(d, group.len() * (m + 1) * (n + 1));
        for base in group {
            push_toggle_grid(&mut batch, base, m, n);
        }
        values.extend(evaluate_to_host(&mut game, &batch)?);
        let done = (c + 1) * chunk;
        eprintln!(
            "{} / {} draws, {:.0} s",
            done.min(bases.len()),
            bases.len(),
            start.elapsed().as_secs_f64()
        );
    }
    let json = serde_json::json!({
        "model": model_dir,
        "image": image_path,
        "question": question,
        "m": m,
        "n": n,
        "d": d,
        "seed": seed,
        "sizes": sizes,
        "bases": bases.iter().map(|b| b.members().collect::<Vec<_>>()).collect::<Vec<_>>(),
        "values": values,
    });
    std::fs::write(&out, serde_json::to_vec(&json)?)?;
    eprintln!("wrote {out} ({} draws)", bases.len());
    Ok(())
}
