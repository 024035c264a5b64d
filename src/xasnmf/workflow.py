"""Support for the Snakemake scripts in ``workflow/scripts/``.

Each script is a thin adapter: it builds the ``xasnmf`` command line from the
rule's inputs, outputs and params and runs it in-process through
:func:`run_cli`, or calls a library function directly, inside
:func:`script_context`, which

* sends Python logging, warnings and everything printed to the rule's log file,
* limits BLAS/OpenMP threads to the rule's ``threads`` (recorded in every output
  by :func:`xasnmf.provenance.provenance_attrs`),
* turns a non-zero exit status into an exception, so the job fails and Snakemake
  removes its (temporary-then-renamed, hence never half-written) outputs.

The same scripts run outside Snakemake through the CLI commands they wrap.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence

from .errors import InputError


@contextlib.contextmanager
def script_context(smk):
    """Log to ``smk.log[0]`` (if any) and limit threads to ``smk.threads``."""
    from threadpoolctl import threadpool_limits

    log_path = smk.log[0] if len(smk.log) else None
    stack = contextlib.ExitStack()
    with stack:
        if log_path:
            Path(log_path).parent.mkdir(parents=True, exist_ok=True)
            fh = stack.enter_context(open(log_path, "w"))
            stack.enter_context(contextlib.redirect_stdout(fh))
            stack.enter_context(contextlib.redirect_stderr(fh))
            logging.basicConfig(stream=fh, level=logging.INFO, force=True,
                                format="%(asctime)s %(levelname)s %(message)s")
            logging.captureWarnings(True)
        stack.enter_context(threadpool_limits(int(getattr(smk, "threads", 1) or 1)))
        warnings.simplefilter("default")
        yield


def run_cli(argv: Sequence[Any]) -> None:
    """Run ``xasnmf ARGV`` in-process; raise on a non-zero exit status."""
    from .cli import main

    argv = [str(a) for a in argv]
    print("xasnmf " + " ".join(argv), flush=True)
    rc = main(argv)
    if rc:
        raise SystemExit(f"xasnmf {argv[0]} failed with exit status {rc} (see the message above)")


def option_args(options: dict[str, Any]) -> list[str]:
    """``{"norm": "edge", "min_signal": 5, "sort_energies": True}`` -> ``--norm edge --min-signal 5 --sort-energies``.

    ``None`` and ``False`` values are left out; lists/tuples of two numbers become ``A:B``.
    """
    out: list[str] = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            out.append(flag)
        elif isinstance(value, (list, tuple)):
            out += [flag, ":".join(str(v) for v in value)]
        else:
            out += [flag, str(value)]
    return out


def select_rank(bcv_ds, *, pinned: int | None = None, rule: str = "argmin") -> dict[str, Any]:
    """The rank the workflow uses: ``pinned`` if given, else the BCV choice.

    Parameters
    ----------
    bcv_ds : xarray.Dataset from ``xasnmf bcv`` / ``bcv-collect``
    pinned : int, optional
        A rank fixed in the config (``fit.rank``), which overrides BCV.
    rule : {"argmin", "one_se"}
        ``"argmin"``: the paper's rule; ``"one_se"``: the one-standard-error rank.
    """
    if rule not in ("argmin", "one_se"):
        raise InputError(f"rank rule must be 'argmin' or 'one_se', got {rule!r}", source="fit.rank_rule")
    sel = int(bcv_ds.attrs["selected_rank"])
    one = int(bcv_ds.attrs["one_se_rank"])
    ranks = [int(r) for r in bcv_ds["rank"].values]
    if pinned is not None:
        rank, how = int(pinned), "pinned in config"
    else:
        rank, how = (sel, "BCV argmin (paper)") if rule == "argmin" else (one, "BCV one-SE rule")
    return {"rank": rank, "how": how, "bcv_selected_rank": sel, "bcv_one_se_rank": one, "ranks_tested": ranks,
            "mean_error": [float(v) for v in bcv_ds["mean_error"].values],
            "se": [float(v) for v in bcv_ds["se"].values],
            "method": bcv_ds.attrs.get("method"), "nuisance": bcv_ds.attrs.get("nuisance")}


def read_rank(path: str | Path) -> int:
    """Rank from a ``rank.json`` written by the ``select_rank`` rule."""
    data = json.loads(Path(path).read_text())
    return int(data["rank"])


def in_ci() -> bool:
    import os

    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def main_guard(name: str) -> None:  # pragma: no cover - used only when a script is run by hand
    print(f"{name} is a Snakemake script; outside Snakemake use the `xasnmf` command it wraps", file=sys.stderr)
    sys.exit(2)
