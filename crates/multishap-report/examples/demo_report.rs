//! Writes an explanation page and a dataset report for synthetic records, to look at the
//! output: `cargo run -p multishap-report --example demo_report -- OUT_DIR [IMAGE]`.
//! The SII values are synthetic (a smooth blob per token), not the output of any model.
use image::{DynamicImage, Rgb, RgbImage};
use multishap_report::schema::{positive_negative, ModelInfo, PatchGrid, Prediction};
use multishap_report::{
    build_report, write_explanation_page, ExplanationRecord, HeatmapOptions, ReportOptions,
};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().ok_or("usage: demo_report OUT_DIR [IMAGE]")?);
    let image = match args.next() {
        Some(p) => image::open(p)?,
        None => {
            let mut img = RgbImage::new(480, 320);
            for (x, y, p) in img.enumerate_pixels_mut() {
                *p = Rgb([(x / 2) as u8, (y * 3 / 4) as u8, 160]);
            }
            DynamicImage::ImageRgb8(img)
        }
    };
    std::fs::create_dir_all(&out)?;
    let image_path = out.join("input.png");
    image.save(&image_path)?;
    let (rows, cols) = (12usize, 12usize);
    let tokens = ["what", "color", "is", "the", "cat", "##s", "tail"];
    let mut records = Vec::new();
    for s in 0..6 {
        let sii: Vec<Vec<f64>> = (0..rows * cols)
            .map(|i| {
                let (r, c) = ((i / cols) as f64, (i % cols) as f64);
                (0..tokens.len())
                    .map(|j| {
                        let (cr, cc) =
                            (((j * 5 + s * 3) % rows) as f64, ((j * 7 + s) % cols) as f64);
                        let d2 = (r - cr).powi(2) + (c - cc).powi(2);
                        let sign = if (j + s) % 3 == 0 { -1.0 } else { 1.0 };
                        sign * (1.0 + j as f64) * (-d2 / 6.0).exp() - 0.02
                    })
                    .collect()
            })
            .collect();
        let (p, n, ratio) = positive_negative(sii.iter().flatten().copied());
        records.push(ExplanationRecord {
            schema_version: multishap_report::SCHEMA_VERSION,
            id: format!("demo-{s}"),
            model: ModelInfo {
                id: "synthetic".into(),
                revision: None,
            },
            preprocessing: serde_json::json!({"grid": [rows, cols]}),
            masking: serde_json::json!({"image": "gray", "text": "delete"}),
            scorer: "synthetic".into(),
            target: None,
            estimator: "none (synthetic values)".into(),
            budget: 0,
            seed: s as u64,
            evaluations: 0,
            seconds: 0.0,
            prediction: Prediction {
                label: "black".into(),
                score: 1.0,
            },
            full_score: 1.0,
            empty_score: None,
            answers: Some(vec!["black".into(), "black".into(), "gray".into()]),
            answer_type: Some(if s % 2 == 0 { "other" } else { "yes/no" }.into()),
            question_type: Some("what color".into()),
            text: "what color is the cat's tail".into(),
            image: Some("input.png".into()),
            tokens: tokens.iter().map(|t| t.to_string()).collect(),
            grid: PatchGrid::uniform(rows, cols, image.width(), image.height()),
            sii_stderr: vec![vec![0.0; tokens.len()]; rows * cols],
            sii,
            shapley: None,
            positive_sum: p,
            negative_sum: n,
            positive_ratio: ratio,
            model_rows: None,
        });
    }
    let page = write_explanation_page(
        &records[0],
        Some(&image),
        &out.join("demo-0"),
        &HeatmapOptions::default(),
    )?;
    let opts = ReportOptions {
        image_root: Some(out.clone()),
        ..Default::default()
    };
    let summary = build_report(&records, &out.join("report"), &opts)?;
    println!("{}\n{}", page.index.display(), summary.html.display());
    Ok(())
}
