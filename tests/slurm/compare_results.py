"""Compare two results trees of the same workflow config (local run vs SLURM run), for tests/slurm/run.sh.

    python tests/slurm/compare_results.py LOCAL_DIR SLURM_DIR

NetCDF files: same data variables, coordinates and dimensions, values equal (exactly, or within a tiny
tolerance that covers BLAS thread-count rounding; the report says which); global and variable attributes
are not compared (they carry provenance: creation time, host, SLURM job id). CSV/TSV: same columns, numbers
equal within the same tolerance. JSON: equal after dropping provenance-like keys. Markdown/LaTeX/text
tables: equal text. In JSON and text, each tree's own root path is replaced by a placeholder first (the two
runs write to different results dirs). Logs, benchmarks and binary figures (PNG/PDF embed timestamps):
only the set of files is compared. Exit 0 when everything matches, 1 otherwise.
"""

import json
import math
import re
import sys
from pathlib import Path

import numpy as np

RTOL, ATOL = 1e-6, 1e-9
PROVENANCE_KEYS = {"created", "creation_time", "date", "time", "timestamp", "host", "hostname", "user",
                   "provenance", "version", "versions", "python", "platform", "elapsed", "elapsed_s",
                   "runtime_s", "wall_s", "seconds", "duration", "command", "argv", "cwd", "path", "paths",
                   "input", "output", "slurm_job"}
SKIP_DIRS = {"logs", "benchmarks", ".snakemake"}


def _num_equal(a, b, where, notes):
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        return f"{where}: shape {a.shape} != {b.shape}"
    if a.dtype.kind in "fciu" and b.dtype.kind in "fciu":
        if np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"):
            return None
        if np.allclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True):
            d = np.nanmax(np.abs(a.astype(complex) - b.astype(complex))) if a.size else 0.0
            notes.append(f"{where}: equal within rtol={RTOL} (max |diff| {float(d):.3g})")
            return None
        d = np.nanmax(np.abs(a.astype(float) - b.astype(float)))
        return f"{where}: values differ (max |diff| {d:.3g})"
    if not np.array_equal(a, b):
        return f"{where}: non-numeric values differ"
    return None


def compare_nc(fa, fb, where, notes):
    import xarray as xr

    errs = []
    with xr.open_dataset(fa) as a, xr.open_dataset(fb) as b:
        if set(a.data_vars) != set(b.data_vars):
            return [f"{where}: data variables {sorted(a.data_vars)} != {sorted(b.data_vars)}"]
        if set(a.coords) != set(b.coords) or dict(a.sizes) != dict(b.sizes):
            return [f"{where}: coordinates/dimensions differ"]
        for name in list(a.data_vars) + list(a.coords):
            e = _num_equal(a[name].values, b[name].values, f"{where}:{name}", notes)
            if e:
                errs.append(e)
    return errs


def compare_table(fa, fb, where, notes):
    import pandas as pd

    sep = "\t" if fa.suffix == ".tsv" else ","
    a, b = pd.read_csv(fa, sep=sep), pd.read_csv(fb, sep=sep)
    if list(a.columns) != list(b.columns) or a.shape != b.shape:
        return [f"{where}: columns/shape differ"]
    errs = []
    for c in a.columns:
        if c.lower() in PROVENANCE_KEYS:
            continue
        if a[c].dtype.kind in "fciub" and b[c].dtype.kind in "fciub":
            e = _num_equal(a[c].to_numpy(float), b[c].to_numpy(float), f"{where}:{c}", notes)
        else:
            e = None if a[c].astype(str).equals(b[c].astype(str)) else f"{where}:{c}: text differs"
        if e:
            errs.append(e)
    return errs


ROOTS = []  # the two results roots, replaced by "<results>" in strings


TOP = []  # top-level entries of the results trees (dataset dirs): a path to one of them in any root counts


def _unroot(text):
    for r in ROOTS:
        text = text.replace(r, "<results>")
    if TOP:  # also a copy of a results tree made elsewhere (SLURM_TEST_LOCAL_RESULTS)
        text = re.sub(r"/[^\s\"']*/(?=(?:%s)/)" % "|".join(map(re.escape, TOP)), "<results>/", text)
    return text


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if str(k).lower() not in PROVENANCE_KEYS}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    if isinstance(obj, str):
        return _unroot(obj)
    return obj


def _json_equal(a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(a, b, rel_tol=RTOL, abs_tol=ATOL) or (math.isnan(a) and math.isnan(b))
        except TypeError:
            return False
    return a == b


def compare_json(fa, fb, where, notes):
    a, b = _strip(json.loads(fa.read_text())), _strip(json.loads(fb.read_text()))
    return [] if _json_equal(a, b) else [f"{where}: JSON content differs"]


def compare_text(fa, fb, where, notes):
    return [] if _unroot(fa.read_text()) == _unroot(fb.read_text()) else [f"{where}: text differs"]


def files(root):
    return {p.relative_to(root) for p in root.rglob("*")
            if p.is_file() and not (set(p.relative_to(root).parts[:-1]) & SKIP_DIRS)}


def main(argv):
    ra, rb = Path(argv[1]), Path(argv[2])
    ROOTS.extend(sorted({str(ra), str(ra.resolve()), str(rb), str(rb.resolve())}, key=len, reverse=True))
    TOP.extend(sorted(p.name for p in ra.iterdir() if p.is_dir() and p.name not in SKIP_DIRS))
    fa, fb = files(ra), files(rb)
    errs, notes, counts = [], [], {}
    if fa != fb:
        errs.append(f"file sets differ: only local {sorted(map(str, fa - fb))[:10]}, "
                    f"only slurm {sorted(map(str, fb - fa))[:10]}")
    for rel in sorted(fa & fb):
        kind = {".nc": compare_nc, ".csv": compare_table, ".tsv": compare_table, ".json": compare_json,
                ".md": compare_text, ".tex": compare_text, ".txt": compare_text}.get(rel.suffix)
        counts[rel.suffix or "(none)"] = counts.get(rel.suffix or "(none)", 0) + 1
        if kind is None:
            continue
        try:
            errs += kind(ra / rel, rb / rel, str(rel), notes)
        except Exception as e:  # unreadable file: a difference, not a crash
            errs.append(f"{rel}: could not compare ({type(e).__name__}: {e})")
    print(f"compare: {len(fa & fb)} files in both trees by type {dict(sorted(counts.items()))}")
    for n in notes:
        print("compare: note:", n)
    for e in errs:
        print("compare: DIFF:", e)
    print("compare:", "IDENTICAL (data variables and tables; provenance attributes ignored)"
          if not errs and not notes else "EQUAL within tolerance" if not errs else f"{len(errs)} differences")
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
