//! multishap-engine: turns (image, text, model, masking, scorer) into a core
//! [`multishap_core::Game`].
//!
//! * [`image_mask`] / [`text_mask`]: masked inputs built on the device from
//!   the `[B, d]` coalition tensor.
//! * [`scheduler`]: memory-budgeted batches, halving on out-of-memory,
//!   deduplication and a per-sample value cache.
//! * [`engine`]: many samples sharing one scheduler ([`Engine`]), with a
//!   [`Game`](multishap_core::Game) view per sample.
//! * [`packing`]: several samples' estimators, each on its own thread, packed
//!   into the shared forward passes of one engine ([`Packer`]).
//! * [`speed`]: model-forward throughput and device parity (`multishap speed`).
//! * [`vilt`] and [`clip`]: the model games ([`ViltVqaGame`], [`ViltItmGame`],
//!   [`ClipRetrievalGame`]).
pub mod bench_support;
pub mod clip;
pub mod config;
pub mod demo_queries;
pub mod engine;
pub mod error;
pub mod grid;
pub mod image_mask;
pub mod memory;
pub mod packing;
pub mod scheduler;
pub mod scorer;
pub mod speed;
pub mod text_mask;
pub mod vilt;

pub use clip::{ClipRetrievalGame, ClipStats};
pub use config::{
    AnswerTarget, Baseline, BatchConfig, EngineConfig, GridSize, ImageMasking, MaskingConfig,
    RetrievalScore, ScorerConfig, TextMaskMode, TextMasking, VqaScore,
};
pub use engine::{Engine, RowModel, SampleGame};
pub use error::{EngineError, Result};
pub use grid::{PatchBox, PatchGrid};
/// The image type game constructors take (re-exported so callers need no `image` dependency).
pub use image::DynamicImage;
pub use packing::{Packer, PackingStats, Seat};
pub use scheduler::{Scheduler, SchedulerStats};
pub use vilt::{Prediction, ViltEngine, ViltHead, ViltItmGame, ViltRows, ViltSample, ViltVqaGame};
