//! Diverging blue-white-red colormap (ColorBrewer RdBu, reversed so that negative values are
//! blue and positive values red), centred on 0 with a symmetric scale.

/// RdBu 11-class from the most negative (dark blue) to the most positive (dark red).
const RDBU_R: [[u8; 3]; 11] = [
    [0x05, 0x30, 0x61],
    [0x21, 0x66, 0xac],
    [0x43, 0x93, 0xc3],
    [0x92, 0xc5, 0xde],
    [0xd1, 0xe5, 0xf0],
    [0xf7, 0xf7, 0xf7],
    [0xfd, 0xdb, 0xc7],
    [0xf4, 0xa5, 0x82],
    [0xd6, 0x60, 0x4d],
    [0xb2, 0x18, 0x2b],
    [0x67, 0x00, 0x1f],
];

/// Colour of `t` in `[-1, 1]` (clamped; NaN maps to the white centre).
pub fn rdbu(t: f64) -> [u8; 3] {
    let t = if t.is_nan() { 0.0 } else { t.clamp(-1.0, 1.0) };
    let x = (t + 1.0) * 0.5 * (RDBU_R.len() - 1) as f64;
    let i = (x.floor() as usize).min(RDBU_R.len() - 2);
    let f = x - i as f64;
    let (a, b) = (RDBU_R[i], RDBU_R[i + 1]);
    let mix = |k: usize| (a[k] as f64 * (1.0 - f) + b[k] as f64 * f).round() as u8;
    [mix(0), mix(1), mix(2)]
}

/// Colour of `value` on the symmetric scale `[-scale, scale]`.
pub fn diverging(value: f64, scale: f64) -> [u8; 3] {
    rdbu(normalise(value, scale))
}

/// `value / scale` clamped to `[-1, 1]`; 0 when the scale is not positive.
pub fn normalise(value: f64, scale: f64) -> f64 {
    if scale > 0.0 && scale.is_finite() {
        (value / scale).clamp(-1.0, 1.0)
    } else {
        0.0
    }
}

/// `#rrggbb` for SVG / HTML.
pub fn hex(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_and_centre() {
        assert_eq!(rdbu(-1.0), [0x05, 0x30, 0x61]);
        assert_eq!(rdbu(0.0), [0xf7, 0xf7, 0xf7]);
        assert_eq!(rdbu(1.0), [0x67, 0x00, 0x1f]);
        assert_eq!(rdbu(5.0), rdbu(1.0));
        assert_eq!(rdbu(f64::NAN), rdbu(0.0));
        let pos = diverging(0.6, 1.0);
        assert!(pos[0] > pos[2] + 60, "{pos:?}");
        let neg = diverging(-0.6, 1.0);
        assert!(neg[2] > neg[0] + 60, "{neg:?}");
        assert_eq!(normalise(3.0, 0.0), 0.0);
        assert_eq!(hex([255, 0, 16]), "#ff0010");
    }
}
