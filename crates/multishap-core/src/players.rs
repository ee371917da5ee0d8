use serde::{Deserialize, Serialize};

/// The players of a cross-modal game: `image` patch players first
/// (indices `0..image`), then `text` token players (indices `image..image+text`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Players {
    pub image: usize,
    pub text: usize,
}

impl Players {
    pub fn new(image: usize, text: usize) -> Self {
        Self { image, text }
    }

    /// Total number of players d = m + n.
    pub fn total(&self) -> usize {
        self.image + self.text
    }

    /// Global index of text player `j` (0-based among text players).
    pub fn text_index(&self, j: usize) -> usize {
        self.image + j
    }

    pub fn is_image(&self, p: usize) -> bool {
        p < self.image
    }

    /// Cross-modal estimators need at least one player of each modality.
    pub fn require_cross_modal(&self) -> crate::Result<()> {
        if self.image == 0 || self.text == 0 {
            return Err(crate::Error::InvalidInput(
                "need at least one image and one text player".into(),
            ));
        }
        Ok(())
    }
}
