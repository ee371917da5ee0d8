//! Run configuration: the TOML files in `configs/` plus command-line overrides.
//!
//! ```toml
//! [model]
//! id = "dandelin/vilt-b32-finetuned-vqa"   # Hugging Face id (or `path = "../models/x"`,
//! revision = "main"                        #  relative to this file), optional revision
//! device = "cpu"                           # cpu | cuda | cuda:N | metal (default cpu)
//! dtype = "f32"                            # f32 | f16 | bf16 (default f32; bf16 on GPUs only)
//!
//! [estimator]
//! name = "regression-mc"                   # see `multishap game --help` for the list
//! draws = 32                               # K; budget = K x evaluations per draw
//! # budget = 40000                         # or a fixed number of model evaluations
//! seed = 0
//!
//! [masking.image] / [masking.text] / [scorer] / [batch]   # the engine's EngineConfig
//! ```
//! Unknown keys anywhere are rejected.
use crate::errors::{user, UserContext};
use anyhow::Result;
use candle_core::{DType, Device};
use multishap_core::{
    Players, DEFAULT_ESTIMATOR, DUAL_ESTIMATOR_NAMES, ESTIMATOR_NAMES, MAX_EXACT_PLAYERS,
};
use multishap_engine::{BatchConfig, EngineConfig, MaskingConfig, ScorerConfig};
use multishap_models::ModelSource;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// K used when neither the configuration nor the command line sets a budget
/// (the low end of the paper's recommended 32..128).
pub const DEFAULT_DRAWS: usize = 32;

/// Whether `name` is one of the dual-encoder estimators (CLIP only:
/// dual-encoder, dual-exact-text).
pub fn is_dual_estimator(name: &str) -> bool {
    DUAL_ESTIMATOR_NAMES.contains(&name)
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    pub model: ModelSection,
    pub estimator: EstimatorSection,
    pub masking: MaskingConfig,
    pub scorer: ScorerConfig,
    pub batch: BatchConfig,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSection {
    /// Hugging Face model id (`owner/name`, optionally `@revision`).
    pub id: Option<String>,
    /// Local model folder; relative paths are relative to the configuration file.
    pub path: Option<PathBuf>,
    pub revision: Option<String>,
    pub device: Option<String>,
    pub dtype: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EstimatorSection {
    pub name: Option<String>,
    /// Budget in model evaluations per sample (overrides `draws`).
    pub budget: Option<usize>,
    /// K draws per sample; the budget is K x [`evaluations_per_draw`].
    pub draws: Option<Draws>,
    pub seed: Option<u64>,
}

/// Number of draws: a count, or `"all-sizes"` = d - 1 (one coalition per size
/// 0..d-2 for every pair: the reference code's stratified mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Draws {
    Count(usize),
    Named(DrawsName),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DrawsName {
    AllSizes,
}

impl RunConfig {
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| {
            let msg = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
            match e.span() {
                Some(span) => {
                    let line = text.as_bytes()[..span.start.min(text.len())]
                        .iter()
                        .filter(|b| **b == b'\n')
                        .count()
                        + 1;
                    user(format!("line {line}: {msg}"))
                }
                None => user(msg),
            }
        })
    }

    /// Reads a configuration file; relative model paths become relative to it.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .user_ctx(|| format!("cannot read config {}", path.display()))?;
        let mut cfg =
            Self::from_toml(&text).map_err(|e| user(format!("config {}: {e}", path.display())))?;
        if let Some(p) = &cfg.model.path {
            if p.is_relative() {
                let base = path.parent().unwrap_or(Path::new("."));
                cfg.model.path = Some(base.join(p));
            }
        }
        if cfg.model.id.is_some() && cfg.model.path.is_some() {
            return Err(user(format!(
                "config {}: [model] has both id and path; give one",
                path.display()
            )));
        }
        Ok(cfg)
    }

    pub fn engine(&self) -> EngineConfig {
        EngineConfig {
            masking: self.masking.clone(),
            scorer: self.scorer.clone(),
            batch: self.batch.clone(),
        }
    }
}

/// The repository folder holding `models/` and `configs/`: `$MULTISHAP_HOME`,
/// else the source tree this binary was built from.
pub fn multishap_home() -> PathBuf {
    let home = match std::env::var_os("MULTISHAP_HOME") {
        Some(h) if !h.is_empty() => PathBuf::from(h),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(".."),
    };
    std::fs::canonicalize(&home).unwrap_or(home)
}

/// The shipped demo model used when neither `--config` nor `--model` is given.
pub const DEMO_MODEL: &str = "models/demo-vilt-vqa";
/// Its configuration, if present.
pub const DEMO_CONFIG: &str = "configs/demo-vilt-vqa.toml";

/// Command-line overrides shared by `explain`, `run` and `bench-k`.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub model: Option<String>,
    pub estimator: Option<String>,
    pub budget: Option<usize>,
    pub draws: Option<usize>,
    pub seed: Option<u64>,
    pub device: Option<String>,
    pub dtype: Option<String>,
}

/// How the per-sample budget is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetSpec {
    Evaluations(usize),
    Draws(Draws),
}

/// Configuration and overrides merged.
#[derive(Debug, Clone)]
pub struct Settings {
    pub model: ModelSource,
    /// Human-readable model id (Hub id or folder).
    pub model_label: String,
    pub device_name: String,
    pub dtype_name: String,
    pub estimator: String,
    pub budget: BudgetSpec,
    pub seed: u64,
    pub engine: EngineConfig,
    /// The merged configuration (written next to results for reproducibility).
    pub config: RunConfig,
}

impl Settings {
    pub fn resolve(o: &Overrides) -> Result<Self> {
        let mut cfg = match (&o.config, &o.model) {
            (Some(path), _) => RunConfig::load(path)?,
            (None, Some(_)) => RunConfig::default(),
            (None, None) => {
                let home = multishap_home();
                let demo_cfg = home.join(DEMO_CONFIG);
                let demo_model = home.join(DEMO_MODEL);
                if !demo_model.join("config.json").is_file() {
                    return Err(user(format!(
                        "no --config or --model given and the default demo model is missing at {}: \
                         set MULTISHAP_HOME to the multishap repository (holding models/demo-vilt-vqa) \
                         or pass --model / --config",
                        demo_model.display()
                    )));
                }
                let mut c = if demo_cfg.is_file() {
                    RunConfig::load(&demo_cfg)?
                } else {
                    RunConfig::default()
                };
                c.model.id = None;
                c.model.path = Some(demo_model);
                c
            }
        };
        if let Some(m) = &o.model {
            cfg.model.id = None;
            cfg.model.revision = None;
            cfg.model.path = None;
            match ModelSource::parse(m) {
                ModelSource::Local(p) => cfg.model.path = Some(p),
                ModelSource::Hub { repo, revision } => {
                    cfg.model.id = Some(repo);
                    cfg.model.revision = revision;
                }
            }
        }
        if let Some(d) = &o.device {
            cfg.model.device = Some(d.clone());
        }
        if let Some(d) = &o.dtype {
            cfg.model.dtype = Some(d.clone());
        }
        if let Some(e) = &o.estimator {
            cfg.estimator.name = Some(e.clone());
        }
        if let Some(b) = o.budget {
            cfg.estimator.budget = Some(b);
            cfg.estimator.draws = None;
        }
        if let Some(k) = o.draws {
            cfg.estimator.draws = Some(Draws::Count(k));
            cfg.estimator.budget = None;
        }
        if let Some(s) = o.seed {
            cfg.estimator.seed = Some(s);
        }
        let (model, model_label) = match (&cfg.model.id, &cfg.model.path) {
            (Some(id), None) => {
                let label = match &cfg.model.revision {
                    Some(r) => format!("{id}@{r}"),
                    None => id.clone(),
                };
                (
                    ModelSource::Hub {
                        repo: id.clone(),
                        revision: cfg.model.revision.clone(),
                    },
                    label,
                )
            }
            (None, Some(p)) => {
                if !p.join("config.json").is_file() {
                    return Err(user(format!(
                        "model folder {} has no config.json",
                        p.display()
                    )));
                }
                (ModelSource::Local(p.clone()), p.display().to_string())
            }
            (None, None) => {
                return Err(user(
                    "the configuration names no model: set [model] id or path, or pass --model",
                ))
            }
            (Some(_), Some(_)) => return Err(user("[model] has both id and path; give one")),
        };
        let estimator = match cfg.estimator.name.as_deref() {
            None | Some("default") => DEFAULT_ESTIMATOR.to_string(),
            Some(n) => n.to_string(),
        };
        check_estimator_name(&estimator)?;
        let budget = match (cfg.estimator.budget, cfg.estimator.draws) {
            (Some(b), _) => BudgetSpec::Evaluations(b),
            (None, Some(d)) => BudgetSpec::Draws(d),
            (None, None) => BudgetSpec::Draws(Draws::Count(DEFAULT_DRAWS)),
        };
        if matches!(
            budget,
            BudgetSpec::Evaluations(0) | BudgetSpec::Draws(Draws::Count(0))
        ) && estimator != "exact"
        {
            return Err(user("the budget must be positive"));
        }
        let device_name = cfg.model.device.clone().unwrap_or_else(|| "cpu".into());
        let dtype_name = cfg.model.dtype.clone().unwrap_or_else(|| "f32".into());
        parse_dtype(&dtype_name)?;
        parse_device_spec(&device_name)?;
        Ok(Self {
            model,
            model_label,
            device_name,
            dtype_name,
            estimator,
            budget,
            seed: cfg.estimator.seed.unwrap_or(0),
            engine: cfg.engine(),
            config: cfg,
        })
    }

    /// Opens the device (fails clearly when the binary lacks the backend).
    pub fn device(&self) -> Result<Device> {
        open_device(&self.device_name)
    }

    pub fn dtype(&self, device: &Device) -> Result<DType> {
        let dt = parse_dtype(&self.dtype_name)?;
        if device.is_cpu() && dt == DType::BF16 {
            return Err(user(format!(
                "--dtype {}: the CPU backend supports f32 and f16, not bf16",
                self.dtype_name
            )));
        }
        Ok(dt)
    }

    /// The budget in evaluations for a sample with `players`.
    pub fn budget_for(&self, players: Players) -> Result<usize> {
        budget_for(&self.estimator, self.budget, players)
    }
}

pub fn check_estimator_name(name: &str) -> Result<()> {
    if is_dual_estimator(name) || multishap_core::estimator_by_name(name).is_ok() {
        Ok(())
    } else {
        Err(user(format!(
            "unknown estimator '{name}'; known: {}, {}",
            ESTIMATOR_NAMES.join(", "),
            DUAL_ESTIMATOR_NAMES.join(", ")
        )))
    }
}

/// Model evaluations one *draw* of an estimator costs for `players` (m
/// patches, n tokens, d = m + n). A draw gives each (patch, token) pair one
/// sample of its discrete derivative, so K draws match the paper's "K
/// coalitions per pair":
///
/// | estimator | evaluations per draw |
/// |---|---|
/// | `per-pair`, `per-pair-stratified` | 4 m n (4 evaluations per pair) |
/// | `shared`, `shared-stratified`, `regression-mc`, `regression` | (m+1)(n+1) (a coalition toggled at every patch and token) |
/// | `permutation` | d + 1 + ceil(2 m n / d) (prefixes plus the expected adjacent cross pairs) |
/// | `dual-encoder` | m + n + 2 encoder passes (one image and one text base, toggled) |
/// | `dual-exact-text` | m + 1 image passes (one image base, toggled), plus 2^n text passes once ([`fixed_evaluations`]) |
/// | `exact` | none: 2^d evaluations in total |
pub fn evaluations_per_draw(estimator: &str, players: Players) -> Option<usize> {
    let (m, n) = (players.image, players.text);
    let d = m + n;
    match estimator {
        "per-pair" | "per-pair-stratified" => Some(4 * m * n),
        "permutation" => Some(d + 1 + (2 * m * n).div_ceil(d.max(1))),
        "dual-encoder" => Some(m + n + 2),
        "dual-exact-text" => Some(m + 1),
        "exact" => None,
        // shared / shared-stratified / regression-mc and its variants / default
        _ => Some((m + 1) * (n + 1)),
    }
}

/// Evaluations an estimator spends once per sample on top of its draws:
/// all 2^n text coalitions for `dual-exact-text` (an error above its text limit).
pub fn fixed_evaluations(estimator: &str, players: Players) -> Result<usize> {
    match estimator {
        "dual-exact-text" => {
            multishap_core::estimators::dual_exact_text::DualExactText::text_passes(players.text)
                .map_err(|e| user(e.to_string()))
        }
        _ => Ok(0),
    }
}

pub fn budget_for(estimator: &str, spec: BudgetSpec, players: Players) -> Result<usize> {
    let d = players.total();
    if estimator == "exact" {
        if d > MAX_EXACT_PLAYERS {
            return Err(user(format!(
                "the exact estimator enumerates 2^d coalitions and supports d <= {MAX_EXACT_PLAYERS}; this sample has d = {d} \
                 (use a coarser [masking.image] grid or a sampling estimator)"
            )));
        }
        return Ok(1usize << d);
    }
    match spec {
        BudgetSpec::Evaluations(b) => Ok(b),
        BudgetSpec::Draws(draws) => {
            let per = evaluations_per_draw(estimator, players).ok_or_else(|| {
                user(format!(
                    "estimator {estimator} has no notion of draws; set a budget"
                ))
            })?;
            let k = match draws {
                Draws::Count(k) => k,
                Draws::Named(DrawsName::AllSizes) => d.saturating_sub(1).max(1),
            };
            Ok(k * per + fixed_evaluations(estimator, players)?)
        }
    }
}

pub fn parse_dtype(s: &str) -> Result<DType> {
    match s.to_ascii_lowercase().as_str() {
        "f32" | "float32" => Ok(DType::F32),
        "f16" | "float16" | "half" => Ok(DType::F16),
        "bf16" | "bfloat16" => Ok(DType::BF16),
        _ => Err(user(format!("--dtype {s:?}: expected f32, f16 or bf16"))),
    }
}

/// `cpu`, `cuda`, `cuda:N`, `metal`, `metal:N` -> (backend, ordinal).
pub fn parse_device_spec(s: &str) -> Result<(String, usize)> {
    let (kind, idx) = match s.split_once(':') {
        Some((k, i)) => {
            let i = i
                .parse::<usize>()
                .map_err(|_| user(format!("--device {s:?}: bad device index")))?;
            (k.to_ascii_lowercase(), i)
        }
        None => (s.to_ascii_lowercase(), 0),
    };
    match kind.as_str() {
        "cpu" | "cuda" | "metal" => Ok((kind, idx)),
        _ => Err(user(format!(
            "--device {s:?}: expected cpu, cuda[:N] or metal[:N]"
        ))),
    }
}

pub fn open_device(s: &str) -> Result<Device> {
    let (kind, idx) = parse_device_spec(s)?;
    match kind.as_str() {
        "cuda" => Device::new_cuda(idx).user_ctx(|| {
            format!(
                "cannot open CUDA device {idx} (this binary needs the `cuda` feature and a GPU)"
            )
        }),
        "metal" => Device::new_metal(idx).user_ctx(|| {
            format!(
                "cannot open Metal device {idx} (this binary needs the `metal` feature on macOS)"
            )
        }),
        _ => Ok(Device::Cpu),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sections_and_rejects_unknown_keys() {
        let c = RunConfig::from_toml(
            "[model]\nid = \"a/b\"\n[estimator]\nname = \"shared\"\ndraws = \"all-sizes\"\nseed = 3\n\
             [masking.text]\nmode = \"delete\"\n[scorer]\ntarget = \"ground_truth\"\n",
        )
        .unwrap();
        assert_eq!(c.model.id.as_deref(), Some("a/b"));
        assert_eq!(c.estimator.draws, Some(Draws::Named(DrawsName::AllSizes)));
        assert_eq!(
            c.engine().masking.text.mode,
            multishap_engine::TextMaskMode::Delete
        );
        let err = RunConfig::from_toml("[estimator]\nbudgte = 3\n").unwrap_err();
        assert!(crate::errors::is_user_error(&err));
        assert!(err.to_string().contains("budgte"), "{err}");
        assert!(RunConfig::from_toml("[modle]\nid = \"x\"\n").is_err());
        assert!(RunConfig::from_toml(
            "[masking.image]\nbaseline = { kind = \"blur\", sigmaa = 1.0 }\n"
        )
        .is_err());
    }

    #[test]
    fn budgets_per_estimator() {
        let p = Players::new(4, 3);
        assert_eq!(evaluations_per_draw("per-pair", p), Some(48));
        assert_eq!(evaluations_per_draw("shared", p), Some(20));
        assert_eq!(evaluations_per_draw("permutation", p), Some(8 + 4));
        assert_eq!(
            budget_for("regression-mc", BudgetSpec::Draws(Draws::Count(10)), p).unwrap(),
            200
        );
        assert_eq!(
            budget_for(
                "per-pair-stratified",
                BudgetSpec::Draws(Draws::Named(DrawsName::AllSizes)),
                p
            )
            .unwrap(),
            6 * 48
        );
        assert_eq!(
            budget_for("shared", BudgetSpec::Evaluations(77), p).unwrap(),
            77
        );
        assert_eq!(
            budget_for("exact", BudgetSpec::Evaluations(1), p).unwrap(),
            128
        );
        assert!(budget_for("exact", BudgetSpec::Evaluations(1), Players::new(30, 3)).is_err());
        // 10 toggled image bases (5 passes each) plus all 2^3 text coalitions
        assert_eq!(
            budget_for("dual-exact-text", BudgetSpec::Draws(Draws::Count(10)), p).unwrap(),
            10 * 5 + 8
        );
        assert!(budget_for(
            "dual-exact-text",
            BudgetSpec::Draws(Draws::Count(10)),
            Players::new(4, 17)
        )
        .is_err());
    }

    #[test]
    fn devices_and_dtypes() {
        assert_eq!(parse_device_spec("cuda:1").unwrap(), ("cuda".into(), 1));
        assert!(parse_device_spec("tpu").is_err());
        assert!(parse_dtype("f64").is_err());
        assert!(matches!(open_device("cpu").unwrap(), Device::Cpu));
    }
}
