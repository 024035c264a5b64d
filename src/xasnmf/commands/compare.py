"""CLI: ``kmeans``, ``compare`` (Table I), ``peak``, ``classes`` (Table II) and ``domain-peaks`` (Table III)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..errors import InputError
from . import guard_outputs, siblings


def _load(path: str, *, needed: tuple[str, ...], made_by: str):
    import xarray as xr

    p = Path(path)
    if not p.exists():
        raise InputError("file not found", source=str(p), fix=f"check the path; such files are made by {made_by}")
    try:
        ds = xr.load_dataset(p)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a user problem
        raise InputError(f"cannot be read as NetCDF ({type(exc).__name__}: {exc})", source=str(p),
                         fix=f"the file may be truncated; re-create it with {made_by}") from None
    missing = [v for v in needed if v not in ds]
    if missing:
        raise InputError(f"lacks variable(s) {missing} (has {sorted(ds.data_vars)})", source=str(p),
                         fix=f"give a file made by {made_by}")
    return ds


def _positive_int(name):
    def conv(s):
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {s!r}") from None
        if v < 1:
            raise argparse.ArgumentTypeError(f"{name} must be >= 1, got {v}")
        return v
    return conv


def _cmd_kmeans(args) -> int:
    from ..cube import append_history, open_cube
    from ..kmeans import kmeans_dataset
    from ..provenance import write_netcdf

    guard_outputs([args.output], [args.cube])
    cube = open_cube(args.cube)
    ds = kmeans_dataset(cube, args.k, seed=args.seed, n_init=args.n_init, max_iter=args.max_iter,
                        source=args.cube)
    ds.attrs["source"] = str(args.cube)
    append_history(ds, f"xasnmf kmeans {args.cube} --k {args.k} --seed {args.seed} --n-init {args.n_init}")
    write_netcdf(ds, args.output)
    sizes = ", ".join(f"C{i + 1}={int(s)}" for i, s in enumerate(ds["size"].values))
    print(f"k-means k={args.k}: {sizes}; wrote {args.output}")
    return 0


def _cmd_compare(args) -> int:
    from ..compare import cross_correlation_table, table_to_markdown, write_table

    guard_outputs(siblings(args.output, (".md", ".tex", ".nc")), [args.fit, args.kmeans])
    fit = _load(args.fit, needed=("W",), made_by="`xasnmf fit`")
    km = _load(args.kmeans, needed=("domain",), made_by="`xasnmf kmeans`")
    table = cross_correlation_table(fit, km, match=not args.no_match, source_fit=args.fit, source_other=args.kmeans)
    paths = write_table(table, args.output, row_dim="onmf", col_dim="kmeans",
                        attrs={"fit_file": str(args.fit), "kmeans_file": str(args.kmeans),
                               "hungarian_matched": int(not args.no_match)})
    print(table_to_markdown(table), end="")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _cmd_peak(args) -> int:
    from ..cube import append_history, open_cube
    from ..peak import peak_dataset
    from ..provenance import write_netcdf

    guard_outputs([args.output], [args.cube])
    cube = open_cube(args.cube)
    ds = peak_dataset(cube, window=args.window, energy_range=args.energy_range, offset=args.offset,
                      source=args.cube)
    ds.attrs["source"] = str(args.cube)
    append_history(ds, f"xasnmf peak {args.cube} --window {args.window}")
    write_netcdf(ds, args.output)
    pe = ds["peak_energy"].values
    fin = pe[np.isfinite(pe)]
    rng = f"{fin.min():.3f}-{fin.max():.3f} eV (median {np.median(fin):.3f})" if fin.size else "none fitted"
    print(f"peak: {ds.attrs['n_fitted']} of {ds.attrs['n_valid']} valid pixels fitted, PTE {rng}; "
          f"flags {ds.attrs['flag_counts']}; wrote {args.output}")
    return 0


def _cmd_classes(args) -> int:
    from ..classes import classes_dataset, classes_table, threshold_classes
    from ..compare import table_to_markdown, write_table

    guard_outputs(siblings(args.output, (".md", ".tex", ".nc")), [args.pte, args.fit])
    pte = _load(args.pte, needed=("peak_energy",), made_by="`xasnmf peak`")
    fit = _load(args.fit, needed=("W",), made_by="`xasnmf fit`")
    W = fit["W"].transpose(fit["W"].dims[0], "y", "x").values if set(fit["W"].dims[1:]) == {"y", "x"} else None
    if W is None:
        raise InputError(f"W has dims {fit['W'].dims}, expected (component, y, x)", source=args.fit)
    P = pte["peak_energy"].transpose("y", "x").values
    if P.shape != W.shape[1:]:
        raise InputError(f"grids differ: {args.pte} has {P.shape} pixels (y, x), {args.fit} has {W.shape[1:]}",
                         source=args.fit, fix="make the PTE map and the fit from the same cube")
    res = threshold_classes(P, W, n_grid=args.grid, distinct=args.distinct)
    table = classes_table(res)
    extra = {"pte_file": str(args.pte), "fit_file": str(args.fit)}
    for key in ("peak_window_eV", "peak_offset_model", "peak_energy_range_eV"):
        if key in pte.attrs:
            extra[key] = pte.attrs[key]
    nc = classes_dataset(res, y=pte["y"].variable, x=pte["x"].variable, attrs=extra)
    nc["peak_energy"] = pte["peak_energy"]
    paths = write_table(table, args.output, nc_dataset=nc)
    print(table_to_markdown(table), end="")
    print(f"E_high = {res.e_high:.3f} eV, E_low = {res.e_low:.3f} eV; wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _cmd_domain_peaks(args) -> int:
    from ..classes import domain_peaks, domain_peaks_csv, domain_peaks_latex, domain_peaks_markdown
    from ..provenance import write_text_atomic

    guard_outputs(siblings(args.output, (".md", ".tex")), [args.fit, args.classes])
    fit = _load(args.fit, needed=("spectrum",), made_by="`xasnmf fit`")
    cls = _load(args.classes, needed=("best_domain",), made_by="`xasnmf classes`")
    for key in ("e_high", "e_low"):
        if key not in cls.attrs:
            raise InputError(f"has no attribute {key!r}", source=args.classes, fix="re-run `xasnmf classes`")
    window = args.window if args.window is not None else float(cls.attrs.get("peak_window_eV", 0.5))
    erange = args.energy_range
    if erange is None and "peak_energy_range_eV" in cls.attrs:
        erange = tuple(float(v) for v in np.atleast_1d(cls.attrs["peak_energy_range_eV"]))
    offset = bool(int(cls.attrs.get("peak_offset_model", 0))) if not args.offset else True
    spec = fit["spectrum"]
    if spec.ndim != 2 or "energy" not in spec.dims:
        raise InputError(f"spectrum has dims {spec.dims}, expected (component, energy)", source=args.fit)
    spec = spec.transpose(..., "energy")
    r = spec.shape[0]
    if cls.sizes.get("domain", r) != r:
        raise InputError(f"classes were computed for {cls.sizes['domain']} domains, the fit has {r}",
                         source=args.classes, fix="run `xasnmf classes` with this fit")
    dp = domain_peaks(fit["energy"].values, spec.values, e_high=float(cls.attrs["e_high"]),
                      e_low=float(cls.attrs["e_low"]), best=cls["best_domain"].values - 1, window=window,
                      energy_range=erange, offset=offset)
    out = Path(args.output)
    stem = out.with_suffix("")
    write_text_atomic(domain_peaks_csv(dp), out)
    write_text_atomic(domain_peaks_markdown(dp), stem.with_suffix(".md"))
    write_text_atomic(domain_peaks_latex(dp), stem.with_suffix(".tex"))
    print(domain_peaks_markdown(dp), end="")
    print(f"wrote {out}, {stem.with_suffix('.md')}, {stem.with_suffix('.tex')}")
    return 0


def register(subparsers) -> None:
    """Add the ``kmeans``, ``compare``, ``peak``, ``classes`` and ``domain-peaks`` subcommands."""
    p = subparsers.add_parser("kmeans", help="k-means domains of a preprocessed cube (section II.E)",
                              description="Cluster the normalized spectra of the valid pixels by k-means.")
    p.add_argument("cube", metavar="PRE.nc", help="preprocessed canonical cube")
    p.add_argument("--k", type=_positive_int("--k"), required=True, help="number of clusters (e.g. the ONMF rank)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--n-init", type=_positive_int("--n-init"), default=10, help="k-means++ restarts (default 10)")
    p.add_argument("--max-iter", type=_positive_int("--max-iter"), default=300, help="iterations per run")
    p.add_argument("-o", "--output", required=True, metavar="KM.nc")
    p.set_defaults(func=_cmd_kmeans)

    p = subparsers.add_parser("compare", help="Table I: cosines of ONMF domains and k-means clusters",
                              description="Cross-correlation (Eq. 15 as a cosine) of FIT.nc W and KM.nc domain maps; "
                                          "clusters ordered by the Hungarian algorithm. Writes TABLE.csv and "
                                          ".md/.tex/.nc beside it.")
    p.add_argument("fit", metavar="FIT.nc")
    p.add_argument("kmeans", metavar="KM.nc")
    p.add_argument("--no-match", action="store_true", help="keep the k-means cluster order")
    p.add_argument("-o", "--output", required=True, metavar="TABLE.csv")
    p.set_defaults(func=_cmd_compare)

    p = subparsers.add_parser("peak", help="peak-top-energy map (Gaussian fit of the white line per pixel)",
                              description="Per-pixel Gaussian fit around the maximum of each normalized spectrum.")
    p.add_argument("cube", metavar="CUBE.nc")
    p.add_argument("--window", type=float, default=0.5, help="fit half-width in eV around the maximum (default 0.5)")
    p.add_argument("--energy-range", type=float, nargs=2, metavar=("EMIN", "EMAX"), default=None,
                   help="search the maximum only in this energy range (eV)")
    p.add_argument("--offset", action="store_true", help="fit a constant offset too")
    p.add_argument("-o", "--output", required=True, metavar="PTE.nc")
    p.set_defaults(func=_cmd_peak)

    p = subparsers.add_parser("classes", help="Table II: PTE classes D1-D3 vs ONMF domains",
                              description="Thresholds E_high > E_low maximizing the cosine of D_high / D_low with "
                                          "their best ONMF domain; writes TABLE2.csv/.md/.tex and the class maps .nc.")
    p.add_argument("pte", metavar="PTE.nc")
    p.add_argument("fit", metavar="FIT.nc")
    p.add_argument("--grid", type=_positive_int("--grid"), default=200, help="candidate thresholds (PTE quantiles)")
    p.add_argument("--distinct", action="store_true",
                   help="require D1 and D3 to match different ONMF domains (a large domain otherwise can match both)")
    p.add_argument("-o", "--output", required=True, metavar="TABLE2.csv")
    p.set_defaults(func=_cmd_classes)

    p = subparsers.add_parser("domain-peaks", help="Table III: peak-top energy of each ONMF domain spectrum",
                              description="Peak-top energies of FIT.nc spectra and whether the domains matched to "
                                          "D1/D2/D3 lie on the expected side of the thresholds.")
    p.add_argument("fit", metavar="FIT.nc")
    p.add_argument("--classes", required=True, metavar="CLASSES.nc", help="the .nc written by `xasnmf classes`")
    p.add_argument("--window", type=float, default=None, help="fit half-width in eV (default: that of the PTE map)")
    p.add_argument("--energy-range", type=float, nargs=2, metavar=("EMIN", "EMAX"), default=None)
    p.add_argument("--offset", action="store_true")
    p.add_argument("-o", "--output", required=True, metavar="TABLE3.csv")
    p.set_defaults(func=_cmd_domain_peaks)
