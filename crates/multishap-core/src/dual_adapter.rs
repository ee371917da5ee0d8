//! Use any [`DualEncoderGame`] as a joint [`Game`] (for exact values and for
//! the general estimators): each batch is split into its image and text
//! parts, the distinct parts are evaluated as one grid, and the needed cells
//! are gathered.
use crate::{CoalitionBatch, DualEncoderGame, Error, Game, Players, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;

/// Coalitions per grid call (the grid holds at most this squared).
const SUB_BATCH: usize = 2048;

pub struct DualAsGame<G: DualEncoderGame> {
    inner: G,
}

impl<G: DualEncoderGame> DualAsGame<G> {
    pub fn new(inner: G) -> Self {
        Self { inner }
    }

    pub fn inner_mut(&mut self) -> &mut G {
        &mut self.inner
    }

    pub fn into_inner(self) -> G {
        self.inner
    }

    fn evaluate_part(&mut self, batch: &CoalitionBatch) -> Result<Tensor> {
        let Players { image: m, text: n } = self.inner.players();
        let img = batch.slice_players(0..m);
        let txt = batch.slice_players(m..m + n);
        let (ui, ii) = unique(&img);
        let (ut, it) = unique(&txt);
        let grid = self.inner.evaluate_grid(&ui, &ut)?.to_dtype(DType::F64)?;
        if grid.dims() != [ui.len(), ut.len()] {
            return Err(Error::Game(format!(
                "evaluate_grid returned shape {:?}, expected [{}, {}]",
                grid.dims(),
                ui.len(),
                ut.len()
            )));
        }
        let flat: Vec<u32> = ii
            .iter()
            .zip(&it)
            .map(|(&a, &b)| (a * ut.len() + b) as u32)
            .collect();
        let idx = Tensor::new(flat.as_slice(), grid.device())?;
        Ok(grid.flatten_all()?.index_select(&idx, 0)?)
    }
}

fn unique(batch: &CoalitionBatch) -> (CoalitionBatch, Vec<usize>) {
    let mut seen: HashMap<Vec<u64>, usize> = HashMap::new();
    let mut out = CoalitionBatch::new(batch.num_players());
    let idx = (0..batch.len())
        .map(|r| {
            let words = batch.words(r);
            *seen.entry(words.to_vec()).or_insert_with(|| {
                out.push_words(words);
                out.len() - 1
            })
        })
        .collect();
    (out, idx)
}

impl<G: DualEncoderGame> Game for DualAsGame<G> {
    fn players(&self) -> Players {
        self.inner.players()
    }

    fn device(&self) -> &Device {
        self.inner.device()
    }

    fn evaluate(&mut self, batch: &CoalitionBatch) -> Result<Tensor> {
        let mut parts = Vec::new();
        let mut start = 0;
        while start < batch.len() {
            let end = (start + SUB_BATCH).min(batch.len());
            let mut sub = CoalitionBatch::with_capacity(batch.num_players(), end - start);
            for r in start..end {
                sub.push_words(batch.words(r));
            }
            parts.push(self.evaluate_part(&sub)?);
            start = end;
        }
        if parts.is_empty() {
            return Ok(Tensor::zeros(0, DType::F64, self.inner.device())?);
        }
        Ok(Tensor::cat(&parts, 0)?)
    }
}
