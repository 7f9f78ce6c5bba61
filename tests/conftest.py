"""Shared fixtures."""

from __future__ import annotations

import os
import sys

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


#: The package's modules whose doctests print or load pages in Chromium: they run with the worker's browser too
#: (``worker_browser`` below; ``close_shared_chromium``'s own doctest needs no shared browser running, so it is not one)
BROWSER_DOCTESTS = ("opportunity_research/report/browser.py", "opportunity_research/report/pages.py")


def _uses_the_worker_browser(item) -> bool:
    if "worker_browser" in getattr(item, "fixturenames", ()):
        return True
    return item.nodeid.split("::")[0] in BROWSER_DOCTESTS and not item.name.endswith(".close_shared_chromium")


def pytest_collection_modifyitems(config, items):
    """In this order: the long files in Chromium, the other test files in Chromium, the package's doctests in
    Chromium (several stop the shared browser, as their examples show), the other long files, the rest; the long
    files longest first (``pytestmark = pytest.mark.long(seconds)``), the others in collection order. ``make
    test`` runs ``--dist loadfile --no-loadscope-reorder``: xdist hands out whole files in this order, so the two
    workers start on the long files and end together on short ones (xdist's default order, most tests first, left
    the one-test files of whole builds for the end, on one worker), and each worker's files in Chromium come one
    after another, in the one browser it keeps for them (``worker_browser``)."""

    def order(item):
        mark = item.get_closest_marker("long")
        if mark is None:  # nbval's notebooks (notebooks/*.ipynb) start a kernel and run a whole report each
            seconds = 10 if item.path.suffix == ".ipynb" else 0
        else:
            seconds = mark.args[0]
        if item.nodeid.split("::")[0] in BROWSER_DOCTESTS:
            group = 2
        elif _uses_the_worker_browser(item):
            group = 0 if seconds else 1
        else:
            group = 3 if seconds else 4
        return group, -seconds

    items.sort(key=order)  # stable: a file's tests stay together, in their order


class _WorkerBrowser:
    """Registered as a plugin (not a conftest hook), so that it sees the package's doctests too: before an item
    that does not use the worker's browser, the browser is stopped (a running Playwright marks this thread as
    inside an event loop, in which ``asyncio.run`` refuses to start), and it is stopped when the run ends."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item):
        if not _uses_the_worker_browser(item):
            _close_the_worker_browser()

    def pytest_sessionfinish(self, session):
        _close_the_worker_browser()


def _close_the_worker_browser():
    browser = sys.modules.get("opportunity_research.report.browser")  # none started before it was imported
    if browser is not None:
        browser.close_shared_chromium()


def pytest_configure(config):
    config.pluginmanager.register(_WorkerBrowser(), "worker-browser")


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
def worker_browser():
    """This worker's one Chromium, kept from test to test and file to file (``pytestmark =
    pytest.mark.usefixtures("worker_browser")``): the thread's shared browser
    (:func:`opportunity_research.report.browser.shared_chromium`, started on first use), which a file's tests use
    directly, in which the serial batches print (:func:`~opportunity_research.report.browser.shared_tab`), and
    beside which :func:`~opportunity_research.report.browser.chromium` launches its browsers from the same
    Playwright. A Chromium started for each file cost about 1.5 CPU-s (Playwright's driver 0.55, the launch 0.33,
    the first tab 0.65). A batch in this process stops the thread's shared browser when it ends (``Engine.close``);
    here the browser is hidden from that close and kept for the next batch, as a batch keeps it from district to
    district. A batch on a cluster closes its workers' browsers as before. The browser stops before the next test
    that does not use it, and with the run (``_WorkerBrowser``); a test may stop it itself (the next use starts
    another)."""
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


@pytest.fixture()
def valid_district(tmp_path):
    """A small hand-built district export that passes the contract with no warning (see districtkit.py)."""
    return make_valid_district(tmp_path / "district_ok")
