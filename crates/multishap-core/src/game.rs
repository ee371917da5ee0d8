//! Games: value functions over coalitions, evaluated in batches.
use crate::{CoalitionBatch, Players, Result};
use candle_core::{Device, Tensor};

/// A cooperative game over image + text players, evaluated in batches.
///
/// `evaluate` receives many coalitions (thousands) per call and returns their
/// values as a 1-D float tensor of length `batch.len()` on [`Game::device`],
/// so that estimators can aggregate where the model runs.
pub trait Game {
    fn players(&self) -> Players;
    fn device(&self) -> &Device;
    fn evaluate(&mut self, batch: &CoalitionBatch) -> Result<Tensor>;
}

/// A game of the form v(S) = f(A(S_img), B(S_txt)) (dual encoders such as
/// CLIP). Image and text coalitions are evaluated separately and combined in
/// one product: `evaluate_grid` returns a `[K_img, K_txt]` float tensor whose
/// entry (a, b) is v(image[a] ∪ text[b]).
///
/// `image` coalitions are over `players().image` players, `text` coalitions
/// over `players().text` players, each numbered from 0.
pub trait DualEncoderGame {
    fn players(&self) -> Players;
    fn device(&self) -> &Device;
    fn evaluate_grid(&mut self, image: &CoalitionBatch, text: &CoalitionBatch) -> Result<Tensor>;
}
