"""Shared demo data for tests: the five synthetic districts, synthesized and processed once per test run.

Under pytest (``conftest.py`` sets :data:`SHARED` to a folder of the run's temporary directory, common to every
xdist worker) the first worker that needs the data builds it under a file lock and the others wait and reuse it;
the files are then made read-only (tests only read them). Outside pytest, a temporary folder per process.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import stat
import tempfile
from pathlib import Path

from opportunity_research import config
from opportunity_research.intake.dataset import load_district, process_district
from opportunity_research.synth.districts import synthesize

TEST_KEY = "test-key-0123456"


#: Folder shared by every worker of a test run (set by conftest.py); None: a folder per process.
SHARED: Path | None = None


def _build(root: Path) -> None:
    for raw in synthesize(root / "raw", seed=config.DEMO_SEED):
        process_district(raw, processed_root=root / "processed", key=TEST_KEY)
    for f in root.rglob("*"):
        if f.is_file():
            f.chmod(f.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


@functools.cache
def demo_root() -> Path:
    """A folder with raw/<district>/ (CSV + truth.json) and processed/<district>/ (parquet), read-only."""
    if SHARED is None:
        root = Path(tempfile.mkdtemp(prefix="opportunity-demo-"))
        _build(root)
        return root
    SHARED.parent.mkdir(parents=True, exist_ok=True)
    with open(SHARED.with_name(SHARED.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder; the others wait, then find it complete
        done = SHARED / ".complete"
        if not done.exists():
            if SHARED.exists():  # a builder that died half-way
                import shutil

                shutil.rmtree(SHARED)
            SHARED.mkdir()
            _build(SHARED)
            done.write_text(str(os.getpid()))
    return SHARED


def district(district_id: str):
    return load_district(district_id, processed_root=demo_root() / "processed")


def truth(district_id: str) -> dict:
    return json.loads((demo_root() / "raw" / district_id / "truth.json").read_text())
