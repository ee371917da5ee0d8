//! Calling a [`Game`] on large batches: chunking and shape checks.
use crate::{CoalitionBatch, Error, Game, Result};
use candle_core::{DType, Tensor};

/// Largest number of coalitions handed to [`Game::evaluate`] in one call.
/// Games (e.g. the model engine) split further into device batches.
pub const MAX_GAME_BATCH: usize = 16_384;

/// Evaluate every coalition of `batch` (in chunks of [`MAX_GAME_BATCH`]) and
/// return a 1-D f64 tensor on the game's device.
pub fn evaluate_all(game: &mut dyn Game, batch: &CoalitionBatch) -> Result<Tensor> {
    let total = batch.len();
    if total == 0 {
        return Ok(Tensor::zeros(0, DType::F64, game.device())?);
    }
    let mut parts = Vec::new();
    let mut start = 0;
    while start < total {
        let end = (start + MAX_GAME_BATCH).min(total);
        let chunk = if start == 0 && end == total {
            batch.clone()
        } else {
            sub_batch(batch, start, end)
        };
        let values = game.evaluate(&chunk)?;
        let values = values.to_dtype(DType::F64)?.flatten_all()?;
        if values.dim(0)? != end - start {
            return Err(Error::Game(format!(
                "game returned {} values for {} coalitions",
                values.dim(0)?,
                end - start
            )));
        }
        parts.push(values);
        start = end;
    }
    if parts.len() == 1 {
        Ok(parts.pop().expect("one part"))
    } else {
        Ok(Tensor::cat(&parts, 0)?)
    }
}

/// Evaluate and copy to the host.
pub fn evaluate_to_host(game: &mut dyn Game, batch: &CoalitionBatch) -> Result<Vec<f64>> {
    Ok(evaluate_all(game, batch)?.to_vec1::<f64>()?)
}

fn sub_batch(batch: &CoalitionBatch, start: usize, end: usize) -> CoalitionBatch {
    let mut out = CoalitionBatch::with_capacity(batch.num_players(), end - start);
    for i in start..end {
        out.push_words(batch.words(i));
    }
    out
}
