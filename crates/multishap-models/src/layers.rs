//! Building blocks shared by CLIP and ViLT: fused-QKV multi-head attention,
//! patch embedding as one matmul, and an additive attention mask.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

/// Loads a `Linear` with HF names `weight` [out,in] and (optionally) `bias` [out],
/// stored for the CPU fast path (`cpu_fast::row_major_weight`).
pub fn linear(in_dim: usize, out_dim: usize, bias: bool, vb: VarBuilder) -> Result<Linear> {
    crate::cpu_fast::row_major_weight(linear_as_loaded(in_dim, out_dim, bias, vb)?)
}

/// [`linear`] with the weight as stored in the checkpoint, for layers that are
/// combined before use (the fused QKV projection re-stores the combination once).
fn linear_as_loaded(in_dim: usize, out_dim: usize, bias: bool, vb: VarBuilder) -> Result<Linear> {
    let w = vb.get((out_dim, in_dim), "weight")?;
    let b = if bias {
        Some(vb.get(out_dim, "bias")?)
    } else {
        None
    };
    Ok(Linear::new(w, b))
}

/// Loads a LayerNorm with HF names `weight` and `bias`.
pub fn layer_norm(dim: usize, eps: f64, vb: VarBuilder) -> Result<candle_nn::LayerNorm> {
    let w = vb.get(dim, "weight")?;
    let b = vb.get(dim, "bias")?;
    Ok(candle_nn::LayerNorm::new(w, b, eps))
}

/// Multi-head self-attention with the three input projections fused into a single
/// matmul (weights concatenated once at load time).
#[derive(Debug, Clone)]
pub struct FusedSelfAttention {
    qkv: Linear,
    out: Linear,
    num_heads: usize,
    head_dim: usize,
    scale: f64,
}

impl FusedSelfAttention {
    /// `q`, `k`, `v`: the three projection prefixes (e.g. `q_proj`), `out` the output one.
    pub fn new(
        hidden: usize,
        num_heads: usize,
        qkv_bias: bool,
        vb_q: VarBuilder,
        vb_k: VarBuilder,
        vb_v: VarBuilder,
        out: Linear,
    ) -> Result<Self> {
        if num_heads == 0 || !hidden.is_multiple_of(num_heads) {
            candle_core::bail!("hidden size {hidden} is not divisible by {num_heads} heads")
        }
        let q = linear_as_loaded(hidden, hidden, qkv_bias, vb_q)?;
        let k = linear_as_loaded(hidden, hidden, qkv_bias, vb_k)?;
        let v = linear_as_loaded(hidden, hidden, qkv_bias, vb_v)?;
        let w = Tensor::cat(&[q.weight(), k.weight(), v.weight()], 0)?;
        let b = match (q.bias(), k.bias(), v.bias()) {
            (Some(qb), Some(kb), Some(vb)) => Some(Tensor::cat(&[qb, kb, vb], 0)?),
            _ => None,
        };
        let head_dim = hidden / num_heads;
        Ok(Self {
            qkv: crate::cpu_fast::row_major_weight(Linear::new(w, b))?,
            out,
            num_heads,
            head_dim,
            scale: (head_dim as f64).powf(-0.5),
        })
    }

    /// xs [B,T,H]; mask: additive, broadcastable to [B,heads,T,T].
    pub fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (b, t, h) = xs.dims3()?;
        let qkv = crate::cpu_fast::linear_act(xs, &self.qkv, None)?; // [B,T,3H]
        if let Some(ctx) =
            crate::cpu_fast::attention(&qkv, self.num_heads, self.scale as f32, mask)?
        {
            return crate::cpu_fast::linear_act(&ctx, &self.out, None);
        }
        let qkv = qkv
            .reshape((b, t, 3, self.num_heads, self.head_dim))?
            .permute((2, 0, 3, 1, 4))?
            .contiguous()?; // [3,B,heads,T,d]
        let q = (qkv.get(0)? * self.scale)?;
        let k = qkv.get(1)?;
        let v = qkv.get(2)?;
        let mut scores = q.matmul(&k.t()?)?; // [B,heads,T,T]
        if let Some(m) = mask {
            scores = scores.broadcast_add(m)?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let ctx = probs.matmul(&v)?; // [B,heads,T,d]
        let ctx = ctx.transpose(1, 2)?.reshape((b, t, h))?;
        crate::cpu_fast::linear_act(&ctx, &self.out, None)
    }
}

/// `x W^T + b` with the bias folded into the matrix product, for GPUs:
/// `[x | 1 | 0 ... 0] [W | b | 0 ... 0]^T`, the inner dimension padded by 8
/// (one column of ones, seven of zeros) so that it stays a multiple of 8 for
/// the tensor cores. candle's CUDA bias add is a broadcast kernel that
/// computes a strided index per element (div / mod per dimension) and ran at
/// a tenth of the memory bandwidth on an H100, slower than the GEMM itself
/// (benches/RESULTS.md, "GPU"); this costs one copy of `x` instead. The bias
/// is accumulated inside the GEMM (in f32 on tensor cores).
/// [`gpu_linear`] uses it from [`BIAS_IN_GEMM_MIN_ROWS`] rows on.
pub fn linear_bias_in_gemm(xs: &Tensor, lin: &Linear) -> Result<Tensor> {
    let Some(bias) = lin.bias() else {
        return lin.forward(xs);
    };
    let (n, k) = lin.weight().dims2()?;
    let dims = xs.dims().to_vec();
    if dims.last() != Some(&k) {
        candle_core::bail!("linear: input {dims:?} does not end in {k} features")
    }
    let m = xs.elem_count() / k.max(1);
    const PAD: usize = 8;
    let (dev, dt) = (xs.device(), xs.dtype());
    let x = Tensor::cat(
        &[
            &xs.reshape((m, k))?,
            &Tensor::ones((m, 1), dt, dev)?,
            &Tensor::zeros((m, PAD - 1), dt, dev)?,
        ],
        1,
    )?;
    let w = Tensor::cat(
        &[
            lin.weight(),
            &bias.reshape((n, 1))?,
            &Tensor::zeros((n, PAD - 1), dt, dev)?,
        ],
        1,
    )?;
    let y = x.matmul(&w.t()?)?;
    let mut out = dims;
    *out.last_mut().expect("checked above") = n;
    y.reshape(out)
}

/// Rows (tokens x batch) from which [`gpu_linear`] folds the bias into the
/// GEMM: below it the broadcast add is cheap and the extra copies and kernel
/// launches of the folded form are not worth it.
pub const BIAS_IN_GEMM_MIN_ROWS: usize = 1024;

/// A linear layer on a GPU: the bias in the GEMM for large inputs
/// ([`linear_bias_in_gemm`]), candle's `Linear::forward` otherwise.
pub fn gpu_linear(xs: &Tensor, lin: &Linear) -> Result<Tensor> {
    let rows = xs.elem_count() / xs.dims().last().copied().unwrap_or(1).max(1);
    if rows >= BIAS_IN_GEMM_MIN_ROWS {
        linear_bias_in_gemm(xs, lin)
    } else {
        lin.forward(xs)
    }
}

/// Conv2d with kernel = stride = `patch` done as one matmul.
/// pixel_values [B,C,H,W] -> [B, h*w, hidden] in raster order, plus (h, w).
pub fn patchify_matmul(
    pixel_values: &Tensor,
    weight_2d: &Tensor, // [hidden, C*p*p]
    bias: Option<&Tensor>,
    patch: usize,
) -> Result<(Tensor, usize, usize)> {
    let (b, c, hh, ww) = pixel_values.dims4()?;
    let (gh, gw) = (hh / patch, ww / patch);
    if gh == 0 || gw == 0 {
        candle_core::bail!("image {hh}x{ww} is smaller than one {patch}x{patch} patch")
    }
    let x = if gh * patch != hh || gw * patch != ww {
        pixel_values
            .narrow(2, 0, gh * patch)?
            .narrow(3, 0, gw * patch)?
    } else {
        pixel_values.clone()
    };
    let x = x
        .reshape((b, c, gh, patch, gw, patch))?
        .permute((0, 2, 4, 1, 3, 5))?
        .contiguous()?
        .reshape((b, gh * gw, c * patch * patch))?;
    let mut y = x.broadcast_matmul(&weight_2d.t()?)?;
    if let Some(bias) = bias {
        y = y.broadcast_add(bias)?;
    }
    Ok((y, gh, gw))
}

/// Large negative value used for masked attention scores in `dtype`.
pub fn mask_min(dtype: DType) -> f64 {
    match dtype {
        DType::F16 => -65504.0,
        DType::BF16 => -3.38e38,
        _ => f32::MIN as f64,
    }
}

/// `mask` [B,T] of 0/1 (any int/float dtype) -> additive [B,1,1,T] in `dtype`:
/// 0 where kept, a large negative value where masked.
pub fn additive_padding_mask(mask: &Tensor, dtype: DType) -> Result<Tensor> {
    let (b, t) = mask.dims2()?;
    let m = mask.to_dtype(DType::F32)?;
    let add = ((1.0 - m)? * mask_min(DType::F32).max(mask_min(dtype)))?;
    add.to_dtype(dtype)?.reshape((b, 1, 1, t))
}

/// `mask` [B,T] of 0/1 -> the additive mask, or `None` when nothing is masked
/// (adding zeros to every attention score is a full pass over [B,heads,T,T];
/// one small reduction decides it).
pub fn additive_padding_mask_if_any(mask: &Tensor, dtype: DType) -> Result<Option<Tensor>> {
    let min = mask.to_dtype(DType::F32)?.min_all()?.to_scalar::<f32>()?;
    if min >= 1.0 {
        Ok(None)
    } else {
        additive_padding_mask(mask, dtype).map(Some)
    }
}

/// Causal mask [T,T]: 0 on and below the diagonal, large negative above.
pub fn causal_mask(t: usize, dtype: DType, device: &candle_core::Device) -> Result<Tensor> {
    let neg = mask_min(dtype) as f32;
    let v: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j > i { neg } else { 0.0 }))
        .collect();
    Tensor::from_vec(v, (t, t), device)?.to_dtype(dtype)
}

/// Token 0 of [B,T,H] -> [B,H] (CLS pooling), contiguous: CUDA's matmul (the
/// pooler after it) rejects the strided view (row stride T*H).
pub fn first_token(xs: &Tensor) -> Result<Tensor> {
    xs.narrow(1, 0, 1)?.squeeze(1)?.contiguous()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::max_diff;
    use candle_core::Device;

    fn seq(shape: &[usize], scale: f32) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * scale)
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn bias_in_gemm_equals_matmul_plus_bias() {
        let lin = Linear::new(seq(&[5, 12], 0.01), Some(seq(&[5], 0.1)));
        for shape in [vec![3, 12], vec![2, 4, 12]] {
            let x = seq(&shape, 0.02);
            let want = lin.forward(&x).unwrap();
            let got = linear_bias_in_gemm(&x, &lin).unwrap();
            assert_eq!(got.dims(), want.dims());
            let d = max_diff(&got, &want);
            assert!(d < 1e-6, "{d}");
        }
        // no bias: plain forward; wrong width: an error
        let nobias = Linear::new(seq(&[5, 12], 0.01), None);
        let x = seq(&[3, 12], 0.02);
        assert!(linear_bias_in_gemm(&x, &nobias).is_ok());
        assert!(linear_bias_in_gemm(&seq(&[3, 11], 0.02), &lin).is_err());
    }

    #[test]
    fn padding_mask_only_when_something_is_masked() {
        let all = Tensor::ones((2, 4), DType::U32, &Device::Cpu).unwrap();
        assert!(additive_padding_mask_if_any(&all, DType::F32)
            .unwrap()
            .is_none());
        let some = Tensor::new(&[[1u32, 1, 0, 0], [1, 1, 1, 1]], &Device::Cpu).unwrap();
        let m = additive_padding_mask_if_any(&some, DType::F32)
            .unwrap()
            .expect("a mask");
        assert_eq!(m.dims(), &[2, 1, 1, 4]);
        let v = m.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(v[0], 0.0);
        assert!(v[2] < -1e30);
        assert_eq!(v[7], 0.0);
    }
}
