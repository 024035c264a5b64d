"""ALS/CLS STXM "SDF" stacks: a ``NAME.hdr`` text header plus one ``.xim`` text image per energy.

Header syntax
-------------
The header is a sequence of assignments ``Key = value;`` where a value is

* a block ``{ Key = value; ... }`` (the last ``;`` before ``}`` is optional),
* a counted list ``(N, item, item, ...)`` whose first element is the item count,
* a double-quoted string, or a bare scalar (number, ``true``/``false``, word).

Values may wrap over lines.  :func:`parse_header_text` tokenizes and parses this
grammar (nested blocks and lists, quoted strings) into dicts and lists; nothing
is matched line by line.

Files and orientation
---------------------
* Energies: ``ScanDefinition.StackAxis.Points`` (eV), in acquisition order.
* Regions: ``ScanDefinition.Regions = (R, {PAxis = ...; QAxis = ...}, ...)``;
  ``PAxis.Points`` are the x positions (columns), ``QAxis.Points`` the y
  positions (rows), in the header's unit (um).
* Images: channel letter ``c`` (``a`` for the first channel of
  ``ScanDefinition.Channels``), energy index ``NNN`` (zero padded to 3 digits,
  or more when there are more than 999 energies):

  - one region: ``NAME_cNNN.xim``;
  - several regions: ``NAME_cNNN_rK.xim`` (K = region index from 0).

  Anything else is an error naming the files looked for.
* Each ``.xim`` holds ``len(QAxis.Points)`` lines of ``len(PAxis.Points)``
  whitespace-separated numbers.  Line ``j`` of the file is the image row at
  ``y = QAxis.Points[j]`` and column ``i`` is at ``x = PAxis.Points[i]``.  The
  cube keeps ``y`` and ``x`` increasing: when the header lists the points in
  decreasing order the rows (columns) are reversed on reading.  (For the
  shared stack 71214078 ``QAxis.Points`` increase, so file line 0 is y-min; the
  analysts' ``mask_file.msk`` has the same row order, which its correlation
  with the Fe L3 peak height confirms: +0.75, against -0.24 flipped.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["SDFHeader", "parse_header_text", "read_header", "read_xim", "xim_path", "read_sdf_region"]

_PUNCT = set("{}()=;,")


# --------------------------------------------------------------------------- tokenizer / parser
def _tokenize(text: str, source: str) -> list[tuple[str, str, int]]:
    """Split header text into (kind, value, line) tokens; kinds: punct, str, word."""
    toks: list[tuple[str, str, int]] = []
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif c in _PUNCT:
            toks.append(("punct", c, line))
            i += 1
        elif c == '"':
            j = text.find('"', i + 1)
            if j < 0:
                raise InputError(f"header syntax error: unterminated quoted string starting on line {line}", source=source,
                                 fix="the header is truncated or corrupt; get an intact copy of the .hdr file")
            s = text[i + 1:j]
            toks.append(("str", s, line))
            line += s.count("\n")
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in _PUNCT and text[j] != '"':
                j += 1
            toks.append(("word", text[i:j], line))
            i = j
    return toks


def _scalar(word: str) -> Any:
    low = word.lower()
    if low == "true":
        return True
    if low == "false":
        return False
    try:
        return int(word)
    except ValueError:
        pass
    try:
        return float(word)
    except ValueError:
        return word


class _Parser:
    def __init__(self, toks, source):
        self.toks = toks
        self.i = 0
        self.source = source

    def _err(self, what):
        if self.i < len(self.toks):
            kind, val, line = self.toks[self.i]
            where = f"line {line}, at {val!r}"
        else:
            where = "end of file"
        raise InputError(f"header syntax error ({where}): {what}", source=self.source,
                         fix="the .hdr file is truncated or not an ALS/CLS STXM header; get an intact copy")

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None, None)

    def take(self, value=None):
        if self.i >= len(self.toks):
            self._err(f"expected {value!r}" if value else "unexpected end of file")
        tok = self.toks[self.i]
        if value is not None and not (tok[0] == "punct" and tok[1] == value):
            self._err(f"expected {value!r}")
        self.i += 1
        return tok

    def assignments(self, closing: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while True:
            kind, val, _ = self.peek()
            if kind is None:
                if closing is None:
                    return out
                self._err(f"missing {closing!r}")
            if kind == "punct" and val == closing:
                return out
            if kind == "punct" and val == ";":
                self.i += 1
                continue
            if kind != "word":
                self._err("expected a key")
            key = self.take()[1]
            self.take("=")
            out[key] = self.value()
            kind, val, _ = self.peek()
            if kind == "punct" and val == ";":
                self.i += 1
            elif not (kind == "punct" and val == closing) and not (kind is None and closing is None):
                self._err("expected ';' after a value")

    def value(self):
        kind, val, _ = self.peek()
        if kind == "punct" and val == "{":
            self.i += 1
            d = self.assignments("}")
            self.take("}")
            return d
        if kind == "punct" and val == "(":
            self.i += 1
            items = []
            kind, val, _ = self.peek()
            if not (kind == "punct" and val == ")"):
                while True:
                    items.append(self.value())
                    kind, val, _ = self.peek()
                    if kind == "punct" and val == ",":
                        self.i += 1
                        continue
                    break
            self.take(")")
            return items
        if kind == "str":
            self.i += 1
            return val
        if kind == "word":
            self.i += 1
            return _scalar(val)
        self._err("expected a value")


def parse_header_text(text: str, *, source: str = "header") -> dict[str, Any]:
    """Parse SDF header text into nested dicts (blocks) and lists (``(N, ...)`` lists, count included).

    Parameters
    ----------
    text : str
        The header text.
    source : str
        Name used in error messages.

    Returns
    -------
    dict
        Top-level keys (``ScanDefinition``, ``Channels``, ``Image001``, ...).
    """
    return _Parser(_tokenize(text, source), source).assignments(None)


def _counted(value, *, what: str, source: str) -> list:
    """Items of a counted list ``(N, a, b, ...)``, checking that N matches."""
    if not isinstance(value, list) or not value or not isinstance(value[0], int):
        raise InputError(f"{what} is not a counted list '(N, ...)'", source=source,
                         fix="the header is not an ALS/CLS STXM stack header")
    n, items = value[0], value[1:]
    if n != len(items):
        raise InputError(f"{what} declares {n} items but lists {len(items)}", source=source,
                         fix="the header is truncated or edited; get an intact copy")
    return items


def _get(d: dict, path: str, source: str):
    cur: Any = d
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise InputError(f"header has no {path}", source=source,
                             fix="this reader needs an ALS/CLS 'NEXAFS Image Scan' stack header")
        cur = cur[part]
    return cur


def _points(axis: dict, what: str, source: str) -> np.ndarray:
    pts = _counted(axis.get("Points") if isinstance(axis, dict) else None, what=f"{what}.Points", source=source)
    try:
        arr = np.array([float(p) for p in pts], dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{what}.Points contains non-numbers", source=source,
                         fix="the header is corrupt; get an intact copy") from None
    if arr.size == 0 or not np.all(np.isfinite(arr)):
        raise InputError(f"{what}.Points is empty or non-finite", source=source)
    return arr


@dataclass
class SDFHeader:
    """What xasnmf uses from an SDF header.

    Attributes
    ----------
    path : Path
    energy : ndarray, shape (n_energy,)
        ``StackAxis.Points`` in file (acquisition) order, eV.
    regions : list of (y, x) ndarray pairs
        ``QAxis.Points`` (rows) and ``PAxis.Points`` (columns) of each region.
    xy_units : str
    channels : list of str
        Channel names (``ScanDefinition.Channels``).
    scan_type : str
    raw : dict
        The whole parsed header.
    """

    path: Path
    energy: np.ndarray
    regions: list[tuple[np.ndarray, np.ndarray]]
    xy_units: str
    channels: list[str]
    scan_type: str
    dwell: float | None
    raw: dict = field(repr=False)

    @property
    def n_regions(self) -> int:
        return len(self.regions)

    @property
    def stem(self) -> str:
        return self.path.stem


def read_header(path: str | Path) -> SDFHeader:
    """Read and parse ``NAME.hdr``.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    SDFHeader
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise InputError("header file not found", source=source, fix="check the path to the .hdr file")
    try:
        text = path.read_text(encoding="latin-1")
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror})", source=source, fix="check file permissions") from None
    raw = parse_header_text(text, source=source)
    sd = _get(raw, "ScanDefinition", source)
    energy = _points(_get(raw, "ScanDefinition.StackAxis", source), "ScanDefinition.StackAxis", source)
    regions_raw = _counted(_get(raw, "ScanDefinition.Regions", source), what="ScanDefinition.Regions",
                           source=source)
    if not regions_raw:
        raise InputError("ScanDefinition.Regions lists no region", source=source)
    regions = []
    units = "um"
    for k, reg in enumerate(regions_raw):
        if not isinstance(reg, dict):
            raise InputError(f"region {k} is not a block {{...}}", source=source)
        for ax in ("PAxis", "QAxis"):
            if ax not in reg:
                raise InputError(f"region {k} has no {ax}", source=source,
                                 fix="this reader needs an image stack (PAxis = x, QAxis = y)")
        xpts = _points(reg["PAxis"], f"Regions[{k}].PAxis", source)
        ypts = _points(reg["QAxis"], f"Regions[{k}].QAxis", source)
        units = str(reg["PAxis"].get("Unit", units))
        regions.append((ypts, xpts))
    channels = []
    if "Channels" in sd:
        for ch in _counted(sd["Channels"], what="ScanDefinition.Channels", source=source):
            channels.append(str(ch.get("Name", "?")) if isinstance(ch, dict) else str(ch))
    dwell = sd.get("Dwell")
    return SDFHeader(path=path, energy=energy, regions=regions, xy_units=units or "um", channels=channels,
                     scan_type=str(sd.get("Type", "")), dwell=float(dwell) if isinstance(dwell, (int, float))
                     else None, raw=raw)


# --------------------------------------------------------------------------- images
def xim_path(header: SDFHeader, energy_index: int, *, region: int = 0, channel: int = 0) -> Path:
    """Path of the ``.xim`` image for one energy, region and channel (see module docstring)."""
    width = max(3, len(str(len(header.energy) - 1)))
    letter = chr(ord("a") + channel)
    name = f"{header.stem}_{letter}{energy_index:0{width}d}"
    if header.n_regions > 1:
        name += f"_r{region}"
    return header.path.with_name(name + ".xim")


def read_xim(path: str | Path, *, shape: tuple[int, int]) -> np.ndarray:
    """Read one text image and check its size.

    Parameters
    ----------
    path : str or Path
    shape : (int, int)
        Expected (rows, columns) = (len(QAxis.Points), len(PAxis.Points)).

    Returns
    -------
    ndarray, shape ``shape``, float64, in file row order.
    """
    path = Path(path)
    source = str(path)
    ny, nx = shape
    if not path.is_file():
        raise InputError("image file is missing", source=source,
                         fix=f"every energy needs its .xim image (expected {ny} rows x {nx} columns); "
                             "copy the complete stack folder, or give the header of the stack it belongs to")
    try:
        text = path.read_text(encoding="latin-1")
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror})", source=source, fix="check file permissions") from None
    rows = [ln.split() for ln in text.splitlines() if ln.strip()]
    if len(rows) != ny:
        raise InputError(f"has {len(rows)} rows, expected {ny} (the header's QAxis points)", source=source,
                         fix="the file is truncated or belongs to another scan; re-copy it from the beamline data")
    for j, r in enumerate(rows):
        if len(r) != nx:
            raise InputError(f"row {j} has {len(r)} values, expected {nx} (the header's PAxis points)",
                             source=source,
                             fix="the file is truncated or belongs to another scan; re-copy it")
    try:
        arr = np.array([float(v) for r in rows for v in r], dtype=np.float64)
    except ValueError:
        bad = next(v for r in rows for v in r if not _is_float(v))
        raise InputError(f"contains a non-number {bad!r}", source=source,
                         fix="the file is corrupt; re-copy it") from None
    return arr.reshape(ny, nx)


def _is_float(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def read_sdf_region(header: SDFHeader, region: int = 0, *, channel: int = 0):
    """Read all images of one region, oriented so y and x increase.

    Parameters
    ----------
    header : SDFHeader
    region : int
    channel : int

    Returns
    -------
    stack : ndarray, shape (ny, nx, n_energy), float64
        Values as stored (transmitted counts), energy in header order.
    y : ndarray, shape (ny,)
    x : ndarray, shape (nx,)
    files : list of Path
    """
    if not 0 <= region < header.n_regions:
        raise InputError(f"region {region} requested but the header has {header.n_regions} region(s) "
                         f"(0..{header.n_regions - 1})", source=str(header.path),
                         fix=f"use --region between 0 and {header.n_regions - 1}, or omit it for all regions")
    if header.channels and not 0 <= channel < len(header.channels):
        raise InputError(f"channel {channel} requested but the header has {len(header.channels)}",
                         source=str(header.path))
    y, x = header.regions[region]
    ny, nx = y.size, x.size
    files = [xim_path(header, k, region=region, channel=channel) for k in range(header.energy.size)]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        layout = ("NAME_aNNN.xim" if header.n_regions == 1 else "NAME_aNNN_rK.xim (K = region index)")
        raise InputError(f"{len(missing)} of {len(files)} image files are missing: "
                         f"{', '.join(missing[:5])}{more}", source=str(header.path),
                         fix=f"images must sit beside the header, named {layout}; copy the complete stack")
    stack = np.empty((ny, nx, len(files)), dtype=np.float64)
    for k, f in enumerate(files):
        stack[:, :, k] = read_xim(f, shape=(ny, nx))
    if ny > 1 and y[-1] < y[0]:
        y = y[::-1]
        stack = stack[::-1]
    if nx > 1 and x[-1] < x[0]:
        x = x[::-1]
        stack = stack[:, ::-1]
    return np.ascontiguousarray(stack), y.copy(), x.copy(), files
