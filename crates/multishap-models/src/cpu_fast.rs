//! Fused CPU kernels for inference: a linear layer with its bias (and the
//! MLP's activation) applied in the GEMM's output buffer, and attention that
//! reads Q, K and V straight out of the fused QKV projection.
//!
//! Why: profiling ViLT-B/32 on the CPU showed that the GEMMs themselves run
//! as fast as PyTorch's MKL ones, but every candle op between them allocates
//! and walks a full activation: the bias add, GELU (scalar `erf`, one
//! thread), the QKV permute copy, the score scaling, the mask add, the
//! softmax (scalar `exp`) and the context transpose copy. Here those are done
//! in place, with vectorisable polynomial `exp`/`erf`, parallel over rows or
//! (sample, head) pairs.
//!
//! The fast path is taken only for contiguous f32 tensors on the CPU that do
//! not track gradients (the trainer's `Var`s keep candle's ops, so training
//! and its bit-for-bit reproducibility are unchanged), and only while
//! `MULTISHAP_PLAIN_CPU_OPS` is unset (set it to `1` to compare against
//! candle's own ops). Results match candle's ops to float rounding (tested
//! below; the models' golden tests against `transformers` run through it).
use crate::activation::Activation;
use candle_core::{CpuStorage, DType, Device, Layout, Result, Storage, Tensor};
use candle_nn::{Linear, Module};
use gemm::Parallelism;
use rayon::prelude::*;
use std::sync::OnceLock;

/// Whether the fused kernels are switched on (`MULTISHAP_PLAIN_CPU_OPS` unset
/// or `0`).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| !crate::env_switch("MULTISHAP_PLAIN_CPU_OPS"))
}

/// An inference-only f32 CPU tensor (no gradient tracking).
fn fast_tensor(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32 && !t.track_op()
}

fn threads() -> Parallelism {
    match candle_core::utils::get_num_threads() {
        0 | 1 => Parallelism::None,
        n => Parallelism::Rayon(n),
    }
}

/// Runs `f` on the f32 data of a CPU tensor, viewed through its layout.
fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32], &Layout) -> Result<R>) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(CpuStorage::F32(data)) => f(data, layout),
        _ => candle_core::bail!("cpu_fast: expected an f32 CPU tensor"),
    }
}

/// `act(x W^T + b)` for x [..., K]; falls back to candle's ops off the fast path.
pub fn linear_act(xs: &Tensor, lin: &Linear, act: Option<Activation>) -> Result<Tensor> {
    let fast = enabled()
        && fast_tensor(xs)
        && fast_tensor(lin.weight())
        && lin.bias().is_none_or(fast_tensor)
        && act.is_none_or(|a| a.fused_cpu().is_some());
    if !fast {
        let y = if xs.device().is_cpu() {
            lin.forward(xs)?
        } else {
            crate::layers::gpu_linear(xs, lin)?
        };
        return match act {
            Some(a) => a.apply(&y),
            None => Ok(y),
        };
    }
    let dims = xs.dims().to_vec();
    let k = *dims.last().unwrap_or(&0);
    let m = xs.elem_count() / k.max(1);
    let (n, wk) = lin.weight().dims2()?;
    if wk != k {
        candle_core::bail!("linear: input has {k} features, weight expects {wk}")
    }
    let xs = xs.contiguous()?;
    // The weight [n, k] as gemm's right-hand side [k, n]: stored transposed
    // (see `row_major_weight`: rows of n, column stride 1) or as loaded
    // (row stride 1, column stride k).
    let wt = lin.weight().t()?;
    let (w, rhs_cs, rhs_rs) = if wt.is_contiguous() {
        (wt, 1, n as isize)
    } else {
        (lin.weight().contiguous()?, k as isize, 1)
    };
    let mut out = vec![0f32; m * n];
    let mut read_dst = false;
    if let Some(b) = lin.bias() {
        let b = b.contiguous()?;
        with_f32(&b, |bd, bl| {
            let bd = &bd[bl.start_offset()..bl.start_offset() + n];
            out.par_chunks_mut(n)
                .for_each(|row| row.copy_from_slice(bd));
            Ok(())
        })?;
        read_dst = true;
    }
    with_f32(&xs, |xd, xl| {
        with_f32(&w, |wd, wl| {
            let x = &xd[xl.start_offset()..];
            let w = &wd[wl.start_offset()..];
            // SAFETY: x is [m, k] row-major, w holds k x n values read with
            // the strides chosen above, out is [m, n].
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    out.as_mut_ptr(),
                    1,
                    n as isize,
                    read_dst,
                    x.as_ptr(),
                    1,
                    k as isize,
                    w.as_ptr(),
                    rhs_cs,
                    rhs_rs,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    threads(),
                )
            }
            Ok(())
        })
    })?;
    if let Some(a) = act.and_then(|a| a.fused_cpu()) {
        out.par_chunks_mut(1 << 14)
            .for_each(|c| apply_inplace(a, c));
    }
    let mut shape = dims;
    if let Some(last) = shape.last_mut() {
        *last = n;
    }
    Tensor::from_vec(out, shape, &Device::Cpu)
}

/// Stores an inference-only f32 CPU linear layer's weight [n, k] as the
/// transpose of a contiguous [k, n] tensor (same values, same shape for
/// candle; no extra memory), so that [`linear_act`] hands `gemm` a row-major
/// right-hand side. `gemm` does not pack a column-major right-hand side for
/// small row counts and then reads it with a stride of k: on CLIP's text
/// tower (12 tokens a sample) that ran at 12-170 GFLOP/s against 110-420 in
/// row-major form (benches/RESULTS.md). Other layers (GPU, f16/bf16, the
/// trainer's tracked `Var`s, `MULTISHAP_PLAIN_CPU_OPS=1`) are returned as
/// they are.
pub fn row_major_weight(lin: Linear) -> Result<Linear> {
    let w = lin.weight();
    if !enabled() || !fast_tensor(w) || w.rank() != 2 || !w.is_contiguous() {
        return Ok(lin);
    }
    let wt = w.t()?.contiguous()?;
    Ok(Linear::new(wt.t()?, lin.bias().cloned()))
}

/// Element-wise activations the fused path computes in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FusedAct {
    /// `x * sigmoid(1.702 x)`.
    QuickGelu,
    /// `0.5 x (1 + erf(x / sqrt 2))`.
    GeluErf,
}

fn apply_inplace(a: FusedAct, xs: &mut [f32]) {
    with_avx2(
        #[inline(always)]
        || apply_generic(a, xs),
    )
}

/// Runs `f` inside a function compiled for AVX2 when the CPU has it, so that
/// the loops of `f` (inlined there: mark the closure `#[inline(always)]`)
/// vectorise with 256-bit lanes; plain `f()` otherwise. One dispatch for the
/// activation and the softmax rows.
#[inline(always)]
fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { avx2(f) };
    }
    f()
}

#[inline(always)]
fn apply_generic(a: FusedAct, xs: &mut [f32]) {
    match a {
        FusedAct::QuickGelu => xs.iter_mut().for_each(|x| *x = quick_gelu(*x)),
        FusedAct::GeluErf => xs.iter_mut().for_each(|x| *x = gelu_erf(*x)),
    }
}

/// `e^x` for f32 without branches or library calls, so that loops over it
/// vectorise: Cody-Waite reduction by ln 2 and a degree-6 polynomial
/// (relative error a few ulp); 0 below -87.3, clamped above 88.7.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    let tiny = x < -87.336_55;
    let xc = x.clamp(-87.336_55, 88.722_83);
    let n = (xc * LOG2E + ROUND) - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_2e-4_f32;
    let p = p * r + 1.398_2e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let p = p * r * r + r + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    if tiny {
        0.0
    } else {
        p * scale
    }
}

/// erf for f32 (Abramowitz and Stegun 7.1.26: absolute error <= 1.5e-7, plus
/// f32 rounding: <= 6e-7 in all),
/// written so that loops over it vectorise.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
    let y = 1.0 - poly * exp(-z * z);
    if x < 0.0 {
        -y
    } else {
        y
    }
}

#[inline(always)]
fn gelu_erf(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

#[inline(always)]
fn quick_gelu(x: f32) -> f32 {
    x / (1.0 + exp(-1.702 * x))
}

/// A raw pointer that parallel tasks may share because each writes a disjoint part.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: every (sample, head) task writes its own [T, head_dim] block.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

/// Multi-head attention from the fused projection `qkv` [B, T, 3H] (Q, K, V
/// blocks of H = heads x head_dim each): `softmax(Q K^T * scale + mask) V`
/// per head, returned as [B, T, H] with the heads side by side. `mask` is
/// additive and broadcastable to [B, heads, T, T]. Returns `None` off the
/// fast path (the caller then runs candle's ops).
pub fn attention(
    qkv: &Tensor,
    heads: usize,
    scale: f32,
    mask: Option<&Tensor>,
) -> Result<Option<Tensor>> {
    if !enabled() || !fast_tensor(qkv) || !mask.is_none_or(fast_tensor) {
        return Ok(None);
    }
    let (b, t, h3) = qkv.dims3()?;
    let h = h3 / 3;
    if h3 != 3 * h || heads == 0 || h % heads != 0 {
        candle_core::bail!("attention: {h3} projected features are not 3 x {heads} heads")
    }
    let d = h / heads;
    let qkv = qkv.contiguous()?;
    let mask = match mask {
        Some(m) => Some(m.broadcast_as((b, heads, t, t))?),
        None => None,
    };
    let mut out = vec![0f32; b * t * h];
    let dst = SharedOut(out.as_mut_ptr());
    with_f32(&qkv, |qd, ql| {
        let qd = &qd[ql.start_offset()..ql.start_offset() + b * t * h3];
        let run = |mask: Option<(&[f32], &[usize], usize)>| {
            (0..b * heads).into_par_iter().for_each_init(
                || vec![0f32; t * t],
                |scores, bh| {
                    let (bi, hi) = (bh / heads, bh % heads);
                    let base = bi * t * h3 + hi * d;
                    let (q, k, v) = (&qd[base..], &qd[base + h..], &qd[base + 2 * h..]);
                    let small = t <= SMALL_SEQ;
                    if small {
                        with_avx2(
                            #[inline(always)]
                            || scores_small(q, k, h3, t, d, scale, scores),
                        );
                    } else {
                        // SAFETY: q, k are [t, d] blocks with row stride 3H
                        // inside qkv; scores is [t, t].
                        unsafe {
                            gemm::gemm(
                                t,
                                t,
                                d,
                                scores.as_mut_ptr(),
                                1,
                                t as isize,
                                false,
                                q.as_ptr(),
                                1,
                                h3 as isize,
                                k.as_ptr(),
                                h3 as isize,
                                1,
                                0.0,
                                scale,
                                false,
                                false,
                                false,
                                Parallelism::None,
                            );
                        }
                    }
                    for (i, row) in scores.chunks_exact_mut(t).enumerate() {
                        if let Some((md, st, off)) = mask {
                            let o = off + bi * st[0] + hi * st[1] + i * st[2];
                            let s3 = st[3];
                            for (j, s) in row.iter_mut().enumerate() {
                                *s += md[o + j * s3];
                            }
                        }
                        softmax_row(row);
                    }
                    // bind the whole wrapper: a closure naming `dst.0` would
                    // capture the bare (non-Sync) pointer
                    let out_block = dst;
                    // SAFETY: the output block [t, d] at (bi, hi) has row
                    // stride H inside `out` and is written by this task only.
                    let block = unsafe { out_block.0.add(bi * t * h + hi * d) };
                    if small {
                        for i in 0..t {
                            // SAFETY: row i of this task's block: d floats.
                            let o = unsafe { std::slice::from_raw_parts_mut(block.add(i * h), d) };
                            let p = &scores[i * t..(i + 1) * t];
                            with_avx2(
                                #[inline(always)]
                                || weighted_rows(p, v, h3, d, o),
                            );
                        }
                    } else {
                        // SAFETY: scores is [t, t], v a [t, d] block with row
                        // stride 3H, block as above.
                        unsafe {
                            gemm::gemm(
                                t,
                                d,
                                t,
                                block,
                                1,
                                h as isize,
                                false,
                                scores.as_ptr(),
                                1,
                                t as isize,
                                v.as_ptr(),
                                1,
                                h3 as isize,
                                0.0,
                                1.0,
                                false,
                                false,
                                false,
                                Parallelism::None,
                            );
                        }
                    }
                },
            )
        };
        match &mask {
            Some(m) => with_f32(m, |md, ml| {
                run(Some((md, ml.stride(), ml.start_offset())));
                Ok(())
            }),
            None => {
                run(None);
                Ok(())
            }
        }
    })?;
    Ok(Some(Tensor::from_vec(out, (b, t, h), &Device::Cpu)?))
}

/// Longest sequence for which attention runs on plain loops instead of two
/// `gemm` calls per (sample, head). For CLIP's short captions (~12 tokens)
/// each call's packing and set-up cost more than its arithmetic (text tower
/// +18% at batch 32); at CLIP's 50 image tokens `gemm` is faster (-9% with
/// the loops), so the cut lies between.
const SMALL_SEQ: usize = 32;

/// `scores[i, j] = scale * q_i . k_j` for [t, d] blocks q, k with row stride `rs`.
#[inline(always)]
fn scores_small(
    q: &[f32],
    k: &[f32],
    rs: usize,
    t: usize,
    d: usize,
    scale: f32,
    scores: &mut [f32],
) {
    for i in 0..t {
        let qi = &q[i * rs..i * rs + d];
        for j in 0..t {
            scores[i * t + j] = scale * dot(qi, &k[j * rs..j * rs + d]);
        }
    }
}

/// `out = sum_j p_j v_j` for a [t, d] block v with row stride `rs`.
#[inline(always)]
fn weighted_rows(p: &[f32], v: &[f32], rs: usize, d: usize, out: &mut [f32]) {
    out.fill(0.0);
    for (j, &pj) in p.iter().enumerate() {
        let vj = &v[j * rs..j * rs + d];
        out.iter_mut().zip(vj).for_each(|(o, x)| *o += pj * x);
    }
}

/// Dot product in 16 independent lanes (so it vectorises without reassociation).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let mut ca = a.chunks_exact(16);
    let mut cb = b.chunks_exact(16);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..16 {
            lanes[l] += x[l] * y[l];
        }
    }
    let mut sum: f32 = lanes.iter().sum();
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        sum += x * y;
    }
    sum
}

fn softmax_row(row: &mut [f32]) {
    with_avx2(
        #[inline(always)]
        || softmax_row_generic(row),
    )
}

#[inline(always)]
fn softmax_row_generic(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut lanes = [0f32; 8];
    let mut chunks = row.chunks_exact_mut(8);
    for c in &mut chunks {
        for (l, x) in lanes.iter_mut().zip(c.iter_mut()) {
            *x = exp(*x - max);
            *l += *x;
        }
    }
    let mut sum: f32 = lanes.iter().sum();
    for x in chunks.into_remainder() {
        *x = exp(*x - max);
        sum += *x;
    }
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|x| *x *= inv);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::max_diff;

    #[test]
    fn exp_matches_std_within_a_few_ulp() {
        let mut worst = 0f32;
        let mut x = -87.0f32;
        while x < 88.0 {
            let rel = ((exp(x) - x.exp()) / x.exp()).abs();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 4e-7, "worst relative error {worst}");
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn erf_is_within_its_published_error_bound() {
        // reference: candle's f64 erf
        let mut worst = 0f64;
        let mut x = -6.0f32;
        while x < 6.0 {
            let want = candle_core::cpu::erf::erf_f64(x as f64);
            worst = worst.max((erf(x) as f64 - want).abs());
            x += 0.001;
        }
        // A&S's 1.5e-7 plus the f32 rounding of 1 - p e^(-z^2) (~4 ulp at 1)
        assert!(worst < 6e-7, "worst absolute error {worst}");
    }

    fn lin(i: usize, o: usize) -> Linear {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 0.5, (o, i), &dev).unwrap();
        let b = Tensor::randn(0f32, 0.5, o, &dev).unwrap();
        Linear::new(w, Some(b))
    }

    #[test]
    fn linear_act_equals_candle_ops() {
        let x = Tensor::randn(0f32, 1.0, (3, 7, 24), &Device::Cpu).unwrap();
        let l = lin(24, 40);
        for act in [None, Some(Activation::Gelu), Some(Activation::QuickGelu)] {
            let fast = linear_act(&x, &l, act).unwrap();
            let y = l.forward(&x).unwrap();
            let want = match act {
                Some(a) => a.apply(&y).unwrap(),
                None => y,
            };
            assert_eq!(fast.dims(), &[3, 7, 40]);
            let d = max_diff(&fast, &want);
            assert!(d < 2e-5, "{act:?}: max difference {d}");
        }
        let no_bias = Linear::new(l.weight().clone(), None);
        let d = max_diff(
            &linear_act(&x, &no_bias, None).unwrap(),
            &no_bias.forward(&x).unwrap(),
        );
        assert!(d < 2e-5, "no bias: {d}");
    }

    /// candle's own ops, as `FusedSelfAttention` ran them before.
    fn reference_attention(
        qkv: &Tensor,
        heads: usize,
        scale: f64,
        mask: Option<&Tensor>,
    ) -> Tensor {
        let (b, t, h3) = qkv.dims3().unwrap();
        let d = h3 / 3 / heads;
        let p = qkv
            .reshape((b, t, 3, heads, d))
            .unwrap()
            .permute((2, 0, 3, 1, 4))
            .unwrap()
            .contiguous()
            .unwrap();
        let q = (p.get(0).unwrap() * scale).unwrap();
        let k = p.get(1).unwrap();
        let v = p.get(2).unwrap();
        let mut s = q.matmul(&k.t().unwrap()).unwrap();
        if let Some(m) = mask {
            s = s.broadcast_add(m).unwrap();
        }
        let pr = candle_nn::ops::softmax_last_dim(&s).unwrap();
        pr.matmul(&v)
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .reshape((b, t, h3 / 3))
            .unwrap()
    }

    #[test]
    fn linear_act_with_a_row_major_weight_equals_candle_ops() {
        let x = Tensor::randn(0f32, 1.0, (2, 5, 24), &Device::Cpu).unwrap();
        let l = lin(24, 40);
        let fast = row_major_weight(l.clone()).unwrap();
        // same values and shape, stored as the transpose of a [k, n] tensor
        assert_eq!(fast.weight().dims(), &[40, 24]);
        assert!(!fast.weight().is_contiguous() && fast.weight().t().unwrap().is_contiguous());
        assert_eq!(max_diff(fast.weight(), l.weight()), 0.0);
        for act in [None, Some(Activation::Gelu)] {
            let got = linear_act(&x, &fast, act).unwrap();
            let y = l.forward(&x).unwrap();
            let want = match act {
                Some(a) => a.apply(&y).unwrap(),
                None => y,
            };
            let d = max_diff(&got, &want);
            assert!(d < 2e-5, "{act:?}: max difference {d}");
            // candle's own forward accepts the transposed storage too
            assert!(max_diff(&fast.forward(&x).unwrap(), &l.forward(&x).unwrap()) < 2e-5);
        }
    }

    #[test]
    fn row_major_weight_leaves_tracked_weights_alone() {
        let w = candle_core::Var::randn(0f32, 1.0, (6, 4), &Device::Cpu).unwrap();
        let l = row_major_weight(Linear::new(w.as_tensor().clone(), None)).unwrap();
        assert!(l.weight().is_contiguous());
    }

    #[test]
    fn attention_equals_candle_ops_on_loops_and_on_gemm() {
        // t = 40 > SMALL_SEQ takes the gemm path, t = 9 the plain loops
        for t in [9, SMALL_SEQ + 8] {
            attention_matches_candle(t);
        }
    }

    fn attention_matches_candle(t: usize) {
        let dev = Device::Cpu;
        let (b, heads, d) = (3, 4, 8);
        let qkv = Tensor::randn(0f32, 1.0, (b, t, 3 * heads * d), &dev).unwrap();
        let scale = 1.0 / (d as f64).sqrt();
        let causal = crate::layers::causal_mask(t, DType::F32, &dev).unwrap();
        let pad = Tensor::from_vec(
            (0..b * t)
                .map(|i| if i % t < t - i / t { 1f32 } else { 0.0 })
                .collect(),
            (b, t),
            &dev,
        )
        .unwrap();
        let pad = crate::layers::additive_padding_mask(&pad, DType::F32).unwrap();
        for mask in [None, Some(&causal), Some(&pad)] {
            let fast = attention(&qkv, heads, scale as f32, mask).unwrap().unwrap();
            let want = reference_attention(&qkv, heads, scale, mask);
            let diff = max_diff(&fast, &want);
            assert!(
                diff < 1e-5,
                "t = {t}, mask {:?}: max difference {diff}",
                mask.map(|m| m.dims().to_vec())
            );
        }
    }

    #[test]
    fn tracked_tensors_take_candle_ops() {
        let v = candle_core::Var::randn(0f32, 1.0, (2, 3, 12), &Device::Cpu).unwrap();
        assert!(attention(v.as_tensor(), 2, 0.5, None).unwrap().is_none());
    }
}
