//! Game-theory core of multishap: players, coalitions, batched games,
//! exact Shapley values / interactions and sampling estimators.
//!
//! No model code lives here: a model enters only through the [`Game`] and
//! [`DualEncoderGame`] traits, which evaluate *batches* of coalitions.
pub mod coalition;
pub mod error;
pub mod estimate;
pub mod game;
pub mod players;

pub use coalition::{Coalition, CoalitionBatch};
pub use error::{Error, Result};
pub use estimate::{Approximator, DualApproximator, InteractionEstimate};
pub use game::{DualEncoderGame, Game};
pub use players::Players;
