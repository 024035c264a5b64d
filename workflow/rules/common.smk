# Shared configuration handling and input functions (no logic in the rules themselves).

import os
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

REPO = Path(workflow.basedir)
RESULTS = config["results"]


def _in_ci():
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def repo_path(path):
    """A config path: absolute as given, else relative to the repository root."""
    p = Path(os.path.expandvars(os.path.expanduser(str(path))))
    return p if p.is_absolute() else REPO / p


def _dataset_inputs_present(name, ds):
    """Check an imported dataset's files; a missing optional dataset is left out with a notice."""
    if ds["source"] != "import":
        return True
    imp = ds["import"]
    needed = [imp["path"], *(imp[k] for k in ("i0", "energies") if imp.get(k) and not str(imp[k]).startswith("region:"))]
    if ds.get("preprocess", {}).get("mask"):
        needed.append(ds["preprocess"]["mask"])
    ref = ds.get("preprocess", {}).get("reference")
    if ref and ref not in ("mean", "cube") and not str(ref).startswith("region:"):
        needed.append(ref)
    missing = [str(repo_path(p)) for p in needed if not repo_path(p).exists()]
    if not missing:
        return True
    where = f" Data source: {ds['provenance']}." if ds.get("provenance") else ""
    msg = (f"dataset '{name}': input not found: {', '.join(missing)}.{where} "
           f"Point the config at it (datasets.{name}.import), or remove the dataset.")
    if _in_ci() or ds.get("required", True):
        raise WorkflowError(f"{msg} (missing input is an error when CI=true or the dataset is required)")
    logger.warning(f"NOTICE: {msg} Leaving it out; the other datasets run.")
    return False


DATASETS = {name: ds for name, ds in config["datasets"].items() if _dataset_inputs_present(name, ds)}
SYNTHETIC = sorted(n for n, d in DATASETS.items() if d["source"] == "synthetic")
IMPORTED = sorted(n for n, d in DATASETS.items() if d["source"] == "import")
NONE_MATCH = "(?!x)x"  # a regex that matches nothing, for an empty dataset group


def _alternatives(names):
    return "|".join(names) if names else NONE_MATCH


wildcard_constraints:
    dataset=_alternatives(sorted(DATASETS)),
    rank=r"\d+",
    seed=r"\d+",
    fold=r"\d+",


def dcfg(wildcards):
    return DATASETS[wildcards.dataset]


def bcv_cfg(name):
    return DATASETS[name]["bcv"]


def bcv_seeds(name):
    """Seeds of the BCV trials; the SVD baseline is deterministic and needs one."""
    b = bcv_cfg(name)
    return [0] if b["method"] == "svd" else list(range(b["seeds"]))


def dataset_bcv_job_files(name):
    b = bcv_cfg(name)
    return expand(f"{RESULTS}/{name}/bcv/rank-{{rank}}/seed-{{seed}}/fold-{{fold}}.nc",
                  rank=b["ranks"], seed=bcv_seeds(name), fold=range(b["folds"]))


def bcv_job_files(wildcards):
    return dataset_bcv_job_files(wildcards.dataset)


def raw_cube_input(wildcards):
    return f"{RESULTS}/{wildcards.dataset}/cube.nc"


def synth_truth(wildcards):
    return f"{RESULTS}/{wildcards.dataset}/cube.nc"


def import_sources(wildcards):
    """The files an import reads (so Snakemake reruns it when they change)."""
    imp = DATASETS[wildcards.dataset]["import"]
    files = [repo_path(imp["path"])]
    for key in ("i0", "energies"):
        if imp.get(key) and not str(imp[key]).startswith("region:"):
            files.append(repo_path(imp[key]))
    return [str(f) for f in files]


def import_params(wildcards):
    imp = dict(DATASETS[wildcards.dataset]["import"])
    imp["path"] = str(repo_path(imp["path"]))
    for key in ("i0", "energies"):
        if imp.get(key) and not str(imp[key]).startswith("region:"):
            imp[key] = str(repo_path(imp[key]))
    return imp


def preprocess_params(wildcards):
    pre = dict(DATASETS[wildcards.dataset].get("preprocess", {}))
    for key in ("mask", "reference"):
        v = pre.get(key)
        if v and v not in ("mean", "cube") and not str(v).startswith("region:"):
            pre[key] = str(repo_path(v))
    return pre


def pinned_rank(wildcards):
    r = DATASETS[wildcards.dataset]["fit"].get("rank", "auto")
    return None if r == "auto" else int(r)


def mem_mb_cube(wildcards, input, attempt):
    """Memory for a job that holds one cube a few times: grows with its size and with each retry."""
    size_mb = sum(os.path.getsize(f) for f in input if os.path.exists(f)) / 2**20
    return int(max(1000, 12 * size_mb + 500) * attempt)


def runtime_min(wildcards, attempt):
    return 30 * attempt


def all_outputs(wildcards):
    """Final targets. The BCV trial files are listed too, so a deleted trial is recomputed (and with it
    everything that depends on it) instead of being left missing behind an up-to-date bcv.nc."""
    out = []
    for name, ds in DATASETS.items():
        base = f"{RESULTS}/{name}"
        out.extend(dataset_bcv_job_files(name))
        out.extend([f"{base}/onmf.nc", f"{base}/bcv.nc", f"{base}/rank.json",
                f"{base}/tables/table1_kmeans.csv", f"{base}/tables/table2_classes.csv",
                f"{base}/tables/table3_domain_peaks.csv",
                f"{base}/figures/bcv_domains.png", f"{base}/figures/kmeans.png",
                f"{base}/figures/peak_energy_map.png", f"{base}/figures/classes.png"])
        if ds["source"] == "synthetic":
            out.extend([f"{base}/score.json", f"{base}/figures/truth.png"])
    return out


def synthetic_params(wildcards):
    return dict(DATASETS[wildcards.dataset]["synthetic"])


def bcv_params(wildcards):
    return dict(bcv_cfg(wildcards.dataset))


def fit_params(wildcards):
    return dict(DATASETS[wildcards.dataset]["fit"])


def compare_params(wildcards):
    return dict(DATASETS[wildcards.dataset].get("compare", {}))


def fig1_input(wildcards):
    """Peak-top-energy map for Fig. 1: the whole stack when an ROI is analysed (the ROI is drawn on it),
    else the preprocessed map, whose masked pixels (no edge, no signal) carry no fake peak energies."""
    if DATASETS[wildcards.dataset].get("preprocess", {}).get("roi"):
        return f"{RESULTS}/{wildcards.dataset}/peak/cube.nc"
    return f"{RESULTS}/{wildcards.dataset}/peak/preprocessed.nc"


def figure_params(wildcards):
    pre = DATASETS[wildcards.dataset].get("preprocess", {})
    return {"roi": pre.get("roi"), "dataset": wildcards.dataset}
