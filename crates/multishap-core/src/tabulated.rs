//! Games given as a table of 2^d values (the `multishap game` subcommand):
//! index = bitmask with player p at bit p (image players 0..m-1, text players
//! m..d-1).
use crate::estimators::registry::{estimator_by_name, DEFAULT_ESTIMATOR};
use crate::exact::{exact_estimate, ExactGame};
use crate::npy::read_f64_vector;
use crate::{CoalitionBatch, Error, Game, InteractionEstimate, Players, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Largest d a value table may have (2^30 doubles = 8 GiB).
pub const MAX_TABLE_PLAYERS: usize = 30;

#[derive(Debug, Clone)]
pub struct TabulatedGame {
    players: Players,
    values: Vec<f64>,
    device: Device,
}

impl TabulatedGame {
    pub fn new(players: Players, values: Vec<f64>) -> Result<Self> {
        let d = players.total();
        if d == 0 || d > MAX_TABLE_PLAYERS {
            return Err(Error::InvalidInput(format!(
                "a value table needs 1..={MAX_TABLE_PLAYERS} players, got {d} (m = {}, n = {})",
                players.image, players.text
            )));
        }
        if values.len() != 1usize << d {
            return Err(Error::InvalidInput(format!(
                "value table has {} entries but m = {} image + n = {} text players need 2^{d} = {}",
                values.len(),
                players.image,
                players.text,
                1usize << d
            )));
        }
        if let Some(p) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::InvalidInput(format!(
                "value table entry {p} is not finite"
            )));
        }
        Ok(Self {
            players,
            values,
            device: Device::Cpu,
        })
    }

    /// Load a float64 / float32 1-D .npy of length 2^(m+n).
    pub fn from_npy(path: &Path, image_players: usize, text_players: usize) -> Result<Self> {
        let values = read_f64_vector(path)?;
        Self::new(Players::new(image_players, text_players), values).map_err(|e| match e {
            Error::InvalidInput(msg) => Error::Npy {
                path: path.display().to_string(),
                reason: msg,
            },
            other => other,
        })
    }

    pub fn with_device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The table as an [`ExactGame`] (d <= 22).
    pub fn to_exact(&self) -> Result<ExactGame> {
        ExactGame::from_values(self.players, self.values.clone())
    }
}

impl Game for TabulatedGame {
    fn players(&self) -> Players {
        self.players
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn evaluate(&mut self, batch: &CoalitionBatch) -> Result<Tensor> {
        if batch.num_players() != self.players.total() {
            return Err(Error::InvalidInput(
                "batch over a different player set".into(),
            ));
        }
        let out: Vec<f64> = (0..batch.len())
            .map(|i| self.values[batch.words(i)[0] as usize])
            .collect();
        Ok(Tensor::from_vec(out, batch.len(), &Device::Cpu)?.to_device(&self.device)?)
    }
}

/// Options of `multishap game`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GameCommand {
    pub values: PathBuf,
    pub image_players: usize,
    pub text_players: usize,
    /// Estimator name; `None` = [`DEFAULT_ESTIMATOR`]. Ignored with `exact`.
    pub estimator: Option<String>,
    pub budget: usize,
    pub seed: u64,
    pub exact: bool,
}

/// The JSON written by `multishap game` (`shapley` is null for estimators
/// that do not compute first-order values, stderr entries null when unknown).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GameOutput {
    pub sii: Vec<Vec<f64>>,
    pub stderr: Vec<Vec<f64>>,
    pub shapley: Option<Vec<f64>>,
    pub evaluations: usize,
    pub seconds: f64,
    pub estimator: String,
    pub budget: usize,
    pub seed: u64,
}

impl GameOutput {
    pub fn from_estimate(est: &InteractionEstimate, budget: usize, seed: u64) -> Self {
        Self {
            sii: est.sii_rows(),
            stderr: est.stderr_rows(),
            shapley: est.shapley.clone(),
            evaluations: est.evaluations,
            seconds: est.seconds,
            estimator: est.estimator.clone(),
            budget,
            seed,
        }
    }
}

/// Library side of `multishap game`: load the table, run the estimator (or
/// exact enumeration), return the output record.
pub fn run_game_command(opts: &GameCommand) -> Result<GameOutput> {
    let mut game = TabulatedGame::from_npy(&opts.values, opts.image_players, opts.text_players)?;
    let est = if opts.exact {
        exact_estimate(&mut game)?
    } else {
        let name = opts.estimator.as_deref().unwrap_or(DEFAULT_ESTIMATOR);
        estimator_by_name(name)?.approximate(&mut game, opts.budget, opts.seed)?
    };
    Ok(GameOutput::from_estimate(&est, opts.budget, opts.seed))
}
