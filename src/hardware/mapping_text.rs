//! The text form of a loop-nest mapping, as reports print it and scenarios pin it:
//! `dram[N4] sram-1m[C16 -inputs] sram-8k[N4 M16 sK2]`. Levels go outermost first, each as its
//! name and its loops in brackets, outermost loop first (Timeloop's `map.txt` order). A loop is
//! a dim name and its factor, `s` before the name for a spatial loop; loops of factor 1 are left
//! out. `-space` says the level does not hold that data space (bypass). A level that is not
//! named has no loops and holds what it may.

use super::nest::{Level, Loop, Mapping, Problem};

/// `m` in text form.
pub fn format(p: &Problem, levels: &[Level], m: &Mapping) -> String {
    m.levels
        .iter()
        .enumerate()
        .rev()
        .map(|(pos, loops)| {
            let mut parts: Vec<String> = loops
                .iter()
                .filter(|l| l.factor > 1)
                .map(|l| {
                    format!(
                        "{}{}{}",
                        if l.spatial { "s" } else { "" },
                        p.dims[l.dim].name,
                        l.factor
                    )
                })
                .collect();
            if let Some(keeps) = m.keeps.get(pos) {
                for (t, s) in p.spaces.iter().enumerate() {
                    if levels[pos].keeps[t] && !keeps[t] {
                        parts.push(format!("-{}", s.name));
                    }
                }
            }
            format!("{}[{}]", levels[pos].name, parts.join(" "))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The mapping `text` names, for problem `p` on `levels` (innermost first). Checks the names
/// (levels, dims, data spaces) and the syntax; whether the factors and tiles fit is
/// `nest::analyze`'s to say.
pub fn parse(text: &str, p: &Problem, levels: &[Level]) -> Result<Mapping, String> {
    let level_names = || {
        levels
            .iter()
            .rev()
            .map(|l| l.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut loops: Vec<Vec<Loop>> = vec![Vec::new(); levels.len()];
    let mut keeps: Vec<Vec<bool>> = vec![vec![true; p.spaces.len()]; levels.len()];
    let mut named = vec![false; levels.len()];
    let mut rest = text.trim();
    while !rest.is_empty() {
        let open = rest
            .find('[')
            .ok_or_else(|| format!("`{rest}`: expected LEVEL[loops]"))?;
        let close = rest[open..]
            .find(']')
            .map(|c| open + c)
            .ok_or_else(|| format!("`{rest}`: no closing `]`"))?;
        let name = rest[..open].trim();
        let pos = levels.iter().position(|l| l.name == name).ok_or_else(|| {
            format!(
                "no memory level `{name}` (the levels, outermost first: {})",
                level_names()
            )
        })?;
        if std::mem::replace(&mut named[pos], true) {
            return Err(format!("level {name} is named twice"));
        }
        for tok in rest[open + 1..close].split_whitespace() {
            if let Some(space) = tok.strip_prefix('-') {
                let t = p
                    .spaces
                    .iter()
                    .position(|s| s.name == space)
                    .ok_or_else(|| {
                        let names: Vec<&str> = p.spaces.iter().map(|s| s.name.as_str()).collect();
                        format!(
                            "level {name}: `{tok}` bypasses no data space of this pass ({})",
                            names.join(", ")
                        )
                    })?;
                keeps[pos][t] = false;
                continue;
            }
            loops[pos].push(parse_loop(tok, p).map_err(|e| format!("level {name}: {e}"))?);
        }
        rest = rest[close + 1..].trim_start();
    }
    let bypass = keeps.iter().any(|k| k.iter().any(|&v| !v));
    Ok(Mapping {
        levels: loops,
        keeps: if bypass { keeps } else { Vec::new() },
    })
}

fn parse_loop(tok: &str, p: &Problem) -> Result<Loop, String> {
    let digits = tok.find(|c: char| c.is_ascii_digit()).unwrap_or(tok.len());
    let (head, factor) = tok.split_at(digits);
    let factor: u64 = factor
        .parse()
        .map_err(|_| format!("`{tok}`: expected a dim name and a factor (`C16`, `sK4`)"))?;
    let dim_of = |n: &str| p.dims.iter().position(|d| d.name == n);
    // A dim's own name first: `S3` is the dim S; `sK4` is K, spatial.
    let (dim, spatial) = match (dim_of(head), head.strip_prefix('s').and_then(dim_of)) {
        (Some(d), _) => (d, false),
        (None, Some(d)) => (d, true),
        (None, None) => {
            let names: Vec<&str> = p.dims.iter().map(|d| d.name.as_str()).collect();
            return Err(format!(
                "`{tok}`: no dim `{head}` in this pass (its dims: {})",
                names.join(", ")
            ));
        }
    };
    Ok(Loop {
        dim,
        factor,
        spatial,
    })
}

#[cfg(test)]
mod tests {
    use crate::hardware::{Hardware, passes};
    use crate::ledger::Work;

    #[test]
    fn a_searched_mapping_reads_back_as_itself() {
        let cm = Hardware::load("eyeriss65").unwrap().model;
        for w in [
            Work::Matmul {
                n: 196,
                c: 64,
                k: 128,
                bytes: 2,
            },
            Work::Attention {
                heads: 1,
                n: 196,
                m: 49,
                c: 32,
                bytes: 2,
            },
        ] {
            let e = passes::map_pass(&cm, &w, None).unwrap();
            let pinned = passes::map_pass(&cm, &w, Some(&e.mapping)).unwrap();
            assert_eq!(pinned.mapping, e.mapping);
            assert_eq!(pinned.mapped, e.mapped, "{w:?}: {}", e.mapping);
        }
    }

    #[test]
    fn names_the_pass_does_not_have_are_errors_listing_the_right_ones() {
        let cm = Hardware::load("horowitz45").unwrap().model;
        let w = Work::Matmul {
            n: 16,
            c: 8,
            k: 8,
            bytes: 4,
        };
        let err = |m: &str| passes::map_pass(&cm, &w, Some(m)).unwrap_err();
        let e = err("dram[N16 C8 K8] sram-2m[]");
        assert!(
            e.contains("no memory level `sram-2m`") && e.contains("dram"),
            "{e}"
        );
        let e = err("dram[N16 C8 X8]");
        assert!(e.contains("no dim `X`") && e.contains("N, C, K"), "{e}");
        let e = err("dram[N16 C8 K8] sram-1m[-q]");
        assert!(
            e.contains("`-q`") && e.contains("weights, inputs, outputs"),
            "{e}"
        );
        let e = err("dram[N16 C8 K8");
        assert!(e.contains("no closing"), "{e}");
        let e = err("dram[N16 C8 K4]");
        assert!(e.contains("dim K multiply to 4, its bound is 8"), "{e}");
    }
}
