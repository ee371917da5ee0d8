//! Image preprocessing identical to transformers' (slow, PIL-based)
//! `CLIPImageProcessor` and `ViltImageProcessor`.

use std::path::Path;

use candle_core::{Device, Tensor};
use serde_json::Value;

use crate::clip::ClipConfig;
use crate::error::{ModelError, Result};
use crate::pil_resize::resize_bicubic_rgb8;

/// PIL's id of BICUBIC, the only resampling these processors implement.
const PIL_BICUBIC: u64 = 3;

/// An RGB8 image as the processors see it (after PIL's `convert("RGB")`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb8 {
    pub width: usize,
    pub height: usize,
    /// interleaved RGB, row-major
    pub data: Vec<u8>,
}

impl Rgb8 {
    pub fn from_dynamic(img: &image::DynamicImage) -> Result<Self> {
        let rgb = img.to_rgb8();
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        if w == 0 || h == 0 {
            return Err(ModelError::UnsupportedImage(format!("empty image {w}x{h}")));
        }
        Ok(Self {
            width: w,
            height: h,
            data: rgb.into_raw(),
        })
    }

    /// PIL-exact bicubic resize.
    pub fn resize(&self, width: usize, height: usize) -> Self {
        if width == self.width && height == self.height {
            return self.clone();
        }
        Self {
            width,
            height,
            data: resize_bicubic_rgb8(&self.data, self.width, self.height, width, height),
        }
    }

    /// transformers' `center_crop` (zero padding when the image is smaller).
    pub fn center_crop(&self, ch: usize, cw: usize) -> Self {
        let (h, w) = (self.height, self.width);
        // Pad (centred, ceil on the top/left) to at least the crop size.
        let (nh, nw) = (h.max(ch), w.max(cw));
        let (tp, lp) = ((nh - h).div_ceil(2), (nw - w).div_ceil(2));
        let top = (nh - ch) / 2;
        let left = (nw - cw) / 2;
        let mut data = vec![0u8; ch * cw * 3];
        for y in 0..ch {
            let sy = y + top;
            if sy < tp || sy >= tp + h {
                continue;
            }
            for x in 0..cw {
                let sx = x + left;
                if sx < lp || sx >= lp + w {
                    continue;
                }
                let s = ((sy - tp) * w + (sx - lp)) * 3;
                let d = (y * cw + x) * 3;
                data[d..d + 3].copy_from_slice(&self.data[s..s + 3]);
            }
        }
        Self {
            width: cw,
            height: ch,
            data,
        }
    }

    /// HWC u8 -> CHW f32 as transformers does it: `f32(f64(v) * rescale)`, then
    /// `(x - mean) / std` in f32.
    pub fn to_chw(&self, rescale: Option<f64>, norm: Option<([f32; 3], [f32; 3])>) -> Vec<f32> {
        let n = self.width * self.height;
        let mut out = vec![0f32; 3 * n];
        for c in 0..3 {
            let (m, s) = norm.map(|(m, s)| (m[c], s[c])).unwrap_or((0.0, 1.0));
            for i in 0..n {
                let v = self.data[i * 3 + c];
                let x = match rescale {
                    Some(r) => (v as f64 * r) as f32,
                    None => v as f32,
                };
                out[c * n + i] = if norm.is_some() { (x - m) / s } else { x };
            }
        }
        out
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| ModelError::Json {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn json_err(path: &Path, message: impl Into<String>) -> ModelError {
    ModelError::Json {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn get_bool(v: &Value, key: &str, default: bool) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(default)
}

fn get_f64(v: &Value, key: &str, default: f64) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(default)
}

fn get_triple(path: &Path, v: &Value, key: &str, default: [f32; 3]) -> Result<[f32; 3]> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => Ok([n.as_f64().unwrap_or(0.0) as f32; 3]),
        Some(Value::Array(a)) if a.len() == 3 => {
            let mut out = [0f32; 3];
            for (o, x) in out.iter_mut().zip(a) {
                *o = x
                    .as_f64()
                    .ok_or_else(|| json_err(path, format!("{key} must hold numbers")))?
                    as f32;
            }
            Ok(out)
        }
        Some(other) => Err(json_err(
            path,
            format!("{key} must be 3 numbers, got {other}"),
        )),
    }
}

fn check_resample(path: &Path, v: &Value) -> Result<()> {
    match v.get("resample").and_then(Value::as_u64) {
        None | Some(PIL_BICUBIC) => Ok(()),
        Some(r) => Err(json_err(
            path,
            format!("resample={r} is not supported (only 3 = bicubic)"),
        )),
    }
}

/// `size` as `{"shortest_edge": n}` or a bare number.
fn shortest_edge(path: &Path, v: &Value, default: usize) -> Result<usize> {
    match v.get("size") {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| json_err(path, "size must be a positive integer")),
        Some(Value::Object(o)) => o
            .get("shortest_edge")
            .and_then(Value::as_u64)
            .map(|n| n as usize)
            .ok_or_else(|| json_err(path, "size must have an integer shortest_edge")),
        Some(other) => Err(json_err(path, format!("unsupported size {other}"))),
    }
}

/// `crop_size` as `{"height": h, "width": w}` or a bare number.
fn crop_size(path: &Path, v: &Value, default: (usize, usize)) -> Result<(usize, usize)> {
    match v.get("crop_size") {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => {
            let n = n
                .as_u64()
                .ok_or_else(|| json_err(path, "crop_size must be a positive integer"))?
                as usize;
            Ok((n, n))
        }
        Some(Value::Object(o)) => {
            let h = o.get("height").and_then(Value::as_u64);
            let w = o.get("width").and_then(Value::as_u64);
            match (h, w) {
                (Some(h), Some(w)) => Ok((h as usize, w as usize)),
                _ => Err(json_err(
                    path,
                    "crop_size must have integer height and width",
                )),
            }
        }
        Some(other) => Err(json_err(path, format!("unsupported crop_size {other}"))),
    }
}

/// Opens an image file; a clear error when unreadable or of an unsupported format.
pub fn load_image(path: &Path) -> Result<image::DynamicImage> {
    let reader = image::ImageReader::open(path)
        .map_err(|e| ModelError::io(path, e))?
        .with_guessed_format()
        .map_err(|e| ModelError::io(path, e))?;
    if reader.format().is_none() {
        return Err(ModelError::Image {
            path: path.to_path_buf(),
            message: "unknown or unsupported image format (supported: PNG, JPEG)".into(),
        });
    }
    let mut decoder = reader.into_decoder().map_err(|e| ModelError::Image {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    // transformers' `load_image` applies the EXIF orientation.
    let orientation = image::ImageDecoder::orientation(&mut decoder).ok();
    let mut img = image::DynamicImage::from_decoder(decoder).map_err(|e| ModelError::Image {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    if img.width() == 0 || img.height() == 0 {
        return Err(ModelError::UnsupportedImage(format!(
            "{} is empty",
            path.display()
        )));
    }
    Ok(img)
}

/// HF `CLIPImageProcessor` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipImageProcessor {
    pub shortest_edge: usize,
    pub crop_height: usize,
    pub crop_width: usize,
    pub do_resize: bool,
    pub do_center_crop: bool,
    pub do_rescale: bool,
    pub rescale_factor: f64,
    pub do_normalize: bool,
    pub image_mean: [f32; 3],
    pub image_std: [f32; 3],
}

/// OpenAI CLIP's mean and std, as the literals transformers uses.
#[allow(clippy::excessive_precision)]
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
#[allow(clippy::excessive_precision)]
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_1];

impl ClipImageProcessor {
    /// The Hub checkpoints' values for a model of `cfg.vision_config.image_size`.
    pub fn default_for(cfg: &ClipConfig) -> Self {
        let s = cfg.vision_config.image_size;
        Self {
            shortest_edge: s,
            crop_height: s,
            crop_width: s,
            do_resize: true,
            do_center_crop: true,
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: CLIP_MEAN,
            image_std: CLIP_STD,
        }
    }

    /// Reads a HF `preprocessor_config.json` (missing keys take HF's defaults).
    pub fn from_json_file(path: &Path) -> Result<Self> {
        let v = read_json(path)?;
        check_resample(path, &v)?;
        let se = shortest_edge(path, &v, 224)?;
        let (crop_height, crop_width) = crop_size(path, &v, (224, 224))?;
        Ok(Self {
            shortest_edge: se,
            crop_height,
            crop_width,
            do_resize: get_bool(&v, "do_resize", true),
            do_center_crop: get_bool(&v, "do_center_crop", true),
            do_rescale: get_bool(&v, "do_rescale", true),
            rescale_factor: get_f64(&v, "rescale_factor", 1.0 / 255.0),
            do_normalize: get_bool(&v, "do_normalize", true),
            image_mean: get_triple(path, &v, "image_mean", CLIP_MEAN)?,
            image_std: get_triple(path, &v, "image_std", CLIP_STD)?,
        })
    }

    /// Output size of the shortest-edge resize for an input of (h, w).
    pub fn resize_size(&self, h: usize, w: usize) -> (usize, usize) {
        let s = self.shortest_edge;
        let (short, long) = if w <= h { (w, h) } else { (h, w) };
        let new_long = ((s * long) as f64 / short as f64) as usize;
        if w <= h {
            (new_long, s)
        } else {
            (s, new_long)
        }
    }

    /// The u8 image after resize and centre crop.
    pub fn resized(&self, img: &Rgb8) -> Rgb8 {
        let mut im = img.clone();
        if self.do_resize {
            let (h, w) = self.resize_size(im.height, im.width);
            im = im.resize(w, h);
        }
        if self.do_center_crop {
            im = im.center_crop(self.crop_height, self.crop_width);
        }
        im
    }

    /// -> [3,H,W] f32 normalised (CPU).
    pub fn preprocess(&self, img: &image::DynamicImage) -> Result<Tensor> {
        let im = self.resized(&Rgb8::from_dynamic(img)?);
        let data = im.to_chw(
            self.do_rescale.then_some(self.rescale_factor),
            self.do_normalize
                .then_some((self.image_mean, self.image_std)),
        );
        Ok(Tensor::from_vec(
            data,
            (3, im.height, im.width),
            &Device::Cpu,
        )?)
    }
}

/// HF `ViltImageProcessor` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ViltImageProcessor {
    pub shortest_edge: usize,
    pub size_divisor: usize,
    pub do_resize: bool,
    pub do_rescale: bool,
    pub rescale_factor: f64,
    pub do_normalize: bool,
    pub image_mean: [f32; 3],
    pub image_std: [f32; 3],
}

impl Default for ViltImageProcessor {
    fn default() -> Self {
        Self {
            shortest_edge: 384,
            size_divisor: 32,
            do_resize: true,
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: [0.5; 3],
            image_std: [0.5; 3],
        }
    }
}

impl ViltImageProcessor {
    /// Reads a HF `preprocessor_config.json` (missing keys take HF's defaults).
    pub fn from_json_file(path: &Path) -> Result<Self> {
        let v = read_json(path)?;
        check_resample(path, &v)?;
        let d = Self::default();
        Ok(Self {
            shortest_edge: shortest_edge(path, &v, d.shortest_edge)?,
            size_divisor: v
                .get("size_divisor")
                .and_then(Value::as_u64)
                .map(|n| n as usize)
                .unwrap_or(d.size_divisor)
                .max(1),
            do_resize: get_bool(&v, "do_resize", true),
            do_rescale: get_bool(&v, "do_rescale", true),
            rescale_factor: get_f64(&v, "rescale_factor", 1.0 / 255.0),
            do_normalize: get_bool(&v, "do_normalize", true),
            image_mean: get_triple(path, &v, "image_mean", d.image_mean)?,
            image_std: get_triple(path, &v, "image_std", d.image_std)?,
        })
    }

    /// Output (h, w): shortest edge to `shortest_edge`, longest at most
    /// `int(1333 / 800 * shortest_edge)`, rounded, floored to `size_divisor`.
    pub fn resize_size(&self, h: usize, w: usize) -> (usize, usize) {
        let shorter = self.shortest_edge as f64;
        let longer = (1333.0 / 800.0 * shorter).floor();
        let (h, w) = (h as f64, w as f64);
        let scale = shorter / h.min(w);
        let (mut nh, mut nw) = if h < w {
            (shorter, scale * w)
        } else {
            (scale * h, shorter)
        };
        if nh.max(nw) > longer {
            let s = longer / nh.max(nw);
            nh *= s;
            nw *= s;
        }
        let (nh, nw) = ((nh + 0.5) as usize, (nw + 0.5) as usize);
        let d = self.size_divisor;
        (nh / d * d, nw / d * d)
    }

    /// The u8 image after resize.
    pub fn resized(&self, img: &Rgb8) -> Result<Rgb8> {
        if !self.do_resize {
            return Ok(img.clone());
        }
        let (h, w) = self.resize_size(img.height, img.width);
        if h == 0 || w == 0 {
            return Err(ModelError::UnsupportedImage(format!(
                "a {}x{} image is too elongated for ViLT's resize",
                img.width, img.height
            )));
        }
        Ok(img.resize(w, h))
    }

    /// -> (pixel_values [3,H,W] f32, pixel_mask [H,W] u32 of ones), on CPU.
    pub fn preprocess(&self, img: &image::DynamicImage) -> Result<(Tensor, Tensor)> {
        let im = self.resized(&Rgb8::from_dynamic(img)?)?;
        let data = im.to_chw(
            self.do_rescale.then_some(self.rescale_factor),
            self.do_normalize
                .then_some((self.image_mean, self.image_std)),
        );
        let pv = Tensor::from_vec(data, (3, im.height, im.width), &Device::Cpu)?;
        let mask = Tensor::ones((im.height, im.width), candle_core::DType::U32, &Device::Cpu)?;
        Ok((pv, mask))
    }
}

/// Pads preprocessed ViLT images to the largest height and width (zeros at the
/// bottom/right, as transformers does) -> (pixel_values [B,3,H,W], pixel_mask [B,H,W]).
pub fn vilt_pad_batch(items: &[(Tensor, Tensor)]) -> Result<(Tensor, Tensor)> {
    if items.is_empty() {
        return Err(ModelError::BadInput("empty image batch".into()));
    }
    let mut hmax = 0;
    let mut wmax = 0;
    for (pv, _) in items {
        let (_, h, w) = pv.dims3()?;
        hmax = hmax.max(h);
        wmax = wmax.max(w);
    }
    let mut pvs = Vec::with_capacity(items.len());
    let mut masks = Vec::with_capacity(items.len());
    for (pv, m) in items {
        let (_, h, w) = pv.dims3()?;
        let pv = pv
            .pad_with_zeros(1, 0, hmax - h)?
            .pad_with_zeros(2, 0, wmax - w)?;
        let m = m
            .pad_with_zeros(0, 0, hmax - h)?
            .pad_with_zeros(1, 0, wmax - w)?;
        pvs.push(pv);
        masks.push(m);
    }
    Ok((Tensor::stack(&pvs, 0)?, Tensor::stack(&masks, 0)?))
}
