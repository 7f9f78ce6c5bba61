"""Shared fixtures."""

from __future__ import annotations

import os

import pytest

from opportunity_research.batch.warm_kernel import THREAD_LIMITS

# One thread for BLAS/LAPACK and OpenMP in the test processes and everything they start (kernels, Dask workers, the
# CLI), unless the environment sets it: ``make test`` runs two xdist workers on two cores, and a multithreaded BLAS
# in each spins its threads against the other worker's (tests/test_models.py took 36 CPU-s on two BLAS threads
# against 12 on one, on a busy machine; see ``opportunity_research.stats.likelihood.one_blas_thread``). Set here,
# before xdist starts its workers, so that they load their BLAS with it; kernels and Dask workers already run on
# one thread (the same limits, ``batch.warm_kernel.THREAD_LIMITS``; distributed's ``nanny.pre-spawn-environ``).
for _name, _value in THREAD_LIMITS.items():
    os.environ.setdefault(_name, _value)

try:  # tests/ as a package or as a plain folder on sys.path
    from . import demo
    from .districtkit import make_valid_district
except ImportError:  # pragma: no cover
    import demo
    from districtkit import make_valid_district


def pytest_collection_modifyitems(config, items):
    """The long files first, longest first (``pytestmark = pytest.mark.long(seconds)``), then the rest in collection
    order. ``make test`` runs ``--dist loadfile --no-loadscope-reorder``: xdist hands out whole files in this order,
    so the two workers start on the long files and end together on short ones (xdist's default order, most tests
    first, left the one-test files of whole builds for the end, on one worker)."""

    def seconds(item):
        mark = item.get_closest_marker("long")
        if mark is None:  # nbval's notebooks (notebooks/*.ipynb) start a kernel and run a whole report each
            return 10 if item.path.suffix == ".ipynb" else 0
        return mark.args[0]

    items.sort(key=lambda item: -seconds(item))  # stable: a file's tests stay together, in their order


@pytest.fixture(scope="session", autouse=True)
def _shared_demo_data(tmp_path_factory):
    """The demo districts are built once per test run, whatever the number of xdist workers: in the run's
    temporary folder (an xdist worker's ``basetemp`` is a subfolder of the run's), under a lock (tests/demo.py)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    demo.SHARED = base / "opportunity-demo"
    yield


@pytest.fixture(scope="module")
def batch_browser():
    """One Chromium for the serial batches of a test file (``pytestmark = pytest.mark.usefixtures(...)``).

    A batch in this process (``jobs=1``, or one district) prints in this thread's shared browser
    (:func:`opportunity_research.report.browser.shared_tab`) and stops it when it ends (``Engine.close``); here the
    browser is hidden from that close and kept for the file's next batch, as a batch keeps it from district to
    district, and stopped with the file: a Chromium started for each test's batch cost about 1.5 CPU-s. Kept only
    for the file: a test of another file may start a Playwright of its own in this thread, which cannot run beside
    this one (Playwright's synchronous API refuses to start inside another's event loop). A batch on a cluster
    closes its workers' browsers as before."""
    from opportunity_research.batch.runner_engine import Engine
    from opportunity_research.report import browser

    close, names = Engine.close, ("playwright", "browser", "tab")

    def close_keeping_the_browser(self, *, graceful=True):
        kept = {name: getattr(browser._SHARED, name, None) for name in names}
        for name in names:
            setattr(browser._SHARED, name, None)
        try:
            close(self, graceful=graceful)
        finally:
            for name, value in kept.items():
                setattr(browser._SHARED, name, value)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Engine, "close", close_keeping_the_browser)
        yield
    browser.close_shared_chromium()


@pytest.fixture()
def valid_district(tmp_path):
    """A small hand-built district export that passes the contract with no warning (see districtkit.py)."""
    return make_valid_district(tmp_path / "district_ok")
