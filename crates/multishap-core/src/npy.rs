//! Minimal reader / writer of 1-D little-endian float .npy arrays.
use crate::{Error, Result};
use std::path::Path;

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::Npy {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Read a 1-D float64 or float32 (little-endian, C order) .npy file as f64.
pub fn read_f64_vector(path: &Path) -> Result<Vec<f64>> {
    let bytes = std::fs::read(path).map_err(|e| bad(path, format!("cannot read: {e}")))?;
    parse_f64_vector(&bytes).map_err(|reason| bad(path, reason))
}

/// Parse .npy bytes; the error is a human-readable reason.
pub fn parse_f64_vector(bytes: &[u8]) -> std::result::Result<Vec<f64>, String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (bad magic)".into());
    }
    let major = bytes[6];
    let (header_len, offset) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err("truncated header".into());
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let end = offset + header_len;
    if bytes.len() < end {
        return Err("truncated header".into());
    }
    let header =
        std::str::from_utf8(&bytes[offset..end]).map_err(|_| "header is not text".to_string())?;
    let descr = dict_value(header, "descr").ok_or("header has no 'descr'")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let width = match descr {
        "<f8" => 8,
        "<f4" => 4,
        other => {
            return Err(format!(
                "dtype '{other}' is not supported: need float64 ('<f8') or float32 ('<f4')"
            ))
        }
    };
    let fortran = dict_value(header, "fortran_order").ok_or("header has no 'fortran_order'")?;
    let shape = dict_value(header, "shape").ok_or("header has no 'shape'")?;
    let dims: Vec<usize> = shape
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| format!("bad shape {shape}")))
        .collect::<std::result::Result<_, _>>()?;
    if dims.len() != 1 {
        return Err(format!("array must be 1-D, got shape {shape}"));
    }
    if fortran.trim() != "False" && dims[0] > 1 {
        return Err("Fortran-ordered arrays are not supported".into());
    }
    let data = &bytes[end..];
    if data.len() != dims[0] * width {
        return Err(format!(
            "expected {} data bytes for shape {shape}, found {}",
            dims[0] * width,
            data.len()
        ));
    }
    Ok(if width == 8 {
        data.chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect()
    } else {
        data.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")) as f64)
            .collect()
    })
}

/// The text after `'key':` up to the next top-level comma (tuples kept whole).
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("'{key}':");
    let start = header.find(&pat)? + pat.len();
    let rest = header[start..].trim_start();
    let mut depth = 0;
    for (i, c) in rest.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' | '}' if depth == 0 => return Some(rest[..i].trim()),
            _ => {}
        }
    }
    None
}

/// Write a 1-D float64 .npy file (version 1.0).
pub fn write_f64_vector(path: &Path, values: &[f64]) -> Result<()> {
    let mut header = format!(
        "{{'descr': '<f8', 'fortran_order': False, 'shape': ({},), }}",
        values.len()
    );
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + 8 * values.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, out).map_err(|e| bad(path, format!("cannot write: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_rejections() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        write_f64_vector(&p, &[1.0, -2.5, 3.0]).unwrap();
        assert_eq!(read_f64_vector(&p).unwrap(), vec![1.0, -2.5, 3.0]);
        let bytes = std::fs::read(&p).unwrap();
        let swap = |from: &[u8], to: &[u8]| -> Vec<u8> {
            let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
            [&bytes[..at], to, &bytes[at + from.len()..]].concat()
        };
        let as_int = swap(b"<f8", b"<i8");
        assert!(parse_f64_vector(&as_int).unwrap_err().contains("dtype"));
        let two_d = swap(b"(3,),", b"(3,1)");
        assert!(parse_f64_vector(&two_d).unwrap_err().contains("1-D"));
        assert!(parse_f64_vector(&bytes[..bytes.len() - 4])
            .unwrap_err()
            .contains("data bytes"));
        assert!(parse_f64_vector(b"hello world")
            .unwrap_err()
            .contains("magic"));
    }
}
