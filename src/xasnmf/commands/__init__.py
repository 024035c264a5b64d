"""CLI subcommands, one module per stage; each has ``register(subparsers)``."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ..errors import InputError


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return a.samefile(b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def guard_outputs(outputs: Iterable, inputs: Iterable) -> None:
    """Refuse to write any output (including files written beside ``-o``) over an input or a folder.

    Raises
    ------
    InputError
        Naming the output, the input it would replace (or that it is a folder), and the fix.
    """
    inputs = [Path(p) for p in inputs if p is not None]
    for out in outputs:
        if out is None:
            continue
        out = Path(out)
        if out.is_dir():
            raise InputError("is a folder, not an output file name", source=str(out),
                             fix="give a file name, e.g. -o results/out.nc")
        for p in inputs:
            if _same_file(out, p):
                raise InputError(f"this output would overwrite the input file {p}; xasnmf never overwrites "
                                 "its input", source=str(out), fix="give another -o path")


def siblings(csv_path, suffixes: Iterable[str]) -> list[Path]:
    """``X.csv`` -> ``[X.csv, X.md, ...]``: the files a table command writes beside ``-o``."""
    p = Path(csv_path)
    stem = p.with_suffix("")
    return [p] + [stem.with_suffix(s) for s in suffixes]
