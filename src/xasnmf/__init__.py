"""xasnmf: chemical domains in 2D-XAS image stacks.

Modified orthogonal NMF (HALS) with bi-cross-validated rank selection, after
Tanimoto et al. (2020), "Non-Negative Matrix Factorization for 2D-XAS Images of
Lithium Ion Batteries".
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("xasnmf")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.1.0+unknown"

from .errors import ConvergenceWarning, InputError, XasnmfError, XasnmfWarning  # noqa: E402

__all__ = ["__version__", "ConvergenceWarning", "InputError", "XasnmfError", "XasnmfWarning"]
