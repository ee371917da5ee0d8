//! Writers for the Hugging Face folder files of the demo models (everything
//! except `model.safetensors`): `config.json`, `preprocessor_config.json`,
//! `tokenizer.json` (+ `tokenizer_config.json`, `special_tokens_map.json`, and
//! `vocab.txt` for ViLT), laid out exactly like the Hub checkpoints
//! `dandelin/vilt-b32-finetuned-vqa` and `openai/clip-vit-base-patch32`.

use super::questions::{answer_labels, vocabulary_words};
use serde_json::{json, Map, Value};
use std::path::Path;

/// The BERT special tokens, in id order (ids 0..5 of the demo vocabulary).
pub const BERT_SPECIALS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
/// CLIP's unknown-word token (id 0) and begin / end of text tokens (the last
/// two ids, as in the Hub's CLIP vocabulary where id 0 is an ordinary token:
/// the engine's default CLIP text mask replaces a word by id 0).
pub const CLIP_BOS: &str = "<|startoftext|>";
pub const CLIP_EOS: &str = "<|endoftext|>";
pub const CLIP_UNK: &str = "<unk>";

/// Sizes of the demo ViLT VQA model.
#[derive(Debug, Clone, PartialEq)]
pub struct ViltDemoSpec {
    pub image_size: usize,
    pub patch_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
}

impl Default for ViltDemoSpec {
    fn default() -> Self {
        Self {
            image_size: 96,
            patch_size: 16,
            hidden_size: 64,
            num_hidden_layers: 3,
            num_attention_heads: 4,
            intermediate_size: 256,
            max_position_embeddings: 40,
        }
    }
}

/// Sizes of the demo CLIP dual encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipDemoSpec {
    pub image_size: usize,
    pub patch_size: usize,
    pub vision_hidden_size: usize,
    pub vision_layers: usize,
    pub vision_heads: usize,
    pub vision_intermediate_size: usize,
    pub text_hidden_size: usize,
    pub text_layers: usize,
    pub text_heads: usize,
    pub text_intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub projection_dim: usize,
}

impl Default for ClipDemoSpec {
    fn default() -> Self {
        Self {
            image_size: 96,
            patch_size: 16,
            vision_hidden_size: 64,
            vision_layers: 2,
            vision_heads: 4,
            vision_intermediate_size: 256,
            text_hidden_size: 64,
            text_layers: 2,
            text_heads: 4,
            text_intermediate_size: 256,
            max_position_embeddings: 32,
            projection_dim: 64,
        }
    }
}

/// Demo vocabulary of the ViLT tokenizer: BERT specials, then the generator's words.
pub fn bert_vocab() -> Vec<String> {
    let mut v: Vec<String> = BERT_SPECIALS.iter().map(|s| s.to_string()).collect();
    v.extend(vocabulary_words());
    v
}

/// Demo vocabulary of the CLIP tokenizer: unknown (id 0), the words, then BOS and EOS.
pub fn clip_vocab() -> Vec<String> {
    let mut v: Vec<String> = vec![CLIP_UNK.to_string()];
    v.extend(vocabulary_words());
    v.push(CLIP_BOS.to_string());
    v.push(CLIP_EOS.to_string());
    v
}

/// Ids of CLIP's BOS and EOS in [`clip_vocab`].
pub fn clip_bos_eos() -> (usize, usize) {
    let n = clip_vocab().len();
    (n - 2, n - 1)
}

fn vocab_map(vocab: &[String]) -> Map<String, Value> {
    vocab
        .iter()
        .enumerate()
        .map(|(i, w)| (w.clone(), json!(i)))
        .collect()
}

fn added_token(id: usize, content: &str) -> Value {
    json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
           "normalized": false, "special": true})
}

fn template(bos: &str, bos_id: usize, eos: &str, eos_id: usize) -> Value {
    json!({
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                   {"SpecialToken": {"id": eos, "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": eos, "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                 {"SpecialToken": {"id": eos, "type_id": 1}}],
        "special_tokens": {
            bos: {"id": bos, "ids": [bos_id], "tokens": [bos]},
            eos: {"id": eos, "ids": [eos_id], "tokens": [eos]}
        }
    })
}

/// BERT-uncased-style `tokenizer.json` (WordPiece over whole words, BERT
/// normaliser and pre-tokeniser, `[CLS] $A [SEP]`).
pub fn bert_tokenizer_json() -> Value {
    let vocab = bert_vocab();
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": BERT_SPECIALS.iter().enumerate().map(|(i, s)| added_token(i, s)).collect::<Vec<_>>(),
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": template("[CLS]", 2, "[SEP]", 3),
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab_map(&vocab)}
    })
}

/// CLIP-style `tokenizer.json`: lower-casing, whitespace/punctuation split, a
/// word-level vocabulary, `<|startoftext|> $A <|endoftext|>`.
pub fn clip_tokenizer_json() -> Value {
    let vocab = clip_vocab();
    let (bos, eos) = clip_bos_eos();
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [added_token(bos, CLIP_BOS), added_token(eos, CLIP_EOS)],
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": template(CLIP_BOS, bos, CLIP_EOS, eos),
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab_map(&vocab), "unk_token": CLIP_UNK}
    })
}

fn id2label() -> (Map<String, Value>, Map<String, Value>) {
    let labels = answer_labels();
    let id2label = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (i.to_string(), json!(l)))
        .collect();
    let label2id = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.clone(), json!(i)))
        .collect();
    (id2label, label2id)
}

/// `config.json` of the demo ViLT VQA model (keys as in dandelin/vilt-b32-finetuned-vqa).
pub fn vilt_config_json(spec: &ViltDemoSpec) -> Value {
    let (id2label, label2id) = id2label();
    json!({
        "architectures": ["ViltForQuestionAnswering"],
        "attention_probs_dropout_prob": 0.0,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "hidden_size": spec.hidden_size,
        "id2label": id2label,
        "image_size": spec.image_size,
        "initializer_range": 0.02,
        "intermediate_size": spec.intermediate_size,
        "label2id": label2id,
        "layer_norm_eps": 1e-12,
        "max_image_length": -1,
        "max_position_embeddings": spec.max_position_embeddings,
        "modality_type_vocab_size": 2,
        "model_type": "vilt",
        "num_attention_heads": spec.num_attention_heads,
        "num_channels": 3,
        "num_hidden_layers": spec.num_hidden_layers,
        "num_images": -1,
        "patch_size": spec.patch_size,
        "qkv_bias": true,
        "tie_word_embeddings": false,
        "torch_dtype": "float32",
        "transformers_version": "4.44.2",
        "type_vocab_size": 2,
        "vocab_size": bert_vocab().len()
    })
}

/// `config.json` of the demo CLIP model (keys as in openai/clip-vit-base-patch32).
pub fn clip_config_json(spec: &ClipDemoSpec) -> Value {
    let (bos, eos) = clip_bos_eos();
    json!({
        "architectures": ["CLIPModel"],
        "initializer_factor": 1.0,
        "logit_scale_init_value": 2.6592,
        "model_type": "clip",
        "projection_dim": spec.projection_dim,
        "text_config": {
            "model_type": "clip_text_model",
            "attention_dropout": 0.0,
            "bos_token_id": bos,
            "dropout": 0.0,
            "eos_token_id": eos,
            "hidden_act": "quick_gelu",
            "hidden_size": spec.text_hidden_size,
            "initializer_factor": 1.0,
            "initializer_range": 0.02,
            "intermediate_size": spec.text_intermediate_size,
            "layer_norm_eps": 1e-5,
            "max_position_embeddings": spec.max_position_embeddings,
            "num_attention_heads": spec.text_heads,
            "num_hidden_layers": spec.text_layers,
            "pad_token_id": eos,
            "projection_dim": spec.projection_dim,
            "vocab_size": clip_vocab().len()
        },
        "vision_config": {
            "model_type": "clip_vision_model",
            "attention_dropout": 0.0,
            "dropout": 0.0,
            "hidden_act": "quick_gelu",
            "hidden_size": spec.vision_hidden_size,
            "image_size": spec.image_size,
            "initializer_factor": 1.0,
            "initializer_range": 0.02,
            "intermediate_size": spec.vision_intermediate_size,
            "layer_norm_eps": 1e-5,
            "num_attention_heads": spec.vision_heads,
            "num_channels": 3,
            "num_hidden_layers": spec.vision_layers,
            "patch_size": spec.patch_size,
            "projection_dim": spec.projection_dim
        },
        "torch_dtype": "float32",
        "transformers_version": "4.44.2"
    })
}

/// ViLT's `preprocessor_config.json` with the shortest edge set to the demo size.
pub fn vilt_preprocessor_json(image_size: usize) -> Value {
    json!({
        "do_normalize": true,
        "do_pad": true,
        "do_rescale": true,
        "do_resize": true,
        "image_mean": [0.5, 0.5, 0.5],
        "image_processor_type": "ViltImageProcessor",
        "image_std": [0.5, 0.5, 0.5],
        "resample": 3,
        "rescale_factor": 0.00392156862745098,
        "size": {"shortest_edge": image_size},
        "size_divisor": 32
    })
}

/// CLIP's `preprocessor_config.json` with resize / crop set to the demo size.
pub fn clip_preprocessor_json(image_size: usize) -> Value {
    json!({
        "crop_size": {"height": image_size, "width": image_size},
        "do_center_crop": true,
        "do_convert_rgb": true,
        "do_normalize": true,
        "do_rescale": true,
        "do_resize": true,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_processor_type": "CLIPImageProcessor",
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "resample": 3,
        "rescale_factor": 0.00392156862745098,
        "size": {"shortest_edge": image_size}
    })
}

fn write_json(path: &Path, v: &Value) -> std::io::Result<()> {
    let s = serde_json::to_string_pretty(v).map_err(std::io::Error::other)?;
    std::fs::write(path, s + "\n")
}

/// Write every file of the ViLT folder except the weights.
pub fn write_vilt_files(dir: &Path, spec: &ViltDemoSpec) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_json(&dir.join("config.json"), &vilt_config_json(spec))?;
    write_json(
        &dir.join("preprocessor_config.json"),
        &vilt_preprocessor_json(spec.image_size),
    )?;
    write_json(&dir.join("tokenizer.json"), &bert_tokenizer_json())?;
    std::fs::write(dir.join("vocab.txt"), bert_vocab().join("\n") + "\n")?;
    write_json(
        &dir.join("tokenizer_config.json"),
        &json!({"do_lower_case": true, "model_max_length": spec.max_position_embeddings,
                "tokenizer_class": "BertTokenizer", "unk_token": "[UNK]", "sep_token": "[SEP]",
                "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}),
    )?;
    write_json(
        &dir.join("special_tokens_map.json"),
        &json!({"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
                "mask_token": "[MASK]"}),
    )
}

/// Write every file of the CLIP folder except the weights.
pub fn write_clip_files(dir: &Path, spec: &ClipDemoSpec) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_json(&dir.join("config.json"), &clip_config_json(spec))?;
    write_json(
        &dir.join("preprocessor_config.json"),
        &clip_preprocessor_json(spec.image_size),
    )?;
    write_json(&dir.join("tokenizer.json"), &clip_tokenizer_json())?;
    write_json(
        &dir.join("tokenizer_config.json"),
        &json!({"bos_token": CLIP_BOS, "eos_token": CLIP_EOS, "pad_token": CLIP_EOS, "unk_token": CLIP_UNK,
                "model_max_length": spec.max_position_embeddings, "do_lower_case": true,
                "tokenizer_class": "PreTrainedTokenizerFast"}),
    )?;
    write_json(
        &dir.join("special_tokens_map.json"),
        &json!({"bos_token": CLIP_BOS, "eos_token": CLIP_EOS, "pad_token": CLIP_EOS, "unk_token": CLIP_UNK}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(v: &Value) -> tokenizers::Tokenizer {
        let s = serde_json::to_string(v).unwrap();
        s.parse::<tokenizers::Tokenizer>()
            .expect("tokenizer.json parses")
    }

    #[test]
    fn bert_tokenizer_encodes_questions_with_cls_sep() {
        let tok = load(&bert_tokenizer_json());
        let enc = tok.encode("What color is the Triangle?", true).unwrap();
        assert_eq!(
            enc.get_tokens(),
            ["[CLS]", "what", "color", "is", "the", "triangle", "?", "[SEP]"]
        );
        assert_eq!(enc.get_ids()[0], 2);
        assert_eq!(*enc.get_ids().last().unwrap(), 3);
        assert_eq!(enc.get_special_tokens_mask(), [1, 0, 0, 0, 0, 0, 0, 1]);
        let unk = tok.encode("what zebra", true).unwrap();
        assert_eq!(unk.get_ids()[2], 1);
        assert_eq!(tok.token_to_id("[MASK]"), Some(4));
        assert_eq!(tok.get_vocab_size(true), bert_vocab().len());
    }

    #[test]
    fn clip_tokenizer_wraps_in_bos_eos() {
        let tok = load(&clip_tokenizer_json());
        let enc = tok
            .encode("a red triangle and a Blue circle", true)
            .unwrap();
        assert_eq!(enc.get_tokens().first().unwrap(), CLIP_BOS);
        assert_eq!(enc.get_tokens().last().unwrap(), CLIP_EOS);
        assert_eq!(enc.len(), 9);
        assert_eq!(enc.get_tokens()[6], "blue");
        assert_eq!(tok.encode("a zebra", true).unwrap().get_ids()[2], 0);
        assert_eq!(enc.get_ids()[0] as usize, clip_bos_eos().0);
        assert_eq!(*enc.get_ids().last().unwrap() as usize, clip_bos_eos().1);
    }

    #[test]
    fn configs_carry_the_hub_keys() {
        let v = vilt_config_json(&ViltDemoSpec::default());
        assert_eq!(v["model_type"], "vilt");
        assert_eq!(v["architectures"][0], "ViltForQuestionAnswering");
        assert_eq!(
            v["id2label"].as_object().unwrap().len(),
            answer_labels().len()
        );
        assert_eq!(
            v["label2id"]["yes"],
            answer_labels().iter().position(|l| l == "yes").unwrap()
        );
        let c = clip_config_json(&ClipDemoSpec::default());
        assert_eq!(c["model_type"], "clip");
        assert_eq!(c["text_config"]["vocab_size"], clip_vocab().len());
        assert_eq!(c["text_config"]["eos_token_id"], clip_bos_eos().1);
        let dir = tempfile::tempdir().unwrap();
        write_vilt_files(dir.path(), &ViltDemoSpec::default()).unwrap();
        write_clip_files(&dir.path().join("clip"), &ClipDemoSpec::default()).unwrap();
        tokenizers::Tokenizer::from_file(dir.path().join("tokenizer.json")).unwrap();
        tokenizers::Tokenizer::from_file(dir.path().join("clip/tokenizer.json")).unwrap();
    }
}
