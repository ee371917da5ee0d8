//! Deletion and insertion curves of first-order attributions (one value per
//! player, e.g. Shapley values).
//!
//! Within a [`Scope`] (all players, only patches, only tokens) the players are
//! ranked by attribution, largest first (ties: lower index first). At each
//! fraction f the top c(f) = round(f x |scope|) players are
//! - deleted: v(N \ top_c), players outside the scope stay present;
//! - inserted: v(outside ∪ top_c), i.e. the scope starts fully masked and
//!   players outside the scope stay present.
//!
//! A faithful attribution gives a deletion curve that falls fast (small area)
//! and an insertion curve that rises fast (large area). The areas are also
//! reported normalised as (area - v_low) / (v(N) - v_low), where v_low is the
//! value with the whole scope masked, when that denominator is non-zero.
use super::curve::Curve;
use super::{evaluate_coalitions, normalised};
use crate::{Coalition, Error, Game, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    All,
    Image,
    Text,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeletionInsertion {
    pub scope: Scope,
    /// Players ranked in the scope.
    pub scope_size: usize,
    /// Players removed / inserted at each fraction.
    pub counts: Vec<usize>,
    /// x = the requested fractions; y = the score.
    pub deletion: Curve,
    pub insertion: Curve,
    pub deletion_area: f64,
    pub insertion_area: f64,
    /// v(N).
    pub full_value: f64,
    /// v with the whole scope masked.
    pub scope_masked_value: f64,
    pub deletion_area_normalised: Option<f64>,
    pub insertion_area_normalised: Option<f64>,
    pub evaluations: usize,
}

fn scope_players(scope: Scope, image: usize, d: usize) -> Vec<usize> {
    match scope {
        Scope::All => (0..d).collect(),
        Scope::Image => (0..image).collect(),
        Scope::Text => (image..d).collect(),
    }
}

/// See the module docs. `fractions` must be increasing in [0, 1].
pub fn deletion_insertion(
    game: &mut dyn Game,
    attributions: &[f64],
    scope: Scope,
    fractions: &[f64],
) -> Result<DeletionInsertion> {
    let players = game.players();
    let d = players.total();
    if attributions.len() != d {
        return Err(Error::InvalidInput(format!(
            "{} attributions for {d} players",
            attributions.len()
        )));
    }
    if fractions.is_empty()
        || fractions.iter().any(|f| !(0.0..=1.0).contains(f))
        || fractions.windows(2).any(|w| w[1] < w[0])
    {
        return Err(Error::InvalidInput(
            "fractions must be a non-empty increasing list in [0, 1]".into(),
        ));
    }
    let mut ranked = scope_players(scope, players.image, d);
    let size = ranked.len();
    ranked.sort_by(|&a, &b| attributions[b].total_cmp(&attributions[a]).then(a.cmp(&b)));
    let counts: Vec<usize> = fractions
        .iter()
        .map(|f| ((f * size as f64).round() as usize).min(size))
        .collect();
    let mut outside = Coalition::full(d);
    for &p in &ranked {
        outside.remove(p);
    }
    let mut cs = vec![Coalition::full(d), outside.clone()];
    for &c in &counts {
        let mut del = Coalition::full(d);
        let mut ins = outside.clone();
        for &p in &ranked[..c] {
            del.remove(p);
            ins.insert(p);
        }
        cs.push(del);
        cs.push(ins);
    }
    let v = evaluate_coalitions(game, &cs)?;
    let (full, low) = (v[0], v[1]);
    let del: Vec<f64> = (0..counts.len()).map(|k| v[2 + 2 * k]).collect();
    let ins: Vec<f64> = (0..counts.len()).map(|k| v[3 + 2 * k]).collect();
    let deletion = Curve::new(fractions.to_vec(), del);
    let insertion = Curve::new(fractions.to_vec(), ins);
    let (da, ia) = (deletion.area(), insertion.area());
    let span = fractions[fractions.len() - 1] - fractions[0];
    let norm = |a: f64| normalised(a - low * span, full - low);
    Ok(DeletionInsertion {
        scope,
        scope_size: size,
        counts,
        deletion_area: da,
        insertion_area: ia,
        deletion_area_normalised: norm(da),
        insertion_area_normalised: norm(ia),
        deletion,
        insertion,
        full_value: full,
        scope_masked_value: low,
        evaluations: cs.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_games::additive;
    use super::*;
    use crate::Players;

    #[test]
    fn additive_game_by_hand() {
        // players 0,1 (image), 2,3 (text); weights 3, 1, 2, 0.5 -> v(N) = 6.5
        let w = vec![3.0, 1.0, 2.0, 0.5];
        let mut g = additive(Players::new(2, 2), w.clone());
        // the attributions of an additive game are its weights
        let r = deletion_insertion(&mut g, &w, Scope::All, &[0.0, 0.5, 1.0]).unwrap();
        assert_eq!(r.counts, vec![0, 2, 4]);
        // deletion: remove {0, 2} (top 2) -> 1.5, then all -> 0
        assert_eq!(r.deletion.y, vec![6.5, 1.5, 0.0]);
        // insertion: add {0, 2} -> 5, then all -> 6.5
        assert_eq!(r.insertion.y, vec![0.0, 5.0, 6.5]);
        // areas: 0.5 * (6.5 + 1.5) / 2 + 0.5 * 1.5 / 2 = 2 + 0.375
        assert!((r.deletion_area - 2.375).abs() < 1e-12);
        // 0.5 * 5 / 2 + 0.5 * 11.5 / 2 = 1.25 + 2.875
        assert!((r.insertion_area - 4.125).abs() < 1e-12);
        assert!((r.deletion_area_normalised.unwrap() - 2.375 / 6.5).abs() < 1e-12);

        // reversed attributions: the worst ordering gives a larger deletion area
        let neg: Vec<f64> = w.iter().map(|x| -x).collect();
        let bad = deletion_insertion(&mut g, &neg, Scope::All, &[0.0, 0.5, 1.0]).unwrap();
        assert!(bad.deletion_area > r.deletion_area);
        assert!(bad.insertion_area < r.insertion_area);
    }

    #[test]
    fn scope_keeps_the_other_modality() {
        let w = vec![3.0, 1.0, 2.0, 0.5];
        let mut g = additive(Players::new(2, 2), w.clone());
        let r = deletion_insertion(&mut g, &w, Scope::Text, &[0.0, 0.5, 1.0]).unwrap();
        assert_eq!(r.scope_size, 2);
        // text masked: image stays -> 4
        assert_eq!(r.scope_masked_value, 4.0);
        assert_eq!(r.deletion.y, vec![6.5, 4.5, 4.0]);
        assert_eq!(r.insertion.y, vec![4.0, 6.0, 6.5]);
        assert!(deletion_insertion(&mut g, &w[..3], Scope::All, &[0.0]).is_err());
        assert!(deletion_insertion(&mut g, &w, Scope::All, &[0.5, 0.2]).is_err());
    }
}
