//! The generic evaluation engine: many samples, one scheduler.
//!
//! A [`RowModel`] turns groups of coalitions (each group over one sample's
//! players) into scores with one forward pass. [`Engine`] deduplicates,
//! consults each sample's value cache, packs the remaining coalitions of all
//! requested samples into batches of the scheduler's size (halving on
//! out-of-memory), and hands out per-sample [`Game`] views.
use crate::config::BatchConfig;
use crate::scheduler::{plan_dedup, Scheduler, SchedulerStats, ValueCache};
use crate::{EngineError, Result};
use candle_core::{Device, Tensor};
use multishap_core::{CoalitionBatch, Game, Players};

/// A model plus masking and scoring, able to score packed coalitions.
pub trait RowModel {
    type Sample;
    fn device(&self) -> &Device;
    fn players(&self, sample: &Self::Sample) -> Players;
    /// Estimated activation bytes of one evaluation of `sample`.
    fn bytes_per_eval(&self, sample: &Self::Sample) -> usize;
    /// Scores of all coalitions of all groups, in order, as a 1-D f32
    /// tensor. Each group is `(sample index, coalitions over that sample's
    /// players)`; implementations build the masked inputs of all groups and
    /// should run them as few forward passes as shapes allow.
    fn score_groups(
        &self,
        samples: &[Self::Sample],
        groups: &[(usize, CoalitionBatch)],
    ) -> Result<Tensor>;
}

pub struct Engine<M: RowModel> {
    model: M,
    samples: Vec<M::Sample>,
    caches: Vec<ValueCache<f32>>,
    scheduler: Scheduler,
}

impl<M: RowModel> Engine<M> {
    pub fn new(model: M, batch: BatchConfig) -> Result<Self> {
        let batch = batch.for_device(model.device());
        Ok(Self {
            model,
            samples: Vec::new(),
            caches: Vec::new(),
            scheduler: Scheduler::new(batch, 1)?,
        })
    }

    /// Add a sample; returns its index.
    pub fn add_sample(&mut self, sample: M::Sample) -> usize {
        // the scheduler starts at max_batch; each sample can only lower it, so
        // a size halved by out-of-memory stays halved
        let bytes = self.model.bytes_per_eval(&sample);
        self.scheduler.set_bytes_per_eval(bytes);
        self.caches
            .push(ValueCache::new(self.scheduler.config().cache_capacity));
        self.samples.push(sample);
        self.samples.len() - 1
    }

    pub fn model(&self) -> &M {
        &self.model
    }

    pub fn sample(&self, i: usize) -> &M::Sample {
        &self.samples[i]
    }

    pub fn num_samples(&self) -> usize {
        self.samples.len()
    }

    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    pub fn scheduler_mut(&mut self) -> &mut Scheduler {
        &mut self.scheduler
    }

    pub fn stats(&self) -> SchedulerStats {
        self.scheduler.stats
    }

    /// Forget the cached values of sample `i`.
    pub fn clear_cache(&mut self, i: usize) {
        self.caches[i].clear();
    }

    /// Values of the coalitions of several samples, packed into shared
    /// batches. Returns one 1-D f32 tensor per request, on the device.
    pub fn evaluate_many(&mut self, requests: &[(usize, &CoalitionBatch)]) -> Result<Vec<Tensor>> {
        let mut plans = Vec::with_capacity(requests.len());
        let mut unique: Vec<(usize, usize)> = Vec::new(); // (request, row)
        for (r, &(s, batch)) in requests.iter().enumerate() {
            if s >= self.samples.len() {
                return Err(EngineError::InvalidInput(format!("no sample {s}")));
            }
            let d = self.model.players(&self.samples[s]).total();
            if batch.num_players() != d {
                return Err(EngineError::InvalidInput(format!(
                    "coalitions over {} players, sample {s} has {d}",
                    batch.num_players()
                )));
            }
            let plan = plan_dedup(
                batch.len(),
                |i| batch.words(i),
                &mut self.caches[s],
                &mut self.scheduler.stats,
            );
            unique.extend(plan.unique.iter().map(|&i| (r, i)));
            plans.push(plan);
        }
        let (model, samples) = (&self.model, &self.samples);
        let chunks = self.scheduler.run_chunks(unique.len(), |range| {
            let rows = &unique[range];
            let mut groups: Vec<(usize, CoalitionBatch)> = Vec::new();
            let mut last_req = usize::MAX;
            for &(r, i) in rows {
                let (s, batch) = requests[r];
                if r != last_req {
                    groups.push((
                        s,
                        CoalitionBatch::with_capacity(batch.num_players(), rows.len()),
                    ));
                    last_req = r;
                }
                if let Some(g) = groups.last_mut() {
                    g.1.push(&batch.get(i));
                }
            }
            let scores = model.score_groups(samples, &groups)?;
            let v: Vec<f32> = scores.to_dtype(candle_core::DType::F32)?.to_vec1()?;
            if v.len() != rows.len() {
                return Err(EngineError::InvalidInput(format!(
                    "model returned {} scores for {} coalitions",
                    v.len(),
                    rows.len()
                )));
            }
            Ok(v)
        })?;
        self.scheduler.stats.evaluated += unique.len();
        let flat: Vec<f32> = chunks.concat();
        let device = self.model.device().clone();
        let mut out = Vec::with_capacity(requests.len());
        let mut offset = 0;
        for (plan, &(s, batch)) in plans.iter().zip(requests) {
            let k = plan.unique.len();
            let vals = plan.finish(
                &flat[offset..offset + k],
                |i| batch.words(i),
                &mut self.caches[s],
            );
            offset += k;
            out.push(Tensor::from_vec(vals, batch.len(), &device)?);
        }
        Ok(out)
    }

    /// Values of the coalitions of one sample.
    pub fn evaluate(&mut self, sample: usize, batch: &CoalitionBatch) -> Result<Tensor> {
        Ok(self.evaluate_many(&[(sample, batch)])?.remove(0))
    }

    /// A [`Game`] view of sample `i` (shares the scheduler and caches).
    pub fn game(&mut self, i: usize) -> SampleGame<'_, M> {
        SampleGame {
            engine: self,
            sample: i,
        }
    }
}

/// One sample of an [`Engine`] as a core [`Game`].
pub struct SampleGame<'e, M: RowModel> {
    engine: &'e mut Engine<M>,
    sample: usize,
}

impl<M: RowModel> Game for SampleGame<'_, M> {
    fn players(&self) -> Players {
        self.engine.model.players(&self.engine.samples[self.sample])
    }

    fn device(&self) -> &Device {
        self.engine.model.device()
    }

    fn evaluate(&mut self, batch: &CoalitionBatch) -> multishap_core::Result<Tensor> {
        Ok(self.engine.evaluate(self.sample, batch)?)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use candle_core::DType;
    use multishap_core::Coalition;
    use std::cell::Cell;

    /// A fake model: the value of S is sum_p w_p [p in S] + c * [0 in S][last in S],
    /// with sample-specific weights; counts forward passes and rows.
    pub struct FakeModel {
        pub device: Device,
        pub weights: Vec<Vec<f32>>,
        pub forwards: Cell<usize>,
        pub rows: Cell<usize>,
        pub players: Players,
    }

    impl RowModel for FakeModel {
        type Sample = usize;
        fn device(&self) -> &Device {
            &self.device
        }
        fn players(&self, _: &usize) -> Players {
            self.players
        }
        fn bytes_per_eval(&self, _: &usize) -> usize {
            1
        }
        fn score_groups(
            &self,
            samples: &[usize],
            groups: &[(usize, CoalitionBatch)],
        ) -> Result<Tensor> {
            self.forwards.set(self.forwards.get() + 1);
            let mut parts = Vec::new();
            for (s, batch) in groups {
                self.rows.set(self.rows.get() + batch.len());
                let w = Tensor::new(self.weights[samples[*s]].as_slice(), &self.device)?;
                let keep = batch.to_mask_tensor(&self.device, DType::F32)?;
                let lin = keep.broadcast_mul(&w.unsqueeze(0)?)?.sum(1)?;
                let d = batch.num_players();
                let pair = (keep.narrow(1, 0, 1)? * keep.narrow(1, d - 1, 1)?)?.squeeze(1)?;
                parts.push((lin + (pair * 0.5)?)?);
            }
            Ok(Tensor::cat(&parts, 0)?)
        }
    }

    pub fn fake(n_samples: usize, players: Players) -> FakeModel {
        let d = players.total();
        FakeModel {
            device: Device::Cpu,
            weights: (0..n_samples)
                .map(|s| (0..d).map(|p| (p * 7 + s * 3) as f32 * 0.1).collect())
                .collect(),
            forwards: Cell::new(0),
            rows: Cell::new(0),
            players,
        }
    }

    fn direct(w: &[f32], c: &Coalition) -> f32 {
        let d = w.len();
        c.members().map(|p| w[p]).sum::<f32>()
            + if c.contains(0) && c.contains(d - 1) {
                0.5
            } else {
                0.0
            }
    }

    /// `n` seeded coalitions, each player in with probability 1/2.
    pub fn random_coalitions(d: usize, n: usize, seed: u64) -> CoalitionBatch {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut b = CoalitionBatch::new(d);
        for _ in 0..n {
            b.push(&Coalition::from_members(
                d,
                (0..d).filter(|_| rng.random_bool(0.5)),
            ));
        }
        b
    }

    /// [`random_coalitions`] plus the empty and (twice) the full coalition.
    fn random_batch(d: usize, n: usize, seed: u64) -> CoalitionBatch {
        let mut b = random_coalitions(d, n, seed);
        b.push(&Coalition::empty(d));
        b.push(&Coalition::full(d));
        b.push(&Coalition::full(d));
        b
    }

    #[test]
    fn values_match_direct_calls_and_batch_size_does_not_matter() {
        let players = Players::new(5, 4);
        let batch = random_batch(9, 50, 1);
        let mut results = Vec::new();
        for max_batch in [1, 3, 7, 256] {
            let cfg = BatchConfig {
                max_batch,
                cache_capacity: 0,
                ..Default::default()
            };
            let mut e = Engine::new(fake(1, players), cfg).unwrap();
            let s = e.add_sample(0);
            let v: Vec<f32> = e.game(s).evaluate(&batch).unwrap().to_vec1().unwrap();
            for (i, c) in batch.iter().enumerate() {
                assert!((v[i] - direct(&e.model().weights[0], &c)).abs() < 1e-5);
            }
            results.push(v);
        }
        for r in &results[1..] {
            assert!(r
                .iter()
                .zip(&results[0])
                .all(|(a, b)| (a - b).abs() <= 1e-5));
        }
    }

    #[test]
    fn duplicates_and_repeats_are_evaluated_once() {
        let players = Players::new(3, 2);
        let mut e = Engine::new(fake(1, players), BatchConfig::default()).unwrap();
        e.add_sample(0);
        let mut b = CoalitionBatch::new(5);
        for _ in 0..4 {
            b.push(&Coalition::empty(5));
            b.push(&Coalition::full(5));
        }
        b.push(&Coalition::from_members(5, [1, 3]));
        let v1: Vec<f32> = e.evaluate(0, &b).unwrap().to_vec1().unwrap();
        assert_eq!(e.model().rows.get(), 3);
        assert_eq!(e.stats().duplicates, 6);
        let v2: Vec<f32> = e.evaluate(0, &b).unwrap().to_vec1().unwrap();
        assert_eq!(v1, v2);
        assert_eq!(e.model().rows.get(), 3, "second call served from the cache");
        assert_eq!(e.stats().cache_hits, 9);
        e.clear_cache(0);
        e.evaluate(0, &b).unwrap();
        assert_eq!(e.model().rows.get(), 6);
    }

    #[test]
    fn many_samples_share_batches() {
        let players = Players::new(4, 3);
        let cfg = BatchConfig {
            max_batch: 64,
            cache_capacity: 0,
            ..Default::default()
        };
        let mut e = Engine::new(fake(3, players), cfg).unwrap();
        for s in 0..3 {
            e.add_sample(s);
        }
        let batches: Vec<CoalitionBatch> =
            (0..3).map(|s| random_batch(7, 15, 10 + s as u64)).collect();
        let reqs: Vec<(usize, &CoalitionBatch)> = batches.iter().enumerate().collect();
        let unique: usize = batches
            .iter()
            .map(|b| b.iter().collect::<std::collections::HashSet<_>>().len())
            .sum();
        let out = e.evaluate_many(&reqs).unwrap();
        assert_eq!(e.model().forwards.get(), unique.div_ceil(64));
        for (s, (t, b)) in out.iter().zip(&batches).enumerate() {
            let v: Vec<f32> = t.to_vec1().unwrap();
            for (i, c) in b.iter().enumerate() {
                assert!((v[i] - direct(&e.model().weights[s], &c)).abs() < 1e-5);
            }
        }
        assert!(e.evaluate(0, &random_batch(6, 2, 0)).is_err());
    }

    #[test]
    fn oom_retry_gives_identical_values() {
        let players = Players::new(5, 4);
        let batch = random_batch(9, 40, 3);
        let cfg = BatchConfig {
            max_batch: 32,
            cache_capacity: 0,
            ..Default::default()
        };
        let mut e = Engine::new(fake(1, players), cfg).unwrap();
        e.add_sample(0);
        let reference: Vec<f32> = e.evaluate(0, &batch).unwrap().to_vec1().unwrap();
        e.scheduler_mut().simulate_memory_limit(Some(5));
        let v: Vec<f32> = e.evaluate(0, &batch).unwrap().to_vec1().unwrap();
        assert_eq!(v, reference);
        assert_eq!(e.scheduler().batch_size(), 4);
        assert!(e.stats().oom_retries >= 3);
    }
}
