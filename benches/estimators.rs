//! Accuracy benchmark of the SII estimators (`cargo bench --bench estimators`).
//!
//! Games: random non-linear MLP games at d = 15 (12 + 3) and d = 20 (16 + 4),
//! solved exactly by enumeration, and sparse Moebius games at d = 57 (49 + 8)
//! and d = 152 (144 + 8) with closed-form SII. For every estimator and budget
//! (1k, 4k, 16k, 64k evaluations) it prints MSE against the exact cross-modal
//! SII, Precision@10 of the top pairs by |SII|, Spearman correlation and wall
//! time, averaged over seeds, as a markdown table. It also writes the game
//! tables (.npy), the Moebius terms and the exact values to
//! `target/bench-games/` for `scripts/shapiq_compare.py`.
//!
//! Environment: MULTISHAP_BENCH_SEEDS (default 3), MULTISHAP_BENCH_BUDGETS
//! (comma list, default 1000,4000,16000,64000), MULTISHAP_BENCH_GAMES (comma
//! list of d15,d20,d57,d152), MULTISHAP_BENCH_ESTIMATORS (comma list).
use multishap_core::exact::ExactGame;
use multishap_core::npy::write_f64_vector;
use multishap_core::ranking::{precision_at_k, spearman};
use multishap_core::synthetic::RandomMlpGame;
use multishap_core::{estimator_by_name, Game, MoebiusGame, Players};
use std::fmt::Write as _;
use std::path::PathBuf;

struct BenchGame {
    name: String,
    game: Box<dyn Game>,
    truth: Vec<f64>,
}

fn env_list(key: &str, default: &str) -> Vec<String> {
    std::env::var(key)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The workspace root (this file is built from the root package and from
/// multishap-core, whose manifest directories differ).
fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml")).is_ok_and(|t| t.contains("[workspace]"))
        })
        .map(PathBuf::from)
        .unwrap_or(manifest)
}

fn main() {
    let out_dir = match std::env::var("MULTISHAP_BENCH_OUT") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => workspace_root().join("target/bench-games"),
    };
    std::fs::create_dir_all(&out_dir).expect("create output dir");
    let seeds: u64 = std::env::var("MULTISHAP_BENCH_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let budgets: Vec<usize> = env_list("MULTISHAP_BENCH_BUDGETS", "1000,4000,16000,64000")
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let games_wanted = env_list("MULTISHAP_BENCH_GAMES", "d15,d20,d57,d152");
    let estimators = env_list(
        "MULTISHAP_BENCH_ESTIMATORS",
        "shared-stratified,regression-mc,regression,shared,per-pair,per-pair-stratified,permutation",
    );

    let mut games = Vec::new();
    for (key, m, n) in [("d15", 12usize, 3usize), ("d20", 16, 4)] {
        if !games_wanted.iter().any(|g| g == key) {
            continue;
        }
        let players = Players::new(m, n);
        let mut mlp = RandomMlpGame::new(players, 24, 2024);
        let t = std::time::Instant::now();
        let exact = ExactGame::from_game(&mut mlp).expect("enumerate");
        let truth = exact.sii_cross();
        eprintln!("{key}: exact in {:.1}s", t.elapsed().as_secs_f64());
        write_f64_vector(&out_dir.join(format!("{key}_values.npy")), exact.values())
            .expect("write npy");
        write_f64_vector(&out_dir.join(format!("{key}_sii.npy")), &truth).expect("write npy");
        games.push(BenchGame {
            name: format!("{key} MLP (m={m}, n={n})"),
            game: Box::new(mlp),
            truth,
        });
    }
    for (key, m, n) in [("d57", 49usize, 8usize), ("d152", 144, 8)] {
        if !games_wanted.iter().any(|g| g == key) {
            continue;
        }
        let players = Players::new(m, n);
        let d = m + n;
        let g = MoebiusGame::random(players, 2 * d, 2 * d, 6, 7);
        let truth = g.sii_cross();
        // terms as JSON lines: [[members...], coefficient]
        let mut json = String::from("[\n");
        for (k, (t, c)) in g.terms().iter().enumerate() {
            let members: Vec<String> = t.members().map(|p| p.to_string()).collect();
            let _ = writeln!(
                json,
                "[[{}], {c:e}]{}",
                members.join(","),
                if k + 1 < g.terms().len() { "," } else { "" }
            );
        }
        json.push(']');
        std::fs::write(out_dir.join(format!("{key}_moebius.json")), json).expect("write terms");
        write_f64_vector(&out_dir.join(format!("{key}_sii.npy")), &truth).expect("write npy");
        games.push(BenchGame {
            name: format!("{key} Moebius (m={m}, n={n})"),
            game: Box::new(g),
            truth,
        });
    }

    let mut table = String::new();
    let mut records = Vec::new();
    for bg in &mut games {
        let var_truth = {
            let mean = bg.truth.iter().sum::<f64>() / bg.truth.len() as f64;
            bg.truth.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / bg.truth.len() as f64
        };
        let _ = writeln!(
            table,
            "\n### {} (variance of true SII {:.3e}, {} seeds)\n",
            bg.name, var_truth, seeds
        );
        let _ = writeln!(
            table,
            "| estimator | budget | evals | MSE | P@10 | Spearman | seconds |"
        );
        let _ = writeln!(table, "|---|---:|---:|---:|---:|---:|---:|");
        for name in &estimators {
            let est = estimator_by_name(name).expect("known estimator");
            for &budget in &budgets {
                let (mut mse, mut p10, mut rho, mut secs, mut evals, mut ok) =
                    (0.0, 0.0, 0.0, 0.0, 0usize, 0u64);
                let mut error = None;
                for seed in 0..seeds {
                    match est.approximate(bg.game.as_mut(), budget, seed) {
                        Ok(r) => {
                            mse += r
                                .sii
                                .iter()
                                .zip(&bg.truth)
                                .map(|(a, b)| (a - b).powi(2))
                                .sum::<f64>()
                                / bg.truth.len() as f64;
                            p10 += precision_at_k(&r.sii, &bg.truth, 10).unwrap_or(f64::NAN);
                            rho += spearman(&r.sii, &bg.truth).unwrap_or(f64::NAN);
                            secs += r.seconds;
                            evals = evals.max(r.evaluations);
                            ok += 1;
                        }
                        Err(e) => {
                            error = Some(e.to_string());
                            break;
                        }
                    }
                }
                if ok == 0 {
                    let msg = error.unwrap_or_default();
                    let short = if msg.contains("budget") {
                        "budget too small"
                    } else {
                        msg.as_str()
                    };
                    let _ = writeln!(table, "| {name} | {budget} | - | n/a ({short}) | | | |");
                    continue;
                }
                let k = ok as f64;
                let _ = writeln!(
                    table,
                    "| {name} | {budget} | {evals} | {:.3e} | {:.2} | {:.3} | {:.3} |",
                    mse / k,
                    p10 / k,
                    rho / k,
                    secs / k
                );
                records.push(format!(
                    "{{\"game\": \"{}\", \"estimator\": \"{name}\", \"budget\": {budget}, \"mse\": {:e}, \"p10\": {}, \"spearman\": {}, \"seconds\": {}}}",
                    bg.name,
                    mse / k,
                    p10 / k,
                    rho / k,
                    secs / k
                ));
                eprintln!(
                    "{} {name} {budget}: mse {:.3e} ({:.2}s)",
                    bg.name,
                    mse / k,
                    secs / k
                );
            }
        }
    }
    std::fs::write(
        out_dir.join("rust_results.json"),
        format!("[\n{}\n]\n", records.join(",\n")),
    )
    .expect("write results");
    println!("{table}");
}
