//! Sufficiency and necessity of an explanation E (a set of players):
//! - keep only E: v(E); sufficiency gap = v(N) - v(E) (0 = E alone explains
//!   the score);
//! - remove E: v(N \ E); necessity = v(N) - v(N \ E) (large = the score
//!   needs E).
//!
//! Both are also given relative to v(N) - v(∅) when that is non-zero.
use super::{evaluate_coalitions, normalised};
use crate::{Coalition, Error, Game, Players, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SufficiencyNecessity {
    pub explanation_size: usize,
    pub explanation_image: usize,
    pub explanation_text: usize,
    pub full_value: f64,
    pub empty_value: f64,
    /// v(E).
    pub keep_only_value: f64,
    /// v(N \ E).
    pub remove_value: f64,
    /// v(N) - v(E).
    pub sufficiency_gap: f64,
    /// v(N) - v(N \ E).
    pub necessity: f64,
    pub sufficiency_gap_normalised: Option<f64>,
    pub necessity_normalised: Option<f64>,
}

/// The `k` players with the largest attribution (ties: lower index first).
pub fn top_players(attributions: &[f64], k: usize) -> Coalition {
    let d = attributions.len();
    let mut idx: Vec<usize> = (0..d).collect();
    idx.sort_by(|&a, &b| attributions[b].total_cmp(&attributions[a]).then(a.cmp(&b)));
    Coalition::from_members(d, idx.into_iter().take(k))
}

/// Both players of every pair (patch i, token j).
pub fn players_of_pairs(players: Players, pairs: &[(usize, usize)]) -> Coalition {
    Coalition::from_members(
        players.total(),
        pairs.iter().flat_map(|&(i, j)| [i, players.text_index(j)]),
    )
}

pub fn sufficiency_necessity(
    game: &mut dyn Game,
    explanation: &Coalition,
) -> Result<SufficiencyNecessity> {
    let players = game.players();
    let d = players.total();
    if explanation.num_players() != d {
        return Err(Error::InvalidInput(format!(
            "explanation over {} players in a game over {d}",
            explanation.num_players()
        )));
    }
    let mut complement = Coalition::full(d);
    for p in explanation.members() {
        complement.remove(p);
    }
    let cs = [
        Coalition::full(d),
        Coalition::empty(d),
        explanation.clone(),
        complement,
    ];
    let v = evaluate_coalitions(game, &cs)?;
    let (full, empty, keep, remove) = (v[0], v[1], v[2], v[3]);
    let image = explanation
        .members()
        .filter(|&p| players.is_image(p))
        .count();
    let span = full - empty;
    Ok(SufficiencyNecessity {
        explanation_size: explanation.len(),
        explanation_image: image,
        explanation_text: explanation.len() - image,
        full_value: full,
        empty_value: empty,
        keep_only_value: keep,
        remove_value: remove,
        sufficiency_gap: full - keep,
        necessity: full - remove,
        sufficiency_gap_normalised: normalised(full - keep, span),
        necessity_normalised: normalised(full - remove, span),
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_games::FnGame;
    use super::*;

    #[test]
    fn product_game_by_hand() {
        // v(S) = 1 + 2 [0 in S] [2 in S] + 0.5 [1 in S] over 2 patches + 1 token
        let mut g = FnGame::new(Players::new(2, 1), |c: &Coalition| {
            let has = |p| c.contains(p) as u8 as f64;
            1.0 + 2.0 * has(0) * has(2) + 0.5 * has(1)
        });
        let e = players_of_pairs(Players::new(2, 1), &[(0, 0)]);
        assert_eq!(e.members().collect::<Vec<_>>(), vec![0, 2]);
        let r = sufficiency_necessity(&mut g, &e).unwrap();
        assert_eq!((r.full_value, r.empty_value), (3.5, 1.0));
        assert_eq!(r.keep_only_value, 3.0);
        assert_eq!(r.remove_value, 1.5);
        assert_eq!(r.sufficiency_gap, 0.5);
        assert_eq!(r.necessity, 2.0);
        assert_eq!(r.necessity_normalised, Some(2.0 / 2.5));
        assert_eq!((r.explanation_image, r.explanation_text), (1, 1));
        let top = top_players(&[0.1, 0.7, 0.7], 2);
        assert_eq!(top.members().collect::<Vec<_>>(), vec![1, 2]);
    }
}
