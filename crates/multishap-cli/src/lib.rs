//! Library side of the `multishap` binary: dataset readers, sharding, the
//! configuration, the per-sample explanation pipeline and the subcommands, so
//! that they are testable without spawning processes.
//!
//! - [`cli`]: clap definitions; [`cmd`]: `explain`, `run`, `report`, `bench-k`, `game`.
//! - [`config`]: TOML configuration + flag overrides, budgets (`K` draws x
//!   evaluations per draw), devices and dtypes.
//! - [`explainer`]: model + settings -> [`multishap_report::ExplanationRecord`].
//! - [`errors`]: user errors (exit 2) versus failures (exit 1), one-line messages.
pub mod cli;
pub mod cmd;
pub mod config;
pub mod datasets;
pub mod errors;
pub mod eval;
pub mod explainer;
pub mod geometry;
pub mod progress;
pub mod shard;

use clap::Parser;

/// Escapes text for SVG / HTML.
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Parses `args` and runs the command; returns the process exit code.
/// Errors print as one line `error: ...` on stderr.
pub fn main_with_args<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
                || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    errors::EXIT_USER
                } else {
                    0
                };
            }
            let rendered = e.render().to_string();
            let first = rendered
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("error: bad arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("error: {first} (see `multishap --help`)");
            return errors::EXIT_USER;
        }
    };
    match cmd::dispatch(cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {}", errors::one_line(&e));
            errors::exit_code(&e)
        }
    }
}
