//! Where the image players lie in the *original* image: the engine's patch
//! boxes are in preprocessed-image pixels; the report schema wants
//! original-image pixels (`[x0, y0, x1, y1]`, exclusive ends).
use multishap_engine::PatchBox;
use multishap_models::AnyImageProcessor;

/// The map from preprocessed-image pixels back to original-image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    /// Original image (width, height).
    pub original: (u32, u32),
    /// Size (width, height) after the resize, before any crop.
    pub resized: (usize, usize),
    /// Crop origin in resized pixels: preprocessed (x, y) = resized (x - ox, y - oy).
    /// Negative when the crop pads the image.
    pub crop_offset: (i64, i64),
}

impl Geometry {
    /// A plain resize to `input` (ViLT: no crop).
    pub fn resize(original: (u32, u32), input: (usize, usize)) -> Self {
        Self {
            original,
            resized: input,
            crop_offset: (0, 0),
        }
    }

    /// What `processor` does to an image of `original` size, whose
    /// preprocessed size is `input` (width, height).
    pub fn for_processor(
        processor: &AnyImageProcessor,
        original: (u32, u32),
        input: (usize, usize),
    ) -> Self {
        match processor {
            AnyImageProcessor::Vilt(_) => Self::resize(original, input),
            AnyImageProcessor::Clip(p) => {
                let (w, h) = (original.0 as usize, original.1 as usize);
                let (rh, rw) = if p.do_resize {
                    p.resize_size(h, w)
                } else {
                    (h, w)
                };
                if !p.do_center_crop {
                    return Self::resize(original, (rw, rh));
                }
                // transformers' centre crop: pad (ceil on top/left) to the crop size, then crop.
                let (ch, cw) = (p.crop_height, p.crop_width);
                let (nh, nw) = (rh.max(ch), rw.max(cw));
                let (tp, lp) = ((nh - rh).div_ceil(2) as i64, (nw - rw).div_ceil(2) as i64);
                let top = ((nh - ch) / 2) as i64;
                let left = ((nw - cw) / 2) as i64;
                Self {
                    original,
                    resized: (rw, rh),
                    crop_offset: (left - lp, top - tp),
                }
            }
        }
    }

    /// A box in preprocessed pixels -> `[x0, y0, x1, y1]` in original pixels
    /// (clipped to the image).
    pub fn to_original(&self, b: &PatchBox) -> [f64; 4] {
        let (ox, oy) = (self.crop_offset.0 as f64, self.crop_offset.1 as f64);
        let (rw, rh) = (self.resized.0.max(1) as f64, self.resized.1.max(1) as f64);
        let sx = self.original.0 as f64 / rw;
        let sy = self.original.1 as f64 / rh;
        let clip = |v: f64, hi: f64| v.clamp(0.0, hi);
        [
            clip(b.x0 as f64 + ox, rw) * sx,
            clip(b.y0 as f64 + oy, rh) * sy,
            clip(b.x1 as f64 + ox, rw) * sx,
            clip(b.y1 as f64 + oy, rh) * sy,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use multishap_models::preprocess::ClipImageProcessor;

    #[test]
    fn vilt_resize_scales_boxes() {
        let g = Geometry::resize((640, 480), (512, 384));
        let b = g.to_original(&PatchBox {
            y0: 0,
            y1: 32,
            x0: 480,
            x1: 512,
        });
        assert_eq!(b, [600.0, 0.0, 640.0, 40.0]);
    }

    #[test]
    fn clip_crop_offsets_boxes() {
        let p = ClipImageProcessor {
            shortest_edge: 224,
            crop_height: 224,
            crop_width: 224,
            do_resize: true,
            do_center_crop: true,
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: [0.5; 3],
            image_std: [0.5; 3],
        };
        // 448x224 (w x h) -> resized 448x224 -> crop x from 112..336
        let g = Geometry::for_processor(&AnyImageProcessor::Clip(p), (448, 224), (224, 224));
        assert_eq!(g.resized, (448, 224));
        assert_eq!(g.crop_offset, (112, 0));
        assert_eq!(
            g.to_original(&PatchBox {
                y0: 0,
                y1: 32,
                x0: 0,
                x1: 32
            }),
            [112.0, 0.0, 144.0, 32.0]
        );
    }
}
