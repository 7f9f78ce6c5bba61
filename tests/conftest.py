"""Shared fixtures."""

from __future__ import annotations

import os

import pytest

try:  # tests/ as a package or as a plain folder on sys.path
    from . import demo
    from .districtkit import make_valid_district
except ImportError:  # pragma: no cover
    import demo
    from districtkit import make_valid_district


@pytest.fixture(scope="session", autouse=True)
def _shared_demo_data(tmp_path_factory):
    """The demo districts are built once per test run, whatever the number of xdist workers: in the run's
    temporary folder (an xdist worker's ``basetemp`` is a subfolder of the run's), under a lock (tests/demo.py)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    demo.SHARED = base / "opportunity-demo"
    yield


@pytest.fixture()
def valid_district(tmp_path):
    """A small hand-built district export that passes the contract with no warning (see districtkit.py)."""
    return make_valid_district(tmp_path / "district_ok")
