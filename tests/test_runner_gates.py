"""The batch runner's gates and its interrupt: the real validation and processing on demo districts (a broken one is
refused, nothing of it published or shown), the disclosure gate (refuses a district whose tables fail the audit, runs
while the pages are built, fails a district when it raises) and Ctrl-C on a LocalCluster.

Split from tests/test_runner.py (its tiny districts, notebooks and helpers are imported from there) so that the two
files of long batch tests run on different xdist workers.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from opportunity_research.batch.runner import run_batch

try:  # tests/ as a package or as a plain folder on sys.path
    from . import demo
    from .test_runner import NOTEBOOKS, TINY, TINY_REPORT_FILES, cli, files, make_district
except ImportError:  # pragma: no cover
    import demo
    from test_runner import NOTEBOOKS, TINY, TINY_REPORT_FILES, cli, files, make_district

# run first (tests/conftest.py); the serial batches print in one Chromium (conftest.worker_browser)
pytestmark = [pytest.mark.long(40), pytest.mark.usefixtures("worker_browser")]


# ---------------------------------------------------------------------------------------------
# the real validation and processing on demo districts


@pytest.mark.skipif(
    importlib.util.find_spec("opportunity_research.intake.validation") is None,
    reason="opportunity_research.intake.validation not written yet",
)
def test_demo_batch(tmp_path, monkeypatch, capsys):
    # two demo districts, the smallest (the runner is under test here, not the generator): writable copies of
    # the run's shared demo data (tests/demo.py: the files `synthesize` writes), and a broken copy of one.
    # A serial batch (--jobs 1, in the worker's one Chromium): validation and processing are the same steps of
    # the same task on a Dask worker, where tests/test_cluster.py runs them on demo districts (and
    # tests/test_runner.py::test_batch_two_good_districts_and_a_broken_one reports failed districts from a
    # LocalCluster); a LocalCluster here cost two more worker processes, kernels and browsers (about 10 CPU-s)
    good = ["demo_fairview", "demo_pinebrook"]
    raw = tmp_path / "data" / "raw"
    for d in good:
        shutil.copytree(demo.demo_root() / "raw" / d, raw / d, copy_function=shutil.copyfile)
    shutil.copytree(raw / good[0], raw / "demo_broken")
    students = pd.read_csv(raw / "demo_broken" / "students.csv", dtype=str)
    students.loc[3, "grade"] = "42"  # outside the contract's 3-12
    lost = students.loc[4, "student_id"]
    students.loc[4, "student_id"] = students.loc[3, "student_id"]  # a duplicate id: no reason may show it
    students.to_csv(raw / "demo_broken" / "students.csv", index=False)
    monkeypatch.setenv("OPPORTUNITY_RESEARCH_HOME", str(tmp_path))
    code = cli(["run", "--jobs", "1", "--notebook", str(TINY), "--no-cross"])
    out = capsys.readouterr().out
    assert code == 1
    manifest = {
        e["district_id"]: e
        for e in json.loads((tmp_path / "reports" / "manifest.json").read_text())["districts"]
    }
    assert {k: v["status"] for k, v in manifest.items()} == {
        "demo_broken": "failed",
        good[0]: "ok",
        good[1]: "ok",
    }
    reason = manifest["demo_broken"]["reason"]
    assert reason.startswith("data validation failed (")
    assert "students.csv, line 5, column grade: must be between 3 and 12 (value '42')" in reason
    assert "students.csv, line 6, column student_id: duplicate key (student_id) (value [id])" in reason
    assert reason.endswith("Full list: opportunity-research validate data/raw/demo_broken")
    assert "data validation failed" in out
    assert not (tmp_path / "reports" / "demo_broken").exists()  # it never had a report
    assert not (tmp_path / "data" / "processed" / "demo_broken").exists()
    for d in good:
        truth = json.loads((raw / d / "truth.json").read_text())
        findings = json.loads((tmp_path / "reports" / d / "findings.json").read_text())
        assert findings["n_students"] == truth["n_students"]
        assert len(manifest[d]["inputs"]) >= 10  # checksums of the raw files
    shared = out + "".join(
        p.read_text()
        for p in (tmp_path / "reports").rglob("*")
        if p.is_file() and p.suffix not in (".png", ".pdf")
    )  # PDFs: printed from the HTML
    assert students.loc[3, "student_id"] not in shared and lost not in shared


@pytest.mark.slow
@pytest.mark.skipif(
    not (Path(__file__).parents[1] / "notebooks" / "district_report.ipynb").exists(),
    reason="notebooks/district_report.ipynb not written yet",
)
def test_real_district_notebook_batch(tmp_path, monkeypatch):
    """The real district notebook over two demo districts passes the privacy screen."""
    from opportunity_research.synth.districts import synthesize

    project = Path(__file__).parents[1]
    synthesize(tmp_path / "data" / "raw", students=4000)
    for d in ("demo_hillcrest", "demo_fairview", "demo_pinebrook"):
        shutil.rmtree(tmp_path / "data" / "raw" / d)
    result = run_batch(
        None,
        notebook=project / "notebooks" / "district_report.ipynb",
        cross_notebook=project / "notebooks" / "cross_district.ipynb",
        root=tmp_path,
        jobs=2,
    )
    assert [r.status for r in result.districts] == ["ok", "ok"], [r.reason for r in result.districts]
    assert result.cross is None or result.cross.status in ("ok", "skipped"), result.cross.reason


def test_batch_refuses_a_district_whose_tables_fail_the_disclosure_audit(tmp_path):
    """Small cells flagged suppressed pass the privacy screen, but one hidden level is recovered by subtraction:
    the disclosure gate refuses the district and names the cell."""
    make_district(tmp_path, "alpha")
    result = run_batch(
        ["alpha"],
        notebook=NOTEBOOKS / "subtraction_report.ipynb",
        cross_notebook=None,
        root=tmp_path,
        process=False,
    )
    (r,) = result.districts
    assert r.status == "failed" and r.report is None
    assert r.reason.startswith("disclosure audit found 1 unprotected cell(s)") and "g=a" in r.reason
    assert not (tmp_path / "reports" / "alpha").exists()  # nothing published (it had no earlier report)


def test_the_gate_and_the_screen_run_beside_the_pages_and_their_verdicts_refuse_the_district(
    tmp_path, monkeypatch
):
    """One batch of three districts, one check each (three tests ran a batch of one district each, on a kernel
    of its own):

    * alpha: the disclosure gate reads only findings.json and tables/, so it starts in a thread as soon as the
      notebook has run and works while the pages are built and printed; its verdict still decides the publication.
    * gamma: the privacy screen starts in a thread once the HTML pages are written, before any PDF is printed (it
      reads no PDF); its findings still refuse the district.
    * beta: a disclosure gate that raises fails its district.
    """
    import threading

    from opportunity_research.disclosure import joint, privacy
    from opportunity_research.report import pages

    for d in ("alpha", "beta", "gamma"):
        make_district(tmp_path, d)

    def district(folder) -> str:  # the staging folder tmp-<district>-<run id>-<random>
        return Path(folder).name.split("-")[1]

    started, seen, screened = threading.Event(), {}, {}
    audit, real_pages, screen_outputs = joint.audit_report_folder, pages.publish_pages, privacy.screen_outputs

    def gate(folder, *, min_n, **kw):
        if district(folder) == "beta":
            raise RuntimeError("the gate broke")
        if district(folder) != "alpha":
            return audit(folder, min_n=min_n, **kw)
        seen["thread"] = threading.current_thread().name
        seen["pages_built"] = (Path(folder) / "report.html").exists()
        seen["findings"] = (Path(folder) / "findings.json").exists()  # the notebook has written its outputs
        started.set()
        return ["tables: t[x] g=a (attacker's interval 3 to 3)"]

    def publish_pages(folder, *a, **kw):
        if district(folder) == "alpha":
            seen["gate_started_first"] = started.wait(timeout=120)  # a deadlock guard, not a timing
        return real_pages(folder, *a, **kw)

    def screen(paths, **kw):
        paths = [Path(p) for p in paths]
        folder = kw["base"]
        if district(folder) != "gamma":
            return screen_outputs(paths, **kw)
        screened.setdefault("thread", threading.current_thread().name)
        screened.setdefault("pages", (folder / "report.html").exists())
        screened.setdefault("pdfs", sorted(p.name for p in folder.glob("*.pdf")))
        screened.setdefault("paths", sorted(p.suffix for p in paths))
        return screen_outputs(paths, **kw) + [
            privacy.ScreenHit("report.html", "student_id", "line 1", "planted")
        ]

    monkeypatch.setattr(joint, "audit_report_folder", gate)
    monkeypatch.setattr(pages, "publish_pages", publish_pages)
    monkeypatch.setattr(privacy, "screen_outputs", screen)
    alpha, beta, gamma = run_batch(
        ["alpha", "beta", "gamma"], notebook=TINY, cross_notebook=None, root=tmp_path, process=False
    ).districts
    # alpha: the gate, started before the pages, refuses it
    assert seen["gate_started_first"] and not seen["pages_built"] and seen["findings"]
    assert seen["thread"] != threading.current_thread().name
    assert alpha.status == "failed" and alpha.reason == (
        "disclosure audit found 1 unprotected cell(s): tables: t[x] g=a (attacker's interval 3 to 3)"
    )
    # gamma: the screen, in a thread, after the HTML pages and before the PDFs, refuses it
    assert screened["thread"] != threading.current_thread().name and screened["pages"]
    assert screened["pdfs"] == [] and ".pdf" not in screened["paths"] and ".html" in screened["paths"]
    assert gamma.status == "failed" and gamma.reason.startswith("privacy screen found 1 problem(s)")
    # beta: the gate raised
    assert beta.status == "failed" and beta.reason.startswith("RuntimeError: the gate broke")
    for d in ("alpha", "beta", "gamma"):
        assert not (tmp_path / "reports" / d).exists()  # nothing published


def test_the_screen_in_a_thread_finds_what_the_screen_finds_and_screens_again_after_a_change(tmp_path):
    from opportunity_research.batch import runner_task
    from opportunity_research.disclosure.privacy import screen_outputs

    folder = tmp_path / "report"
    (folder / "tables").mkdir(parents=True)
    (folder / "tables" / "gaps.csv").write_text("group,level,n\nell,1,3\nell,0,40\n")
    (folder / "report.html").write_text("<p>Student S0000123 is in the report.</p>")
    (folder / "report.pdf").write_bytes(b"%PDF- S0000999")  # a PDF: not read by the screen
    ids = {"S0000123", "S0000999", "S0000777"}
    job = runner_task.Job("district", "alpha", "n.ipynb", root=str(tmp_path), reports_dir=str(tmp_path),
                          raw_dir="", processed_dir="", parameters={}, min_n=10, kernel_name="python3")  # fmt: skip
    want = screen_outputs([folder], student_ids=ids, min_n=10, root=tmp_path, base=folder)
    assert len(want) == 2
    assert runner_task._Screen(job, folder, ids).result() == want
    screen = runner_task._Screen(job, folder, ids)
    screen._thread.join()
    (folder / "summary.html").write_text("<p>S0000777</p>")  # written after the screen started
    got = screen.result()
    assert got == screen_outputs([folder], student_ids=ids, min_n=10, root=tmp_path, base=folder)
    assert len(got) == 3 and any(h.file == "summary.html" for h in got)


# ---------------------------------------------------------------------------------------------
# Ctrl-C


def test_ctrl_c_prints_one_line_exits_130_and_removes_temporary_folders(tmp_path):
    """SIGINT to the whole process group, as a terminal's Ctrl-C sends it, while a LocalCluster runs districts."""
    import os
    import signal
    import subprocess
    import time

    for d in "abcdefgh":
        make_district(tmp_path, f"d{d}")
    env = {**os.environ, "OPPORTUNITY_RESEARCH_HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "opportunity-research"),
            "run",
            "--jobs",
            "2",
            "--no-process",
            "--notebook",
            str(TINY),
            "--no-cross",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509 - a terminal's default
    )
    reports = tmp_path / "reports"
    end = time.monotonic() + 300
    while not list(reports.glob("*/.publish.json")) and time.monotonic() < end and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in out + err and "Error" not in err
    (line,) = [ln for ln in err.splitlines() if ln.startswith("interrupted")]
    assert re.fullmatch(
        r"interrupted: \d of 8 districts finished \(\d ok\) and kept; temporary folders removed", line
    ), line
    assert not [p.name for p in reports.iterdir() if p.name.startswith(".")]
    published = {p.parent.name for p in reports.glob("*/.publish.json")}
    n_finished = int(line.split()[1])
    assert n_finished <= len(published) < 8  # (a report may be published just before its result arrives)
    for d in published:  # complete reports only
        assert files(reports / d) == TINY_REPORT_FILES
    manifest = json.loads((reports / "manifest.json").read_text())
    assert (
        len(manifest["districts"]) == n_finished
        and {e["district_id"] for e in manifest["districts"]} <= published
    )
