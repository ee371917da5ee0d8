//! Real checkpoints from the Hugging Face Hub (or the HF cache with HF_HUB_OFFLINE=1).
//! Ignored in CI (no hub). Run:
//!   MULTISHAP_COCO_39769=/path/to/000000039769.jpg \
//!   cargo test -p multishap-models --test models_real_weights -- --ignored --nocapture
//! (the COCO val2017 photo of two cats on a couch:
//!  images.cocodataset.org/val2017/000000039769.jpg)

use candle_core::{DType, Device, Tensor};
use multishap_models::preprocess::{load_image, vilt_pad_batch};
use multishap_models::vilt::ViltInputs;
use multishap_models::{load, AnyImageProcessor, AnyModel, ModelSource};

#[test]
#[ignore = "needs dandelin/vilt-b32-finetuned-vqa from the Hub and the COCO image"]
fn vilt_vqa_real_weights_counts_two_cats() {
    let image = std::env::var("MULTISHAP_COCO_39769")
        .expect("set MULTISHAP_COCO_39769 to the path of COCO val2017 000000039769.jpg");
    let m = load(
        &ModelSource::parse("dandelin/vilt-b32-finetuned-vqa"),
        &Device::Cpu,
        DType::F32,
    )
    .unwrap();
    let AnyModel::ViltVqa(vqa) = &m.model else {
        panic!("not a VQA model")
    };
    assert_eq!(vqa.num_labels(), 3129);
    let AnyImageProcessor::Vilt(proc) = &m.image_processor else {
        panic!()
    };
    let img = load_image(std::path::Path::new(&image)).unwrap();
    let (pv, pm) = vilt_pad_batch(&[proc.preprocess(&img).unwrap()]).unwrap();
    let enc = m
        .tokenizer
        .encode("How many cats are there?", m.max_text_len())
        .unwrap();
    let n = enc.ids.len();
    let ids = Tensor::from_vec(enc.ids.clone(), (1, n), &Device::Cpu).unwrap();
    let tt = Tensor::from_vec(enc.type_ids.clone(), (1, n), &Device::Cpu).unwrap();
    let am = Tensor::ones((1, n), DType::U32, &Device::Cpu).unwrap();
    let logits = vqa
        .forward(&ViltInputs {
            input_ids: &ids,
            attention_mask: &am,
            token_type_ids: &tt,
            pixel_values: &pv,
            pixel_mask: &pm,
        })
        .unwrap();
    let l: Vec<f32> = logits.get(0).unwrap().to_vec1().unwrap();
    eprintln!("logits[:3] = {:?}", &l[..3]);
    let expected = [-15.9495f32, -18.1472, -10.3041];
    for (a, b) in l[..3].iter().zip(expected) {
        assert!((a - b).abs() < 1e-3, "{a} vs {b}");
    }
    let best = logits.argmax(1).unwrap().to_vec1::<u32>().unwrap()[0];
    assert_eq!(vqa.id2label(best as usize), Some("2"));
}
