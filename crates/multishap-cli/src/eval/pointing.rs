//! Pointing game for `eval multi-scale`, reusing the demo crate's scorer
//! (`multishap_models::demo::pointing_game`).
//!
//! A manifest line may name a ground-truth region and a word:
//! `"pointing_mask": "mask.png"` (same size as the image, relative to the
//! manifest; a pixel belongs to the region when its luma is > 127) and
//! `"pointing_word": "circle"` (the first text player whose token equals it,
//! ignoring case and a leading `##`; without it the token-average map is used).
//! The patch with the largest value hits when at least [`MIN_COVERAGE`] of its
//! pixels (in original-image coordinates) lie in the region and the value is
//! positive.
use crate::errors::user;
use anyhow::Result;
use multishap_models::demo::{pointing_game, PatchBox, PointingOutcome, ShapeMask};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Share of a patch's pixels that must lie in the region for a hit.
pub const MIN_COVERAGE: f64 = 0.1;

/// The optional pointing target of one sample.
#[derive(Debug, Clone)]
pub struct PointingTarget {
    pub mask: PathBuf,
    pub word: Option<String>,
}

/// Reads `pointing_mask` / `pointing_word` of every manifest line, by id
/// (lines without a mask are left out).
pub fn read_targets(manifest: &Path) -> Result<HashMap<String, PointingTarget>> {
    let text = std::fs::read_to_string(manifest)
        .map_err(|e| user(format!("cannot read manifest {}: {e}", manifest.display())))?;
    let base = manifest.parent().unwrap_or(Path::new("."));
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue; // load_manifest reports malformed lines
        };
        let Some(mask) = v["pointing_mask"].as_str() else {
            continue;
        };
        let id = match &v["id"] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let p = PathBuf::from(mask);
        out.insert(
            id,
            PointingTarget {
                mask: if p.is_absolute() { p } else { base.join(p) },
                word: v["pointing_word"].as_str().map(str::to_string),
            },
        );
    }
    Ok(out)
}

/// Loads a region mask (luma > 127 = inside).
pub fn load_mask(path: &Path) -> Result<ShapeMask> {
    let img = image::open(path)
        .map_err(|e| user(format!("cannot load pointing mask {}: {e}", path.display())))?
        .to_luma8();
    Ok(ShapeMask {
        width: img.width(),
        height: img.height(),
        pixels: img.pixels().map(|p| p[0] > 127).collect(),
    })
}

/// Index of the text player named `word` (case-insensitive, `##` ignored).
pub fn find_word(tokens: &[String], word: &str) -> Option<usize> {
    let w = word.to_lowercase();
    tokens.iter().position(|t| {
        let t = t.to_lowercase();
        t.trim_start_matches("##").trim_end_matches("</w>") == w
    })
}

/// Original-image boxes `[x0, y0, x1, y1]` -> integer pixel boxes (rounded).
pub fn pixel_boxes(boxes: &[[f64; 4]]) -> Vec<PatchBox> {
    boxes
        .iter()
        .map(|b| PatchBox {
            x0: b[0].round() as u32,
            y0: b[1].round() as u32,
            x1: b[2].round() as u32,
            y1: b[3].round() as u32,
        })
        .collect()
}

/// One map (one value per box) scored against the region.
pub fn point(mask: &ShapeMask, boxes: &[[f64; 4]], values: &[f64]) -> Result<PointingOutcome> {
    pointing_game(mask, &pixel_boxes(boxes), values, 1, 0, MIN_COVERAGE)
        .map_err(|e| anyhow::anyhow!("pointing game: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_and_miss_by_hand() {
        // 4x4 image, region = the top-left 2x2 quarter
        let pixels = (0..16).map(|k| k % 4 < 2 && k / 4 < 2).collect();
        let mask = ShapeMask {
            width: 4,
            height: 4,
            pixels,
        };
        let boxes = [
            [0.0, 0.0, 2.0, 2.0],
            [2.0, 0.0, 4.0, 2.0],
            [0.0, 2.0, 4.0, 4.0],
        ];
        let hit = point(&mask, &boxes, &[0.9, 0.1, 0.3]).unwrap();
        assert!(hit.hit && hit.best_patch == 0 && hit.patch_coverage == 1.0);
        let miss = point(&mask, &boxes, &[0.1, 0.9, 0.3]).unwrap();
        assert!(!miss.hit && miss.best_patch == 1);
        // no positive value: a miss even on the region
        assert!(!point(&mask, &boxes, &[-0.1, -0.9, -0.3]).unwrap().hit);
        let toks: Vec<String> = ["a", "red", "##dish", "circle"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(find_word(&toks, "Circle"), Some(3));
        assert_eq!(find_word(&toks, "dish"), Some(2));
        assert_eq!(find_word(&toks, "square"), None);
    }

    #[test]
    fn targets_from_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("m.jsonl");
        std::fs::write(
            &m,
            "{\"id\": \"a\", \"image\": \"x.png\", \"text\": \"t\", \"pointing_mask\": \"ma.png\", \"pointing_word\": \"circle\"}\n\
             {\"id\": 7, \"image\": \"x.png\", \"text\": \"t\", \"pointing_mask\": \"/abs.png\"}\n\
             {\"id\": \"c\", \"image\": \"x.png\", \"text\": \"t\"}\n",
        )
        .unwrap();
        let t = read_targets(&m).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t["a"].mask, dir.path().join("ma.png"));
        assert_eq!(t["a"].word.as_deref(), Some("circle"));
        assert_eq!(t["7"].mask, PathBuf::from("/abs.png"));
    }
}
