"""The batch runner: parameters, parallel runs, failures, privacy screen, retries, idempotent outputs.

The notebooks are small ones in tests/notebooks/ that follow the district notebook's conventions
(the real notebooks are tested with nbval). The tests build tiny processed districts themselves
(``--no-process``); tests/test_runner_gates.py runs the real validation and processing on demo districts, the
disclosure gate and Ctrl-C.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from opportunity_research.batch import runner
from opportunity_research.batch.runner import ParameterError, check_parameters, notebook_parameters, run_batch
from opportunity_research.report.reporting import external_resources

# run first (tests/conftest.py); the serial batches print in one Chromium (conftest.worker_browser)
pytestmark = [pytest.mark.long(40), pytest.mark.usefixtures("worker_browser")]

NOTEBOOKS = Path(__file__).parent / "notebooks"
TINY, LEAKY, CROSS = (NOTEBOOKS / f"{n}.ipynb" for n in ("tiny_report", "leaky_report", "tiny_cross"))
#: What a complete report of the tiny notebook holds (``files`` of its published folder)
TINY_REPORT_FILES = [
    ".publish.json",
    "figures/grades.png",
    "findings.json",
    "report.html",
    "report.ipynb",
    "report.pdf",
]
CODE = ("import ", "write_outputs(", "table_output(", "figure_output(", "district_id =", "output_dir")


def make_district(root: Path, district_id: str, counts=(30, 25, 5)) -> list[str]:
    """Raw students.csv/classrooms.csv and processed parquet for a tiny district; returns its raw ids."""
    raw = root / "data" / "raw" / district_id
    proc = root / "data" / "processed" / district_id
    raw.mkdir(parents=True)
    proc.mkdir(parents=True)
    grades = [g for g, k in zip((3, 4, 5), counts) for _ in range(k)]
    letter = district_id[0].upper()
    ids = [f"{letter}{i:07d}" for i in range(1, len(grades) + 1)]
    students = pd.DataFrame({"student_id": ids, "school_id": "SCH1", "grade": grades})
    students.to_csv(raw / "students.csv", index=False)
    classrooms = pd.DataFrame(
        {"classroom_id": ["C1", "C2"], "teacher_id": [f"{letter}T00001", f"{letter}T00002"]}
    )
    classrooms.to_csv(raw / "classrooms.csv", index=False)

    def pseudo(prefix, s):
        return prefix + hashlib.sha256(f"{district_id}:{s}".encode()).hexdigest()[:16]

    students.assign(student_id=[pseudo("S-", s) for s in ids]).to_parquet(
        proc / "students.parquet", index=False
    )
    classrooms.assign(teacher_id=[pseudo("T-", s) for s in classrooms["teacher_id"]]).to_parquet(
        proc / "classrooms.parquet", index=False
    )
    (proc / "manifest.json").write_text(
        json.dumps({"district_id": district_id, "inputs": {"students.csv": "abc"}})
    )
    return ids


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="opportunity-research")
    runner.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


# ---------------------------------------------------------------------------------------------
# parameters


def test_notebook_parameters_reads_literal_defaults():
    declared = notebook_parameters(TINY)
    assert list(declared) == [
        "district_id",
        "processed_dir",
        "raw_dir",
        "subjects",
        "school_year",
        "min_n",
        "seed",
        "fail",
        "pause",
        "output_dir",
    ]
    assert declared["subjects"]["default"] == ["ela", "math"] and declared["school_year"]["default"] is None
    assert declared["min_n"]["default"] == 10 and declared["fail"]["default"] is False


def test_notebook_needs_exactly_one_parameters_cell(tmp_path):
    nb = nbformat.read(TINY, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}))
    nbformat.write(nb, tmp_path / "two.ipynb")
    with pytest.raises(ParameterError, match="exactly one cell tagged 'parameters' \\(found 2\\)"):
        notebook_parameters(tmp_path / "two.ipynb")
    nb.cells = [c for c in nb.cells if "parameters" not in c.metadata.get("tags", [])]
    nbformat.write(nb, tmp_path / "none.ipynb")
    with pytest.raises(ParameterError, match="found 0"):
        notebook_parameters(tmp_path / "none.ipynb")
    nb.cells.insert(0, nbformat.v4.new_code_cell('district_id = "x"', metadata={"tags": ["parameters"]}))
    nbformat.write(nb, tmp_path / "no_output_dir.ipynb")
    with pytest.raises(ParameterError, match="must declare 'output_dir'"):
        run_batch([], notebook=tmp_path / "no_output_dir.ipynb", root=tmp_path)


def test_check_parameters():
    declared = notebook_parameters(TINY)
    ok = {
        "district_id": "a",
        "subjects": ["math"],
        "school_year": 2017,
        "min_n": 20,
        "seed": 3,
        "fail": False,
    }
    assert check_parameters(ok, declared) == []
    assert (
        check_parameters({"school_year": None, "subjects": ("math",)}, declared) == []
    )  # default None: anything
    problems = check_parameters(
        {"min_n": "ten", "subjects": ["math", 3], "fail": 1, "seed": True, "sed": 1, "district_id": None},
        declared,
    )
    assert problems == [
        "parameter 'min_n' must be int (the notebook's default is 10), got str 'ten'",
        "parameter 'subjects': items must be str, got 3",
        "parameter 'fail' must be bool (the notebook's default is False), got int 1",
        "parameter 'seed' must be int (the notebook's default is 0), got bool True",
        (
            "unknown parameter 'sed' (the notebook declares: district_id, fail, min_n, output_dir, pause, processed_dir, "
            "raw_dir, school_year, seed, subjects)"
        ),
        "parameter 'district_id' cannot be None (the notebook's default is 'demo_lakeside')",
    ]
    typed = {"year": {"type": "Optional[int]", "default": None}, "w": {"type": "float", "default": 1.0}}
    assert check_parameters({"year": 2017, "w": 2}, typed) == []
    assert check_parameters({"year": "2017"}, typed) == [
        "parameter 'year' must be int or None (the notebook's default is None), got str '2017'"
    ]


def test_parse_value():
    assert [
        runner.parse_value(v) for v in ("20", "0.5", "true", "null", "None", '{"a": 1}', "['x']", "demo")
    ] == [20, 0.5, True, None, None, {"a": 1}, ["x"], "demo"]


def test_discover_districts_and_kernel(tmp_path):
    make_district(tmp_path, "b")
    make_district(tmp_path, "a")
    (tmp_path / "data" / "raw" / ".tmp-x").mkdir()
    (tmp_path / "data" / "raw" / "notes").mkdir()
    assert runner.discover_districts(tmp_path / "data" / "raw") == ["a", "b"]
    assert runner.ensure_kernel("python3") == "python3"


def test_discover_districts_finds_a_counts_only_district(tmp_path):
    from .test_levelgaps import counts_district

    make_district(tmp_path, "a")
    counts_district(tmp_path / "data" / "raw" / "c")
    assert runner.discover_districts(tmp_path / "data" / "raw") == ["a", "c"]
    assert runner.counts_only(tmp_path / "data" / "raw" / "c")
    assert not runner.counts_only(tmp_path / "data" / "raw" / "a")


def test_batch_runs_a_counts_only_district_with_the_counts_notebook(tmp_path):
    """By default a full district runs the district notebook, a counts-only folder the counts notebook."""
    from opportunity_research.intake.dataset import process_district

    from .test_levelgaps import counts_district

    project = Path(__file__).parents[1]
    (tmp_path / "notebooks").mkdir()
    shutil.copy(TINY, tmp_path / runner.DEFAULT_NOTEBOOK)  # the default district notebook of this root
    shutil.copy(project / runner.DEFAULT_COUNTS_NOTEBOOK, tmp_path / runner.DEFAULT_COUNTS_NOTEBOOK)
    make_district(tmp_path, "alpha")
    raw = counts_district(tmp_path / "data" / "raw" / "counts_c", seed=3)
    process_district(raw, processed_root=tmp_path / "data" / "processed", key="0123456789abcdef")
    plan = run_batch(None, root=tmp_path, process=False, cross_notebook=None, dry_run=True)
    assert [(r.district_id, r.status) for r in plan.districts] == [("alpha", "ready"), ("counts_c", "ready")]
    result = run_batch(None, root=tmp_path, process=False, cross_notebook=CROSS)
    assert [r.status for r in result.districts] == ["ok", "ok"], [r.reason for r in result.districts]
    assert result.cross.status == "ok" and result.cross.districts == ["alpha"]  # no resources to compare
    reports = tmp_path / "reports"
    findings = json.loads((reports / "counts_c" / "findings.json").read_text())
    assert findings["kind"] == "level_counts"
    assert "Achievement gaps from performance levels" in (reports / "counts_c" / "report.html").read_text()
    assert (reports / "counts_c" / "tables" / "level_gaps.csv").exists()
    assert (reports / "alpha" / "report.html").exists()
    index = (reports / "index.html").read_text()
    assert "counts_c/report.html" in index and "counts_c/scorecard.html" not in index
    assert 'href="scorecard.html"' not in (reports / "counts_c" / "report.html").read_text()


# ---------------------------------------------------------------------------------------------
# a batch over two good districts and a broken one, from the command line with --jobs 2


def test_batch_two_good_districts_and_a_broken_one(tmp_path, monkeypatch, capsys):
    """``run --jobs 2``: the good districts complete, the broken ones are reported, the exit code is 1.

    ``broken`` has an invalid parameter (it never runs); ``crashing`` raises in a cell (not retried).

    (One test rather than several sharing a fixture: pytest-xdist's loadgroup does not keep groups
    together under pytest 9, and the batch is the expensive part.)
    """
    root = tmp_path
    make_district(root, "alpha")
    make_district(root, "beta", (12, 40, 9))
    make_district(root, "broken")
    make_district(root, "crashing")
    (root / "params.json").write_text(json.dumps({"broken": {"min_n": "ten"}, "crashing": {"fail": True}}))
    monkeypatch.setenv("OPPORTUNITY_RESEARCH_HOME", str(root))
    code = cli(
        [
            "run",
            "--jobs",
            "2",
            "--no-process",
            "--notebook",
            str(TINY),
            "--cross-notebook",
            str(CROSS),
            "--params-file",
            str(root / "params.json"),
        ]
    )
    out = capsys.readouterr().out

    # exit code and summary table
    assert code == 1
    table = out.split("\n\n")[0].splitlines()
    assert table[0].split() == ["district", "status", "seconds", "reason"]
    rows = {line.split()[0]: line.split()[1] for line in table[2:]}
    assert rows == {
        "alpha": "ok",
        "beta": "ok",
        "broken": "failed",
        "crashing": "failed",
        "cross_district": "ok",
    }
    assert (
        "invalid parameters: parameter 'min_n' must be int (the notebook's default is 10), got str 'ten'"
        in out
    )
    assert "2 of 4 districts ok" in out
    assert "why:\n  broken: invalid parameters: parameter 'min_n' must be int" in out

    # output layout: complete reports; nothing for the failed districts (they had no earlier report);
    # no temporary folders
    reports = root / "reports"
    for d in ("alpha", "beta"):
        assert files(reports / d) == TINY_REPORT_FILES
    assert files(reports / "cross_district") == [
        ".publish.json",
        "findings.json",
        "report.html",
        "report.ipynb",
        "report.pdf",
        "tables/districts.csv",
    ]
    assert sorted(p.name for p in reports.iterdir()) == [
        "alpha",
        "beta",
        "cross_district",
        "index.html",
        "manifest.json",
    ]
    # the crashing district's failed notebook and traceback are in the private log folder, outside reports/
    (run,) = [p for p in (root / "logs").iterdir() if p.is_dir()]
    assert sorted(p.name for p in run.iterdir() if not p.name.startswith(".")) == ["crashing"]
    assert files(run / "crashing") == ["failed.ipynb", "reason.txt", "traceback.txt"]
    assert "ValueError: planted failure" in (run / "crashing" / "traceback.txt").read_text()
    assert (run / "crashing").stat().st_mode & 0o077 == 0  # private to its owner
    assert f"logs/{run.name}/crashing/" in out and "| ValueError: planted failure" in out

    # findings, tables and the cross-district report
    alpha = json.loads((reports / "alpha" / "findings.json").read_text())
    assert alpha["n_students"] == 60 and alpha["headline"] == "60 students in 3 grades."
    # (the gate refuses a CSV the registry of published tables does not name: the tiny report's counts go to
    # findings.json only)
    grades = pd.DataFrame(json.loads((reports / "beta" / "findings.json").read_text())["grades"])
    assert grades["n"].tolist() == [12, 40, 9] and grades["suppressed"].tolist() == [False, False, True]
    assert grades["share"].iloc[0] == pytest.approx(12 / 61, rel=1e-15)
    cross = json.loads((reports / "cross_district" / "findings.json").read_text())
    assert cross == {"districts": 2, "n_students": 121}

    # the HTML has no code cells and no external resources
    for d in ("alpha", "beta", "cross_district"):
        html = (root / "reports" / d / "report.html").read_text()
        assert not any(c in html for c in CODE), d
        assert "<script" not in html and external_resources(html) == []
        assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:|file:)?//""", html)
        assert "injected-parameters" not in html and "Parameters" not in html
    html = (root / "reports" / "alpha" / "report.html").read_text()
    assert '<a href="#students-by-grade">Students by grade</a>' in html and 'id="students-by-grade"' in html
    assert 'alt="Bar chart of the number of students in each grade."' in html
    assert html.count('class="suppressed"') == 2 and 'class="legend"' in html  # grade 5: n and share marked
    assert str(root) not in html

    # the shared executed notebook: relative paths, no timings
    nb = nbformat.read(root / "reports" / "alpha" / "report.ipynb", as_version=4)
    pm = nb.metadata["papermill"]
    assert (
        pm["parameters"]["output_dir"] == "reports/alpha"
        and pm["output_path"] == "reports/alpha/report.ipynb"
    )
    assert pm["parameters"]["processed_dir"] == "data/processed" and pm["input_path"] == "tiny_report.ipynb"
    assert "start_time" not in pm and "duration" not in pm
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and 'output_dir = "reports/alpha"' in injected[0].source
    assert str(root) not in (root / "reports" / "alpha" / "report.ipynb").read_text()

    # manifest and index
    manifest = json.loads((root / "reports" / "manifest.json").read_text())
    entries = {e["district_id"]: e for e in manifest["districts"]}
    assert [e["district_id"] for e in manifest["districts"]] == ["alpha", "beta", "broken", "crashing"]
    assert entries["alpha"]["status"] == "ok" and entries["alpha"]["report"] == "alpha/report.html"
    assert entries["alpha"]["inputs"] == {"students.csv": "abc"} and entries["alpha"]["attempts"] == 1
    assert entries["broken"]["status"] == "failed" and entries["broken"]["report"] is None
    assert "stale" not in entries["broken"] and entries["crashing"]["log"] == f"logs/{run.name}/crashing"
    assert entries["broken"]["attempts"] == 0  # rejected before running
    assert (
        entries["crashing"]["status"],
        entries["crashing"]["attempts"],
        entries["crashing"]["reason"],
    ) == ("failed", 1, "notebook cell [6] raised ValueError: planted failure")  # a cell error is not retried
    assert manifest["cross_district"]["districts"] == ["alpha", "beta"]
    assert manifest["notebook"] == "tiny_report.ipynb" and manifest["min_n"] == 10
    index = (root / "reports" / "index.html").read_text()
    assert (
        '<a href="alpha/report.html">report</a>' in index and '<a href="beta/report.html">report</a>' in index
    )
    assert "60 students in 3 grades." in index and '<a href="cross_district/report.html">' in index
    assert "Broken" in index and "must be int" in index  # the district by name (its id is not shown)
    assert external_resources(index) == []


# ---------------------------------------------------------------------------------------------
# failures


def test_leaky_notebook_fails_the_privacy_screen_and_keeps_the_last_good_report(tmp_path):
    ids = make_district(tmp_path, "alpha")
    first = run_batch(
        ["alpha"], notebook=TINY, cross_notebook=tmp_path / "nope.ipynb", root=tmp_path, process=False
    )
    assert first.ok and (tmp_path / "reports" / "alpha" / "report.html").exists()
    assert first.cross.status == "skipped" and first.cross.reason == "nope.ipynb does not exist yet"
    assert not (tmp_path / "reports" / "cross_district").exists()
    good = {
        f: (tmp_path / "reports" / "alpha" / f).read_bytes() for f in files(tmp_path / "reports" / "alpha")
    }
    published = json.loads((tmp_path / "reports" / "alpha" / ".publish.json").read_text())["published_at"]
    result = run_batch(["alpha"], notebook=LEAKY, cross_notebook=None, root=tmp_path, process=False)
    (r,) = result.districts
    assert r.status == "failed" and not result.ok
    assert r.reason.startswith("privacy screen found ") and int(r.reason.split()[3]) >= 7
    for found in (
        "report.html: student_id",
        "report.html: pseudonym",
        "report.html: absolute_path",
        "report.ipynb: student_id",
        "report.ipynb: pseudonym",
        "report.ipynb: absolute_path",
    ):
        assert found in r.reason
    # the earlier good report is untouched and marked stale, with the reason and both dates
    assert {
        f: (tmp_path / "reports" / "alpha" / f).read_bytes() for f in files(tmp_path / "reports" / "alpha")
    } == good
    assert (r.stale, r.report, r.last_good) == (
        True,
        "alpha/report.html",
        published,
    ) and r.failed_at >= published
    pseudonyms = pd.read_parquet(tmp_path / "data" / "processed" / "alpha" / "students.parquet")["student_id"]
    shared = "".join(
        p.read_text()
        for p in (tmp_path / "reports").rglob("*")
        if p.is_file() and p.suffix not in (".png", ".pdf")
    )
    for secret in [str(tmp_path), ids[0], pseudonyms.iloc[0]]:
        assert secret not in shared and secret not in r.reason and secret not in r.traceback
    index = (tmp_path / "reports" / "index.html").read_text()
    assert (
        re.search(r"privacy screen found \d+ problem\(s\)", index) and '<a href="alpha/report.html">' in index
    )
    assert "stale" in index and published[:10] in index
    entry = json.loads((tmp_path / "reports" / "manifest.json").read_text())["districts"][0]
    assert (entry["status"], entry["stale"], entry["last_good"], entry["report"]) == (
        "failed",
        True,
        published,
        "alpha/report.html",
    )
    # the leaky notebook itself is kept only in the private log folder
    assert (tmp_path / r.log / "failed.ipynb").exists() and r.log.startswith("logs/")


def _kernelspec(tmp_path: Path, name: str, script: str) -> None:
    folder = tmp_path / "jupyter" / "kernels" / name
    folder.mkdir(parents=True)
    (folder / "kernel.py").write_text(script)
    (folder / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, str(folder / "kernel.py"), "-f", "{connection_file}"],
                "display_name": name,
                "language": "python",
            }
        )
    )


FLAKY = """import sys
from pathlib import Path
marker = Path(__file__).with_name("started-once")
if not marker.exists():
    marker.write_text("1")
    sys.exit(3)  # the first start fails, as a kernel sometimes does
from ipykernel import kernelapp
kernelapp.launch_new_instance()
"""


def test_kernel_start_failure_is_retried_once(tmp_path, monkeypatch):
    make_district(tmp_path, "alpha")
    _kernelspec(tmp_path, "flaky", FLAKY)
    _kernelspec(tmp_path, "dead", "import sys\nsys.exit(3)\n")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    ok = run_batch(
        ["alpha"],
        notebook=TINY,
        cross_notebook=None,
        root=tmp_path,
        process=False,
        kernel_name="flaky",
        start_timeout=20,
    )
    assert (ok.districts[0].status, ok.districts[0].attempts) == ("ok", 2)
    dead = run_batch(
        ["alpha"],
        notebook=TINY,
        cross_notebook=None,
        root=tmp_path,
        process=False,
        kernel_name="dead",
        start_timeout=20,
    )
    (r,) = dead.districts
    assert (r.status, r.attempts) == ("failed", 2) and "Kernel died" in r.reason


def test_rerun_is_idempotent(tmp_path):
    make_district(tmp_path, "alpha")
    kw = {"notebook": TINY, "cross_notebook": CROSS, "root": tmp_path, "process": False}
    run_batch(["alpha"], **kw)
    reports = tmp_path / "reports"

    def content(f):  # a PDF carries its creation time: compare its text
        if f.endswith(".pdf"):
            from pypdf import PdfReader

            return [p.extract_text() for p in PdfReader(reports / f).pages]
        return (reports / f).read_bytes()

    volatile = ("manifest.json", "index.html", "alpha/.publish.json", "cross_district/.publish.json")
    before = {f: content(f) for f in files(reports) if f not in volatile}
    assert (
        len(before) == 10
    )  # the tiny report writes its counts to findings.json (no CSV outside the registry)
    run_batch(["alpha"], **kw)
    after = {f: content(f) for f in files(reports) if f not in volatile}
    assert before == after  # the publication record (run id and time) is the only difference
    # a partial run keeps the other districts' entries (once each) and the cross-district report
    missing = run_batch(["gamma"], **{**kw, "cross_notebook": tmp_path / "nope.ipynb"})
    assert missing.districts[0].reason == "no raw data folder data/raw/gamma"
    assert missing.cross.status == "skipped" and missing.cross.reason == "nope.ipynb does not exist yet"
    manifest = json.loads((reports / "manifest.json").read_text())
    assert [e["district_id"] for e in manifest["districts"]] == ["alpha", "gamma"]
    # the earlier cross-district report is kept, marked stale (a new run never deletes a good report)
    assert (manifest["cross_district"]["status"], manifest["cross_district"]["stale"]) == ("skipped", True)
    assert (reports / "cross_district" / "report.html").exists()
    assert 'href="cross_district/report.html"' in (reports / "index.html").read_text()


# ---------------------------------------------------------------------------------------------
# the command line's examples, and a serial batch without Dask
# (the real validation on demo districts, the disclosure gate and Ctrl-C: tests/test_runner_gates.py)


def test_every_help_example_is_accepted(tmp_path, monkeypatch, capsys):
    """Each example of ``run --help`` passes argument parsing and the parameter checks against the real notebook
    (``--dry-run``: nothing runs); the plain run and --jobs 2 run for real in the other tests."""
    import shlex

    project = Path(__file__).parents[1]
    (tmp_path / "notebooks").symlink_to(project / "notebooks")
    for d in ("demo_lakeside", "demo_riverton"):
        (tmp_path / "data" / "raw" / d).mkdir(parents=True)
        (tmp_path / "data" / "raw" / d / "students.csv").write_text("student_id\n")
    (tmp_path / "district_params.json").write_text(json.dumps({"demo_lakeside": {"min_n": 20}}))
    monkeypatch.setenv("OPPORTUNITY_RESEARCH_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    parser = argparse.ArgumentParser(prog="opportunity-research")
    runner.register(parser.add_subparsers())
    epilog = parser._subparsers._group_actions[0].choices["run"].epilog
    examples = [
        ln.split("#")[0].strip()
        for ln in epilog.splitlines()
        if ln.strip().startswith("opportunity-research")
    ]
    assert len(examples) >= 6
    for example in examples:
        argv = shlex.split(example)[1:]
        assert cli([*argv, *([] if "--dry-run" in argv else ["--dry-run"])]) == 0, (
            example,
            capsys.readouterr(),
        )
        out = capsys.readouterr().out
        assert "districts ready to run (dry run" in out, example
    assert not (tmp_path / "reports").exists() and not (tmp_path / "data" / "processed").exists()
    # a subject the notebook cannot analyse is caught before anything runs
    assert cli(["run", "--param", 'subjects=["science"]', "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert "parameter 'subjects': 'science' is not a tested subject (allowed: ela, math)" in out
    assert cli(["run", "--param", "school_year=2017", "--dry-run"]) == 1
    assert "unknown parameter 'school_year'" in capsys.readouterr().out


def test_publishing_outside_a_dask_worker_does_not_import_dask():
    """A serial batch (``--jobs 1``) takes no cluster lock and does not import ``distributed`` to find out
    (issue 21: about a CPU second of every serial batch); a Dask worker has imported it already."""
    import subprocess

    code = (
        "import sys\n"
        "from opportunity_research.batch.runner_task import _publish_lock\n"
        "with _publish_lock('demo_x'):\n"
        "    pass\n"
        "print('distributed' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
