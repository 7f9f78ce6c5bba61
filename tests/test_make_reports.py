"""`make reports` is incremental, and one broken district does not stop it.

The project's own Makefile runs in a temporary project (its sources, notebooks and virtual environment linked in,
the set-up stamps fresh), so the test runs exactly the recipe a user runs:

1. a first `make reports` builds every district (one batch) and the index;
2. a second one, nothing having changed, runs nothing;
3. one district's raw data is broken: `make reports` runs that district only (the other is up to date and
   keeps its report), exits non-zero naming it, and the broken district keeps its last good report, marked
   stale in the index; the cross-district report covers the districts whose reports are current.

Two of the demo districts, the two smallest (one healthy, one to break), as raw files copied from the run's shared
demo data (tests/demo.py, the same files `synthesize` writes): a third district would add a report build to the
suite and nothing to the test. The batch validates and processes them as it does any district; the notebooks it
runs are the tests' tiny report and cross-district notebooks, in the places of the real ones: the test is about
make and the batch, and the real notebooks' build is `make reports` itself, which `make test` runs first.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

try:  # tests/ as a package or as a plain folder on sys.path
    from . import demo
except ImportError:  # pragma: no cover
    import demo

pytestmark = pytest.mark.long(24)  # run first (tests/conftest.py)

TESTS = Path(__file__).resolve().parent
PROJECT = TESTS.parent
GOOD, BROKEN = ("demo_pinebrook",), "demo_fairview"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.skipif(
    not (PROJECT / "notebooks" / "district_report.ipynb").exists(), reason="no district notebook"
)
def test_make_reports_with_one_broken_district(tmp_path):
    for name in ("Makefile", "pyproject.toml", "requirements.lock", "opportunity_research"):
        (tmp_path / name).symlink_to(PROJECT / name)
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for name, source in (
        ("district_report", TESTS / "notebooks" / "tiny_report"),
        ("cross_district", TESTS / "notebooks" / "tiny_cross"),
        ("level_counts_report", PROJECT / "notebooks" / "level_counts_report"),
    ):
        (notebooks / f"{name}.ipynb").symlink_to(source.with_suffix(".ipynb"))
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])
    raw = tmp_path / "data" / "raw"
    for d in (*GOOD, BROKEN):  # writable copies of the shared, read-only demo files
        shutil.copytree(demo.demo_root() / "raw" / d, raw / d, copy_function=shutil.copyfile)
    time.sleep(0.05)
    (tmp_path / ".stamp").touch()  # the environment is up to date
    (raw / ".demo-stamp").touch()  # the demo data too
    env = {
        k: v for k, v in os.environ.items() if k not in ("OPPORTUNITY_RESEARCH_HOME", "MAKEFLAGS", "MFLAGS")
    }

    reports = tmp_path / "reports"
    seen: set[str] = set()  # every name that appeared directly in reports/ while make ran

    def make():
        with (
            open(tmp_path / "make.out", "w+") as out,
            open(tmp_path / "make.err", "w+") as err,
            subprocess.Popen(
                ["make", "reports", "STAMP=.stamp", "JOBS=2"], cwd=tmp_path, env=env, stdout=out, stderr=err
            ) as proc,
        ):
            end = time.monotonic() + 1800
            while proc.poll() is None and time.monotonic() < end:
                if reports.is_dir():
                    seen.update(p.name for p in reports.iterdir())
                time.sleep(0.05)
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            out.seek(0), err.seek(0)
            return subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())

    first = make()
    assert first.returncode == 0, first.stdout + first.stderr
    assert "out of date: " + " ".join(sorted((*GOOD, BROKEN))) in first.stdout
    printed = first.stdout + first.stderr  # a good run prints nothing that looks like an error
    assert not [w for w in ("ERROR", "Traceback", "KeyboardInterrupt", "Exception") if w in printed], printed
    # and stages its work outside the published folder: only reports and the index ever appear in reports/ (and,
    # for an instant, the one-file temporary of the index's or manifest's atomic write, renamed over it)
    one_file = re.compile(r"\.(index\.html|manifest\.json)\.\w+\.tmp")
    seen = {name for name in seen if not one_file.fullmatch(name)}
    assert seen == {*GOOD, BROKEN, "cross_district", "index.html", "manifest.json"}, seen
    run1 = json.loads((reports / "manifest.json").read_text())["run_id"]
    good_report = {p.name: p.read_bytes() for p in (reports / BROKEN).rglob("*") if p.is_file()}
    published = json.loads((reports / BROKEN / ".publish.json").read_text())["published_at"]

    # nothing changed: nothing runs
    again = make()
    assert again.returncode == 0 and "opportunity-research run" not in again.stdout, (
        again.stdout + again.stderr
    )
    assert "out of date" not in again.stdout
    assert json.loads((reports / "manifest.json").read_text())["run_id"] == run1

    # break one district: a grade outside the contract
    students = pd.read_csv(raw / BROKEN / "students.csv", dtype=str)
    students.loc[3, "grade"] = "42"
    students.to_csv(raw / BROKEN / "students.csv", index=False)

    made = make()
    out = made.stdout + made.stderr
    assert made.returncode != 0, out
    assert f"failed: {BROKEN}" in made.stderr and "open reports/index.html" in made.stdout
    assert f"out of date: {BROKEN}\n" in made.stdout  # the healthy districts are up to date: not rebuilt
    assert "process --all" not in out  # make no longer stops at a separate processing step

    manifest = json.loads((reports / "manifest.json").read_text())
    entries = {e["district_id"]: e for e in manifest["districts"]}
    for d in GOOD:  # built by the first run, kept
        assert entries[d]["status"] == "ok"
        assert json.loads((reports / d / ".publish.json").read_text())["run_id"] == run1 != manifest["run_id"]
    broken = entries[BROKEN]
    assert (broken["status"], broken["stale"], broken["last_good"], broken["report"]) == (
        "failed",
        True,
        published,
        f"{BROKEN}/report.html",
    )
    assert broken["reason"].startswith("data validation failed")
    assert "column grade: must be between 3 and 12 (value '42')" in broken["reason"]
    # its last good report is untouched and still linked, marked stale with the reason and dates
    assert {p.name: p.read_bytes() for p in (reports / BROKEN).rglob("*") if p.is_file()} == good_report
    index = (reports / "index.html").read_text()
    row = next(r for r in index.split("<tr>") if f'href="{BROKEN}/report.html"' in r)
    assert "stale" in row and f'href="{BROKEN}/report.html"' in row and "data validation failed" in row
    assert published[:10] in row and broken["failed_at"][:10] in row
    # the cross-district report covers the districts whose reports are current
    assert manifest["cross_district"]["status"] == "ok"
    assert manifest["cross_district"]["districts"] == sorted(GOOD)
    # the broken district's traceback is in the private log folder, not in reports/
    assert (tmp_path / broken["log"] / "traceback.txt").exists() and broken["log"].startswith("logs/")
