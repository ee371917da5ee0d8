//! The common estimator interface: budget in game evaluations plus a seed in,
//! the m x n cross-modal SII grid with standard errors out.
use crate::{DualEncoderGame, Game, Result};
use serde::{Deserialize, Serialize};

/// Result of an interaction estimate for m image x n text players.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InteractionEstimate {
    pub estimator: String,
    pub image_players: usize,
    pub text_players: usize,
    /// SII, row-major `[m][n]`: `sii[i * n + j]` for patch i and token j.
    pub sii: Vec<f64>,
    /// Standard error per pair, same layout (0 for exact results).
    pub stderr: Vec<f64>,
    /// First-order Shapley values for all d players, if computed.
    pub shapley: Option<Vec<f64>>,
    /// Game evaluations spent.
    pub evaluations: usize,
    /// Wall time including the estimator's own arithmetic.
    pub seconds: f64,
}

impl InteractionEstimate {
    pub fn pair(&self, i: usize, j: usize) -> f64 {
        self.sii[i * self.text_players + j]
    }

    /// The grid as `[m][n]` nested rows.
    pub fn sii_rows(&self) -> Vec<Vec<f64>> {
        self.sii
            .chunks(self.text_players.max(1))
            .map(|r| r.to_vec())
            .collect()
    }

    pub fn stderr_rows(&self) -> Vec<Vec<f64>> {
        self.stderr
            .chunks(self.text_players.max(1))
            .map(|r| r.to_vec())
            .collect()
    }
}

/// An estimator of the cross-modal SII grid for a general (joint) game.
pub trait Approximator {
    fn name(&self) -> &str;
    fn approximate(
        &self,
        game: &mut dyn Game,
        budget: usize,
        seed: u64,
    ) -> Result<InteractionEstimate>;
}

/// An estimator for dual-encoder games (image and text encoded separately).
pub trait DualApproximator {
    fn name(&self) -> &str;
    fn approximate_dual(
        &self,
        game: &mut dyn DualEncoderGame,
        budget: usize,
        seed: u64,
    ) -> Result<InteractionEstimate>;
}
