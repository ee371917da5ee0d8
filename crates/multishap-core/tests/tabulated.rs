//! Tabulated games from .npy files and the `game` command's library side.
use multishap_core::npy::write_f64_vector;
use multishap_core::synthetic::RandomMlpGame;
use multishap_core::{
    exact::ExactGame, run_game_command, Error, GameCommand, Players, TabulatedGame,
};
use std::path::Path;

fn write_npy_raw(path: &Path, descr: &str, shape: &str, data: &[u8]) {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    std::fs::write(path, out).unwrap();
}

fn cmd(path: &Path, m: usize, n: usize, estimator: Option<&str>, exact: bool) -> GameCommand {
    GameCommand {
        values: path.to_path_buf(),
        image_players: m,
        text_players: n,
        estimator: estimator.map(str::to_string),
        budget: 200,
        seed: 3,
        exact,
    }
}

#[test]
fn game_command_exact_and_estimated() {
    let dir = tempfile::tempdir().unwrap();
    let players = Players::new(4, 2);
    let mut mlp = RandomMlpGame::new(players, 6, 9);
    let exact = ExactGame::from_game(&mut mlp).unwrap();
    let path = dir.path().join("v.npy");
    write_f64_vector(&path, exact.values()).unwrap();
    let out = run_game_command(&cmd(&path, 4, 2, None, true)).unwrap();
    assert_eq!(out.sii.len(), 4);
    assert_eq!(out.sii[0].len(), 2);
    assert!((out.sii[1][0] - exact.sii(1, 4)).abs() < 1e-12);
    assert_eq!(out.shapley.as_ref().unwrap().len(), 6);
    let json = serde_json::to_value(&out).unwrap();
    for key in [
        "sii",
        "stderr",
        "shapley",
        "evaluations",
        "seconds",
        "estimator",
        "budget",
        "seed",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    let est = run_game_command(&cmd(&path, 4, 2, Some("shared"), false)).unwrap();
    assert_eq!(est.estimator, "shared");
    assert!(est.evaluations <= 200);
    let def = run_game_command(&cmd(&path, 4, 2, None, false)).unwrap();
    assert_eq!(def.estimator, multishap_core::DEFAULT_ESTIMATOR);

    // float32 tables are accepted
    let f32_bytes: Vec<u8> = exact
        .values()
        .iter()
        .flat_map(|v| (*v as f32).to_le_bytes())
        .collect();
    let p32 = dir.path().join("v32.npy");
    write_npy_raw(&p32, "<f4", "(64,)", &f32_bytes);
    let g = TabulatedGame::from_npy(&p32, 4, 2).unwrap();
    assert!((g.values()[63] - exact.values()[63]).abs() < 1e-5);
}

#[test]
fn bad_npy_inputs_are_rejected_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.npy");
    write_f64_vector(&good, &vec![0.5; 64]).unwrap();
    // wrong player counts for the length
    let err = TabulatedGame::from_npy(&good, 3, 2).unwrap_err();
    assert!(
        matches!(err, Error::Npy { .. }) && err.to_string().contains("2^5"),
        "{err}"
    );
    // integer dtype
    let ints = dir.path().join("ints.npy");
    write_npy_raw(&ints, "<i8", "(64,)", &[0u8; 64 * 8]);
    let err = TabulatedGame::from_npy(&ints, 4, 2).unwrap_err();
    assert!(err.to_string().contains("dtype"), "{err}");
    // big-endian float
    let be = dir.path().join("be.npy");
    write_npy_raw(&be, ">f8", "(64,)", &[0u8; 64 * 8]);
    assert!(TabulatedGame::from_npy(&be, 4, 2)
        .unwrap_err()
        .to_string()
        .contains("dtype"));
    // 2-D array
    let two = dir.path().join("two.npy");
    write_npy_raw(&two, "<f8", "(8, 8)", &[0u8; 64 * 8]);
    assert!(TabulatedGame::from_npy(&two, 4, 2)
        .unwrap_err()
        .to_string()
        .contains("1-D"));
    // truncated data
    let short = dir.path().join("short.npy");
    write_npy_raw(&short, "<f8", "(64,)", &[0u8; 63 * 8]);
    assert!(TabulatedGame::from_npy(&short, 4, 2)
        .unwrap_err()
        .to_string()
        .contains("bytes"));
    // not a file / not npy
    assert!(TabulatedGame::from_npy(&dir.path().join("missing.npy"), 4, 2).is_err());
    let txt = dir.path().join("t.npy");
    std::fs::write(&txt, "hello").unwrap();
    assert!(TabulatedGame::from_npy(&txt, 4, 2)
        .unwrap_err()
        .to_string()
        .contains("magic"));
    // unknown estimator through the command
    let err = run_game_command(&cmd(&good, 4, 2, Some("bogus"), false)).unwrap_err();
    assert!(err.to_string().contains("unknown estimator"));
}
