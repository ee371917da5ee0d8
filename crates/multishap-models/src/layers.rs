//! Building blocks shared by CLIP and ViLT: fused-QKV multi-head attention,
//! patch embedding as one matmul, and an additive attention mask.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

/// Loads a `Linear` with HF names `weight` [out,in] and (optionally) `bias` [out].
pub fn linear(in_dim: usize, out_dim: usize, bias: bool, vb: VarBuilder) -> Result<Linear> {
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
        let q = linear(hidden, hidden, qkv_bias, vb_q)?;
        let k = linear(hidden, hidden, qkv_bias, vb_k)?;
        let v = linear(hidden, hidden, qkv_bias, vb_v)?;
        let w = Tensor::cat(&[q.weight(), k.weight(), v.weight()], 0)?;
        let b = match (q.bias(), k.bias(), v.bias()) {
            (Some(qb), Some(kb), Some(vb)) => Some(Tensor::cat(&[qb, kb, vb], 0)?),
            _ => None,
        };
        let head_dim = hidden / num_heads;
        Ok(Self {
            qkv: Linear::new(w, b),
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
        self.out.forward(&ctx)
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

/// Causal mask [T,T]: 0 on and below the diagonal, large negative above.
pub fn causal_mask(t: usize, dtype: DType, device: &candle_core::Device) -> Result<Tensor> {
    let neg = mask_min(dtype) as f32;
    let v: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j > i { neg } else { 0.0 }))
        .collect();
    Tensor::from_vec(v, (t, t), device)?.to_dtype(dtype)
}

/// Token 0 of [B,T,H] -> [B,H] (CLS pooling).
pub fn first_token(xs: &Tensor) -> Result<Tensor> {
    xs.narrow(1, 0, 1)?.squeeze(1)
}
