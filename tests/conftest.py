"""Shared fixtures."""

from __future__ import annotations

import pytest

try:  # tests/ as a package or as a plain folder on sys.path
    from .districtkit import make_valid_district
except ImportError:  # pragma: no cover
    from districtkit import make_valid_district


@pytest.fixture()
def valid_district(tmp_path):
    """A small hand-built district export that passes the contract with no warning (see districtkit.py)."""
    return make_valid_district(tmp_path / "district_ok")
