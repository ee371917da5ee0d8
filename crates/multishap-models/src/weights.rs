//! Strict weight checking and the `pytorch_model.bin` -> safetensors cache.
//!
//! A model is first built on a *recording* VarBuilder backend that hands out
//! zero tensors and records every requested name and shape; that list is compared
//! with the safetensors header, so that a missing or mis-shaped parameter is one
//! clear error instead of a silent default.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;

use crate::error::{ModelError, Result};

/// Names in checkpoints that are buffers, not parameters: never "unexpected".
fn is_ignorable_buffer(name: &str) -> bool {
    name.ends_with("position_ids") || name.ends_with("embeddings.token_type_ids")
}

/// (name, shape) of each requested parameter.
type Requests = Vec<(String, Vec<usize>)>;

#[derive(Default)]
struct Recorder {
    seen: Arc<Mutex<Requests>>,
}

impl SimpleBackend for Recorder {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _h: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        if let Ok(mut v) = self.seen.lock() {
            v.push((name.to_string(), s.dims().to_vec()));
        }
        // A broadcast scalar: no allocation of the full parameter.
        Tensor::zeros((), dtype, dev)?.broadcast_as(s)
    }

    fn get_unchecked(
        &self,
        name: &str,
        _dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        candle_core::bail!("recording backend: {name} requested without a shape")
    }

    fn contains_tensor(&self, _name: &str) -> bool {
        true
    }
}

/// Runs `build` on a recording VarBuilder and returns the parameters it asked
/// for, in request order.
pub fn expected_parameters<T>(
    build: impl FnOnce(VarBuilder) -> candle_core::Result<T>,
) -> Result<Vec<(String, Vec<usize>)>> {
    let rec = Recorder::default();
    let seen = rec.seen.clone();
    let vb = VarBuilder::from_backend(Box::new(rec), DType::F32, Device::Cpu);
    build(vb)?;
    let v = seen.lock().map(|v| v.clone()).unwrap_or_default();
    Ok(v)
}

/// Names and shapes in a safetensors file, read from its header only.
pub fn safetensors_shapes(path: &Path) -> Result<HashMap<String, Vec<usize>>> {
    let mut f = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    let bad = |m: String| ModelError::Json {
        path: path.to_path_buf(),
        message: m,
    };
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|e| ModelError::io(path, e))?;
    let n = u64::from_le_bytes(len);
    let size = f.metadata().map_err(|e| ModelError::io(path, e))?.len();
    if n > size.saturating_sub(8) || n > 100_000_000 {
        return Err(bad(format!("not a safetensors file (header length {n})")));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header)
        .map_err(|e| ModelError::io(path, e))?;
    let v: serde_json::Value =
        serde_json::from_slice(&header).map_err(|e| bad(format!("safetensors header: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| bad("safetensors header is not an object".into()))?;
    let mut out = HashMap::new();
    for (k, info) in obj {
        if k == "__metadata__" {
            continue;
        }
        let shape = info
            .get("shape")
            .and_then(|s| s.as_array())
            .ok_or_else(|| bad(format!("tensor {k} has no shape")))?
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad(format!("tensor {k} has a bad shape")))?;
        out.insert(k.clone(), shape);
    }
    Ok(out)
}

/// Outcome of comparing expected parameters with a checkpoint.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WeightReport {
    pub missing: Vec<String>,
    /// (name, expected, found)
    pub mis_shaped: Vec<(String, Vec<usize>, Vec<usize>)>,
    pub unexpected: Vec<String>,
}

impl WeightReport {
    pub fn is_ok(&self) -> bool {
        self.missing.is_empty() && self.mis_shaped.is_empty()
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        if !self.missing.is_empty() {
            s += &format!(
                "\n  missing ({}): {}",
                self.missing.len(),
                self.missing.join(", ")
            );
        }
        if !self.mis_shaped.is_empty() {
            let items: Vec<String> = self
                .mis_shaped
                .iter()
                .map(|(n, e, f)| format!("{n} expected {e:?} found {f:?}"))
                .collect();
            s += &format!("\n  mis-shaped ({}): {}", items.len(), items.join(", "));
        }
        if !self.unexpected.is_empty() {
            s += &format!(
                "\n  unexpected ({}): {}",
                self.unexpected.len(),
                self.unexpected.join(", ")
            );
        }
        s
    }
}

pub fn compare(
    expected: &[(String, Vec<usize>)],
    found: &HashMap<String, Vec<usize>>,
) -> WeightReport {
    let mut r = WeightReport::default();
    let mut wanted: BTreeMap<&str, &Vec<usize>> = BTreeMap::new();
    for (n, s) in expected {
        wanted.insert(n.as_str(), s);
    }
    for (n, s) in &wanted {
        match found.get(*n) {
            None => r.missing.push(n.to_string()),
            Some(f) if f != *s => r.mis_shaped.push((n.to_string(), (*s).clone(), f.clone())),
            Some(_) => {}
        }
    }
    let mut extra: Vec<String> = found
        .keys()
        .filter(|k| !wanted.contains_key(k.as_str()) && !is_ignorable_buffer(k))
        .cloned()
        .collect();
    extra.sort();
    r.unexpected = extra;
    r
}

/// Checks that `path` holds every parameter `build` needs, with the right shape.
/// Missing or mis-shaped parameters are an error (listing unexpected ones too);
/// unexpected ones alone are logged.
pub fn check_weights<T>(
    path: &Path,
    build: impl FnOnce(VarBuilder) -> candle_core::Result<T>,
) -> Result<WeightReport> {
    let expected = expected_parameters(build)?;
    let found = safetensors_shapes(path)?;
    let report = compare(&expected, &found);
    if !report.is_ok() {
        return Err(ModelError::WeightMismatch {
            path: path.to_path_buf(),
            report: report.render(),
        });
    }
    if !report.unexpected.is_empty() {
        log::warn!(
            "{}: {} unused tensors ignored:{}",
            path.display(),
            report.unexpected.len(),
            report.render()
        );
    }
    Ok(report)
}

/// Converts `pytorch_model.bin` to safetensors in `cache_dir` once and returns the
/// cached file (keyed by the .bin's canonical path, size and modification time).
pub fn pth_to_safetensors_cached(bin: &Path, cache_dir: &Path) -> Result<PathBuf> {
    let meta = std::fs::metadata(bin).map_err(|e| ModelError::io(bin, e))?;
    let canon = bin.canonicalize().map_err(|e| ModelError::io(bin, e))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let key = format!("{}|{}|{}", canon.display(), meta.len(), mtime);
    let name = format!("{:016x}.safetensors", fnv1a64(key.as_bytes()));
    let out = cache_dir.join(name);
    if out.is_file() {
        log::info!("using cached conversion {}", out.display());
        return Ok(out);
    }
    std::fs::create_dir_all(cache_dir).map_err(|e| ModelError::io(cache_dir, e))?;
    log::info!("converting {} to {}", bin.display(), out.display());
    let tensors = candle_core::pickle::read_all(bin).map_err(|e| ModelError::Json {
        path: bin.to_path_buf(),
        message: format!("cannot read PyTorch checkpoint: {e}"),
    })?;
    let mut map = HashMap::with_capacity(tensors.len());
    for (k, t) in tensors {
        map.insert(k, t.contiguous()?);
    }
    let tmp = cache_dir.join(format!(
        ".{}.tmp{}",
        fnv1a64(key.as_bytes()),
        std::process::id()
    ));
    candle_core::safetensors::save(&map, &tmp)?;
    std::fs::rename(&tmp, &out).map_err(|e| ModelError::io(&out, e))?;
    Ok(out)
}

/// Small stable hash (FNV-1a) for cache file names.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_lists_missing_misshaped_unexpected() {
        let expected = vec![
            ("a".to_string(), vec![2, 3]),
            ("b".to_string(), vec![4]),
            ("c".to_string(), vec![]),
        ];
        let mut found = HashMap::new();
        found.insert("a".to_string(), vec![2, 3]);
        found.insert("b".to_string(), vec![5]);
        found.insert("x".to_string(), vec![1]);
        found.insert("text.embeddings.position_ids".to_string(), vec![1, 40]);
        let r = compare(&expected, &found);
        assert_eq!(r.missing, vec!["c".to_string()]);
        assert_eq!(r.mis_shaped, vec![("b".to_string(), vec![4], vec![5])]);
        assert_eq!(r.unexpected, vec!["x".to_string()]);
        assert!(!r.is_ok());
    }

    #[test]
    fn recorder_sees_every_parameter() {
        let exp = expected_parameters(|vb| {
            let _ = vb.pp("l").get((3, 2), "weight")?;
            vb.get((), "scale")
        })
        .unwrap();
        assert_eq!(
            exp,
            vec![
                ("l.weight".to_string(), vec![3, 2]),
                ("scale".to_string(), vec![])
            ]
        );
    }
}
