//! Text tokenisation through `tokenizers`: a `tokenizer.json`, or BERT uncased
//! WordPiece built in code from a `vocab.txt`.

use std::path::Path;

use tokenizers::Tokenizer;

use crate::error::{ModelError, Result};

/// One encoded text (special tokens included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoding {
    pub ids: Vec<u32>,
    pub tokens: Vec<String>,
    /// true at special tokens ([CLS], [SEP], <|startoftext|>, <|endoftext|>)
    pub special: Vec<bool>,
    pub type_ids: Vec<u32>,
}

/// A tokenizer plus the special ids the models need.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("vocab_size", &self.inner.get_vocab_size(true))
            .finish()
    }
}

fn tk_err(e: impl std::fmt::Display) -> ModelError {
    ModelError::Tokenizer(e.to_string())
}

impl TextTokenizer {
    pub fn from_file(tokenizer_json: &Path) -> Result<Self> {
        if !tokenizer_json.is_file() {
            return Err(ModelError::io(
                tokenizer_json,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            ));
        }
        let mut inner = Tokenizer::from_file(tokenizer_json)
            .map_err(|e| tk_err(format!("{}: {e}", tokenizer_json.display())))?;
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| tk_err(format!("{}: {e}", tokenizer_json.display())))?;
        Ok(Self { inner })
    }

    /// BERT uncased WordPiece (what `BertTokenizerFast(vocab_file, do_lower_case=True)`
    /// builds): BERT normaliser (clean text, CJK spacing, lower case, strip accents),
    /// BERT pre-tokeniser, `[CLS] ... [SEP]` post-processing, special tokens.
    pub fn bert_from_vocab(vocab_txt: &Path) -> Result<Self> {
        use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
        use tokenizers::models::wordpiece::WordPiece;
        use tokenizers::normalizers::bert::BertNormalizer;
        use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
        use tokenizers::processors::bert::BertProcessing;
        use tokenizers::AddedToken;

        if !vocab_txt.is_file() {
            return Err(ModelError::io(
                vocab_txt,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            ));
        }
        let path = vocab_txt
            .to_str()
            .ok_or_else(|| tk_err(format!("non UTF-8 path {}", vocab_txt.display())))?;
        let wp = WordPiece::from_file(path)
            .unk_token("[UNK]".into())
            .build()
            .map_err(|e| tk_err(format!("{}: {e}", vocab_txt.display())))?;
        let id = |t: &str| {
            tokenizers::Model::token_to_id(&wp, t)
                .ok_or_else(|| tk_err(format!("{} has no {t} token", vocab_txt.display())))
        };
        let cls = id("[CLS]")?;
        let sep = id("[SEP]")?;
        let mut inner = Tokenizer::new(wp);
        inner.with_normalizer(Some(BertNormalizer::new(true, true, None, true)));
        inner.with_pre_tokenizer(Some(BertPreTokenizer));
        inner.with_post_processor(Some(BertProcessing::new(
            ("[SEP]".to_string(), sep),
            ("[CLS]".to_string(), cls),
        )));
        inner.with_decoder(Some(WordPieceDecoder::default()));
        let specials: Vec<AddedToken> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
            .iter()
            .filter(|t| inner.token_to_id(t).is_some())
            .map(|t| AddedToken::from(t.to_string(), true))
            .collect();
        inner.add_special_tokens(&specials);
        Ok(Self { inner })
    }

    pub fn from_tokenizer(inner: Tokenizer) -> Self {
        Self { inner }
    }

    /// Encodes with special tokens; longer than `max_len` -> truncated (keeping the
    /// special tokens) with a `log::warn`.
    pub fn encode(&self, text: &str, max_len: usize) -> Result<Encoding> {
        if text.trim().is_empty() {
            return Err(ModelError::EmptyText);
        }
        let enc = self.inner.encode(text, true).map_err(tk_err)?;
        let enc = if enc.get_ids().len() > max_len {
            log::warn!(
                "text of {} tokens truncated to the model's {max_len} positions: {text:?}",
                enc.get_ids().len()
            );
            let mut t = self.inner.clone();
            t.with_truncation(Some(tokenizers::TruncationParams {
                max_length: max_len,
                ..Default::default()
            }))
            .map_err(tk_err)?;
            t.encode(text, true).map_err(tk_err)?
        } else {
            enc
        };
        Ok(Encoding {
            ids: enc.get_ids().to_vec(),
            tokens: enc.get_tokens().to_vec(),
            special: enc
                .get_special_tokens_mask()
                .iter()
                .map(|&m| m == 1)
                .collect(),
            type_ids: enc.get_type_ids().to_vec(),
        })
    }

    pub fn mask_token_id(&self) -> Option<u32> {
        self.inner.token_to_id("[MASK]")
    }

    pub fn pad_token_id(&self) -> u32 {
        if let Some(p) = self.inner.get_padding() {
            return p.pad_id;
        }
        self.inner
            .token_to_id("[PAD]")
            .or_else(|| self.inner.token_to_id("<|endoftext|>"))
            .unwrap_or(0)
    }

    pub fn eos_token_id(&self) -> Option<u32> {
        self.inner
            .token_to_id("<|endoftext|>")
            .or_else(|| self.inner.token_to_id("[SEP]"))
    }

    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }
}
