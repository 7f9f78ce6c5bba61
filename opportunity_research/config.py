"""Paths and analysis defaults. Side-effect free: importing this module reads nothing and writes nothing.

Every default here is a documented, overridable choice; functions take them as keyword arguments.
Paths are relative to the project root, which is the current working directory unless the
``OPPORTUNITY_RESEARCH_HOME`` environment variable names another folder.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "ANALYSIS_DEFAULTS",
    "DEMO_DISTRICTS",
    "DEMO_SEED",
    "HOURS_PER_SUBJECT_YEAR",
    "MIN_CELL_SIZE",
    "PAGE_SCHOOLS",
    "analysis_defaults",
    "key_path",
    "processed_dir",
    "project_root",
    "raw_dir",
    "reports_dir",
    "resolve",
    "use_arrow_pool",
]

#: Smallest number of students a reported cell may describe (the most common state minimum).
MIN_CELL_SIZE = 10
#: Most schools a page table lists one by one: a table of more schools (a measure per school, growth per school)
#: shows on the HTML and PDF pages the lowest, middle and highest schools of each comparison and names the CSV
#: table with every school (:mod:`opportunity_research.report.school_detail`); the CSV tables keep every school.
PAGE_SCHOOLS = 20
#: Hours of class time per core subject in a school year (the study's 180 hours).
HOURS_PER_SUBJECT_YEAR = 180.0
#: Seed of the synthetic demo districts.
DEMO_SEED = 20180925
#: Identifiers of the five synthetic demo districts, largest first.
DEMO_DISTRICTS = ("demo_lakeside", "demo_riverton", "demo_hillcrest", "demo_fairview", "demo_pinebrook")

#: Default analysis parameters of a district report. The batch runner passes each of them explicitly to the
#: notebook (overridden only by the run's own options), so what the batch publishes never depends on the
#: literal values a notebook's ``parameters`` cell happens to hold; the committed template's cell states
#: the same values (a test checks it), and the reproducibility card lists any that differ.
ANALYSIS_DEFAULTS = {
    "subjects": ["ela", "math"],
    "min_n": MIN_CELL_SIZE,
    "reference_groups": {},
    "cuts": {},
    "n_boot": 1000,
    "seed": DEMO_SEED,
}


def analysis_defaults() -> dict:
    """A fresh, deep copy of :data:`ANALYSIS_DEFAULTS` (safe to modify).

    Examples
    --------
    >>> d = analysis_defaults()
    >>> d["cuts"]["engaged"] = 9
    >>> analysis_defaults()["cuts"], analysis_defaults()["n_boot"]
    ({}, 1000)
    """
    import copy

    return copy.deepcopy(ANALYSIS_DEFAULTS)


def project_root() -> Path:
    """The project folder: ``$OPPORTUNITY_RESEARCH_HOME`` if set, else the nearest folder at or above the
    current directory that holds a ``data`` folder (so a notebook kernel started in ``notebooks/`` finds it),
    else the current directory.

    Examples
    --------
    >>> import os, tempfile
    >>> home = tempfile.mkdtemp()
    >>> os.environ["OPPORTUNITY_RESEARCH_HOME"] = home
    >>> project_root() == Path(home).resolve(), raw_dir() == Path(home).resolve() / "data" / "raw"
    (True, True)
    >>> del os.environ["OPPORTUNITY_RESEARCH_HOME"]
    """
    if "OPPORTUNITY_RESEARCH_HOME" in os.environ:
        return Path(os.environ["OPPORTUNITY_RESEARCH_HOME"]).resolve()
    here = Path.cwd().resolve()
    return next((p for p in (here, *here.parents) if (p / "data").is_dir()), here)


def resolve(path: str | os.PathLike) -> Path:
    """An absolute path as is; a relative one relative to :func:`project_root`.

    Examples
    --------
    >>> resolve("/tmp/x") == Path("/tmp/x"), resolve("data/processed") == project_root() / "data" / "processed"
    (True, True)
    """
    p = Path(path)
    return p if p.is_absolute() else project_root() / p


def raw_dir() -> Path:
    """``data/raw``: district exports, never written by the package (except by ``synthesize``).

    Examples
    --------
    >>> raw_dir().relative_to(project_root()).as_posix()
    'data/raw'
    """
    return project_root() / "data" / "raw"


def processed_dir() -> Path:
    """``data/processed``: typed, pseudonymized parquet tables, rebuilt from raw only.

    Examples
    --------
    >>> processed_dir().relative_to(project_root()).as_posix()
    'data/processed'
    """
    return project_root() / "data" / "processed"


def reports_dir() -> Path:
    """``reports``: executed notebooks, HTML reports, tables, figures and findings.

    Examples
    --------
    >>> reports_dir().name
    'reports'
    """
    return project_root() / "reports"


def key_path() -> Path:
    """The pseudonymization key file: ``$OPPORTUNITY_RESEARCH_KEY_FILE`` or ``data/pseudonym.key`` (git-ignored).

    Examples
    --------
    >>> import os
    >>> os.environ["OPPORTUNITY_RESEARCH_KEY_FILE"] = "/tmp/my.key"
    >>> key_path().name
    'my.key'
    >>> del os.environ["OPPORTUNITY_RESEARCH_KEY_FILE"]
    """
    env = os.environ.get("OPPORTUNITY_RESEARCH_KEY_FILE")
    return Path(env).resolve() if env else project_root() / "data" / "pseudonym.key"


#: pyarrow's memory pool for reading and writing tables, returning freed pages at once. pyarrow 26 defaults to
#: mimalloc, which on a 1,000,000-student district spent more time returning pages to the system than reading:
#: loading the processed tables took 30-45 CPU-s with mimalloc against 3.8-4.9 with jemalloc, and ``process``
#: 105 CPU-s (70 of them system time) and 2.96 GB peak against 70 CPU-s and 2.70 GB (the C allocator: 56 CPU-s but
#: 4.08 GB). jemalloc's default keeps freed pages for a second and returns them only when it next allocates: the
#: 1M tables, freed, stayed resident (3.1 GB) in an idle process; with no delay it keeps 0.3 GB. Measured on the
#: 2-core machine of issue 21.
ARROW_POOL = "jemalloc"


def use_arrow_pool() -> str:
    """Make :data:`ARROW_POOL` pyarrow's default memory pool (freed pages returned at once), unless ``ARROW_DEFAULT_MEMORY_POOL`` chooses one
    (pyarrow's own setting) or this pyarrow was built without it; returns the pool in use. Called once when
    the package is imported.

    Examples
    --------
    >>> use_arrow_pool() in {"jemalloc", "mimalloc", "system"}
    True
    """
    import pyarrow as pa

    if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        try:
            pa.set_memory_pool(getattr(pa, f"{ARROW_POOL}_memory_pool")())
            if ARROW_POOL == "jemalloc":
                pa.jemalloc_set_decay_ms(0)  # freed pages go back at once (see ARROW_POOL)
        except (AttributeError, NotImplementedError):  # a build without it keeps its default
            pass
    return pa.default_memory_pool().backend_name


def use_small_pages() -> bool:
    """Turn off numpy's advice to back its large arrays with transparent huge pages, unless
    ``NUMPY_MADVISE_HUGEPAGE`` (numpy's own switch) is set; returns whether the advice is on. Called once when the
    package is imported.

    numpy asks the kernel for huge pages (``madvise(MADV_HUGEPAGE)``) on every array of 4 MB or more. Where the
    kernel's ``transparent_hugepage/defrag`` is ``madvise`` (a common default) a huge page that is not free at
    once is made by compacting memory while the allocation waits, and the advice stays on the memory after numpy
    frees it (numpy issue 31590), so it must be off before the large arrays are made, not around one step. A large
    district's pipeline makes thousands of such arrays: on the 2-core machine of issue 21 the 1,000,000-student
    analysis took 427 s wall and 299 CPU-s with the advice and 201 s and 155 CPU-s without it (the same tables),
    and processing the district 66.6 and 51.6 CPU-s. The advice changes only speed, never a result.

    Examples
    --------
    >>> import os
    >>> use_small_pages() == ("NUMPY_MADVISE_HUGEPAGE" in os.environ and os.environ["NUMPY_MADVISE_HUGEPAGE"] != "0")
    True
    """
    import numpy as np

    core = getattr(getattr(np, "_core", None), "multiarray", None)
    get, toggle = getattr(core, "_get_madvise_hugepage", None), getattr(core, "_set_madvise_hugepage", None)
    if toggle is not None and "NUMPY_MADVISE_HUGEPAGE" not in os.environ:
        toggle(False)
    return bool(get()) if get is not None else False
