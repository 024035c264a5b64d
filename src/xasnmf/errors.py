"""Exceptions and warnings of xasnmf.

Every error a user can cause is an :class:`InputError` whose message names the
file (or parameter), the problem, and the fix.  The CLI prints such errors as a
single paragraph and exits with status 2, never with a traceback.
"""

from __future__ import annotations


class XasnmfError(Exception):
    """Base class of all xasnmf errors."""


class InputError(XasnmfError, ValueError):
    """Bad input: a file, a parameter or data that cannot be used as given.

    Parameters
    ----------
    problem : str
        What is wrong (expected vs got where that applies).
    source : str, optional
        The file or parameter concerned.
    fix : str, optional
        What the user can do about it.
    """

    def __init__(self, problem: str, *, source: str | None = None, fix: str | None = None):
        self.problem = problem
        self.source = source
        self.fix = fix
        parts = []
        if source:
            parts.append(f"{source}: {problem}")
        else:
            parts.append(problem)
        if fix:
            parts.append(f"Fix: {fix}")
        super().__init__(" ".join(parts))


class XasnmfWarning(UserWarning):
    """Base class of all xasnmf warnings."""


class ConvergenceWarning(XasnmfWarning):
    """An iterative solver stopped at ``max_iter`` before reaching ``tol``."""


class DataQualityWarning(XasnmfWarning):
    """Data were dropped or masked for a recorded quality reason."""
