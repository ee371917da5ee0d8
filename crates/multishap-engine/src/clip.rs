//! CLIP retrieval as a game: v(S) = sim(E_img(S_img), E_txt(S_txt)).
//!
//! Image and text coalitions are encoded separately (each deduplicated and
//! cached by its own bitset), so [`DualEncoderGame::evaluate_grid`] costs
//! K_img + K_txt encoder passes and one `[K_img, P] x [P, K_txt]` product on
//! the device. The joint [`Game`] pairs rows the same way.
use crate::config::{EngineConfig, RetrievalScore};
use crate::grid::{PatchBox, PatchGrid};
use crate::image_mask::ImageMasker;
use crate::memory::{image_input_bytes, transformer_bytes};
use crate::scheduler::{Scheduler, ValueCache};
use crate::scorer::l2_normalize;
use crate::text_mask::{TextMasker, TokenLayout};
use crate::{EngineError, Result};
use candle_core::{DType, Device, Tensor};
use multishap_core::{Coalition, CoalitionBatch, DualEncoderGame, Game, Players};
use multishap_models::clip::ClipModel;
use multishap_models::loading::{AnyImageProcessor, AnyModel, LoadedModel};
use multishap_models::tokenizer::Encoding;
use std::collections::HashMap;

/// Encoder passes actually run (after deduplication and caching).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClipStats {
    pub image_rows_encoded: usize,
    pub text_rows_encoded: usize,
    pub image_cache_hits: usize,
    pub text_cache_hits: usize,
}

pub struct ClipRetrievalGame<'m> {
    model: &'m ClipModel,
    device: Device,
    image: ImageMasker,
    text: TextMasker,
    score: RetrievalScore,
    logit_scale: f32,
    image_cache: ValueCache<Vec<f32>>,
    text_cache: ValueCache<Vec<f32>>,
    image_sched: Scheduler,
    text_sched: Scheduler,
    pub stats: ClipStats,
}

enum Src {
    Cached(Vec<f32>),
    New(usize),
}

impl<'m> ClipRetrievalGame<'m> {
    pub fn new(
        model: &'m LoadedModel,
        image: &image::DynamicImage,
        caption: &str,
        cfg: &EngineConfig,
    ) -> Result<Self> {
        let AnyModel::Clip(clip) = &model.model else {
            return Err(EngineError::InvalidInput(format!(
                "{} is not a CLIP model",
                model.id
            )));
        };
        let AnyImageProcessor::Clip(proc) = &model.image_processor else {
            return Err(EngineError::InvalidInput(
                "CLIP needs the CLIP image processor".into(),
            ));
        };
        let pixels = proc.preprocess(image)?;
        let enc = model
            .tokenizer
            .encode(caption, clip.config().text_config.max_position_embeddings)?;
        let eos_id = model
            .tokenizer
            .eos_token_id()
            .unwrap_or(clip.config().text_config.eos_token_id);
        Self::from_parts(
            clip,
            &model.device,
            &pixels,
            &enc,
            eos_id,
            model.tokenizer.pad_token_id(),
            cfg,
        )
    }

    /// From a preprocessed image `[3, H, W]` and an encoded caption.
    pub fn from_parts(
        model: &'m ClipModel,
        device: &Device,
        pixels: &Tensor,
        encoding: &Encoding,
        eos_id: u32,
        pad_id: u32,
        cfg: &EngineConfig,
    ) -> Result<Self> {
        let mc = model.config();
        let pixels = pixels.to_device(device)?.to_dtype(DType::F32)?;
        let (_, h, w) = pixels.dims3()?;
        let grid = match cfg.masking.image.grid {
            Some(g) => PatchGrid::new(g.rows, g.cols, h, w)?,
            None => PatchGrid::from_patch_size(mc.vision_config.patch_size, h, w)?,
        };
        let image = ImageMasker::new(&pixels, grid, &cfg.masking.image.baseline)?;
        let eos = encoding
            .ids
            .iter()
            .zip(&encoding.special)
            .position(|(&id, &sp)| sp && id == eos_id)
            .or_else(|| encoding.special.iter().rposition(|&s| s))
            .ok_or_else(|| EngineError::InvalidInput("caption has no end-of-text token".into()))?;
        let layout = TokenLayout {
            ids: encoding.ids.clone(),
            type_ids: encoding.type_ids.clone(),
            tokens: encoding.tokens.clone(),
            special: encoding.special.clone(),
        };
        let replace_id = cfg.masking.text.replace_id.unwrap_or(0);
        let text = TextMasker::new(
            layout,
            cfg.masking.text.mode,
            replace_id,
            pad_id,
            Some(eos),
            device,
        )?;
        let v = &mc.vision_config;
        let vis_tokens = (h / v.patch_size) * (w / v.patch_size) + 1;
        let img_bytes = transformer_bytes(
            vis_tokens,
            v.hidden_size,
            v.intermediate_size,
            v.num_attention_heads,
            v.num_hidden_layers,
        ) + image_input_bytes(v.num_channels, h, w);
        let t = &mc.text_config;
        let txt_bytes = transformer_bytes(
            text.seq_len(),
            t.hidden_size,
            t.intermediate_size,
            t.num_attention_heads,
            t.num_hidden_layers,
        );
        Ok(Self {
            model,
            device: device.clone(),
            image,
            text,
            score: cfg.scorer.retrieval,
            logit_scale: model.logit_scale()?,
            image_cache: ValueCache::new(cfg.batch.cache_capacity),
            text_cache: ValueCache::new(cfg.batch.cache_capacity),
            image_sched: Scheduler::new(cfg.batch.for_device(device), img_bytes)?,
            text_sched: Scheduler::new(cfg.batch.for_device(device), txt_bytes)?,
            stats: ClipStats::default(),
        })
    }

    pub fn tokens(&self) -> Vec<String> {
        self.text.layout().player_tokens()
    }

    pub fn patch_boxes(&self) -> Vec<PatchBox> {
        self.image.grid().boxes()
    }

    pub fn grid(&self) -> PatchGrid {
        *self.image.grid()
    }

    pub fn image_masker(&self) -> &ImageMasker {
        &self.image
    }

    pub fn text_masker(&self) -> &TextMasker {
        &self.text
    }

    /// Schedulers of the image and text encoders (batch sizes, OOM hook).
    pub fn schedulers_mut(&mut self) -> (&mut Scheduler, &mut Scheduler) {
        (&mut self.image_sched, &mut self.text_sched)
    }

    /// The score of the unmasked (image, caption).
    pub fn full_score(&mut self) -> Result<f32> {
        let p = DualEncoderGame::players(self);
        let i = CoalitionBatch::from_iter([Coalition::full(p.image)]);
        let t = CoalitionBatch::from_iter([Coalition::full(p.text)]);
        Ok(self.grid_values(&i, &t)?.flatten_all()?.to_vec1::<f32>()?[0])
    }

    fn factor(&self) -> f64 {
        match self.score {
            RetrievalScore::Cosine => 1.0,
            RetrievalScore::ScaledLogit => self.logit_scale as f64,
        }
    }

    /// L2-normalised embeddings `[K, P]` of image (`image = true`) or text
    /// coalitions, with deduplication and caching by bitset.
    fn embed(&mut self, batch: &CoalitionBatch, image: bool) -> Result<Tensor> {
        let (cache, sched) = if image {
            (&mut self.image_cache, &mut self.image_sched)
        } else {
            (&mut self.text_cache, &mut self.text_sched)
        };
        let mut seen: HashMap<&[u64], usize> = HashMap::new();
        let mut unique: Vec<usize> = Vec::new();
        let mut src = Vec::with_capacity(batch.len());
        let mut hits = 0;
        for i in 0..batch.len() {
            let w = batch.words(i);
            if let Some(v) = cache.get(w) {
                hits += 1;
                src.push(Src::Cached(v));
            } else if let Some(&k) = seen.get(w) {
                src.push(Src::New(k));
            } else {
                seen.insert(w, unique.len());
                src.push(Src::New(unique.len()));
                unique.push(i);
            }
        }
        let (model, masker_i, masker_t, device) =
            (self.model, &self.image, &self.text, &self.device);
        let chunks = sched.run_chunks(unique.len(), |range| {
            let mut sub = CoalitionBatch::with_capacity(batch.num_players(), range.len());
            for &i in &unique[range] {
                sub.push(&batch.get(i));
            }
            let keep = sub.to_mask_tensor(device, DType::U8)?;
            let emb = if image {
                model.get_image_features(&masker_i.mask(&keep)?)?
            } else {
                let t = masker_t.mask(&keep)?;
                let eos = t
                    .eos_positions
                    .ok_or_else(|| EngineError::InvalidInput("no eos positions".into()))?;
                model.get_text_features(&t.input_ids, &eos)?
            };
            Ok(l2_normalize(&emb.to_dtype(DType::F32)?)?.to_vec2::<f32>()?)
        })?;
        let fresh: Vec<Vec<f32>> = chunks.into_iter().flatten().collect();
        for (k, &i) in unique.iter().enumerate() {
            cache.insert(batch.words(i), fresh[k].clone());
        }
        if image {
            self.stats.image_rows_encoded += unique.len();
            self.stats.image_cache_hits += hits;
        } else {
            self.stats.text_rows_encoded += unique.len();
            self.stats.text_cache_hits += hits;
        }
        let p = self.model.config().projection_dim;
        let mut flat = Vec::with_capacity(batch.len() * p);
        for s in &src {
            match s {
                Src::Cached(v) => flat.extend_from_slice(v),
                Src::New(k) => flat.extend_from_slice(&fresh[*k]),
            }
        }
        Ok(Tensor::from_vec(flat, (batch.len(), p), &self.device)?)
    }

    fn grid_values(&mut self, image: &CoalitionBatch, text: &CoalitionBatch) -> Result<Tensor> {
        let p = DualEncoderGame::players(self);
        if image.num_players() != p.image || text.num_players() != p.text {
            return Err(EngineError::InvalidInput(format!(
                "grid over {}+{} players, the game has {}+{}",
                image.num_players(),
                text.num_players(),
                p.image,
                p.text
            )));
        }
        let ei = self.embed(image, true)?;
        let et = self.embed(text, false)?;
        Ok((ei.matmul(&et.t()?)? * self.factor())?)
    }

    fn joint_values(&mut self, batch: &CoalitionBatch) -> Result<Tensor> {
        let p = DualEncoderGame::players(self);
        if batch.num_players() != p.total() {
            return Err(EngineError::InvalidInput(format!(
                "coalitions over {} players, the game has {}",
                batch.num_players(),
                p.total()
            )));
        }
        if batch.is_empty() {
            return Ok(Tensor::zeros(0, DType::F32, &self.device)?);
        }
        let ei = self.embed(&batch.slice_players(0..p.image), true)?;
        let et = self.embed(&batch.slice_players(p.image..p.total()), false)?;
        Ok(((ei * et)?.sum(1)? * self.factor())?)
    }
}

impl DualEncoderGame for ClipRetrievalGame<'_> {
    fn players(&self) -> Players {
        Players::new(self.image.num_players(), self.text.num_players())
    }
    fn device(&self) -> &Device {
        &self.device
    }
    fn evaluate_grid(
        &mut self,
        image: &CoalitionBatch,
        text: &CoalitionBatch,
    ) -> multishap_core::Result<Tensor> {
        Ok(self.grid_values(image, text)?)
    }
}

impl Game for ClipRetrievalGame<'_> {
    fn players(&self) -> Players {
        DualEncoderGame::players(self)
    }
    fn device(&self) -> &Device {
        &self.device
    }
    fn evaluate(&mut self, batch: &CoalitionBatch) -> multishap_core::Result<Tensor> {
        Ok(self.joint_values(batch)?)
    }
}
