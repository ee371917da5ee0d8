//! Output-preserving image perturbations for the stability measure: i.i.d.
//! Gaussian noise in [0, 1] pixel units, rounded back to 8 bits, from a
//! seeded SplitMix64 + Box-Muller stream (no extra dependency).
use image::{DynamicImage, RgbImage};

struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit(), self.unit());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// A perturbed copy and the sizes needed for a Lipschitz ratio.
pub struct Perturbed {
    pub image: DynamicImage,
    /// ||x' - x||_2 over all RGB values in [0, 1] units (after 8-bit rounding).
    pub input_l2: f64,
    /// ||x||_2 of the original in the same units.
    pub input_norm: f64,
}

/// `image` + N(0, std^2) per RGB value (in [0, 1] units), clamped and rounded.
pub fn gaussian_noise(image: &DynamicImage, std: f64, seed: u64) -> Perturbed {
    let rgb = image.to_rgb8();
    let mut rng = SplitMix(seed);
    let (mut diff2, mut norm2) = (0.0, 0.0);
    let mut out = RgbImage::new(rgb.width(), rgb.height());
    for (src, dst) in rgb.pixels().zip(out.pixels_mut()) {
        for c in 0..3 {
            let x = src[c] as f64;
            let y = (x + 255.0 * std * rng.normal()).round().clamp(0.0, 255.0);
            dst[c] = y as u8;
            diff2 += ((y - x) / 255.0).powi(2);
            norm2 += (x / 255.0).powi(2);
        }
    }
    Perturbed {
        image: DynamicImage::ImageRgb8(out),
        input_l2: diff2.sqrt(),
        input_norm: norm2.sqrt(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_size_and_determinism() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(40, 30, image::Rgb([128, 64, 200])));
        let a = gaussian_noise(&img, 0.05, 3);
        let b = gaussian_noise(&img, 0.05, 3);
        assert_eq!(a.image.to_rgb8().as_raw(), b.image.to_rgb8().as_raw());
        // expected ||Δ|| ≈ std sqrt(3600) = 3.0 (rounding adds a little)
        assert!((a.input_l2 - 3.0).abs() < 0.3, "{}", a.input_l2);
        let c = gaussian_noise(&img, 0.05, 4);
        assert_ne!(a.image.to_rgb8().as_raw(), c.image.to_rgb8().as_raw());
    }
}
