//! The subcommands.
pub mod bench_k;
pub mod explain;
pub mod game;
pub mod report;
pub mod run;
pub mod speed;

use crate::cli::{Cli, Command};
use anyhow::Result;

/// Runs a parsed command line.
pub fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Explain(a) => explain::run(&a).map(|_| ()),
        Command::Run(a) => run::run(&a).map(|_| ()),
        Command::Report(a) => report::run(&a).map(|_| ()),
        Command::BenchK(a) => bench_k::run(&a).map(|_| ()),
        Command::Game(a) => game::run(&a),
        Command::Speed(a) => speed::run(&a).map(|_| ()),
        Command::Eval(a) => crate::eval::run_eval(&a).map(|_| ()),
    }
}

/// Writes the merged configuration next to the results (for reproducibility).
pub(crate) fn write_config_used(
    dir: &std::path::Path,
    cfg: &crate::config::RunConfig,
) -> Result<()> {
    let text = toml::to_string_pretty(cfg)?;
    let path = dir.join("config.used.toml");
    std::fs::write(
        &path,
        format!("# merged configuration of this run (config file + flags)\n{text}"),
    )
    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}
