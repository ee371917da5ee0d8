//! Heatmaps of the SII grid overlaid on the image.
//!
//! For one token `j` the map is column `j` of the SII grid (one value per patch); the average
//! map is the mean over tokens. Rendering: the `rows x cols` grid is upsampled bilinearly to a
//! working resolution of [`HeatmapOptions::work_px_per_patch`] pixels per patch, smoothed with a
//! gaussian of `sigma_patches` patches, then resized bilinearly to the part of the image the
//! patch boxes cover (the whole image when the record has no boxes; outside it nothing is drawn).
//! Each pixel gets the diverging RdBu colour of `value / scale` (blue negative, white 0, red
//! positive) blended over the image with alpha `max_alpha * |value / scale|`. The image under
//! the overlay is first moved towards its grey level by `desaturate` (0 keeps the colours,
//! 1 is fully grey) so that the diverging colours stay readable on colourful photos.
//!
//! Scales are symmetric around 0. With `shared_scale` (default) all per-token maps use
//! `max |SII|` over the whole grid, so maps of different tokens are comparable; the average map
//! always uses its own `max |mean|`.
use crate::colormap;
use crate::error::{io_err, ReportError, Result};
use crate::schema::ExplanationRecord;
use image::{imageops::FilterType, DynamicImage, Rgb, RgbImage};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub struct HeatmapOptions {
    /// Largest side of rendered PNGs; bigger images are downscaled first.
    pub max_side: u32,
    /// Working resolution of the smoothing step, in pixels per patch.
    pub work_px_per_patch: u32,
    /// Gaussian sigma, in patches (0 disables smoothing).
    pub sigma_patches: f64,
    /// Alpha of the overlay at `|value| = scale`.
    pub max_alpha: f64,
    /// Fraction by which the image under the overlay is desaturated (0..=1).
    pub desaturate: f64,
    /// Per-token maps share one scale (max |SII| over the grid) instead of one each.
    pub shared_scale: bool,
    /// Side of one patch in pixels when there is no image (maps on a white background).
    pub blank_patch_px: u32,
}

impl Default for HeatmapOptions {
    fn default() -> Self {
        Self {
            max_side: 768,
            work_px_per_patch: 8,
            sigma_patches: 0.35,
            max_alpha: 0.8,
            desaturate: 0.5,
            shared_scale: true,
            blank_patch_px: 32,
        }
    }
}

/// Bilinear upsampling of a row-major `rows x cols` grid to `width x height`, with pixel
/// centres aligned (each grid cell's centre maps to the centre of its block).
pub fn upsample_bilinear(
    grid: &[f64],
    rows: usize,
    cols: usize,
    width: usize,
    height: usize,
) -> Vec<f64> {
    assert_eq!(grid.len(), rows * cols, "grid shape");
    let mut out = vec![0.0; width * height];
    if rows == 0 || cols == 0 {
        return out;
    }
    let coord = |x: usize, out_len: usize, in_len: usize| -> (usize, usize, f64) {
        let u = ((x as f64 + 0.5) * in_len as f64 / out_len as f64 - 0.5)
            .clamp(0.0, (in_len - 1) as f64);
        let i0 = u.floor() as usize;
        let i1 = (i0 + 1).min(in_len - 1);
        (i0, i1, u - i0 as f64)
    };
    let xs: Vec<_> = (0..width).map(|x| coord(x, width, cols)).collect();
    for y in 0..height {
        let (r0, r1, fy) = coord(y, height, rows);
        for (x, &(c0, c1, fx)) in xs.iter().enumerate() {
            let top = grid[r0 * cols + c0] * (1.0 - fx) + grid[r0 * cols + c1] * fx;
            let bot = grid[r1 * cols + c0] * (1.0 - fx) + grid[r1 * cols + c1] * fx;
            out[y * width + x] = top * (1.0 - fy) + bot * fy;
        }
    }
    out
}

/// Separable gaussian blur in place (edges clamped).
pub fn gaussian_blur(data: &mut [f64], width: usize, height: usize, sigma: f64) {
    if sigma <= 0.0 || width == 0 || height == 0 {
        return;
    }
    let radius = (3.0 * sigma).ceil() as isize;
    let kernel: Vec<f64> = (-radius..=radius)
        .map(|k| (-(k * k) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let norm: f64 = kernel.iter().sum();
    let kernel: Vec<f64> = kernel.iter().map(|k| k / norm).collect();
    let mut tmp = vec![0.0; data.len()];
    let clamp = |v: isize, n: usize| v.clamp(0, n as isize - 1) as usize;
    for y in 0..height {
        for x in 0..width {
            let mut acc = 0.0;
            for (k, w) in kernel.iter().enumerate() {
                acc += w * data[y * width + clamp(x as isize + k as isize - radius, width)];
            }
            tmp[y * width + x] = acc;
        }
    }
    for y in 0..height {
        for x in 0..width {
            let mut acc = 0.0;
            for (k, w) in kernel.iter().enumerate() {
                acc += w * tmp[clamp(y as isize + k as isize - radius, height) * width + x];
            }
            data[y * width + x] = acc;
        }
    }
}

/// Pixel rectangle `[x0, y0, x1, y1)` that the patch grid covers in an image of `w x h`
/// pixels, from the record's boxes (given in `image_size` pixels) or the whole image.
fn grid_region(record: &ExplanationRecord, w: u32, h: u32) -> [usize; 4] {
    let boxes = &record.grid.boxes;
    if boxes.is_empty() {
        return [0, 0, w as usize, h as usize];
    }
    let (sw, sh) = match record.grid.image_size {
        Some((iw, ih)) if iw > 0 && ih > 0 => (w as f64 / iw as f64, h as f64 / ih as f64),
        _ => (1.0, 1.0),
    };
    let fold =
        |f: fn(f64, f64) -> f64, k: usize, init: f64| boxes.iter().map(|b| b[k]).fold(init, f);
    let x0 = (fold(f64::min, 0, f64::INFINITY) * sw)
        .round()
        .clamp(0.0, w as f64) as usize;
    let y0 = (fold(f64::min, 1, f64::INFINITY) * sh)
        .round()
        .clamp(0.0, h as f64) as usize;
    let x1 = (fold(f64::max, 2, f64::NEG_INFINITY) * sw)
        .round()
        .clamp(0.0, w as f64) as usize;
    let y1 = (fold(f64::max, 3, f64::NEG_INFINITY) * sh)
        .round()
        .clamp(0.0, h as f64) as usize;
    if x1 <= x0 || y1 <= y0 {
        [0, 0, w as usize, h as usize]
    } else {
        [x0, y0, x1, y1]
    }
}

/// Smooth a patch map and blend it over `base` inside `region` (see the module docs).
pub fn overlay(
    base: &RgbImage,
    map: &[f64],
    rows: usize,
    cols: usize,
    region: [usize; 4],
    scale: f64,
    opts: &HeatmapOptions,
) -> RgbImage {
    let mut out = base.clone();
    let ds = opts.desaturate.clamp(0.0, 1.0);
    if ds > 0.0 {
        for p in out.pixels_mut() {
            let [r, g, b] = p.0.map(f64::from);
            let luma = 0.299 * r + 0.587 * g + 0.114 * b;
            for ch in p.0.iter_mut() {
                *ch = (*ch as f64 * (1.0 - ds) + luma * ds).round() as u8;
            }
        }
    }
    let [x0, y0, x1, y1] = region;
    let (rw, rh) = (x1.saturating_sub(x0), y1.saturating_sub(y0));
    if rw == 0 || rh == 0 || rows == 0 || cols == 0 {
        return out;
    }
    let px = opts.work_px_per_patch.max(1) as usize;
    let (ww, wh) = (cols * px, rows * px);
    let mut work = upsample_bilinear(map, rows, cols, ww, wh);
    gaussian_blur(&mut work, ww, wh, opts.sigma_patches * px as f64);
    let field = upsample_bilinear(&work, wh, ww, rw, rh);
    for y in 0..rh {
        for x in 0..rw {
            let t = colormap::normalise(field[y * rw + x], scale);
            let c = colormap::rdbu(t);
            let a = opts.max_alpha.clamp(0.0, 1.0) * t.abs();
            let p = out.get_pixel_mut((x0 + x) as u32, (y0 + y) as u32);
            for (ch, col) in p.0.iter_mut().zip(c) {
                *ch = (*ch as f64 * (1.0 - a) + col as f64 * a).round() as u8;
            }
        }
    }
    out
}

/// The base image for overlays: the input image (downscaled to `max_side`) or a white canvas.
pub fn base_image(
    record: &ExplanationRecord,
    image: Option<&DynamicImage>,
    opts: &HeatmapOptions,
) -> RgbImage {
    match image {
        Some(img) => {
            let (w, h) = (img.width(), img.height());
            let side = w.max(h);
            if side > opts.max_side && opts.max_side > 0 {
                let s = opts.max_side as f64 / side as f64;
                let nw = ((w as f64 * s).round() as u32).max(1);
                let nh = ((h as f64 * s).round() as u32).max(1);
                img.resize_exact(nw, nh, FilterType::Triangle).to_rgb8()
            } else {
                img.to_rgb8()
            }
        }
        None => {
            let p = opts.blank_patch_px.max(1);
            let w = (record.grid.cols as u32 * p).max(1);
            let h = (record.grid.rows as u32 * p).max(1);
            RgbImage::from_pixel(w, h, Rgb([255, 255, 255]))
        }
    }
}

fn max_abs(values: impl IntoIterator<Item = f64>) -> f64 {
    values.into_iter().fold(0.0, |m: f64, v| m.max(v.abs()))
}

/// One rendered token heatmap.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenHeatmap {
    pub token_index: usize,
    pub token: String,
    /// Path relative to the output folder.
    pub file: PathBuf,
    /// The symmetric scale used: colours saturate at `+-scale`.
    pub scale: f64,
}

/// Everything [`write_heatmaps`] produced (paths relative to its output folder).
#[derive(Debug, Clone, PartialEq)]
pub struct HeatmapSet {
    pub tokens: Vec<TokenHeatmap>,
    pub average: PathBuf,
    pub average_scale: f64,
    /// The (possibly downscaled) image the maps were drawn on.
    pub base: PathBuf,
    pub width: u32,
    pub height: u32,
}

/// Render one PNG per token (`heatmaps/token_{j:03}.png`), the token average
/// (`heatmaps/average.png`) and the base image (`image.png`) into `out_dir`.
pub fn write_heatmaps(
    record: &ExplanationRecord,
    image: Option<&DynamicImage>,
    out_dir: &Path,
    opts: &HeatmapOptions,
) -> Result<HeatmapSet> {
    record.validate()?;
    let heat_dir = out_dir.join("heatmaps");
    std::fs::create_dir_all(&heat_dir).map_err(io_err(&heat_dir))?;
    let base = base_image(record, image, opts);
    let region = grid_region(record, base.width(), base.height());
    let (rows, cols) = (record.grid.rows, record.grid.cols);
    let global = max_abs(record.sii_values());
    let save = |img: &RgbImage, rel: &Path| -> Result<()> {
        let path = out_dir.join(rel);
        img.save(&path)
            .map_err(|source| ReportError::Image { path, source })
    };
    let base_rel = PathBuf::from("image.png");
    save(&base, &base_rel)?;
    let mut tokens = Vec::with_capacity(record.text_players());
    for (j, tok) in record.tokens.iter().enumerate() {
        let map = record.token_map(j);
        let scale = if opts.shared_scale {
            global
        } else {
            max_abs(map.iter().copied())
        };
        let rel = PathBuf::from(format!("heatmaps/token_{j:03}.png"));
        save(&overlay(&base, &map, rows, cols, region, scale, opts), &rel)?;
        tokens.push(TokenHeatmap {
            token_index: j,
            token: tok.clone(),
            file: rel,
            scale,
        });
    }
    let avg = record.average_map();
    let average_scale = max_abs(avg.iter().copied());
    let average = PathBuf::from("heatmaps/average.png");
    save(
        &overlay(&base, &avg, rows, cols, region, average_scale, opts),
        &average,
    )?;
    Ok(HeatmapSet {
        tokens,
        average,
        average_scale,
        base: base_rel,
        width: base.width(),
        height: base.height(),
    })
}

/// Render only the token-average heatmap of a record to `path` (used for report examples).
pub fn write_average_heatmap(
    record: &ExplanationRecord,
    image: Option<&DynamicImage>,
    path: &Path,
    opts: &HeatmapOptions,
) -> Result<()> {
    record.validate()?;
    let base = base_image(record, image, opts);
    let region = grid_region(record, base.width(), base.height());
    let avg = record.average_map();
    let img = overlay(
        &base,
        &avg,
        record.grid.rows,
        record.grid.cols,
        region,
        max_abs(avg.iter().copied()),
        opts,
    );
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    img.save(path).map_err(|source| ReportError::Image {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_keeps_constant_and_corners() {
        let up = upsample_bilinear(&[2.0; 6], 2, 3, 7, 5);
        assert!(up.iter().all(|v| (v - 2.0).abs() < 1e-12));
        // Upsampling by an integer factor keeps the corner cells' values at the corners.
        let grid = [1.0, 2.0, 3.0, 4.0];
        let up = upsample_bilinear(&grid, 2, 2, 8, 8);
        assert_eq!(up[0], 1.0);
        assert_eq!(up[7], 2.0);
        assert_eq!(up[56], 3.0);
        assert_eq!(up[63], 4.0);
        // Identity when sizes match.
        assert_eq!(upsample_bilinear(&grid, 2, 2, 2, 2), grid.to_vec());
    }

    #[test]
    fn zero_map_leaves_image_or_only_desaturates() {
        let base = RgbImage::from_pixel(8, 8, Rgb([200, 40, 40]));
        let mut opts = HeatmapOptions {
            desaturate: 0.0,
            ..Default::default()
        };
        let out = overlay(&base, &[0.0; 4], 2, 2, [0, 0, 8, 8], 1.0, &opts);
        assert_eq!(out, base);
        opts.desaturate = 1.0;
        let out = overlay(&base, &[0.0; 4], 2, 2, [0, 0, 8, 8], 1.0, &opts);
        // luma = .299 * 200 + .587 * 40 + .114 * 40 = 87.84 -> 88
        assert!(out.pixels().all(|p| p.0 == [88, 88, 88]));
    }

    #[test]
    fn blur_preserves_mass_of_interior_impulse_and_constants() {
        let (w, h) = (21, 21);
        let mut d = vec![0.0; w * h];
        d[10 * w + 10] = 1.0;
        gaussian_blur(&mut d, w, h, 1.5);
        let sum: f64 = d.iter().sum();
        assert!((sum - 1.0).abs() < 1e-9, "{sum}");
        assert!(d[10 * w + 10] < 1.0 && d[10 * w + 10] > d[10 * w + 12]);
        let mut c = vec![3.0; 35];
        gaussian_blur(&mut c, 7, 5, 2.0);
        assert!(c.iter().all(|v| (v - 3.0).abs() < 1e-12));
    }
}
