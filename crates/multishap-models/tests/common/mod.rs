//! Shared helpers of the models' parity tests: fixture paths, a minimal .npy
//! reader, pixel reconstruction as transformers does it, error measures.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models")
}

pub fn checkpoint(name: &str) -> PathBuf {
    fixtures().join("checkpoints").join(name)
}

pub fn reference(name: &str) -> PathBuf {
    fixtures().join("reference").join(name)
}

pub fn case(name: &str) -> serde_json::Value {
    let p = reference(name).join("case.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

#[derive(Debug, Clone)]
pub enum NpyData {
    F32(Vec<f32>),
    I32(Vec<i32>),
    U8(Vec<u8>),
}

#[derive(Debug, Clone)]
pub struct Npy {
    pub shape: Vec<usize>,
    pub data: NpyData,
}

impl Npy {
    pub fn f32(&self) -> Vec<f32> {
        match &self.data {
            NpyData::F32(v) => v.clone(),
            NpyData::I32(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::U8(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }
    pub fn u32(&self) -> Vec<u32> {
        match &self.data {
            NpyData::I32(v) => v.iter().map(|&x| x as u32).collect(),
            NpyData::U8(v) => v.iter().map(|&x| x as u32).collect(),
            NpyData::F32(_) => panic!("f32 array read as u32"),
        }
    }
    pub fn u8(&self) -> Vec<u8> {
        match &self.data {
            NpyData::U8(v) => v.clone(),
            _ => panic!("not a u8 array"),
        }
    }
    pub fn tensor_f32(&self) -> Tensor {
        Tensor::from_vec(self.f32(), self.shape.as_slice(), &Device::Cpu).unwrap()
    }
    pub fn tensor_u32(&self) -> Tensor {
        Tensor::from_vec(self.u32(), self.shape.as_slice(), &Device::Cpu).unwrap()
    }
}

/// Reads a little-endian, C-order .npy of f4, i4 or u1 (what make_reference.py writes).
pub fn read_npy(path: &Path) -> Npy {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{}", path.display());
    let (hlen, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        )
    };
    let header = std::str::from_utf8(&bytes[start..start + hlen]).unwrap();
    assert!(header.contains("'fortran_order': False"), "{header}");
    let descr = header
        .split("'descr': '")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    let shape_s = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape: Vec<usize> = shape_s
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let body = &bytes[start + hlen..];
    let data = match descr {
        "<f4" => NpyData::F32(
            body.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        "<i4" => NpyData::I32(
            body.chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        "|u1" => NpyData::U8(body.to_vec()),
        other => panic!("unsupported dtype {other} in {}", path.display()),
    };
    Npy { shape, data }
}

pub fn npy(dir: &Path, name: &str) -> Npy {
    read_npy(&dir.join(name))
}

/// transformers' rescale + normalise of a u8 [.., 3, H, W] array:
/// `x = f32(f64(v) / 255)`, `(x - mean) / std` in f32; 0 where `mask` [.., H, W] is 0.
pub fn normalise_u8(u8s: &Npy, mean: [f32; 3], std: [f32; 3], mask: Option<&[u32]>) -> Tensor {
    let v = u8s.u8();
    let s = &u8s.shape;
    let (h, w) = (s[s.len() - 2], s[s.len() - 1]);
    let out: Vec<f32> = v
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let c = (i / (h * w)) % 3;
            let b = i / (3 * h * w);
            let p = i % (h * w);
            if let Some(m) = mask {
                if m[b * h * w + p] == 0 {
                    return 0.0;
                }
            }
            let r = (x as f64 * (1.0 / 255.0)) as f32;
            (r - mean[c]) / std[c]
        })
        .collect();
    Tensor::from_vec(out, s.as_slice(), &Device::Cpu).unwrap()
}

pub fn triple(v: &serde_json::Value) -> [f32; 3] {
    let a = v.as_array().unwrap();
    [
        a[0].as_f64().unwrap() as f32,
        a[1].as_f64().unwrap() as f32,
        a[2].as_f64().unwrap() as f32,
    ]
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shape mismatch");
    let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

/// Asserts `a` ~ `b` within `tol` and prints the measured error.
pub fn assert_close(what: &str, a: &Tensor, b: &Tensor, tol: f32) {
    let d = max_abs_diff(a, b);
    eprintln!("parity {what}: max |diff| = {d:.3e}");
    assert!(d <= tol, "{what}: max |diff| {d} > {tol}");
}

/// Copies a fixture folder into a fresh temporary directory.
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
}
