//! Faithfulness measures of explanations over any [`Game`](crate::Game):
//! what happens to the score when the players an explanation points at are
//! removed or kept. Everything here is model-agnostic; the model-dependent
//! measures (stability under image noise, masking baselines, several grids)
//! live in the CLI's `eval` module and call these.
//!
//! Conventions (all measures):
//! - "Removing" a player means leaving it out of the coalition, i.e. the game
//!   masks it (for the model games: the patch gets the masking baseline, the
//!   token is masked / deleted). N is the full coalition, v(N) the unmasked score.
//! - **Removing a pair (i, j)** (patch i, token j) masks *both* its players.
//!   Removing k pairs masks the union of their players; because pairs share
//!   players, k pairs mask between 2 and 2k players, and every curve reports
//!   how many players were actually masked at each k.
//! - Curves are sampled at x in [0, 1] (fraction of the budget) and their area
//!   is the trapezoid rule over x, so an area is the mean height of the curve.
//!
//! Modules:
//! - [`curve`]: curves and their area.
//! - [`pairs`]: pair-level masking (top-k pairs by a ranking versus k random pairs).
//! - [`deletion`]: deletion / insertion curves of first-order attributions.
//! - [`sufficiency`]: keep only / remove the explanation's players.
//! - [`modality`]: Granger-style modality ablation and how the other
//!   modality's explanation moves; [`restricted`] is the sub-game it uses.
//! - [`redundancy`]: the redundancy gap of every cross-modal pair.
//! - [`attribution`]: first-order Shapley values by permutation sampling (any d).
//! - [`multiscale`]: combining grid maps of several resolutions into one.
pub mod attribution;
pub mod curve;
pub mod deletion;
pub mod modality;
pub mod multiscale;
pub mod pairs;
pub mod redundancy;
pub mod restricted;
pub mod sufficiency;

#[cfg(test)]
pub(crate) mod test_games;

pub use attribution::permutation_shapley;
pub use curve::Curve;
pub use deletion::{deletion_insertion, DeletionInsertion, Scope};
pub use modality::{exact_shapley, modality_influence, ExplanationShift, ModalityInfluence};
pub use multiscale::{aggregate_multiscale, GridMap};
pub use pairs::{
    pair_masking, pair_removal_coalition, rank_pairs_desc, PairMaskingConfig, PairMaskingResult,
    RankedCurve,
};
pub use redundancy::{redundancy_gaps, RedundancyGaps};
pub use restricted::RestrictedGame;
pub use sufficiency::{players_of_pairs, sufficiency_necessity, top_players, SufficiencyNecessity};

use crate::eval::evaluate_to_host;
use crate::{Coalition, CoalitionBatch, Game, Result};

/// Evaluate a list of coalitions in one batched call (chunked by the core).
pub(crate) fn evaluate_coalitions(game: &mut dyn Game, cs: &[Coalition]) -> Result<Vec<f64>> {
    let d = game.players().total();
    let mut batch = CoalitionBatch::with_capacity(d, cs.len());
    for c in cs {
        batch.push(c);
    }
    evaluate_to_host(game, &batch)
}

/// `v / scale` when the scale is not (numerically) zero: |scale| > 1e-12.
/// Callers that report both raw and normalised numbers keep the raw ones:
/// for nearly constant games the normalised ones are dominated by noise.
pub(crate) fn normalised(v: f64, scale: f64) -> Option<f64> {
    (scale.abs() > 1e-12).then(|| v / scale)
}
