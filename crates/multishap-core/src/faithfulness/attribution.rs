//! First-order Shapley values by permutation sampling, for games too large to
//! enumerate (the image players of a model game). Each permutation costs
//! d + 1 evaluations (its prefixes, all in one batch) and gives every player
//! one marginal contribution; additive games are recovered exactly by any
//! number of permutations.
use super::evaluate_coalitions;
use crate::sampling::rng_from_seed;
use crate::{Coalition, Error, Game, Result};
use rand::seq::SliceRandom;

pub fn permutation_shapley(
    game: &mut dyn Game,
    permutations: usize,
    seed: u64,
) -> Result<Vec<f64>> {
    let d = game.players().total();
    if permutations == 0 {
        return Err(Error::InvalidInput(
            "permutation_shapley needs at least one permutation".into(),
        ));
    }
    if d == 0 {
        return Ok(Vec::new());
    }
    let mut rng = rng_from_seed(seed);
    let mut orders = Vec::with_capacity(permutations);
    let mut cs = Vec::with_capacity(permutations * (d + 1));
    for _ in 0..permutations {
        let mut order: Vec<usize> = (0..d).collect();
        order.shuffle(&mut rng);
        let mut c = Coalition::empty(d);
        cs.push(c.clone());
        for &p in &order {
            c.insert(p);
            cs.push(c.clone());
        }
        orders.push(order);
    }
    let v = evaluate_coalitions(game, &cs)?;
    let mut phi = vec![0.0; d];
    for (q, order) in orders.iter().enumerate() {
        let base = q * (d + 1);
        for (t, &p) in order.iter().enumerate() {
            phi[p] += v[base + t + 1] - v[base + t];
        }
    }
    for x in &mut phi {
        *x /= permutations as f64;
    }
    Ok(phi)
}

#[cfg(test)]
mod tests {
    use super::super::test_games::{additive, FnGame};
    use super::*;
    use crate::{ExactGame, Players};

    #[test]
    fn additive_exact_and_interaction_converges() {
        let mut g = additive(Players::new(1, 2), vec![0.5, -1.0, 3.0]);
        assert_eq!(
            permutation_shapley(&mut g, 1, 9).unwrap(),
            vec![0.5, -1.0, 3.0]
        );
        // v = x0 x1: Shapley (0.5, 0.5, 0)
        let mut g = FnGame::new(Players::new(1, 2), |c: &Coalition| {
            (c.contains(0) && c.contains(1)) as u8 as f64
        });
        let phi = permutation_shapley(&mut g, 2000, 1).unwrap();
        let exact = ExactGame::from_game(&mut g).unwrap().shapley();
        for (a, b) in phi.iter().zip(&exact) {
            assert!((a - b).abs() < 0.05, "{phi:?} vs {exact:?}");
        }
    }
}
