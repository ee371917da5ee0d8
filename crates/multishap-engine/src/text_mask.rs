//! Masked token sequences built from a `[B, n]` keep tensor over the text
//! players (the non-special word pieces).
//!
//! * `Mask` mode: `ids = where(keep[:, col(pos)], ids, replace_id)` on the
//!   device; length and positions are unchanged.
//! * `Delete` mode: the kept positions of each row are packed to the left
//!   (one gather with per-row indices computed from the keep bits) and the
//!   tail is padded with `pad_id` / attention 0. The end-of-text position of
//!   each row is returned for CLIP's pooling.
use crate::config::TextMaskMode;
use crate::{EngineError, Result};
use candle_core::{DType, Device, Tensor};

/// A tokenised text: ids with special tokens, and which positions are special.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenLayout {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    pub tokens: Vec<String>,
    pub special: Vec<bool>,
}

impl TokenLayout {
    /// Sequence positions of the text players, in player order.
    pub fn player_positions(&self) -> Vec<usize> {
        (0..self.ids.len()).filter(|&p| !self.special[p]).collect()
    }

    /// Player token strings.
    pub fn player_tokens(&self) -> Vec<String> {
        self.player_positions()
            .into_iter()
            .map(|p| self.tokens[p].clone())
            .collect()
    }
}

/// Masked text inputs for a batch, all on the device.
#[derive(Debug, Clone)]
pub struct MaskedText {
    /// `[B, L]` u32
    pub input_ids: Tensor,
    /// `[B, L]` u32, 1 = real token, 0 = padding
    pub attention_mask: Tensor,
    /// `[B, L]` u32
    pub token_type_ids: Tensor,
    /// `[B]` u32, index of the end-of-text token per row (if the masker has one)
    pub eos_positions: Option<Tensor>,
}

#[derive(Debug, Clone)]
pub struct TextMasker {
    layout: TokenLayout,
    mode: TextMaskMode,
    replace_id: u32,
    pad_id: u32,
    eos_position: Option<usize>,
    num_players: usize,
    ids: Tensor,
    type_ids: Tensor,
    /// For each position: its player column, or `num_players` (an always-1
    /// column) for special tokens. `[L]` u32.
    position_columns: Tensor,
    device: Device,
}

impl TextMasker {
    /// `eos_position`: index of the end-of-text token whose position must be
    /// tracked (CLIP), if any; it must be a special token.
    pub fn new(
        layout: TokenLayout,
        mode: TextMaskMode,
        replace_id: u32,
        pad_id: u32,
        eos_position: Option<usize>,
        device: &Device,
    ) -> Result<Self> {
        let l = layout.ids.len();
        if layout.special.len() != l || layout.type_ids.len() != l || layout.tokens.len() != l {
            return Err(EngineError::InvalidInput(
                "token layout fields differ in length".into(),
            ));
        }
        if let Some(e) = eos_position {
            if e >= l || !layout.special[e] {
                return Err(EngineError::InvalidInput(format!(
                    "eos position {e} is not a special token"
                )));
            }
        }
        let positions = layout.player_positions();
        let num_players = positions.len();
        let mut cols = vec![num_players as u32; l];
        for (j, &p) in positions.iter().enumerate() {
            cols[p] = j as u32;
        }
        Ok(Self {
            ids: Tensor::from_vec(layout.ids.clone(), l, device)?,
            type_ids: Tensor::from_vec(layout.type_ids.clone(), l, device)?,
            position_columns: Tensor::from_vec(cols, l, device)?,
            layout,
            mode,
            replace_id,
            pad_id,
            eos_position,
            num_players,
            device: device.clone(),
        })
    }

    pub fn layout(&self) -> &TokenLayout {
        &self.layout
    }

    pub fn num_players(&self) -> usize {
        self.num_players
    }

    pub fn mode(&self) -> TextMaskMode {
        self.mode
    }

    pub fn seq_len(&self) -> usize {
        self.layout.ids.len()
    }

    /// `keep`: `[B, n]` (any int / float dtype, 1 = token present).
    pub fn mask(&self, keep: &Tensor) -> Result<MaskedText> {
        let (b, n) = keep.dims2()?;
        if n != self.num_players {
            return Err(EngineError::InvalidInput(format!(
                "{n} text players in the coalition tensor, the text has {}",
                self.num_players
            )));
        }
        match self.mode {
            TextMaskMode::Mask => self.mask_replace(&keep.to_dtype(DType::U8)?, b),
            TextMaskMode::Delete => self.mask_delete(keep, b),
        }
    }

    fn mask_replace(&self, keep: &Tensor, b: usize) -> Result<MaskedText> {
        let l = self.seq_len();
        let ext = Tensor::cat(&[keep, &Tensor::ones((b, 1), DType::U8, &self.device)?], 1)?;
        let keep_pos = ext.index_select(&self.position_columns, 1)?;
        let ids = self.ids.unsqueeze(0)?.broadcast_as((b, l))?;
        let replace = Tensor::full(self.replace_id, (b, l), &self.device)?;
        let input_ids = keep_pos.where_cond(&ids.contiguous()?, &replace)?;
        let eos_positions = match self.eos_position {
            Some(e) => Some(Tensor::full(e as u32, b, &self.device)?),
            None => None,
        };
        Ok(MaskedText {
            input_ids,
            attention_mask: Tensor::ones((b, l), DType::U32, &self.device)?,
            token_type_ids: self
                .type_ids
                .unsqueeze(0)?
                .broadcast_as((b, l))?
                .contiguous()?,
            eos_positions,
        })
    }

    fn mask_delete(&self, keep: &Tensor, b: usize) -> Result<MaskedText> {
        let l = self.seq_len();
        let keep: Vec<Vec<u8>> = keep.to_dtype(DType::U8)?.to_vec2()?;
        let positions = self.layout.player_positions();
        let mut col = vec![usize::MAX; l];
        for (j, &p) in positions.iter().enumerate() {
            col[p] = j;
        }
        let mut kept_rows: Vec<Vec<u32>> = Vec::with_capacity(b);
        let mut eos = Vec::with_capacity(b);
        for row in &keep {
            let kept: Vec<u32> = (0..l)
                .filter(|&p| self.layout.special[p] || row[col[p]] != 0)
                .map(|p| p as u32)
                .collect();
            if let Some(e) = self.eos_position {
                eos.push(kept.iter().position(|&p| p as usize == e).unwrap_or(0) as u32);
            }
            kept_rows.push(kept);
        }
        // Trim to the longest row: padding positions carry no information.
        let out_len = kept_rows.iter().map(|k| k.len()).max().unwrap_or(0).max(1);
        let mut idx = Vec::with_capacity(b * out_len);
        let mut valid = Vec::with_capacity(b * out_len);
        for kept in &kept_rows {
            for i in 0..out_len {
                idx.push(kept.get(i).copied().unwrap_or(0));
                valid.push((i < kept.len()) as u32);
            }
        }
        let idx = Tensor::from_vec(idx, (b, out_len), &self.device)?;
        let valid = Tensor::from_vec(valid, (b, out_len), &self.device)?;
        let gather = |t: &Tensor| -> Result<Tensor> {
            Ok(t.unsqueeze(0)?
                .broadcast_as((b, l))?
                .contiguous()?
                .gather(&idx, 1)?)
        };
        let pad = Tensor::full(self.pad_id, (b, out_len), &self.device)?;
        let input_ids = valid.where_cond(&gather(&self.ids)?, &pad)?;
        let token_type_ids = valid.where_cond(&gather(&self.type_ids)?, &pad.zeros_like()?)?;
        let eos_positions = match self.eos_position {
            Some(_) => Some(Tensor::from_vec(eos, b, &self.device)?),
            None => None,
        };
        Ok(MaskedText {
            input_ids,
            attention_mask: valid,
            token_type_ids,
            eos_positions,
        })
    }
}

/// Right-pad `[B, L]` u32 tensors to `len` with `value`.
pub fn pad_to(t: &Tensor, len: usize, value: u32) -> Result<Tensor> {
    let (b, l) = t.dims2()?;
    if l >= len {
        return Ok(t.clone());
    }
    let pad = Tensor::full(value, (b, len - l), t.device())?;
    Ok(Tensor::cat(&[t, &pad], 1)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use multishap_core::{Coalition, CoalitionBatch};

    /// [CLS] how many cats ##s ? [SEP]
    fn bert_layout() -> TokenLayout {
        TokenLayout {
            ids: vec![101, 2129, 2116, 8870, 2015, 1029, 102],
            type_ids: vec![0; 7],
            tokens: ["[CLS]", "how", "many", "cats", "##s", "?", "[SEP]"]
                .map(String::from)
                .to_vec(),
            special: vec![true, false, false, false, false, false, true],
        }
    }

    fn keep_tensor(n: usize, rows: &[&[usize]]) -> Tensor {
        let b: CoalitionBatch = rows
            .iter()
            .map(|r| Coalition::from_members(n, r.iter().copied()))
            .collect();
        b.to_mask_tensor(&Device::Cpu, DType::U8).unwrap()
    }

    #[test]
    fn mask_mode_replaces_only_masked_pieces() {
        let m = TextMasker::new(
            bert_layout(),
            TextMaskMode::Mask,
            103,
            0,
            None,
            &Device::Cpu,
        )
        .unwrap();
        assert_eq!(m.num_players(), 5);
        assert_eq!(
            m.layout().player_tokens(),
            vec!["how", "many", "cats", "##s", "?"]
        );
        let out = m
            .mask(&keep_tensor(5, &[&[], &[0, 1, 2, 3, 4], &[1, 3]]))
            .unwrap();
        let ids: Vec<Vec<u32>> = out.input_ids.to_vec2().unwrap();
        assert_eq!(ids[0], vec![101, 103, 103, 103, 103, 103, 102]);
        assert_eq!(ids[1], bert_layout().ids);
        assert_eq!(ids[2], vec![101, 103, 2116, 103, 2015, 103, 102]);
        let att: Vec<Vec<u32>> = out.attention_mask.to_vec2().unwrap();
        assert!(att.iter().flatten().all(|&a| a == 1));
    }

    #[test]
    fn delete_mode_repacks_and_tracks_eos() {
        // CLIP-like: <sot> a cat <eot>, eos at 3
        let layout = TokenLayout {
            ids: vec![49406, 320, 2368, 49407],
            type_ids: vec![0; 4],
            tokens: ["<sot>", "a", "cat", "<eot>"].map(String::from).to_vec(),
            special: vec![true, false, false, true],
        };
        let m = TextMasker::new(
            layout,
            TextMaskMode::Delete,
            0,
            49407,
            Some(3),
            &Device::Cpu,
        )
        .unwrap();
        let out = m.mask(&keep_tensor(2, &[&[0, 1], &[1], &[]])).unwrap();
        let ids: Vec<Vec<u32>> = out.input_ids.to_vec2().unwrap();
        assert_eq!(
            ids,
            vec![
                vec![49406, 320, 2368, 49407],
                vec![49406, 2368, 49407, 49407],
                vec![49406, 49407, 49407, 49407]
            ]
        );
        let att: Vec<Vec<u32>> = out.attention_mask.to_vec2().unwrap();
        assert_eq!(
            att,
            vec![vec![1, 1, 1, 1], vec![1, 1, 1, 0], vec![1, 1, 0, 0]]
        );
        let eos: Vec<u32> = out.eos_positions.unwrap().to_vec1().unwrap();
        assert_eq!(eos, vec![3, 2, 1]);

        // BERT: deleting "many" and "##s" packs the rest; rows trimmed to the longest
        let m = TextMasker::new(
            bert_layout(),
            TextMaskMode::Delete,
            103,
            0,
            None,
            &Device::Cpu,
        )
        .unwrap();
        let out = m.mask(&keep_tensor(5, &[&[0, 2, 4], &[2]])).unwrap();
        let ids: Vec<Vec<u32>> = out.input_ids.to_vec2().unwrap();
        assert_eq!(
            ids,
            vec![vec![101, 2129, 8870, 1029, 102], vec![101, 8870, 102, 0, 0]]
        );
        assert!(out.eos_positions.is_none());
    }

    #[test]
    fn rejects_wrong_player_count() {
        let m = TextMasker::new(
            bert_layout(),
            TextMaskMode::Mask,
            103,
            0,
            None,
            &Device::Cpu,
        )
        .unwrap();
        assert!(m.mask(&keep_tensor(4, &[&[0]])).is_err());
        assert!(TextMasker::new(
            bert_layout(),
            TextMaskMode::Mask,
            103,
            0,
            Some(2),
            &Device::Cpu
        )
        .is_err());
    }
}
