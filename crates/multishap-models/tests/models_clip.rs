//! CLIP parity with transformers (tiny random checkpoints, f32 on CPU).

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use multishap_models::clip::{eos_positions, logits_from_features};
use multishap_models::{load, AnyImageProcessor, AnyModel, ModelSource};

fn run_case(name: &str) {
    let loaded = load(
        &ModelSource::Local(checkpoint(name)),
        &Device::Cpu,
        DType::F32,
    )
    .unwrap();
    let AnyModel::Clip(model) = &loaded.model else {
        panic!("{name} is not CLIP")
    };
    let r = reference(name);
    let c = case(name);
    // Inputs: transformers' pixel values and ids.
    let pv = normalise_u8(
        &npy(&r, "pixels_u8.npy"),
        triple(&c["image_mean"]),
        triple(&c["image_std"]),
        None,
    );
    let ids_np = npy(&r, "input_ids.npy");
    let ids = ids_np.tensor_u32();
    let eos_ref = npy(&r, "eos_positions.npy").tensor_u32();

    // Our tokenizer gives the same ids (rows padded with the pad id) and EOS positions.
    let texts: Vec<String> = c["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    let l = ids_np.shape[1];
    let pad = loaded.tokenizer.pad_token_id();
    let eos_id = loaded.tokenizer.eos_token_id().unwrap();
    let mut rows = Vec::new();
    for t in &texts {
        let e = loaded.tokenizer.encode(t, loaded.max_text_len()).unwrap();
        let mut row = e.ids.clone();
        assert!(e.special[0] && *e.special.last().unwrap());
        row.resize(l, pad);
        rows.push(row);
    }
    let flat: Vec<u32> = rows.iter().flatten().copied().collect();
    assert_eq!(
        flat,
        ids_np.u32(),
        "{name}: token ids differ from transformers'"
    );
    let eos = Tensor::new(eos_positions(&rows, eos_id), &Device::Cpu).unwrap();
    assert_eq!(
        eos.to_vec1::<u32>().unwrap(),
        eos_ref.to_vec1::<u32>().unwrap()
    );

    // Our preprocessing of the photos gives transformers' pixel values.
    let AnyImageProcessor::Clip(proc) = &loaded.image_processor else {
        panic!()
    };
    let imgs: Vec<Tensor> = c["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let img =
                multishap_models::preprocess::load_image(&fixtures().join(p.as_str().unwrap()))
                    .unwrap();
            proc.preprocess(&img).unwrap()
        })
        .collect();
    let ours_pv = Tensor::stack(&imgs, 0).unwrap();
    let jpeg = c["images"].to_string().contains(".jpg");
    if !jpeg {
        assert_close(&format!("{name} pixel_values"), &ours_pv, &pv, 1e-5);
    }

    // Model outputs.
    let img_f = model.get_image_features(&pv).unwrap();
    let txt_f = model.get_text_features(&ids, &eos).unwrap();
    assert_close(
        &format!("{name} image_features"),
        &img_f,
        &npy(&r, "image_features.npy").tensor_f32(),
        1e-4,
    );
    assert_close(
        &format!("{name} text_features"),
        &txt_f,
        &npy(&r, "text_features.npy").tensor_f32(),
        1e-4,
    );
    let vis_pooled = model.vision_model().pooled(&pv).unwrap();
    assert_close(
        &format!("{name} vision pooled"),
        &vis_pooled,
        &npy(&r, "vision_pooled.npy").tensor_f32(),
        1e-4,
    );
    let txt_pooled = model.text_model().pooled(&ids, &eos).unwrap();
    assert_close(
        &format!("{name} text pooled"),
        &txt_pooled,
        &npy(&r, "text_pooled.npy").tensor_f32(),
        1e-4,
    );
    let scale = model.logit_scale().unwrap();
    assert!((scale - c["logit_scale_exp"].as_f64().unwrap() as f32).abs() < 1e-5);
    let logits = model.forward(&pv, &ids, &eos).unwrap();
    assert_close(
        &format!("{name} logits_per_image"),
        &logits,
        &npy(&r, "logits_per_image.npy").tensor_f32(),
        1e-4,
    );
    let again = logits_from_features(&img_f, &txt_f, scale).unwrap();
    assert!(max_abs_diff(&logits, &again) < 1e-5);
}

#[test]
fn clip_tiny_a_matches_transformers() {
    run_case("clip-tiny-a");
}

#[test]
fn clip_tiny_b_matches_transformers() {
    run_case("clip-tiny-b");
}

#[test]
fn clip_batch_rows_are_independent() {
    let loaded = load(
        &ModelSource::Local(checkpoint("clip-tiny-b")),
        &Device::Cpu,
        DType::F32,
    )
    .unwrap();
    let AnyModel::Clip(model) = &loaded.model else {
        panic!()
    };
    let r = reference("clip-tiny-b");
    let c = case("clip-tiny-b");
    let pv = normalise_u8(
        &npy(&r, "pixels_u8.npy"),
        triple(&c["image_mean"]),
        triple(&c["image_std"]),
        None,
    );
    let all = model.get_image_features(&pv).unwrap();
    let one = model
        .get_image_features(&pv.narrow(0, 1, 1).unwrap())
        .unwrap();
    assert!(max_abs_diff(&all.narrow(0, 1, 1).unwrap(), &one) < 1e-5);
}
