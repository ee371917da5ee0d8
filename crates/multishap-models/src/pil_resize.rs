//! Bicubic resize that reproduces Pillow's `Image.resize(..., BICUBIC)` on 8-bit
//! RGB images bit for bit: separable convolution (horizontal pass, then vertical),
//! filter support scaled by the downscale factor (antialiasing), coefficients in
//! 22-bit fixed point, and rounding/clipping to u8 between the two passes
//! (Pillow's `libImaging/Resample.c`).

const PRECISION_BITS: u32 = 32 - 8 - 2;

fn bicubic_filter(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Per output pixel: first input index, number of taps, and fixed-point weights
/// (`ksize` slots per output pixel).
struct Coeffs {
    ksize: usize,
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
}

fn precompute_coeffs(in_size: usize, out_size: usize) -> Coeffs {
    const SUPPORT: f64 = 2.0;
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = SUPPORT * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // C casts truncate toward zero.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin);
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(n) {
            let w = bicubic_filter((x as f64 + xmin as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        for x in 0..n {
            let v = if ww != 0.0 { k[x] / ww } else { k[x] };
            let fixed = v * (1i64 << PRECISION_BITS) as f64;
            weights[xx * ksize + x] = if v < 0.0 {
                (-0.5 + fixed) as i32
            } else {
                (0.5 + fixed) as i32
            };
        }
        bounds.push((xmin, n));
    }
    Coeffs {
        ksize,
        bounds,
        weights,
    }
}

#[inline]
fn clip8(v: i32) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes an interleaved RGB8 image `src` (w x h) to (out_w x out_h).
pub fn resize_bicubic_rgb8(src: &[u8], w: usize, h: usize, out_w: usize, out_h: usize) -> Vec<u8> {
    assert_eq!(src.len(), w * h * 3, "RGB8 buffer size");
    let half = 1i32 << (PRECISION_BITS - 1);
    // Horizontal pass.
    let horiz: Vec<u8> = if out_w != w {
        let c = precompute_coeffs(w, out_w);
        let mut out = vec![0u8; out_w * h * 3];
        for y in 0..h {
            let row = &src[y * w * 3..(y + 1) * w * 3];
            for xx in 0..out_w {
                let (xmin, n) = c.bounds[xx];
                let k = &c.weights[xx * c.ksize..xx * c.ksize + n];
                let (mut s0, mut s1, mut s2) = (half, half, half);
                for (x, &kx) in k.iter().enumerate() {
                    let p = (xmin + x) * 3;
                    s0 += row[p] as i32 * kx;
                    s1 += row[p + 1] as i32 * kx;
                    s2 += row[p + 2] as i32 * kx;
                }
                let o = (y * out_w + xx) * 3;
                out[o] = clip8(s0);
                out[o + 1] = clip8(s1);
                out[o + 2] = clip8(s2);
            }
        }
        out
    } else {
        src.to_vec()
    };
    if out_h == h {
        return horiz;
    }
    // Vertical pass.
    let c = precompute_coeffs(h, out_h);
    let mut out = vec![0u8; out_w * out_h * 3];
    let stride = out_w * 3;
    for yy in 0..out_h {
        let (ymin, n) = c.bounds[yy];
        let k = &c.weights[yy * c.ksize..yy * c.ksize + n];
        for xx in 0..stride {
            let mut s = half;
            for (y, &ky) in k.iter().enumerate() {
                s += horiz[(ymin + y) * stride + xx] as i32 * ky;
            }
            out[yy * stride + xx] = clip8(s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_size_is_a_copy() {
        let src: Vec<u8> = (0..4 * 3 * 3).map(|i| (i * 7 % 256) as u8).collect();
        assert_eq!(resize_bicubic_rgb8(&src, 4, 3, 4, 3), src);
    }

    #[test]
    fn constant_image_stays_constant() {
        let src = vec![200u8; 17 * 13 * 3];
        let out = resize_bicubic_rgb8(&src, 17, 13, 5, 29);
        assert!(out.iter().all(|&v| v == 200));
    }

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for (i, o) in [(100, 37), (37, 100), (640, 224)] {
            let c = precompute_coeffs(i, o);
            for xx in 0..o {
                let s: i64 = c.weights[xx * c.ksize..(xx + 1) * c.ksize]
                    .iter()
                    .map(|&v| v as i64)
                    .sum();
                assert!((s - (1 << PRECISION_BITS)).abs() <= c.ksize as i64);
            }
        }
    }
}
