//! Game-theory core of multishap: players, coalitions, batched games,
//! exact Shapley values / interactions and sampling estimators.
//!
//! No model code lives here: a model enters only through the [`Game`] and
//! [`DualEncoderGame`] traits, which evaluate *batches* of coalitions.
//!
//! - [`exact`]: enumeration for d <= 22 (SII, Shapley, Banzhaf interaction).
//! - [`moebius`]: sparse Moebius games with closed-form SII at any d.
//! - [`estimators`]: per-pair, shared, regression-mc (default), permutation,
//!   dual-encoder; [`estimator_by_name`] and [`DEFAULT_ESTIMATOR`].
//! - [`tabulated`]: games from a 2^d value table (.npy), `run_game_command`.
pub mod coalition;
pub mod dual_adapter;
pub mod error;
pub mod estimate;
pub mod estimators;
pub mod eval;
pub mod exact;
pub mod faithfulness;
pub mod game;
pub mod linalg;
pub mod moebius;
pub mod npy;
pub mod players;
pub mod ranking;
pub mod sampling;
pub mod synthetic;
pub mod tabulated;
pub mod weights;

pub use coalition::{Coalition, CoalitionBatch};
pub use dual_adapter::DualAsGame;
pub use error::{Error, Result};
pub use estimate::{Approximator, DualApproximator, InteractionEstimate};
pub use estimators::registry::{
    dual_estimator_by_name, estimator_by_name, DEFAULT_ESTIMATOR, DUAL_ESTIMATOR_NAMES,
    ESTIMATOR_NAMES,
};
pub use exact::{exact_estimate, ExactGame, MAX_EXACT_PLAYERS};
pub use game::{DualEncoderGame, Game};
pub use moebius::MoebiusGame;
pub use players::Players;
pub use tabulated::{run_game_command, GameCommand, GameOutput, TabulatedGame};
