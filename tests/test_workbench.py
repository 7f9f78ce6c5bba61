"""The researcher's workbench never changes what the batch publishes.

The batch passes every analysis parameter explicitly (``runner.batch_parameters``) and refuses a template whose
cells differ from the committed ones (``runner.check_template``); ``make lab`` works in git-ignored copies.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from opportunity_research import config
from opportunity_research.batch import runner

PROJECT = Path(__file__).parents[1]
TEMPLATE = PROJECT / "notebooks" / "district_report.ipynb"
TINY = Path(__file__).parent / "notebooks" / "tiny_report.ipynb"


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def _repo_with(tmp_path: Path, notebook: Path) -> Path:
    """A git repository holding ``notebook`` as notebooks/report.ipynb, committed."""
    repo = tmp_path / "project"
    (repo / "notebooks").mkdir(parents=True)
    shutil.copy(notebook, repo / "notebooks" / "report.ipynb")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "template")
    return repo


def _edit_parameters(path: Path, line: str) -> None:
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source += "\n" + line
    nbformat.write(nb, path)


def test_template_parameters_cell_states_the_package_defaults():
    declared = runner.notebook_parameters(TEMPLATE)
    defaults = config.analysis_defaults()
    assert set(defaults) <= set(declared), "the template must declare every analysis parameter"
    for name, value in defaults.items():
        assert declared[name]["default"] == value, name


def test_batch_passes_every_parameter_of_the_template_explicitly(monkeypatch, tmp_path):
    # what a task receives: captured where the runner builds the jobs (a dry run builds them, runs nothing)
    jobs = []
    real = runner.Job
    monkeypatch.setattr(runner, "Job", lambda *a, **k: jobs.append(k["parameters"]) or real(*a, **k))
    (tmp_path / "data" / "raw" / "demo_x").mkdir(parents=True)
    runner.run_batch(
        ["demo_x"],
        notebook=TEMPLATE,
        cross_notebook=None,
        root=tmp_path,
        dry_run=True,
        parameters={"n_boot": 200},
    )
    declared = runner.notebook_parameters(TEMPLATE)
    (params,) = jobs
    assert set(params) == set(declared), "a parameter would come from the template's literal value"
    assert params["n_boot"] == 200 and params["cuts"] == {} and params["seed"] == config.DEMO_SEED
    assert params["district_id"] == "demo_x" and params["min_n"] == config.MIN_CELL_SIZE


def test_batch_ignores_literal_values_of_the_parameters_cell():
    declared = {
        "cuts": {"default": {"grade_appropriate": 5}},
        "subjects": {"default": ["math"]},
        "reference_groups": {"default": {"race_ethnicity": "white"}},
    }
    assert runner.batch_parameters(declared) == {
        "subjects": ["ela", "math"],
        "reference_groups": {},
        "cuts": {},
    }


def test_check_template_refuses_an_edited_parameters_cell_or_code(tmp_path):
    repo = _repo_with(tmp_path, TINY)
    nb = repo / "notebooks" / "report.ipynb"
    assert runner.check_template(nb, repo) == "committed"
    # stored outputs, execution counts and metadata do not count (JupyterLab or a re-execution writes them)
    data = nbformat.read(nb, as_version=4)
    data.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    for c in data.cells:
        if c.cell_type == "code":
            c.execution_count = 7
            c.outputs = [nbformat.v4.new_output("stream", text="hello")]
    nbformat.write(data, nb)
    assert runner.check_template(nb, repo) == "committed"
    _edit_parameters(nb, 'cuts = {"grade_appropriate": 5}')
    with pytest.raises(
        runner.TemplateModified,
        match=r"notebooks/report.ipynb differs from the committed template "
        r"\(its parameters cell was changed.*make lab opens notebooks/work/.*git checkout --",
    ):
        runner.check_template(nb, repo)
    _git(repo, "checkout", "--", "notebooks/report.ipynb")
    data = nbformat.read(nb, as_version=4)
    data.cells[-1].source += "\nprint('exploring')"
    nbformat.write(data, nb)
    with pytest.raises(runner.TemplateModified, match=f"cell {len(data.cells)} was changed"):
        runner.check_template(nb, repo)
    # an untracked notebook (a test's own, a working copy) has nothing to compare with
    copy = repo / "notebooks" / "mine.ipynb"
    shutil.copy(nb, copy)
    assert runner.check_template(copy, repo) is None


def test_run_refuses_a_modified_template_and_says_why(tmp_path, capsys):
    repo = _repo_with(tmp_path, TINY)
    (repo / "data" / "raw" / "demo_x").mkdir(parents=True)
    (repo / "data" / "raw" / "demo_x" / "students.csv").write_text("student_id\n")
    _edit_parameters(repo / "notebooks" / "report.ipynb", "min_n = 3")
    with pytest.raises(runner.TemplateModified, match="does not run a modified one"):
        runner.run_batch(
            None, notebook="notebooks/report.ipynb", cross_notebook=None, root=repo, dry_run=True
        )
    elsewhere = tmp_path / "elsewhere"  # a run rooted outside the template's repository still checks it
    (elsewhere / "data" / "raw" / "demo_x").mkdir(parents=True)
    with pytest.raises(runner.TemplateModified):
        runner.run_batch(
            ["demo_x"],
            notebook=repo / "notebooks" / "report.ipynb",
            cross_notebook=None,
            root=elsewhere,
            dry_run=True,
        )
    plan = runner.run_batch(
        None,
        notebook="notebooks/report.ipynb",
        cross_notebook=None,
        root=repo,
        dry_run=True,
        allow_modified_template=True,
    )
    assert [r.status for r in plan.districts] == ["ready"]


def test_main_api_importable_from_the_package_lazily():
    code = (
        "import sys, opportunity_research as o; assert 'opportunity_research.study.analysis' not in sys.modules; "
        "from opportunity_research import analyze_district, load_district, gap_table, fit_growth_model, "
        "protect_tables, Explorer, run_batch, key_findings; "
        "assert analyze_district.__module__ == 'opportunity_research.disclosure.district'; "
        "assert set(o.__all__) <= set(dir(o)); from opportunity_research import *"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT)


def test_a_wrong_district_id_gets_did_you_mean_and_the_processed_districts(tmp_path):
    from opportunity_research import load_district

    for d in ("demo_fairview", "demo_lakeside"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "manifest.json").write_text("{}")
    with pytest.raises(
        FileNotFoundError,
        match=r"'demo_fairvew'.*\(did you mean 'demo_fairview'\?\); processed "
        r"districts: demo_fairview, demo_lakeside",
    ):
        load_district("demo_fairvew", processed_root=tmp_path)


def test_a_changed_cut_shows_in_methods_comparisons_and_the_card():
    import pandas as pd

    from opportunity_research.report import presentation as P
    from opportunity_research.report import settings

    cuts = {"grade_appropriate": 5, "engaged": 8}
    assert "at least 5 of 6 (TNTP’s default: 4)" in P.methods_scoring(cuts).html
    assert "default" not in P.methods_scoring({}).html.split("Evidence")[0].replace("TNTP’s public rules", "")
    rates = pd.DataFrame(
        {
            "resource": ["grade_appropriate", "engaged"],
            "subject": "all",
            "estimate": [0.2, 0.5],
            "ci_lower": [0.15, 0.45],
            "ci_upper": [0.25, 0.55],
            "n": [300, 900],
            "n_classrooms": 30,
            "hours_without": [144.0, 90.0],
            "suppressed": False,
        }
    )
    demands = pd.DataFrame(
        {"measure": ["met_demands"], "estimate": [0.7], "ci_lower": [0.6], "ci_upper": [0.8]}
    )
    for html in (
        P.resources_table(rates, cuts=cuts).html,
        P.study_comparison_table(rates, demands, cuts=cuts).html,
    ):
        assert (
            "Grade-appropriate assignments: the study’s figure uses TNTP’s default rule (at least 4 of 6); this "
            "report uses at least 5 of 6, so the two are not directly comparable." in html
        )
        assert "Deep engagement: the study" not in html  # an unchanged rule is compared as before
    assert "not directly comparable" not in P.resources_table(rates).html
    words = settings.changed_settings({"cuts": cuts, "subjects": ["ela"], "seed": config.DEMO_SEED})
    assert words == [
        "Grade-appropriate assignment: content + practice + relevance is at least 5 of 6 (TNTP’s default: 4)",
        "Subjects: ELA only (default: ELA and Math)",
    ]


def test_the_card_says_whether_the_working_tree_was_modified(tmp_path):
    from opportunity_research.report import settings

    repo = _repo_with(tmp_path, TINY)
    assert settings.working_tree(repo) == "clean"
    (repo / "notebooks" / "scratch.ipynb").write_text("{}")  # untracked: not a change to what was committed
    assert settings.working_tree(repo) == "clean"
    _edit_parameters(repo / "notebooks" / "report.ipynb", "min_n = 3")
    assert settings.working_tree(repo) == "modified (1 file not committed)"
    outside = tmp_path / "elsewhere"  # not a git checkout
    outside.mkdir()
    assert settings.working_tree(outside) == "unknown"


def test_every_committed_notebook_is_a_template_the_workbench_protects():
    tracked = _git(PROJECT, "ls-files", "notebooks/*.ipynb").split()
    from opportunity_research.report import workbench

    assert sorted(tracked) == sorted(f"notebooks/{t}" for t in workbench.TEMPLATES)
    for t in workbench.TEMPLATES:  # JupyterLab started by make lab refuses to save over any of them
        with pytest.raises(Exception, match="is a report template"):
            workbench.pre_save_hook({"type": "notebook"}, f"notebooks/{t}", None)
