//! Image players as a `rows x cols` grid of boxes over an `H x W` image.
use crate::{EngineError, Result};
use serde::{Deserialize, Serialize};

/// One image player's pixel box: rows `y0..y1`, columns `x0..x1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchBox {
    pub y0: usize,
    pub y1: usize,
    pub x0: usize,
    pub x1: usize,
}

/// A grid of `rows x cols` players over an `height x width` image, player
/// index `r * cols + c` (row-major). Box edges sit at `floor(r * H / rows)`,
/// so every pixel belongs to exactly one player, and a grid that divides the
/// model's patch grid groups whole patches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchGrid {
    pub rows: usize,
    pub cols: usize,
    pub height: usize,
    pub width: usize,
}

impl PatchGrid {
    pub fn new(rows: usize, cols: usize, height: usize, width: usize) -> Result<Self> {
        if rows == 0 || cols == 0 || rows > height || cols > width {
            return Err(EngineError::Config(format!(
                "patch grid {rows}x{cols} does not fit an image of {height}x{width} pixels"
            )));
        }
        Ok(Self {
            rows,
            cols,
            height,
            width,
        })
    }

    /// The model's own grid: one player per `patch x patch` patch.
    pub fn from_patch_size(patch: usize, height: usize, width: usize) -> Result<Self> {
        if patch == 0 || !height.is_multiple_of(patch) || !width.is_multiple_of(patch) {
            return Err(EngineError::InvalidInput(format!(
                "image {height}x{width} is not a multiple of the patch size {patch}"
            )));
        }
        Self::new(height / patch, width / patch, height, width)
    }

    pub fn num_players(&self) -> usize {
        self.rows * self.cols
    }

    fn edge(i: usize, n: usize, len: usize) -> usize {
        i * len / n
    }

    pub fn patch_box(&self, p: usize) -> PatchBox {
        let (r, c) = (p / self.cols, p % self.cols);
        PatchBox {
            y0: Self::edge(r, self.rows, self.height),
            y1: Self::edge(r + 1, self.rows, self.height),
            x0: Self::edge(c, self.cols, self.width),
            x1: Self::edge(c + 1, self.cols, self.width),
        }
    }

    pub fn boxes(&self) -> Vec<PatchBox> {
        (0..self.num_players()).map(|p| self.patch_box(p)).collect()
    }

    /// Player index of every pixel, row-major `[H * W]`.
    pub fn pixel_players(&self) -> Vec<u32> {
        let owner = |n: usize, len: usize| -> Vec<usize> {
            let mut v = vec![0; len];
            for i in 0..n {
                v[Self::edge(i, n, len)..Self::edge(i + 1, n, len)].fill(i);
            }
            v
        };
        let row_of = owner(self.rows, self.height);
        let col_of = owner(self.cols, self.width);
        let mut out = Vec::with_capacity(self.height * self.width);
        for &r in &row_of {
            out.extend(col_of.iter().map(|&c| (r * self.cols + c) as u32));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_players_agree_with_boxes() {
        for (rows, cols, h, w) in [
            (12, 12, 384, 384),
            (5, 3, 224, 224),
            (7, 7, 224, 224),
            (2, 3, 7, 10),
        ] {
            let g = PatchGrid::new(rows, cols, h, w).unwrap();
            let pix = g.pixel_players();
            let mut count = vec![0usize; g.num_players()];
            for (p, b) in g.boxes().iter().enumerate() {
                for y in b.y0..b.y1 {
                    for x in b.x0..b.x1 {
                        assert_eq!(pix[y * w + x] as usize, p);
                        count[p] += 1;
                    }
                }
            }
            assert_eq!(count.iter().sum::<usize>(), h * w);
        }
        let g = PatchGrid::from_patch_size(32, 384, 384).unwrap();
        assert_eq!((g.rows, g.cols), (12, 12));
        assert_eq!(
            g.patch_box(13),
            PatchBox {
                y0: 32,
                y1: 64,
                x0: 32,
                x1: 64
            }
        );
        // a 6x6 grid over ViLT's 12x12 groups 2x2 patches
        let g6 = PatchGrid::new(6, 6, 384, 384).unwrap();
        assert_eq!(
            g6.patch_box(0),
            PatchBox {
                y0: 0,
                y1: 64,
                x0: 0,
                x1: 64
            }
        );
        assert!(PatchGrid::from_patch_size(32, 100, 384).is_err());
        assert!(PatchGrid::new(0, 3, 10, 10).is_err());
    }
}
