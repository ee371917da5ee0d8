//! `cuda-smoke`: does a candle 0.11.1 CUDA build link and run on this machine's GPU?
//!
//! Creates CUDA device 0, compares f32 / bf16 / f16 matmul + GELU and a softmax against the CPU,
//! and times a bf16 matmul (a rough sanity figure, not a benchmark result). Exit status 0 when
//! every comparison is within tolerance, 1 otherwise, 2 when no CUDA device can be created.
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use std::time::Instant;

/// max |a - b| / max |b|, computed on the CPU in f32.
fn rel_max_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
    let a = a.to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
    let b = b.to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
    let diff = (&a - &b)?
        .abs()?
        .flatten_all()?
        .max(0)?
        .to_scalar::<f32>()?;
    let scale = b.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
    Ok(diff / scale.max(f32::MIN_POSITIVE))
}

fn softmax_rows(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(1)?;
    let e = x.broadcast_sub(&max)?.exp()?;
    Ok(e.broadcast_div(&e.sum_keepdim(1)?)?)
}

fn main() -> Result<()> {
    println!(
        "cuda-smoke {} (candle-core 0.11.1, cuda)",
        env!("CARGO_PKG_VERSION")
    );
    if std::env::args().any(|a| a == "--version" || a == "--help") {
        return Ok(());
    }
    let dev = match Device::new_cuda(0) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: cannot create CUDA device 0: {e}");
            std::process::exit(2);
        }
    };
    println!("device: {dev:?}");
    let mut ok = true;
    let mut check = |name: &str, rel: f32, tol: f32| {
        let pass = rel <= tol;
        ok &= pass;
        println!(
            "{name:<28} rel max diff {rel:.2e} (tol {tol:.0e}) {}",
            if pass { "ok" } else { "FAIL" }
        );
    };

    // A ViLT/CLIP-sized MLP matmul: 256 tokens x 768 -> 3072, then GELU.
    let a = Tensor::randn(0f32, 1., (256, 768), &Device::Cpu)?;
    let w = Tensor::randn(0f32, 0.05, (768, 3072), &Device::Cpu)?;
    let cpu = a.matmul(&w)?.gelu_erf()?;
    let (ga, gw) = (a.to_device(&dev)?, w.to_device(&dev)?);
    check(
        "f32 matmul+gelu",
        rel_max_diff(&ga.matmul(&gw)?.gelu_erf()?, &cpu)?,
        1e-4,
    );
    for (dt, name) in [
        (DType::BF16, "bf16 matmul+gelu"),
        (DType::F16, "f16 matmul+gelu"),
    ] {
        let g = ga.to_dtype(dt)?.matmul(&gw.to_dtype(dt)?)?.gelu_erf()?;
        check(name, rel_max_diff(&g, &cpu)?, 2e-2);
    }
    let logits = Tensor::randn(0f32, 3., (64, 197), &Device::Cpu)?;
    let sm_gpu = softmax_rows(&logits.to_device(&dev)?)?;
    check(
        "f32 softmax",
        rel_max_diff(&sm_gpu, &softmax_rows(&logits)?)?,
        1e-5,
    );

    // Rough bf16 throughput of one large matmul (after one warm-up call).
    let n = 8192usize;
    let x = Tensor::randn(0f32, 1., (n, n), &dev)?.to_dtype(DType::BF16)?;
    x.matmul(&x)?;
    dev.synchronize().context("synchronize")?;
    let reps = 20;
    let start = Instant::now();
    for _ in 0..reps {
        x.matmul(&x)?;
    }
    dev.synchronize().context("synchronize")?;
    let secs = start.elapsed().as_secs_f64();
    let tflops = 2.0 * (n as f64).powi(3) * reps as f64 / secs / 1e12;
    println!("bf16 {n}x{n}x{n} matmul: {tflops:.0} TFLOP/s over {reps} calls (rough)");

    if !ok {
        std::process::exit(1);
    }
    Ok(())
}
