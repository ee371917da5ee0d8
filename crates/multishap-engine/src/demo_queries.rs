//! Games of the generated demo data (`multishap_models::demo`): one VQA
//! example as a game scored on its ground-truth answer, with what the
//! pointing game needs (the key word's player, the patch boxes). Shared by the
//! pointing and SII-decomposition benches and the demo-model tests.
use crate::config::{AnswerTarget, EngineConfig};
use crate::grid::PatchBox;
use crate::{Result, ViltVqaGame};
use multishap_models::demo::pointing;
use multishap_models::demo::train::VqaExample;
use multishap_models::LoadedModel;

/// Engine patch boxes in the pointing game's type.
pub fn pointing_boxes(boxes: &[PatchBox]) -> Vec<pointing::PatchBox> {
    boxes
        .iter()
        .map(|b| pointing::PatchBox {
            x0: b.x0 as u32,
            y0: b.y0 as u32,
            x1: b.x1 as u32,
            y1: b.y1 as u32,
        })
        .collect()
}

/// A demo VQA example ready for the pointing game.
pub struct DemoVqaQuery<'m> {
    /// Scored on the example's ground-truth answer (`cfg.scorer.target` is
    /// overridden), whatever the model predicts.
    pub game: ViltVqaGame<'m>,
    /// Text-player index of the question's key word; `None` when the question
    /// has none or the tokenizer splits it into several word pieces.
    pub key_word: Option<usize>,
    /// The image players' boxes in the rendered image's pixels.
    pub boxes: Vec<pointing::PatchBox>,
}

pub fn demo_vqa_query<'m>(
    model: &'m LoadedModel,
    ex: &VqaExample,
    cfg: &EngineConfig,
) -> Result<DemoVqaQuery<'m>> {
    let mut cfg = cfg.clone();
    cfg.scorer.target = AnswerTarget::GroundTruth;
    let image = ex.rendered.image.clone().into();
    let game = ViltVqaGame::with_ground_truth(
        model,
        &image,
        &ex.question.text,
        Some(&ex.question.answer),
        &cfg,
    )?;
    let tokens = game.tokens();
    let key_word = ex
        .question
        .key_word
        .as_deref()
        .and_then(|w| tokens.iter().position(|t| t == w));
    let boxes = pointing_boxes(&game.patch_boxes());
    Ok(DemoVqaQuery {
        game,
        key_word,
        boxes,
    })
}
