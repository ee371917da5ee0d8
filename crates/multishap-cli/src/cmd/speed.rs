//! `multishap speed`: model evaluations per second on a device, achieved
//! FLOP/s, and parity of the device's outputs with the CPU's (the checks a
//! new GPU build needs). One JSON object per measurement on stdout (and in
//! `--out`), a readable line per measurement on stderr.
use crate::cli::SpeedArgs;
use crate::config::{open_device, parse_dtype};
use crate::errors::{user, UserContext};
use anyhow::Result;
use candle_core::{DType, Device};
use multishap_engine::speed::{time_forward, Parity, SpeedModel, Tower};
use multishap_models::ModelSource;
use serde_json::{json, Value};
use std::io::Write;

/// Batch size of the parity check.
const PARITY_BATCH: usize = 8;

/// The models measured: the random real-size ones, or one loaded checkpoint.
struct Subject {
    label: String,
    source: Option<ModelSource>,
}

impl Subject {
    /// The model(s) on `dev` in `dtype`, each with the towers asked for.
    fn build(
        &self,
        dev: &Device,
        dtype: DType,
        seed: u64,
        towers: &[Tower],
    ) -> Result<Vec<(SpeedModel, Vec<Tower>)>> {
        let models = match &self.source {
            Some(src) => {
                let loaded = multishap_models::load(src, dev, dtype)
                    .user_ctx(|| format!("cannot load model {}", self.label))?;
                vec![SpeedModel::from_loaded(loaded.model)]
            }
            None => {
                let mut v = Vec::new();
                if towers
                    .iter()
                    .any(|t| matches!(t, Tower::ClipImage | Tower::ClipText))
                {
                    v.push(SpeedModel::random_clip_b32(seed, dev, dtype)?);
                }
                if towers.contains(&Tower::ViltVqa) {
                    v.push(SpeedModel::random_vilt_b32_vqa(seed, dev, dtype)?);
                }
                v
            }
        };
        Ok(models
            .into_iter()
            .map(|m| {
                let own: Vec<Tower> = towers
                    .iter()
                    .copied()
                    .filter(|t| m.towers().contains(t))
                    .collect();
                (m, own)
            })
            .collect())
    }
}

fn towers_asked(a: &SpeedArgs) -> Result<Vec<Tower>> {
    let names = a.towers.clone().unwrap_or_else(|| {
        let all = ["clip_image", "clip_text", "vilt_vqa"];
        let mut v: Vec<String> = all.iter().map(|s| s.to_string()).collect();
        if a.model.is_some() {
            v.push("vilt_itm".into());
        }
        v
    });
    names
        .iter()
        .map(|n| Tower::parse(n).map_err(|e| user(e.to_string())))
        .collect()
}

fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "f32",
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        _ => "other",
    }
}

/// Runs the measurements; returns every record written.
pub fn run(a: &SpeedArgs) -> Result<Vec<Value>> {
    let dev = open_device(&a.device)?;
    let dtypes = a
        .dtype
        .iter()
        .map(|d| parse_dtype(d))
        .collect::<Result<Vec<_>>>()?;
    if dev.is_cpu() && dtypes.contains(&DType::BF16) {
        return Err(user("--dtype bf16: the CPU backend supports f32 and f16"));
    }
    if !(a.min_seconds >= 0.0 && a.min_seconds.is_finite()) {
        return Err(user("--min-seconds must be a finite number >= 0"));
    }
    let towers = towers_asked(a)?;
    let batches = a.batches.clone().unwrap_or_else(|| {
        if dev.is_cpu() {
            vec![1, 8, 32, 64]
        } else {
            vec![64, 256, 1024, 2048, 4096]
        }
    });
    if batches.is_empty() || batches.contains(&0) {
        return Err(user("--batches: give sizes >= 1"));
    }
    let subject = Subject {
        label: a
            .model
            .clone()
            .unwrap_or_else(|| "random CLIP-B/32 + ViLT-B/32 (real configs)".into()),
        source: a.model.as_deref().map(ModelSource::parse),
    };
    let mut out_file = match &a.out {
        Some(p) => {
            Some(std::fs::File::create(p).user_ctx(|| format!("cannot create {}", p.display()))?)
        }
        None => None,
    };
    let mut records = Vec::new();
    let mut emit = |v: Value, line: String| -> Result<()> {
        eprintln!("{line}");
        println!("{v}");
        if let Some(f) = out_file.as_mut() {
            writeln!(f, "{v}")?;
            f.sync_data()?;
        }
        records.push(v);
        Ok(())
    };
    let reference = if a.check_cpu {
        Some(subject.build(&Device::Cpu, DType::F32, a.seed, &towers)?)
    } else {
        None
    };
    let device_label = a.device.to_ascii_lowercase();
    for &dtype in &dtypes {
        let models = subject.build(&dev, dtype, a.seed, &towers)?;
        if models.iter().all(|(_, t)| t.is_empty()) {
            return Err(user(format!(
                "{} has none of the towers asked for ({})",
                subject.label,
                towers
                    .iter()
                    .map(|t| t.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        for (k, (model, own)) in models.iter().enumerate() {
            for &tower in own {
                let base = json!({
                    "device": device_label, "dtype": dtype_name(dtype), "model": subject.label,
                    "tower": tower.name(), "text_len": model.text_len(tower, a.text_len),
                });
                if let Some(refs) = &reference {
                    let (cpu_model, _) = &refs[k];
                    let inputs = model.inputs(tower, PARITY_BATCH, a.text_len, a.seed + 1)?;
                    let want = cpu_model.forward(tower, &inputs)?;
                    let got = model.forward(tower, &inputs.to_device(&dev)?)?;
                    let p = Parity::of(&got, &want)?;
                    let mut v = base.clone();
                    v["kind"] = json!("parity");
                    v["batch"] = json!(PARITY_BATCH);
                    v["max_abs_diff"] = json!(p.max_abs_diff);
                    v["max_abs_cpu_f32"] = json!(p.max_abs_reference);
                    v["relative"] = json!(p.relative());
                    let line = format!(
                        "parity {:<10} {:<4} vs CPU f32: max |diff| {:.3e} (max |CPU| {:.3e}, relative {:.3e})",
                        tower.name(),
                        dtype_name(dtype),
                        p.max_abs_diff,
                        p.max_abs_reference,
                        p.relative()
                    );
                    emit(v, line)?;
                }
                let flops = model.flops_per_eval(tower, a.text_len);
                for &b in &batches {
                    let measured = model
                        .inputs(tower, b, a.text_len, a.seed + 2)
                        .and_then(|i| i.to_device(&dev))
                        .and_then(|inputs| {
                            time_forward(&dev, 3, a.min_seconds, || model.forward(tower, &inputs))
                        });
                    let mut v = base.clone();
                    v["batch"] = json!(b);
                    let secs = match measured {
                        Ok(s) => s,
                        Err(e) if e.is_out_of_memory() => {
                            v["kind"] = json!("out_of_memory");
                            let line = format!(
                                "speed  {:<10} {:<4} batch {b:>5}: out of memory, larger batches skipped",
                                tower.name(),
                                dtype_name(dtype)
                            );
                            emit(v, line)?;
                            break;
                        }
                        Err(e) => return Err(e.into()),
                    };
                    let evals = b as f64 / secs;
                    let tflops = evals * flops / 1e12;
                    v["kind"] = json!("throughput");
                    v["seconds_per_batch"] = json!(secs);
                    v["evals_per_s"] = json!(evals);
                    v["gflop_per_eval"] = json!(flops / 1e9);
                    v["tflop_per_s"] = json!(tflops);
                    let mut line = format!(
                        "speed  {:<10} {:<4} batch {b:>5}: {evals:>10.1} evals/s, {:>8.3} s/batch, {tflops:>7.2} TFLOP/s",
                        tower.name(),
                        dtype_name(dtype),
                        secs
                    );
                    if let Some(peak) = a.peak_tflops {
                        v["peak_fraction"] = json!(tflops / peak);
                        line.push_str(&format!(" ({:.1}% of {peak} peak)", 100.0 * tflops / peak));
                    }
                    emit(v, line)?;
                }
            }
        }
    }
    Ok(records)
}
