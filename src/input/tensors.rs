//! Tensor inputs: samples stored as one array of shape `[samples, timesteps, ...features]` in a
//! `.npy` file or a tensor of a `.safetensors` file (features 1-d, or `[channels, height, width]`
//! for convolutional nets), spike trains or real values of any sign, with optional integer labels
//! of shape `[samples]`. The frames are fed as stored: no coding is applied.
//!
//! Only the header is read first; the runner checks the shape against its model and the memory
//! the samples need before [`Opened::read`] reads the byte range of the samples it runs. Every
//! malformed file is an input error naming the file (and the tensor), never a panic.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::weights::Elem;

/// The `Tensors(...)` input of a scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorSpec {
    /// A `.npy` or `.safetensors` file (relative to the scenario file).
    pub file: String,
    /// The tensor of a `.safetensors` file (default: `inputs`, else its only tensor besides
    /// `labels`).
    #[serde(default)]
    pub tensor: Option<String>,
    /// Integer class labels of shape `[samples]`: a `.npy` or `.safetensors` file, or the name of
    /// a tensor of the same `.safetensors` file (default: its tensor `labels` when it has one).
    #[serde(default)]
    pub labels: Option<String>,
    /// Samples skipped at the start of the file.
    #[serde(default)]
    pub offset: usize,
    /// How many samples, from `offset` on, the input offers (default: all the rest); a run
    /// reads the first `tokens` of them.
    #[serde(default)]
    pub samples: Option<usize>,
}

/// How reports name a tensor input: `tensors FILE[:TENSOR] [labels LABELS] [from OFFSET]`.
pub fn describe(t: &TensorSpec) -> String {
    let mut d = format!("tensors {}", t.file);
    if let Some(n) = &t.tensor {
        d += &format!(":{n}");
    }
    if let Some(l) = &t.labels {
        d += &format!(" labels {l}");
    }
    if t.offset > 0 {
        d += &format!(" from {}", t.offset);
    }
    d
}

/// Largest header read from a tensor file (bytes), before anything else is read.
const MAX_HEADER: u64 = 16 << 20;

/// Where one stored array lives in its file.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub path: PathBuf,
    /// The tensor name (safetensors) or None (`.npy`).
    pub tensor: Option<String>,
    pub elem: Elem,
    pub big_endian: bool,
    pub shape: Vec<usize>,
    /// Byte offset of the first element in the file.
    pub start: u64,
}

impl Header {
    /// `file` or `file (tensor `name`)`, for messages.
    pub fn what(&self) -> String {
        match &self.tensor {
            Some(t) => format!("{} (tensor `{t}`)", self.path.display()),
            None => self.path.display().to_string(),
        }
    }

    fn numel(&self) -> Option<u64> {
        self.shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
    }

    /// Elements in one sample (the product of every dimension after the first).
    pub fn sample_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }

    /// `n` samples from sample `first` on, decoded to f64 (one buffer, `n * sample_len`).
    fn read_range(&self, first: usize, n: usize) -> Result<Vec<f64>> {
        let bad = |e: std::io::Error| Error::input(format!("{}: cannot read: {e}", self.what()));
        let per = (self.sample_len() * self.elem.bytes()) as u64;
        let mut f = std::fs::File::open(&self.path).map_err(|source| Error::Read {
            path: self.path.clone(),
            source,
        })?;
        f.seek(SeekFrom::Start(self.start + first as u64 * per))
            .map_err(bad)?;
        let mut raw = vec![0u8; (per * n as u64) as usize];
        f.read_exact(&mut raw).map_err(bad)?;
        Ok(raw
            .chunks_exact(self.elem.bytes())
            .map(|b| self.elem.decode(b, self.big_endian))
            .collect())
    }
}

fn open_file(path: &Path) -> Result<(std::fs::File, u64)> {
    let f = std::fs::File::open(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let len = f
        .metadata()
        .map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    Ok((f, len))
}

/// The header of a `.npy` file (format versions 1 to 3, C order).
pub fn npy_header(path: &Path) -> Result<Header> {
    let bad = |m: String| {
        Error::input(format!(
            "{}: not a readable .npy array: {m}",
            path.display()
        ))
    };
    let (mut f, len) = open_file(path)?;
    let mut lead = [0u8; 8];
    f.read_exact(&mut lead)
        .map_err(|_| bad(format!("{len} bytes, shorter than the .npy preamble")))?;
    if &lead[..6] != b"\x93NUMPY" {
        return Err(bad("the file does not start with the .npy magic".into()));
    }
    let (hlen, pre) = match lead[6] {
        1 => {
            let mut b = [0u8; 2];
            f.read_exact(&mut b)
                .map_err(|_| bad("truncated in its preamble".into()))?;
            (u16::from_le_bytes(b) as u64, 10)
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            f.read_exact(&mut b)
                .map_err(|_| bad("truncated in its preamble".into()))?;
            (u32::from_le_bytes(b) as u64, 12)
        }
        v => return Err(bad(format!("format version {v} (known: 1, 2, 3)"))),
    };
    if hlen > MAX_HEADER || pre + hlen > len {
        return Err(bad(format!(
            "its header claims {hlen} bytes, the file has {len}"
        )));
    }
    let mut text = vec![0u8; hlen as usize];
    f.read_exact(&mut text)
        .map_err(|_| bad("truncated in its header".into()))?;
    let text = String::from_utf8(text).map_err(|_| bad("its header is not text".into()))?;
    let field = |key: &str| -> Result<&str> {
        let at = text
            .find(&format!("'{key}'"))
            .ok_or_else(|| bad(format!("its header has no '{key}'")))?;
        let rest = &text[at + key.len() + 2..];
        let colon = rest
            .find(':')
            .ok_or_else(|| bad(format!("'{key}' has no value")))?;
        Ok(rest[colon + 1..].trim_start())
    };
    let descr = field("descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .ok_or_else(|| {
            bad("'descr' is not a simple type string (structured arrays are not read)".into())
        })?;
    let (order, code) = descr.split_at(descr.len().min(1));
    let big_endian = match order {
        "<" | "|" | "=" => false,
        ">" => true,
        _ => return Err(bad(format!("unknown type '{descr}'"))),
    };
    let elem = match code {
        "b1" | "?" => Elem::Bool,
        "u1" => Elem::U8,
        "i1" => Elem::I8,
        "u2" => Elem::U16,
        "i2" => Elem::I16,
        "u4" => Elem::U32,
        "i4" => Elem::I32,
        "u8" => Elem::U64,
        "i8" => Elem::I64,
        "f2" => Elem::F16,
        "f4" => Elem::F32,
        "f8" => Elem::F64,
        _ => {
            return Err(bad(format!(
                "type '{descr}' (readable: bool, u1/i1 to u8/i8, f2, f4, f8)"
            )));
        }
    };
    if field("fortran_order")?.starts_with("True") {
        return Err(bad(
            "Fortran order (save it with numpy.ascontiguousarray first)".into(),
        ));
    }
    let shape_text = field("shape")?;
    let shape_text = shape_text
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("'shape' is not a tuple".into()))?;
    let shape = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|d| {
            d.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| bad(format!("'shape' holds `{d}`, not a size")))
        })
        .collect::<Result<Vec<usize>>>()?;
    let h = Header {
        path: path.to_path_buf(),
        tensor: None,
        elem,
        big_endian,
        shape,
        start: pre + hlen,
    };
    let need = h
        .numel()
        .and_then(|n| n.checked_mul(elem.bytes() as u64))
        .ok_or_else(|| bad(format!("shape {:?} overflows", h.shape)))?;
    if len - h.start != need {
        return Err(bad(format!(
            "shape {:?} of {} needs {need} bytes of data, the file holds {}",
            h.shape,
            elem.name(),
            len - h.start
        )));
    }
    Ok(h)
}

#[derive(Deserialize)]
struct StInfo {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: (u64, u64),
}

/// Every tensor header of a `.safetensors` file, by name.
pub fn safetensors_headers(path: &Path) -> Result<Vec<Header>> {
    let bad = |m: String| {
        Error::input(format!(
            "{}: not a valid safetensors file: {m}",
            path.display()
        ))
    };
    let (mut f, len) = open_file(path)?;
    let mut lead = [0u8; 8];
    f.read_exact(&mut lead).map_err(|_| {
        bad(format!(
            "{len} bytes, shorter than the 8-byte header length"
        ))
    })?;
    let n = u64::from_le_bytes(lead);
    if n > MAX_HEADER || 8 + n > len {
        return Err(bad(format!(
            "its header claims {n} bytes, the file has {len}"
        )));
    }
    let mut text = vec![0u8; n as usize];
    f.read_exact(&mut text)
        .map_err(|_| bad("truncated in its header".into()))?;
    let map: std::collections::BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&text).map_err(|e| bad(format!("its header: {e}")))?;
    let data_len = len - 8 - n;
    let mut out = Vec::new();
    for (name, v) in map {
        if name == "__metadata__" {
            continue;
        }
        let info: StInfo =
            serde_json::from_value(v).map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
        let elem = Elem::from_safetensors_name(&info.dtype).ok_or_else(|| {
            bad(format!(
                "tensor `{name}` has dtype {} (readable: BOOL, U8, I8, U16, I16, U32, I32, U64, I64, F16, BF16, F32, F64)",
                info.dtype
            ))
        })?;
        let h = Header {
            path: path.to_path_buf(),
            tensor: Some(name.clone()),
            elem,
            big_endian: false,
            shape: info.shape,
            start: (8 + n).saturating_add(info.data_offsets.0),
        };
        let (b, e) = info.data_offsets;
        let need = h.numel().and_then(|k| k.checked_mul(elem.bytes() as u64));
        if b > e || e > data_len || Some(e - b) != need {
            return Err(bad(format!(
                "tensor `{name}` ({} {:?}) has data offsets [{b}, {e}] in a data section of {data_len} bytes",
                info.dtype, h.shape
            )));
        }
        out.push(h);
    }
    Ok(out)
}

fn is_safetensors(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()) == Some("safetensors")
}

fn is_npy(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()) == Some("npy")
}

/// Pick a tensor of a safetensors file: `name`, else `inputs` (or `labels` for labels), else
/// the only one not named `skip`.
fn pick(
    path: &Path,
    heads: Vec<Header>,
    name: Option<&str>,
    default: &str,
    skip: &str,
) -> Result<Header> {
    let names: Vec<String> = heads.iter().filter_map(|h| h.tensor.clone()).collect();
    let find = |n: &str| {
        heads
            .iter()
            .find(|h| h.tensor.as_deref() == Some(n))
            .cloned()
    };
    if let Some(n) = name {
        return find(n).ok_or_else(|| {
            Error::input(format!(
                "{}: has no tensor `{n}` (tensors: {})",
                path.display(),
                names.join(", ")
            ))
        });
    }
    if let Some(h) = find(default) {
        return Ok(h);
    }
    let rest: Vec<&Header> = heads
        .iter()
        .filter(|h| h.tensor.as_deref() != Some(skip))
        .collect();
    match rest.as_slice() {
        [one] => Ok((*one).clone()),
        _ => Err(Error::input(format!(
            "{}: has no tensor `{default}` and {} others (tensors: {}): name one with `tensor`",
            path.display(),
            rest.len(),
            names.join(", ")
        ))),
    }
}

/// The header of an array file: a `.npy` file, or a tensor of a `.safetensors` file.
fn header_of(path: &Path, name: Option<&str>, default: &str, skip: &str) -> Result<Header> {
    if is_safetensors(path) {
        pick(path, safetensors_headers(path)?, name, default, skip)
    } else if is_npy(path) {
        if let Some(n) = name {
            return Err(Error::input(format!(
                "{}: a .npy file holds one array; `tensor: {n:?}` applies to .safetensors files",
                path.display()
            )));
        }
        npy_header(path)
    } else {
        Err(Error::input(format!(
            "{}: unsupported tensor file (expected .npy or .safetensors)",
            path.display()
        )))
    }
}

/// A tensor input whose headers are read and checked: nothing else is read yet.
#[derive(Clone, Debug)]
pub struct Opened {
    pub inputs: Header,
    pub labels: Option<Header>,
    /// First sample offered and how many.
    pub offset: usize,
    pub available: usize,
}

impl Opened {
    /// Read the headers of `spec`'s files (`resolve` gives a scenario path's location) and check
    /// their shapes: inputs of rank 3 or more, labels of shape `[samples]`, the offset and
    /// sample count inside the file.
    pub fn open(spec: &TensorSpec, resolve: impl Fn(&str) -> PathBuf) -> Result<Opened> {
        let path = resolve(&spec.file);
        let inputs = header_of(&path, spec.tensor.as_deref(), "inputs", "labels")?;
        if inputs.shape.len() < 3 || inputs.shape[1] == 0 || inputs.sample_len() == 0 {
            return Err(Error::input(format!(
                "{}: shape {:?}; a tensor input is [samples, timesteps, ...features] with at least one timestep and feature",
                inputs.what(),
                inputs.shape
            )));
        }
        let total = inputs.shape[0];
        let labels = match (&spec.labels, is_safetensors(&path)) {
            (Some(l), _) if is_npy(Path::new(l)) || is_safetensors(Path::new(l)) => {
                Some(header_of(&resolve(l), None, "labels", "")?)
            }
            (Some(l), true) => Some(header_of(&path, Some(l), "labels", "")?),
            (Some(l), false) => {
                return Err(Error::input(format!(
                    "labels `{l}`: not a .npy or .safetensors file (a tensor name applies when the input is a .safetensors file)"
                )));
            }
            (None, true) => safetensors_headers(&path)?
                .into_iter()
                .find(|h| h.tensor.as_deref() == Some("labels")),
            (None, false) => None,
        };
        if let Some(l) = &labels
            && l.shape != [total]
        {
            return Err(Error::input(format!(
                "{}: labels of shape {:?}; the inputs {} hold {total} samples (shape {:?}), so labels need shape [{total}]",
                l.what(),
                l.shape,
                inputs.what(),
                inputs.shape
            )));
        }
        if spec.offset > total {
            return Err(Error::input(format!(
                "{}: offset {} is past its {total} samples",
                inputs.what(),
                spec.offset
            )));
        }
        let rest = total - spec.offset;
        let available = match spec.samples {
            Some(s) if s > rest => {
                return Err(Error::input(format!(
                    "{}: `samples: {s}` from offset {} asks for more than its {rest} samples there",
                    inputs.what(),
                    spec.offset
                )));
            }
            Some(s) => s,
            None => rest,
        };
        Ok(Opened {
            inputs,
            labels,
            offset: spec.offset,
            available,
        })
    }

    pub fn timesteps(&self) -> usize {
        self.inputs.shape[1]
    }

    /// The shape of one time step's input.
    pub fn features(&self) -> &[usize] {
        &self.inputs.shape[2..]
    }

    /// Bytes [`read`](Self::read) allocates for `n` samples.
    pub fn bytes_for(&self, n: usize) -> u64 {
        let per = self.inputs.sample_len() as u64 * (4 + self.inputs.elem.bytes() as u64 + 8);
        (n as u64).saturating_mul(per.saturating_add(16))
    }

    /// The first `n` samples offered (refused when fewer are), their values and labels checked:
    /// every value finite, every label a whole number in `0..classes`.
    pub fn read(&self, n: usize, classes: usize) -> Result<TensorSamples> {
        if n > self.available {
            return Err(Error::input(format!(
                "{}: offers {} samples (from offset {}), the scenario asks for {n}",
                self.inputs.what(),
                self.available,
                self.offset
            )));
        }
        let len = self.inputs.sample_len();
        let raw = self.inputs.read_range(self.offset, n)?;
        if let Some(i) = raw.iter().position(|v| !v.is_finite()) {
            return Err(Error::input(format!(
                "{}: sample {} holds a non-finite value ({}) at flat index {}",
                self.inputs.what(),
                self.offset + i / len,
                raw[i],
                i % len
            )));
        }
        let values: Vec<f32> = raw.into_iter().map(|v| v as f32).collect();
        let labels = match &self.labels {
            None => None,
            Some(h) => {
                let raw = h.read_range(self.offset, n)?;
                let mut out = Vec::with_capacity(n);
                for (i, &v) in raw.iter().enumerate() {
                    if !(v.fract() == 0.0 && v >= 0.0 && v < classes as f64) {
                        return Err(Error::input(format!(
                            "{}: label {v} of sample {} is not a class 0..{}",
                            h.what(),
                            self.offset + i,
                            classes.saturating_sub(1)
                        )));
                    }
                    out.push(v as usize);
                }
                Some(out)
            }
        };
        Ok(TensorSamples {
            values,
            timesteps: self.timesteps(),
            step_len: len / self.timesteps(),
            labels,
        })
    }
}

/// Samples read from a tensor input.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSamples {
    values: Vec<f32>,
    timesteps: usize,
    step_len: usize,
    labels: Option<Vec<usize>>,
}

impl TensorSamples {
    /// Frames per sample.
    pub fn timesteps(&self) -> usize {
        self.timesteps
    }

    /// The frames of sample `i` (of those read) and its label.
    pub fn sample(&self, i: usize) -> (Vec<Vec<f32>>, Option<usize>) {
        let start = i * self.timesteps * self.step_len;
        let frames = (0..self.timesteps)
            .map(|t| {
                let s = start + t * self.step_len;
                self.values[s..s + self.step_len].to_vec()
            })
            .collect();
        (frames, self.labels.as_ref().map(|l| l[i]))
    }
}

/// Whether a tensor's per-step features fit a model input of shape `model`: the same shape, or
/// the same number of values when either side is flat.
pub fn features_fit(features: &[usize], model: &[usize]) -> bool {
    let n = |s: &[usize]| s.iter().product::<usize>();
    features == model || (n(features) == n(model) && (features.len() == 1 || model.len() == 1))
}

/// Write a `.npy` file (version 1, C order) of `descr` (`<f4`, `|b1`, `<i8`, ...) holding `data`
/// bytes; for fixtures and shipped examples.
pub fn npy_bytes(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // The preamble and header end on a multiple of 64 bytes, with a final newline.
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pj-tensors-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn spec(file: &Path) -> TensorSpec {
        TensorSpec {
            file: file.display().to_string(),
            tensor: None,
            labels: None,
            offset: 0,
            samples: None,
        }
    }

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn npy_samples_come_back_as_frames_with_labels() {
        let vals: Vec<f32> = (0..3 * 2 * 4).map(|i| i as f32 - 5.0).collect();
        let x = tmp("x.npy", &npy_bytes("<f4", &[3, 2, 4], &f32_bytes(&vals)));
        let y = tmp(
            "y.npy",
            &npy_bytes("<i8", &[3], &[0i64, 2, 1].map(|v| v.to_le_bytes()).concat()),
        );
        let mut s = spec(&x);
        s.labels = Some(y.display().to_string());
        s.offset = 1;
        let o = Opened::open(&s, |p: &str| PathBuf::from(p)).unwrap();
        assert_eq!((o.timesteps(), o.features(), o.available), (2, &[4][..], 2));
        let t = o.read(2, 3).unwrap();
        let (frames, label) = t.sample(1);
        assert_eq!(frames, vec![vals[16..20].to_vec(), vals[20..24].to_vec()]);
        assert_eq!(label, Some(1));
        assert!(
            o.read(3, 3)
                .unwrap_err()
                .to_string()
                .contains("offers 2 samples")
        );
        let e = o.read(2, 2).unwrap_err().to_string();
        assert!(
            e.contains("y.npy") && e.contains("label 2 of sample 1"),
            "{e}"
        );
    }

    #[test]
    fn safetensors_picks_inputs_and_labels_by_default_and_decodes_f16() {
        use safetensors::Dtype;
        let vals = [0.5f32, -1.0, 0.0, 1.0, 2.0, -3.5];
        let x: Vec<u8> = vals
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
            .collect();
        let y: Vec<u8> = [1u8, 0, 1].to_vec();
        let other = f32_bytes(&[1.0]);
        let views = vec![
            (
                "inputs",
                safetensors::tensor::TensorView::new(Dtype::F16, vec![3, 1, 2], &x).unwrap(),
            ),
            (
                "labels",
                safetensors::tensor::TensorView::new(Dtype::U8, vec![3], &y).unwrap(),
            ),
            (
                "extra",
                safetensors::tensor::TensorView::new(Dtype::F32, vec![1], &other).unwrap(),
            ),
        ];
        let p = tmp(
            "d.safetensors",
            &safetensors::serialize(views, None).unwrap(),
        );
        let o = Opened::open(&spec(&p), |p: &str| PathBuf::from(p)).unwrap();
        assert_eq!(o.inputs.tensor.as_deref(), Some("inputs"));
        let t = o.read(3, 2).unwrap();
        assert_eq!(t.sample(2), (vec![vec![2.0, -3.5]], Some(1)));
        let mut s = spec(&p);
        s.tensor = Some("nope".into());
        let e = Opened::open(&s, |p: &str| PathBuf::from(p))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no tensor `nope`") && e.contains("inputs, labels"),
            "{e}"
        );
        s.tensor = Some("extra".into());
        let e = Opened::open(&s, |p: &str| PathBuf::from(p))
            .unwrap_err()
            .to_string();
        assert!(e.contains("tensor `extra`") && e.contains("[1]"), "{e}");
    }

    #[test]
    fn labels_of_another_length_name_both_shapes() {
        let x = tmp("l.npy", &npy_bytes("|u1", &[2, 1, 3], &[0; 6]));
        let y = tmp("l-labels.npy", &npy_bytes("|u1", &[3], &[0; 3]));
        let mut s = spec(&x);
        s.labels = Some(y.display().to_string());
        let e = Opened::open(&s, |p: &str| PathBuf::from(p))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("l-labels.npy") && e.contains("[3]") && e.contains("[2, 1, 3]"),
            "{e}"
        );
    }

    #[test]
    fn truncated_and_garbled_files_are_input_errors_naming_the_file() {
        let good = npy_bytes("<f4", &[2, 2, 2], &f32_bytes(&[1.0; 8]));
        let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("empty.npy", vec![], "preamble"),
            ("cut.npy", good[..good.len() - 3].to_vec(), "needs 32 bytes"),
            (
                "long.npy",
                [&good[..], &[0u8; 4]].concat(),
                "needs 32 bytes",
            ),
            ("magic.npy", b"NUMPY garbage and more".to_vec(), "magic"),
            ("head.npy", good[..40].to_vec(), "header claims"),
            (
                "type.npy",
                npy_bytes("<c8", &[1, 1, 1], &[0; 8]),
                "type '<c8'",
            ),
            (
                "shape.npy",
                npy_bytes("<f4", &[2, 2], &f32_bytes(&[1.0; 4])),
                "[samples, timesteps",
            ),
            (
                "nan.npy",
                npy_bytes("<f4", &[1, 1, 2], &f32_bytes(&[1.0, f32::NAN])),
                "non-finite",
            ),
            (
                "st.safetensors",
                b"\xff\xff\xff\xff\xff\xff\xff\x7fjunk".to_vec(),
                "header claims",
            ),
            (
                "st2.safetensors",
                [&8u64.to_le_bytes()[..], b"{garbage"].concat(),
                "its header",
            ),
        ];
        let huge = npy_bytes("<f4", &[usize::MAX / 2, 4, 4], &[]);
        cases.push(("huge.npy", huge, "overflows"));
        let hdr = br#"{"inputs":{"dtype":"F32","shape":[4,2,2],"data_offsets":[0,64]}}"#;
        let st = [&(hdr.len() as u64).to_le_bytes()[..], hdr, &[0u8; 20]].concat();
        cases.push(("short.safetensors", st, "data offsets [0, 64]"));
        let hdr = br#"{"inputs":{"dtype":"F8_E4M3","shape":[1,1,1],"data_offsets":[0,1]}}"#;
        let st = [&(hdr.len() as u64).to_le_bytes()[..], hdr, &[0u8; 1]].concat();
        cases.push(("f8.safetensors", st, "dtype F8_E4M3"));
        for (name, bytes, want) in cases {
            let p = tmp(name, &bytes);
            let e = Opened::open(&spec(&p), |p: &str| PathBuf::from(p))
                .and_then(|o| o.read(1, 1).map(|_| ()));
            let e = e.unwrap_err();
            assert_eq!(e.exit_code(), 2, "{name}: {e}");
            let e = e.to_string();
            assert!(e.contains(name) && e.contains(want), "{name}: {e}");
        }
    }

    #[test]
    fn features_fit_by_shape_or_by_flat_size() {
        assert!(features_fit(&[64], &[64]));
        assert!(features_fit(&[2, 4, 4], &[2, 4, 4]));
        assert!(features_fit(&[32], &[2, 4, 4]));
        assert!(!features_fit(&[4, 4, 2], &[2, 4, 4]));
        assert!(!features_fit(&[63], &[64]));
    }
}
