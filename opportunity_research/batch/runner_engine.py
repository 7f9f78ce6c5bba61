"""Where the batch's tasks run: Dask distributed (a LocalCluster, or an existing cluster), or this process.

Part of the batch runner (:mod:`opportunity_research.batch.runner`); also the progress display.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import signal
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from .runner_task import (
    DistrictResult,
    Job,
    Started,
    abandon,
    cancel_marker,
    ensure_kernel,
    finish_job,
    mark_stale,
    prepare_job,
    run_job,
    run_notebook,
)

__all__: list[str] = []

#: A serial batch prepares the next district and runs its notebook beside this one's (see :meth:`Engine.run`) when
#: both districts' raw files are at most this many kilobytes (``Engine.run``'s ``priority``; the demo districts have
#: 0.3-2 MB, 100,000 students about 126 MB): the notebook on the kernel's core, the pages on the other. Larger
#: districts run one step after another, so the notebook's peak memory never meets the browser's.
OVERLAP_KB = 256 * 1024


# ---------------------------------------------------------------------------------------------
# The engine: Dask distributed (a LocalCluster, or an existing cluster), or this process


@contextlib.contextmanager
def _children_ignore_sigint():
    """Processes started inside inherit an ignored SIGINT, so Ctrl-C reaches only this process (which then
    shuts the cluster down) and no worker prints a traceback of its own."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _worker_check(root: str, kernel_name: str) -> str | None:
    """Run on every worker of an existing cluster: None if it can run the batch, else what is wrong."""
    if not Path(root, "data").is_dir():
        return f"it does not see the project folder {root} (data/ missing): share it at the same path"
    try:
        ensure_kernel(kernel_name)
    except RuntimeError as exc:
        return str(exc)
    return None


class Engine:
    """Runs :func:`run_job` tasks: in this process (``jobs=1``, no scheduler) or as Dask tasks."""

    def __init__(self, *, jobs: int, scheduler: str | None, root: Path, kernel_name: str):
        self.jobs, self.scheduler, self.root, self.kernel_name = jobs, scheduler, root, kernel_name
        self.client = self.cluster = None

    @property
    def distributed(self) -> bool:
        return self.scheduler is not None or self.jobs > 1

    def __enter__(self):
        if not self.distributed:
            return self
        import logging

        from distributed import Client, LocalCluster

        with _children_ignore_sigint():
            if self.scheduler:
                try:
                    self.client = Client(self.scheduler, timeout="30s")
                except OSError as exc:
                    raise RuntimeError(
                        f"cannot reach the Dask scheduler at {self.scheduler}: {exc}"
                    ) from None
                problems = {
                    w: p
                    for w, p in self.client.run(_worker_check, str(self.root), self.kernel_name).items()
                    if p
                }
                if not self.client.scheduler_info().get("workers"):
                    self.close()
                    raise RuntimeError(
                        f"the Dask cluster at {self.scheduler} has no workers; start some with "
                        f"'dask worker {self.scheduler}'"
                    )
                if problems:
                    self.close()
                    raise RuntimeError(
                        "Dask workers cannot run the batch: "
                        + "; ".join(f"worker {w}: {p}" for w, p in sorted(problems.items()))
                    )
            else:
                import dask

                # ":0": its HTTP endpoint on a free port (None still tries 8787 and warns when another cluster has it)
                # worker-saturation 1.0: the scheduler hands a worker its next district only when it is free
                # (distributed's default 1.1 gives a single-threaded worker two, so near the end one worker can
                # hold a queued district while the other has none left): the largest districts first, none idle
                with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
                    self.cluster = LocalCluster(
                        n_workers=self.jobs,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=":0",
                        # distributed's own shutdown races (a worker's last heartbeat to a scheduler that is
                        # closing) log as ERROR with a traceback on a good run; a task's failure reaches the
                        # batch as its result and the private log, and a lost worker as a failed district
                        silence_logs=logging.CRITICAL,
                    )
                self.client = Client(self.cluster)
        return self

    def close(self, *, graceful: bool = True) -> None:
        from ..report.browser import close_shared_chromium
        from . import warm_kernel

        with contextlib.suppress(Exception):  # every worker's warm kernel and browser, then this process's
            # after Ctrl-C the workers are simply stopped; their kernels and browsers go with them
            if self.client is not None and graceful:
                self.client.run(warm_kernel.shutdown_all)
                from distributed import wait

                # the browser belongs to the thread that ran the tasks: closed by a task on each worker
                workers = list(self.client.scheduler_info().get("workers", {}))
                futures = [
                    self.client.submit(
                        close_shared_chromium,
                        workers=[w],
                        allow_other_workers=False,
                        pure=False,
                        key=f"close-browser-{w}",
                    )
                    for w in workers
                ]
                wait(futures, timeout=30)
        warm_kernel.shutdown_all()
        close_shared_chromium()
        with contextlib.suppress(
            Exception
        ):  # our local workers go first, so none heartbeats a closed scheduler
            if self.cluster is not None and graceful:  # (which distributed logs as an ERROR on a good run)
                self.cluster.scale(0)
                end = time.monotonic() + 20
                while self.client.scheduler_info().get("workers") and time.monotonic() < end:
                    time.sleep(0.1)
        with contextlib.suppress(Exception):
            if self.client is not None:
                self.client.close()
        with contextlib.suppress(Exception):
            if self.cluster is not None:
                self.cluster.close()
        self.client = self.cluster = None

    def __exit__(self, exc_type, *exc):
        self.close(graceful=exc_type is None)
        return False

    def run(
        self,
        jobs: list[Job],
        on_result: Callable[[DistrictResult], None],
        *,
        priority: Mapping[str, int] | None = None,
        on_start: Callable[[str], None] | None = None,
        last: bool = False,
    ) -> None:
        """Run ``jobs``; ``on_result`` is called with each result as it finishes.

        ``priority``: each district's size (kilobytes of raw files; on a cluster the largest start first).
        ``last``: nothing runs on this engine after these jobs. In this process (no Dask) the final job is then
        run as the worker's last (:attr:`Job.last <.runner_task.Job>`: its kernel is not kept for a next
        district); Dask workers keep theirs until :meth:`close` (which worker runs the last task is not known
        in advance).

        In this process the jobs run in order, one step at a time, except that, when two jobs in a row are at most
        :data:`OVERLAP_KB`, the next one's inputs (:func:`~.runner_task.prepare_job`, in a thread) are prepared while
        this one's notebook runs, and its notebook (:func:`~.runner_task.run_notebook`, in another thread) runs while
        this one's pages are printed, screened, audited and published (:func:`~.runner_task.finish_job`, in this
        thread, whose browser prints every PDF): the warm kernel is free once a notebook has run, and the notebook
        keeps the kernel's core busy while the runner and the browser use the other.
        Each job still passes its own screen and gate before it is published, and a failure of either job is its
        own; on Ctrl-C the notebook running ahead is stopped (the warm kernel shut down) and its staging folder
        removed."""
        if self.client is None:
            self._run_here(jobs, on_result, priority or {}, on_start, last)
            return
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        futures = {}
        rank = priority or {}
        for job in sorted(jobs, key=lambda j: -rank.get(j.district_id, 0)):  # the largest first
            fut = self.client.submit(
                run_job,
                job,
                key=f"report-{job.district_id}-{job.run_id}",
                pure=False,
                priority=rank.get(job.district_id, 0),
            )
            futures[fut] = job
        pending = as_completed(list(futures))
        try:
            while not pending.is_empty():
                batch = pending.next_batch(block=False)
                if not batch:
                    time.sleep(0.2)
                    continue
                for fut in batch:
                    job = futures[fut]
                    try:
                        r = fut.result()
                    except KilledWorker as exc:
                        r = DistrictResult(
                            job.district_id,
                            "failed",
                            reason=(
                                f"every Dask worker that ran it died ({type(exc).__name__}; after "
                                "distributed.scheduler.allowed-failures retries): often memory; see the workers' logs"
                            ),
                        )
                        mark_stale(r, Path(job.reports_dir))
                    except Exception as exc:  # noqa: BLE001 - e.g. the task could not be unpickled on a worker
                        r = DistrictResult(
                            job.district_id,
                            "failed",
                            reason=f"Dask task failed: {type(exc).__name__}: {str(exc)[:300]}",
                        )
                        mark_stale(r, Path(job.reports_dir))
                    on_result(r)
        finally:
            if not pending.is_empty():
                with contextlib.suppress(Exception):
                    self.client.cancel(list(futures), force=True)

    @staticmethod
    def _run_here(jobs, on_result, size: Mapping[str, int], on_start, last: bool) -> None:
        """:meth:`run` in this process."""
        from concurrent.futures import ThreadPoolExecutor

        from . import warm_kernel

        if last and jobs:
            jobs = [*jobs[:-1], dataclasses.replace(jobs[-1], last=True)]
        small = [size.get(j.district_id, 0) <= OVERLAP_KB for j in jobs]
        # overlap[i]: job i + 1 is prepared while job i's notebook runs, and its notebook runs while job i finishes
        overlap = [a and b for a, b in itertools.pairwise(small)] + [False]
        prepared = {}  # job index -> its prepare_job, running in the inputs thread

        def prepare(i: int) -> Started:
            if on_start:
                on_start(jobs[i].district_id)
            return prepare_job(jobs[i])

        with (
            ThreadPoolExecutor(1, thread_name_prefix="next-inputs") as inputs,
            ThreadPoolExecutor(1, thread_name_prefix="next-notebook") as notebooks,
        ):

            def notebook(i: int) -> Started:
                started = prepared.pop(i).result() if i in prepared else prepare(i)
                if overlap[i]:
                    prepared[i + 1] = inputs.submit(prepare, i + 1)
                return run_notebook(started)

            ahead = None  # the next job's notebook, running in the notebooks thread
            try:
                for i in range(len(jobs)):
                    started = ahead.result() if ahead is not None else notebook(i)
                    ahead = notebooks.submit(notebook, i + 1) if overlap[i] else None
                    on_result(finish_job(started))
            except BaseException:
                if ahead is not None:  # Ctrl-C: stop the notebook running ahead, remove its folder
                    marker = cancel_marker(Path(jobs[0].reports_dir), jobs[0].run_id)
                    with contextlib.suppress(OSError):
                        marker.touch()  # it starts no notebook now (run_notebook looks before it does)
                    while True:  # stop the kernel it runs (or may have started before it looked)
                        warm_kernel.shutdown_all()
                        try:
                            abandon(ahead.result(timeout=1))
                            break
                        except TimeoutError:
                            continue
                raise


class Progress:
    """Progress on stderr: a bar on a terminal (``"bar"``), else plain lines (``"lines"``): one per finished
    district, with the elapsed time, and a line every ``every`` seconds while nothing finishes."""

    def __init__(self, mode: str | None, total: int, *, every: float = 30.0, stream=None):
        import threading

        self.mode, self.total, self.every = mode, total, every
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.t0 = self.last = time.monotonic()
        self.current: str | None = None
        self.bar = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        if mode == "bar":
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="districts", unit="district", file=self.stream)
        elif mode == "lines" and total:
            self._print(f"{total} district(s) to run")
            threading.Thread(target=self._beat, daemon=True).start()

    def _elapsed(self) -> str:
        s = int(time.monotonic() - self.t0)
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"

    def _print(self, text: str) -> None:
        with self._lock:
            print(f"[{self.done}/{self.total} {self._elapsed()}] {text}", file=self.stream, flush=True)
            self.last = time.monotonic()

    def _beat(self) -> None:
        while not self._stop.wait(1.0):
            if time.monotonic() - self.last >= self.every:
                self._print("running" + (f": {self.current}" if self.current else ""))

    def start(self, name: str) -> None:
        self.current = name
        if self.bar is not None:
            self.bar.set_postfix_str(name)

    def finish(self, r: DistrictResult) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix_str(f"{r.district_id} {r.status}")
            self.bar.update()
        elif self.mode == "lines":
            self.current = None
            self._print(f"{r.district_id} {'stale' if r.stale else r.status} ({r.seconds:.0f} s)")

    def close(self) -> None:
        self._stop.set()
        if self.bar is not None:
            self.bar.close()
