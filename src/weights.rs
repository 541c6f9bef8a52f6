//! Named tensors: what a model constructor reads its parameters from, whether they come from a
//! checkpoint file or from a seeded initialisation. Shape checks name the tensor.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};

pub mod hdf5;
mod pth_zip;

#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Tensors by checkpoint key.
#[derive(Debug, Default)]
pub struct TensorStore {
    tensors: BTreeMap<String, Tensor>,
    /// Where the tensors came from, for error messages.
    pub origin: String,
    /// Keys a model has asked for (`get`, `raw`): the others are unused by it.
    asked: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl Clone for TensorStore {
    fn clone(&self) -> Self {
        TensorStore {
            tensors: self.tensors.clone(),
            origin: self.origin.clone(),
            asked: std::sync::Mutex::new(self.asked_keys().clone()),
        }
    }
}

impl TensorStore {
    pub fn new(origin: impl Into<String>) -> Self {
        TensorStore {
            tensors: BTreeMap::new(),
            origin: origin.into(),
            asked: Default::default(),
        }
    }

    fn asked_keys(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<String>> {
        self.asked.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mark(&self, key: &str) {
        self.asked_keys().insert(key.to_string());
    }

    /// Tensors no model has asked for, in key order.
    pub fn unread(&self) -> Vec<String> {
        let asked = self.asked_keys();
        self.tensors
            .keys()
            .filter(|k| !asked.contains(*k))
            .cloned()
            .collect()
    }

    /// A warning naming the tensors of a weights file the model did not read, or None.
    pub fn unread_warning(&self, model: &str) -> Option<String> {
        let unread = self.unread();
        const SHOWN: usize = 8;
        (!unread.is_empty()).then(|| {
            let more = unread.len().saturating_sub(SHOWN);
            format!(
                "{}: {} tensors not used by model `{model}` (ignored): {}{}",
                self.origin,
                unread.len(),
                unread[..unread.len().min(SHOWN)].join(", "),
                if more > 0 {
                    format!(", and {more} more")
                } else {
                    String::new()
                }
            )
        })
    }

    pub fn insert(&mut self, key: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        self.tensors.insert(key.into(), Tensor { shape, data });
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(|k| k.as_str())
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// A tensor's values without marking it as read (static metrics look at every tensor).
    pub fn peek(&self, key: &str) -> Option<&[f32]> {
        self.tensors.get(key).map(|t| t.data.as_slice())
    }

    pub fn raw(&self, key: &str) -> Option<&Tensor> {
        self.mark(key);
        self.tensors.get(key)
    }

    /// The tensor `key` with exactly `shape` (size-1 dimensions are squeezed on both sides,
    /// since checkpoints store RWKV's time parameters as [1, 1, d]).
    pub fn get(&self, key: &str, shape: &[usize]) -> Result<&[f32]> {
        self.mark(key);
        let t = self.tensors.get(key).ok_or_else(|| {
            Error::input(format!(
                "{}: missing tensor `{key}` (expected shape {shape:?})",
                self.origin
            ))
        })?;
        let squeeze = |s: &[usize]| s.iter().copied().filter(|&d| d != 1).collect::<Vec<_>>();
        if squeeze(&t.shape) != squeeze(shape) {
            return Err(Error::input(format!(
                "{}: tensor `{key}` has shape {:?}, expected {shape:?}",
                self.origin, t.shape
            )));
        }
        if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
            return Err(Error::input(format!(
                "{}: tensor `{key}` holds a non-finite value ({}) at flat index {i}",
                self.origin, t.data[i]
            )));
        }
        Ok(&t.data)
    }
}

/// Where a model constructor reads its tensors from: a borrowed store (each tensor copied, the
/// store stays whole) or an owned one (each tensor moved out as it is read and dropped once
/// converted, so a large model never exists twice in memory).
pub trait WeightSource {
    /// The tensor `key` with `shape`, checked as [`TensorStore::get`] checks it. Each key is
    /// read once.
    fn tensor(&mut self, key: &str, shape: &[usize]) -> Result<std::borrow::Cow<'_, [f32]>>;
}

impl WeightSource for &TensorStore {
    fn tensor(&mut self, key: &str, shape: &[usize]) -> Result<std::borrow::Cow<'_, [f32]>> {
        Ok(std::borrow::Cow::Borrowed(self.get(key, shape)?))
    }
}

impl WeightSource for TensorStore {
    fn tensor(&mut self, key: &str, shape: &[usize]) -> Result<std::borrow::Cow<'_, [f32]>> {
        self.get(key, shape)?;
        let t = self.tensors.remove(key).expect("checked by get");
        Ok(std::borrow::Cow::Owned(t.data))
    }
}

/// Seeded weights over `keys` (key, shape): `init` gives each tensor's values, in key order,
/// drawing from one generator, so a family's seeded weights follow from the seed alone.
pub fn seeded_store(
    keys: Vec<(String, Vec<usize>)>,
    seed: u64,
    mut init: impl FnMut(&str, &[usize], &mut rand::rngs::Xoshiro256PlusPlus) -> Vec<f32>,
) -> TensorStore {
    use rand::SeedableRng;
    let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut store = TensorStore::new(format!("seeded weights (seed {seed})"));
    for (key, shape) in keys {
        let data = init(&key, &shape, &mut rng);
        store.insert(key, shape, data);
    }
    store
}

/// Parameters held by tensors of these shapes.
pub fn param_count(keys: &[(String, Vec<usize>)]) -> usize {
    keys.iter().map(|(_, s)| s.iter().product::<usize>()).sum()
}

/// Standard normal samples (Box-Muller) from the project's seeded generator, for the seeded
/// initialisations of every model family (no extra distribution crate).
pub fn standard_normal(rng: &mut rand::rngs::Xoshiro256PlusPlus) -> f32 {
    use rand::RngExt;
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// Load a weights file by its extension (`.safetensors`).
pub fn load_file(path: &Path) -> Result<TensorStore> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("safetensors") => load_safetensors(path),
        Some("pth") | Some("pt") => load_pth(path),
        Some("npy") => load_npy(path),
        _ => Err(Error::input(format!(
            "{}: unsupported weights file (expected .safetensors, .pth, .pt or .npy)",
            path.display()
        ))),
    }
}

/// Read every tensor of a safetensors file as f32 (F32, F64, F16 and BF16 storage).
pub fn load_safetensors(path: &Path) -> Result<TensorStore> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    safetensors_from_bytes(&path.display().to_string(), &bytes)
}

/// Element types of stored tensors (safetensors dtypes and `.npy` descriptors), decoded to
/// numbers one element at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    Bool,
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F16,
    BF16,
    F32,
    F64,
}

impl Elem {
    /// Bytes per element.
    pub fn bytes(self) -> usize {
        match self {
            Elem::Bool | Elem::U8 | Elem::I8 => 1,
            Elem::U16 | Elem::I16 | Elem::F16 | Elem::BF16 => 2,
            Elem::U32 | Elem::I32 | Elem::F32 => 4,
            Elem::U64 | Elem::I64 | Elem::F64 => 8,
        }
    }

    /// The safetensors name of the type.
    pub fn name(self) -> &'static str {
        match self {
            Elem::Bool => "BOOL",
            Elem::U8 => "U8",
            Elem::I8 => "I8",
            Elem::U16 => "U16",
            Elem::I16 => "I16",
            Elem::U32 => "U32",
            Elem::I32 => "I32",
            Elem::U64 => "U64",
            Elem::I64 => "I64",
            Elem::F16 => "F16",
            Elem::BF16 => "BF16",
            Elem::F32 => "F32",
            Elem::F64 => "F64",
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, Elem::F16 | Elem::BF16 | Elem::F32 | Elem::F64)
    }

    /// The element type of a safetensors dtype (None: a type this reader does not decode, such
    /// as the 8-bit and smaller float formats or complex numbers).
    pub fn from_safetensors(d: safetensors::Dtype) -> Option<Elem> {
        use safetensors::Dtype as D;
        Some(match d {
            D::BOOL => Elem::Bool,
            D::U8 => Elem::U8,
            D::I8 => Elem::I8,
            D::U16 => Elem::U16,
            D::I16 => Elem::I16,
            D::U32 => Elem::U32,
            D::I32 => Elem::I32,
            D::U64 => Elem::U64,
            D::I64 => Elem::I64,
            D::F16 => Elem::F16,
            D::BF16 => Elem::BF16,
            D::F32 => Elem::F32,
            D::F64 => Elem::F64,
            _ => return None,
        })
    }

    /// The element type of a safetensors dtype name (`"F16"`, `"I64"`, ...).
    pub fn from_safetensors_name(name: &str) -> Option<Elem> {
        [
            Elem::Bool,
            Elem::U8,
            Elem::I8,
            Elem::U16,
            Elem::I16,
            Elem::U32,
            Elem::I32,
            Elem::U64,
            Elem::I64,
            Elem::F16,
            Elem::BF16,
            Elem::F32,
            Elem::F64,
        ]
        .into_iter()
        .find(|e| e.name() == name)
    }

    /// The value of one element stored in `b` (exactly `self.bytes()` bytes, little-endian
    /// unless `big_endian`). Integers above 2^53 lose their low bits; a BOOL byte is 0 or 1
    /// (any non-zero byte reads as 1).
    pub fn decode(self, b: &[u8], big_endian: bool) -> f64 {
        let mut a = [0u8; 8];
        let n = self.bytes();
        a[..n].copy_from_slice(&b[..n]);
        if big_endian {
            a[..n].reverse();
        }
        let u16v = || u16::from_le_bytes([a[0], a[1]]);
        let u32v = || u32::from_le_bytes([a[0], a[1], a[2], a[3]]);
        match self {
            Elem::Bool => (a[0] != 0) as u8 as f64,
            Elem::U8 => a[0] as f64,
            Elem::I8 => a[0] as i8 as f64,
            Elem::U16 => u16v() as f64,
            Elem::I16 => u16v() as i16 as f64,
            Elem::U32 => u32v() as f64,
            Elem::I32 => u32v() as i32 as f64,
            Elem::U64 => u64::from_le_bytes(a) as f64,
            Elem::I64 => i64::from_le_bytes(a) as f64,
            Elem::F16 => crate::numerics::FloatFormat::FP16.decode_f32(u16v() as u32) as f64,
            Elem::BF16 => f32::from_bits((u16v() as u32) << 16) as f64,
            Elem::F32 => f32::from_bits(u32v()) as f64,
            Elem::F64 => f64::from_le_bytes(a),
        }
    }

    /// Every element of `raw` as f32 (f32 and narrower floats exactly).
    pub fn decode_all(self, raw: &[u8], big_endian: bool) -> Vec<f32> {
        raw.chunks_exact(self.bytes())
            .map(|b| self.decode(b, big_endian) as f32)
            .collect()
    }
}

/// Parse safetensors bytes; `origin` names the source in errors. Weights stored as F32, F64,
/// F16 or BF16 are read as f32. Integer and boolean weights are refused: a quantised checkpoint
/// keeps its scales (per tensor or per channel, with or without zero points) in tensors or
/// metadata of its own convention, and reading the raw integers as weights would run a
/// different network without a word.
pub fn safetensors_from_bytes(origin: &str, bytes: &[u8]) -> Result<TensorStore> {
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| Error::input(format!("{origin}: not a valid safetensors file: {e}")))?;
    let mut store = TensorStore::new(origin.to_string());
    for (name, view) in st.tensors() {
        let data = match Elem::from_safetensors(view.dtype()) {
            Some(e) if e.is_float() => e.decode_all(view.data(), false),
            Some(e) => {
                return Err(Error::input(format!(
                    "{origin}: tensor `{name}` has dtype {}: integer and boolean weights carry no scale \
                     picojoule could apply (dequantise them to F32, F16 or BF16 first); supported: F32, F64, F16, BF16",
                    e.name()
                )));
            }
            None => {
                return Err(Error::input(format!(
                    "{origin}: tensor `{name}` has dtype {:?}; supported: F32, F64, F16, BF16",
                    view.dtype()
                )));
            }
        };
        store.insert(name, view.shape().to_vec(), data);
    }
    Ok(store)
}

/// Read one `.npy` array (f32 or f64, C order) as a store holding one tensor named after the
/// file stem.
pub fn load_npy(path: &Path) -> Result<TensorStore> {
    use ndarray_npy::ReadNpyExt;
    let file = std::fs::File::open(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |e: ndarray_npy::ReadNpyError| {
        Error::input(format!(
            "{}: not a readable f32/f64 .npy array: {e}",
            path.display()
        ))
    };
    let array: ndarray::ArrayD<f32> =
        match ndarray::ArrayD::<f32>::read_npy(std::io::BufReader::new(file)) {
            Ok(a) => a,
            Err(ndarray_npy::ReadNpyError::WrongDescriptor(_)) => {
                let file = std::fs::File::open(path).map_err(|source| Error::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                ndarray::ArrayD::<f64>::read_npy(std::io::BufReader::new(file))
                    .map_err(bad)?
                    .mapv(|v| v as f32)
            }
            Err(e) => return Err(bad(e)),
        };
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("tensor")
        .to_string();
    let mut store = TensorStore::new(path.display().to_string());
    let shape = array.shape().to_vec();
    store.insert(name, shape, array.iter().copied().collect());
    Ok(store)
}

/// Read a PyTorch checkpoint (`torch.save` of a state dict) without executing pickle code:
/// `pytorch-reader` only interprets the tensor-rebuilding opcodes and checks declared lengths.
pub fn load_pth(path: &Path) -> Result<TensorStore> {
    if !path.exists() {
        return Err(Error::Read {
            path: path.to_path_buf(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    // An archive the reader's `zip` would misread (see `pth_zip`) is read from a copy without
    // its ZIP64 end records; `_copy` removes that copy once every tensor has been read.
    let mut file = std::fs::File::open(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let misread = pth_zip::misread_archive(&mut file).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    drop(file);
    let _copy = match misread {
        Some(cut) => Some(
            pth_zip::repaired_copy(path, cut).map_err(|source| Error::Write {
                path: std::env::temp_dir(),
                source,
            })?,
        ),
        None => None,
    };
    let read_from = _copy.as_ref().map_or(path, |c| c.path.as_path());
    // A third-party parser on untrusted bytes: a panic inside it is reported as a bad file.
    let opened = std::panic::catch_unwind(|| pytorch_reader::PytorchReader::new(read_from))
        .map_err(|_| {
            Error::input(format!(
                "{}: not a readable PyTorch checkpoint (the reader failed)",
                path.display()
            ))
        })?;
    let reader = opened.map_err(|e| {
        Error::input(format!(
            "{}: not a readable PyTorch checkpoint: {e}",
            path.display()
        ))
    })?;
    let mut store = TensorStore::new(path.display().to_string());
    let mut keys = reader.keys();
    keys.sort();
    for name in keys {
        let t = reader
            .get(&name)
            .ok_or_else(|| Error::Internal(format!("tensor `{name}` listed but absent")))?;
        let raw = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.read()))
            .map_err(|_| {
                Error::input(format!(
                    "{}: tensor `{name}`: unreadable data",
                    path.display()
                ))
            })?
            .map_err(|e| Error::input(format!("{}: tensor `{name}`: {e}", path.display())))?;
        use pytorch_reader::DType;
        let data: Vec<f32> = match t.dtype() {
            DType::F32 => raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            DType::F64 => raw
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                .collect(),
            DType::BF16 => raw
                .chunks_exact(2)
                .map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16))
                .collect(),
            DType::F16 => raw
                .chunks_exact(2)
                .map(|b| {
                    crate::numerics::FloatFormat::FP16
                        .decode_f32(u16::from_le_bytes([b[0], b[1]]) as u32)
                })
                .collect(),
            other => {
                return Err(Error::input(format!(
                    "{}: tensor `{name}` has dtype {other:?}; supported: F32, F64, F16, BF16",
                    path.display()
                )));
            }
        };
        let shape = t.shape().to_vec();
        if shape.iter().product::<usize>() != data.len() {
            return Err(Error::input(format!(
                "{}: tensor `{name}` declares shape {shape:?} but holds {} values",
                path.display(),
                data.len()
            )));
        }
        store.insert(name, shape, data);
    }
    Ok(store)
}

/// Write tensors as a safetensors file (f32), atomically.
pub fn save_safetensors(store: &TensorStore, path: &Path) -> Result<()> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = store
        .tensors
        .iter()
        .map(|(k, t)| {
            (
                k.clone(),
                t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                t.shape.clone(),
            )
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = bytes
        .iter()
        .map(|(k, b, s)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                .map(|v| (k.clone(), v))
                .map_err(|e| Error::Internal(format!("tensor `{k}`: {e}")))
        })
        .collect::<Result<_>>()?;
    let out = safetensors::serialize(views, None).map_err(|e| Error::Internal(e.to_string()))?;
    crate::error::write_atomic(path, &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_arrays_read_back_with_shape_and_values() {
        use ndarray_npy::WriteNpyExt;
        let dir = std::env::temp_dir().join(format!("pj-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = ndarray::arr2(&[[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.5]]);
        let p = dir.join("head.weight.npy");
        a.write_npy(std::fs::File::create(&p).unwrap()).unwrap();
        let s = load_file(&p).unwrap();
        let t = s.raw("head.weight").unwrap();
        assert_eq!(t.shape, vec![2, 3]);
        assert_eq!(t.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.5]);
        std::fs::write(&p, b"\x93NUMPY garbage").unwrap();
        assert!(load_file(&p).unwrap_err().to_string().contains(".npy"));
    }

    #[test]
    fn wrong_shape_names_tensor_expected_and_found() {
        let mut s = TensorStore::new("w.safetensors");
        s.insert("blocks.1.att.key.weight", vec![8, 7], vec![0.0; 56]);
        let err = s
            .get("blocks.1.att.key.weight", &[8, 8])
            .unwrap_err()
            .to_string();
        assert!(err.contains("blocks.1.att.key.weight"), "{err}");
        assert!(err.contains("[8, 7]") && err.contains("[8, 8]"), "{err}");
    }

    #[test]
    fn time_parameters_match_with_or_without_unit_dimensions() {
        let mut s = TensorStore::new("x");
        s.insert("t", vec![1, 1, 4], vec![0.0; 4]);
        assert!(s.get("t", &[4]).is_ok());
    }

    #[test]
    fn non_finite_weights_are_refused() {
        let mut s = TensorStore::new("x");
        s.insert("t", vec![2], vec![0.0, f32::NAN]);
        assert!(
            s.get("t", &[2])
                .unwrap_err()
                .to_string()
                .contains("non-finite")
        );
    }

    fn safetensors_bytes(tensors: &[(&str, safetensors::Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
        let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
            .iter()
            .map(|(k, d, s, b)| {
                let v = safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap();
                (k.to_string(), v)
            })
            .collect();
        safetensors::serialize(views, None).unwrap()
    }

    #[test]
    fn f16_f64_and_bf16_weights_read_as_their_values() {
        use safetensors::Dtype;
        let vals = [1.5f32, -0.25, 3.0e-3, 65504.0];
        let f16: Vec<u8> = vals
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
            .collect();
        let bf16: Vec<u8> = vals
            .iter()
            .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
            .collect();
        let f64b: Vec<u8> = vals
            .iter()
            .flat_map(|&v| (v as f64).to_le_bytes())
            .collect();
        let bytes = safetensors_bytes(&[
            ("a", Dtype::F16, vec![2, 2], f16),
            ("b", Dtype::BF16, vec![4], bf16),
            ("c", Dtype::F64, vec![4, 1], f64b),
        ]);
        let s = safetensors_from_bytes("w.safetensors", &bytes).unwrap();
        let want_f16: Vec<f32> = vals
            .iter()
            .map(|&v| half::f16::from_f32(v).to_f32())
            .collect();
        let want_bf16: Vec<f32> = vals
            .iter()
            .map(|&v| half::bf16::from_f32(v).to_f32())
            .collect();
        assert_eq!(s.raw("a").unwrap().data, want_f16);
        assert_eq!(s.raw("a").unwrap().shape, vec![2, 2]);
        assert_eq!(s.raw("b").unwrap().data, want_bf16);
        assert_eq!(s.raw("c").unwrap().data, vals.to_vec());
    }

    #[test]
    fn integer_and_boolean_weights_are_refused_naming_the_missing_scale() {
        use safetensors::Dtype;
        for (d, b) in [
            (Dtype::I8, vec![0xffu8, 3]),
            (Dtype::U8, vec![1, 2]),
            (Dtype::BOOL, vec![0, 1]),
        ] {
            let bytes = safetensors_bytes(&[("q.weight", d, vec![2], b)]);
            let e = safetensors_from_bytes("w.safetensors", &bytes)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("w.safetensors") && e.contains("`q.weight`") && e.contains("no scale"),
                "{e}"
            );
        }
    }

    #[test]
    fn every_element_type_decodes_little_and_big_endian() {
        assert_eq!(Elem::I8.decode(&[0xfe], false), -2.0);
        assert_eq!(Elem::U8.decode(&[0xfe], false), 254.0);
        assert_eq!(Elem::Bool.decode(&[7], false), 1.0);
        assert_eq!(Elem::I16.decode(&(-300i16).to_be_bytes(), true), -300.0);
        assert_eq!(Elem::I64.decode(&(-5i64).to_le_bytes(), false), -5.0);
        assert_eq!(Elem::U32.decode(&70000u32.to_le_bytes(), false), 70000.0);
        assert_eq!(Elem::F64.decode(&0.1f64.to_be_bytes(), true), 0.1);
        assert_eq!(
            Elem::F16.decode(&half::f16::from_f32(-2.5).to_le_bytes(), false),
            -2.5
        );
        assert_eq!(Elem::from_safetensors_name("BF16"), Some(Elem::BF16));
        assert_eq!(Elem::from_safetensors_name("F8_E4M3"), None);
    }
}
