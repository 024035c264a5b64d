"""``xasnmf synth`` (synthetic ground truth) and ``xasnmf score`` (fit / BCV against it)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import time
from pathlib import Path

from ..errors import InputError
from . import guard_outputs


def _erange(text: str) -> tuple[float, float]:
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FIRST:LAST in eV (e.g. 7700:7740), got {text!r}") from None


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "synth", help="synthetic ground-truth cube (the paper's 8-domain experiment)",
        description="Write a canonical cube X0 = W_g H_g^T (+ noise, thickness) with its ground truth "
                    "(truth_W, truth_H, truth_label), after Tanimoto et al. 2020 sec. II.D.")
    p.add_argument("-o", "--output", required=True, metavar="SYNTH.nc", help="output NetCDF file")
    p.add_argument("--shape", nargs=2, type=int, default=(400, 400), metavar=("NY", "NX"),
                   help="image size in pixels (default 400 400)")
    p.add_argument("--domains", type=int, default=8, help="number of domains (default 8)")
    p.add_argument("--energies", type=int, default=100, help="number of energies (default 100)")
    p.add_argument("--erange", type=_erange, default=(7700.0, 7740.0), metavar="FIRST:LAST",
                   help="energy window in eV, both ends included (default 7700:7740)")
    p.add_argument("--noise", type=float, default=0.01, metavar="SIGMA",
                   help="Gaussian noise standard deviation, in units of the edge step (default 0.01)")
    p.add_argument("--thickness-variation", type=float, default=0.0, metavar="T",
                   help="std of log thickness of a smooth per-pixel thickness field (default 0)")
    p.add_argument("--overlap", type=float, default=0.0, metavar="WIDTH",
                   help="soft domain boundaries: Gaussian blur sigma in pixels (default 0: partition)")
    p.add_argument("--min-fraction", type=float, default=0.02,
                   help="smallest domain area fraction (default 0.02)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=run_synth)

    s = subparsers.add_parser(
        "score", help="score a fit (and a BCV rank choice) against synthetic ground truth",
        description="Match fitted domains to the true ones (Hungarian on cosine), report per-domain cosine, "
                    "spectrum RMSE and unmatched components; with --bcv, whether the selected rank is right.")
    s.add_argument("fit", nargs="?", metavar="FIT.nc", help="fit file (W, spectrum) from `xasnmf fit`")
    s.add_argument("--truth", required=True, metavar="SYNTH.nc", help="truth file from `xasnmf synth`")
    s.add_argument("--bcv", metavar="BCV.nc", help="BCV file from `xasnmf bcv` / `bcv-collect`")
    s.add_argument("--threshold", type=float, default=0.95, help="cosine every domain must reach (default 0.95)")
    s.add_argument("--json", metavar="OUT.json", help="write the full score as JSON")
    s.add_argument("--csv", metavar="OUT.csv", help="write one row per domain as CSV")
    s.add_argument("--strict", action="store_true",
                   help="exit with status 1 when the fit fails the threshold or BCV picks the wrong rank")
    s.set_defaults(func=run_score)


def run_synth(args) -> int:
    from ..provenance import write_netcdf
    from ..synthetic import synthesize

    t0 = time.perf_counter()
    ds = synthesize(shape=tuple(args.shape), n_domains=args.domains, n_energies=args.energies,
                    erange=tuple(args.erange), noise=args.noise, thickness_variation=args.thickness_variation,
                    overlap=args.overlap, seed=args.seed, min_fraction=args.min_fraction)
    guard_outputs([args.output], [])
    out = write_netcdf(ds, args.output)
    fr = ds["truth_fraction"].values
    sv = ds.attrs["truth_signal_singular_values"]
    print(f"wrote {out}: {ds.sizes['y']} x {ds.sizes['x']} px, {ds.sizes['energy']} energies, "
          f"{ds.sizes['component']} domains (area {fr.min():.3f}-{fr.max():.3f}), noise {args.noise:g}; "
          f"smallest signal singular value {min(sv):.3g} vs noise edge "
          f"{ds.attrs['truth_noise_singular_value_edge']:.3g}; {time.perf_counter() - t0:.1f} s")
    return 0


def _open(path: str, what: str):
    import xarray as xr

    p = Path(path)
    if not p.exists():
        raise InputError("file not found", source=str(p), fix=f"check the path of the {what} file")
    try:
        return xr.load_dataset(p)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a user-facing problem
        raise InputError(f"cannot be read as NetCDF ({type(exc).__name__}: {exc})", source=str(p),
                         fix=f"re-create the {what} file") from None


def run_score(args) -> int:
    from ..provenance import write_text_atomic
    from ..score import format_summary, score_bcv, score_fit, score_rows

    if args.fit is None and args.bcv is None:
        raise InputError("nothing to score: give FIT.nc and/or --bcv BCV.nc", source="FIT.nc",
                         fix="e.g. `xasnmf score FIT.nc --truth SYNTH.nc --bcv BCV.nc`")
    guard_outputs([args.json, args.csv], [args.truth, args.fit, args.bcv])
    truth = _open(args.truth, "truth (xasnmf synth)")
    if "truth_W" not in truth:
        raise InputError("has no variable 'truth_W': not a synthetic ground-truth file", source=args.truth,
                         fix="make it with `xasnmf synth -o SYNTH.nc`")
    result: dict = {"truth": str(args.truth)}
    if args.fit is not None:
        result["fit"] = score_fit(_open(args.fit, "fit"), truth, threshold=args.threshold, fit_source=args.fit,
                                  truth_source=args.truth)
        result["fit"]["file"] = str(args.fit)
    if args.bcv is not None:
        result["bcv"] = score_bcv(_open(args.bcv, "BCV"), truth, bcv_source=args.bcv)
        result["bcv"]["file"] = str(args.bcv)
    print(format_summary(result))
    if args.json:
        write_text_atomic(json.dumps(result, indent=2, sort_keys=True) + "\n", args.json)
    if args.csv:
        if "fit" not in result:
            raise InputError("--csv needs a FIT.nc (it lists the fitted domains)", source="--csv")
        rows = score_rows(result["fit"])
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        for row in rows:
            w.writerow({k: ("" if v is None else v) for k, v in row.items()})
        write_text_atomic(buf.getvalue(), args.csv)
    if args.strict:
        bad = ("fit" in result and not result["fit"]["passed"]) or (
            "bcv" in result and not result["bcv"]["selected_correct"])
        return 1 if bad else 0
    return 0
