//! Masked images built on the device from a `[B, m]` coalition tensor:
//! `keep[B, m] -> index_select(pixel -> player) -> [B, 1, H, W]`, then
//! `where(keep, pixels, baseline)`. No per-coalition host loop.
use crate::config::Baseline;
use crate::grid::PatchGrid;
use crate::{EngineError, Result};
use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

/// One preprocessed image `[C, H, W]`, its baseline and its player grid.
#[derive(Debug, Clone)]
pub struct ImageMasker {
    grid: PatchGrid,
    pixels: Tensor,
    baseline: Tensor,
    /// Player of each pixel, `[H * W]` u32.
    pixel_players: Tensor,
}

impl ImageMasker {
    /// `pixels`: `[C, H, W]` f32 in the model's normalised space.
    pub fn new(pixels: &Tensor, grid: PatchGrid, baseline: &Baseline) -> Result<Self> {
        let (_c, h, w) = pixels.dims3()?;
        if (h, w) != (grid.height, grid.width) {
            return Err(EngineError::InvalidInput(format!(
                "image is {h}x{w} but the grid covers {}x{}",
                grid.height, grid.width
            )));
        }
        let device = pixels.device();
        let pixels = pixels.to_dtype(DType::F32)?.contiguous()?;
        let baseline = make_baseline(&pixels, baseline)?;
        let pixel_players = Tensor::from_vec(grid.pixel_players(), h * w, device)?;
        Ok(Self {
            grid,
            pixels,
            baseline,
            pixel_players,
        })
    }

    pub fn grid(&self) -> &PatchGrid {
        &self.grid
    }

    pub fn num_players(&self) -> usize {
        self.grid.num_players()
    }

    pub fn pixels(&self) -> &Tensor {
        &self.pixels
    }

    pub fn baseline(&self) -> &Tensor {
        &self.baseline
    }

    pub fn device(&self) -> &Device {
        self.pixels.device()
    }

    /// `keep`: `[B, m]` u8 (1 = patch present) on the device -> `[B, C, H, W]`.
    pub fn mask(&self, keep: &Tensor) -> Result<Tensor> {
        let (b, m) = keep.dims2()?;
        if m != self.num_players() {
            return Err(EngineError::InvalidInput(format!(
                "{m} image players in the coalition tensor, the grid has {}",
                self.num_players()
            )));
        }
        let (c, h, w) = self.pixels.dims3()?;
        let keep_pix = keep
            .to_dtype(DType::U8)?
            .index_select(&self.pixel_players, 1)?
            .reshape((b, 1, h, w))?;
        let shape = (b, c, h, w);
        let out = keep_pix.broadcast_as(shape)?.where_cond(
            &self.pixels.unsqueeze(0)?.broadcast_as(shape)?,
            &self.baseline.unsqueeze(0)?.broadcast_as(shape)?,
        )?;
        Ok(out)
    }
}

/// The replacement image for a baseline, `[C, H, W]` f32 on the pixels' device.
pub fn make_baseline(pixels: &Tensor, baseline: &Baseline) -> Result<Tensor> {
    let (c, h, w) = pixels.dims3()?;
    let device = pixels.device();
    let t = match baseline {
        Baseline::Zero => pixels.zeros_like()?,
        Baseline::Mean => pixels
            .mean_keepdim((1, 2))?
            .broadcast_as((c, h, w))?
            .contiguous()?,
        Baseline::Noise { std, seed } => {
            let normal = Normal::new(0f32, *std)
                .map_err(|e| EngineError::Config(format!("noise baseline: {e}")))?;
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(*seed);
            let v: Vec<f32> = (0..c * h * w).map(|_| normal.sample(&mut rng)).collect();
            Tensor::from_vec(v, (c, h, w), device)?
        }
        Baseline::Blur { sigma } => {
            if sigma.is_nan() || *sigma <= 0.0 {
                return Err(EngineError::Config(format!(
                    "blur sigma must be > 0, got {sigma}"
                )));
            }
            let host: Vec<f32> = pixels.flatten_all()?.to_vec1()?;
            Tensor::from_vec(gaussian_blur(&host, c, h, w, *sigma), (c, h, w), device)?
        }
    };
    Ok(t)
}

/// Separable Gaussian blur of a `[C, H, W]` image, edge-clamped, radius 3 sigma.
pub fn gaussian_blur(img: &[f32], c: usize, h: usize, w: usize, sigma: f32) -> Vec<f32> {
    let r = (3.0 * sigma).ceil() as isize;
    let kernel: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let norm: f32 = kernel.iter().sum();
    let kernel: Vec<f32> = kernel.iter().map(|k| k / norm).collect();
    let clamp = |i: isize, n: usize| i.clamp(0, n as isize - 1) as usize;
    let mut tmp = vec![0f32; img.len()];
    let mut out = vec![0f32; img.len()];
    for ch in 0..c {
        let base = ch * h * w;
        for y in 0..h {
            for x in 0..w {
                let mut s = 0f32;
                for (k, kv) in kernel.iter().enumerate() {
                    s += kv * img[base + y * w + clamp(x as isize + k as isize - r, w)];
                }
                tmp[base + y * w + x] = s;
            }
        }
        for y in 0..h {
            for x in 0..w {
                let mut s = 0f32;
                for (k, kv) in kernel.iter().enumerate() {
                    s += kv * tmp[base + clamp(y as isize + k as isize - r, h) * w + x];
                }
                out[base + y * w + x] = s;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use multishap_core::{Coalition, CoalitionBatch};

    fn test_image(c: usize, h: usize, w: usize) -> Tensor {
        let v: Vec<f32> = (0..c * h * w).map(|i| (i as f32 * 0.37).sin()).collect();
        Tensor::from_vec(v, (c, h, w), &Device::Cpu).unwrap()
    }

    /// Hand-built reference: loop over pixels, copy or replace.
    fn hand_masked(
        img: &[f32],
        base: &[f32],
        grid: &PatchGrid,
        c: usize,
        keep: &Coalition,
    ) -> Vec<f32> {
        let (h, w) = (grid.height, grid.width);
        let mut out = base.to_vec();
        for (p, b) in grid.boxes().iter().enumerate() {
            if keep.contains(p) {
                for ch in 0..c {
                    for y in b.y0..b.y1 {
                        for x in b.x0..b.x1 {
                            let i = ch * h * w + y * w + x;
                            out[i] = img[i];
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn masked_images_equal_hand_built_ones_for_every_baseline() {
        let (c, h, w) = (3, 12, 10);
        let img = test_image(c, h, w);
        let img_host: Vec<f32> = img.flatten_all().unwrap().to_vec1().unwrap();
        let grid = PatchGrid::new(3, 2, h, w).unwrap();
        let coalitions = [
            Coalition::empty(6),
            Coalition::full(6),
            Coalition::from_members(6, [0, 3, 5]),
            Coalition::from_members(6, [1, 2, 4]),
        ];
        let batch: CoalitionBatch = coalitions.iter().cloned().collect();
        let keep = batch.to_mask_tensor(&Device::Cpu, DType::U8).unwrap();
        for bl in [
            Baseline::Zero,
            Baseline::Mean,
            Baseline::Noise { std: 1.0, seed: 3 },
            Baseline::Blur { sigma: 1.5 },
        ] {
            let masker = ImageMasker::new(&img, grid, &bl).unwrap();
            let base: Vec<f32> = masker.baseline().flatten_all().unwrap().to_vec1().unwrap();
            let out = masker.mask(&keep).unwrap();
            assert_eq!(out.dims(), &[4, c, h, w]);
            for (i, co) in coalitions.iter().enumerate() {
                let got: Vec<f32> = out
                    .get(i)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap();
                assert_eq!(
                    got,
                    hand_masked(&img_host, &base, &grid, c, co),
                    "{bl:?} row {i}"
                );
            }
        }
    }

    #[test]
    fn baselines_have_expected_statistics() {
        let img = test_image(3, 16, 16);
        let mean = make_baseline(&img, &Baseline::Mean).unwrap();
        let want: Vec<f32> = img
            .mean_keepdim((1, 2))
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let got: Vec<f32> = mean
            .get(1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(got.iter().all(|v| (v - want[1]).abs() < 1e-6));
        let a = make_baseline(&img, &Baseline::Noise { std: 1.0, seed: 1 }).unwrap();
        let b = make_baseline(&img, &Baseline::Noise { std: 1.0, seed: 1 }).unwrap();
        let d = make_baseline(&img, &Baseline::Noise { std: 1.0, seed: 2 }).unwrap();
        let (a, b, d): (Vec<f32>, Vec<f32>, Vec<f32>) = (
            a.flatten_all().unwrap().to_vec1().unwrap(),
            b.flatten_all().unwrap().to_vec1().unwrap(),
            d.flatten_all().unwrap().to_vec1().unwrap(),
        );
        assert_eq!(a, b);
        assert_ne!(a, d);
        let var = a.iter().map(|v| v * v).sum::<f32>() / a.len() as f32;
        assert!((var - 1.0).abs() < 0.15, "noise variance {var}");
        // blur of a constant image is the constant; blur keeps the mean roughly
        let flat = Tensor::full(0.25f32, (3, 8, 8), &Device::Cpu).unwrap();
        let bl: Vec<f32> = make_baseline(&flat, &Baseline::Blur { sigma: 2.0 })
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(bl.iter().all(|v| (v - 0.25).abs() < 1e-6));
        assert!(make_baseline(&img, &Baseline::Blur { sigma: 0.0 }).is_err());
    }
}
