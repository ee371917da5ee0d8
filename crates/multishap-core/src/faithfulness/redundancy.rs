//! The redundancy gap of every cross-modal pair (patch i, token j), at the
//! full input (FL-I2MoE style).
//!
//! With the removal effects Δ_S = v(N) - v(N \ S):
//!
//!   R_ij = Δ_{ij} - (Δ_i + Δ_j)
//!        = v(N) - v(N\{i}) - v(N\{j}) + v(N\{i,j})   (with the sign flipped:)
//!        = -[v(N) - v(N\{i}) - v(N\{j}) + v(N\{i,j})].
//!
//! R_ij > 0: removing both costs more than the sum of removing each alone, so
//! each can stand in for the other (substitutes, *redundant*); R_ij < 0:
//! removing either alone already costs what the pair is worth (complements,
//! *synergy at the full input*). R_ij is minus the discrete interaction
//! D_ij(N\{i,j}) of the SII's top context; note that it is the negative of the
//! "sum of individual minus joint" form, chosen so that larger = more redundant.
//! Cost: 1 + d + m n evaluations.
use super::evaluate_coalitions;
use crate::{Coalition, Game, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedundancyGaps {
    pub image_players: usize,
    pub text_players: usize,
    pub full_value: f64,
    /// Δ_p = v(N) - v(N \ {p}) for every player p (image first).
    pub removal_effect: Vec<f64>,
    /// Δ_{ij}, row-major `[m][n]`.
    pub pair_removal_effect: Vec<f64>,
    /// R_ij = Δ_{ij} - Δ_i - Δ_j, row-major `[m][n]` (the SII layout).
    pub gap: Vec<f64>,
    pub evaluations: usize,
}

pub fn redundancy_gaps(game: &mut dyn Game) -> Result<RedundancyGaps> {
    let players = game.players();
    let (m, n, d) = (players.image, players.text, players.total());
    let full = Coalition::full(d);
    let mut cs = vec![full.clone()];
    cs.extend((0..d).map(|p| full.with(p, false)));
    for i in 0..m {
        for j in 0..n {
            cs.push(full.with(i, false).with(players.text_index(j), false));
        }
    }
    let v = evaluate_coalitions(game, &cs)?;
    let vn = v[0];
    let removal: Vec<f64> = (0..d).map(|p| vn - v[1 + p]).collect();
    let pair: Vec<f64> = (0..m * n).map(|k| vn - v[1 + d + k]).collect();
    let gap = (0..m * n)
        .map(|k| pair[k] - removal[k / n] - removal[m + k % n])
        .collect();
    Ok(RedundancyGaps {
        image_players: m,
        text_players: n,
        full_value: vn,
        removal_effect: removal,
        pair_removal_effect: pair,
        gap,
        evaluations: cs.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_games::FnGame;
    use super::*;
    use crate::Players;

    #[test]
    fn substitutes_and_complements_by_hand() {
        // patches 0, 1; tokens 2, 3. v = max(x0, x2) + x0 x3:
        // 0 and 2 substitute for each other, 0 and 3 complement each other.
        let mut g = FnGame::new(Players::new(2, 2), |c: &Coalition| {
            let has = |p| c.contains(p) as u8 as f64;
            has(0).max(has(2)) + has(0) * has(3)
        });
        let r = redundancy_gaps(&mut g).unwrap();
        assert_eq!(r.full_value, 2.0);
        assert_eq!(r.removal_effect, vec![1.0, 0.0, 0.0, 1.0]);
        // Δ_{0,2} = 2, Δ_{0,3} = 1, Δ_{1,2} = 0, Δ_{1,3} = 1
        assert_eq!(r.pair_removal_effect, vec![2.0, 1.0, 0.0, 1.0]);
        assert_eq!(r.gap, vec![1.0, -1.0, 0.0, 0.0]);
        assert_eq!(r.evaluations, 1 + 4 + 4);
    }
}
