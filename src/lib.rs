//! multishap: cross-modal Shapley interaction explanations for vision-language models.
//!
//! This root crate only re-exports the workspace crates; it owns the end-to-end
//! tests in `tests/` and the benchmarks in `benches/`.
pub use multishap_core as core;
pub use multishap_engine as engine;
pub use multishap_models as models;
pub use multishap_report as report;
