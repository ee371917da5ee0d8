//! Packing several samples' coalitions into shared forward passes while each
//! sample's estimator runs unchanged.
//!
//! The estimators ask a [`Game`] for values and block until they come back;
//! they do not expose their coalitions ahead of time. To pack samples anyway,
//! each sample's estimator runs on its own thread and evaluates through a
//! [`Seat`] of one [`Packer`]. A seat's request waits until every seated
//! sample has a request pending (or has left); the last one to arrive runs all
//! of them as one [`Engine::evaluate_many`] call, so the scheduler fills its
//! batches with coalitions of several samples, and hands each thread its own
//! values. This is the batching queue of inference servers (a request waits
//! for its batch), with the batch closed by "everyone asked" instead of a
//! timer, so no thread waits longer than the slowest estimator step.
//!
//! Values do not depend on how coalitions are packed beyond float rounding of
//! the forward pass (the engine tests hold batch-size changes to 1e-5). If a
//! packed call fails, each request is retried alone so that an error reaches
//! only the sample that caused it.
use crate::engine::{Engine, RowModel};
use crate::{EngineError, Result};
use candle_core::{Device, Tensor};
use multishap_core::{CoalitionBatch, Game, Players};
use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};

/// Counters of a packer, for reporting and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackingStats {
    /// Packed calls into the engine.
    pub dispatches: usize,
    /// Requests served (one per `Game::evaluate` call of a seat).
    pub requests: usize,
    /// Largest number of samples' requests in one packed call.
    pub max_samples_per_dispatch: usize,
    /// Packed calls that failed and were retried one request at a time.
    pub split_retries: usize,
}

struct Request {
    ticket: u64,
    sample: usize,
    batch: CoalitionBatch,
}

struct State<M: RowModel> {
    engine: Engine<M>,
    /// Seats not yet dropped (entered or not).
    seated: usize,
    pending: Vec<Request>,
    done: HashMap<u64, Result<Tensor>>,
    next_ticket: u64,
    stats: PackingStats,
}

/// Shares one [`Engine`] between the threads of several samples.
pub struct Packer<M: RowModel> {
    state: Mutex<State<M>>,
    ready: Condvar,
    device: Device,
}

impl<M: RowModel> Packer<M> {
    /// A packer over `engine` (its samples, caches and scheduler are kept).
    pub fn new(engine: Engine<M>) -> Self {
        let device = engine.model().device().clone();
        Self {
            state: Mutex::new(State {
                engine,
                seated: 0,
                pending: Vec::new(),
                done: HashMap::new(),
                next_ticket: 0,
                stats: PackingStats::default(),
            }),
            ready: Condvar::new(),
            device,
        }
    }

    /// `n` seats, one per sample thread. Take every seat before starting the
    /// threads: a request waits for all seats that are neither pending nor
    /// dropped, so a seat handed out late would not be waited for.
    pub fn seats(&self, n: usize) -> Vec<Seat<'_, M>> {
        self.lock().seated += n;
        (0..n)
            .map(|_| Seat {
                packer: self,
                entered: None,
            })
            .collect()
    }

    pub fn stats(&self) -> PackingStats {
        self.lock().stats
    }

    /// The engine back (after every seat is dropped), e.g. to reuse its
    /// scheduler for the next group of samples.
    pub fn into_engine(self) -> Engine<M> {
        self.state
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .engine
    }

    fn lock(&self) -> MutexGuard<'_, State<M>> {
        // A panic on another sample's thread must not take this one down with
        // a poisoned lock: the state is consistent between calls.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs every pending request if all seated samples have one pending.
    fn dispatch_if_complete(&self, st: &mut State<M>) {
        if st.pending.is_empty() || st.pending.len() < st.seated {
            return;
        }
        let pending = std::mem::take(&mut st.pending);
        st.stats.dispatches += 1;
        st.stats.requests += pending.len();
        // a seat holds one sample and waits for its request's values, so
        // pending requests belong to distinct samples
        st.stats.max_samples_per_dispatch = st.stats.max_samples_per_dispatch.max(pending.len());
        let requests: Vec<(usize, &CoalitionBatch)> =
            pending.iter().map(|r| (r.sample, &r.batch)).collect();
        match st.engine.evaluate_many(&requests) {
            Ok(values) => {
                for (r, v) in pending.iter().zip(values) {
                    st.done.insert(r.ticket, Ok(v));
                }
            }
            Err(_) if pending.len() > 1 => {
                st.stats.split_retries += 1;
                for r in &pending {
                    let v = st.engine.evaluate(r.sample, &r.batch);
                    st.done.insert(r.ticket, v);
                }
            }
            Err(e) => {
                st.done.insert(pending[0].ticket, Err(e));
            }
        }
        self.ready.notify_all();
    }
}

/// One sample's place in a [`Packer`]: enter it with the sample, then use it
/// as that sample's [`Game`]. Dropping it (finished, failed or never entered)
/// lets the other samples' requests go ahead without it.
pub struct Seat<'p, M: RowModel> {
    packer: &'p Packer<M>,
    entered: Option<(usize, Players)>,
}

impl<M: RowModel> Seat<'_, M> {
    /// Adds the sample to the shared engine; returns its engine index.
    pub fn enter(&mut self, sample: M::Sample) -> Result<usize> {
        if self.entered.is_some() {
            return Err(EngineError::InvalidInput(
                "this seat already holds a sample".into(),
            ));
        }
        let mut st = self.packer.lock();
        let players = st.engine.model().players(&sample);
        let i = st.engine.add_sample(sample);
        self.entered = Some((i, players));
        Ok(i)
    }

    /// Values of `batch` for this seat's sample, packed with the other seats'.
    pub fn evaluate_packed(&self, batch: &CoalitionBatch) -> Result<Tensor> {
        let Some((sample, _)) = self.entered else {
            return Err(EngineError::InvalidInput(
                "evaluate on a seat without a sample".into(),
            ));
        };
        let mut st = self.packer.lock();
        let ticket = st.next_ticket;
        st.next_ticket += 1;
        st.pending.push(Request {
            ticket,
            sample,
            batch: batch.clone(),
        });
        self.packer.dispatch_if_complete(&mut st);
        loop {
            if let Some(v) = st.done.remove(&ticket) {
                return v;
            }
            st = self
                .packer
                .ready
                .wait(st)
                .unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl<M: RowModel> Drop for Seat<'_, M> {
    fn drop(&mut self) {
        let mut st = self.packer.lock();
        st.seated -= 1;
        self.packer.dispatch_if_complete(&mut st);
    }
}

impl<M: RowModel> Game for Seat<'_, M> {
    fn players(&self) -> Players {
        self.entered
            .map(|(_, p)| p)
            .unwrap_or_else(|| Players::new(0, 0))
    }

    fn device(&self) -> &Device {
        &self.packer.device
    }

    fn evaluate(&mut self, batch: &CoalitionBatch) -> multishap_core::Result<Tensor> {
        Ok(self.evaluate_packed(batch)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BatchConfig;
    use crate::engine::tests::{fake, random_coalitions};

    fn values(
        e: &mut Engine<crate::engine::tests::FakeModel>,
        s: usize,
        b: &CoalitionBatch,
    ) -> Vec<f32> {
        e.evaluate(s, b).unwrap().to_vec1().unwrap()
    }

    #[test]
    fn packed_values_equal_one_sample_at_a_time_and_share_forwards() {
        let players = Players::new(4, 3);
        let cfg = BatchConfig {
            max_batch: 64,
            cache_capacity: 0,
            ..Default::default()
        };
        let n = 4;
        // per sample: two calls of different sizes, as an estimator that
        // first scores the full / empty input and then its draws
        let calls: Vec<Vec<CoalitionBatch>> = (0..n)
            .map(|s| {
                vec![
                    random_coalitions(7, 2, 100 + s as u64),
                    random_coalitions(7, 20 + 7 * s, 200 + s as u64),
                ]
            })
            .collect();

        // reference: each sample alone
        let mut alone = Engine::new(fake(n, players), cfg.clone()).unwrap();
        let expected: Vec<Vec<Vec<f32>>> = (0..n)
            .map(|s| {
                let i = alone.add_sample(s);
                calls[s].iter().map(|b| values(&mut alone, i, b)).collect()
            })
            .collect();
        let forwards_alone = alone.model().forwards.get();

        let packer = Packer::new(Engine::new(fake(n, players), cfg).unwrap());
        let got: Vec<Vec<Vec<f32>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = packer
                .seats(n)
                .into_iter()
                .enumerate()
                .map(|(s, mut seat)| {
                    let calls = &calls[s];
                    scope.spawn(move || {
                        seat.enter(s).unwrap();
                        assert_eq!(seat.players(), players);
                        calls
                            .iter()
                            .map(|b| seat.evaluate(b).unwrap().to_vec1::<f32>().unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(got, expected);
        let stats = packer.stats();
        assert_eq!(stats.requests, 2 * n);
        assert_eq!(
            stats.dispatches, 2,
            "every sample's k-th call in one packed call"
        );
        assert_eq!(stats.max_samples_per_dispatch, n);
        let engine = packer.into_engine();
        // alone: at least one forward per call; packed: the first calls fit
        // one forward, the second calls ceil(rows / 64) (fewer on duplicates)
        assert_eq!(forwards_alone, 2 * n);
        let second: usize = calls.iter().map(|c| c[1].len()).sum();
        assert!(engine.model().forwards.get() <= 1 + second.div_ceil(64));
    }

    #[test]
    fn a_sample_that_leaves_early_or_never_enters_does_not_block_the_others() {
        let players = Players::new(3, 2);
        let packer = Packer::new(Engine::new(fake(3, players), BatchConfig::default()).unwrap());
        let b = random_coalitions(5, 10, 1);
        let out: Vec<Option<Vec<f32>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = packer
                .seats(3)
                .into_iter()
                .enumerate()
                .map(|(s, mut seat)| {
                    let b = &b;
                    scope.spawn(move || match s {
                        0 => None, // fails before entering: the seat is dropped
                        1 => {
                            seat.enter(1).unwrap();
                            let v = seat.evaluate(b).unwrap().to_vec1().unwrap();
                            Some(v) // one call, then leaves
                        }
                        _ => {
                            seat.enter(2).unwrap();
                            seat.evaluate(b).unwrap();
                            Some(
                                seat.evaluate(&random_coalitions(5, 3, 2))
                                    .unwrap()
                                    .to_vec1()
                                    .unwrap(),
                            )
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(out[0].is_none());
        assert_eq!(out[1].as_ref().map(Vec::len), Some(10));
        assert_eq!(out[2].as_ref().map(Vec::len), Some(3));
    }

    #[test]
    fn an_invalid_request_fails_only_its_own_sample() {
        let players = Players::new(3, 2);
        let packer = Packer::new(Engine::new(fake(2, players), BatchConfig::default()).unwrap());
        let good = random_coalitions(5, 6, 3);
        let bad = random_coalitions(4, 6, 3); // wrong number of players
        let results: Vec<bool> = std::thread::scope(|scope| {
            let handles: Vec<_> = packer
                .seats(2)
                .into_iter()
                .enumerate()
                .map(|(s, mut seat)| {
                    let batch = if s == 0 { &good } else { &bad };
                    scope.spawn(move || {
                        seat.enter(s).unwrap();
                        seat.evaluate_packed(batch).is_ok()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results, vec![true, false]);
        assert_eq!(packer.stats().split_retries, 1);
    }
}
