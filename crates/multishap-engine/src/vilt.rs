//! ViLT games: VQA (`ViltVqaGame`) and image-text matching (`ViltItmGame`).
//!
//! Players: the image grid's boxes first, then the question's word pieces.
//! Every coalition becomes one row of a masked batch built on the device;
//! rows of several samples share a forward pass when their images have the
//! same size (text is padded with attention 0).
use crate::config::{AnswerTarget, EngineConfig, TextMaskMode, VqaScore};
use crate::engine::{Engine, RowModel};
use crate::grid::{PatchBox, PatchGrid};
use crate::image_mask::ImageMasker;
use crate::memory::{image_input_bytes, transformer_bytes};
use crate::scorer::vqa_scores;
use crate::text_mask::{pad_to, MaskedText, TextMasker, TokenLayout};
use crate::{EngineError, Result};
use candle_core::{DType, Device, Tensor};
use multishap_core::{Coalition, CoalitionBatch, Game, Players};
use multishap_models::loading::{AnyImageProcessor, AnyModel, LoadedModel};
use multishap_models::tokenizer::{Encoding, TextTokenizer};
use multishap_models::vilt::{
    ViltConfig, ViltForImageAndTextRetrieval, ViltForQuestionAnswering, ViltInputs,
};

/// The ViLT head a game scores.
#[derive(Debug, Clone, Copy)]
pub enum ViltHead<'m> {
    Vqa(&'m ViltForQuestionAnswering),
    Itm(&'m ViltForImageAndTextRetrieval),
}

impl ViltHead<'_> {
    pub fn config(&self) -> &ViltConfig {
        match self {
            ViltHead::Vqa(m) => m.vilt().config(),
            ViltHead::Itm(m) => m.vilt().config(),
        }
    }
}

/// The answer the VQA model gives on the unmasked input.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub label: String,
    pub index: usize,
    /// Raw logit of the predicted answer.
    pub logit: f32,
    /// Softmax probability of the predicted answer.
    pub probability: f32,
}

/// One prepared ViLT sample.
#[derive(Debug, Clone)]
pub struct ViltSample {
    pub image: ImageMasker,
    /// `[H, W]` u32
    pub pixel_mask: Tensor,
    pub text: TextMasker,
    /// Target answer index (VQA; 0 for ITM).
    pub target: u32,
    pub target_label: Option<String>,
    pub prediction: Option<Prediction>,
}

impl ViltSample {
    pub fn players(&self) -> Players {
        Players::new(self.image.num_players(), self.text.num_players())
    }

    pub fn tokens(&self) -> Vec<String> {
        self.text.layout().player_tokens()
    }

    pub fn patch_boxes(&self) -> Vec<PatchBox> {
        self.image.grid().boxes()
    }
}

/// ViLT + masking + scoring as a [`RowModel`].
#[derive(Debug, Clone)]
pub struct ViltRows<'m> {
    head: ViltHead<'m>,
    device: Device,
    cfg: EngineConfig,
}

struct Part {
    hw: (usize, usize),
    text: MaskedText,
    pixels: Tensor,
    pixel_mask: Tensor,
    targets: Tensor,
}

impl<'m> ViltRows<'m> {
    pub fn new(head: ViltHead<'m>, device: &Device, cfg: &EngineConfig) -> Self {
        Self {
            head,
            device: device.clone(),
            cfg: cfg.clone(),
        }
    }

    pub fn head(&self) -> ViltHead<'m> {
        self.head
    }

    /// Rows of a loaded ViLT model, VQA or retrieval head.
    pub fn for_model(model: &'m LoadedModel, cfg: &EngineConfig) -> Result<Self> {
        let head = match &model.model {
            AnyModel::ViltVqa(m) => ViltHead::Vqa(m),
            AnyModel::ViltRetrieval(m) => ViltHead::Itm(m),
            AnyModel::Clip(_) => {
                return Err(EngineError::InvalidInput(format!(
                    "{} is not a ViLT model",
                    model.id
                )))
            }
        };
        Ok(Self::new(head, &model.device, cfg))
    }

    /// Preprocess and tokenise one (image, text) of `model` (the model these
    /// rows were made from) into a sample: for VQA with the unmasked
    /// prediction and the target answer (`ground_truth` is used when
    /// `scorer.target = "ground_truth"`).
    pub fn prepare_input(
        &self,
        model: &LoadedModel,
        image: &image::DynamicImage,
        text: &str,
        ground_truth: Option<&str>,
    ) -> Result<ViltSample> {
        let (pixels, pixel_mask) = vilt_image(model, image)?;
        let max_len = self.head.config().max_position_embeddings;
        let enc = model.tokenizer.encode(text, max_len)?;
        match self.head {
            ViltHead::Vqa(_) => {
                self.prepare_vqa(&pixels, &pixel_mask, &enc, &model.tokenizer, ground_truth)
            }
            ViltHead::Itm(_) => self.prepare(
                &pixels,
                &pixel_mask,
                &enc,
                model.tokenizer.mask_token_id(),
                model.tokenizer.pad_token_id(),
            ),
        }
    }

    /// Prepare a sample from a preprocessed image (`[3, H, W]` normalised,
    /// pixel mask `[H, W]`) and an encoded text.
    pub fn prepare(
        &self,
        pixels: &Tensor,
        pixel_mask: &Tensor,
        encoding: &Encoding,
        mask_token_id: Option<u32>,
        pad_id: u32,
    ) -> Result<ViltSample> {
        let vc = self.head.config();
        let pixels = pixels.to_device(&self.device)?.to_dtype(DType::F32)?;
        let (_, h, w) = pixels.dims3()?;
        let grid = match self.cfg.masking.image.grid {
            Some(g) => PatchGrid::new(g.rows, g.cols, h, w)?,
            None => PatchGrid::from_patch_size(vc.patch_size, h, w)?,
        };
        let image = ImageMasker::new(&pixels, grid, &self.cfg.masking.image.baseline)?;
        let replace_id = match self.cfg.masking.text.replace_id.or(mask_token_id) {
            Some(id) => id,
            None if self.cfg.masking.text.mode == TextMaskMode::Delete => pad_id,
            None => {
                return Err(EngineError::Config(
                    "mask mode needs a [MASK] token or masking.text.replace_id".into(),
                ))
            }
        };
        let layout = TokenLayout {
            ids: encoding.ids.clone(),
            type_ids: encoding.type_ids.clone(),
            tokens: encoding.tokens.clone(),
            special: encoding.special.clone(),
        };
        let text = TextMasker::new(
            layout,
            self.cfg.masking.text.mode,
            replace_id,
            pad_id,
            None,
            &self.device,
        )?;
        let pixel_mask = pixel_mask.to_device(&self.device)?.to_dtype(DType::U32)?;
        if pixel_mask.dims() != [h, w] {
            return Err(EngineError::InvalidInput(format!(
                "pixel mask {:?} does not match the image {h}x{w}",
                pixel_mask.dims()
            )));
        }
        Ok(ViltSample {
            image,
            pixel_mask,
            text,
            target: 0,
            target_label: None,
            prediction: None,
        })
    }

    /// Prepare a VQA sample and resolve its target answer (`ground_truth`
    /// is required when `scorer.target = "ground_truth"`).
    pub fn prepare_vqa(
        &self,
        pixels: &Tensor,
        pixel_mask: &Tensor,
        encoding: &Encoding,
        tokenizer: &TextTokenizer,
        ground_truth: Option<&str>,
    ) -> Result<ViltSample> {
        let ViltHead::Vqa(vqa) = self.head else {
            return Err(EngineError::InvalidInput("not a VQA model".into()));
        };
        let mut s = self.prepare(
            pixels,
            pixel_mask,
            encoding,
            tokenizer.mask_token_id(),
            tokenizer.pad_token_id(),
        )?;
        let full = CoalitionBatch::from_iter([Coalition::full(s.players().total())]);
        let logits = self.logits(&s, &full)?;
        let probs = candle_nn::ops::softmax_last_dim(&logits)?;
        let row: Vec<f32> = logits.get(0)?.to_vec1()?;
        let index = row
            .iter()
            .enumerate()
            .fold(
                (0, f32::NEG_INFINITY),
                |acc, (i, &v)| if v > acc.1 { (i, v) } else { acc },
            )
            .0;
        let label = vqa
            .id2label(index)
            .map(str::to_string)
            .unwrap_or_else(|| index.to_string());
        let probability: f32 = probs.get(0)?.get(index)?.to_scalar()?;
        s.prediction = Some(Prediction {
            label: label.clone(),
            index,
            logit: row[index],
            probability,
        });
        let (target, target_label) = match self.cfg.scorer.target {
            AnswerTarget::Predicted => (index, label),
            AnswerTarget::GroundTruth | AnswerTarget::Given => {
                let answer = match self.cfg.scorer.target {
                    AnswerTarget::GroundTruth => ground_truth.ok_or_else(|| {
                        EngineError::InvalidInput(
                            "scorer.target = ground_truth but the sample has no answer".into(),
                        )
                    })?,
                    _ => self.cfg.scorer.answer.as_deref().ok_or_else(|| {
                        EngineError::Config("scorer.target = given needs scorer.answer".into())
                    })?,
                };
                let idx = vqa.label2id(answer).ok_or_else(|| {
                    EngineError::InvalidInput(format!(
                        "answer {answer:?} is not in the model's answer vocabulary"
                    ))
                })?;
                (idx, answer.to_string())
            }
        };
        s.target = target as u32;
        s.target_label = Some(target_label);
        Ok(s)
    }

    fn build_part(&self, sample: &ViltSample, batch: &CoalitionBatch) -> Result<Part> {
        let p = sample.players();
        let b = batch.len();
        let keep = batch.to_mask_tensor(&self.device, DType::U8)?;
        let img_keep = keep.narrow(1, 0, p.image)?.contiguous()?;
        let txt_keep = keep.narrow(1, p.image, p.text)?.contiguous()?;
        let pixels = sample.image.mask(&img_keep)?;
        let text = sample.text.mask(&txt_keep)?;
        let (h, w) = sample.pixel_mask.dims2()?;
        let pixel_mask = sample
            .pixel_mask
            .unsqueeze(0)?
            .broadcast_as((b, h, w))?
            .contiguous()?;
        let targets = Tensor::full(sample.target, b, &self.device)?;
        Ok(Part {
            hw: (h, w),
            text,
            pixels,
            pixel_mask,
            targets,
        })
    }

    fn run(&self, parts: &[Part]) -> Result<Tensor> {
        let len = parts
            .iter()
            .map(|p| p.text.input_ids.dims().get(1).copied().unwrap_or(0))
            .max()
            .unwrap_or(1);
        let cat = |f: &dyn Fn(&Part) -> Result<Tensor>| -> Result<Tensor> {
            let v = parts.iter().map(f).collect::<Result<Vec<_>>>()?;
            Ok(Tensor::cat(&v, 0)?)
        };
        let input_ids = cat(&|p| pad_to(&p.text.input_ids, len, 0))?;
        let attention_mask = cat(&|p| pad_to(&p.text.attention_mask, len, 0))?;
        let token_type_ids = cat(&|p| pad_to(&p.text.token_type_ids, len, 0))?;
        let pixel_values = cat(&|p| Ok(p.pixels.clone()))?;
        let pixel_mask = cat(&|p| Ok(p.pixel_mask.clone()))?;
        let inputs = ViltInputs {
            input_ids: &input_ids,
            attention_mask: &attention_mask,
            token_type_ids: &token_type_ids,
            pixel_values: &pixel_values,
            pixel_mask: &pixel_mask,
        };
        match self.head {
            ViltHead::Vqa(m) => {
                let logits = m.forward(&inputs)?;
                let targets = cat(&|p| Ok(p.targets.clone()))?;
                vqa_scores(&logits, &targets, self.cfg.scorer.vqa)
            }
            ViltHead::Itm(m) => Ok(m.forward(&inputs)?.flatten_all()?.to_dtype(DType::F32)?),
        }
    }

    /// VQA logits `[B, C]` of the masked inputs of one sample (direct call,
    /// no scheduler; for predictions and tests).
    pub fn logits(&self, sample: &ViltSample, batch: &CoalitionBatch) -> Result<Tensor> {
        let ViltHead::Vqa(m) = self.head else {
            return Err(EngineError::InvalidInput("not a VQA model".into()));
        };
        let part = self.build_part(sample, batch)?;
        let inputs = ViltInputs {
            input_ids: &part.text.input_ids,
            attention_mask: &part.text.attention_mask,
            token_type_ids: &part.text.token_type_ids,
            pixel_values: &part.pixels,
            pixel_mask: &part.pixel_mask,
        };
        Ok(m.forward(&inputs)?.to_dtype(DType::F32)?)
    }

    /// The masked model inputs of one sample's coalitions
    /// (input_ids, attention_mask, token_type_ids, pixel_values, pixel_mask).
    pub fn masked_inputs(
        &self,
        sample: &ViltSample,
        batch: &CoalitionBatch,
    ) -> Result<[Tensor; 5]> {
        let p = self.build_part(sample, batch)?;
        Ok([
            p.text.input_ids,
            p.text.attention_mask,
            p.text.token_type_ids,
            p.pixels,
            p.pixel_mask,
        ])
    }
}

impl RowModel for ViltRows<'_> {
    type Sample = ViltSample;

    fn device(&self) -> &Device {
        &self.device
    }

    fn players(&self, sample: &ViltSample) -> Players {
        sample.players()
    }

    fn bytes_per_eval(&self, sample: &ViltSample) -> usize {
        let c = self.head.config();
        let (h, w) = (sample.image.grid().height, sample.image.grid().width);
        let tokens = sample.text.seq_len() + (h / c.patch_size) * (w / c.patch_size) + 1;
        transformer_bytes(
            tokens,
            c.hidden_size,
            c.intermediate_size,
            c.num_attention_heads,
            c.num_hidden_layers,
        ) + image_input_bytes(c.num_channels, h, w)
    }

    fn score_groups(
        &self,
        samples: &[ViltSample],
        groups: &[(usize, CoalitionBatch)],
    ) -> Result<Tensor> {
        let mut scores = Vec::new();
        let mut run: Vec<Part> = Vec::new();
        for (s, batch) in groups {
            let part = self.build_part(&samples[*s], batch)?;
            if run.last().is_some_and(|p| p.hw != part.hw) {
                scores.push(self.run(&run)?);
                run.clear();
            }
            run.push(part);
        }
        if !run.is_empty() {
            scores.push(self.run(&run)?);
        }
        Ok(Tensor::cat(&scores, 0)?)
    }
}

/// Many ViLT samples sharing one scheduler.
pub type ViltEngine<'m> = Engine<ViltRows<'m>>;

fn vilt_image(model: &LoadedModel, image: &image::DynamicImage) -> Result<(Tensor, Tensor)> {
    match &model.image_processor {
        AnyImageProcessor::Vilt(p) => Ok(p.preprocess(image)?),
        AnyImageProcessor::Clip(_) => Err(EngineError::InvalidInput(
            "a ViLT game needs a ViLT model".into(),
        )),
    }
}

/// What every single-sample ViLT game shares: construction from a prepared sample, the player
/// accessors, and the `Game` impl whose value is the engine's score of sample 0.
macro_rules! single_sample_vilt_game {
    ($game:ident) => {
        impl<'m> $game<'m> {
            /// From an already prepared sample (see [`ViltRows::prepare`] / `prepare_vqa`).
            pub fn from_sample(
                rows: ViltRows<'m>,
                sample: ViltSample,
                cfg: &EngineConfig,
            ) -> Result<Self> {
                let mut engine = Engine::new(rows, cfg.batch.clone())?;
                engine.add_sample(sample);
                Ok(Self { engine })
            }

            pub fn sample(&self) -> &ViltSample {
                self.engine.sample(0)
            }

            /// Player token strings (word pieces, in player order).
            pub fn tokens(&self) -> Vec<String> {
                self.sample().tokens()
            }

            /// Pixel boxes of the image players in the preprocessed image.
            pub fn patch_boxes(&self) -> Vec<PatchBox> {
                self.sample().patch_boxes()
            }

            pub fn grid(&self) -> PatchGrid {
                *self.sample().image.grid()
            }

            pub fn engine(&self) -> &ViltEngine<'m> {
                &self.engine
            }

            pub fn engine_mut(&mut self) -> &mut ViltEngine<'m> {
                &mut self.engine
            }
        }

        impl Game for $game<'_> {
            fn players(&self) -> Players {
                self.sample().players()
            }
            fn device(&self) -> &Device {
                self.engine.model().device()
            }
            fn evaluate(&mut self, batch: &CoalitionBatch) -> multishap_core::Result<Tensor> {
                Ok(self.engine.evaluate(0, batch)?)
            }
        }
    };
}

/// ViLT VQA on one (image, question): players, tokens, boxes, prediction,
/// and [`Game`] over masked inputs.
pub struct ViltVqaGame<'m> {
    engine: ViltEngine<'m>,
}

impl<'m> ViltVqaGame<'m> {
    /// Score = `cfg.scorer.vqa` of the target answer; target = the predicted
    /// answer unless `cfg.scorer.target` says otherwise.
    pub fn new(
        model: &'m LoadedModel,
        image: &image::DynamicImage,
        question: &str,
        cfg: &EngineConfig,
    ) -> Result<Self> {
        Self::with_ground_truth(model, image, question, None, cfg)
    }

    pub fn with_ground_truth(
        model: &'m LoadedModel,
        image: &image::DynamicImage,
        question: &str,
        ground_truth: Option<&str>,
        cfg: &EngineConfig,
    ) -> Result<Self> {
        if !matches!(model.model, AnyModel::ViltVqa(_)) {
            return Err(EngineError::InvalidInput(format!(
                "{} is not a ViLT VQA model",
                model.id
            )));
        }
        let rows = ViltRows::for_model(model, cfg)?;
        let sample = rows.prepare_input(model, image, question, ground_truth)?;
        Self::from_sample(rows, sample, cfg)
    }

    /// (answer, softmax probability) on the unmasked input.
    pub fn prediction(&self) -> (String, f32) {
        let p = self.sample().prediction.as_ref();
        p.map(|p| (p.label.clone(), p.probability))
            .unwrap_or_default()
    }

    /// The answer whose score is the game's value.
    pub fn target(&self) -> (u32, Option<&str>) {
        (self.sample().target, self.sample().target_label.as_deref())
    }

    pub fn vqa_score(&self) -> VqaScore {
        self.engine.model().cfg.scorer.vqa
    }
}

single_sample_vilt_game!(ViltVqaGame);

/// ViLT image-text matching on one (image, caption); value = ITM logit.
pub struct ViltItmGame<'m> {
    engine: ViltEngine<'m>,
}

impl<'m> ViltItmGame<'m> {
    pub fn new(
        model: &'m LoadedModel,
        image: &image::DynamicImage,
        caption: &str,
        cfg: &EngineConfig,
    ) -> Result<Self> {
        if !matches!(model.model, AnyModel::ViltRetrieval(_)) {
            return Err(EngineError::InvalidInput(format!(
                "{} is not a ViLT retrieval model",
                model.id
            )));
        }
        let rows = ViltRows::for_model(model, cfg)?;
        let sample = rows.prepare_input(model, image, caption, None)?;
        Self::from_sample(rows, sample, cfg)
    }

    /// ITM logit of the unmasked input.
    pub fn full_score(&mut self) -> Result<f32> {
        let d = self.sample().players().total();
        let v = self
            .engine
            .evaluate(0, &CoalitionBatch::from_iter([Coalition::full(d)]))?;
        Ok(v.to_vec1::<f32>()?[0])
    }
}

single_sample_vilt_game!(ViltItmGame);

impl<'m> ViltEngine<'m> {
    /// An engine for many VQA samples of one loaded ViLT VQA model.
    pub fn for_vqa(model: &'m LoadedModel, cfg: &EngineConfig) -> Result<Self> {
        let AnyModel::ViltVqa(vqa) = &model.model else {
            return Err(EngineError::InvalidInput(format!(
                "{} is not a ViLT VQA model",
                model.id
            )));
        };
        Engine::new(
            ViltRows::new(ViltHead::Vqa(vqa), &model.device, cfg),
            cfg.batch.clone(),
        )
    }

    /// Preprocess, tokenise and add one (image, question) sample; returns its
    /// index for [`Engine::evaluate_many`] / [`Engine::game`].
    pub fn add_vqa(
        &mut self,
        model: &LoadedModel,
        image: &image::DynamicImage,
        question: &str,
        ground_truth: Option<&str>,
    ) -> Result<usize> {
        let s = self
            .model()
            .prepare_input(model, image, question, ground_truth)?;
        Ok(self.add_sample(s))
    }
}
