//! The `multishap` command-line tool; everything lives in the library.
fn main() {
    // Keep freed CPU memory for reuse (candle allocates every op's output);
    // MULTISHAP_DEFAULT_MALLOC=1 keeps glibc's defaults.
    multishap_models::cpu_alloc::keep_freed_memory_for_reuse();
    std::process::exit(multishap_cli::main_with_args(std::env::args_os()));
}
