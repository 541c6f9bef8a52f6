//! The digits CSV: 8 x 8 images, 64 pixel values 0..16 then the label 0..9, one image a line.

use std::path::Path;

use crate::error::{Error, Result};

pub const PIXELS: usize = 64;
pub const CLASSES: usize = 10;

/// One labelled image, pixels scaled to 0..1.
#[derive(Clone, Debug, PartialEq)]
pub struct Digit {
    pub pixels: [f32; PIXELS],
    pub label: usize,
}

/// Every image of a digits CSV (blank lines skipped). Errors name the file and line.
pub fn read(path: &Path) -> Result<Vec<Digit>> {
    parse(path, &crate::error::read_text(path)?)
}

/// The first `n` images of a digits CSV; refuses a file with fewer.
pub fn read_first(path: &Path, n: usize) -> Result<Vec<Digit>> {
    let mut all = read(path)?;
    if all.len() < n {
        return Err(Error::input(format!(
            "{}: has {} images, the scenario asks for {n}",
            path.display(),
            all.len()
        )));
    }
    all.truncate(n);
    Ok(all)
}

fn parse(path: &Path, text: &str) -> Result<Vec<Digit>> {
    let mut out = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |m: String| Error::input(format!("{}:{}: {m}", path.display(), ln + 1));
        let vals: Vec<&str> = line.split(',').map(|s| s.trim()).collect();
        if vals.len() != PIXELS + 1 {
            return Err(bad(format!(
                "expected {} values (64 pixels and a label), found {}",
                PIXELS + 1,
                vals.len()
            )));
        }
        let mut pixels = [0.0f32; PIXELS];
        for (i, v) in vals[..PIXELS].iter().enumerate() {
            let p: f32 = v
                .parse()
                .map_err(|_| bad(format!("pixel {} is `{v}`, not a number 0..16", i + 1)))?;
            if !(0.0..=16.0).contains(&p) {
                return Err(bad(format!("pixel {} is {p}, outside 0..16", i + 1)));
            }
            pixels[i] = p / 16.0;
        }
        let label: usize = vals[PIXELS]
            .parse()
            .ok()
            .filter(|&l| l < CLASSES)
            .ok_or_else(|| bad(format!("label `{}` is not a digit 0..9", vals[PIXELS])))?;
        out.push(Digit { pixels, label });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(px: &str, label: &str) -> String {
        let mut v = vec![px; PIXELS];
        v.push(label);
        v.join(",")
    }

    #[test]
    fn pixels_are_scaled_and_labels_kept() {
        let d = parse(Path::new("d.csv"), &format!("{}\n\n", row("8", "3"))).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].label, 3);
        assert!(d[0].pixels.iter().all(|&p| p == 0.5));
    }

    #[test]
    fn bad_rows_name_file_and_line() {
        let text = format!("{}\n{}\n", row("1", "0"), row("17", "0"));
        let e = parse(Path::new("d.csv"), &text).unwrap_err().to_string();
        assert!(e.contains("d.csv:2") && e.contains("outside 0..16"), "{e}");
        let e = parse(Path::new("d.csv"), &row("1", "12"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a digit"), "{e}");
        let e = parse(Path::new("d.csv"), "1,2,3").unwrap_err().to_string();
        assert!(e.contains("found 3"), "{e}");
    }
}
