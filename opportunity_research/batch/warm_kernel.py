"""One warm Jupyter kernel per batch worker, reused district after district, isolated between them.

A new kernel per notebook costs its start and every import again (about 3.5 s for a notebook importing pandas,
statsmodels and matplotlib, against 0.75 s reusing a kernel, measured on the 2-core machine of issue 21). The
runner therefore keeps one kernel per worker process (a Dask worker, or the runner itself with ``--jobs 1``):

* papermill still runs each notebook (parameters injected and recorded as always, the output notebook written
  when it starts, every :data:`SAVE_EVERY` seconds while cells run and when it ends or fails, a cell error raised
  as ``PapermillExecutionError``): :func:`execute` calls
  ``papermill.execute_notebook`` with the engine registered here, ``"opportunity-warm"``, which hands papermill's
  notebook client this worker's running kernel instead of starting one;
* the first notebook warms the kernel: its working directory is the project root, it imports what the notebook
  imports, then :func:`opportunity_research.batch.kernel_isolation.snapshot` records the baseline and
  :func:`~opportunity_research.batch.kernel_isolation.freeze_baseline` takes what is then alive out of the garbage
  collector's generations (later collections do not walk the imported modules again);
* right after every notebook, :func:`opportunity_research.batch.kernel_isolation.release` returns the kernel to that
  baseline (globals, matplotlib figures and rcParams, random seeds, warnings filters, options, cwd, environment) and
  the memory the notebook held to the operating system (after the worker's last notebook, ``execute(last=True)``,
  the kernel is shut down instead); before a notebook,
  :func:`opportunity_research.batch.kernel_isolation.restore` does the same reset unless that release did (the
  first notebook, after the warm-up; nothing runs in the kernel between a release and the next notebook);
* the kernel keeps no IPython history database (:data:`KERNEL_ARGUMENTS`), and runs its numerical libraries on
  one thread each (as on a Dask worker) and the C allocator with two arenas unless the environment says otherwise
  (:func:`kernel_env`);
* a kernel that timed out, died, or could not be reset is shut down and the next notebook gets a new one; a
  notebook whose cell raised keeps the kernel (the reset comes before the next notebook anyway);
* shutting down terminates the kernel's process group (see :meth:`WarmKernel.shutdown`): neither the interrupt
  that ``KernelManager.shutdown_kernel`` sends first, which made ipykernel log
  ``[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.`` at the end of every successful run, nor a
  ``shutdown_request``, which races with ipykernel's own socket shutdown and now and then logs a traceback.

A kernel whose parent process dies exits by itself (ipykernel's parent poller), so a killed worker leaves no
orphan.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import os
import tempfile
import threading

__all__ = ["ENGINE", "execute", "kernel_env", "shutdown_all"]

#: papermill engine name of the warm kernel.
ENGINE = "opportunity-warm"
#: Command-line options of the warm kernel: no IPython history database. Every kernel would otherwise write each
#: cell's source into ``~/.ipython/profile_default/history.sqlite`` (a committed SQLite transaction, under a lock
#: that the kernels of all workers share), in the home folder of whoever runs the batch.
KERNEL_ARGUMENTS = ("--HistoryManager.enabled=False",)
#: Thread counts of the warm kernel's numerical libraries, unless the environment sets them: one thread each, as
#: Dask's workers already have (distributed's ``nanny.pre-spawn-environ``) and pass on to their kernels, so a
#: district runs with the same threads, and the same floating-point sums, serially (``--jobs 1``) as on a cluster,
#: and a serial batch does not spread BLAS threads over cores that other work uses.
THREAD_LIMITS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
#: The C allocator's arenas in the warm kernel, unless the environment sets them: two (the main thread's, and one
#: the other threads share). The protection pass solves its block LPs on threads
#: (:data:`opportunity_research.disclosure.lp_blocks.LP_THREADS`), and each thread's own arena kept freed pages that
#: :func:`~opportunity_research.batch.kernel_isolation.release` could not return: at 1,000,000 students the kernel
#: held 68 MB more after a pass on two threads than on one; with two arenas, no more.
ARENA_LIMITS = {"MALLOC_ARENA_MAX": "2"}
#: Seconds between saves of the output notebook while its cells run (papermill saves at every cell start and end).
SAVE_EVERY = 10.0

_POOL: dict[tuple, WarmKernel] = {}
_LOCK = threading.Lock()


class KernelResetError(RuntimeError):
    """The warm kernel could not be put back to its baseline."""


class WarmKernel:
    """A started kernel (``km``, ``kc``) for one worker process, with its baseline recorded once warmed."""

    def __init__(self, kernel_name: str, cwd: str, *, start_timeout: int = 60):
        from jupyter_client.manager import KernelManager
        from traitlets.config import Config

        self.kernel_name, self.cwd = kernel_name, cwd
        self._kdir = tempfile.TemporaryDirectory(prefix="opportunity-kernel-")
        cfg = Config()
        if os.name == "posix":  # local sockets in a private folder: no TCP ports, no warning
            cfg.KernelManager.transport = "ipc"
            cfg.KernelManager.ip = os.path.join(self._kdir.name, "kernel")
        self.km = KernelManager(kernel_name=kernel_name, config=cfg)
        self.warmed = False
        self.clean = False  # reset by :meth:`release` since its last notebook (nothing has run in it since)
        self.km.start_kernel(cwd=cwd, env=kernel_env(), extra_arguments=list(KERNEL_ARGUMENTS))
        self.client = None  # the current notebook's asynchronous client (see :func:`execute`)
        kc = self.km.client()
        # no heartbeat channel: the manager's client asks the manager whether the kernel lives, and the heartbeat
        # socket of a kernel that died at start kept its unanswered ping for a second when the channels stopped
        kc.start_channels(hb=False)
        try:
            kc.wait_for_ready(timeout=start_timeout)
        except Exception:
            self.shutdown()
            raise
        finally:
            kc.stop_channels()

    def async_client(self):
        """A new asynchronous client connected to this kernel (channels started), one that cannot sleep through a
        message already on its socket (:mod:`opportunity_research.batch.kernel_client`).

        Whether the kernel lives, it asks the kernel's manager (its process), as the start-up client does; no
        heartbeat channel. A client without its manager went by heartbeats: a kernel that died (shut down on
        Ctrl-C, killed for its memory) was seen dead only after a missed heartbeat, and each missed ping left a
        socket lingering a second when the channels stopped: the notebook running ahead of a serial batch took
        3.6 s to stop after Ctrl-C, now 0.3 s."""
        from opportunity_research.batch.kernel_client import SteppedKernelClient

        kc = SteppedKernelClient(parent=self.km, session=self.km.session)
        kc.load_connection_info(self.km.get_connection_info())
        kc.start_channels(hb=False)
        return kc

    def run(self, code: str, *, timeout: float) -> None:
        """Run ``code`` silently (no history, no execution count) through the notebook's client; raise if it
        fails or does not finish within ``timeout`` seconds."""
        from jupyter_core.utils import run_sync

        kc = self.client
        reply = run_sync(kc.execute_interactive)(
            code, silent=True, store_history=False, timeout=timeout, output_hook=lambda msg: None
        )
        content = reply.get("content", {})
        if content.get("status") != "ok":
            raise KernelResetError(f"{content.get('ename', 'error')}: {content.get('evalue', '')}".strip())

    def prepare(self, notebook: str) -> None:
        """Before a notebook: warm up once (imports, baseline), then reset to the baseline, unless :meth:`release`
        already did after the previous notebook (nothing has run in the kernel since: the same reset twice would
        only clear an empty namespace again)."""
        if self.clean:
            self.clean = False
            return
        if not self.warmed:
            imports = _imports(notebook)
            self.run(
                "import os as _os\n_os.chdir("
                + repr(self.cwd)
                + ")\ndel _os\n"
                + imports
                + "\nimport opportunity_research.batch.kernel_isolation as _iso\n_iso.snapshot()\n_iso.freeze_baseline()\ndel _iso",
                timeout=600,
            )
            self.warmed = True
        self.run("import opportunity_research.batch.kernel_isolation as _iso\n_iso.restore()", timeout=120)

    def release(self) -> None:
        """After a notebook: clear its namespace and return the memory it held to the operating system
        (:func:`opportunity_research.batch.kernel_isolation.release`), so the worker does not hold a district's
        tables while its pages are printed or while it waits for the next district. A kernel that cannot do
        it is discarded (the next notebook gets a new one); the notebook's result stands."""
        try:
            self.run(
                "import opportunity_research.batch.kernel_isolation as _iso\n_iso.release()", timeout=120
            )
        except Exception:  # noqa: BLE001 - the notebook ran; only the kernel is lost
            _discard(self)
        else:
            self.clean = True

    def alive(self) -> bool:
        try:
            return bool(self.km.is_alive())
        except Exception:  # noqa: BLE001 - a broken manager is not alive
            return False

    def shutdown(self) -> None:
        """Stop the kernel quietly: a terminate signal to its process group (the kernel and anything it started),
        a kill if it has not exited within 5 seconds.

        Not a ``shutdown_request``: ipykernel (7.4) answers one on its control thread and then flushes
        ``sys.stdout`` while its main thread is already closing the output sockets, and that race now and then
        logs ``ZMQError: Socket operation on non-socket`` with a traceback on the batch's stderr. Not
        ``KernelManager.shutdown_kernel`` either: it interrupts first, and ipykernel logs
        ``KeyboardInterrupt caught in kernel``. The kernel keeps no history database (:data:`KERNEL_ARGUMENTS`)
        and every notebook has been saved by then, so a terminated kernel loses nothing."""
        with contextlib.suppress(Exception):
            if self.km.has_kernel:
                import signal
                import time

                for signum, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
                    self.km.signal_kernel(signum)
                    end = time.monotonic() + wait
                    while self.km.is_alive() and time.monotonic() < end:
                        time.sleep(0.02)
                    if not self.km.is_alive():
                        break
        with contextlib.suppress(Exception):
            self.km.cleanup_resources()
        with contextlib.suppress(Exception):
            self._kdir.cleanup()


def kernel_env() -> dict[str, str]:
    """The warm kernel's environment: this process's, with :data:`THREAD_LIMITS` and :data:`ARENA_LIMITS` for the
    variables it leaves unset.

    Examples
    --------
    >>> import os
    >>> saved = {k: os.environ.pop(k, None) for k in {**THREAD_LIMITS, **ARENA_LIMITS}}
    >>> os.environ["MKL_NUM_THREADS"] = "4"  # set by whoever runs the batch: kept
    >>> env = kernel_env()
    >>> env["MKL_NUM_THREADS"], env["OPENBLAS_NUM_THREADS"], env["OMP_NUM_THREADS"], env["MALLOC_ARENA_MAX"]
    ('4', '1', '1', '2')
    >>> del os.environ["MKL_NUM_THREADS"]
    >>> os.environ.update({k: v for k, v in saved.items() if v is not None})
    """
    return {**THREAD_LIMITS, **ARENA_LIMITS, **os.environ}


def _imports(notebook: str) -> str:
    """The notebook's top-level import statements (what the warm-up imports once for every later notebook)."""
    import nbformat

    lines = []
    with contextlib.suppress(Exception):
        nb = nbformat.read(notebook, as_version=4)
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            try:
                tree = ast.parse(cell.source)
            except SyntaxError:  # IPython magics: skip the cell
                continue
            lines += [
                ast.unparse(node)
                for node in tree.body
                if isinstance(node, ast.Import | ast.ImportFrom)
                and not (isinstance(node, ast.ImportFrom) and node.module == "__future__")
            ]
    # imported inside a try: a notebook whose import fails reports it in its own cell, not in the warm-up
    return "\n".join(f"try:\n    {ln}\nexcept Exception:\n    pass" for ln in dict.fromkeys(lines))


def _acquire(kernel_name: str, cwd: str, start_timeout: int) -> WarmKernel:
    key = (kernel_name, cwd, os.getpid())
    with _LOCK:
        wk = _POOL.get(key)
        if wk is not None and not wk.alive():
            wk.shutdown()
            wk = None
        if wk is None:
            wk = WarmKernel(kernel_name, cwd, start_timeout=start_timeout)
            _POOL[key] = wk
        return wk


def _discard(wk: WarmKernel) -> None:
    with _LOCK:
        for k, v in list(_POOL.items()):
            if v is wk:
                del _POOL[k]
    wk.shutdown()


def shutdown_all() -> int:
    """Shut down every warm kernel of this process; returns how many there were.

    Examples
    --------
    >>> shutdown_all()  # none was started in this process
    0
    """
    with _LOCK:
        kernels = list(_POOL.values())
        _POOL.clear()
    for wk in kernels:
        wk.shutdown()
    return len(kernels)


atexit.register(shutdown_all)

_CURRENT = threading.local()


def _engine_class():
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine
    from papermill.utils import merge_kwargs, remove_args

    class WarmEngine(NBClientEngine):
        """papermill's nbclient engine, on the worker's warm kernel (set by :func:`execute`)."""

        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man,
            kernel_name,
            log_output=False,
            stdout_file=None,
            stderr_file=None,
            start_timeout=60,
            execution_timeout=None,
            **kwargs,
        ):
            wk: WarmKernel = _CURRENT.kernel
            kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
            final = merge_kwargs(
                kwargs,
                timeout=execution_timeout,
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
            )
            client = PapermillNotebookClient(nb_man, km=wk.km, **final)
            client.kc = wk.client  # the warm kernel: nbclient neither starts nor shuts down anything
            # nor does it on SIGINT/SIGTERM or at exit: its handlers would shut the kernel down with an interrupt
            # (ipykernel then logs a traceback); the worker's own shutdown_all stops it quietly
            client._async_cleanup_kernel = _no_cleanup
            client._cleanup_kernel = _no_cleanup_sync
            # papermill writes the whole output notebook when each cell starts and again when it completes
            # (0.6 s of a demo district's report, its figures and tables rewritten ~120 times); here at most every
            # SAVE_EVERY seconds while cells run. papermill's final save, after this returns or raises, is whole.
            save = nb_man.save

            def save_now_and_then(**kw):
                if kw.get("nb"):  # as papermill's own save: a replaced notebook object is adopted
                    nb_man.nb = kw["nb"]
                if (nb_man.now() - nb_man.last_save_time).total_seconds() >= SAVE_EVERY:
                    save(**kw)

            nb_man.save = save_now_and_then
            try:
                return client.execute()
            finally:
                nb_man.save = save

    return WarmEngine


async def _no_cleanup() -> None:
    return None


def _no_cleanup_sync() -> None:
    return None


def _register() -> None:
    from papermill.engines import papermill_engines

    if ENGINE not in papermill_engines._engines:
        papermill_engines.register(ENGINE, _engine_class())


def execute(
    notebook: str,
    output: str,
    *,
    parameters: dict,
    cwd: str,
    kernel_name: str,
    start_timeout: int,
    execution_timeout: int | None,
    last: bool = False,
) -> None:
    """Run ``notebook`` with papermill into ``output`` on this worker's warm kernel (started if needed).

    Raises what ``papermill.execute_notebook`` raises; every error but a cell's own
    (``PapermillExecutionError``) discards the kernel, so the next notebook starts a new one.

    ``last``: no further notebook will run on this worker (the batch says so for a serial batch's last task, e.g. a
    one-district run): the kernel is shut down as soon as the notebook has run, instead of being reset and kept
    warm, so its memory is the system's again while the pages are printed (at 1,000,000 students the released
    kernel still held 430 MB: the imported libraries, and what the allocator kept).

    Examples
    --------
    A two-cell notebook (a ``parameters`` cell and one that prints), run twice on the same warm kernel:

    >>> import pathlib, tempfile
    >>> import nbformat
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
    ...          nbformat.v4.new_code_cell("print(x * 2)")]
    >>> kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    >>> nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata=kernel), folder / "double.ipynb")
    >>> for x in (21, 50):
    ...     execute(str(folder / "double.ipynb"), str(folder / f"out{x}.ipynb"), parameters={"x": x}, cwd=str(folder),
    ...             kernel_name="python3", start_timeout=60, execution_timeout=60)
    ...     print(nbformat.read(folder / f"out{x}.ipynb", as_version=4).cells[-1].outputs[0].text.strip())
    42
    100
    >>> shutdown_all()  # the one warm kernel both runs used
    1

    The last notebook of a worker leaves no kernel behind:

    >>> execute(str(folder / "double.ipynb"), str(folder / "out.ipynb"), parameters={"x": 1}, cwd=str(folder),
    ...         kernel_name="python3", start_timeout=60, execution_timeout=60, last=True)
    >>> shutdown_all()
    0
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    _register()
    wk = _acquire(kernel_name, cwd, start_timeout)
    # one asynchronous client per notebook (nbclient's own kind: its cell timeout relies on it), used for the
    # reset and the notebook alike
    wk.client = wk.async_client()
    try:
        wk.prepare(notebook)
        _CURRENT.kernel = wk
        papermill.execute_notebook(
            notebook,
            output,
            parameters=parameters,
            cwd=cwd,
            kernel_name=kernel_name,
            progress_bar=False,
            log_output=False,
            start_timeout=start_timeout,
            execution_timeout=execution_timeout,
            engine_name=ENGINE,
        )
    except PapermillExecutionError:
        if last or not wk.alive():
            _discard(wk)
        else:
            wk.release()
        raise
    except BaseException:
        _discard(wk)
        raise
    else:
        if last:
            _discard(wk)
        else:
            wk.release()
    finally:
        _CURRENT.kernel = None
        with contextlib.suppress(Exception):
            wk.client.stop_channels()
        wk.client = None
