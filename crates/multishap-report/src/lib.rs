//! multishap-report: everything that happens after an explanation is computed.
//!
//! - [`schema`]: the versioned, serde-serialisable [`ExplanationRecord`] (one per sample),
//!   built from core's [`multishap_core::InteractionEstimate`] plus run metadata.
//! - [`jsonl`]: crash-safe append-only JSONL results / errors files, resume and shard merging.
//! - [`heatmap`]: per-token and average heatmaps overlaid on the image (PNG), colormap,
//!   and the token x patch matrix figure (SVG, with labels and a colorbar).
//! - [`html`]: the `index.html` page of one explanation.
//! - [`eval`]: the `eval-<measure>.json` schema of `multishap eval`, its page and report section.
//! - [`stats`]: dataset-level statistics and [`stats::build_report`] (report.json, CSVs, HTML).
pub mod colormap;
pub mod csv;
pub mod error;
pub mod eval;
pub mod heatmap;
pub mod html;
pub mod jsonl;
pub mod schema;
pub mod stats;
pub mod svg;
mod timefmt;

pub use error::{ReportError, Result};
pub use eval::EvalReport;
pub use heatmap::{HeatmapOptions, HeatmapSet};
pub use html::{write_explanation_page, ExplanationPage};
pub use jsonl::{
    completed_ids, read_errors, read_records, read_shards, ErrorRecord, ErrorsWriter, JsonlWriter,
    MergedRecords, ReadOutcome, ResultsWriter,
};
pub use schema::{
    ExplanationRecord, ModelInfo, ModelRows, PatchGrid, Prediction, RecordMeta, SCHEMA_VERSION,
};
pub use stats::{build_report, DatasetStats, ReportOptions, ReportSummary};
