//! Fixture access shared by the root end-to-end tests (`mod common;`):
//! the tiny models and images under tests/fixtures/models.
use candle_core::{DType, Device};
use multishap::models::loading::{LoadedModel, ModelSource};
use std::path::PathBuf;

pub fn fixture(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(p)
}

/// A tiny fixture checkpoint (tests/fixtures/models/checkpoints/<name>) on the CPU in f32.
pub fn load(name: &str) -> LoadedModel {
    let src = ModelSource::Local(fixture(&format!("checkpoints/{name}")));
    multishap::models::load(&src, &Device::Cpu, DType::F32).expect("fixture model loads")
}

/// A fixture image (tests/fixtures/models/images/<name>).
pub fn image(name: &str) -> multishap::engine::DynamicImage {
    multishap::models::preprocess::load_image(&fixture(&format!("images/{name}")))
        .expect("fixture image")
}
