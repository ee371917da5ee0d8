//! Faithfulness measures (multishap_core::faithfulness) against values
//! computed by hand: closed forms on a Moebius game too large to enumerate,
//! and single-coalition model calls on the tiny ViLT / CLIP fixture games.
use candle_core::DType;
use multishap::core::faithfulness as fm;
use multishap::core::{Coalition, CoalitionBatch, Game, MoebiusGame, Players};
use multishap::engine::{ClipRetrievalGame, EngineConfig, GridSize, ViltVqaGame};

mod common;
use common::{image, load};

fn value(game: &mut dyn Game, c: &Coalition) -> f64 {
    let mut b = CoalitionBatch::new(c.num_players());
    b.push(c);
    game.evaluate(&b)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()[0]
}

fn without(d: usize, gone: &[usize]) -> Coalition {
    let mut c = Coalition::full(d);
    for &p in gone {
        c.remove(p);
    }
    c
}

/// For v(S) = sum_{T ⊆ S} m(T): v(N \ S) = sum of m(T) over T disjoint from S,
/// so the redundancy gap is R_ij = -sum_{T ⊇ {i,j}} m(T), and for a game with
/// terms of order <= 2 this is -SII_ij. d = 40: no enumeration possible.
#[test]
fn moebius_game_closed_forms_at_d_40() {
    let players = Players::new(30, 10);
    let d = players.total();
    let mut terms: Vec<(Coalition, f64)> = (0..d)
        .map(|p| (Coalition::from_members(d, [p]), 0.1 * p as f64))
        .collect();
    terms.push((Coalition::from_members(d, [3, 31]), 2.0)); // synergy, patch 3 x token 1
    terms.push((Coalition::from_members(d, [5, 30]), -1.5)); // substitutes, patch 5 x token 0
    terms.push((Coalition::from_members(d, [3, 5, 31]), 0.6)); // order 3
    let mut g = MoebiusGame::new(players, terms.clone()).unwrap();
    let gaps = fm::redundancy_gaps(&mut g).unwrap();
    let sum_containing = |a: usize, b: usize| -> f64 {
        terms
            .iter()
            .filter(|(t, _)| t.contains(a) && t.contains(b))
            .map(|(_, m)| m)
            .sum()
    };
    for i in 0..30 {
        for j in 0..10 {
            let want = -sum_containing(i, 30 + j);
            assert!((gaps.gap[i * 10 + j] - want).abs() < 1e-9, "pair ({i},{j})");
        }
    }
    assert!((gaps.gap[3 * 10 + 1] + 2.6).abs() < 1e-9);
    assert!((gaps.gap[5 * 10] - 1.5).abs() < 1e-9);
    // removal effect of player p: sum of m(T) over T containing p
    assert!((gaps.removal_effect[3] - (0.3 + 2.0 + 0.6)).abs() < 1e-9);

    // pair masking of the SII ranking: top pair (3, 1) has SII 2 + 0.6 / 2 = 2.3
    let sii = g.sii_cross();
    let ranking = fm::rank_pairs_desc(&sii, 30, 10).unwrap();
    assert_eq!(ranking[0], (3, 1));
    let cfg = fm::PairMaskingConfig {
        max_pairs: 2,
        random_repeats: 2,
        seed: 0,
    };
    let r = fm::pair_masking(&mut g, &[("sii".into(), ranking.clone())], &cfg).unwrap();
    // k = 1 removes 3 and 31: every term touching them: 0.3 + 3.1 + 2.0 + 0.6
    let drop1 = 0.3 + 3.1 + 2.0 + 0.6;
    assert!((r.rankings[0].drop.y[1] - drop1).abs() < 1e-9);
    let second = ranking[1];
    let v2 = g.value(&fm::pair_removal_coalition(players, &ranking[..2]));
    assert!(
        (r.rankings[0].values[2] - v2).abs() < 1e-12,
        "second pair {second:?}"
    );

    // deletion of all players ends at v(empty) = 0; insertion starts there
    let phi = g.shapley();
    let di = fm::deletion_insertion(&mut g, &phi, fm::Scope::All, &[0.0, 1.0]).unwrap();
    assert_eq!(di.deletion.y[1], 0.0);
    assert_eq!(di.insertion.y[0], 0.0);
    assert!((di.deletion.y[0] - g.value(&Coalition::full(d))).abs() < 1e-9);
}

#[test]
fn vilt_game_measures_equal_single_model_calls() {
    let model = load("vilt-vqa-tiny");
    let img = image("chelsea.png");
    let mut cfg = EngineConfig::default();
    cfg.masking.image.grid = Some(GridSize { rows: 2, cols: 2 });
    let mut game = ViltVqaGame::new(&model, &img, "how many cats are there?", &cfg).unwrap();
    let players = game.players();
    let (m, d) = (players.image, players.total());
    assert_eq!(m, 4);
    let full = value(&mut game, &Coalition::full(d));

    // redundancy gap of (patch 1, token 0) from four single calls
    let (i, j) = (1, players.text_index(0));
    let hand = -(full - value(&mut game, &without(d, &[i])) - value(&mut game, &without(d, &[j]))
        + value(&mut game, &without(d, &[i, j])));
    let gaps = fm::redundancy_gaps(&mut game).unwrap();
    assert!(
        (gaps.gap[players.text] - hand).abs() < 1e-5,
        "{} vs {hand}",
        gaps.gap[players.text]
    );

    // pair masking with the ranking (1,0), (2,1): values are single calls
    let ranking = vec![(1, 0), (2, 1)];
    let cfg_pm = fm::PairMaskingConfig {
        max_pairs: 2,
        random_repeats: 1,
        seed: 4,
    };
    let r = fm::pair_masking(&mut game, &[("hand".into(), ranking)], &cfg_pm).unwrap();
    let v2 = value(&mut game, &without(d, &[1, j, 2, players.text_index(1)]));
    assert!((r.rankings[0].values[2] - v2).abs() < 1e-5);
    assert!((r.full_value - full).abs() < 1e-5);

    // sufficiency of E = N: keep-only is v(N), removing it gives v(empty)
    let s = fm::sufficiency_necessity(&mut game, &Coalition::full(d)).unwrap();
    let empty = value(&mut game, &Coalition::empty(d));
    assert!(s.sufficiency_gap.abs() < 1e-5);
    assert!((s.necessity - (full - empty)).abs() < 1e-5);

    // modality: v(image only) and v(text only) are single calls
    let mi = fm::modality_influence(&mut game, &mut |g| fm::exact_shapley(g)).unwrap();
    let img_only = value(&mut game, &Coalition::from_members(d, 0..m));
    let txt_only = value(&mut game, &Coalition::from_members(d, m..d));
    assert!((mi.image_only_value - img_only).abs() < 1e-5);
    assert!((mi.image_ablation_change - (full - txt_only)).abs() < 1e-5);
    // efficiency: the text players' Shapley values with the image present sum
    // to v(N) - v(image only)
    let t = mi.text_explanation.unwrap();
    assert!((t.with_context.iter().sum::<f64>() - (full - img_only)).abs() < 1e-4);
}

#[test]
fn clip_game_deletion_curve_ends_where_the_scope_is_masked() {
    let model = load("clip-tiny-a");
    let img = image("coffee_portrait.png");
    let mut cfg = EngineConfig::default();
    cfg.masking.image.grid = Some(GridSize { rows: 2, cols: 2 });
    let mut game = ClipRetrievalGame::new(&model, &img, "a cup of coffee", &cfg).unwrap();
    let players = game.players();
    let d = players.total();
    let attr: Vec<f64> = (0..d).map(|p| (p * 7 % 5) as f64).collect();
    let r = fm::deletion_insertion(&mut game, &attr, fm::Scope::Image, &[0.0, 0.5, 1.0]).unwrap();
    let text_only = value(&mut game, &Coalition::from_members(d, players.image..d));
    assert!((r.deletion.y[2] - text_only).abs() < 1e-5);
    assert!((r.insertion.y[0] - text_only).abs() < 1e-5);
    // half the patches (2 of 4) by attribution: patch attributions 0, 2, 4, 1 -> top 2 and 1
    let v = value(&mut game, &without(d, &[2, 1]));
    assert!((r.deletion.y[1] - v).abs() < 1e-5);
}
