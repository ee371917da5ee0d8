//! Granger-style modality influence (Rethinking-Explainability): ablate a
//! whole modality, see how the output moves and how the explanation of the
//! *other* modality moves.
//!
//! - `image_ablation_change = v(N) - v(T)` (T = all text players, image masked),
//!   `text_ablation_change = v(N) - v(I)`.
//! - Text explanation: first-order attributions of the text players in the
//!   sub-game with the whole image present, versus with the whole image masked
//!   ([`RestrictedGame`]); likewise for the image players with the text present
//!   versus masked. The shift is reported as the L2 distance, the L2 distance
//!   relative to the norm of the with-context explanation, and the cosine.
//!
//! The attribution method is a parameter (exact Shapley for small games,
//! [`super::permutation_shapley`] for model games).
use super::evaluate_coalitions;
use super::restricted::RestrictedGame;
use crate::{Coalition, ExactGame, Game, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplanationShift {
    /// Attributions with the other modality present.
    pub with_context: Vec<f64>,
    /// Attributions with the other modality masked.
    pub context_ablated: Vec<f64>,
    pub l2: f64,
    pub relative_l2: Option<f64>,
    pub cosine: Option<f64>,
}

impl ExplanationShift {
    pub fn new(with_context: Vec<f64>, context_ablated: Vec<f64>) -> Self {
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let l2 = with_context
            .iter()
            .zip(&context_ablated)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt();
        let (na, nb) = (norm(&with_context), norm(&context_ablated));
        let dot: f64 = with_context
            .iter()
            .zip(&context_ablated)
            .map(|(a, b)| a * b)
            .sum();
        Self {
            relative_l2: (na > 1e-12).then(|| l2 / na),
            cosine: (na > 1e-12 && nb > 1e-12).then(|| dot / (na * nb)),
            l2,
            with_context,
            context_ablated,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModalityInfluence {
    pub full_value: f64,
    /// v(I): text masked.
    pub image_only_value: f64,
    /// v(T): image masked.
    pub text_only_value: f64,
    pub empty_value: f64,
    /// v(N) - v(T).
    pub image_ablation_change: f64,
    /// v(N) - v(I).
    pub text_ablation_change: f64,
    /// How the text explanation moves when the image is ablated (None without text players).
    pub text_explanation: Option<ExplanationShift>,
    /// How the image explanation moves when the text is ablated.
    pub image_explanation: Option<ExplanationShift>,
}

/// Exact Shapley values by enumeration (d <= [`crate::MAX_EXACT_PLAYERS`]).
pub fn exact_shapley(game: &mut dyn Game) -> Result<Vec<f64>> {
    Ok(ExactGame::from_game(game)?.shapley())
}

pub fn modality_influence(
    game: &mut dyn Game,
    attribute: &mut dyn FnMut(&mut dyn Game) -> Result<Vec<f64>>,
) -> Result<ModalityInfluence> {
    let players = game.players();
    let d = players.total();
    let image: Vec<usize> = (0..players.image).collect();
    let text: Vec<usize> = (players.image..d).collect();
    let cs = [
        Coalition::full(d),
        Coalition::from_members(d, image.iter().copied()),
        Coalition::from_members(d, text.iter().copied()),
        Coalition::empty(d),
    ];
    let v = evaluate_coalitions(game, &cs)?;
    let mut shift = |free: &[usize], context: &[usize]| -> Result<Option<ExplanationShift>> {
        if free.is_empty() {
            return Ok(None);
        }
        let with = attribute(&mut RestrictedGame::new(game, free, context)?)?;
        let without = attribute(&mut RestrictedGame::new(game, free, &[])?)?;
        Ok(Some(ExplanationShift::new(with, without)))
    };
    let text_explanation = shift(&text, &image)?;
    let image_explanation = shift(&image, &text)?;
    Ok(ModalityInfluence {
        full_value: v[0],
        image_only_value: v[1],
        text_only_value: v[2],
        empty_value: v[3],
        image_ablation_change: v[0] - v[2],
        text_ablation_change: v[0] - v[1],
        text_explanation,
        image_explanation,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_games::FnGame;
    use super::*;
    use crate::Players;

    #[test]
    fn by_hand() {
        // v = 4 x0 x2 + x1 + 2 x3; patches 0, 1; tokens 2, 3
        let mut g = FnGame::new(Players::new(2, 2), |c: &Coalition| {
            let has = |p| c.contains(p) as u8 as f64;
            4.0 * has(0) * has(2) + has(1) + 2.0 * has(3)
        });
        let r = modality_influence(&mut g, &mut |g| exact_shapley(g)).unwrap();
        assert_eq!(
            (
                r.full_value,
                r.image_only_value,
                r.text_only_value,
                r.empty_value
            ),
            (7.0, 1.0, 2.0, 0.0)
        );
        assert_eq!(r.image_ablation_change, 5.0);
        assert_eq!(r.text_ablation_change, 6.0);
        // text game with the image present: 4 [2] + 1 + 2 [3] -> (4, 2); masked: 2 [3] -> (0, 2)
        let t = r.text_explanation.unwrap();
        assert_eq!(t.with_context, vec![4.0, 2.0]);
        assert_eq!(t.context_ablated, vec![0.0, 2.0]);
        assert!((t.l2 - 4.0).abs() < 1e-12);
        assert!((t.relative_l2.unwrap() - 4.0 / 20f64.sqrt()).abs() < 1e-12);
        assert!((t.cosine.unwrap() - 1.0 / 5f64.sqrt()).abs() < 1e-12);
        // image game with the text present: 4 [0] + [1] + 2 -> (4, 1); masked: [1] -> (0, 1)
        let i = r.image_explanation.unwrap();
        assert_eq!(i.with_context, vec![4.0, 1.0]);
        assert_eq!(i.context_ablated, vec![0.0, 1.0]);
    }
}
