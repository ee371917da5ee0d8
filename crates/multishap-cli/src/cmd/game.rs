//! `multishap game`: the SII grid of a game given as a value table (.npy).
use crate::cli::GameArgs;
use crate::errors::{user, UserContext};
use anyhow::Result;
use multishap_core::{run_game_command, GameCommand};

pub fn run(a: &GameArgs) -> Result<()> {
    if !a.values.is_file() {
        return Err(user(format!(
            "--values {}: no such file",
            a.values.display()
        )));
    }
    if let Some(name) = &a.estimator {
        crate::config::check_estimator_name(name)?;
        if crate::config::is_dual_estimator(name) {
            return Err(user(format!(
                "the {name} estimator needs a CLIP model, not a value table"
            )));
        }
    }
    let cmd = GameCommand {
        values: a.values.clone(),
        image_players: a.image_players,
        text_players: a.text_players,
        estimator: a.estimator.clone(),
        budget: a.budget,
        seed: a.seed,
        exact: a.exact,
    };
    // Everything that can fail here comes from the input table or the flags.
    let out = run_game_command(&cmd).user_err()?;
    let json = serde_json::to_string_pretty(&out)?;
    match &a.out {
        Some(path) => {
            if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .user_ctx(|| format!("cannot create {}", dir.display()))?;
            }
            std::fs::write(path, json + "\n")
                .user_ctx(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "game: {} x {} SII grid ({}, {} evaluations, {:.3} s) -> {}",
                a.image_players,
                a.text_players,
                out.estimator,
                out.evaluations,
                out.seconds,
                path.display()
            );
        }
        None => println!("{json}"),
    }
    Ok(())
}
