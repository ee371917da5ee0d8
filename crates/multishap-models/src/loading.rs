//! `--model` resolution (Hub id[@revision] or local folder), config dispatch,
//! strict weight checking and tokenizer / image processor selection.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use serde_json::Value;

use crate::clip::{ClipConfig, ClipModel};
use crate::error::{ModelError, Result};
use crate::preprocess::{ClipImageProcessor, ViltImageProcessor};
use crate::tokenizer::TextTokenizer;
use crate::vilt::{ViltConfig, ViltForImageAndTextRetrieval, ViltForQuestionAnswering};
use crate::weights::{check_weights, pth_to_safetensors_cached};

/// Where a model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    Hub {
        repo: String,
        revision: Option<String>,
    },
    Local(PathBuf),
}

impl ModelSource {
    /// An existing path (or one starting with `.`, `/` or `~`) is a local folder;
    /// otherwise `owner/name[@revision]` is a Hub id.
    pub fn parse(s: &str) -> Self {
        let p = Path::new(s);
        if p.exists() || s.starts_with('.') || s.starts_with('/') || s.starts_with('~') {
            return ModelSource::Local(p.to_path_buf());
        }
        match s.split_once('@') {
            Some((repo, rev)) if !rev.is_empty() => ModelSource::Hub {
                repo: repo.to_string(),
                revision: Some(rev.to_string()),
            },
            Some((repo, _)) => ModelSource::Hub {
                repo: repo.to_string(),
                revision: None,
            },
            None => ModelSource::Hub {
                repo: s.to_string(),
                revision: None,
            },
        }
    }
}

/// Which head a checkpoint is (from `model_type` + `architectures`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    Clip,
    ViltVqa,
    ViltRetrieval,
    ViltBase,
}

/// A loaded model of any supported kind.
#[derive(Debug, Clone)]
pub enum AnyModel {
    Clip(ClipModel),
    ViltVqa(ViltForQuestionAnswering),
    ViltRetrieval(ViltForImageAndTextRetrieval),
}

/// The image processor matching the model.
#[derive(Debug, Clone)]
pub enum AnyImageProcessor {
    Clip(ClipImageProcessor),
    Vilt(ViltImageProcessor),
}

/// Everything `load` gives back.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    pub kind: ModelKind,
    pub id: String,
    pub revision: Option<String>,
    pub model: AnyModel,
    pub tokenizer: TextTokenizer,
    pub image_processor: AnyImageProcessor,
    pub device: Device,
    pub dtype: DType,
}

impl LoadedModel {
    /// Longest text (in tokens, special tokens included) the model accepts.
    pub fn max_text_len(&self) -> usize {
        match &self.model {
            AnyModel::Clip(m) => m.config().text_config.max_position_embeddings,
            AnyModel::ViltVqa(m) => m.vilt().config().max_position_embeddings,
            AnyModel::ViltRetrieval(m) => m.vilt().config().max_position_embeddings,
        }
    }
}

/// Options of [`load_with`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Where converted `pytorch_model.bin` checkpoints are cached; default
    /// `$MULTISHAP_CACHE`, else `$XDG_CACHE_HOME/multishap`, else `~/.cache/multishap`.
    pub cache_dir: Option<PathBuf>,
}

impl LoadOptions {
    fn cache_dir(&self) -> PathBuf {
        if let Some(d) = &self.cache_dir {
            return d.clone();
        }
        if let Some(d) = std::env::var_os("MULTISHAP_CACHE") {
            return PathBuf::from(d);
        }
        if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
            return PathBuf::from(d).join("multishap");
        }
        if let Some(h) = std::env::var_os("HOME") {
            return PathBuf::from(h).join(".cache").join("multishap");
        }
        std::env::temp_dir().join("multishap-cache")
    }
}

/// The files of a checkpoint, wherever they came from.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub config: PathBuf,
    pub preprocessor_config: Option<PathBuf>,
    pub tokenizer_json: Option<PathBuf>,
    pub vocab_txt: Option<PathBuf>,
    pub safetensors: Option<PathBuf>,
    pub pytorch_bin: Option<PathBuf>,
}

fn existing(p: PathBuf) -> Option<PathBuf> {
    p.is_file().then_some(p)
}

fn local_files(dir: &Path) -> Result<ModelFiles> {
    let config = dir.join("config.json");
    if !dir.is_dir() || !config.is_file() {
        return Err(ModelError::NoConfig(dir.to_path_buf()));
    }
    Ok(ModelFiles {
        config,
        preprocessor_config: existing(dir.join("preprocessor_config.json")),
        tokenizer_json: existing(dir.join("tokenizer.json")),
        vocab_txt: existing(dir.join("vocab.txt")),
        safetensors: existing(dir.join("model.safetensors")),
        pytorch_bin: existing(dir.join("pytorch_model.bin")),
    })
}

fn hub_files(repo: &str, revision: Option<&str>) -> Result<ModelFiles> {
    use hf_hub::{Repo, RepoType};
    let hub_err = |m: String| ModelError::Hub {
        repo: repo.to_string(),
        message: m,
    };
    let r = match revision {
        Some(rev) => Repo::with_revision(repo.to_string(), RepoType::Model, rev.to_string()),
        None => Repo::new(repo.to_string(), RepoType::Model),
    };
    let offline = std::env::var("HF_HUB_OFFLINE")
        .map(|v| matches!(v.as_str(), "1" | "true" | "TRUE" | "yes" | "ON" | "on"))
        .unwrap_or(false);
    type Fetch = Box<dyn Fn(&str) -> std::result::Result<PathBuf, String>>;
    let fetch: Fetch = if offline {
        let cache = hf_hub::Cache::from_env().repo(r);
        Box::new(move |f: &str| {
            cache
                .get(f)
                .ok_or_else(|| format!("{f} is not in the HF cache and HF_HUB_OFFLINE is set"))
        })
    } else {
        let cache = hf_hub::Cache::from_env();
        let token = std::env::var("HF_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .or_else(|| cache.token());
        let api = hf_hub::api::sync::ApiBuilder::from_env()
            .with_token(token)
            .build()
            .map_err(|e| hub_err(e.to_string()))?;
        let api = api.repo(r);
        Box::new(move |f: &str| api.get(f).map_err(|e| e.to_string()))
    };
    let config = fetch("config.json").map_err(hub_err)?;
    let safetensors = fetch("model.safetensors").ok();
    let pytorch_bin = if safetensors.is_none() {
        Some(fetch("pytorch_model.bin").map_err(|e| {
            hub_err(format!(
                "neither model.safetensors nor pytorch_model.bin: {e}"
            ))
        })?)
    } else {
        None
    };
    let tokenizer_json = fetch("tokenizer.json").ok();
    let vocab_txt = if tokenizer_json.is_none() {
        fetch("vocab.txt").ok()
    } else {
        None
    };
    Ok(ModelFiles {
        config,
        preprocessor_config: fetch("preprocessor_config.json").ok(),
        tokenizer_json,
        vocab_txt,
        safetensors,
        pytorch_bin,
    })
}

/// Resolves a source to local files (downloading through `hf-hub` when needed).
pub fn resolve(source: &ModelSource) -> Result<ModelFiles> {
    match source {
        ModelSource::Local(dir) => local_files(dir),
        ModelSource::Hub { repo, revision } => hub_files(repo, revision.as_deref()),
    }
}

fn read_config(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| ModelError::Json {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// `model_type` + `architectures` -> kind.
pub fn detect_kind(config: &Value) -> Result<ModelKind> {
    let model_type = config
        .get("model_type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let architectures: Vec<String> = config
        .get("architectures")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let has = |n: &str| architectures.iter().any(|a| a == n);
    match model_type.as_str() {
        "clip" => Ok(ModelKind::Clip),
        "vilt" if has("ViltForQuestionAnswering") => Ok(ModelKind::ViltVqa),
        "vilt" if has("ViltForImageAndTextRetrieval") => Ok(ModelKind::ViltRetrieval),
        "vilt" => Ok(ModelKind::ViltBase),
        _ => Err(ModelError::UnknownModelType {
            model_type,
            architectures,
        }),
    }
}

fn parse_config<T: serde::de::DeserializeOwned>(path: &Path, v: Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| ModelError::Json {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Parses a CLIP config (older files keep the towers in `*_config_dict`).
pub fn parse_clip_config(path: &Path, mut v: Value) -> Result<ClipConfig> {
    if let Some(obj) = v.as_object_mut() {
        for t in ["text_config", "vision_config"] {
            let missing = obj.get(t).map(|x| x.is_null()).unwrap_or(true);
            if missing {
                let d = obj
                    .get(&format!("{t}_dict"))
                    .cloned()
                    .filter(|x| x.is_object())
                    .unwrap_or_else(|| Value::Object(Default::default()));
                obj.insert(t.to_string(), d);
            }
        }
    }
    parse_config(path, v)
}

/// Loads a model folder or Hub repo on `device` in `dtype` (f32 on CPU; f16/bf16
/// on CUDA/Metal), checking every parameter before building.
pub fn load(source: &ModelSource, device: &Device, dtype: DType) -> Result<LoadedModel> {
    load_with(source, device, dtype, &LoadOptions::default())
}

pub fn load_with(
    source: &ModelSource,
    device: &Device,
    dtype: DType,
    opts: &LoadOptions,
) -> Result<LoadedModel> {
    let files = resolve(source)?;
    let (id, revision) = match source {
        ModelSource::Local(p) => (p.display().to_string(), None),
        ModelSource::Hub { repo, revision } => (repo.clone(), revision.clone()),
    };
    let config = read_config(&files.config)?;
    let kind = detect_kind(&config)?;
    if kind == ModelKind::ViltBase {
        return Err(ModelError::BadInput(format!(
            "{id} is a ViLT checkpoint without a question-answering or retrieval head \
             (architectures {:?}); use a -finetuned-vqa or retrieval checkpoint",
            config.get("architectures")
        )));
    }
    let dir = files
        .config
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let weights = match (&files.safetensors, &files.pytorch_bin) {
        (Some(st), _) => st.clone(),
        (None, Some(bin)) => pth_to_safetensors_cached(bin, &opts.cache_dir())?,
        (None, None) => return Err(ModelError::NoWeights(dir.clone())),
    };
    let tokenizer = match (&files.tokenizer_json, &files.vocab_txt) {
        (Some(t), _) => TextTokenizer::from_file(t)?,
        (None, Some(v)) if kind != ModelKind::Clip => TextTokenizer::bert_from_vocab(v)?,
        _ => return Err(ModelError::NoTokenizer(dir.clone())),
    };
    // Safety: the file is only read; candle mmaps it for the model's lifetime.
    let make_vb = || -> Result<VarBuilder<'static>> {
        Ok(unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], dtype, device)? })
    };
    let (model, image_processor) = match kind {
        ModelKind::Clip => {
            let cfg = parse_clip_config(&files.config, config)?;
            check_weights(&weights, |vb| ClipModel::new(&cfg, vb))?;
            let m = ClipModel::new(&cfg, make_vb()?)?;
            let ip = match &files.preprocessor_config {
                Some(p) => ClipImageProcessor::from_json_file(p)?,
                None => ClipImageProcessor::default_for(&cfg),
            };
            (AnyModel::Clip(m), AnyImageProcessor::Clip(ip))
        }
        ModelKind::ViltVqa | ModelKind::ViltRetrieval | ModelKind::ViltBase => {
            let cfg: ViltConfig = parse_config(&files.config, config)?;
            let ip = match &files.preprocessor_config {
                Some(p) => ViltImageProcessor::from_json_file(p)?,
                None => ViltImageProcessor::default(),
            };
            let m = if kind == ModelKind::ViltVqa {
                check_weights(&weights, |vb| ViltForQuestionAnswering::new(&cfg, vb))?;
                AnyModel::ViltVqa(ViltForQuestionAnswering::new(&cfg, make_vb()?)?)
            } else {
                check_weights(&weights, |vb| ViltForImageAndTextRetrieval::new(&cfg, vb))?;
                AnyModel::ViltRetrieval(ViltForImageAndTextRetrieval::new(&cfg, make_vb()?)?)
            };
            (m, AnyImageProcessor::Vilt(ip))
        }
    };
    Ok(LoadedModel {
        kind,
        id,
        revision,
        model,
        tokenizer,
        image_processor,
        device: device.clone(),
        dtype,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_hub_ids_and_folders() {
        assert_eq!(
            ModelSource::parse("dandelin/vilt-b32-finetuned-vqa@main"),
            ModelSource::Hub {
                repo: "dandelin/vilt-b32-finetuned-vqa".into(),
                revision: Some("main".into())
            }
        );
        assert_eq!(
            ModelSource::parse("openai/clip-vit-base-patch32"),
            ModelSource::Hub {
                repo: "openai/clip-vit-base-patch32".into(),
                revision: None
            }
        );
        assert_eq!(
            ModelSource::parse("./some/folder"),
            ModelSource::Local(PathBuf::from("./some/folder"))
        );
    }

    #[test]
    fn kinds_from_config() {
        let k = |s: &str| detect_kind(&serde_json::from_str(s).unwrap());
        assert_eq!(k(r#"{"model_type":"clip"}"#).unwrap(), ModelKind::Clip);
        assert_eq!(
            k(r#"{"model_type":"vilt","architectures":["ViltForQuestionAnswering"]}"#).unwrap(),
            ModelKind::ViltVqa
        );
        assert_eq!(
            k(r#"{"model_type":"vilt","architectures":["ViltForImageAndTextRetrieval"]}"#).unwrap(),
            ModelKind::ViltRetrieval
        );
        assert!(matches!(
            k(r#"{"model_type":"bert"}"#),
            Err(ModelError::UnknownModelType { .. })
        ));
    }
}
