"""A worker's first district starts and warms its kernel while the district's inputs are prepared
(``warm_kernel.warm_ahead`` from ``runner_task.prepare_job``), and its notebook runs on that kernel; a last task that
fails before its notebook leaves no kernel behind."""

from __future__ import annotations

import threading
import time

import pytest

from opportunity_research.batch import runner_task, warm_kernel
from opportunity_research.batch.runner import run_batch

try:  # tests/ as a package or as a plain folder on sys.path
    from .test_runner import FLAKY, TINY, _kernelspec, make_district
except ImportError:  # pragma: no cover
    from test_runner import FLAKY, TINY, _kernelspec, make_district

pytestmark = pytest.mark.usefixtures("worker_browser")


def _warm_kernel_within(seconds: float):
    """This process's one warm kernel once it has been warmed, waiting up to ``seconds``; None if none was."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        kernels = list(warm_kernel._POOL.values())
        if kernels and kernels[0].warmed:
            return kernels[0]
        time.sleep(0.05)
    return None


def test_the_kernel_is_warmed_while_the_inputs_are_prepared(tmp_path, monkeypatch):
    make_district(tmp_path, "alpha")
    prepare, during, used = runner_task._prepare_inputs, [], []

    def slow_inputs(job, *args, **kwargs):  # inputs that take long enough for the kernel to start and import
        during.append(_warm_kernel_within(120))
        prepare(job, *args, **kwargs)

    execute = warm_kernel.execute

    def executing(*args, **kwargs):
        key = (kwargs["kernel_name"], kwargs["cwd"])
        used.append(next((wk for k, wk in warm_kernel._POOL.items() if k[:2] == key), None))
        return execute(*args, **kwargs)

    monkeypatch.setattr(runner_task, "_prepare_inputs", slow_inputs)
    monkeypatch.setattr(warm_kernel, "execute", executing)
    try:
        result = run_batch(["alpha"], notebook=TINY, cross_notebook=None, root=tmp_path, process=False)
        assert [r.status for r in result.districts] == ["ok"], [r.reason for r in result.districts]
        assert during[0] is not None  # started and warmed before the inputs were done
        assert used == during  # and the notebook ran on it
        assert not warm_kernel._POOL  # the batch's last task shut it down after its notebook
    finally:
        warm_kernel.shutdown_all()


def test_a_last_task_failing_before_its_notebook_leaves_no_kernel(tmp_path, monkeypatch):
    make_district(tmp_path, "alpha")

    def failing_inputs(job, *args, **kwargs):
        assert _warm_kernel_within(120) is not None  # the kernel was started for the notebook to come
        raise ValueError("inputs broken on purpose")

    monkeypatch.setattr(runner_task, "_prepare_inputs", failing_inputs)
    try:
        result = run_batch(["alpha"], notebook=TINY, cross_notebook=None, root=tmp_path, process=False)
        assert [r.status for r in result.districts] == ["failed"]
        assert "inputs broken on purpose" in result.districts[0].reason
        assert not warm_kernel._POOL
    finally:
        warm_kernel.shutdown_all()


def test_a_warm_up_whose_kernel_fails_to_start_leaves_the_notebook_its_own(tmp_path, monkeypatch):
    make_district(tmp_path, "alpha")
    _kernelspec(tmp_path, "flaky", FLAKY)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    prepare, tried = runner_task._prepare_inputs, []

    def inputs_after_the_warm_up(job, *args, **kwargs):
        end = time.monotonic() + 120
        while any(t.name == "warm-kernel" for t in threading.enumerate()) and time.monotonic() < end:
            time.sleep(0.05)
        tried.append((tmp_path / "jupyter" / "kernels" / "flaky" / "started-once").exists())
        prepare(job, *args, **kwargs)

    monkeypatch.setattr(runner_task, "_prepare_inputs", inputs_after_the_warm_up)
    try:
        result = run_batch(
            ["alpha"],
            notebook=TINY,
            cross_notebook=None,
            root=tmp_path,
            process=False,
            kernel_name="flaky",
            start_timeout=20,
        )
        assert tried == [
            True
        ]  # the warm-up tried, and its kernel failed to start (FLAKY's first start fails)
        assert (result.districts[0].status, result.districts[0].attempts) == ("ok", 1)
    finally:
        warm_kernel.shutdown_all()


def test_a_warm_up_overtaken_by_the_batch_end_starts_no_kernel(tmp_path, monkeypatch):
    """A batch that ends (``shutdown_all``) before its warm-up thread has started the kernel leaves none behind."""
    make_district(tmp_path, "alpha")
    acquire, go = warm_kernel._acquire, threading.Event()

    def late(*args, **kwargs):  # the thread reaches the kernel's start only after the batch has ended
        go.wait(60)
        return acquire(*args, **kwargs)

    monkeypatch.setattr(warm_kernel, "_acquire", late)
    try:
        thread = warm_kernel.warm_ahead(str(TINY), kernel_name="python3", cwd=str(tmp_path), start_timeout=60)
        warm_kernel.shutdown_all()
        go.set()
        thread.join(120)
        assert not thread.is_alive() and not warm_kernel._POOL
    finally:
        warm_kernel.shutdown_all()
