//! A read-only HDF5 tree: groups, numeric arrays and strings, read whole into memory. The one
//! place that sees the HDF5 decoder crate; every failure of it becomes an input error naming
//! the file and the object.
//!
//! Sizes are checked before data is read: the elements every dataset declares are added up
//! (and checked against the memory limit) before one of them is decoded, so a file that
//! declares more than it could hold is refused instead of allocated.

use std::collections::BTreeMap;
use std::path::Path;

use hdf5_reader::{Datatype, Hdf5File, OpenOptions};

use crate::error::{Error, Result};

/// Groups and datasets deeper than this are refused (NIR graphs nest two or three levels).
const MAX_DEPTH: usize = 16;
/// Objects (groups and datasets) in one file at most.
const MAX_OBJECTS: usize = 1 << 20;

/// One object of the tree.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Group(BTreeMap<String, Item>),
    /// A numeric dataset (floats or integers of any width), as f64, row-major.
    Array {
        shape: Vec<usize>,
        data: Vec<f64>,
    },
    /// A string dataset (fixed or variable length), one string per element.
    Strings(Vec<String>),
}

impl Item {
    pub fn group(&self) -> Option<&BTreeMap<String, Item>> {
        match self {
            Item::Group(g) => Some(g),
            _ => None,
        }
    }
}

/// A dataset seen but not yet read.
struct Pending {
    path: Vec<String>,
    elements: u64,
    element_bytes: u64,
}

fn h5_err(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::input(format!(
        "{}: malformed or unsupported HDF5 ({what}): {e}",
        path.display()
    ))
}

/// Read the whole tree under the root group of the HDF5 file `path`.
pub fn read_tree(path: &Path, max_memory: Option<u64>) -> Result<Item> {
    let file_len = std::fs::metadata(path)
        .map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let limit = crate::resources::limit(max_memory)
        .map(|(b, _)| b)
        .unwrap_or(u64::MAX)
        .min(usize::MAX as u64) as usize;
    let options = OpenOptions::default().with_max_read_bytes(limit);
    // The file is read whole: it must fit first.
    crate::resources::check(&path.display().to_string(), file_len, max_memory)?;
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    // The decoder is not ours: a panic inside it is a malformed file, not a crash.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let file = Hdf5File::from_vec_with_options(bytes, options)
            .map_err(|e| h5_err(path, "superblock", e))?;
        read_all(&file, path, file_len, max_memory)
    }))
    .unwrap_or_else(|_| Err(h5_err(path, "object tree", "decoder failed")))
}

fn read_all(file: &Hdf5File, path: &Path, file_len: u64, max_memory: Option<u64>) -> Result<Item> {
    let root = file
        .root_group()
        .map_err(|e| h5_err(path, "root group", e))?;
    // First pass: the structure and every dataset's declared size.
    let mut pending = Vec::new();
    let mut tree = walk(file, &root, path, &mut Vec::new(), &mut pending, &mut 0)?;
    let declared = pending.iter().fold(0u64, |acc, p| {
        acc.saturating_add(p.elements.saturating_mul(p.element_bytes.max(8)))
    });
    crate::resources::check(
        &format!("{} ({} bytes on disk)", path.display(), file_len),
        declared,
        max_memory,
    )?;
    // Second pass: the data.
    for p in pending {
        let name = p.path.join("/");
        let ds = file
            .dataset(&name)
            .map_err(|e| h5_err(path, &format!("dataset `{name}`"), e))?;
        let item = read_dataset(&ds, path, &name)?;
        let (last, parents) = p.path.split_last().expect("a dataset has a name");
        let mut g = &mut tree;
        for k in parents {
            g = match g {
                Item::Group(m) => m.get_mut(k).expect("walked"),
                _ => unreachable!("parents are groups"),
            };
        }
        if let Item::Group(m) = g {
            m.insert(last.clone(), item);
        }
    }
    Ok(tree)
}

fn walk(
    file: &Hdf5File,
    group: &hdf5_reader::group::Group,
    path: &Path,
    at: &mut Vec<String>,
    pending: &mut Vec<Pending>,
    objects: &mut usize,
) -> Result<Item> {
    let here = if at.is_empty() {
        "/".to_string()
    } else {
        at.join("/")
    };
    if at.len() > MAX_DEPTH {
        return Err(h5_err(path, &format!("group `{here}`"), "nested too deep"));
    }
    let (groups, datasets) = group
        .member_names()
        .map_err(|e| h5_err(path, &format!("group `{here}`"), e))?;
    *objects += groups.len() + datasets.len();
    if *objects > MAX_OBJECTS {
        return Err(h5_err(path, "object tree", "too many objects"));
    }
    let mut out = BTreeMap::new();
    for name in datasets {
        at.push(name.clone());
        let full = at.join("/");
        let ds = file
            .dataset(&full)
            .map_err(|e| h5_err(path, &format!("dataset `{full}`"), e))?;
        let elements = ds
            .num_elements()
            .map_err(|e| h5_err(path, &format!("dataset `{full}`"), e))?;
        let element_bytes = match ds.dtype() {
            Datatype::FloatingPoint { size, .. } | Datatype::FixedPoint { size, .. } => {
                *size as u64
            }
            // Strings: counted per element; their bytes are bounded by the file.
            _ => 8,
        };
        pending.push(Pending {
            path: at.clone(),
            elements,
            element_bytes,
        });
        out.insert(name, Item::Strings(Vec::new()));
        at.pop();
    }
    for name in groups {
        at.push(name.clone());
        let sub = group
            .group(&name)
            .map_err(|e| h5_err(path, &format!("group `{}`", at.join("/")), e))?;
        let item = walk(file, &sub, path, at, pending, objects)?;
        out.insert(name, item);
        at.pop();
    }
    Ok(Item::Group(out))
}

fn read_dataset(ds: &hdf5_reader::Dataset, path: &Path, name: &str) -> Result<Item> {
    let err = |e: hdf5_reader::error::Error| h5_err(path, &format!("dataset `{name}`"), e);
    let shape: Vec<usize> = ds.shape().iter().map(|&d| d as usize).collect();
    let floats = |v: Vec<f64>| Item::Array {
        shape: shape.clone(),
        data: v,
    };
    macro_rules! ints {
        ($t:ty) => {
            floats(
                ds.read_array::<$t>()
                    .map_err(err)?
                    .iter()
                    .map(|&x| x as f64)
                    .collect(),
            )
        };
    }
    Ok(match ds.dtype() {
        Datatype::FloatingPoint { size: 4, .. } => floats(
            ds.read_array::<f32>()
                .map_err(err)?
                .iter()
                .map(|&x| x as f64)
                .collect(),
        ),
        Datatype::FloatingPoint { size: 8, .. } => floats(
            ds.read_array::<f64>()
                .map_err(err)?
                .iter()
                .copied()
                .collect(),
        ),
        Datatype::FixedPoint { size, signed, .. } => match (size, signed) {
            (1, true) => ints!(i8),
            (1, false) => ints!(u8),
            (2, true) => ints!(i16),
            (2, false) => ints!(u16),
            (4, true) => ints!(i32),
            (4, false) => ints!(u32),
            (8, true) => ints!(i64),
            (8, false) => ints!(u64),
            _ => {
                return Err(h5_err(
                    path,
                    &format!("dataset `{name}`"),
                    format!("{size}-byte integers"),
                ));
            }
        },
        Datatype::String { .. } | Datatype::VarLen { .. } => {
            Item::Strings(ds.read_strings().map_err(err)?)
        }
        other => {
            return Err(h5_err(
                path,
                &format!("dataset `{name}`"),
                format!("datatype {other:?}"),
            ));
        }
    })
}
