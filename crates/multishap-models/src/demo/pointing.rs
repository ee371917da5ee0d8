//! Pointing game: does the patch with the largest synergy with a word lie on
//! the shape that word names?
//!
//! Input is the cross-modal SII grid in the layout of
//! `multishap_core::InteractionEstimate::sii` (row-major `[m][n]`, patch i and
//! text player j at `i * n + j`), the patch boxes in pixel coordinates of the
//! image the mask was drawn on, and the shape's exact per-pixel mask.

use super::scene::ShapeMask;

/// A patch's pixel box, `x0 <= x < x1`, `y0 <= y < y1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchBox {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
}

impl PatchBox {
    pub fn area(&self) -> usize {
        (self.x1.saturating_sub(self.x0) * self.y1.saturating_sub(self.y0)) as usize
    }

    /// Share of the box's pixels that belong to `mask` (0 for an empty box).
    pub fn coverage(&self, mask: &ShapeMask) -> f64 {
        mask.area_in_box(self.x0, self.y0, self.x1, self.y1) as f64 / self.area().max(1) as f64
    }
}

/// Row-major boxes of a regular `patch x patch` grid over a `width x height` image
/// (the ViLT / CLIP patch order).
pub fn patch_grid_boxes(width: u32, height: u32, patch: u32) -> Vec<PatchBox> {
    let (gw, gh) = (width / patch.max(1), height / patch.max(1));
    let mut v = Vec::with_capacity((gw * gh) as usize);
    for r in 0..gh {
        for c in 0..gw {
            v.push(PatchBox {
                x0: c * patch,
                y0: r * patch,
                x1: (c + 1) * patch,
                y1: (r + 1) * patch,
            });
        }
    }
    v
}

/// Errors of [`pointing_game`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PointingError {
    #[error("SII grid has {len} values, expected {patches} patches x {text} text players")]
    GridShape {
        len: usize,
        patches: usize,
        text: usize,
    },
    #[error("word index {word} out of range for {text} text players")]
    WordIndex { word: usize, text: usize },
    #[error("no patches")]
    NoPatches,
}

/// Outcome of one pointing-game query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointingOutcome {
    /// The patch with the largest SII with the word (first one on ties).
    pub best_patch: usize,
    pub best_value: f64,
    /// Share of that patch's pixels covered by the shape.
    pub patch_coverage: f64,
    /// Whether that patch lies on the shape: positive synergy and a coverage of
    /// at least `min_coverage`.
    pub hit: bool,
}

/// Score one query. A patch "lies on the shape" when at least `min_coverage` of
/// its pixels belong to the mask (use a small value such as 0.1: shapes are
/// not aligned with the grid). A maximum that is not positive (no synergy
/// found at all) counts as a miss.
pub fn pointing_game(
    mask: &ShapeMask,
    boxes: &[PatchBox],
    sii: &[f64],
    text_players: usize,
    word: usize,
    min_coverage: f64,
) -> Result<PointingOutcome, PointingError> {
    if boxes.is_empty() {
        return Err(PointingError::NoPatches);
    }
    if sii.len() != boxes.len() * text_players {
        return Err(PointingError::GridShape {
            len: sii.len(),
            patches: boxes.len(),
            text: text_players,
        });
    }
    if word >= text_players {
        return Err(PointingError::WordIndex {
            word,
            text: text_players,
        });
    }
    let mut best_patch = 0;
    let mut best_value = f64::NEG_INFINITY;
    for i in 0..boxes.len() {
        let v = sii[i * text_players + word];
        if v > best_value {
            best_value = v;
            best_patch = i;
        }
    }
    let patch_coverage = boxes[best_patch].coverage(mask);
    let hit = best_value > 0.0 && patch_coverage >= min_coverage && patch_coverage > 0.0;
    Ok(PointingOutcome {
        best_patch,
        best_value,
        patch_coverage,
        hit,
    })
}

/// Hit rate over many outcomes (0 for none).
pub fn hit_rate(outcomes: &[PointingOutcome]) -> f64 {
    if outcomes.is_empty() {
        return 0.0;
    }
    outcomes.iter().filter(|o| o.hit).count() as f64 / outcomes.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square_mask(n: u32, x0: u32, y0: u32, side: u32) -> ShapeMask {
        let mut pixels = vec![false; (n * n) as usize];
        for y in y0..y0 + side {
            for x in x0..x0 + side {
                pixels[(y * n + x) as usize] = true;
            }
        }
        ShapeMask {
            width: n,
            height: n,
            pixels,
        }
    }

    #[test]
    fn grid_boxes_are_row_major() {
        let b = patch_grid_boxes(96, 96, 16);
        assert_eq!(b.len(), 36);
        assert_eq!(
            b[1],
            PatchBox {
                x0: 16,
                y0: 0,
                x1: 32,
                y1: 16
            }
        );
        assert_eq!(
            b[6],
            PatchBox {
                x0: 0,
                y0: 16,
                x1: 16,
                y1: 32
            }
        );
        assert_eq!(b[35].x1, 96);
    }

    #[test]
    fn hit_when_the_max_patch_is_on_the_shape() {
        // Shape fills patch (row 2, col 3) = index 15 and part of index 16.
        let mask = square_mask(96, 48, 32, 20);
        let boxes = patch_grid_boxes(96, 96, 16);
        let n = 3;
        let mut sii = vec![0.01; 36 * n];
        sii[15 * n + 1] = 0.5; // word 1 points at patch 15
        sii[2] = 0.7; // word 2 points at patch 0 (background)
        let hit = pointing_game(&mask, &boxes, &sii, n, 1, 0.1).unwrap();
        assert_eq!(hit.best_patch, 15);
        assert!(hit.hit);
        assert!((hit.patch_coverage - 1.0).abs() < 1e-12);
        let miss = pointing_game(&mask, &boxes, &sii, n, 2, 0.1).unwrap();
        assert_eq!(miss.best_patch, 0);
        assert!(!miss.hit);
        // Patch 16 holds 4 of 16 columns = 25%: a hit at 0.1, a miss at 0.5.
        sii[16 * n] = 0.9;
        assert!(pointing_game(&mask, &boxes, &sii, n, 0, 0.1).unwrap().hit);
        assert!(!pointing_game(&mask, &boxes, &sii, n, 0, 0.5).unwrap().hit);
        assert_eq!(hit_rate(&[hit, miss]), 0.5);
    }

    #[test]
    fn non_positive_maximum_is_a_miss_and_shapes_are_checked() {
        let mask = square_mask(96, 0, 0, 96);
        let boxes = patch_grid_boxes(96, 96, 16);
        let sii = vec![-0.1; 36 * 2];
        assert!(!pointing_game(&mask, &boxes, &sii, 2, 0, 0.1).unwrap().hit);
        assert!(matches!(
            pointing_game(&mask, &boxes, &sii, 3, 0, 0.1),
            Err(PointingError::GridShape { .. })
        ));
        assert!(matches!(
            pointing_game(&mask, &boxes, &sii, 2, 2, 0.1),
            Err(PointingError::WordIndex { .. })
        ));
    }
}
