"""A serial batch's overlap (:meth:`opportunity_research.batch.runner_engine.Engine.run` in this process).

Two small districts in a row: the next one's inputs are prepared while this one's notebook runs, and its notebook
runs while this one's pages are built, on one warm kernel (the checks of tests/test_runner_memory.py and
tests/test_runner_isolation.py on that batch too); larger districts run one step after another. Each district's
failure stays its own, and Ctrl-C stops the notebook running ahead (the warm kernel shut down) and leaves no
staging folder.
"""

from __future__ import annotations

import json
import threading
import time

import nbformat
import pytest

from opportunity_research.batch import runner_engine, runner_task, warm_kernel
from opportunity_research.batch.runner import BatchInterrupted, run_batch, staging_dir

try:  # tests/ as a package or as a plain folder on sys.path
    from .test_runner import TINY, TINY_REPORT_FILES, make_district
    from .test_runner_memory import seen  # a fixture (the test below takes it)
except ImportError:  # pragma: no cover
    from test_runner import TINY, TINY_REPORT_FILES, make_district
    from test_runner_memory import seen  # noqa: F401 - a fixture

pytestmark = [pytest.mark.long(12), pytest.mark.usefixtures("worker_browser")]


class Steps:
    """Records each district's steps as they start (``events``: (step, district) in order) and lets a test wait,
    inside one step, for another district's step to start (:meth:`wait`)."""

    def __init__(self, monkeypatch):
        self.events: list[tuple[str, str]] = []
        self._started: dict[tuple[str, str], threading.Event] = {}
        self._lock = threading.Lock()
        self.hooks: dict[tuple[str, str], object] = {}  # (step, district) -> called as the step starts
        for step, name in (
            ("inputs", "_prepare_inputs"),
            ("notebook", "_execute"),
            ("pages", "_build_pages"),
        ):
            monkeypatch.setattr(runner_task, name, self._recording(step, getattr(runner_task, name)))

    def _event(self, step: str, district: str) -> threading.Event:
        with self._lock:
            return self._started.setdefault((step, district), threading.Event())

    def _recording(self, step, fn):
        def recording(job, *args, **kwargs):
            self.events.append((step, job.district_id))
            self._event(step, job.district_id).set()
            hook = self.hooks.get((step, job.district_id))
            if hook is not None:
                hook()
            return fn(job, *args, **kwargs)

        return recording

    def wait(self, step: str, district: str, timeout: float = 30) -> bool:
        return self._event(step, district).wait(timeout)


@pytest.fixture()
def steps(monkeypatch):
    yield Steps(monkeypatch)
    warm_kernel.shutdown_all()


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_the_next_district_is_prepared_and_run_while_this_one_is_printed(
    tmp_path, steps, seen, capfd, monkeypatch
):
    """Two small districts in a row, on one warm kernel: the next one's inputs are prepared while this one's
    notebook runs, and its notebook runs while this one is printed; the kernel is kept from alpha to beta and shut
    down before the last pages, the shared browser kept for both (tests/test_runner_memory.py's ``seen``); the
    runner's own warm objects frozen once; the run prints nothing that looks like an error and stages its work
    outside reports/. (One batch for what three tests each ran the same batch for: about 2 CPU-s each.)"""
    from opportunity_research.batch.runner import staging_dir
    from opportunity_research.report import browser

    frozen = []  # the runner's own warm objects, frozen once (here recorded instead, not to freeze pytest's)
    monkeypatch.setattr(runner_task, "_warm", False)
    monkeypatch.setattr(runner_task, "freeze_baseline", lambda: frozen.append(True))
    for d in ("alpha", "beta"):
        make_district(tmp_path, d)
    overlap = {}
    steps.hooks[("notebook", "alpha")] = lambda: overlap.setdefault(
        "beta inputs", steps.wait("inputs", "beta")
    )

    def pages():
        overlap["beta notebook"] = steps.wait("notebook", "beta")

    steps.hooks[("pages", "alpha")] = pages
    result = run_batch(["alpha", "beta"], notebook=TINY, cross_notebook=None, root=tmp_path, process=False)
    assert [r.status for r in result.districts] == ["ok", "ok"], [r.reason for r in result.districts]
    assert overlap == {"beta inputs": True, "beta notebook": True}
    reports = tmp_path / "reports"
    for d in ("alpha", "beta"):
        assert _files(reports / d) == TINY_REPORT_FILES
    # one kernel, kept warm from alpha to beta; beta: the kernel gone before its pages; the browser kept for both
    pdf = browser.find_chromium() is not None
    assert len(seen.kernels) == 2 and all(k is seen.kernels[0] for k in seen.kernels)
    assert seen.last_pages() == [("alpha", False, None, pdf), ("beta", True, 0, pdf)]
    assert frozen == [True]  # after the first published report, not again
    out, err = capfd.readouterr()
    assert "ERROR" not in out + err and "Traceback" not in out + err, out + err
    assert "KeyboardInterrupt" not in out + err
    assert sorted(p.name for p in reports.iterdir()) == ["alpha", "beta", "index.html", "manifest.json"]
    assert not staging_dir(reports).exists()  # removed once empty
    assert staging_dir(reports).parent == reports.parent
    # the notebooks ran with their output folder in the staging area (recorded, then rewritten to the final one)
    nb = nbformat.read(reports / "alpha" / "report.ipynb", as_version=4)
    assert ".reports-staging" not in json.dumps(nb.metadata) and "reports/alpha" in json.dumps(nb.metadata)
    assert warm_kernel.shutdown_all() == 0  # the batch shut its kernel down


def test_large_districts_run_one_step_after_another(tmp_path, steps, monkeypatch):
    monkeypatch.setattr(runner_engine, "OVERLAP_KB", 0)  # every district counts as large
    for d in ("alpha", "beta"):
        make_district(tmp_path, d)
    result = run_batch(["alpha", "beta"], notebook=TINY, cross_notebook=None, root=tmp_path, process=False)
    assert [r.status for r in result.districts] == ["ok", "ok"], [r.reason for r in result.districts]
    assert steps.events == [(s, d) for d in ("alpha", "beta") for s in ("inputs", "notebook", "pages")]


def test_a_failure_beside_another_district_is_its_own(tmp_path, steps):
    """alpha fails in its pages while beta's notebook runs; beta's notebook fails while alpha is printed; gamma,
    prepared and run beside them, is published."""
    for d in ("alpha", "beta", "gamma"):
        make_district(tmp_path, d)

    def broken_pages():
        steps.wait("notebook", "beta")
        raise RuntimeError("the pages broke")

    steps.hooks[("pages", "alpha")] = broken_pages
    result = run_batch(
        ["alpha", "beta", "gamma"],
        notebook=TINY,
        cross_notebook=None,
        root=tmp_path,
        process=False,
        district_parameters={"beta": {"fail": True}},
    )
    alpha, beta, gamma = result.districts
    assert (alpha.status, beta.status, gamma.status) == ("failed", "failed", "ok")
    assert alpha.reason.startswith("RuntimeError: the pages broke"), alpha.reason
    assert "planted failure" in beta.reason, beta.reason
    assert sorted(p.name for p in (tmp_path / "reports").iterdir() if p.is_dir()) == ["gamma"]
    assert not staging_dir(tmp_path / "reports").exists()


def test_ctrl_c_stops_the_notebook_running_ahead(tmp_path, steps):
    for d in ("alpha", "beta"):
        make_district(tmp_path, d)

    def interrupted_pages():  # Ctrl-C while alpha is printed and beta's notebook (a minute long) runs
        assert steps.wait("notebook", "beta")
        time.sleep(0.5)
        raise KeyboardInterrupt

    steps.hooks[("pages", "alpha")] = interrupted_pages
    t = time.monotonic()
    with pytest.raises(BatchInterrupted) as info:
        run_batch(
            ["alpha", "beta"],
            notebook=TINY,
            cross_notebook=None,
            root=tmp_path,
            process=False,
            district_parameters={"beta": {"pause": 60.0}},
        )
    assert time.monotonic() - t < 45  # beta's notebook did not run its minute
    assert info.value.results == []
    assert not warm_kernel._POOL  # beta's kernel shut down
    assert not staging_dir(tmp_path / "reports").exists()  # neither district's folder left
    assert not [p for p in (tmp_path / "reports").iterdir() if p.is_dir()]
