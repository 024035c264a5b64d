"""Shared pytest fixtures.

``stxm_dir`` is the real STXM stack in ``../shared/data/stxm-fe-l-edge-71214078``
(or ``$XASNMF_STXM_DIR``).  Missing data skips the test on a user's machine and
fails it in CI (``CI=true``), so shared-data tests can never silently not run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STXM = ROOT.parent / "shared" / "data" / "stxm-fe-l-edge-71214078"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def stxm_dir() -> Path:
    d = Path(os.environ.get("XASNMF_STXM_DIR", DEFAULT_STXM))
    if not (d / "71214078.hdr").exists():
        msg = (f"shared STXM data not found at {d} (see README: set XASNMF_STXM_DIR or place ../shared beside "
               "the project)")
        if _in_ci():
            pytest.fail(msg + "; in CI missing shared data is a failure")
        pytest.skip(msg)
    return d


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT
