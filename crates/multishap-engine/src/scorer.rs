//! Model outputs -> game values, on the device.
use crate::config::VqaScore;
use crate::Result;
use candle_core::{DType, Tensor, D};

/// VQA scores of the target answer per row: `logits` `[B, C]`, `targets`
/// `[B]` u32 class indices -> `[B]` f32.
pub fn vqa_scores(logits: &Tensor, targets: &Tensor, kind: VqaScore) -> Result<Tensor> {
    let logits = logits.to_dtype(DType::F32)?;
    let (b, c) = logits.dims2()?;
    let idx = targets.to_dtype(DType::U32)?.reshape((b, 1))?;
    let target_logit = logits.gather(&idx, 1)?.squeeze(1)?;
    Ok(match kind {
        VqaScore::Logit => target_logit,
        VqaScore::Probability => {
            let lse = logits.log_sum_exp(D::Minus1)?;
            (target_logit - lse)?.exp()?
        }
        VqaScore::LogOdds => {
            // logit_t - logsumexp_{c != t} logit_c, with the target column at -inf
            let classes = Tensor::arange(0u32, c as u32, logits.device())?.unsqueeze(0)?;
            let is_target = classes
                .broadcast_as((b, c))?
                .broadcast_eq(&idx.broadcast_as((b, c))?)?;
            let neg = Tensor::full(f32::NEG_INFINITY, (b, c), logits.device())?;
            let others = is_target
                .where_cond(&neg, &logits)?
                .log_sum_exp(D::Minus1)?;
            (target_logit - others)?
        }
    })
}

/// Rows scaled to unit L2 norm.
pub fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let norm = x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?;
    Ok(x.broadcast_div(&norm)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn vqa_scores_match_hand_computation() {
        let l = [[1.0f32, 2.0, 0.5], [-1.0, 0.0, 3.0]];
        let logits = Tensor::new(&l, &Device::Cpu).unwrap();
        let targets = Tensor::new(&[1u32, 2], &Device::Cpu).unwrap();
        let lg: Vec<f32> = vqa_scores(&logits, &targets, VqaScore::Logit)
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(lg, vec![2.0, 3.0]);
        let p: Vec<f32> = vqa_scores(&logits, &targets, VqaScore::Probability)
            .unwrap()
            .to_vec1()
            .unwrap();
        let lo: Vec<f32> = vqa_scores(&logits, &targets, VqaScore::LogOdds)
            .unwrap()
            .to_vec1()
            .unwrap();
        for (r, t) in [(0usize, 1usize), (1, 2)] {
            let z: f64 = l[r].iter().map(|v| (*v as f64).exp()).sum();
            let pr = (l[r][t] as f64).exp() / z;
            assert!((p[r] as f64 - pr).abs() < 1e-6);
            assert!((lo[r] as f64 - (pr / (1.0 - pr)).ln()).abs() < 1e-5);
        }
    }
}
