//! Hand-built games for the tests of this module.
use crate::{Coalition, CoalitionBatch, Game, Players, Result};
use candle_core::{Device, Tensor};

/// v(S) = f(S) for a closure f; counts evaluations.
pub struct FnGame<F: Fn(&Coalition) -> f64> {
    pub players: Players,
    pub f: F,
    pub evaluations: usize,
    device: Device,
}

impl<F: Fn(&Coalition) -> f64> FnGame<F> {
    pub fn new(players: Players, f: F) -> Self {
        Self {
            players,
            f,
            evaluations: 0,
            device: Device::Cpu,
        }
    }
}

impl<F: Fn(&Coalition) -> f64> Game for FnGame<F> {
    fn players(&self) -> Players {
        self.players
    }
    fn device(&self) -> &Device {
        &self.device
    }
    fn evaluate(&mut self, batch: &CoalitionBatch) -> Result<Tensor> {
        self.evaluations += batch.len();
        let v: Vec<f64> = batch.iter().map(|c| (self.f)(&c)).collect();
        Ok(Tensor::from_vec(v, batch.len(), &self.device)?)
    }
}

/// Additive game: v(S) = sum of w[p] over p in S.
pub fn additive(players: Players, w: Vec<f64>) -> FnGame<impl Fn(&Coalition) -> f64> {
    FnGame::new(players, move |c: &Coalition| {
        c.members().map(|p| w[p]).sum()
    })
}
