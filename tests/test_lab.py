"""The workbench in a real JupyterLab, driven from Chromium: a researcher's edits and autosaves never reach the
templates, git or what the batch publishes.

JupyterLab (``requirements-lab.lock``) is installed by ``make test`` (and ``make lab``). The test works in a
fresh local clone of the project (so a researcher's own ``notebooks/work/`` is never touched) whose ``data``
folder points at the project's processed demo data; the server listens on a free port of 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import filecmp
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from opportunity_research.batch import runner
from opportunity_research.report import workbench
from opportunity_research.report.browser import find_chromium, shared_chromium

# run first (tests/conftest.py): a lab and two batches, about 90 s; one Chromium for the batches and the lab's page
pytestmark = [pytest.mark.long(45), pytest.mark.usefixtures("worker_browser")]

PROJECT = Path(__file__).parents[1]
DISTRICT = "demo_pinebrook"
TEMPLATE = "notebooks/district_report.ipynb"
COPY = "notebooks/work/district_report.ipynb"
CUT_PARAMETERS = f'district_id = "{DISTRICT}"\ncuts = {{"grade_appropriate": 5}}\nn_boot = 50\n'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    pytest.importorskip(
        "jupyterlab", reason="JupyterLab is installed by make test / make lab (requirements-lab.lock)"
    )
    if find_chromium() is None:
        pytest.skip("no Chromium: make browser")
    if not (PROJECT / "data" / "processed" / DISTRICT / "manifest.json").exists():
        pytest.skip("demo data not processed: run `make process`")
    if subprocess.run(["git", "rev-parse"], cwd=PROJECT, capture_output=True, check=False).returncode:
        pytest.skip("not a git checkout")
    root = tmp_path_factory.mktemp("lab") / "project"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(PROJECT), str(root)], check=True)
    for name in ("data/processed", "data/raw"):  # the project's demo data, outside the clone's git view
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        if (root / name).exists():
            shutil.rmtree(root / name)
        (root / name).symlink_to(PROJECT / name, target_is_directory=True)
    return root


@pytest.fixture(scope="module")
def lab(project):
    port, token = _free_port(), secrets.token_hex(16)
    cmd = workbench.lab_command(
        project,
        port=port,
        ip="127.0.0.1",
        open_copy=None,
        extra=[
            f"--IdentityProvider.token={token}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--ServerApp.open_browser=False",
        ],
    )
    workbench.working_copies(project)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(project.parent / "jupyter-config"),
        "JUPYTERLAB_SETTINGS_DIR": str(project.parent / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(project.parent / "lab-workspaces"),
    }
    env.pop("OPPORTUNITY_RESEARCH_HOME", None)
    with open(project.parent / "lab.log", "wb") as log:
        proc = subprocess.Popen(cmd, cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            if proc.poll() is not None:
                pytest.fail("JupyterLab exited: " + (project.parent / "lab.log").read_text()[-2000:])
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start within 120 s")
        # autosave every second (default 120 s), through the settings API as a user would in Settings
        req = urllib.request.Request(
            f"{base}/lab/api/settings/@jupyterlab/docmanager-extension:plugin?token={token}",
            method="PUT",
            data=json.dumps({"raw": json.dumps({"autosave": True, "autosaveInterval": 1})}).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(req, timeout=30)
        # every cell in the page (JupyterLab 4 renders only the cells in view by default)
        req = urllib.request.Request(
            f"{base}/lab/api/settings/@jupyterlab/notebook-extension:tracker?token={token}",
            method="PUT",
            data=json.dumps({"raw": json.dumps({"windowingMode": "none"})}).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(req, timeout=30)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _open(page, base: str, token: str, path: str) -> None:
    # reset: a fresh workspace holding only this notebook (JupyterLab would restore the tabs opened before)
    page.goto(f"{base}/lab/tree/{path}?token={token}&reset", wait_until="domcontentloaded", timeout=120_000)
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell").first.wait_for(timeout=120_000)


def _visible_notebook(page):
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")


def _replace_parameters(page, text: str) -> None:
    cell = _visible_notebook(page).locator(".jp-CodeCell").first  # the parameters cell is the first code cell
    editor = cell.locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.insert_text("\n" + text)  # later assignments win: the cell's defaults stay visible above


def _run_all(page) -> None:
    """Run > Run All Cells, as a user clicks it; again if no cell started (a click while the kernel was still
    connecting is dropped)."""
    started = _visible_notebook(page).locator(".jp-InputPrompt").filter(has_text=re.compile(r"\[(\*|\d+)\]"))
    for _ in range(3):
        page.keyboard.press("Escape")  # close a menu left open by an earlier attempt
        page.get_by_role("menuitem", name="Run", exact=True).click(timeout=60_000)
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click(timeout=60_000)
        try:
            started.first.wait_for(state="attached", timeout=90_000)
            return
        except PlaywrightTimeout:
            continue
    pytest.fail("Run All Cells started no cell")


def test_lab_edits_reach_the_text_never_the_template_git_or_the_batch(project, lab):
    base, token = lab
    template_bytes = (project / TEMPLATE).read_bytes()
    status_before = _git(project, "status", "--porcelain")
    baseline = runner.run_batch(
        [DISTRICT],
        root=project,
        processed_dir=PROJECT / "data" / "processed",
        raw_dir=PROJECT / "data" / "raw",
        reports_dir=project.parent / "base",
        process=False,
        cross_notebook=None,
        log_dir=project.parent / "logs-base",
    )
    assert baseline.ok, [r.reason for r in baseline.districts]

    # the baseline batch's browser, this worker's (tests/conftest.py: worker_browser)
    with contextlib.closing(shared_chromium().new_page(viewport={"width": 1400, "height": 1000})) as page:
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        # 1. the researcher's working copy: change a cut, run everything, save
        _open(page, base, token, COPY)
        _replace_parameters(page, CUT_PARAMETERS)
        _run_all(page)
        methods = (
            _visible_notebook(page)
            .locator(".jp-OutputArea-output")
            .filter(has_text="at least 5 of 6 (TNTP’s default: 4)")
        )
        try:
            methods.first.wait_for(state="attached", timeout=600_000)
        except Exception:
            page.screenshot(path=str(project.parent / "lab-failure.png"))
            raise
        nb = _visible_notebook(page)
        assert (
            nb.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            .filter(has_text="Traceback")
            .count()
            == 0
        )
        text = nb.inner_text()
        assert "Scoring follows TNTP’s public rules with cut points changed for this report" in text
        assert "not directly comparable" in text  # the study comparison says the rule differs
        card = page.get_by_text(
            "Grade-appropriate assignment: content + practice + relevance is at least 5 of 6"
        )
        card.first.wait_for(state="attached", timeout=600_000)  # the reproducibility card, in words
        # tables styled as in the report: captions above, labels left-aligned
        cap = nb.locator("table.gt_table > caption").first
        assert cap.evaluate("e => getComputedStyle(e).textAlign") == "left"
        assert nb.locator("td.gt_left").first.evaluate("e => getComputedStyle(e).textAlign") == "left"
        page.keyboard.press("Control+s")
        deadline = time.time() + 60
        while '"grade_appropriate\\": 5' not in (project / COPY).read_text() and time.time() < deadline:
            time.sleep(0.5)
        assert '"grade_appropriate\\": 5' in (project / COPY).read_text()

        # 2. the template itself, opened and edited: neither autosave nor Ctrl+S writes it
        _open(page, base, token, TEMPLATE)
        _replace_parameters(page, CUT_PARAMETERS)
        time.sleep(3)  # three autosave intervals
        page.keyboard.press("Control+s")
        dialog = page.locator(".jp-Dialog")
        dialog.first.wait_for(timeout=30_000)
        assert "report template" in dialog.first.inner_text()

    assert (project / TEMPLATE).read_bytes() == template_bytes
    assert runner.check_template(project / TEMPLATE, project) == "committed"
    assert _git(project, "status", "--porcelain") == status_before
    # the refused saves surface as the page's own (expected) error; nothing else may fail in the page
    assert not [e for e in errors if "is a report template" not in e], errors

    # 3. the batch after the lab session publishes byte-identical tables
    after = runner.run_batch(
        [DISTRICT],
        root=project,
        processed_dir=PROJECT / "data" / "processed",
        raw_dir=PROJECT / "data" / "raw",
        reports_dir=project.parent / "after",
        process=False,
        cross_notebook=None,
        log_dir=project.parent / "logs-after",
    )
    assert after.ok, [r.reason for r in after.districts]
    a, b = project.parent / "base" / DISTRICT / "tables", project.parent / "after" / DISTRICT / "tables"
    names = sorted(p.name for p in a.glob("*.csv"))
    assert names and names == sorted(p.name for p in b.glob("*.csv"))
    _, mismatch, errs = filecmp.cmpfiles(a, b, names, shallow=False)
    assert not mismatch and not errs, mismatch
    findings = [
        json.loads((p / DISTRICT / "findings.json").read_text())
        for p in (project.parent / "base", project.parent / "after")
    ]
    assert findings[0]["parameters"] == findings[1]["parameters"] and findings[1]["parameters"]["cuts"] == {}


def test_scratch_notebooks_and_working_copies_are_ignored_by_git(project):
    for path in ("notebooks/Untitled.ipynb", "notebooks/work/mine.ipynb", "Untitled1.ipynb", "scratch.ipynb"):
        assert (
            subprocess.run(["git", "check-ignore", "-q", path], cwd=project, check=False).returncode == 0
        ), path
    for (
        path
    ) in workbench.TEMPLATES:  # every template stays visible to git (check-ignore --no-index: as if new)
        path = f"notebooks/{path}"
        assert (PROJECT / path).exists(), path
        assert (
            subprocess.run(
                ["git", "check-ignore", "-q", "--no-index", path], cwd=project, check=False
            ).returncode
            == 1
        ), path
    assert sys.executable  # the lab command runs this interpreter's jupyter
    cmd = workbench.lab_command(project, port=1)
    assert f"--ServerApp.root_dir={project}" in cmd and "--no-browser" in cmd
    assert ("--allow-root" in cmd) == (os.geteuid() == 0)
