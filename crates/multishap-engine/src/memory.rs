//! Activation-memory estimates that size the scheduler's batches.
//!
//! At inference candle frees each intermediate tensor when it is dropped, so
//! the peak is about one encoder layer's activations plus the residual
//! stream, independent of the number of layers; `layers` only adds the
//! (small) per-layer residual copies kept alive by the caller's graph.

/// Bytes (f32) of one evaluation of a transformer encoder on `tokens` tokens.
pub fn transformer_bytes(
    tokens: usize,
    hidden: usize,
    intermediate: usize,
    heads: usize,
    layers: usize,
) -> usize {
    let t = tokens;
    // hidden states, qkv (3h), context, output, layer norms: ~8h per token;
    // MLP: 2 * intermediate per token; attention scores + probs: 2 * heads * t^2.
    let per_layer = t * hidden * 8 + t * intermediate * 2 + heads * t * t * 2;
    4 * (per_layer + layers * t * hidden)
}

/// Bytes of the masked image inputs of one evaluation (`[3, H, W]` f32 plus
/// the patchified copy).
pub fn image_input_bytes(channels: usize, height: usize, width: usize) -> usize {
    4 * channels * height * width * 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vilt_estimate_is_plausible() {
        // ViLT-B/32 at 384x384 with a 10-token question: 145 + 10 tokens
        let b = transformer_bytes(155, 768, 3072, 12, 12) + image_input_bytes(3, 384, 384);
        assert!(b > 5 << 20 && b < 50 << 20, "{b}");
    }
}
