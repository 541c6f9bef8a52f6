//! What a sweep writes and reads back: its metadata, one row per point and run, the points
//! file of an output folder and the finished result.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hardware::compiled::KINDS;

use super::{AxisValue, Breakeven, BreakevenSpec, breakeven};

/// Everything a table needs besides the rows; identical for every shard of a sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepMeta {
    pub picojoule_version: String,
    pub scenario: String,
    pub scenario_sha256: String,
    pub input: String,
    pub seed: u64,
    pub tokens: usize,
    pub hardware: String,
    pub hardware_sha256: String,
    pub convention: String,
    /// The convention each row is also seen under, beside the full accounting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<ViewMeta>,
    pub axes: Vec<MetaAxis>,
    pub zip: bool,
    pub points: usize,
    pub samples: usize,
    pub breakeven: Option<BreakevenSpec>,
}

/// A counting convention shown beside the full accounting, and the cost model of its view.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewMeta {
    pub convention: String,
    pub hardware: String,
}

/// A run under the sweep's view convention: its multiplies, adds and their energy on the view's
/// cost model (fixed along cost axes; it changes where a model axis re-simulates). None of them
/// when the convention does not describe the run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewRow {
    pub mul: u64,
    pub add: u64,
    pub energy_pj: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetaAxis {
    pub path: String,
    pub kind: String,
    pub log: bool,
    pub values: Vec<AxisValue>,
}

/// Median and 5-95% interval of the Monte Carlo energy.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mc {
    pub p05: f64,
    pub p50: f64,
    pub p95: f64,
}

/// One point and run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepRow {
    pub point: usize,
    pub values: Vec<AxisValue>,
    pub run: String,
    pub model: String,
    pub variant: String,
    pub tokens: usize,
    pub mac: u64,
    pub ac: u64,
    pub synops: u64,
    pub spikes: u64,
    pub energy_pj: f64,
    /// Energy by kind, in `compiled::KINDS` order: compute, nonlinear, neuron, metric, memory
    /// (written as an object with those five named fields).
    #[serde(with = "by_kind_fields")]
    pub by_kind: [f64; 5],
    pub unpriced: usize,
    pub top1: Option<f64>,
    pub bits_per_token: Option<f64>,
    pub mc: Option<Mc>,
    /// The run under the view convention (`meta.view`); absent without a view, null when the
    /// convention does not apply to the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<Option<ViewRow>>,
}

/// `SweepRow::by_kind` as named fields (`{"compute": .., "nonlinear": .., "neuron": ..,
/// "metric": .., "memory": ..}`); read back from that or from a list in `KINDS` order.
mod by_kind_fields {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// The fields, in `compiled::KINDS` order.
    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Named {
        compute: f64,
        nonlinear: f64,
        neuron: f64,
        metric: f64,
        memory: f64,
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Named(Named),
        List([f64; 5]),
    }

    pub fn serialize<S: Serializer>(v: &[f64; 5], s: S) -> Result<S::Ok, S::Error> {
        Named {
            compute: v[0],
            nonlinear: v[1],
            neuron: v[2],
            metric: v[3],
            memory: v[4],
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[f64; 5], D::Error> {
        Ok(match Either::deserialize(d)? {
            Either::Named(n) => [n.compute, n.nonlinear, n.neuron, n.metric, n.memory],
            Either::List(v) => v,
        })
    }
}

/// One line of `points.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PointRecord {
    pub point: usize,
    pub rows: Vec<SweepRow>,
}

/// `sweep-meta.json` in an output folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetaFile {
    pub meta: SweepMeta,
    /// (K, N) when this folder holds one shard.
    pub shard: Option<(usize, usize)>,
}

/// The finished sweep: what the tables and plots show.
#[derive(Clone, Debug, Serialize)]
pub struct SweepResult {
    pub meta: SweepMeta,
    pub shard: Option<(usize, usize)>,
    pub rows: Vec<SweepRow>,
    pub breakeven: Option<Breakeven>,
}

impl SweepResult {
    pub fn new(
        meta: SweepMeta,
        shard: Option<(usize, usize)>,
        mut rows: Vec<SweepRow>,
    ) -> SweepResult {
        rows.sort_by_key(|r| r.point);
        let complete = {
            let mut seen = vec![false; meta.points];
            rows.iter().for_each(|r| {
                if let Some(s) = seen.get_mut(r.point) {
                    *s = true;
                }
            });
            seen.iter().all(|s| *s)
        };
        let be = match (&meta.breakeven, complete) {
            (Some(spec), true) => Some(breakeven(&meta, &rows, spec)),
            _ => None,
        };
        SweepResult {
            meta,
            shard,
            rows,
            breakeven: be,
        }
    }
}

pub const POINTS_FILE: &str = "points.jsonl";

pub const META_FILE: &str = "sweep-meta.json";

/// Read the complete lines of a points file (a half-written last line is ignored).
pub fn read_points(path: &Path) -> Result<Vec<PointRecord>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(source) => {
            return Err(Error::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    let mut out = Vec::new();
    for (n, line) in complete.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let rec: PointRecord = serde_json::from_str(line).map_err(|e| {
            Error::input(format!(
                "{}:{}: not a sweep point: {e}",
                path.display(),
                n + 1
            ))
        })?;
        out.push(rec);
    }
    Ok(out)
}

pub fn read_meta(dir: &Path) -> Result<MetaFile> {
    let p = dir.join(META_FILE);
    let text = crate::error::read_text(&p)?;
    serde_json::from_str(&text).map_err(|e| Error::input(format!("{}: {e}", p.display())))
}

pub(super) fn points_line(rec: &PointRecord) -> String {
    serde_json::to_string(rec).expect("rows serialise") + "\n"
}

/// Appends whole lines and makes them durable, so an interrupted sweep keeps what it finished.
pub(super) struct PointsWriter {
    pub(super) file: std::fs::File,
    pub(super) path: PathBuf,
}

impl PointsWriter {
    pub(super) fn append(&mut self, recs: &[PointRecord]) -> Result<()> {
        let err = |source| Error::Write {
            path: self.path.clone(),
            source,
        };
        let text: String = recs.iter().map(points_line).collect();
        self.file.write_all(text.as_bytes()).map_err(err)?;
        self.file.sync_data().map_err(err)
    }
}

/// Energy by kind of a row, by name.
pub fn kind_energy(row: &SweepRow, kind: &str) -> f64 {
    KINDS
        .iter()
        .position(|k| *k == kind)
        .map(|i| row.by_kind[i])
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(point: usize) -> SweepRow {
        SweepRow {
            point,
            values: vec![AxisValue::Num(0.5)],
            run: "r".into(),
            model: "m".into(),
            variant: "v".into(),
            tokens: 4,
            mac: 1,
            ac: 2,
            synops: 2,
            spikes: 3,
            energy_pj: 15.0,
            by_kind: [1.0, 2.0, 3.0, 4.0, 5.0],
            unpriced: 0,
            top1: None,
            bits_per_token: Some(1.5),
            mc: None,
            view: None,
        }
    }

    #[test]
    fn energy_by_kind_is_written_by_name_and_read_from_names_or_a_list() {
        let json = serde_json::to_string(&row(0)).unwrap();
        assert!(
            json.contains(
                r#""by_kind":{"compute":1.0,"nonlinear":2.0,"neuron":3.0,"metric":4.0,"memory":5.0}"#
            ),
            "{json}"
        );
        let back: SweepRow = serde_json::from_str(&json).unwrap();
        assert_eq!(back, row(0));
        let listed = json.replace(
            r#"{"compute":1.0,"nonlinear":2.0,"neuron":3.0,"metric":4.0,"memory":5.0}"#,
            "[1.0,2.0,3.0,4.0,5.0]",
        );
        assert_eq!(serde_json::from_str::<SweepRow>(&listed).unwrap(), row(0));
        assert_eq!(kind_energy(&row(0), "neuron"), 3.0);
        assert_eq!(kind_energy(&row(0), "no such kind"), 0.0);
    }

    #[test]
    fn a_points_file_keeps_its_complete_lines_and_names_a_bad_one() {
        let dir = std::env::temp_dir().join(format!("pj-points-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(POINTS_FILE);
        assert!(
            read_points(&path).unwrap().is_empty(),
            "a missing file has no points"
        );
        let rec = |p| PointRecord {
            point: p,
            rows: vec![row(p)],
        };
        // The last line was cut off by an interruption: it is not a point.
        let text = points_line(&rec(0)) + &points_line(&rec(1));
        std::fs::write(&path, format!("{text}{{\"point\":2,\"ro")).unwrap();
        let got: Vec<usize> = read_points(&path)
            .unwrap()
            .iter()
            .map(|r| r.point)
            .collect();
        assert_eq!(got, [0, 1]);
        std::fs::write(&path, format!("{text}not json\n")).unwrap();
        let e = read_points(&path).unwrap_err().to_string();
        assert!(e.contains(&format!("{}:3", path.display())), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
