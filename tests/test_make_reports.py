"""`make reports` is incremental, and one broken district does not stop it.

The project's own Makefile runs in a temporary project (its sources, notebooks and virtual environment linked in,
the set-up stamps fresh), so the test runs exactly the recipe a user runs:

1. a first `make reports` builds every district (one batch) and the index;
2. a second one, nothing having changed, runs nothing;
3. one district's raw data is broken: `make reports` runs that district only (the others are up to date and
   keep their reports), exits non-zero naming it, and the broken district keeps its last good report, marked
   stale in the index; the cross-district report covers the districts whose reports are current.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

PROJECT = Path(__file__).resolve().parents[1]
GOOD, BROKEN = ("demo_riverton", "demo_hillcrest"), "demo_fairview"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.skipif(
    not (PROJECT / "notebooks" / "district_report.ipynb").exists(), reason="no district notebook"
)
def test_make_reports_with_one_broken_district(tmp_path):
    from opportunity_research.synth.districts import synthesize

    for name in ("Makefile", "pyproject.toml", "requirements.lock", "opportunity_research", "notebooks"):
        (tmp_path / name).symlink_to(PROJECT / name)
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])
    raw = tmp_path / "data" / "raw"
    synthesize(raw)
    for d in ("demo_lakeside", "demo_pinebrook"):  # three districts keep the test short
        shutil.rmtree(raw / d)
    time.sleep(0.05)
    (tmp_path / ".stamp").touch()  # the environment is up to date
    (raw / ".demo-stamp").touch()  # the demo data too
    env = {
        k: v for k, v in os.environ.items() if k not in ("OPPORTUNITY_RESEARCH_HOME", "MAKEFLAGS", "MFLAGS")
    }

    def make():
        return subprocess.run(
            ["make", "reports", "STAMP=.stamp", "JOBS=2"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )

    reports = tmp_path / "reports"
    first = make()
    assert first.returncode == 0, first.stdout + first.stderr
    assert "out of date: " + " ".join(sorted((*GOOD, BROKEN))) in first.stdout
    assert "ERROR" not in first.stdout + first.stderr and "Traceback" not in first.stdout + first.stderr
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
