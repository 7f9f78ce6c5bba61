"""Which districts a batch runs, and with which notebook: the folders of ``data/raw/``.

A folder is a district when it holds a student-level export (``students.csv``, or ``crosswalk.yaml`` for an
export in the district's own shape) or only performance-level counts (``level_counts.csv``): a counts-only
district runs with :data:`DEFAULT_COUNTS_NOTEBOOK` unless the run chooses one notebook for every district.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DEFAULT_COUNTS_NOTEBOOK", "counts_only", "discover_districts"]

#: The report of a counts-only district: gaps and means from performance-level counts.
DEFAULT_COUNTS_NOTEBOOK = "notebooks/level_counts_report.ipynb"


def counts_only(folder: str | os.PathLike) -> bool:
    """True for a counts-only district folder: a ``level_counts.csv`` (performance-level counts per school and
    group) and no student-level export (no ``students.csv``, no ``crosswalk.yaml``). Such a district is run
    with :data:`DEFAULT_COUNTS_NOTEBOOK` unless a notebook is chosen for all districts.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "level_counts.csv").write_text("school_id"); counts_only(d)
    True
    >>> _ = (d / "students.csv").write_text("student_id"); counts_only(d)
    False
    """
    p = Path(folder)
    return (
        (p / "level_counts.csv").exists()
        and not (p / "students.csv").exists()
        and not (p / "crosswalk.yaml").exists()
    )


def discover_districts(raw_dir: str | os.PathLike) -> list[str]:
    """District ids in ``raw_dir``: every folder holding a ``students.csv``, a ``crosswalk.yaml`` (an export in
    the district's own shape) or a ``level_counts.csv`` (a counts-only district, see :func:`counts_only`),
    dot-folders skipped.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> raw = pathlib.Path(tempfile.mkdtemp())
    >>> for name, f in [("b", "students.csv"), ("a", "level_counts.csv"), ("notes", "readme.txt"), (".x", "students.csv")]:
    ...     (raw / name).mkdir()
    ...     _ = (raw / name / f).write_text("")
    >>> discover_districts(raw)
    ['a', 'b']
    """
    raw = Path(raw_dir)
    if not raw.is_dir():
        return []
    return sorted(
        p.name
        for p in raw.iterdir()
        if p.is_dir()
        and not p.name.startswith(".")
        and any((p / f).exists() for f in ("students.csv", "crosswalk.yaml", "level_counts.csv"))
    )
