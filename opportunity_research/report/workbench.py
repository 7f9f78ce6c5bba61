"""The researcher's workbench: JupyterLab on working copies of the report templates (``make lab``).

The notebooks in ``notebooks/`` are the batch's templates: what ``opportunity-research run`` publishes is
what their committed cells compute (the runner refuses a modified one, see
:func:`opportunity_research.batch.runner.check_template`). A researcher explores in their own copies instead:

- :func:`working_copies` copies each template into ``notebooks/work/`` (git-ignored) unless a copy is there
  already (a researcher's copy is never overwritten), without stored outputs, with the relative links of its
  text adjusted to the deeper folder.
- :func:`lab_command` is JupyterLab rooted at the project folder (so ``reports/_interactive/``,
  ``reports/index.html`` and ``docs/data_contract.md`` are reachable), without a browser, with ``--allow-root``
  when run as root (containers), listening on 127.0.0.1 (0.0.0.0 inside a container, still behind the token),
  opening the district report's working copy.
- :func:`pre_save_hook` (installed by :func:`lab_command`) refuses to save over a template from JupyterLab,
  with a message naming the working copy, so neither an edit nor an autosave can change one.

Run ``python -m opportunity_research.report.workbench`` (what ``make lab`` does); ``--init`` only makes the
working copies.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

__all__ = ["TEMPLATES", "WORK_DIR", "lab_command", "pre_save_hook", "working_copies"]

#: The committed report templates (in ``notebooks/``).
TEMPLATES = ("district_report.ipynb", "explore.ipynb", "cross_district.ipynb", "level_counts_report.ipynb")
#: Where the working copies live, relative to the project folder (git-ignored).
WORK_DIR = "notebooks/work"
_LINK = re.compile(r"\]\((\.\./)")


def _root(root) -> Path:
    from .. import config

    return Path(root).resolve() if root is not None else config.project_root()


def working_copies(root: str | os.PathLike | None = None) -> list[Path]:
    """Make ``notebooks/work/<template>`` for each template that has no working copy yet; return every copy.

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "notebooks").mkdir()
    >>> cell = {"cell_type": "markdown", "id": "a1", "metadata": {}, "source": ["See [the contract](../docs/c.md)."]}
    >>> nb = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    >>> _ = (root / "notebooks" / "explore.ipynb").write_text(json.dumps(nb))
    >>> [p.relative_to(root).as_posix() for p in working_copies(root)]
    ['notebooks/work/explore.ipynb']
    >>> "".join(json.loads((root / "notebooks/work/explore.ipynb").read_text())["cells"][0]["source"])
    'See [the contract](../../docs/c.md).'
    """
    import nbformat

    root = _root(root)
    work = root / WORK_DIR
    out = []
    for name in TEMPLATES:
        template = root / "notebooks" / name
        if not template.is_file():
            continue
        copy = work / name
        if not copy.exists():
            nb = nbformat.read(template, as_version=4)
            for cell in nb.cells:
                if cell.cell_type == "code":
                    cell.outputs, cell.execution_count = [], None
                    cell.metadata.pop("execution", None)
                    cell.metadata.pop("papermill", None)
                else:
                    cell.source = _LINK.sub("](../../", cell.source)
            nb.metadata.pop("papermill", None)
            work.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, copy)
        out.append(copy)
    return out


def pre_save_hook(model, path, contents_manager, **kwargs) -> None:
    """Jupyter server pre-save hook: refuse to save a template (``notebooks/<template>``) from JupyterLab.

    Examples
    --------
    >>> pre_save_hook({"type": "notebook"}, "notebooks/work/district_report.ipynb", None)  # a working copy: saved
    >>> pre_save_hook({"type": "notebook"}, "notebooks/district_report.ipynb", None)
    Traceback (most recent call last):
    ...
    tornado.web.HTTPError: HTTP 403: Forbidden (notebooks/district_report.ipynb is a report template: ...
    """
    rel = str(path).strip("/")
    if model.get("type") == "notebook" and rel in {f"notebooks/{t}" for t in TEMPLATES}:
        from tornado.web import HTTPError

        raise HTTPError(
            403,
            f"{rel} is a report template: the batch publishes what its committed cells compute, "
            f"so the workbench does not save it. Work in {WORK_DIR}/{Path(rel).name} (make lab "
            "opens it); change the template itself only in a commit.",
        )


def _in_container() -> bool:
    return Path("/.dockerenv").exists() or Path("/run/.containerenv").exists()


def lab_command(
    root: str | os.PathLike | None = None,
    *,
    port: int | None = None,
    ip: str | None = None,
    open_copy: str | None = "district_report.ipynb",
    extra: list[str] | None = None,
) -> list[str]:
    """The ``jupyter lab`` command line of the workbench (see the module docstring).

    Examples
    --------
    >>> cmd = lab_command("/project", port=8890, ip="127.0.0.1")
    >>> "--ServerApp.root_dir=/project" in cmd, "--no-browser" in cmd, cmd[-1]
    (True, True, '--LabApp.default_url=/lab/tree/notebooks/work/district_report.ipynb')
    """
    root = _root(root)
    ip = ip or os.environ.get("LAB_IP") or ("0.0.0.0" if _in_container() else "127.0.0.1")
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        f"--ServerApp.root_dir={root}",
        "--no-browser",
        f"--ip={ip}",
        "--FileContentsManager.pre_save_hook=opportunity_research.report.workbench.pre_save_hook",
    ]
    if port is not None:
        cmd.append(f"--port={port}")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    cmd += list(extra or [])
    if open_copy:
        cmd.append(f"--LabApp.default_url=/lab/tree/{WORK_DIR}/{open_copy}")
    return cmd


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m opportunity_research.report.workbench",
        description="JupyterLab on working copies of the report templates (make lab).",
    )
    p.add_argument("--init", action="store_true", help="only make the working copies in notebooks/work/")
    p.add_argument(
        "--port", type=int, default=int(os.environ["LAB_PORT"]) if os.environ.get("LAB_PORT") else None
    )
    args = p.parse_args(argv)
    root = _root(None)
    copies = working_copies(root)
    print(
        "working copies (git-ignored; the templates in notebooks/ stay as committed): "
        + ", ".join(c.relative_to(root).as_posix() for c in copies)
    )
    if args.init:
        return 0
    cmd = lab_command(root, port=args.port)
    os.chdir(root)
    os.execv(cmd[0], cmd)
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
