//! Sampling estimators of the cross-modal SII grid behind the common
//! [`crate::Approximator`] interface, and the name registry.
pub mod dual;
pub mod dual_exact_text;
pub mod per_pair;
pub mod permutation;
pub mod registry;
pub mod regression;
pub mod shared;

use crate::{CoalitionBatch, InteractionEstimate, Players, Result};
use candle_core::{DType, Device, Tensor};
use std::time::Instant;

/// What every estimator reads first: the start of its wall clock, the players and their
/// counts (m image, n text, d in all), after checking that both modalities have players.
pub(crate) fn begin(players: Players) -> Result<(Instant, Players, usize, usize, usize)> {
    let start = Instant::now();
    players.require_cross_modal()?;
    Ok((start, players, players.image, players.text, players.total()))
}

/// Dense f64 0/1 mask tensor `[B, d]` of a batch on `device`.
pub(crate) fn masks(batch: &CoalitionBatch, device: &Device) -> Result<Tensor> {
    Ok(batch.to_mask_tensor(device, DType::F64)?)
}

/// Host vector -> 1-D f64 tensor on `device`.
pub(crate) fn vec_tensor(v: Vec<f64>, device: &Device) -> Result<Tensor> {
    let len = v.len();
    Ok(Tensor::from_vec(v, len, &Device::Cpu)?.to_device(device)?)
}

/// Package a grid (tensors `[m, n]` or flat) into an [`InteractionEstimate`].
pub(crate) fn finish(
    name: &str,
    players: Players,
    sii: &Tensor,
    stderr: &Tensor,
    shapley: Option<Vec<f64>>,
    evaluations: usize,
    start: Instant,
) -> Result<InteractionEstimate> {
    Ok(InteractionEstimate {
        estimator: name.to_string(),
        image_players: players.image,
        text_players: players.text,
        sii: sii.flatten_all()?.to_vec1::<f64>()?,
        stderr: stderr.flatten_all()?.to_vec1::<f64>()?,
        shapley,
        evaluations,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Mean and standard error of the mean along dimension 0 of `z` (`[K, ...]`).
/// With K = 1 the standard error is NaN (serialised as null).
pub(crate) fn mean_and_stderr(z: &Tensor) -> Result<(Tensor, Tensor)> {
    let k = z.dim(0)?;
    let mean = z.mean(0)?;
    let centred = z.broadcast_sub(&mean.unsqueeze(0)?)?;
    let ss = centred.sqr()?.sum(0)?;
    let se = if k > 1 {
        (ss / ((k * (k - 1)) as f64))?.sqrt()?
    } else {
        (ss * f64::NAN)?
    };
    Ok((mean, se))
}
