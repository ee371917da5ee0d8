//! The `multishap` command-line tool; everything lives in the library.
fn main() {
    std::process::exit(multishap_cli::main_with_args(std::env::args_os()));
}
