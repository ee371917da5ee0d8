//! Batch scheduling: memory-budgeted batch sizes, halving on out-of-memory,
//! deduplication of identical coalitions and a per-sample value cache.
use crate::config::BatchConfig;
use crate::error::is_oom;
use crate::{EngineError, Result};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Activation memory (bytes per forward) that proved too much: after an
/// out-of-memory retry the scheduler lowers it to what then ran, and every
/// scheduler made from a clone of the same [`BatchConfig`] starts below it.
/// A `run` over many samples (one engine per sample) thus pays for an
/// out-of-memory error once, not once per sample. Runtime state, not
/// configuration: never serialised, and equal to any other.
#[derive(Debug, Clone)]
pub struct LearnedBudget(Arc<AtomicUsize>);

impl Default for LearnedBudget {
    fn default() -> Self {
        Self(Arc::new(AtomicUsize::new(usize::MAX)))
    }
}

impl PartialEq for LearnedBudget {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl LearnedBudget {
    /// Bytes per forward known to fit after an out-of-memory error (`usize::MAX` = none yet).
    pub fn bytes(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    fn lower_to(&self, bytes: usize) {
        self.0.fetch_min(bytes.max(1), Ordering::Relaxed);
    }
}

/// Counters for reporting and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedulerStats {
    /// Coalition values asked for.
    pub requested: usize,
    /// Answered from the cross-call cache.
    pub cache_hits: usize,
    /// Answered by an identical coalition earlier in the same call.
    pub duplicates: usize,
    /// Coalitions actually run through the model.
    pub evaluated: usize,
    /// Forward passes (chunks) run, including failed ones.
    pub forwards: usize,
    /// Out-of-memory retries.
    pub oom_retries: usize,
}

/// Splits work into chunks of an adaptive batch size.
#[derive(Debug, Clone)]
pub struct Scheduler {
    cfg: BatchConfig,
    batch_size: usize,
    bytes_per_eval: usize,
    /// Test hook: chunks larger than this fail as if out of memory.
    simulated_memory_limit: Option<usize>,
    pub stats: SchedulerStats,
}

impl Scheduler {
    /// `bytes_per_eval`: the estimated activation memory of one evaluation.
    pub fn new(cfg: BatchConfig, bytes_per_eval: usize) -> Result<Self> {
        if cfg.max_batch == 0 {
            return Err(EngineError::Config("batch.max_batch must be >= 1".into()));
        }
        let batch_size = Self::fit(&cfg, bytes_per_eval);
        log::debug!("scheduler: {bytes_per_eval} bytes per evaluation -> batch size {batch_size}");
        Ok(Self {
            cfg,
            batch_size,
            bytes_per_eval: bytes_per_eval.max(1),
            simulated_memory_limit: None,
            stats: SchedulerStats::default(),
        })
    }

    /// `min(max_batch, budget / bytes_per_eval)`, the budget lowered to what
    /// an earlier out-of-memory error left ([`LearnedBudget`]); at least 1.
    fn fit(cfg: &BatchConfig, bytes_per_eval: usize) -> usize {
        let budget = cfg
            .memory_budget_mib
            .saturating_mul(1 << 20)
            .min(cfg.learned_budget.bytes());
        (budget / bytes_per_eval.max(1)).clamp(1, cfg.max_batch)
    }

    pub fn config(&self) -> &BatchConfig {
        &self.cfg
    }

    /// The current batch size (shrinks after out-of-memory errors).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Re-derive the batch size for a new per-evaluation estimate (never
    /// above a size that already failed).
    pub fn set_bytes_per_eval(&mut self, bytes_per_eval: usize) {
        self.bytes_per_eval = bytes_per_eval.max(1);
        let fit = Self::fit(&self.cfg, bytes_per_eval);
        self.batch_size = self.batch_size.min(fit).max(1);
    }

    /// Test hook (CPU has no OOM): chunks of more than `limit` rows fail with
    /// a CUDA-like out-of-memory error.
    pub fn simulate_memory_limit(&mut self, limit: Option<usize>) {
        self.simulated_memory_limit = limit;
    }

    /// Run `f` over `0..n` in chunks; on out-of-memory halve the batch size
    /// and retry the same chunk. Results are returned in order.
    pub fn run_chunks<T>(
        &mut self,
        n: usize,
        mut f: impl FnMut(Range<usize>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut start = 0;
        while start < n {
            let end = (start + self.batch_size).min(n);
            self.stats.forwards += 1;
            let res = match self.simulated_memory_limit {
                Some(lim) if end - start > lim => {
                    Err(EngineError::Candle(candle_core::Error::Msg(
                        "DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\") (simulated)"
                            .into(),
                    )))
                }
                _ => f(start..end),
            };
            match res {
                Ok(v) => {
                    out.push(v);
                    start = end;
                }
                Err(EngineError::Candle(e)) if is_oom(&e) => {
                    if end - start <= 1 {
                        return Err(EngineError::OutOfMemory(e.to_string()));
                    }
                    self.batch_size = ((end - start) / 2).max(1);
                    self.cfg
                        .learned_budget
                        .lower_to(self.batch_size.saturating_mul(self.bytes_per_eval));
                    self.stats.oom_retries += 1;
                    log::warn!(
                        "out of memory at batch {}, retrying at {}",
                        end - start,
                        self.batch_size
                    );
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

/// Coalition values of one sample kept across calls, keyed by the bitset
/// words; least-recently-used entries are evicted in bulk when full.
#[derive(Debug, Clone)]
pub struct ValueCache<V: Clone> {
    capacity: usize,
    tick: u64,
    map: HashMap<Box<[u64]>, (V, u64)>,
}

impl<V: Clone> ValueCache<V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            tick: 0,
            map: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }

    pub fn get(&mut self, key: &[u64]) -> Option<V> {
        self.tick += 1;
        let t = self.tick;
        self.map.get_mut(key).map(|(v, used)| {
            *used = t;
            v.clone()
        })
    }

    pub fn insert(&mut self, key: &[u64], value: V) {
        if self.capacity == 0 {
            return;
        }
        if self.map.len() >= self.capacity && !self.map.contains_key(key) {
            self.evict_oldest_half();
        }
        self.tick += 1;
        self.map.insert(key.into(), (value, self.tick));
    }

    fn evict_oldest_half(&mut self) {
        let mut ticks: Vec<u64> = self.map.values().map(|(_, t)| *t).collect();
        let mid = ticks.len() / 2;
        let (_, cut, _) = ticks.select_nth_unstable(mid);
        let cut = *cut;
        self.map.retain(|_, (_, t)| *t >= cut);
    }
}

/// The rows of a request that need the model: `unique[k]` is a row index of
/// the request, `slot[i]` says where row i's value comes from.
#[derive(Debug, Clone, Default)]
pub struct DedupPlan {
    pub unique: Vec<usize>,
    pub slot: Vec<Slot>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Slot {
    Cached(f32),
    Unique(usize),
}

/// Plan the evaluation of `n` rows given their bitset words: cache hits are
/// filled in, identical rows share one evaluation.
pub fn plan_dedup<'a>(
    n: usize,
    words: impl Fn(usize) -> &'a [u64],
    cache: &mut ValueCache<f32>,
    stats: &mut SchedulerStats,
) -> DedupPlan {
    let mut seen: HashMap<&'a [u64], usize> = HashMap::new();
    let mut plan = DedupPlan {
        unique: Vec::new(),
        slot: Vec::with_capacity(n),
    };
    for i in 0..n {
        let w = words(i);
        stats.requested += 1;
        if let Some(v) = cache.get(w) {
            stats.cache_hits += 1;
            plan.slot.push(Slot::Cached(v));
        } else if let Some(&k) = seen.get(w) {
            stats.duplicates += 1;
            plan.slot.push(Slot::Unique(k));
        } else {
            let k = plan.unique.len();
            seen.insert(w, k);
            plan.unique.push(i);
            plan.slot.push(Slot::Unique(k));
        }
    }
    plan
}

impl DedupPlan {
    /// Assemble the values of all rows and store the new ones in the cache.
    pub fn finish<'a>(
        &self,
        unique_values: &[f32],
        words: impl Fn(usize) -> &'a [u64],
        cache: &mut ValueCache<f32>,
    ) -> Vec<f32> {
        for (k, &row) in self.unique.iter().enumerate() {
            cache.insert(words(row), unique_values[k]);
        }
        self.slot
            .iter()
            .map(|s| match *s {
                Slot::Cached(v) => v,
                Slot::Unique(k) => unique_values[k],
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_size_follows_memory_budget() {
        let cfg = BatchConfig {
            max_batch: 256,
            memory_budget_mib: 64,
            cache_capacity: 10,
            ..BatchConfig::default()
        };
        assert_eq!(
            Scheduler::new(cfg.clone(), 1 << 20).unwrap().batch_size(),
            64
        );
        assert_eq!(Scheduler::new(cfg.clone(), 1).unwrap().batch_size(), 256);
        assert_eq!(
            Scheduler::new(cfg.clone(), 1 << 30).unwrap().batch_size(),
            1
        );
        assert!(Scheduler::new(
            BatchConfig {
                max_batch: 0,
                ..cfg
            },
            1
        )
        .is_err());
    }

    #[test]
    fn oom_halves_and_retries_in_order() {
        let mut s = Scheduler::new(
            BatchConfig {
                max_batch: 64,
                ..Default::default()
            },
            1,
        )
        .unwrap();
        s.simulate_memory_limit(Some(10));
        let chunks = s.run_chunks(100, |r| Ok(r.collect::<Vec<_>>())).unwrap();
        let flat: Vec<usize> = chunks.concat();
        assert_eq!(flat, (0..100).collect::<Vec<_>>());
        assert!(chunks.iter().all(|c| c.len() <= 10));
        assert_eq!(s.batch_size(), 8);
        assert_eq!(s.stats.oom_retries, 3); // 64 -> 32 -> 16 -> 8
        s.simulate_memory_limit(Some(0));
        assert!(matches!(
            s.run_chunks(3, |r| Ok(r.len())),
            Err(EngineError::OutOfMemory(_))
        ));
        // other errors are passed through without retry
        let mut s = Scheduler::new(BatchConfig::default(), 1).unwrap();
        let r: Result<Vec<()>> = s.run_chunks(5, |_| Err(EngineError::InvalidInput("x".into())));
        assert!(matches!(r, Err(EngineError::InvalidInput(_))));
        assert_eq!(s.stats.oom_retries, 0);
    }

    #[test]
    fn a_learned_budget_carries_over_to_schedulers_of_the_same_config() {
        let cfg = BatchConfig {
            max_batch: 64,
            ..Default::default()
        };
        let mut first = Scheduler::new(cfg.clone(), 1000).unwrap();
        first.simulate_memory_limit(Some(10));
        first.run_chunks(40, |r| Ok(r.len())).unwrap();
        assert_eq!(first.batch_size(), 10); // 40 -> 20 -> 10
        assert_eq!(cfg.learned_budget.bytes(), 10 * 1000);
        // a new scheduler (the next sample's engine) starts at the size that ran
        let mut second = Scheduler::new(cfg.clone(), 1000).unwrap();
        assert_eq!(second.batch_size(), 10);
        second.simulate_memory_limit(Some(10));
        second.run_chunks(40, |r| Ok(r.len())).unwrap();
        assert_eq!(second.stats.oom_retries, 0);
        // with twice the bytes per evaluation, half the rows
        assert_eq!(Scheduler::new(cfg.clone(), 2000).unwrap().batch_size(), 5);
        // a fresh configuration knows nothing of it, and serialises without it
        let fresh = BatchConfig {
            max_batch: 64,
            ..Default::default()
        };
        assert_eq!(Scheduler::new(fresh, 1000).unwrap().batch_size(), 64);
        let toml = toml::to_string(&cfg).unwrap();
        assert!(!toml.contains("learned"), "{toml}");
    }

    #[test]
    fn real_oom_messages_are_recognised() {
        let cuda = candle_core::Error::Msg(
            "DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")".into(),
        );
        assert!(is_oom(&cuda));
        assert!(!is_oom(&candle_core::Error::Msg("shape mismatch".into())));
    }

    #[test]
    fn dedup_and_cache() {
        let rows: Vec<Vec<u64>> = vec![vec![1], vec![2], vec![1], vec![3], vec![2]];
        let mut cache = ValueCache::new(100);
        let mut stats = SchedulerStats::default();
        let plan = plan_dedup(rows.len(), |i| &rows[i], &mut cache, &mut stats);
        assert_eq!(plan.unique, vec![0, 1, 3]);
        let vals = plan.finish(&[10.0, 20.0, 30.0], |i| &rows[i], &mut cache);
        assert_eq!(vals, vec![10.0, 20.0, 10.0, 30.0, 20.0]);
        assert_eq!(stats.duplicates, 2);
        let rows2: Vec<Vec<u64>> = vec![vec![3], vec![4]];
        let plan = plan_dedup(2, |i| &rows2[i], &mut cache, &mut stats);
        assert_eq!(plan.unique, vec![1]);
        assert_eq!(
            plan.finish(&[40.0], |i| &rows2[i], &mut cache),
            vec![30.0, 40.0]
        );
        assert_eq!(stats.cache_hits, 1);
    }

    #[test]
    fn cache_evicts_least_recently_used() {
        let mut c = ValueCache::new(4);
        for k in 0..4u64 {
            c.insert(&[k], k as f32);
        }
        c.get(&[0]);
        c.get(&[1]);
        c.insert(&[9], 9.0);
        assert!(c.len() <= 4);
        assert_eq!(c.get(&[0]), Some(0.0));
        assert_eq!(c.get(&[1]), Some(1.0));
        assert_eq!(c.get(&[9]), Some(9.0));
        assert_eq!(c.get(&[2]), None);
        let mut off = ValueCache::new(0);
        off.insert(&[1], 1.0);
        assert!(off.is_empty());
    }
}
