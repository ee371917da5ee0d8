//! ViLT parity with transformers (tiny random checkpoints: VQA and retrieval heads,
//! a padded batch of non-square images with padded text, a vocab.txt-only tokenizer
//! and a pytorch_model.bin checkpoint).

mod common;

use candle_core::{DType, Device, IndexOp, Tensor};
use common::*;
use multishap_models::preprocess::{load_image, vilt_pad_batch};
use multishap_models::vilt::ViltInputs;
use multishap_models::{load_with, AnyImageProcessor, AnyModel, LoadOptions, ModelSource};

/// The reference inputs transformers saw for one case, as candle tensors.
struct ViltReference {
    ids_np: Npy,
    pm_np: Npy,
    ids: Tensor,
    am: Tensor,
    tt: Tensor,
    pm: Tensor,
    pv: Tensor,
}

impl ViltReference {
    fn load(name: &str) -> Self {
        let (r, c) = (reference(name), case(name));
        let ids_np = npy(&r, "input_ids.npy");
        let pm_np = npy(&r, "pixel_mask.npy");
        let pv = normalise_u8(
            &npy(&r, "pixels_u8.npy"),
            triple(&c["image_mean"]),
            triple(&c["image_std"]),
            Some(&pm_np.u32()),
        );
        Self {
            ids: ids_np.tensor_u32(),
            am: npy(&r, "attention_mask.npy").tensor_u32(),
            tt: npy(&r, "token_type_ids.npy").tensor_u32(),
            pm: pm_np.tensor_u32(),
            pv,
            ids_np,
            pm_np,
        }
    }

    fn inputs(&self) -> ViltInputs<'_> {
        ViltInputs {
            input_ids: &self.ids,
            attention_mask: &self.am,
            token_type_ids: &self.tt,
            pixel_values: &self.pv,
            pixel_mask: &self.pm,
        }
    }
}

fn run_case(name: &str, cache: &std::path::Path) {
    let opts = LoadOptions {
        cache_dir: Some(cache.to_path_buf()),
    };
    let loaded = load_with(
        &ModelSource::Local(checkpoint(name)),
        &Device::Cpu,
        DType::F32,
        &opts,
    )
    .unwrap();
    let r = reference(name);
    let c = case(name);
    let refs = ViltReference::load(name);
    let ids_np = &refs.ids_np;

    // Tokenizer: same ids as transformers (padding aside).
    let l = ids_np.shape[1];
    let flat = ids_np.u32();
    for (b, t) in c["texts"].as_array().unwrap().iter().enumerate() {
        let e = loaded
            .tokenizer
            .encode(t.as_str().unwrap(), loaded.max_text_len())
            .unwrap();
        assert_eq!(
            e.ids[..],
            flat[b * l..b * l + e.ids.len()],
            "{name} ids row {b}"
        );
        assert!(flat[b * l + e.ids.len()..(b + 1) * l]
            .iter()
            .all(|&x| x == loaded.tokenizer.pad_token_id()));
    }

    // Preprocessing + batch padding: same pixel values and mask (PNG photos).
    let AnyImageProcessor::Vilt(proc) = &loaded.image_processor else {
        panic!()
    };
    let paths: Vec<String> = c["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    if paths.iter().all(|p| p.ends_with(".png")) {
        let items: Vec<(Tensor, Tensor)> = paths
            .iter()
            .map(|p| {
                proc.preprocess(&load_image(&fixtures().join(p)).unwrap())
                    .unwrap()
            })
            .collect();
        let (opv, opm) = vilt_pad_batch(&items).unwrap();
        assert_close(&format!("{name} pixel_values"), &opv, &refs.pv, 1e-5);
        assert_eq!(
            opm.flatten_all().unwrap().to_vec1::<u32>().unwrap(),
            refs.pm_np.u32()
        );
    }

    let inputs = refs.inputs();
    let (vilt, logits) = match &loaded.model {
        AnyModel::ViltVqa(m) => (m.vilt(), m.forward(&inputs).unwrap()),
        AnyModel::ViltRetrieval(m) => (m.vilt(), m.forward(&inputs).unwrap().unsqueeze(1).unwrap()),
        AnyModel::Clip(_) => panic!("{name} is not ViLT"),
    };
    let (hidden, pooled) = vilt.forward(&inputs).unwrap();
    assert_eq!(
        hidden.dim(1).unwrap() as u64,
        c["seq_len"].as_u64().unwrap()
    );
    assert_close(
        &format!("{name} pooler_output"),
        &pooled,
        &npy(&r, "pooler_output.npy").tensor_f32(),
        1e-4,
    );
    assert_close(
        &format!("{name} text hidden"),
        &hidden.i((.., ..l, ..)).unwrap(),
        &npy(&r, "text_hidden.npy").tensor_f32(),
        1e-4,
    );
    assert_close(
        &format!("{name} image cls hidden"),
        &hidden.i((.., l, ..)).unwrap(),
        &npy(&r, "cls_image_hidden.npy").tensor_f32(),
        1e-4,
    );
    assert_close(
        &format!("{name} logits"),
        &logits,
        &npy(&r, "logits.npy").tensor_f32(),
        1e-4,
    );
    if let (AnyModel::ViltVqa(m), Some(labels)) = (&loaded.model, c["argmax_labels"].as_array()) {
        let am: Vec<u32> = logits.argmax(1).unwrap().to_vec1().unwrap();
        for (i, lab) in am.iter().zip(labels) {
            assert_eq!(m.id2label(*i as usize), lab.as_str());
            assert_eq!(m.label2id(lab.as_str().unwrap()), Some(*i as usize));
        }
    }
}

#[test]
fn vilt_vqa_padded_batch_of_non_square_images_matches_transformers() {
    let d = tempfile::tempdir().unwrap();
    run_case("vilt-vqa-tiny", d.path());
}

#[test]
fn vilt_retrieval_matches_transformers() {
    let d = tempfile::tempdir().unwrap();
    run_case("vilt-itm-tiny", d.path());
}

#[test]
fn vilt_with_vocab_txt_only_matches_transformers() {
    let d = tempfile::tempdir().unwrap();
    run_case("vilt-vqa-vocab-only", d.path());
}

#[test]
fn vilt_pytorch_bin_is_converted_once_and_matches_transformers() {
    let d = tempfile::tempdir().unwrap();
    run_case("vilt-itm-bin", d.path());
    let cached: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
    assert_eq!(cached.len(), 1, "one cached safetensors file");
    let f = cached[0].as_ref().unwrap().path();
    assert_eq!(f.extension().unwrap(), "safetensors");
    let t0 = std::fs::metadata(&f).unwrap().modified().unwrap();
    run_case("vilt-itm-bin", d.path());
    let t1 = std::fs::metadata(&f).unwrap().modified().unwrap();
    assert_eq!(t0, t1, "second load must reuse the cached conversion");
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
}

#[test]
fn vilt_runs_in_f16_close_to_f32() {
    let name = "vilt-vqa-tiny";
    let r = reference(name);
    let refs = ViltReference::load(name);
    let inputs = refs.inputs();
    let m = multishap_models::load(
        &ModelSource::Local(checkpoint(name)),
        &Device::Cpu,
        DType::F16,
    )
    .unwrap();
    let AnyModel::ViltVqa(vqa) = &m.model else {
        panic!()
    };
    let logits = vqa.forward(&inputs).unwrap();
    assert_eq!(logits.dtype(), DType::F32);
    let d = max_abs_diff(&logits, &npy(&r, "logits.npy").tensor_f32());
    eprintln!("f16 vilt logits: max |diff| = {d:.3e}");
    assert!(d < 5e-2, "{d}");
}
