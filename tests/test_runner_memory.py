"""What the batch holds while a district's pages are printed.

* A serial batch's last task: its warm kernel is shut down once its notebook has run, so it holds no memory while
  the last pages are printed and screened; earlier districts keep it warm for the next one, and a cross-district
  report that follows keeps it for itself. The shared browser stays until the batch closes. (A batch of two
  districts without one: checked in tests/test_runner_engine.py's batch of two, with ``seen`` below.)
* The disclosure gate has finished (and returned its memory) before Chromium prints; the privacy screen starts
  once the HTML pages are written, beside the gate's end.
* The runner returns what processing a district freed before the notebook runs.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from opportunity_research.batch import runner_task, warm_kernel
from opportunity_research.batch.runner import run_batch
from opportunity_research.report import browser

try:  # tests/ as a package or as a plain folder on sys.path
    from .test_runner import CROSS, TINY, make_district
except ImportError:  # pragma: no cover
    from test_runner import CROSS, TINY, make_district

# run first; the serial batches print in the worker's one Chromium (tests/conftest.py)
pytestmark = [pytest.mark.long(8), pytest.mark.usefixtures("worker_browser")]


@pytest.fixture()
def seen(monkeypatch):
    """Per task, as its pages are built: (name, Job.last, warm kernels of this process before the pages, the shared
    browser still running after them); ``seen.kernels``: the warm kernel each notebook ran on, in order.

    A serial batch runs the next task's notebook while this one's pages are printed (``Engine.run``), so an earlier
    task's pages may see the next task's kernel still running or already shut down: only the last task's count is
    fixed."""
    out = Seen()
    build, acquire = runner_task._build_pages, warm_kernel._acquire

    def recording(job, *args, **kwargs):
        kernels = len(warm_kernel._POOL)
        build(job, *args, **kwargs)
        running = getattr(browser._SHARED, "browser", None) is not None
        out.append((job.district_id, job.last, kernels, running))

    def acquiring(*args, **kwargs):
        wk = acquire(*args, **kwargs)
        out.kernels.append(wk)
        return wk

    monkeypatch.setattr(runner_task, "_build_pages", recording)
    monkeypatch.setattr(warm_kernel, "_acquire", acquiring)
    yield out
    warm_kernel.shutdown_all()


class Seen(list):
    def __init__(self):
        super().__init__()
        self.kernels = []

    def last_pages(self):
        """(name, last, kernels, browser) of each task, the kernels counted for the last task only."""
        return [(n, last, k if last else None, b) for n, last, k, b in self]


def test_a_cross_district_report_after_the_districts_is_the_last_task(tmp_path, seen):
    for d in ("alpha", "beta"):
        make_district(tmp_path, d)
    result = run_batch(["alpha", "beta"], notebook=TINY, cross_notebook=CROSS, root=tmp_path, process=False)
    assert [r.status for r in result.districts] == ["ok", "ok"], [r.reason for r in result.districts]
    assert result.cross.status == "ok", result.cross.reason
    pdf = browser.find_chromium() is not None
    assert len(seen.kernels) == 3 and all(k is seen.kernels[0] for k in seen.kernels)
    assert seen.last_pages() == [
        ("alpha", False, None, pdf),
        ("beta", False, None, pdf),
        ("cross_district", True, 0, pdf),
    ]


def test_the_gate_has_finished_before_the_browser_prints(tmp_path, monkeypatch, seen):
    if browser.find_chromium() is None:
        pytest.skip("no Chromium: nothing is printed")
    from opportunity_research.disclosure import joint

    audit = joint.audit_report_folder

    printing = threading.Event()

    def slow_audit(folder, *args, **kwargs):  # a gate that would still run when printing starts
        # the HTML pages are written (publish_pages), and printing would follow at once if it did not wait for
        # the gate: the gate runs on until printing starts, or 2 s more (a wait of 5 s from its start was spent
        # in full on every run where the order holds)
        end = time.monotonic() + 60  # a deadlock guard, not a timing
        while not (Path(folder) / "report.html").exists() and time.monotonic() < end:
            time.sleep(0.02)
        printing.wait(2)
        return audit(folder, *args, **kwargs)

    monkeypatch.setattr(joint, "audit_report_folder", slow_audit)
    gates_at_print = []
    print_pdfs = browser.print_pdfs

    def recording(*args, **kwargs):
        gates_at_print.append(
            [t.name for t in threading.enumerate() if t.name.startswith("disclosure-gate-")]
        )
        printing.set()
        return print_pdfs(*args, **kwargs)

    monkeypatch.setattr(browser, "print_pdfs", recording)
    browser.shared_tab(
        browser.find_chromium()
    )  # the worker's browser up (kept): printing follows the pages at once
    make_district(tmp_path, "alpha")
    result = run_batch(["alpha"], notebook=TINY, cross_notebook=None, root=tmp_path, process=False)
    assert [r.status for r in result.districts] == ["ok"], [r.reason for r in result.districts]
    assert gates_at_print == [[]]


def test_the_screen_starts_once_the_pages_are_written_beside_the_gate(tmp_path, monkeypatch):
    """The privacy screen starts when the HTML pages are written, without waiting for the gate to end (the gate
    still ends before printing: the test above)."""
    from opportunity_research.disclosure import joint

    audit, screen = joint.audit_report_folder, runner_task._Screen
    started = threading.Event()
    gates_at_screen = []

    def slow_audit(folder, *args, **kwargs):  # a gate that runs until the screen has started
        # a deadlock guard, not a timing: spent in full only if the screen waited for the gate
        started.wait(20)
        return audit(folder, *args, **kwargs)

    class Recording(screen):
        def __init__(self, *args, **kwargs):
            gates_at_screen.append(
                [t.name for t in threading.enumerate() if t.name.startswith("disclosure-gate-")]
            )
            started.set()
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(joint, "audit_report_folder", slow_audit)
    monkeypatch.setattr(runner_task, "_Screen", Recording)
    make_district(tmp_path, "alpha")
    result = run_batch(["alpha"], notebook=TINY, cross_notebook=None, root=tmp_path, process=False)
    assert [r.status for r in result.districts] == ["ok"], [r.reason for r in result.districts]
    assert gates_at_screen == [["disclosure-gate-alpha"]]


def test_the_runner_returns_what_processing_freed(tmp_path, monkeypatch):
    from opportunity_research.disclosure.identifiers import Identifiers
    from opportunity_research.intake import dataset

    make_district(tmp_path, "alpha")
    calls = []
    monkeypatch.setattr(dataset, "process_district", lambda *a, **k: calls.append("process"))
    monkeypatch.setattr(runner_task, "return_memory", lambda: calls.append("return_memory"))
    job = runner_task.Job(
        "district",
        "alpha",
        str(TINY),
        root=str(tmp_path),
        reports_dir=str(tmp_path / "reports"),
        raw_dir=str(tmp_path / "data" / "raw"),
        processed_dir=str(tmp_path / "data" / "processed"),
        parameters={},
        min_n=10,
        kernel_name="python3",
    )
    runner_task._prepare_inputs(job, runner_task.DistrictResult("alpha", "failed"), Identifiers())
    assert calls == ["process", "return_memory"]
    assert Path(job.processed_dir, "alpha", "manifest.json").exists()
