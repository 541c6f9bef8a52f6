//! A work-around for ZIP checkpoints that the `zip` crate under `pytorch-reader` misreads.
//!
//! # The failure
//!
//! `torch.save` always ends its archive with ZIP64 end records: the ZIP64 end of central
//! directory record (56 bytes) and its locator (20 bytes), 76 bytes between the central
//! directory and the classic end of central directory record (EOCD). It fills the EOCD's
//! fields with their true values (not the 0xFFFF/0xFFFFFFFF a reader takes as "see ZIP64"),
//! so `zip` 9.8.2 (`find_central_directory_end`) reads the archive as a plain ZIP32 one and
//! never looks at the ZIP64 records. Without a known archive offset it then guesses where
//! the central directory starts as `EOCD position - central directory size`, "the start
//! implied by the size", and accepts the guess when a central-directory header signature
//! (`PK\x01\x02`) is found there. For a torch archive the guess is 76 bytes past the true
//! start, inside the central directory. When the first central-directory header is exactly
//! 76 bytes long (46 fixed bytes plus the 30-byte name `<stem>/data.pkl`, so a 21-character
//! archive name, which `torch.save` takes from the file stem), the guess lands on the second
//! header: the crate takes the archive as shifted by 76 bytes, reads one header too few
//! before running into the ZIP64 record, and fails with "Invalid Central Directory header".
//! For any other stem length the guess falls inside a header, no signature is found there,
//! and the crate scans forward from the offset the EOCD gives, which is right.
//!
//! `zip` 9.8.2 is the newest release and `pytorch-reader` only opens files by path, so the
//! reader is handed a corrected copy instead: [`misread_archive`] finds the records itself
//! and says whether the guess above would land on a header other than the first; if so,
//! [`repaired_copy`] writes the file without its ZIP64 end records (they repeat the EOCD's
//! values, which fit in 32 bits whenever the EOCD holds them unsaturated), so that the EOCD
//! follows the central directory and the guess is the true start. The copy is needed only
//! for these archives and is removed once the tensors are read.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const EOCD_SIG: [u8; 4] = *b"PK\x05\x06";
const EOCD_LEN: u64 = 22;
const LOCATOR_SIG: [u8; 4] = *b"PK\x06\x07";
const LOCATOR_LEN: u64 = 20;
const EOCD64_SIG: [u8; 4] = *b"PK\x06\x06";
/// Fixed part of the ZIP64 end record, signature and size field included.
const EOCD64_FIXED_LEN: u64 = 56;
const CDFH_SIG: [u8; 4] = *b"PK\x01\x02";
/// The EOCD comment is at most 64 KiB, so the EOCD lies within this many bytes of the end.
const TAIL_LEN: u64 = EOCD_LEN + u16::MAX as u64;

/// Where a misread archive's ZIP64 end records are: `[start, end)`, end being the EOCD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Zip64Tail {
    pub start: u64,
    pub end: u64,
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(i..i.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(i..i.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], i: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(i..i.checked_add(8)?)?.try_into().ok()?,
    ))
}

fn read_at(file: &mut File, pos: u64, len: usize) -> std::io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(pos))?;
    let mut buf = Vec::with_capacity(len);
    file.take(len as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// The ZIP64 end records of an archive that `zip` 9.8.2 would misread as described in the
/// module documentation, or `None` for any other file (not a ZIP, a ZIP it reads right, or one
/// too malformed to say: those go to the reader unchanged and fail or not there).
pub(crate) fn misread_archive(file: &mut File) -> std::io::Result<Option<Zip64Tail>> {
    let len = file.seek(SeekFrom::End(0))?;
    let tail_start = len.saturating_sub(TAIL_LEN);
    let tail = read_at(file, tail_start, (len - tail_start) as usize)?;
    // The EOCD the crate tries first: the last signature whose comment fits in the file.
    let Some(eocd) = (0..tail.len().saturating_sub(EOCD_LEN as usize - 1))
        .rev()
        .filter(|&i| tail[i..].starts_with(&EOCD_SIG))
        .find(|&i| {
            u16_at(&tail, i + 20)
                .is_some_and(|c| i as u64 + EOCD_LEN + c as u64 <= tail.len() as u64)
        })
    else {
        return Ok(None);
    };
    let field16 = |k| u16_at(&tail, eocd + k).unwrap_or(0);
    let field32 = |k| u32_at(&tail, eocd + k).unwrap_or(0);
    let (files_here, files, cd_size, cd_offset) =
        (field16(8), field16(10), field32(12), field32(16));
    // Saturated fields send the crate to the ZIP64 records, which it reads right; several
    // disks or an empty directory are not what torch writes.
    if files == u16::MAX
        || cd_size == u32::MAX
        || cd_offset == u32::MAX
        || field16(4) != 0
        || field16(6) != 0
        || files_here != files
        || files == 0
    {
        return Ok(None);
    }
    let eocd_pos = tail_start + eocd as u64;
    // The locator ends where the EOCD starts, and points at a ZIP64 end record that ends
    // where the locator starts and repeats the EOCD's directory size and offset.
    let Some(locator_pos) = eocd_pos.checked_sub(LOCATOR_LEN) else {
        return Ok(None);
    };
    let locator = read_at(file, locator_pos, LOCATOR_LEN as usize)?;
    if !locator.starts_with(&LOCATOR_SIG) || u32_at(&locator, 4) != Some(0) {
        return Ok(None);
    }
    let Some(eocd64_pos) = u64_at(&locator, 8) else {
        return Ok(None);
    };
    if eocd64_pos.checked_add(EOCD64_FIXED_LEN) != Some(locator_pos) {
        return Ok(None);
    }
    let eocd64 = read_at(file, eocd64_pos, EOCD64_FIXED_LEN as usize)?;
    if !eocd64.starts_with(&EOCD64_SIG)
        || u64_at(&eocd64, 4) != Some(EOCD64_FIXED_LEN - 12)
        || u64_at(&eocd64, 24) != Some(files as u64)
        || u64_at(&eocd64, 32) != Some(files as u64)
        || u64_at(&eocd64, 40) != Some(cd_size as u64)
        || u64_at(&eocd64, 48) != Some(cd_offset as u64)
        || (cd_offset as u64).checked_add(cd_size as u64) != Some(eocd64_pos)
    {
        return Ok(None);
    }
    // The crate's guess, and whether a header signature there makes it take it.
    let guess = eocd_pos - cd_size as u64;
    if guess == cd_offset as u64 || read_at(file, guess, 4)? != CDFH_SIG {
        return Ok(None);
    }
    Ok(Some(Zip64Tail {
        start: eocd64_pos,
        end: eocd_pos,
    }))
}

/// A temporary copy of a checkpoint, removed when dropped.
pub(crate) struct TempCopy {
    dir: PathBuf,
    pub path: PathBuf,
}

impl Drop for TempCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Copy `path` into a fresh temporary folder, leaving out `cut` (the ZIP64 end records).
pub(crate) fn repaired_copy(path: &Path, cut: Zip64Tail) -> std::io::Result<TempCopy> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "picojoule-pth-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let copy = TempCopy {
        path: dir.join(path.file_name().unwrap_or("checkpoint.pth".as_ref())),
        dir,
    };
    let mut src = File::open(path)?;
    let mut out = File::create(&copy.path)?;
    let copied = std::io::copy(&mut (&mut src).take(cut.start), &mut out)?;
    if copied != cut.start {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    src.seek(SeekFrom::Start(cut.end))?;
    std::io::copy(&mut src, &mut out)?;
    out.flush()?;
    Ok(copy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    fn misread(name: &str) -> Option<Zip64Tail> {
        misread_archive(&mut File::open(fixture(name)).unwrap()).unwrap()
    }

    #[test]
    fn only_the_21_character_stem_is_misread() {
        // zipfile-written fixtures carry no ZIP64 records.
        assert_eq!(misread("spikegpt-tiny.pt"), None);
        for name in [
            "torch-len13-x.pth",
            "torch-len20-xxxxxxxx.pth",
            "torch-len22-xxxxxxxxxx.pth",
        ] {
            assert_eq!(misread(name), None, "{name}");
        }
        let path = fixture("torch-len21-xxxxxxxxx.pth");
        let len = std::fs::metadata(&path).unwrap().len();
        let cut = misread("torch-len21-xxxxxxxxx.pth").unwrap();
        // The ZIP64 record and locator (76 bytes), right before the 22-byte EOCD.
        assert_eq!((cut.end - cut.start, len - cut.end), (76, 22));
    }

    #[test]
    fn the_copy_drops_the_zip64_records_and_is_removed() {
        let path = fixture("torch-len21-xxxxxxxxx.pth");
        let bytes = std::fs::read(&path).unwrap();
        let cut = misread("torch-len21-xxxxxxxxx.pth").unwrap();
        let copy = repaired_copy(&path, cut).unwrap();
        let got = std::fs::read(&copy.path).unwrap();
        let (s, e) = (cut.start as usize, cut.end as usize);
        assert_eq!(got, [&bytes[..s], &bytes[e..]].concat());
        // The copy reads as a plain ZIP with the EOCD right after the directory.
        assert_eq!(
            misread_archive(&mut File::open(&copy.path).unwrap()).unwrap(),
            None
        );
        let dir = copy.dir.clone();
        drop(copy);
        assert!(!dir.exists());
    }

    #[test]
    fn short_and_foreign_files_are_left_alone() {
        let dir = std::env::temp_dir().join(format!("pj-pth-zip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.pth");
        for bytes in [
            &b""[..],
            b"PK\x05\x06",
            b"PK\x06\x07PK\x05\x06\0\0\0\0\x01\0\x01\0\0\0\0\0\0\0\0\0\0\0",
            &[0xff; 200],
        ] {
            std::fs::write(&p, bytes).unwrap();
            assert_eq!(misread_archive(&mut File::open(&p).unwrap()).unwrap(), None);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
