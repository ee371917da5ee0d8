//! Heatmap colours / sizes and the explanation page's references.
use image::{DynamicImage, Rgb, RgbImage};
use multishap_report::schema::{ModelInfo, PatchGrid, Prediction};
use multishap_report::{write_explanation_page, ExplanationRecord, HeatmapOptions};
use std::path::Path;

/// A 2x2 grid over a `w x h` image and two tokens; token 0 has SII +1 at the top-left
/// patch and -1 at the bottom-right, token 1 is small and positive everywhere.
fn record(w: u32, h: u32) -> ExplanationRecord {
    let sii = vec![
        vec![1.0, 0.05],
        vec![0.0, 0.05],
        vec![0.0, 0.05],
        vec![-1.0, 0.05],
    ];
    let values: Vec<f64> = sii.iter().flatten().copied().collect();
    let (p, n, ratio) = multishap_report::schema::positive_negative(values);
    ExplanationRecord {
        schema_version: multishap_report::SCHEMA_VERSION,
        id: "img<1>&\"x\"".into(),
        model: ModelInfo {
            id: "openai/clip-vit-base-patch32".into(),
            revision: None,
        },
        preprocessing: serde_json::json!({"size": 224}),
        masking: serde_json::json!({"image": "mean"}),
        scorer: "clip-similarity".into(),
        target: None,
        estimator: "exact".into(),
        budget: 64,
        seed: 3,
        evaluations: 64,
        seconds: 0.1,
        prediction: Prediction {
            label: "a red square".into(),
            score: 0.3,
        },
        full_score: 0.3,
        empty_score: Some(0.1),
        answers: None,
        answer_type: None,
        question_type: None,
        text: "a <red> square".into(),
        image: None,
        tokens: vec!["<red>".into(), "square".into()],
        grid: PatchGrid::uniform(2, 2, w, h),
        sii_stderr: vec![vec![0.0; 2]; 4],
        sii,
        shapley: Some(vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6]),
        positive_sum: p,
        negative_sum: n,
        positive_ratio: ratio,
        model_rows: None,
    }
}

fn gray(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_pixel(w, h, Rgb([128, 128, 128])))
}

fn load(path: &Path) -> RgbImage {
    image::open(path).unwrap().to_rgb8()
}

fn is_red(p: &Rgb<u8>) -> bool {
    p.0[0] as i32 > p.0[2] as i32 + 40 && p.0[0] as i32 > p.0[1] as i32 + 40
}

fn is_blue(p: &Rgb<u8>) -> bool {
    p.0[2] as i32 > p.0[0] as i32 + 40
}

#[test]
fn heatmap_dims_and_colours() {
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (96, 64);
    let page = write_explanation_page(
        &record(w, h),
        Some(&gray(w, h)),
        dir.path(),
        &HeatmapOptions::default(),
    )
    .unwrap();
    let maps = &page.heatmaps;
    assert_eq!(maps.tokens.len(), 2);
    assert_eq!((maps.width, maps.height), (w, h));
    let t0 = load(&dir.path().join(&maps.tokens[0].file));
    assert_eq!(t0.dimensions(), (w, h));
    // Centres of the top-left (+1) and bottom-right (-1) patches.
    assert!(is_red(t0.get_pixel(24, 16)), "{:?}", t0.get_pixel(24, 16));
    assert!(is_blue(t0.get_pixel(72, 48)), "{:?}", t0.get_pixel(72, 48));
    // A zero patch far from the extremes stays close to the gray image.
    let p = t0.get_pixel(72, 16);
    assert!(p.0.iter().all(|&c| (c as i32 - 128).abs() < 50), "{p:?}");
    // With the shared scale, token 1 (|SII| = .05 of 1) is barely tinted.
    let t1 = load(&dir.path().join(&maps.tokens[1].file));
    assert!(t1
        .pixels()
        .all(|p| p.0.iter().all(|&c| (c as i32 - 128).abs() < 12)));
    let avg = load(&dir.path().join(&maps.average));
    assert_eq!(avg.dimensions(), (w, h));
    assert!(is_red(avg.get_pixel(24, 16)));
}

#[test]
fn large_images_are_downscaled_and_crop_boxes_respected() {
    let dir = tempfile::tempdir().unwrap();
    let mut rec = record(2000, 1000);
    // Patches cover only the centre square [500, 1500) x [0, 1000) (a centre crop).
    rec.grid.boxes = PatchGrid::uniform(2, 2, 1000, 1000)
        .boxes
        .iter()
        .map(|b| [b[0] + 500.0, b[1], b[2] + 500.0, b[3]])
        .collect();
    let opts = HeatmapOptions {
        max_side: 400,
        ..Default::default()
    };
    let page = write_explanation_page(&rec, Some(&gray(2000, 1000)), dir.path(), &opts).unwrap();
    let t0 = load(&dir.path().join(&page.heatmaps.tokens[0].file));
    assert_eq!(t0.dimensions(), (400, 200));
    // Outside the crop: untouched gray; top-left patch of the crop (x 100..200): red.
    assert_eq!(t0.get_pixel(20, 50).0, [128, 128, 128]);
    assert_eq!(t0.get_pixel(380, 150).0, [128, 128, 128]);
    assert!(is_red(t0.get_pixel(150, 50)));
    assert!(is_blue(t0.get_pixel(250, 150)));
}

#[test]
fn page_references_existing_images_and_escapes_text() {
    let dir = tempfile::tempdir().unwrap();
    let page = write_explanation_page(
        &record(64, 64),
        None,
        dir.path(),
        &HeatmapOptions::default(),
    )
    .unwrap();
    let html = std::fs::read_to_string(&page.index).unwrap();
    let srcs: Vec<&str> = html
        .split("src=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect();
    // image, average, 2 tokens, matrix
    assert_eq!(srcs.len(), 5, "{srcs:?}");
    for s in &srcs {
        assert!(!s.contains("://"), "external resource {s}");
        let p = dir.path().join(s);
        assert!(p.is_file(), "{s} missing");
        if s.ends_with(".png") {
            image::open(&p).unwrap();
        }
    }
    assert!(srcs.contains(&"matrix.svg"));
    // Token names appear (escaped) next to their maps; raw markup never does.
    assert!(html.contains("&lt;red&gt;"));
    assert!(!html.contains("<red>"));
    assert!(html.contains("img&lt;1&gt;&amp;&quot;x&quot;"));
    // Without an image the maps are drawn on a blank canvas of 32 px per patch.
    assert_eq!((page.heatmaps.width, page.heatmaps.height), (64, 64));
    let svg = std::fs::read_to_string(dir.path().join("matrix.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("&lt;red&gt;") && svg.contains("square"));
    assert_eq!(svg.matches("<title>").count(), 8); // one per (token, patch) cell
}
