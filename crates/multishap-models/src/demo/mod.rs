//! The shipped demo models and their synthetic data.
//!
//! No model hub is reachable offline, so `multishap explain` defaults to two
//! small models trained on generated scenes of coloured shapes and shipped in
//! `models/`: a ViLT-architecture VQA model (`models/demo-vilt-vqa`) and a
//! CLIP-architecture dual encoder (`models/demo-clip`). Both are plain
//! Hugging Face folders loaded by [`crate::loading::load`] like any Hub model.
//!
//! - [`rng`]: a seedable generator independent of the `rand` crates.
//! - [`scene`]: scenes of 1-3 shapes (circle, rectangle, triangle; 8 colours;
//!   plain or noisy grey backgrounds) with exact per-pixel masks.
//! - [`questions`]: answerable questions with answers, and captions.
//! - [`hf_files`]: `config.json`, tokenizer and preprocessor files.
//! - [`pointing`]: the pointing game for explanations.
//! - [`twin`]: differentiable training twins of the ViLT / CLIP inference models.
//! - [`train`]: training and held-out evaluation (`scripts/train-demo.sh`).
pub mod hf_files;
pub mod pointing;
pub mod questions;
pub mod rng;
pub mod scene;
pub mod train;
pub mod twin;

pub use pointing::{hit_rate, patch_grid_boxes, pointing_game, PatchBox, PointingOutcome};
pub use questions::{answer_labels, caption, generate_question, Question, QuestionKind};
pub use rng::DemoRng;
pub use scene::{Background, Colour, RenderedScene, Scene, SceneConfig, ShapeKind, ShapeMask};
