"""``xasnmf import``, ``xasnmf info`` and ``xasnmf preprocess``.

Usage::

    xasnmf import SRC -o CUBE.nc [--format sdf|tiff|netcdf|npy] [--energies FILE]
                  [--i0 FILE|region:Y0:Y1,X0:X1] [--region K] [--var NAME --dims y,x,energy]
                  [--sort-energies] [--drop-duplicate-energies]
    xasnmf info FILE
    xasnmf preprocess CUBE.nc -o PRE.nc [--roi Y0:Y1,X0:X1] [--bin K] [--erange E0:E1]
                  [--norm edge|preedge-area|preedge-peak|none] [--pre E0:E1] [--post E2:E3]
                  [--edge E0:E1] [--baseline mean|line] [--min-step-fraction F] [--min-signal K]
                  [--reference FILE|region:Y0:Y1,X0:X1|mean] [--mask FILE]

A multi-region SDF stack imported without ``--region`` gives ``NAME_r0.nc``,
``NAME_r1.nc``, ... (from ``-o NAME.nc``).  Every output is written through a
temporary name and renamed, with its QC record beside it as ``NAME.qc.json``;
an output path equal to an input is refused.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..errors import InputError
from . import guard_outputs


def _qc_json_path(out: Path) -> Path:
    return out.with_name(out.stem + ".qc.json")


def _check_output(out: Path, inputs: list[Path]) -> None:
    guard_outputs([out, _qc_json_path(out)], inputs)


def _write(ds, out: Path) -> None:
    from ..provenance import write_netcdf, write_text_atomic
    from ..qc import qc_json

    write_netcdf(ds, out)
    write_text_atomic(qc_json(ds), _qc_json_path(out))


def _cmd_import(args) -> int:
    from ..io import import_stack
    from ..io.i0 import parse_i0

    src = Path(args.src)
    out = Path(args.output)
    i0 = parse_i0(args.i0)
    inputs = [src] + ([Path(args.energies)] if args.energies else []) + \
             ([Path(i0.path)] if i0 is not None and i0.kind == "file" else [])
    _check_output(out, inputs)
    res = import_stack(src, format=args.format, energies=args.energies, i0=i0, region=args.region,
                       var=args.var, dims=args.dims, sort_energies=args.sort_energies,
                       drop_duplicate_energies=args.drop_duplicate_energies)
    if isinstance(res, list):
        paths = [out.with_name(f"{out.stem}_r{k}{out.suffix or '.nc'}") for k in range(len(res))]
        for p in paths:
            _check_output(p, inputs)
        for ds, p in zip(res, paths):
            _write(ds, p)
            print(f"wrote {p} {tuple(ds['absorbance'].shape)}")
    else:
        _write(res, out)
        print(f"wrote {out} {tuple(res['absorbance'].shape)}")
    return 0


def _steps_text(e: np.ndarray) -> str:
    d = np.diff(e)
    if not d.size:
        return "single energy"
    r = np.round(d, 3)
    segs = []
    start = 0
    for i in range(1, r.size + 1):
        if i == r.size or r[i] != r[start]:
            segs.append(f"{r[start]:g} eV x{i - start}")
            start = i
    if len(segs) > 8:
        return f"min {d.min():.4g}, max {d.max():.4g} eV ({len(segs)} runs of equal steps)"
    return ", ".join(segs)


def _cmd_info(args) -> int:
    path = Path(args.file)
    if path.suffix.lower() == ".hdr":
        from ..io.sdf import read_header

        h = read_header(path)
        print(f"{path}: ALS/CLS SDF stack header ({h.scan_type})")
        print(f"regions: {h.n_regions}")
        for k, (y, x) in enumerate(h.regions):
            print(f"  region {k}: {y.size} x {x.size} pixels (y, x), y {y.min():g}..{y.max():g}, "
                  f"x {x.min():g}..{x.max():g} {h.xy_units}")
        e = h.energy
        print(f"energies: {e.size}, {e.min():.3f}..{e.max():.3f} eV; steps: {_steps_text(e)}")
        print(f"channels: {len(h.channels)} ({', '.join(h.channels)})")
        return 0
    from ..cube import open_cube
    from ..qc import summarize_qc

    ds = open_cube(path)
    ny, nx, ne = ds["absorbance"].shape
    e = np.asarray(ds["energy"].values)
    a = ds["absorbance"].attrs
    print(f"{path}: {ds.attrs.get('title', '')}")
    print(f"shape: {ny} x {nx} pixels (y, x) x {ne} energies")
    print(f"y: {float(ds['y'].min()):g}..{float(ds['y'].max()):g} {ds['y'].attrs.get('units', '')}; "
          f"x: {float(ds['x'].min()):g}..{float(ds['x'].max()):g} {ds['x'].attrs.get('units', '')}")
    print(f"energy: {e.min():.3f}..{e.max():.3f} eV; steps: {_steps_text(e)}")
    if "sdf_n_regions" in ds.attrs:
        print(f"region: {ds.attrs.get('sdf_region')} of {ds.attrs['sdf_n_regions']} in the source header")
    else:
        print("regions: 1")
    print(f"normalized: {int(a.get('normalized', 0))}" + (f" ({a['norm_rule']})" if a.get("norm_rule") else ""))
    print(f"reference: {'yes' if 'reference' in ds else 'no'}")
    print(summarize_qc(ds))
    return 0


def _cmd_preprocess(args) -> int:
    from ..cube import open_cube
    from ..preprocess import preprocess

    src = Path(args.cube)
    out = Path(args.output)
    inputs = [src] + [Path(p) for p in (args.mask,) if p]
    if args.reference and args.reference != "mean" and not args.reference.startswith("region:"):
        inputs.append(Path(args.reference))
    _check_output(out, inputs)
    ds = open_cube(src)
    res = preprocess(ds, roi=args.roi, bin=args.bin, erange=args.erange, norm=args.norm, pre=args.pre,
                     post=args.post, edge=args.edge, baseline=args.baseline,
                     min_step_fraction=args.min_step_fraction, min_signal=args.min_signal,
                     reference=args.reference, mask=args.mask, source=str(src))
    _write(res, out)
    used = int(res["mask"].values.sum())
    print(f"wrote {out} {tuple(res['absorbance'].shape)}; {used} of {res['mask'].size} pixels used")
    return 0


def register(subparsers) -> None:
    """Add the ``import``, ``info`` and ``preprocess`` subcommands."""
    p = subparsers.add_parser("import", help="read a stack (SDF .hdr/.xim, TIFF, NetCDF/HDF5, .npy/.npz) into a "
                                             "canonical cube", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", metavar="SRC", help="NAME.hdr, TIFF file or folder, .nc/.h5, .npy/.npz")
    p.add_argument("-o", "--output", required=True, metavar="CUBE.nc")
    p.add_argument("--format", choices=["sdf", "tiff", "netcdf", "hdf5", "npy"], default=None)
    p.add_argument("--energies", metavar="FILE", help="energy list, one per line (first column), in frame order")
    p.add_argument("--i0", metavar="FILE|region:Y0:Y1,X0:X1",
                   help="I0 file (energy, counts) or a blank region; then OD = -ln(I/I0)")
    p.add_argument("--region", type=int, metavar="K", help="SDF region (default: all, as NAME_rK.nc)")
    p.add_argument("--var", metavar="NAME", help="variable / array holding the stack")
    p.add_argument("--dims", metavar="y,x,energy", help="roles of the variable's dimensions, in its order")
    p.add_argument("--sort-energies", action="store_true", help="sort frames by energy (else an error)")
    p.add_argument("--drop-duplicate-energies", action="store_true",
                   help="keep the first frame of a repeated energy (else an error)")
    p.set_defaults(func=_cmd_import)

    p = subparsers.add_parser("info", help="shape, energies, regions and QC summary of a cube or SDF header")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=_cmd_info)

    p = subparsers.add_parser("preprocess", help="crop, bin, normalize, mask and attach a reference spectrum",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cube", metavar="CUBE.nc")
    p.add_argument("-o", "--output", required=True, metavar="PRE.nc")
    p.add_argument("--roi", metavar="Y0:Y1,X0:X1", help="crop (pixel indices, end excluded)")
    p.add_argument("--bin", type=int, default=1, metavar="K", help="K x K spatial binning")
    p.add_argument("--erange", metavar="E0:E1", help="energy range to keep (eV, inclusive)")
    p.add_argument("--norm", choices=["edge", "preedge-area", "preedge-peak", "none"], default="edge")
    p.add_argument("--pre", metavar="E0:E1", help="pre-edge window (eV)")
    p.add_argument("--post", metavar="E2:E3", help="post-edge window for --norm edge (eV)")
    p.add_argument("--edge", metavar="E0:E1", help="edge window for area/peak (default: above --pre)")
    p.add_argument("--baseline", choices=["mean", "line"], default="mean", help="pre-edge baseline shape")
    p.add_argument("--min-step-fraction", type=float, default=0.1, metavar="F",
                   help="mask pixels whose step/area/peak is below F x the median (default 0.1)")
    p.add_argument("--min-signal", type=float, default=None, metavar="K",
                   help="mask pixels whose peak above baseline is below K x pre-edge noise")
    p.add_argument("--reference", metavar="FILE|region:Y0:Y1,X0:X1|mean|cube",
                   help="reference spectrum b (cube: the input cube's own reference variable)")
    p.add_argument("--mask", metavar="FILE", help=".msk ('O' = selected), .nc or .npy mask of the input cube")
    p.set_defaults(func=_cmd_preprocess)
