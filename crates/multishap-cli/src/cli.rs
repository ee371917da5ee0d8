//! Command-line definitions (clap derive). The subcommands live in [`crate::cmd`].
use crate::config::Overrides;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "multishap",
    version,
    about = "Cross-modal Shapley interaction (MultiSHAP) explanations for vision-language models"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Explain one (image, question / caption): result.json, heatmaps, matrix, index.html.
    Explain(ExplainArgs),
    /// Explain a dataset into results.jsonl (crash-safe, resumable, shardable).
    Run(RunArgs),
    /// Dataset report (report.json, CSVs, report.html) from one or more results files.
    Report(ReportArgs),
    /// Cost and stability of the estimator for several K (draws): how to choose K.
    BenchK(BenchKArgs),
    /// Estimate (or compute exactly) the SII grid of a game given as a 2^d value table (.npy).
    Game(GameArgs),
    /// Model evaluations per second on a device (real-size CLIP-B/32 and ViLT-B/32 with random
    /// weights, or --model), FLOP/s, and parity of the device's outputs with the CPU's.
    Speed(SpeedArgs),
    /// Faithfulness measures of the explanations (pair masking, deletion, sufficiency,
    /// modality, redundancy, stability, masking ablation, multi-scale).
    Eval(crate::eval::EvalArgs),
}

/// Model, estimator and device settings; flags override the configuration file.
#[derive(Debug, Clone, Args, Default)]
pub struct CommonArgs {
    /// TOML configuration (see configs/); default: the shipped demo model's.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Model: a local folder or a Hugging Face id[@revision].
    #[arg(long)]
    pub model: Option<String>,
    /// Estimator: shared-stratified (default), shared, regression-mc, regression, per-pair,
    /// per-pair-stratified, permutation, dual-encoder and dual-exact-text (CLIP only),
    /// exact (d <= 22).
    #[arg(long)]
    pub estimator: Option<String>,
    /// Budget in model evaluations per sample.
    #[arg(long, conflicts_with = "draws")]
    pub budget: Option<usize>,
    /// K draws per sample: budget = K x evaluations per draw of the estimator.
    #[arg(long)]
    pub draws: Option<usize>,
    /// Random seed (`run` derives each sample's seed from it and the sample id).
    #[arg(long)]
    pub seed: Option<u64>,
    /// cpu, cuda[:N] or metal[:N].
    #[arg(long)]
    pub device: Option<String>,
    /// f32, f16 or bf16 (bf16 on GPUs only).
    #[arg(long)]
    pub dtype: Option<String>,
}

impl CommonArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config: self.config.clone(),
            model: self.model.clone(),
            estimator: self.estimator.clone(),
            budget: self.budget,
            draws: self.draws,
            seed: self.seed,
            device: self.device.clone(),
            dtype: self.dtype.clone(),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[arg(long, value_name = "FILE")]
    pub image: PathBuf,
    /// The question (VQA models).
    #[arg(long, group = "text_input")]
    pub question: Option<String>,
    /// The caption (retrieval models: CLIP, ViLT ITM).
    #[arg(long, group = "text_input")]
    pub caption: Option<String>,
    /// Ground-truth answer (for `scorer.target = "ground_truth"`).
    #[arg(long)]
    pub answer: Option<String>,
    /// Output folder.
    #[arg(long, default_value = "multishap-explain")]
    pub out: PathBuf,
    /// Sample id written to result.json.
    #[arg(long, default_value = "explain")]
    pub id: String,
}

#[derive(Debug, Clone, Args)]
pub struct DatasetArgs {
    /// JSONL manifest: {"id", "image", "text", "answer"?} per line (images relative to it).
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// VQAv2 questions JSON (with --images and optionally --vqa-annotations).
    #[arg(long, value_name = "FILE")]
    pub vqa_questions: Option<PathBuf>,
    #[arg(long, value_name = "FILE", requires = "vqa_questions")]
    pub vqa_annotations: Option<PathBuf>,
    /// COCO captions JSON (captions_*.json, with --images).
    #[arg(long, value_name = "FILE")]
    pub coco_captions: Option<PathBuf>,
    /// Flickr30k Karpathy JSON (dataset_flickr30k.json, with --images).
    #[arg(long, value_name = "FILE")]
    pub flickr30k: Option<PathBuf>,
    /// Karpathy split to keep (train, val, test); default all.
    #[arg(long, requires = "flickr30k")]
    pub split: Option<String>,
    /// Image folder of VQAv2 / COCO / Flickr30k.
    #[arg(long, value_name = "DIR")]
    pub images: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// Output folder (results.jsonl, errors.jsonl; per shard results-I-of-N.jsonl).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Skip samples already in the results file (a torn last line is ignored).
    #[arg(long, conflicts_with = "force")]
    pub resume: bool,
    /// Overwrite existing results.
    #[arg(long)]
    pub force: bool,
    /// This process's shard `i/n` (sample k goes to shard k mod n); default from
    /// SLURM_ARRAY_TASK_* or JOB_COMPLETION_INDEX + MULTISHAP_NUM_SHARDS.
    #[arg(long)]
    pub shard: Option<String>,
    /// Only the first N samples (of this shard).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Explain N samples together, their coalitions packed into shared
    /// forward passes (ViLT models; overrides `[batch] samples_in_flight`;
    /// default 1: packing gained nothing measurable on the CPU nor on an H100 at
    /// the default budgets, see benches/RESULTS.md).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub samples_in_flight: Option<u64>,
    /// Seconds between progress log lines when stderr is not a terminal.
    #[arg(long, default_value_t = 30.0)]
    pub log_every: f64,
}

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// results.jsonl files (shards of one run), folders holding results*.jsonl, or
    /// `explain` outputs (result.json or its folder).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    #[arg(long, value_name = "DIR", default_value = "report")]
    pub out: PathBuf,
    #[arg(long)]
    pub title: Option<String>,
    /// Folder for relative image paths in the records.
    #[arg(long)]
    pub image_root: Option<PathBuf>,
    /// Example heatmaps in the HTML report.
    #[arg(long)]
    pub examples: Option<usize>,
    /// Tokens per sample counted in the top-token table.
    #[arg(long)]
    pub top_k: Option<usize>,
    /// `multishap eval` outputs (eval-<measure>.json files or folders holding them) shown in
    /// the report's Evaluation section; eval-*.json files inside the input folders are
    /// included without this flag.
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub eval: Vec<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct BenchKArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// JSONL manifest of the samples.
    #[arg(long, value_name = "FILE")]
    pub manifest: PathBuf,
    /// Draws K to compare (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "8,16,32,64,128,256")]
    pub k: Vec<usize>,
    /// Only the first N samples.
    #[arg(long)]
    pub limit: Option<usize>,
    /// The two seeds compared (default: seed and seed + 1).
    #[arg(long, value_delimiter = ',', num_args = 2)]
    pub seeds: Option<Vec<u64>>,
    /// Output folder (bench-k.json, bench-k.svg).
    #[arg(long, value_name = "DIR", default_value = "bench-k")]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct SpeedArgs {
    /// cpu, cuda[:N] or metal[:N].
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// f32, f16 or bf16 (comma separated to sweep several; bf16 on GPUs only).
    #[arg(long, value_delimiter = ',', default_value = "f32")]
    pub dtype: Vec<String>,
    /// A model folder or Hugging Face id to measure instead of the random real-size models.
    #[arg(long)]
    pub model: Option<String>,
    /// Towers to measure: clip_image, clip_text, vilt_vqa (random real-size models), or those of
    /// --model (default: all it has).
    #[arg(long, value_delimiter = ',')]
    pub towers: Option<Vec<String>>,
    /// Batch sizes (default: 1,8,32,64 on the CPU, 64,256,1024,2048,4096 on a GPU). The sweep of
    /// a tower stops at the first batch that runs out of memory.
    #[arg(long, value_delimiter = ',')]
    pub batches: Option<Vec<usize>>,
    /// Text tokens per evaluation, special tokens included (capped at the model's maximum).
    #[arg(long, default_value_t = 12)]
    pub text_len: usize,
    /// Minimum timed seconds per (tower, dtype, batch); at least 3 timed runs.
    #[arg(long, default_value_t = 2.0)]
    pub min_seconds: f64,
    /// Also compare the device's outputs with the CPU's in f32 on the same inputs (batch 8):
    /// max |difference| and its ratio to max |CPU output|.
    #[arg(long)]
    pub check_cpu: bool,
    /// Peak FLOP/s of the device in TFLOP/s (e.g. 800 for an H100's bf16 dense peak): adds the
    /// achieved fraction of it.
    #[arg(long)]
    pub peak_tflops: Option<f64>,
    /// Write one JSON object per measurement here as well (JSONL).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Random seed of the weights and inputs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, Clone, Args)]
pub struct GameArgs {
    /// 1-D float64/float32 .npy of length 2^(m+n); entry b = v(S) with player p in S iff bit p of b
    /// (image players 0..m-1, text players m..m+n-1).
    #[arg(long, value_name = "FILE")]
    pub values: PathBuf,
    #[arg(long)]
    pub image_players: usize,
    #[arg(long)]
    pub text_players: usize,
    /// Estimator name (default: the default estimator).
    #[arg(long)]
    pub estimator: Option<String>,
    /// Budget in game evaluations (ignored with --exact).
    #[arg(long, default_value_t = 10_000)]
    pub budget: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Exact enumeration (d <= 22) instead of an estimator.
    #[arg(long, conflicts_with = "estimator")]
    pub exact: bool,
    /// Output JSON file (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}
