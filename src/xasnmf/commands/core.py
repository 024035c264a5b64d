"""CLI: ``fit``, ``bcv``, ``bcv-job``, ``bcv-collect``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError
from . import guard_outputs


def _int_at_least(name: str, low: int):
    def conv(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"{name} must be >= {low}, got {v}")
        return v
    return conv


def _bcv_options(p: argparse.ArgumentParser, *, grid: bool) -> None:
    if grid:
        p.add_argument("--ranks", default="4-9", help="ranks to test, e.g. 4-9 or 2,3,5 (default 4-9)")
        p.add_argument("--seeds", type=_int_at_least("--seeds", 1), default=5,
                       help="number of seeds 0..S-1 (default 5)")
    p.add_argument("--folds", type=_int_at_least("--folds", 2), default=20, help="number of folds F (default 20)")
    p.add_argument("--method", choices=("onmf", "svd"), default="svd",
                   help="model fitted to X_D: modified ONMF (paper) or truncated SVD (default svd, see README)")
    p.add_argument("--nuisance", choices=("none", "offset", "offset+scale"), default="offset+scale",
                   help="known nuisance spectra projected out before the split: per-pixel offset (constant) "
                        "and scale (mean spectrum) left by endpoint normalization (default offset+scale; "
                        "paper: none)")
    p.add_argument("--init", choices=("random", "kmeans"), default="random", help="ONMF init (default random)")
    p.add_argument("--restarts", type=int, default=1, help="ONMF starts per trial (default 1, paper)")
    p.add_argument("--max-iter", type=int, default=500)
    p.add_argument("--tol", type=float, default=1e-5)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")


def _cmd_fit(args) -> int:
    from ..api import fit_cube
    from ..cube import open_cube
    from ..provenance import write_netcdf

    guard_outputs([args.output], [args.cube])
    ds = open_cube(args.cube)
    out = fit_cube(ds, rank=args.rank, n_restarts=args.restarts, init=args.init, seed=args.seed,
                   max_iter=args.max_iter, tol=args.tol, dtype=args.dtype, nuisance=args.nuisance,
                   source=str(args.cube))
    if out.attrs["stop_reason"] == "diverged":  # every restart ended non-finite: nothing worth writing
        from ..errors import InputError

        raise InputError(f"the fit diverged in every restart (objective {out.attrs['objective']}), "
                         "nothing written", source=str(args.cube),
                         fix=f"rescale the absorbance, or run with --dtype float64 (this run: {args.dtype})")
    write_netcdf(out, args.output)
    print(f"rank {out.attrs['rank']}: objective {out.attrs['objective']:.6g} after {out.attrs['n_iter']} "
          f"iterations ({out.attrs['stop_reason']}); wrote {args.output}")
    return 0


def _cmd_bcv(args) -> int:
    from ..api import bcv_cube, parse_ranks
    from ..cube import open_cube
    from ..provenance import write_netcdf

    guard_outputs([args.output], [args.cube])
    ds = open_cube(args.cube)
    out = bcv_cube(ds, ranks=parse_ranks(args.ranks), n_folds=args.folds, seeds=range(args.seeds),
                   method=args.method, nuisance=args.nuisance, init=args.init, n_restarts=args.restarts,
                   max_iter=args.max_iter, tol=args.tol, dtype=args.dtype, source=str(args.cube))
    write_netcdf(out, args.output)
    print(format_bcv(out))
    return 0


def format_bcv(out) -> str:
    lines = [f"BCV ({out.attrs.get('method')}, nuisance={out.attrs.get('nuisance')}):  rank  mean_error  se"]
    for r, m, s in zip(out["rank"].values, out["mean_error"].values, out["se"].values):
        mark = " <- selected" if int(r) == out.attrs["selected_rank"] else ""
        lines.append(f"  {int(r):4d}  {m:.6g}  {s:.3g}{mark}")
    lines.append(f"selected rank {out.attrs['selected_rank']} (argmin); one-SE rank {out.attrs['one_se_rank']}")
    return "\n".join(lines)


def _cmd_bcv_job(args) -> int:
    from ..api import bcv_job
    from ..cube import open_cube
    from ..provenance import write_netcdf

    guard_outputs([args.output], [args.cube])
    ds = open_cube(args.cube)
    out = bcv_job(ds, rank=args.rank, seed=args.seed, fold=args.fold, n_folds=args.folds, method=args.method,
                  nuisance=args.nuisance, init=args.init, n_restarts=args.restarts, max_iter=args.max_iter,
                  tol=args.tol, dtype=args.dtype, source=str(args.cube))
    write_netcdf(out, args.output)
    print(f"rank {args.rank} seed {args.seed} fold {args.fold}: error {float(out['error']):.6g}")
    return 0


def _cmd_bcv_collect(args) -> int:
    import xarray as xr

    from ..api import collect_bcv
    from ..provenance import write_netcdf

    guard_outputs([args.output], args.jobs)
    jobs = []
    for path in args.jobs:
        if not Path(path).exists():
            raise InputError("BCV job file not found", source=str(path))
        try:
            jobs.append(xr.load_dataset(path))
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"cannot be read as NetCDF ({exc})", source=str(path),
                             fix="re-run that bcv-job") from None
    out = collect_bcv(jobs, outlier_rule=args.outlier_rule, outlier_k=args.outlier_k, sources=args.jobs)
    write_netcdf(out, args.output)
    print(format_bcv(out))
    return 0


def register(sub) -> None:
    p = sub.add_parser("fit", help="modified ONMF of a cube at one rank")
    p.add_argument("cube", help="canonical cube (NetCDF)")
    p.add_argument("--rank", type=int, required=True)
    p.add_argument("--restarts", type=int, default=5, help="seeded starts, best kept (default 5, paper)")
    p.add_argument("--init", choices=("random", "kmeans"), default="kmeans",
                   help="initialization (default kmeans; paper: random)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-iter", type=int, default=500)
    p.add_argument("--tol", type=float, default=1e-5)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--nuisance", choices=("none", "offset", "offset+scale"), default="offset+scale",
                   help="per-pixel offset/scale terms projected out of X before the fit (default offset+scale; "
                        "paper: none)")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser("bcv", help="bi-cross-validation over ranks (whole grid in one process)")
    p.add_argument("cube")
    _bcv_options(p, grid=True)
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=_cmd_bcv)

    p = sub.add_parser("bcv-job", help="one (rank, seed, fold) BCV trial")
    p.add_argument("cube")
    p.add_argument("--rank", type=int, required=True)
    p.add_argument("--seed", type=_int_at_least("--seed", 0), required=True)
    p.add_argument("--fold", type=_int_at_least("--fold", 0), required=True)
    _bcv_options(p, grid=False)
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=_cmd_bcv_job)

    p = sub.add_parser("bcv-collect", help="collect bcv-job files into one BCV result")
    p.add_argument("jobs", nargs="+", help="job files from bcv-job")
    p.add_argument("--outlier-rule", choices=("mad", "none"), default="mad")
    p.add_argument("--outlier-k", type=float, default=3.0)
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=_cmd_bcv_collect)
