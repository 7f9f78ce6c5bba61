"""Run inside a warm notebook kernel: the state one district's notebook could leave behind, and its reset.

The batch runner keeps one Jupyter kernel per worker and runs district after district in it (imports and kernel
start are paid once per worker, not once per district). Before a notebook the runner calls :func:`restore` in the
kernel (unless :func:`release` did this reset right after the previous notebook), which puts back what
:func:`snapshot` recorded right after the kernel warmed up:

* the user namespace (every global the previous notebook defined; ``IPython``'s ``reset(new_session=True)``,
  which also restarts the execution count at 1, so cell numbers in reasons and notebooks are as in a new kernel);
* matplotlib: every open figure closed, ``rcParams`` as they were;
* random state: Python's ``random`` and NumPy's legacy global generator (``np.random.seed``);
* warnings: the filters as they were, and the "already shown" registries invalidated, so a warning a previous
  district triggered is shown again;
* pandas options and NumPy print options / floating-point error handling;
* the working directory, ``sys.path`` and ``os.environ``.

Right after each notebook the runner calls :func:`release`: the same reset, then the memory the district's data
held is handed back to the operating system (garbage collection, pyarrow's memory pool, the C allocator), so a
worker does not keep a district's tables while its pages are printed or while it waits for the next district.

After the baseline, :func:`freeze_baseline` moves every object then alive (the imported modules, their functions,
classes and caches: about 150,000 objects once the district notebook's imports are done) out of the cyclic garbage
collector's generations (:func:`gc.freeze`). They live as long as the kernel anyway; what changes is that no later
collection walks them: the full collections Python runs while a district's notebook allocates, and the one
IPython's ``reset`` runs between districts, cost a fraction of what they did (the demo districts' notebooks spent
about 0.3 CPU seconds each in full collections, most of it walking the imported modules; see README "The fixed
cost of a district"). Objects a district creates are collected as before.

What stays, deliberately: imported modules (``sys.modules``; the point of a warm kernel) and their pure caches.
A module that keeps mutable global state of its own is not reset; the package has none that a notebook changes
(``tests/test_runner_isolation.py`` runs a notebook that changes each item above, then one that checks it sees
none of it, in the same kernel).

Nothing here imports papermill or Jupyter: this module is imported by the kernel, not by the runner.
"""

from __future__ import annotations

import gc
import os
import random
import sys
import warnings

__all__ = ["freeze_baseline", "release", "restore", "return_memory", "snapshot"]

_BASELINE: dict | None = None


def snapshot() -> None:
    """Record the kernel's state as the baseline every later :func:`restore` returns to.

    Examples
    --------
    >>> import random
    >>> snapshot()
    >>> first = random.random()
    >>> random.seed(1)
    >>> restore()
    >>> random.random() == first
    True
    """
    global _BASELINE
    base: dict = {
        "random": random.getstate(),
        "warnings": list(warnings.filters),
        "cwd": os.getcwd(),
        "path": list(sys.path),
        "environ": dict(os.environ),
    }
    if "numpy" in sys.modules:
        import numpy as np

        base["np_random"] = np.random.get_state()
        base["np_print"] = np.get_printoptions()
        base["np_err"] = np.geterr()
    if "matplotlib" in sys.modules:
        import matplotlib as mpl

        base["rc"] = dict(mpl.rcParams)
    if "pandas" in sys.modules:
        import pandas as pd

        base["pandas"] = {k: pd.get_option(k) for k in _pandas_options(pd)}
    _BASELINE = base


def freeze_baseline() -> int:
    """Collect the garbage, then move every object still alive out of the garbage collector's generations
    (:func:`gc.freeze`; see the module docstring); returns how many objects are frozen. The warm-up runs it once,
    after :func:`snapshot`.

    Examples
    --------
    >>> import gc
    >>> freeze_baseline() > 0, gc.get_freeze_count() > 0
    (True, True)
    >>> gc.unfreeze()  # (this example's process is no kernel)
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def _pandas_options(pd) -> list[str]:
    keys = []
    for key in pd._config.config._registered_options:  # every registered option, deprecated ones excluded
        if key not in pd._config.config._deprecated_options:
            keys.append(key)
    return keys


def restore() -> None:
    """Put the kernel back to the :func:`snapshot` baseline and clear the user namespace.

    Examples
    --------
    >>> import warnings
    >>> snapshot()
    >>> before = list(warnings.filters)
    >>> warnings.simplefilter("error")
    >>> restore()
    >>> warnings.filters == before
    True
    """
    if _BASELINE is None:
        raise RuntimeError("kernel_isolation.restore() before snapshot()")
    base = _BASELINE
    os.chdir(base["cwd"])
    sys.path[:] = base["path"]
    for k in set(os.environ) - set(base["environ"]):
        del os.environ[k]
    os.environ.update(base["environ"])
    random.setstate(base["random"])
    warnings.filters[:] = base["warnings"]
    warnings._filters_mutated()  # the per-module "already shown" registries are stale from here on
    if "np_random" in base:
        import numpy as np

        np.random.set_state(base["np_random"])
        np.set_printoptions(**base["np_print"])
        np.seterr(**base["np_err"])
    if "matplotlib" in sys.modules:
        import matplotlib as mpl

        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")
        if "rc" in base:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dict.update(mpl.rcParams, base["rc"])  # as recorded: no re-validation, no deprecation noise
                for k in set(mpl.rcParams) - set(base["rc"]):
                    dict.__delitem__(mpl.rcParams, k)
    if "pandas" in base:
        import pandas as pd

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for k, v in base["pandas"].items():
                if pd.get_option(k) != v:
                    pd.set_option(k, v)
    from IPython import get_ipython

    ip = get_ipython()
    if ip is not None:  # None outside a kernel
        ip.reset(new_session=True)


def release() -> None:
    """:func:`restore`, then return the memory the notebook held to the operating system (:func:`return_memory`).

    Clearing the namespace frees the district's frames, but the process keeps the freed memory for reuse:
    pyarrow's memory pool keeps the buffers the tables were read into, and the C allocator keeps freed pages
    of its heap. Measured on a 100,000-student district's analysis (ipykernel process, 2-core machine of issue
    21): 850 MB resident after the namespace is cleared, about 340 MB after this (the imported libraries alone
    take about 270 MB).

    Examples
    --------
    >>> snapshot()
    >>> release()
    """
    restore()
    return_memory()


def return_memory() -> None:
    """Give the memory this process has freed back to the operating system: Python's garbage collector, then
    pyarrow's memory pool and the C allocator's free pages (glibc's ``malloc_trim``; of every thread's arena).

    Used by :func:`release` in a kernel, and in the batch runner after a district's data is processed and by its
    gate and screen threads: each thread allocates from an arena of its own, whose freed pages the C allocator
    otherwise keeps (measured at 1,000,000 students: the gate's audit left 300 MB resident after it returned, while
    the screen and Chromium ran).

    Examples
    --------
    >>> return_memory()
    """
    gc.collect()
    if "pyarrow" in sys.modules:
        sys.modules["pyarrow"].default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc only; another C library keeps its pages
        except (OSError, AttributeError):
            pass
