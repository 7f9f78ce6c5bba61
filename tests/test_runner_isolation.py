"""The warm kernel: one kernel per worker, reused district after district, with nothing leaking between them.

A probe notebook records what a notebook can see of the kernel's state (globals, matplotlib figures and rcParams,
random draws, warnings filters, pandas options, cwd, environment, sys.path, the execution count); a polluting
notebook changes every one of them. probe, polluter, probe on the same kernel: both probes must see the same state,
and the same kernel process. A batch run in which the same kernel serves two districts, prints nothing that looks
like an error and stages nothing inside reports/: tests/test_runner_engine.py (one batch for its checks and these).
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from opportunity_research.batch import warm_kernel

try:  # tests/ as a package or as a plain folder on sys.path
    from .test_runner import TINY, make_district
except ImportError:  # pragma: no cover
    from test_runner import TINY, make_district

# the batches print in the worker's one Chromium (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("worker_browser")

PROBE = """
import json, os, random, sys, warnings
import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
state = {
    "pid": os.getpid(),
    "globals": sorted(k for k in globals() if not k.startswith("_") and k not in
                      ("In", "Out", "get_ipython", "exit", "quit", "open")),
    "figures": plt.get_fignums(),
    "rc": {k: str(mpl.rcParams[k]) for k in ("lines.linewidth", "font.size", "figure.dpi", "axes.grid")},
    "random": random.random(),
    "np_random": float(np.random.random()),
    "warnings": [repr(f) for f in warnings.filters],
    "pandas": pd.get_option("display.max_rows"),
    "np_print": np.get_printoptions()["precision"],
    "cwd": os.getcwd(),
    "env": os.environ.get("OPPORTUNITY_LEAK"),
    "path": sys.path[-1],
    "count": get_ipython().execution_count,
    "history_db": get_ipython().history_manager.enabled,
    "blas_threads": sorted({p["num_threads"] for p in __import__("threadpoolctl").threadpool_info()}),
}
with warnings.catch_warnings(record=True) as seen:
    warnings.warn("shown once per location", UserWarning)
state["warning_shown"] = len(seen)
import gc, weakref
class Cycle:
    pass
cycle = Cycle()
cycle.me = cycle
alive = weakref.ref(cycle)
del cycle
gc.collect()
state["gc"] = {"baseline_frozen": gc.get_freeze_count() > 1000, "cycle_collected": alive() is None}
json.dump(state, open(out, "w"))
"""

POLLUTE = """
import os, random, sys, warnings
import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
LEAK = 1
mpl.rcParams["lines.linewidth"] = 9
mpl.rcParams["axes.grid"] = True
plt.figure()
random.seed(1)
np.random.seed(1)
warnings.simplefilter("error")
pd.set_option("display.max_rows", 3)
np.set_printoptions(precision=2)
os.environ["OPPORTUNITY_LEAK"] = "1"
sys.path.append("/leak")
os.chdir("/")
"""


def _notebook(path: Path, code: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell('out = "unused.json"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell(code),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture()
def kernels():
    yield
    warm_kernel.shutdown_all()


@pytest.fixture(scope="module")
def warm_cwd(tmp_path_factory):
    """The working folder of this module's tests that need a warm kernel but not a new one: they share one (the
    worker's kernel for that folder, as districts do in a batch; each notebook on it reset to the baseline), where
    each started its own (about 1.5 CPU-s). A test that replaces it (a timeout) leaves the new one to the next.
    Shut down with the module. (The test of the reset itself starts its own, from a known state.)"""
    yield str(tmp_path_factory.mktemp("warm"))
    warm_kernel.shutdown_all()


def test_no_state_leaks_between_notebooks_on_the_warm_kernel(tmp_path, kernels, monkeypatch):
    # the kernel's one BLAS thread comes from kernel_env, not from the tests' environment (tests/conftest.py)
    for name in warm_kernel.THREAD_LIMITS:
        monkeypatch.delenv(name, raising=False)
    probe, pollute = (
        _notebook(tmp_path / "probe.ipynb", PROBE),
        _notebook(tmp_path / "pollute.ipynb", POLLUTE),
    )
    kw = {"cwd": str(tmp_path), "kernel_name": "python3", "start_timeout": 60, "execution_timeout": 300}
    ran = []  # what the runner ran in the kernel besides the notebooks
    run = warm_kernel.WarmKernel.run
    monkeypatch.setattr(
        warm_kernel.WarmKernel, "run", lambda self, code, **k: (ran.append(code), run(self, code, **k))
    )

    warm_kernel.execute(
        str(probe), str(tmp_path / "p1.ipynb"), parameters={"out": str(tmp_path / "a.json")}, **kw
    )
    warm_kernel.execute(str(pollute), str(tmp_path / "x.ipynb"), parameters={"out": "unused"}, **kw)
    warm_kernel.execute(
        str(probe), str(tmp_path / "p2.ipynb"), parameters={"out": str(tmp_path / "b.json")}, **kw
    )

    first, second = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    assert first["pid"] == second["pid"]  # the same kernel process served all three notebooks
    assert "LEAK" not in second["globals"] and "x" in second["globals"]
    assert second["figures"] == []
    assert second["rc"]["lines.linewidth"] != "9" and second["rc"]["axes.grid"] == "False"
    assert second["env"] is None and second["path"] != "/leak" and second["cwd"] == str(tmp_path)
    assert second["pandas"] != 3 and second["np_print"] != 2
    assert second["warning_shown"] == 1  # not turned into an error, and shown again
    assert first["history_db"] is False  # no cell source written to ~/.ipython's history database
    assert first["blas_threads"] == [1]  # one BLAS thread, as in a Dask worker's kernel
    # the warm-up's objects are out of the garbage collector's generations; a notebook's garbage is collected
    assert first["gc"] == {"baseline_frozen": True, "cycle_collected": True}
    assert second == first  # every item, including the random draws and the execution count
    # the polluter's own output notebook numbers its cells from 1, as in a new kernel
    counts = [c.execution_count for c in nbformat.read(tmp_path / "x.ipynb", as_version=4).cells]
    assert counts[0] == 1
    # one reset per notebook: the release right after it; the restore before a notebook only after the warm-up
    assert sum("_iso.release()" in c for c in ran) == 3 and sum("_iso.restore()" in c for c in ran) == 1


def test_a_cell_error_keeps_the_kernel_and_a_timeout_replaces_it(tmp_path, warm_cwd):
    from papermill.exceptions import PapermillExecutionError

    probe = _notebook(tmp_path / "probe.ipynb", PROBE)
    boom = _notebook(tmp_path / "boom.ipynb", "raise ValueError('planted')")
    slow = _notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(60)")
    kw = {"cwd": warm_cwd, "kernel_name": "python3", "start_timeout": 60, "execution_timeout": 300}

    def pid(name):
        warm_kernel.execute(
            str(probe), str(tmp_path / f"{name}.ipynb"), parameters={"out": str(tmp_path / name)}, **kw
        )
        return json.loads((tmp_path / name).read_text())["pid"]

    before = pid("a")
    with pytest.raises(PapermillExecutionError):
        warm_kernel.execute(str(boom), str(tmp_path / "boom-out.ipynb"), parameters={}, **kw)
    assert pid("b") == before
    with pytest.raises(Exception) as exc:
        warm_kernel.execute(
            str(slow), str(tmp_path / "slow-out.ipynb"), parameters={}, **{**kw, "execution_timeout": 1}
        )
    assert not isinstance(exc.value, PapermillExecutionError)
    assert pid("c") != before  # a new kernel: the old one may still be busy in the cell that timed out


def test_the_kernel_returns_a_notebooks_memory_as_soon_as_it_ends(tmp_path, warm_cwd):
    """A district's tables are not kept in the warm kernel while its pages are printed or the worker waits:
    right after the notebook (ended, or failed in a cell) its namespace is cleared and the memory goes back to
    the operating system."""
    import psutil
    from papermill.exceptions import PapermillExecutionError

    hold = (  # 240 MB of NumPy and 120 MB in pyarrow's memory pool, held in the namespace
        "import os, numpy as np, pyarrow as pa\nopen(out, 'w').write(str(os.getpid()))\n"
        "big = np.ones(30_000_000)\ntable = pa.array(np.arange(15_000_000))\n"
    )
    kw = {"cwd": warm_cwd, "kernel_name": "python3", "start_timeout": 60, "execution_timeout": 300}
    for name, end in (("ends", "big.sum()"), ("fails", "raise ValueError('planted')")):
        nb = _notebook(tmp_path / f"{name}.ipynb", hold + end)
        try:
            warm_kernel.execute(
                str(nb), str(tmp_path / f"{name}-out.ipynb"), parameters={"out": str(tmp_path / name)}, **kw
            )
        except PapermillExecutionError:
            assert name == "fails"
        rss = psutil.Process(int((tmp_path / name).read_text())).memory_info().rss
        assert rss < 300e6, (name, rss)


def test_the_output_notebook_is_written_at_start_and_end_not_at_every_cell(tmp_path, warm_cwd, monkeypatch):
    """papermill saves the whole output notebook at every cell start and end; the warm engine saves it when the
    run starts and when it ends (or fails), and in between at most every SAVE_EVERY seconds."""
    import papermill.engines
    from papermill.exceptions import PapermillExecutionError

    writes = []
    write = papermill.engines.write_ipynb
    monkeypatch.setattr(
        papermill.engines, "write_ipynb", lambda nb, path: (writes.append(path), write(nb, path))
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"print({i})") for i in range(12)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "twelve.ipynb")
    kw = {"cwd": warm_cwd, "kernel_name": "python3", "start_timeout": 60, "execution_timeout": 300}
    warm_kernel.execute(str(tmp_path / "twelve.ipynb"), str(tmp_path / "out.ipynb"), parameters={}, **kw)
    assert len(writes) == 2  # papermill alone: 2 + 2 x 12
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert [c.outputs[0].text.strip() for c in out.cells] == [str(i) for i in range(12)]
    # a failing cell: the final save still holds every output, the error and papermill's marker
    writes.clear()
    nb.cells[5] = nbformat.v4.new_code_cell("raise ValueError('planted')")
    nbformat.write(nb, tmp_path / "boom.ipynb")
    with pytest.raises(PapermillExecutionError):
        warm_kernel.execute(
            str(tmp_path / "boom.ipynb"), str(tmp_path / "boom-out.ipynb"), parameters={}, **kw
        )
    out = nbformat.read(tmp_path / "boom-out.ipynb", as_version=4)
    code = [
        c for c in out.cells if c.cell_type == "code"
    ]  # papermill adds two markdown cells: where it failed
    assert len(writes) == 2 and "planted" in json.dumps(code[5].outputs)
    assert [c.outputs[0].text.strip() for c in code[:5]] == ["0", "1", "2", "3", "4"]
    # and a long run is still saved as it goes
    writes.clear()
    monkeypatch.setattr(warm_kernel, "SAVE_EVERY", 0.0)
    warm_kernel.execute(str(tmp_path / "twelve.ipynb"), str(tmp_path / "out.ipynb"), parameters={}, **kw)
    assert len(writes) == 2 + 2 * 12


def test_a_kernel_that_dies_is_dead_at_once_for_the_notebooks_client(warm_cwd):
    """The notebook's client asks the kernel's manager (the process) whether the kernel lives, not heartbeats: a
    missed one took a second to show, and its socket lingered a second more when the channels stopped (the
    notebook running ahead of a serial batch stopped 3.6 s after Ctrl-C)."""
    import os
    import signal

    from jupyter_core.utils import run_sync

    wk = warm_kernel._acquire(
        "python3", warm_cwd, 60
    )  # (this module's kernel, killed here: the last to use it)
    kc = wk.async_client()
    try:
        assert run_sync(kc.is_alive)()
        os.kill(wk.km.provisioner.process.pid, signal.SIGKILL)
        wk.km.provisioner.process.wait(60)  # (reaped: a deadlock guard, not a timing)
        assert not run_sync(kc.is_alive)() and not kc.hb_channel.is_alive()
    finally:
        kc.stop_channels()


def test_one_district_with_jobs_2_runs_in_this_process_without_a_cluster(tmp_path, monkeypatch, kernels):
    """No more local workers than districts: a second worker would only start, warm a kernel and wait."""
    import distributed

    from opportunity_research.batch.runner import run_batch

    def no_cluster(*args, **kwargs):
        raise AssertionError("a LocalCluster was started for one district")

    monkeypatch.setattr(distributed, "LocalCluster", no_cluster)
    make_district(tmp_path, "alpha")
    result = run_batch(["alpha"], notebook=TINY, cross_notebook=None, root=tmp_path, process=False, jobs=2)
    assert [r.status for r in result.districts] == ["ok"], [r.reason for r in result.districts]
