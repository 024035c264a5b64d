"""Cross-correlation of domain maps (Eq. (15), Tables I and II) and table writers.

Eq. (15) of Tanimoto et al. (2020) compares two domain maps ``w`` and ``w'``
(one value per pixel) by

    Corr = w^T w' / (||w||_2 ||w'||_2),

the cosine of the angle between the maps.  **Erratum:** the paper prints
``sqrt(||w||_2 ||w'||_2)`` in the denominator.  That is not scale-free (it
changes when a map is multiplied by a constant, and ONMF maps have arbitrary
scale) and cannot produce Table I's values in [0, 1]; the cosine is what the
tables show, and what is implemented here.  For non-negative maps it lies in
[0, 1].

A map that is zero on every compared pixel has no direction: its cosines are
set to 0 and it is flagged (``zero_rows`` / ``zero_cols``), never divided by
zero.

Rows and columns are labelled like the paper: B1..Br for ONMF domains, C1..Ck
for k-means clusters, D1..D3 for peak-top-energy classes.  The k-means clusters
are ordered to the ONMF domains by the Hungarian algorithm so that matched
pairs form the diagonal (:func:`match_order`), as in Table I.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np

from .errors import InputError


@dataclass
class CosineMatrix:
    """Cosines between the columns of two map matrices.

    Attributes
    ----------
    values : ndarray, shape (p, q)
        ``values[i, j]`` = cosine of column ``i`` of A and column ``j`` of B (0 where either is zero).
    zero_rows : ndarray of bool, shape (p,)
        Columns of A that are zero on all compared pixels.
    zero_cols : ndarray of bool, shape (q,)
        Columns of B that are zero on all compared pixels.
    """

    values: np.ndarray
    zero_rows: np.ndarray
    zero_cols: np.ndarray


def cosine_matrix(A: np.ndarray, B: np.ndarray, *, return_flags: bool = False):
    """Eq. (15) as a cosine between every column of ``A`` and every column of ``B``.

    ``C[i, j] = a_i^T b_j / (||a_i|| ||b_j||)``.  (Erratum: the paper's printed
    denominator ``sqrt(||a|| ||b||)`` is not scale-free; see the module docstring.)

    Parameters
    ----------
    A : ndarray, shape (m, p)
        One map per column over the same ``m`` pixels as ``B``.
    B : ndarray, shape (m, q)
    return_flags : bool, keyword-only
        Return a :class:`CosineMatrix` (with the zero-column flags) instead of the array.

    Returns
    -------
    ndarray, shape (p, q), or CosineMatrix
        Cosines; 0 where a column is all zero.
    """
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    if A.ndim == 1:
        A = A[:, None]
    if B.ndim == 1:
        B = B[:, None]
    if A.ndim != 2 or B.ndim != 2 or A.shape[0] != B.shape[0]:
        raise InputError(f"maps must be (pixels, maps) with the same number of pixels, got {A.shape} and {B.shape}",
                         source="cosine_matrix", fix="flatten both sets of maps over the same pixels")
    if not (np.isfinite(A).all() and np.isfinite(B).all()):
        raise InputError("maps contain non-finite values", source="cosine_matrix",
                         fix="compare only pixels valid in both (see cross_correlation_table)")
    na = np.linalg.norm(A, axis=0)
    nb = np.linalg.norm(B, axis=0)
    za = na == 0
    zb = nb == 0
    C = (A.T @ B) / (np.where(za, 1.0, na)[:, None] * np.where(zb, 1.0, nb)[None, :])
    C[za, :] = 0.0
    C[:, zb] = 0.0
    if return_flags:
        return CosineMatrix(values=C, zero_rows=za, zero_cols=zb)
    return C


def match_order(C: np.ndarray) -> np.ndarray:
    """Order the columns of ``C`` so that the best one-to-one matches lie on the diagonal.

    Hungarian algorithm (``scipy.optimize.linear_sum_assignment``, maximizing the
    sum of matched cosines).  With ``q > p`` the ``q - p`` unmatched columns
    follow the ``p`` matched ones, in decreasing order of their best cosine.  With
    ``q < p`` every column is matched to one row; the columns are put in the
    order of their matched rows (the matches are on the diagonal when the
    unmatched rows are the last ones, and otherwise shifted left of it).

    Parameters
    ----------
    C : ndarray, shape (p, q)

    Returns
    -------
    ndarray of int, shape (q,)
        Permutation of the columns: ``C[:, perm]`` has the matched pairs at ``[i, i]``
        (when ``p <= q``).
    """
    from scipy.optimize import linear_sum_assignment

    C = np.asarray(C, dtype=np.float64)
    if C.ndim != 2 or not np.isfinite(C).all():
        raise InputError(f"expected a finite 2-D matrix, got shape {C.shape}", source="match_order")
    p, q = C.shape
    rows, cols = linear_sum_assignment(C, maximize=True)
    order_rows = np.argsort(rows, kind="stable")
    rows, cols = rows[order_rows], cols[order_rows]
    if p >= q:
        return cols.astype(np.int64)
    assigned = np.zeros(q, dtype=bool)
    assigned[cols] = True
    rest = np.flatnonzero(~assigned)
    rest = rest[np.argsort(-C[:, rest].max(axis=0), kind="stable")] if p else rest
    perm = np.concatenate([cols, rest]).astype(np.int64)
    return perm


@dataclass
class CorrelationTable:
    """A labelled cosine matrix (one of the paper's Tables I/II).

    Attributes
    ----------
    values : ndarray, shape (p, q)
    row_labels, col_labels : list of str
    title : str
    zero_rows, zero_cols : ndarray of bool
    n_pixels : int
        Pixels compared (valid in both).
    col_order : ndarray of int or None
        Original index of each column (after Hungarian ordering).
    """

    values: np.ndarray
    row_labels: list
    col_labels: list
    title: str = ""
    zero_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    zero_cols: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    n_pixels: int = 0
    col_order: np.ndarray | None = None
    notes: list = field(default_factory=list)

    def to_dataset(self, *, row_dim: str = "row", col_dim: str = "col", attrs: dict | None = None):
        """The matrix as an xarray Dataset ``cosine(row, col)`` with label coordinates."""
        import xarray as xr

        ds = xr.Dataset(
            {"cosine": ((row_dim, col_dim), self.values,
                        {"long_name": "cosine of domain maps (Eq. 15 as a cosine)", "units": "1"}),
             f"{row_dim}_zero": ((row_dim,), self.zero_rows.astype(np.int8),
                                 {"long_name": "map is zero on all compared pixels (cosines set to 0)"}),
             f"{col_dim}_zero": ((col_dim,), self.zero_cols.astype(np.int8),
                                 {"long_name": "map is zero on all compared pixels (cosines set to 0)"})},
            coords={row_dim: (row_dim, np.array(self.row_labels, dtype=str)),
                    col_dim: (col_dim, np.array(self.col_labels, dtype=str))},
        )
        if self.col_order is not None:
            ds[f"{col_dim}_original_index"] = ((col_dim,), np.asarray(self.col_order, dtype=np.int64),
                                               {"long_name": "index of the map in its source file (0-based)"})
        ds.attrs.update({"title": self.title, "n_pixels": int(self.n_pixels),
                         "definition": "w^T w' / (||w||_2 ||w'||_2) over pixels valid in both maps; "
                                       "erratum: the paper prints sqrt(||w|| ||w'||) in the denominator"})
        if attrs:
            ds.attrs.update(attrs)
        return ds


def labels(prefix: str, n: int) -> list[str]:
    """``["B1", ..., "Bn"]`` for prefix ``"B"``."""
    return [f"{prefix}{i + 1}" for i in range(n)]


def maps_cosine_table(
    maps_a: np.ndarray,
    maps_b: np.ndarray,
    *,
    row_prefix: str = "B",
    col_prefix: str = "C",
    match: bool = True,
    title: str = "",
) -> CorrelationTable:
    """Cosine table of two stacks of maps over the pixels finite in both.

    Parameters
    ----------
    maps_a : ndarray, shape (p, ny, nx)
        Rows of the table (e.g. ONMF ``W``); NaN marks masked pixels.
    maps_b : ndarray, shape (q, ny, nx)
        Columns of the table (e.g. k-means one-hot ``domain``).
    row_prefix, col_prefix : str, keyword-only
        Label prefixes.
    match : bool, keyword-only
        Reorder the columns by :func:`match_order` (labels follow the new order).
    title : str, keyword-only

    Returns
    -------
    CorrelationTable
    """
    a = np.asarray(maps_a, dtype=np.float64)
    b = np.asarray(maps_b, dtype=np.float64)
    if a.ndim != 3 or b.ndim != 3 or a.shape[1:] != b.shape[1:]:
        raise InputError(f"maps must be (component, y, x) on the same grid, got {a.shape} and {b.shape}",
                         source="maps", fix="compare results computed from the same cube")
    valid = np.isfinite(a).all(axis=0) & np.isfinite(b).all(axis=0)
    n_pix = int(valid.sum())
    if n_pix == 0:
        raise InputError("no pixel is valid (finite) in both sets of maps", source="maps",
                         fix="compare results computed from the same cube and mask")
    A = a[:, valid].T
    B = b[:, valid].T
    cm = cosine_matrix(A, B, return_flags=True)
    C = cm.values
    order = np.arange(C.shape[1])
    if match:
        order = match_order(C)
    notes = []
    if cm.zero_rows.any():
        notes.append("zero maps (cosine set to 0): " + ", ".join(np.array(labels(row_prefix, C.shape[0]))[cm.zero_rows]))
    if cm.zero_cols.any():
        notes.append("zero maps (cosine set to 0): " + ", ".join(
            f"{col_prefix}{np.flatnonzero(order == j)[0] + 1}" for j in np.flatnonzero(cm.zero_cols)))
    return CorrelationTable(values=C[:, order], row_labels=labels(row_prefix, C.shape[0]),
                            col_labels=labels(col_prefix, C.shape[1]), title=title,
                            zero_rows=cm.zero_rows, zero_cols=cm.zero_cols[order], n_pixels=n_pix,
                            col_order=order, notes=notes)


def cross_correlation_table(fit_ds, other_ds, *, var_fit: str = "W", var_other: str = "domain",
                            row_prefix: str = "B", col_prefix: str = "C", match: bool = True,
                            source_fit: str = "FIT.nc", source_other: str = "KM.nc") -> CorrelationTable:
    """Table I: cosines of the ONMF domains (rows) and k-means clusters (columns).

    Parameters
    ----------
    fit_ds : xarray.Dataset
        Fit file with ``W(component, y, x)`` (NaN at masked pixels).
    other_ds : xarray.Dataset
        k-means file with one-hot ``domain(component, y, x)`` (NaN where masked).
    var_fit, var_other : str, keyword-only
        Variables compared.
    row_prefix, col_prefix : str, keyword-only
        Labels (B1..Br, C1..Ck).
    match : bool, keyword-only
        Hungarian ordering of the columns.
    source_fit, source_other : str, keyword-only
        File names for error messages.

    Returns
    -------
    CorrelationTable
        Over the pixels valid (finite) in both files.
    """
    for ds, var, src in ((fit_ds, var_fit, source_fit), (other_ds, var_other, source_other)):
        if var not in ds:
            raise InputError(f"has no variable {var!r} (variables: {sorted(ds.data_vars)})", source=src,
                             fix="give a fit file from `xasnmf fit` and a k-means file from `xasnmf kmeans`")
        if ds[var].ndim != 3 or tuple(ds[var].dims)[1:] != ("y", "x"):
            raise InputError(f"variable {var!r} has dims {tuple(ds[var].dims)}, expected (component, y, x)",
                             source=src)
    a = np.asarray(fit_ds[var_fit].transpose(fit_ds[var_fit].dims[0], "y", "x").values)
    b = np.asarray(other_ds[var_other].transpose(other_ds[var_other].dims[0], "y", "x").values)
    if a.shape[1:] != b.shape[1:]:
        raise InputError(f"grids differ: {source_fit} has {a.shape[1:]} pixels (y, x), {source_other} has "
                         f"{b.shape[1:]}", source=source_other, fix="run both from the same preprocessed cube")
    return maps_cosine_table(a, b, row_prefix=row_prefix, col_prefix=col_prefix, match=match,
                             title="Cosine (Eq. 15) of ONMF domains and k-means clusters")


# ---------------------------------------------------------------- writers -----

def _fmt(v: float, digits: int) -> str:
    return f"{v:.{digits}f}"


def table_to_csv(table: CorrelationTable, *, digits: int = 4) -> str:
    """CSV text: a header row ``,C1,C2,...`` then one row per row label."""
    out = io.StringIO()
    out.write("," + ",".join(table.col_labels) + "\n")
    for lab, row in zip(table.row_labels, table.values):
        out.write(lab + "," + ",".join(_fmt(v, digits) for v in row) + "\n")
    return out.getvalue()


def table_to_markdown(table: CorrelationTable, *, digits: int = 2) -> str:
    """Markdown pipe table; the largest value of each row in bold."""
    lines = []
    if table.title:
        lines += [f"**{table.title}** ({table.n_pixels} pixels)", ""]
    lines.append("| | " + " | ".join(table.col_labels) + " |")
    lines.append("|---|" + "---:|" * len(table.col_labels))
    for lab, row in zip(table.row_labels, table.values):
        best = int(np.argmax(row)) if row.size else -1
        cells = [f"**{_fmt(v, digits)}**" if j == best else _fmt(v, digits) for j, v in enumerate(row)]
        lines.append(f"| {lab} | " + " | ".join(cells) + " |")
    for note in table.notes:
        lines += ["", f"Note: {note}"]
    return "\n".join(lines) + "\n"


def table_to_latex(table: CorrelationTable, *, digits: int = 2) -> str:
    """LaTeX ``tabular`` (booktabs); the largest value of each row in bold."""
    q = len(table.col_labels)
    lines = ["\\begin{tabular}{l" + "r" * q + "}", "\\toprule",
             " & " + " & ".join(table.col_labels) + " \\\\", "\\midrule"]
    for lab, row in zip(table.row_labels, table.values):
        best = int(np.argmax(row)) if row.size else -1
        cells = [f"\\textbf{{{_fmt(v, digits)}}}" if j == best else _fmt(v, digits) for j, v in enumerate(row)]
        lines.append(f"{lab} & " + " & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    if table.title:
        lines.insert(0, f"% {table.title} ({table.n_pixels} pixels)")
    return "\n".join(lines) + "\n"


def write_table(table: CorrelationTable, csv_path, *, row_dim: str = "row", col_dim: str = "col",
                attrs: dict | None = None, nc_dataset=None) -> dict:
    """Write ``csv_path`` and, beside it, the ``.md``, ``.tex`` and ``.nc`` versions (atomic writes).

    ``nc_dataset``, when given, is written as the ``.nc`` instead of the bare matrix.

    Returns
    -------
    dict
        ``{"csv": Path, "md": Path, "tex": Path, "nc": Path}``.
    """
    from pathlib import Path

    from .provenance import provenance_attrs, write_netcdf, write_text_atomic

    csv_path = Path(csv_path)
    stem = csv_path.with_suffix("")
    paths = {"csv": csv_path, "md": stem.with_suffix(".md"), "tex": stem.with_suffix(".tex"),
             "nc": stem.with_suffix(".nc")}
    write_text_atomic(table_to_csv(table), paths["csv"])
    write_text_atomic(table_to_markdown(table), paths["md"])
    write_text_atomic(table_to_latex(table), paths["tex"])
    a = provenance_attrs()
    a.update(attrs or {})
    if nc_dataset is None:
        nc_dataset = table.to_dataset(row_dim=row_dim, col_dim=col_dim, attrs=a)
    write_netcdf(nc_dataset, paths["nc"])
    return paths
