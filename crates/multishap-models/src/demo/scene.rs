//! Synthetic scenes: 1-3 non-overlapping coloured shapes on a plain or noisy
//! background, rendered with an exact per-pixel mask of every shape.

use super::rng::DemoRng;
use image::{Rgb, RgbImage};

/// The eight shape colours, chosen far apart in RGB and away from the grey
/// backgrounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Colour {
    Red,
    Green,
    Blue,
    Yellow,
    Orange,
    Purple,
    Cyan,
    Pink,
}

impl Colour {
    /// Every colour, in label order.
    pub const ALL: [Colour; 8] = [
        Colour::Red,
        Colour::Green,
        Colour::Blue,
        Colour::Yellow,
        Colour::Orange,
        Colour::Purple,
        Colour::Cyan,
        Colour::Pink,
    ];

    /// The word used in questions, answers and captions.
    pub fn name(self) -> &'static str {
        match self {
            Colour::Red => "red",
            Colour::Green => "green",
            Colour::Blue => "blue",
            Colour::Yellow => "yellow",
            Colour::Orange => "orange",
            Colour::Purple => "purple",
            Colour::Cyan => "cyan",
            Colour::Pink => "pink",
        }
    }

    /// Fill colour in sRGB.
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Colour::Red => [220, 30, 30],
            Colour::Green => [30, 170, 50],
            Colour::Blue => [35, 60, 225],
            Colour::Yellow => [240, 225, 30],
            Colour::Orange => [250, 140, 20],
            Colour::Purple => [130, 40, 175],
            Colour::Cyan => [30, 205, 215],
            Colour::Pink => [250, 120, 190],
        }
    }
}

/// The three shape kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ShapeKind {
    Circle,
    Rectangle,
    Triangle,
}

impl ShapeKind {
    /// Every shape kind, in label order.
    pub const ALL: [ShapeKind; 3] = [ShapeKind::Circle, ShapeKind::Rectangle, ShapeKind::Triangle];

    /// The word used in questions, answers and captions.
    pub fn name(self) -> &'static str {
        match self {
            ShapeKind::Circle => "circle",
            ShapeKind::Rectangle => "rectangle",
            ShapeKind::Triangle => "triangle",
        }
    }
}

/// One shape: kind, colour and its bounding box in pixels (`x0 <= x < x1`).
/// A circle fills the largest disc of its (square) box, a rectangle its box,
/// a triangle is isosceles with its apex at the top centre of the box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    pub kind: ShapeKind,
    pub colour: Colour,
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

impl Shape {
    /// Whether the pixel centre `(px + 0.5, py + 0.5)` lies inside the shape.
    pub fn covers_pixel(&self, px: u32, py: u32) -> bool {
        let x = px as f64 + 0.5;
        let y = py as f64 + 0.5;
        if x < self.x0 || x >= self.x1 || y < self.y0 || y >= self.y1 {
            return false;
        }
        match self.kind {
            ShapeKind::Rectangle => true,
            ShapeKind::Circle => {
                let cx = 0.5 * (self.x0 + self.x1);
                let cy = 0.5 * (self.y0 + self.y1);
                let r = 0.5 * (self.x1 - self.x0).min(self.y1 - self.y0);
                (x - cx).powi(2) + (y - cy).powi(2) <= r * r
            }
            ShapeKind::Triangle => {
                // Apex (cx, y0), base from (x0, y1) to (x1, y1): inside when the
                // half width at height y covers |x - cx|.
                let cx = 0.5 * (self.x0 + self.x1);
                let t = (y - self.y0) / (self.y1 - self.y0);
                (x - cx).abs() <= t * 0.5 * (self.x1 - self.x0)
            }
        }
    }

    /// Centre of the bounding box.
    pub fn centre(&self) -> (f64, f64) {
        (0.5 * (self.x0 + self.x1), 0.5 * (self.y0 + self.y1))
    }

    fn boxes_apart(&self, other: &Shape, gap: f64) -> bool {
        self.x1 + gap <= other.x0
            || other.x1 + gap <= self.x0
            || self.y1 + gap <= other.y0
            || other.y1 + gap <= self.y0
    }
}

/// Background of a scene.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Background {
    /// One flat colour.
    Plain([u8; 3]),
    /// A flat colour plus independent Gaussian noise (std `sigma`, in 0..255
    /// units) on every channel of every pixel, shapes included; `seed` fixes it.
    Noisy {
        base: [u8; 3],
        sigma: f64,
        seed: u64,
    },
}

/// Parameters of the scene generator.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneConfig {
    /// Side of the square image in pixels.
    pub image_size: u32,
    pub min_shapes: usize,
    pub max_shapes: usize,
    /// Shape box sides as a fraction of the image side.
    pub min_size_frac: f64,
    pub max_size_frac: f64,
    /// Probability of a noisy background.
    pub noisy_prob: f64,
}

impl Default for SceneConfig {
    fn default() -> Self {
        Self {
            image_size: 96,
            min_shapes: 1,
            max_shapes: 3,
            min_size_frac: 0.28,
            max_size_frac: 0.45,
            noisy_prob: 0.5,
        }
    }
}

/// A scene description; [`Scene::render`] turns it into pixels and masks.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    pub image_size: u32,
    pub background: Background,
    pub shapes: Vec<Shape>,
}

/// The exact set of pixels a shape paints, row-major `image_size^2` booleans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeMask {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<bool>,
}

impl ShapeMask {
    /// Whether pixel `(x, y)` belongs to the shape (false outside the image).
    pub fn get(&self, x: u32, y: u32) -> bool {
        x < self.width && y < self.height && self.pixels[(y * self.width + x) as usize]
    }

    /// Number of pixels in the mask.
    pub fn area(&self) -> usize {
        self.pixels.iter().filter(|&&b| b).count()
    }

    /// Number of mask pixels inside the box `x0 <= x < x1, y0 <= y < y1`.
    pub fn area_in_box(&self, x0: u32, y0: u32, x1: u32, y1: u32) -> usize {
        let mut n = 0;
        for y in y0..y1.min(self.height) {
            for x in x0..x1.min(self.width) {
                n += usize::from(self.pixels[(y * self.width + x) as usize]);
            }
        }
        n
    }
}

/// A rendered scene.
#[derive(Debug, Clone)]
pub struct RenderedScene {
    pub image: RgbImage,
    /// One mask per shape, in `Scene::shapes` order.
    pub masks: Vec<ShapeMask>,
}

fn grey_base(rng: &mut DemoRng) -> [u8; 3] {
    let level = rng.uniform_range(60.0, 200.0);
    let mut c = [0u8; 3];
    for ch in &mut c {
        *ch = (level + rng.uniform_range(-8.0, 8.0))
            .round()
            .clamp(0.0, 255.0) as u8;
    }
    c
}

impl Scene {
    /// Draw a random scene. Shapes never overlap (boxes at least 2 px apart),
    /// so every mask is the whole shape.
    pub fn generate(rng: &mut DemoRng, cfg: &SceneConfig) -> Scene {
        let size = cfg.image_size as f64;
        let background = if rng.bernoulli(cfg.noisy_prob) {
            Background::Noisy {
                base: grey_base(rng),
                sigma: rng.uniform_range(6.0, 22.0),
                seed: rng.next_u64(),
            }
        } else {
            Background::Plain(grey_base(rng))
        };
        let wanted = rng.below(cfg.min_shapes, cfg.max_shapes + 1);
        let mut shapes: Vec<Shape> = Vec::with_capacity(wanted);
        let mut attempts = 0;
        while shapes.len() < wanted && attempts < 400 {
            attempts += 1;
            let kind = *rng.choose(&ShapeKind::ALL).unwrap_or(&ShapeKind::Circle);
            let colour = *rng.choose(&Colour::ALL).unwrap_or(&Colour::Red);
            let w = rng.uniform_range(cfg.min_size_frac, cfg.max_size_frac) * size;
            let h = match kind {
                ShapeKind::Circle => w,
                ShapeKind::Rectangle => (w * rng.uniform_range(0.6, 1.6))
                    .clamp(cfg.min_size_frac * size, cfg.max_size_frac * size),
                ShapeKind::Triangle => {
                    (w * rng.uniform_range(0.8, 1.2)).min(cfg.max_size_frac * size)
                }
            };
            let w = w.round();
            let h = h.round();
            let x0 = rng.uniform_range(1.0, size - w - 1.0).round();
            let y0 = rng.uniform_range(1.0, size - h - 1.0).round();
            let cand = Shape {
                kind,
                colour,
                x0,
                y0,
                x1: x0 + w,
                y1: y0 + h,
            };
            if shapes.iter().all(|s| s.boxes_apart(&cand, 2.0)) {
                shapes.push(cand);
            }
        }
        Scene {
            image_size: cfg.image_size,
            background,
            shapes,
        }
    }

    /// Pixels and exact masks.
    pub fn render(&self) -> RenderedScene {
        let n = self.image_size;
        let (base, noise) = match self.background {
            Background::Plain(c) => (c, None),
            Background::Noisy { base, sigma, seed } => (base, Some((sigma, seed))),
        };
        let mut image = RgbImage::from_pixel(n, n, Rgb(base));
        let mut masks: Vec<ShapeMask> = self
            .shapes
            .iter()
            .map(|_| ShapeMask {
                width: n,
                height: n,
                pixels: vec![false; (n * n) as usize],
            })
            .collect();
        for (shape, mask) in self.shapes.iter().zip(masks.iter_mut()) {
            let xa = shape.x0.floor().max(0.0) as u32;
            let ya = shape.y0.floor().max(0.0) as u32;
            let xb = (shape.x1.ceil() as u32).min(n);
            let yb = (shape.y1.ceil() as u32).min(n);
            for y in ya..yb {
                for x in xa..xb {
                    if shape.covers_pixel(x, y) {
                        mask.pixels[(y * n + x) as usize] = true;
                        image.put_pixel(x, y, Rgb(shape.colour.rgb()));
                    }
                }
            }
        }
        if let Some((sigma, seed)) = noise {
            let mut rng = DemoRng::new(seed);
            for p in image.pixels_mut() {
                for ch in p.0.iter_mut() {
                    *ch = (*ch as f64 + sigma * rng.normal())
                        .round()
                        .clamp(0.0, 255.0) as u8;
                }
            }
        }
        RenderedScene { image, masks }
    }

    /// Number of shapes of a kind.
    pub fn count_kind(&self, kind: ShapeKind) -> usize {
        self.shapes.iter().filter(|s| s.kind == kind).count()
    }

    /// Number of shapes of a colour.
    pub fn count_colour(&self, colour: Colour) -> usize {
        self.shapes.iter().filter(|s| s.colour == colour).count()
    }

    /// Whether a shape of this colour and kind is present.
    pub fn contains(&self, colour: Colour, kind: ShapeKind) -> bool {
        self.shapes
            .iter()
            .any(|s| s.colour == colour && s.kind == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenes(seed: u64, n: usize) -> Vec<Scene> {
        let cfg = SceneConfig::default();
        (0..n)
            .map(|k| Scene::generate(&mut DemoRng::for_stream(seed, k as u64), &cfg))
            .collect()
    }

    #[test]
    fn generation_is_deterministic_by_seed() {
        let a = scenes(11, 20);
        let b = scenes(11, 20);
        assert_eq!(a, b);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.render().image.as_raw(), y.render().image.as_raw());
        }
        assert_ne!(a, scenes(12, 20));
    }

    #[test]
    fn masks_are_exact_and_disjoint() {
        for scene in scenes(5, 60)
            .iter()
            .filter(|s| matches!(s.background, Background::Plain(_)))
        {
            let r = scene.render();
            let n = scene.image_size;
            let Background::Plain(bg) = scene.background else {
                unreachable!()
            };
            for y in 0..n {
                for x in 0..n {
                    let owners: Vec<usize> = (0..r.masks.len())
                        .filter(|&k| r.masks[k].get(x, y))
                        .collect();
                    assert!(owners.len() <= 1, "masks overlap at {x},{y}");
                    let px = r.image.get_pixel(x, y).0;
                    match owners.first() {
                        Some(&k) => assert_eq!(px, scene.shapes[k].colour.rgb()),
                        None => assert_eq!(px, bg),
                    }
                }
            }
        }
    }

    #[test]
    fn shapes_have_sensible_sizes_and_counts() {
        let cfg = SceneConfig::default();
        let mut counts = [0usize; 4];
        for scene in scenes(9, 300) {
            counts[scene.shapes.len()] += 1;
            let r = scene.render();
            for (shape, mask) in scene.shapes.iter().zip(&r.masks) {
                let min_side = cfg.min_size_frac * cfg.image_size as f64;
                // A triangle fills half its box, a circle pi/4 of it.
                assert!(mask.area() as f64 >= 0.4 * min_side * min_side, "{shape:?}");
                assert!(shape.x0 >= 0.0 && shape.x1 <= cfg.image_size as f64);
            }
        }
        assert_eq!(counts[0], 0);
        assert!(
            counts[1] > 60 && counts[2] > 60 && counts[3] > 60,
            "{counts:?}"
        );
    }

    #[test]
    fn triangle_and_circle_geometry() {
        let tri = Shape {
            kind: ShapeKind::Triangle,
            colour: Colour::Red,
            x0: 0.0,
            y0: 0.0,
            x1: 20.0,
            y1: 20.0,
        };
        assert!(tri.covers_pixel(9, 18));
        assert!(!tri.covers_pixel(0, 1));
        assert!(tri.covers_pixel(0, 19));
        let circ = Shape {
            kind: ShapeKind::Circle,
            ..tri
        };
        assert!(circ.covers_pixel(10, 10));
        assert!(!circ.covers_pixel(0, 0));
        assert!(!circ.covers_pixel(19, 19));
    }
}
