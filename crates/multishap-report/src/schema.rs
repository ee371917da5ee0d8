//! The versioned result schema: one [`ExplanationRecord`] per explained sample.
//!
//! Conventions:
//! - Image players (patches) come first, text players (tokens) second, as in core.
//! - `sii[i][j]` is the SII of patch `i` (row-major over the patch grid) and token `j`;
//!   `sii_stderr` has the same layout.
//! - `P = positive_sum` is the sum of the positive SII entries, `N = negative_sum` the sum of
//!   the negative ones (so `N <= 0`), and
//!   `positive_ratio = P / (|P| + |N|)`. When `P = N = 0` (every SII is exactly zero) the ratio is
//!   undefined and stored as `null` (`None`); dataset statistics skip such samples in means
//!   and count them as *not* synergy-dominant.
//! - `schema_version` is [`SCHEMA_VERSION`]; readers reject records from a newer version and
//!   accept older ones (fields added later are `#[serde(default)]`).
use crate::error::{ReportError, Result};
use multishap_core::InteractionEstimate;
use serde::{Deserialize, Serialize};

/// Current version of the record schema. Bump it on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Which model produced the explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ModelInfo {
    /// Model id, e.g. `dandelin/vilt-b32-finetuned-vqa`.
    pub id: String,
    /// Revision / commit / file hash of the weights, if known.
    #[serde(default)]
    pub revision: Option<String>,
}

/// The model's output on the full (unmasked) input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Prediction {
    /// Predicted label (VQA answer, or the caption / class for CLIP).
    pub label: String,
    /// The model's score for that label.
    pub score: f64,
}

/// The patch grid over the image and where each patch lies in the *original* image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PatchGrid {
    pub rows: usize,
    pub cols: usize,
    /// One box per patch, row-major, `[x0, y0, x1, y1]` in original-image pixels
    /// (x1, y1 exclusive). May be empty when unknown; heatmaps then cover the whole image.
    #[serde(default)]
    pub boxes: Vec<[f64; 4]>,
    /// Size `(width, height)` of the original image in pixels, if known.
    #[serde(default)]
    pub image_size: Option<(u32, u32)>,
}

impl PatchGrid {
    pub fn len(&self) -> usize {
        self.rows * self.cols
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Boxes of a uniform `rows x cols` grid covering a `width x height` image.
    pub fn uniform(rows: usize, cols: usize, width: u32, height: u32) -> Self {
        let mut boxes = Vec::with_capacity(rows * cols);
        let (w, h) = (width as f64, height as f64);
        for r in 0..rows {
            for c in 0..cols {
                boxes.push([
                    w * c as f64 / cols as f64,
                    h * r as f64 / rows as f64,
                    w * (c + 1) as f64 / cols as f64,
                    h * (r + 1) as f64 / rows as f64,
                ]);
            }
        }
        Self {
            rows,
            cols,
            boxes,
            image_size: Some((width, height)),
        }
    }
}

/// Everything in a record that does not come from the estimator.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordMeta {
    pub id: String,
    pub model: ModelInfo,
    pub preprocessing: serde_json::Value,
    pub masking: serde_json::Value,
    pub scorer: String,
    pub target: Option<String>,
    pub budget: usize,
    pub seed: u64,
    pub prediction: Prediction,
    pub full_score: f64,
    pub empty_score: Option<f64>,
    pub answers: Option<Vec<String>>,
    pub answer_type: Option<String>,
    pub question_type: Option<String>,
    pub text: String,
    pub image: Option<String>,
    pub tokens: Vec<String>,
    pub grid: PatchGrid,
    pub model_rows: Option<ModelRows>,
}

/// Masked inputs the model actually ran for one sample (full and empty input
/// included), after the engine's deduplication and value cache: the cost on
/// the device, where `evaluations` counts what the estimator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ModelRows {
    /// One joint model (ViLT): masked (image, text) inputs run.
    Joint { rows: usize },
    /// A dual encoder (CLIP): image and text coalitions encoded, each once.
    Dual { image: usize, text: usize },
}

/// One explained sample (one line of `results.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplanationRecord {
    pub schema_version: u32,
    /// Sample id (unique within a run; the resume key).
    pub id: String,
    pub model: ModelInfo,
    /// Preprocessing settings (free form, e.g. `{"resize": 384, "patch": 32}`).
    #[serde(default)]
    pub preprocessing: serde_json::Value,
    /// Masking settings (free form, e.g. `{"image": "gray", "text": "delete"}`).
    #[serde(default)]
    pub masking: serde_json::Value,
    /// Scorer, e.g. `vqa-logit` or `clip-similarity`.
    pub scorer: String,
    /// The label whose score is explained (e.g. the ground-truth answer), if not the prediction.
    #[serde(default)]
    pub target: Option<String>,
    pub estimator: String,
    /// Budget in game evaluations that was requested.
    pub budget: usize,
    pub seed: u64,
    /// Game evaluations actually spent.
    pub evaluations: usize,
    /// Wall time of the estimate in seconds.
    pub seconds: f64,
    pub prediction: Prediction,
    /// Scorer value on the full input, `v(N)`.
    pub full_score: f64,
    /// Scorer value with every player masked, `v(empty)`, if computed.
    #[serde(default)]
    pub empty_score: Option<f64>,
    /// Ground-truth answers (VQA: usually 10 human answers), if known.
    #[serde(default)]
    pub answers: Option<Vec<String>>,
    #[serde(default)]
    pub answer_type: Option<String>,
    #[serde(default)]
    pub question_type: Option<String>,
    /// The question / caption.
    pub text: String,
    /// Path of the source image (as given to the CLI), if any.
    #[serde(default)]
    pub image: Option<String>,
    /// Text players as strings (word pieces), length n.
    pub tokens: Vec<String>,
    /// Image players: the patch grid, rows * cols = m.
    pub grid: PatchGrid,
    /// SII grid `[m][n]`.
    pub sii: Vec<Vec<f64>>,
    /// Standard errors, `[m][n]`. Undefined ones (NaN, e.g. a single draw) are written as
    /// JSON `null` and read back as NaN.
    #[serde(deserialize_with = "null_as_nan::grid")]
    pub sii_stderr: Vec<Vec<f64>>,
    /// First-order Shapley values of all m + n players (patches first), if computed;
    /// undefined entries are `null` in JSON, NaN here.
    #[serde(default, deserialize_with = "null_as_nan::optional_vec")]
    pub shapley: Option<Vec<f64>>,
    /// P: sum of positive SII.
    pub positive_sum: f64,
    /// N: sum of negative SII (<= 0).
    pub negative_sum: f64,
    /// P / (|P| + |N|); `None` when both are 0.
    pub positive_ratio: Option<f64>,
    /// What the model ran for this sample, if known (absent when several
    /// samples shared forward passes, and in records of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_rows: Option<ModelRows>,
}

/// `(P, N, P / (|P| + |N|))` of a set of SII values; the ratio is `None` when `P = N = 0`.
pub fn positive_negative(values: impl IntoIterator<Item = f64>) -> (f64, f64, Option<f64>) {
    let (mut p, mut n) = (0.0, 0.0);
    for v in values {
        if v > 0.0 {
            p += v;
        } else if v < 0.0 {
            n += v;
        }
    }
    let denom = p.abs() + n.abs();
    let ratio = if denom > 0.0 {
        Some(p.abs() / denom)
    } else {
        None
    };
    (p, n, ratio)
}

impl ExplanationRecord {
    /// Build a record from an estimate and its metadata; computes P, N and the ratio and
    /// checks that tokens / grid match the estimate's shape.
    pub fn from_estimate(est: &InteractionEstimate, meta: RecordMeta) -> Result<Self> {
        let (m, n) = (est.image_players, est.text_players);
        let invalid = |reason: String| ReportError::InvalidRecord {
            id: meta.id.clone(),
            reason,
        };
        if est.sii.len() != m * n || est.stderr.len() != m * n {
            return Err(invalid(format!(
                "estimate has {} SII / {} stderr values for {m} x {n} players",
                est.sii.len(),
                est.stderr.len()
            )));
        }
        let to_rows = |v: &[f64]| -> Vec<Vec<f64>> {
            (0..m).map(|i| v[i * n..(i + 1) * n].to_vec()).collect()
        };
        let (p, neg, ratio) = positive_negative(est.sii.iter().copied());
        let rec = Self {
            schema_version: SCHEMA_VERSION,
            id: meta.id,
            model: meta.model,
            preprocessing: meta.preprocessing,
            masking: meta.masking,
            scorer: meta.scorer,
            target: meta.target,
            estimator: est.estimator.clone(),
            budget: meta.budget,
            seed: meta.seed,
            evaluations: est.evaluations,
            seconds: est.seconds,
            prediction: meta.prediction,
            full_score: meta.full_score,
            empty_score: meta.empty_score,
            answers: meta.answers,
            answer_type: meta.answer_type,
            question_type: meta.question_type,
            text: meta.text,
            image: meta.image,
            tokens: meta.tokens,
            grid: meta.grid,
            sii: to_rows(&est.sii),
            sii_stderr: to_rows(&est.stderr),
            shapley: est.shapley.clone(),
            positive_sum: p,
            negative_sum: neg,
            positive_ratio: ratio,
            model_rows: meta.model_rows,
        };
        rec.validate()?;
        Ok(rec)
    }

    pub fn image_players(&self) -> usize {
        self.sii.len()
    }

    pub fn text_players(&self) -> usize {
        self.tokens.len()
    }

    /// All SII values, row-major.
    pub fn sii_values(&self) -> impl Iterator<Item = f64> + '_ {
        self.sii.iter().flat_map(|r| r.iter().copied())
    }

    /// Column `j` of the SII grid: the patch map of token `j` (row-major over the grid).
    pub fn token_map(&self, j: usize) -> Vec<f64> {
        self.sii.iter().map(|r| r[j]).collect()
    }

    /// Mean over tokens of the SII grid: one value per patch.
    pub fn average_map(&self) -> Vec<f64> {
        let n = self.text_players().max(1) as f64;
        self.sii.iter().map(|r| r.iter().sum::<f64>() / n).collect()
    }

    /// `sum_i |SII_ij|` per token j.
    pub fn token_importance(&self) -> Vec<f64> {
        let mut out = vec![0.0; self.text_players()];
        for row in &self.sii {
            for (o, v) in out.iter_mut().zip(row) {
                *o += v.abs();
            }
        }
        out
    }

    /// Check version, shapes and that P / N / ratio agree with the SII grid.
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| ReportError::InvalidRecord {
            id: self.id.clone(),
            reason,
        };
        if self.schema_version > SCHEMA_VERSION {
            return Err(ReportError::UnsupportedSchema {
                id: self.id.clone(),
                found: self.schema_version,
                supported: SCHEMA_VERSION,
            });
        }
        let (m, n) = (self.sii.len(), self.tokens.len());
        if self.grid.len() != m {
            return Err(invalid(format!(
                "patch grid {}x{} does not match {m} SII rows",
                self.grid.rows, self.grid.cols
            )));
        }
        if !self.grid.boxes.is_empty() && self.grid.boxes.len() != m {
            return Err(invalid(format!(
                "{} patch boxes for {m} patches",
                self.grid.boxes.len()
            )));
        }
        if let Some(r) = self.sii.iter().position(|r| r.len() != n) {
            return Err(invalid(format!("SII row {r} does not have {n} tokens")));
        }
        if self.sii_stderr.len() != m || self.sii_stderr.iter().any(|r| r.len() != n) {
            return Err(invalid(
                "stderr grid shape differs from the SII grid".into(),
            ));
        }
        if let Some(s) = &self.shapley {
            if s.len() != m + n {
                return Err(invalid(format!(
                    "{} Shapley values for {} players",
                    s.len(),
                    m + n
                )));
            }
        }
        if self.sii_values().any(|v| !v.is_finite()) {
            return Err(invalid("non-finite SII value".into()));
        }
        let (p, neg, ratio) = positive_negative(self.sii_values());
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()));
        let ratio_ok = match (ratio, self.positive_ratio) {
            (Some(a), Some(b)) => close(a, b),
            (None, None) => true,
            _ => false,
        };
        if !close(p, self.positive_sum) || !close(neg, self.negative_sum) || !ratio_ok {
            return Err(invalid(
                "P / N / positive_ratio disagree with the SII grid".into(),
            ));
        }
        Ok(())
    }
}

/// serde_json writes non-finite floats as `null`; these read such `null`s back as NaN.
mod null_as_nan {
    use serde::{Deserialize, Deserializer};

    fn nan(v: Option<f64>) -> f64 {
        v.unwrap_or(f64::NAN)
    }

    pub fn grid<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<f64>>, D::Error> {
        let rows = Vec::<Vec<Option<f64>>>::deserialize(d)?;
        Ok(rows
            .into_iter()
            .map(|r| r.into_iter().map(nan).collect())
            .collect())
    }

    pub fn optional_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<f64>>, D::Error> {
        let v = Option::<Vec<Option<f64>>>::deserialize(d)?;
        Ok(v.map(|v| v.into_iter().map(nan).collect()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn estimate(m: usize, n: usize, sii: Vec<f64>) -> InteractionEstimate {
        // Built through serde so that fields core may add later (with defaults) do not
        // break these tests.
        serde_json::from_value(serde_json::json!({
            "estimator": "exact",
            "image_players": m,
            "text_players": n,
            "stderr": vec![0.0; sii.len()],
            "sii": sii,
            "shapley": null,
            "evaluations": 16,
            "seconds": 0.5,
        }))
        .expect("InteractionEstimate from JSON")
    }

    pub(crate) fn meta(id: &str, rows: usize, cols: usize, tokens: &[&str]) -> RecordMeta {
        RecordMeta {
            id: id.into(),
            model: ModelInfo {
                id: "test/model".into(),
                revision: Some("abc".into()),
            },
            scorer: "logit".into(),
            budget: 100,
            seed: 7,
            prediction: Prediction {
                label: "yes".into(),
                score: 3.0,
            },
            full_score: 3.0,
            text: tokens.join(" "),
            tokens: tokens.iter().map(|s| s.to_string()).collect(),
            grid: PatchGrid::uniform(rows, cols, 64, 64),
            ..Default::default()
        }
    }

    #[test]
    fn from_estimate_computes_p_n_ratio() {
        // 2 patches x 2 tokens: P = 1 + 3 = 4, N = -2 + -0 = -2 -> ratio 4/6.
        let est = estimate(2, 2, vec![1.0, -2.0, 3.0, 0.0]);
        let rec = ExplanationRecord::from_estimate(&est, meta("a", 1, 2, &["x", "y"])).unwrap();
        assert_eq!(rec.positive_sum, 4.0);
        assert_eq!(rec.negative_sum, -2.0);
        assert!((rec.positive_ratio.unwrap() - 4.0 / 6.0).abs() < 1e-12);
        assert_eq!(rec.sii, vec![vec![1.0, -2.0], vec![3.0, 0.0]]);
        assert_eq!(rec.token_map(1), vec![-2.0, 0.0]);
        assert_eq!(rec.average_map(), vec![-0.5, 1.5]);
        assert_eq!(rec.token_importance(), vec![4.0, 2.0]);
        assert_eq!(rec.evaluations, 16);
        assert_eq!(rec.schema_version, SCHEMA_VERSION);
    }

    #[test]
    fn undefined_stderr_and_shapley_round_trip_as_nan() {
        let est = estimate(1, 2, vec![1.0, -1.0]);
        let mut rec = ExplanationRecord::from_estimate(&est, meta("u", 1, 1, &["x", "y"])).unwrap();
        rec.sii_stderr[0][1] = f64::NAN;
        rec.shapley = Some(vec![0.5, f64::NAN, 2.0]);
        let line = serde_json::to_string(&rec).unwrap();
        assert!(line.contains("null"), "{line}");
        let back: ExplanationRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back.sii_stderr[0][0], 0.0);
        assert!(back.sii_stderr[0][1].is_nan());
        let s = back.shapley.unwrap();
        assert_eq!((s[0], s[2]), (0.5, 2.0));
        assert!(s[1].is_nan());
    }

    #[test]
    fn all_zero_ratio_is_null() {
        let est = estimate(1, 2, vec![0.0, 0.0]);
        let rec = ExplanationRecord::from_estimate(&est, meta("z", 1, 1, &["x", "y"])).unwrap();
        assert_eq!(rec.positive_ratio, None);
        let json = serde_json::to_value(&rec).unwrap();
        assert!(json["positive_ratio"].is_null());
    }

    #[test]
    fn shape_mismatch_is_rejected() {
        let est = estimate(2, 2, vec![1.0, -2.0, 3.0, 0.0]);
        // 3 tokens for a 2-token estimate
        let err = ExplanationRecord::from_estimate(&est, meta("b", 1, 2, &["x", "y", "z"]));
        assert!(matches!(err, Err(ReportError::InvalidRecord { .. })));
        // 2x2 grid for 2 patches
        let err = ExplanationRecord::from_estimate(&est, meta("b", 2, 2, &["x", "y"]));
        assert!(matches!(err, Err(ReportError::InvalidRecord { .. })));
    }

    #[test]
    fn json_round_trip_and_newer_version_rejected() {
        let est = estimate(2, 1, vec![0.5, -0.25]);
        let rec = ExplanationRecord::from_estimate(&est, meta("c", 2, 1, &["x"])).unwrap();
        let line = serde_json::to_string(&rec).unwrap();
        assert!(!line.contains('\n'));
        let back: ExplanationRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back, rec);
        let mut newer = rec.clone();
        newer.schema_version = SCHEMA_VERSION + 1;
        assert!(matches!(
            newer.validate(),
            Err(ReportError::UnsupportedSchema { .. })
        ));
        let mut tampered = rec;
        tampered.positive_sum = 9.0;
        assert!(tampered.validate().is_err());
    }

    #[test]
    fn model_rows_are_written_when_known_and_optional_when_read() {
        let est = estimate(2, 1, vec![0.5, -0.25]);
        let mut m = meta("d", 2, 1, &["x"]);
        m.model_rows = Some(ModelRows::Dual { image: 37, text: 5 });
        let rec = ExplanationRecord::from_estimate(&est, m).unwrap();
        let v = serde_json::to_value(&rec).unwrap();
        assert_eq!(
            v["model_rows"],
            serde_json::json!({"kind": "dual", "image": 37, "text": 5})
        );
        let back: ExplanationRecord = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(back.model_rows, rec.model_rows);
        // records without the field (older versions, packed samples) still read
        let mut old = v;
        old.as_object_mut().unwrap().remove("model_rows");
        let back: ExplanationRecord = serde_json::from_value(old).unwrap();
        assert_eq!(back.model_rows, None);
        let none = ExplanationRecord::from_estimate(&est, meta("e", 2, 1, &["x"])).unwrap();
        assert!(!serde_json::to_string(&none).unwrap().contains("model_rows"));
        let joint = serde_json::to_value(ModelRows::Joint { rows: 12 }).unwrap();
        assert_eq!(joint, serde_json::json!({"kind": "joint", "rows": 12}));
    }
}
