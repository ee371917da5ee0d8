//! A sub-game: some players fixed present, some fixed absent, the rest free.
//! Its players are the free ones (image before text, in index order), so any
//! estimator or measure can run on, e.g., "the text players with the whole
//! image present" or "... with the image masked".
use crate::{Coalition, CoalitionBatch, Error, Game, Players, Result};
use candle_core::{Device, Tensor};

pub struct RestrictedGame<'g> {
    inner: &'g mut dyn Game,
    /// Free players in the inner numbering, image first.
    free: Vec<usize>,
    /// Players fixed present (inner numbering); the rest outside `free` are absent.
    fixed_present: Coalition,
    players: Players,
}

impl<'g> RestrictedGame<'g> {
    /// `free` and `fixed_present` must be disjoint; every other player is masked.
    pub fn new(inner: &'g mut dyn Game, free: &[usize], fixed_present: &[usize]) -> Result<Self> {
        let outer = inner.players();
        let d = outer.total();
        let mut free = free.to_vec();
        free.sort_unstable();
        free.dedup();
        if free.iter().chain(fixed_present).any(|&p| p >= d) {
            return Err(Error::InvalidInput(format!("player index beyond {d}")));
        }
        if fixed_present.iter().any(|p| free.contains(p)) {
            return Err(Error::InvalidInput(
                "a player cannot be both free and fixed".into(),
            ));
        }
        let image = free.iter().filter(|&&p| outer.is_image(p)).count();
        Ok(Self {
            players: Players::new(image, free.len() - image),
            fixed_present: Coalition::from_members(d, fixed_present.iter().copied()),
            free,
            inner,
        })
    }

    /// The inner coalition of a coalition over the free players.
    pub fn lift(&self, c: &Coalition) -> Coalition {
        let mut out = self.fixed_present.clone();
        for k in c.members() {
            out.insert(self.free[k]);
        }
        out
    }
}

impl Game for RestrictedGame<'_> {
    fn players(&self) -> Players {
        self.players
    }
    fn device(&self) -> &Device {
        self.inner.device()
    }
    fn evaluate(&mut self, batch: &CoalitionBatch) -> Result<Tensor> {
        let mut lifted =
            CoalitionBatch::with_capacity(self.fixed_present.num_players(), batch.len());
        for c in batch.iter() {
            lifted.push(&self.lift(&c));
        }
        self.inner.evaluate(&lifted)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_games::additive;
    use super::*;
    use crate::eval::evaluate_to_host;

    #[test]
    fn lifts_coalitions() {
        let mut g = additive(Players::new(2, 2), vec![1.0, 10.0, 100.0, 1000.0]);
        let mut r = RestrictedGame::new(&mut g, &[3, 2], &[1]).unwrap();
        assert_eq!(r.players(), Players::new(0, 2));
        let b = CoalitionBatch::from_iter([
            Coalition::empty(2),
            Coalition::from_members(2, [1]),
            Coalition::full(2),
        ]);
        assert_eq!(
            evaluate_to_host(&mut r, &b).unwrap(),
            vec![10.0, 1010.0, 1110.0]
        );
        assert!(RestrictedGame::new(&mut g, &[1], &[1]).is_err());
    }
}
