"""The Snakemake workflow: config schema, missing-data handling, rule support functions."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import xarray as xr
import yaml

from xasnmf.workflow import option_args, select_rank

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = shutil.which("snakemake") or str(Path(sys.executable).with_name("snakemake"))


def dry_run(tmp_path, config, env_ci):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    env = dict(os.environ, CI="true" if env_ci else "false")
    return subprocess.run([SNAKEMAKE, "-n", "--quiet", "rules", "--configfile", str(cfg), "--config",
                           f"results={tmp_path / 'results'}", "-d", str(tmp_path / "wd"), "-s",
                           str(ROOT / "Snakefile")],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=180)


def synthetic(**bcv):
    return {"source": "synthetic", "synthetic": {"shape": [10, 12], "domains": 2, "energies": 20},
            "bcv": {"ranks": [1, 2], "folds": 3, "method": "svd", **bcv}}


def missing_import(required=False):
    return {"source": "import", "provenance": "somewhere/PROVENANCE.md", "required": required,
            "import": {"path": "/nonexistent/stack.hdr", "i0": "/nonexistent/i0.xsp"},
            "bcv": {"ranks": [2]}}


def test_schema_rejects_a_bad_value_with_a_readable_message(tmp_path):
    r = dry_run(tmp_path, {"datasets": {"s": synthetic(method="pca")}}, env_ci=False)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "pca" in out and "method" in out and "is not one of" in out, out[-2000:]


def test_missing_optional_dataset_is_left_out_with_a_notice(tmp_path):
    r = dry_run(tmp_path, {"datasets": {"s": synthetic(), "real": missing_import()}}, env_ci=False)
    assert r.returncode == 0, r.stderr[-3000:]
    text = r.stdout + r.stderr
    assert "NOTICE" in text and "/nonexistent/stack.hdr" in text and "somewhere/PROVENANCE.md" in text
    assert "fit_bcv_fold" in text  # the synthetic dataset still runs


def test_missing_file_of_a_required_dataset_is_an_error(tmp_path):
    cfg = missing_import(required=True)
    del cfg["required"]  # the default: a user's own dataset
    r = dry_run(tmp_path, {"datasets": {"s": synthetic(), "mine": cfg}}, env_ci=False)
    assert r.returncode != 0
    assert "/nonexistent/stack.hdr" in r.stdout + r.stderr


def test_missing_dataset_is_an_error_in_ci(tmp_path):
    r = dry_run(tmp_path, {"datasets": {"s": synthetic(), "real": missing_import()}}, env_ci=True)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "/nonexistent/stack.hdr" in out and "CI=true" in out


def test_svd_bcv_runs_one_seed_onmf_all(tmp_path):
    r = dry_run(tmp_path, {"datasets": {"a": synthetic(), "b": synthetic(method="onmf", seeds=3)}}, env_ci=False)
    assert r.returncode == 0, r.stderr[-3000:]
    counts = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    # a: 2 ranks x 1 seed x 3 folds; b: 2 ranks x 3 seeds x 3 folds
    assert counts["fit_bcv_fold"] == 2 * 3 + 2 * 3 * 3


def test_option_args():
    assert option_args({"norm": "edge", "min_signal": 5, "pre": [700.0, 705.0], "sort_energies": True,
                        "mask": None, "flag": False}) == ["--norm", "edge", "--min-signal", "5", "--pre",
                                                         "700.0:705.0", "--sort-energies"]


def test_select_rank_pinned_argmin_and_one_se():
    ds = xr.Dataset({"mean_error": ("rank", [3.0, 2.0, 1.95]), "se": ("rank", [0.1, 0.1, 0.1])},
                    coords={"rank": [2, 3, 4]}, attrs={"selected_rank": 4, "one_se_rank": 3, "method": "svd"})
    assert select_rank(ds)["rank"] == 4
    assert select_rank(ds, rule="one_se")["rank"] == 3
    pinned = select_rank(ds, pinned=7)
    assert pinned["rank"] == 7 and pinned["bcv_selected_rank"] == 4 and "pinned" in pinned["how"]
