//! Where does a pointing-game miss come from? Splits the SII of (patch p, key
//! word w) on the demo ViLT into its two marginal terms,
//! SII(p, w) = A - B with A = E[v(S+p+w) - v(S+w)] (what p adds when the word
//! is there) and B = E[v(S+p) - v(S)] (what p adds without it), S drawn as
//! the SII weights it (size uniform, then a uniform subset: each other player
//! kept with a probability q ~ U(0, 1)). All four values of every patch come
//! from the same contexts. Queries: colour-of / shape-of questions on scenes
//! with two or three shapes, from the pointing bench's validation split; value
//! = ground-truth answer logit. Prints one line per query and the means of A
//! and B over target-shape patches, other-shape patches and the top patches of
//! misses.
//!
//! ```text
//! cargo bench --bench sii_decomposition
//! DECOMP_MODELS=/tmp/candidate DECOMP_QUERIES=32 DECOMP_DRAWS=48 cargo bench --bench sii_decomposition
//! ```
use multishap::core::{Coalition, CoalitionBatch, Game};
use multishap::engine::demo_queries::demo_vqa_query;
use multishap::engine::EngineConfig;
use multishap::models::demo::train::{vqa_example, EVAL_SEED};
use multishap::models::demo::SceneConfig;
use multishap::models::loading::{load, ModelSource};
use rand::{Rng, SeedableRng};

/// The pointing bench's validation scenes (benches/pointing.rs).
const VALIDATION_STREAM: u64 = 0x7A11_D000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    multishap::models::cpu_alloc::keep_freed_memory_for_reuse();
    let root = std::env::var("DECOMP_MODELS")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/models").into());
    let n_q: usize = std::env::var("DECOMP_QUERIES")
        .unwrap_or_else(|_| "16".into())
        .parse()?;
    let draws: usize = std::env::var("DECOMP_DRAWS")
        .unwrap_or_else(|_| "48".into())
        .parse()?;
    let dev = candle_core::Device::Cpu;
    let vilt = load(
        &ModelSource::Local(format!("{root}/demo-vilt-vqa").into()),
        &dev,
        candle_core::DType::F32,
    )?;
    let cfg = EngineConfig::default();
    let scfg = SceneConfig {
        image_size: 96,
        ..SceneConfig::default()
    };
    let mut k = 0u64;
    let mut done = 0;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let (mut hits, mut tot) = (0, 0);
    let mut agg = [0.0f64; 6]; // mean A,B on target; A,B on distractor; A,B of misses' top
    let mut cnt = [0usize; 3];
    while done < n_q {
        let ex = vqa_example(EVAL_SEED ^ VALIDATION_STREAM, k, &scfg);
        k += 1;
        if !ex.question.kind.is_about_one_shape() || ex.rendered.masks.len() < 2 {
            continue;
        }
        done += 1;
        let query = demo_vqa_query(&vilt, &ex, &cfg)?;
        let (mut game, boxes) = (query.game, query.boxes);
        let Some(wtok) = query.key_word else {
            continue;
        };
        let Some(target) = ex.question.target else {
            continue;
        };
        let m = boxes.len();
        let d = game.players().total();
        let w = m + wtok;
        let mut a = vec![0.0f64; m];
        let mut b = vec![0.0f64; m];
        for _ in 0..draws {
            let q: f64 = rng.random();
            let t: Vec<bool> = (0..d).map(|i| i != w && rng.random_bool(q)).collect();
            let mut batch = CoalitionBatch::new(d);
            for p in 0..m {
                let base: Vec<usize> = (0..d).filter(|&i| t[i] && i != p).collect();
                for (add_p, add_w) in [(false, false), (true, false), (false, true), (true, true)] {
                    let mut mem = base.clone();
                    if add_p {
                        mem.push(p)
                    }
                    if add_w {
                        mem.push(w)
                    }
                    batch.push(&Coalition::from_members(d, mem));
                }
            }
            let v: Vec<f32> = game.evaluate(&batch)?.to_vec1()?;
            for p in 0..m {
                let (s, sp, sw, spw) = (
                    v[4 * p] as f64,
                    v[4 * p + 1] as f64,
                    v[4 * p + 2] as f64,
                    v[4 * p + 3] as f64,
                );
                a[p] += (spw - sw) / draws as f64;
                b[p] += (sp - s) / draws as f64;
            }
        }
        let cover =
            |mask: &multishap::models::demo::scene::ShapeMask, p: usize| boxes[p].coverage(mask);
        let on_t: Vec<bool> = (0..m)
            .map(|p| cover(&ex.rendered.masks[target], p) >= 0.1)
            .collect();
        let on_o: Vec<bool> = (0..m)
            .map(|p| {
                !on_t[p]
                    && ex
                        .rendered
                        .masks
                        .iter()
                        .enumerate()
                        .any(|(j, mk)| j != target && cover(mk, p) >= 0.1)
            })
            .collect();
        let sii: Vec<f64> = (0..m).map(|p| a[p] - b[p]).collect();
        let top = (0..m)
            .max_by(|&i, &j| sii[i].total_cmp(&sii[j]))
            .ok_or("no image players")?;
        tot += 1;
        hits += usize::from(on_t[top]);
        for p in 0..m {
            if on_t[p] {
                agg[0] += a[p];
                agg[1] += b[p];
                cnt[0] += 1;
            }
            if on_o[p] {
                agg[2] += a[p];
                agg[3] += b[p];
                cnt[1] += 1;
            }
        }
        if !on_t[top] {
            agg[4] += a[top];
            agg[5] += b[top];
            cnt[2] += 1;
        }
        let best_t = (0..m)
            .filter(|&p| on_t[p])
            .max_by(|&i, &j| sii[i].total_cmp(&sii[j]));
        println!(
            "{:<32} {} top {:>2} on_t {} on_o {} A {:+.3} B {:+.3} | best on-target {:?}",
            ex.question.text,
            if on_t[top] { "HIT " } else { "MISS" },
            top,
            on_t[top],
            on_o[top],
            a[top],
            b[top],
            best_t.map(|p| (p, format!("A {:+.3} B {:+.3}", a[p], b[p])))
        );
    }
    println!("hit {hits}/{tot}");
    println!(
        "mean on target: A {:+.4} B {:+.4} ({} patches)",
        agg[0] / cnt[0] as f64,
        agg[1] / cnt[0] as f64,
        cnt[0]
    );
    println!(
        "mean on other shapes: A {:+.4} B {:+.4} ({} patches)",
        agg[2] / cnt[1] as f64,
        agg[3] / cnt[1] as f64,
        cnt[1]
    );
    println!(
        "misses' top patch: A {:+.4} B {:+.4} ({})",
        agg[4] / cnt[2].max(1) as f64,
        agg[5] / cnt[2].max(1) as f64,
        cnt[2]
    );
    Ok(())
}
