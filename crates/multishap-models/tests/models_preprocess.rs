//! Preprocessing parity with transformers' PIL image processors on real photos.

mod common;

use candle_core::Tensor;
use common::*;
use multishap_models::preprocess::{
    load_image, ClipImageProcessor, Rgb8, ViltImageProcessor, CLIP_MEAN, CLIP_STD,
};
use multishap_models::ModelError;

fn meta() -> serde_json::Value {
    let p = fixtures().join("preprocess/meta.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn chw_u8(im: &Rgb8) -> Vec<u8> {
    let n = im.width * im.height;
    let mut out = vec![0u8; 3 * n];
    for c in 0..3 {
        for i in 0..n {
            out[c * n + i] = im.data[i * 3 + c];
        }
    }
    out
}

fn clip_default() -> ClipImageProcessor {
    ClipImageProcessor {
        shortest_edge: 224,
        crop_height: 224,
        crop_width: 224,
        do_resize: true,
        do_center_crop: true,
        do_rescale: true,
        rescale_factor: 1.0 / 255.0,
        do_normalize: true,
        image_mean: CLIP_MEAN,
        image_std: CLIP_STD,
    }
}

fn check(key: &str, tag: &str, resized: &Rgb8, ours: &Tensor, mean: [f32; 3], std: [f32; 3]) {
    let m = &meta()[format!("{key}_{tag}")];
    let reference = read_npy(&fixtures().join(format!("preprocess/{key}_{tag}_u8.npy")));
    let shape: Vec<usize> = m["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(ours.dims(), shape.as_slice(), "{key} {tag} shape");
    // The u8 image after PIL bicubic resize (+ crop) is identical, pixel for pixel.
    let ours_u8 = chw_u8(resized);
    let ref_u8 = reference.u8();
    let n_diff = ours_u8.iter().zip(&ref_u8).filter(|(a, b)| a != b).count();
    eprintln!("{key} {tag}: {n_diff} of {} u8 values differ", ref_u8.len());
    assert_eq!(n_diff, 0, "{key} {tag}: resized pixels differ from PIL's");
    // And the normalised floats equal transformers' output (stored exactly as u8).
    let expected = normalise_u8(&reference, mean, std, None);
    assert_close(&format!("preprocess {key} {tag}"), ours, &expected, 1e-5);
    let sum: f64 = ours
        .to_dtype(candle_core::DType::F64)
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar()
        .unwrap();
    assert!((sum - m["sum"].as_f64().unwrap()).abs() < 1e-2 * (1.0 + sum.abs() * 1e-6));
}

#[test]
fn clip_processor_matches_transformers_on_png_photos() {
    let p = clip_default();
    for (key, file) in [
        ("chelsea", "chelsea.png"),
        ("coffee", "coffee_portrait.png"),
    ] {
        let img = load_image(&fixtures().join("images").join(file)).unwrap();
        let resized = p.resized(&Rgb8::from_dynamic(&img).unwrap());
        let ours = p.preprocess(&img).unwrap();
        check(key, "clip", &resized, &ours, CLIP_MEAN, CLIP_STD);
    }
}

/// JPEG: the `image` crate's decoder (zune-jpeg) and PIL's libjpeg-turbo differ by a
/// grey level on about 1% of the pixels (IDCT / chroma upsampling rounding); the
/// resampler itself is exact (checked on PNGs, and on this photo decoded by PIL:
/// 0 differing values). So JPEG inputs agree with transformers to within a few
/// grey levels, not bit for bit.
#[test]
fn clip_and_vilt_processors_on_jpeg_photo_differ_only_by_decoding() {
    let img = load_image(&fixtures().join("images/franz-kafka.jpg")).unwrap();
    let rgb = Rgb8::from_dynamic(&img).unwrap();
    let p96 = ViltImageProcessor {
        shortest_edge: 96,
        ..ViltImageProcessor::default()
    };
    for (tag, resized) in [
        ("clip", clip_default().resized(&rgb)),
        ("vilt96", p96.resized(&rgb).unwrap()),
    ] {
        let reference = read_npy(&fixtures().join(format!("preprocess/kafka_{tag}_u8.npy")));
        let ours = chw_u8(&resized);
        let ref_u8 = reference.u8();
        assert_eq!(ours.len(), ref_u8.len());
        let diffs: Vec<i32> = ours
            .iter()
            .zip(&ref_u8)
            .map(|(a, b)| (*a as i32 - *b as i32).abs())
            .collect();
        let max = diffs.iter().copied().max().unwrap_or(0);
        let frac = diffs.iter().filter(|&&d| d > 0).count() as f64 / diffs.len() as f64;
        eprintln!(
            "kafka {tag} (JPEG): max u8 diff {max}, {:.2}% of values differ",
            frac * 100.0
        );
        assert!(
            max <= 4 && frac < 0.03,
            "JPEG decoding differs more than expected"
        );
    }
}

#[test]
fn vilt_processor_matches_transformers() {
    let p = ViltImageProcessor::default();
    let img = load_image(&fixtures().join("images/chelsea.png")).unwrap();
    let resized = p.resized(&Rgb8::from_dynamic(&img).unwrap()).unwrap();
    let (pv, mask) = p.preprocess(&img).unwrap();
    check("chelsea", "vilt", &resized, &pv, [0.5; 3], [0.5; 3]);
    assert_eq!(mask.dims(), &pv.dims()[1..]);
    let ones: u32 = mask.sum_all().unwrap().to_scalar().unwrap();
    assert_eq!(ones as usize, mask.elem_count());

    let p96 = ViltImageProcessor {
        shortest_edge: 96,
        ..ViltImageProcessor::default()
    };
    let img = load_image(&fixtures().join("images/coffee_portrait.png")).unwrap();
    let resized = p96.resized(&Rgb8::from_dynamic(&img).unwrap()).unwrap();
    let (pv, _) = p96.preprocess(&img).unwrap();
    check("coffee", "vilt96", &resized, &pv, [0.5; 3], [0.5; 3]);
}

#[test]
fn processors_read_preprocessor_config() {
    let c = ClipImageProcessor::from_json_file(
        &checkpoint("clip-tiny-b").join("preprocessor_config.json"),
    )
    .unwrap();
    assert_eq!((c.shortest_edge, c.crop_height, c.crop_width), (48, 48, 48));
    assert_eq!(c.image_mean, CLIP_MEAN);
    let v = ViltImageProcessor::from_json_file(
        &checkpoint("vilt-vqa-tiny").join("preprocessor_config.json"),
    )
    .unwrap();
    assert_eq!((v.shortest_edge, v.size_divisor), (64, 32));
    assert_eq!(v.image_mean, [0.5; 3]);
}

#[test]
fn unreadable_and_unsupported_images_are_clear_errors() {
    let not_png = fixtures().join("images/not_an_image.png");
    match load_image(&not_png) {
        Err(ModelError::Image { path, .. }) => assert_eq!(path, not_png),
        other => panic!("expected an image error, got {other:?}"),
    }
    let missing = fixtures().join("images/does_not_exist.png");
    assert!(matches!(load_image(&missing), Err(ModelError::Io { .. })));
    let dir = tempfile::tempdir().unwrap();
    let gif = dir.path().join("x.gif");
    std::fs::write(&gif, b"GIF89a\x01\x00\x01\x00\x00\x00\x00;").unwrap();
    let err = load_image(&gif).unwrap_err();
    assert!(matches!(err, ModelError::Image { .. }), "{err:?}");
    assert!(err.to_string().contains("x.gif"), "{err}");
}
