"""Batch runner: every district's report, the cross-district report, ``reports/index.html``.

``opportunity-research run`` (or :func:`run_batch`) turns each district into one task of a
`Dask distributed <https://distributed.dask.org>`_ cluster. ``--jobs N`` starts a ``LocalCluster`` of
``N`` worker processes on this machine; ``--scheduler tcp://HOST:PORT`` submits the same tasks to an
existing cluster, whose workers must see the project folder (data, reports and logs) at the same
absolute path, as on an HPC file system or a mounted volume. ``--jobs 1`` without a scheduler runs the
districts one after another in this process. Each task, for one district:

1. **Validate and process** ``data/raw/<district>/`` into ``data/processed/<district>/``
   (:func:`opportunity_research.intake.dataset.process_district`); a contract violation fails the district
   with the first problems as its reason.
2. **Execute** the notebook with papermill in a fresh kernel (IPC transport, cwd = project root), into
   ``reports/.tmp-<district>-<run>-<random>/``; the notebook's ``output_dir`` parameter is that folder.
   A kernel that fails to start is retried once; a cell error is not; a cell that runs longer than
   ``execution_timeout`` seconds (``--timeout``, default 1800) or a kernel that dies fails the district.
3. **Build** the shared outputs: the executed notebook is sanitized
   (:func:`~opportunity_research.report.reporting.sanitize_notebook`) and published as HTML pages and PDFs
   (:func:`~opportunity_research.report.pages.publish_pages`).
4. **Screen** everything in the folder (:func:`~opportunity_research.disclosure.privacy.screen_outputs`) for
   identifiers, absolute local paths and unsuppressed small cells; any finding fails the district. Then the
   **disclosure gate** (:func:`~opportunity_research.disclosure.joint.audit_report_folder`) re-audits the published
   tables from the files alone (LP bounds of every hidden count); an unprotected cell fails the district, named.
5. **Publish** atomically: the finished folder replaces ``reports/<district>/`` by rename, under a
   per-district lock, and at most once per run: a task that is re-run because its worker died after
   publishing finds its own run id in ``reports/<district>/.publish.json`` and does not publish again.

Before any task starts, every district's parameters are checked against the notebook's ``parameters``
cell (names, types, and allowed values such as ``subjects``, see :data:`PARAMETER_RULES`); a
district with bad parameters is not run and nothing of it is touched. Every analysis parameter is passed
explicitly (:func:`batch_parameters`: the package's defaults, then the run's options), never left to the
literal values of the template's ``parameters`` cell, and a template whose cells differ from the committed
ones is refused (:func:`check_template`; ``--allow-modified-template`` overrides), so a researcher's
exploratory edit of a template never reaches a published report.

**A good report is never lost.** A district that fails keeps its last good report in
``reports/<district>/``; the manifest and the index mark it *stale*, with the reason and the date of
the failed run and of the report shown. The failed executed notebook, the full traceback and the
redacted reason go to a private log folder, ``logs/<run>/<district>/`` (outside ``reports/``, never
published, readable by the owner only); what the command line shows from it is redacted first
(:func:`~opportunity_research.disclosure.privacy.redact`). Fault tolerance comes from Dask: a worker that dies
mid-district has its task re-run on another worker (up to ``distributed.scheduler.allowed-failures``
times), and the lock and run id above keep a district from being published twice.

Then the cross-district notebook (``notebooks/cross_district.ipynb``; parameters ``reports_dir`` and
``districts``, plus ``output_dir`` and ``min_n`` if it declares them) runs once over the districts whose
report is current, after all districts, and ``reports/manifest.json`` and ``reports/index.html`` are
rewritten. Output layout::

    reports/
      index.html                 every district, its status (ok, stale, failed) and report link
      manifest.json              one entry per district (merged across runs, never duplicated)
      <district_id>/             the district's last good report
        report.html              self-contained, no code
        report.ipynb             the executed notebook (sanitized)
        findings.json            headline numbers, machine-readable
        tables/*.csv, figures/*.png
        .publish.json            run id and time of publication
      cross_district/            the same files for the cross-district report
    logs/<run>/<district>/       private: failed notebook, traceback.txt, reason.txt

Re-running is idempotent: the same inputs give the same report files (timings are stripped), and
the manifest holds one entry per district. Ctrl-C cancels the batch: the reports already published
stay, temporary folders are removed, and the command prints one line and exits with status 130.

Examples
--------
$ opportunity-research run                                   # every district in data/raw, one at a time
$ opportunity-research run --districts demo_lakeside demo_riverton --jobs 2
$ opportunity-research run --param 'subjects=["math"]' --param n_boot=200 --no-cross
$ opportunity-research run --scheduler tcp://10.0.0.5:8786   # an existing Dask cluster
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import datetime as _dt
import json
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import textwrap
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from .. import config
from ..version import __version__

__all__ = [
    "CROSS_DISTRICT",
    "DEFAULT_CROSS_NOTEBOOK",
    "DEFAULT_NOTEBOOK",
    "PARAMETER_RULES",
    "BatchInterrupted",
    "BatchResult",
    "DistrictResult",
    "ParameterError",
    "TemplateModified",
    "batch_parameters",
    "check_parameters",
    "check_template",
    "discover_districts",
    "ensure_kernel",
    "notebook_parameters",
    "parse_value",
    "register",
    "run_batch",
]

DEFAULT_NOTEBOOK = "notebooks/district_report.ipynb"
DEFAULT_CROSS_NOTEBOOK = "notebooks/cross_district.ipynb"
#: Folder (under reports/) of the cross-district report; not a valid district id.
CROSS_DISTRICT = "cross_district"
#: Parameters the runner sets itself when the notebook declares them (``district_id`` and
#: ``output_dir`` must be declared by a district notebook).
RUNNER_PARAMETERS = ("district_id", "output_dir", "processed_dir", "raw_dir", "min_n", "seed")
#: (table, column) holding the identifiers the privacy screen looks for.
ID_SOURCES = (("students", "student_id"), ("classrooms", "teacher_id"))
#: Seconds a notebook cell may run before its district fails (``--timeout``).
DEFAULT_CELL_TIMEOUT = 1800
#: File in a published report folder recording the run that published it.
PUBLISH_RECORD = ".publish.json"
_DISTRICT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_UNKNOWN = object()
_MAX_REASON = 1500


class ParameterError(ValueError):
    """The notebook's parameters cell is unusable, or parameters do not fit it."""


class TemplateModified(ParameterError):
    """A report template differs from its committed version in its parameters cell or its code."""


def batch_parameters(declared: Mapping[str, dict], *runner: Mapping, options: Mapping | None = None) -> dict:
    """Every parameter the batch passes to a notebook: each analysis default of
    :data:`opportunity_research.config.ANALYSIS_DEFAULTS` the notebook declares, then the runner's own values
    (``runner``: district, folders, ``min_n``, ``seed`` when given), then the run's options (``options``).

    Nothing is left to the literal values of the notebook's ``parameters`` cell: a researcher's edit of them
    (or an autosave) cannot change what the batch publishes.

    Examples
    --------
    >>> declared = {"district_id": {}, "cuts": {"default": {"engaged": 9}}, "n_boot": {"default": 5}}
    >>> batch_parameters(declared, {"district_id": "demo_x"}, options={"n_boot": 200})
    {'cuts': {}, 'n_boot': 200, 'district_id': 'demo_x'}
    """
    params = {k: v for k, v in config.analysis_defaults().items() if k in declared}
    for given in runner:
        params.update(given)
    params.update(options or {})
    return params


def _code_cells(nb) -> list[tuple[str, str, bool]]:
    """What a notebook computes and states: (cell type, source, is the parameters cell) of every cell."""
    return [(c.cell_type, c.source.strip(), "parameters" in c.get("metadata", {}).get("tags", [])) for c in nb.cells]


def check_template(notebook: str | os.PathLike, root: str | os.PathLike | None = None) -> str | None:
    """Raise :class:`TemplateModified` if ``notebook`` is tracked by git and its cells (parameters cell, code or
    text; stored outputs and metadata do not count) differ from the committed version.

    The batch publishes what the committed template computes, never a researcher's exploratory edit of it
    (explore in a working copy: ``make lab`` opens ``notebooks/work/``). Returns ``"committed"`` when the
    template matches the commit, None when there is nothing to compare with (no git, or an untracked
    notebook such as a test's own). ``root`` is accepted for symmetry with the runner and not needed: the
    notebook's own git repository is used.
    """
    import subprocess

    import nbformat

    path = Path(notebook).resolve()
    cwd = path.parent  # the notebook's own repository, wherever the run's root is
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=cwd, capture_output=True, text=True,
                             timeout=10, check=False)
        if top.returncode != 0 or not path.is_relative_to(Path(top.stdout.strip()).resolve()):
            return None
        rel = path.relative_to(Path(top.stdout.strip()).resolve()).as_posix()
        committed = subprocess.run(["git", "show", f"HEAD:{rel}"], cwd=cwd, capture_output=True, timeout=10,
                                   check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if committed.returncode != 0:  # not tracked (or no commit yet): nothing to compare with
        return None
    now = _code_cells(nbformat.read(path, as_version=4))
    then = _code_cells(nbformat.reads(committed.stdout.decode("utf-8"), as_version=4))
    if now == then:
        return "committed"
    where = next((i for i, (a, b) in enumerate(zip(now, then)) if a != b), min(len(now), len(then)))
    what = ("its parameters cell" if where < len(now) and now[where][2] or where < len(then) and then[where][2]
            else f"cell {where + 1}")
    raise TemplateModified(
        f"{rel} differs from the committed template ({what} was changed; {len(now)} cells now, {len(then)} "
        "committed). The batch publishes only what the committed template computes, so it does not run a "
        f"modified one. Explore in a working copy instead (make lab opens notebooks/work/), restore the "
        f"template with `git checkout -- {rel}`, or commit the change; pass --allow-modified-template to run it "
        "anyway (the reproducibility card then reports a modified working tree).")


class _Failure(Exception):
    """A district failed for a reason that is already a readable sentence."""


@dataclasses.dataclass
class DistrictResult:
    """Outcome of one district (or of the cross-district report).

    ``status`` is ``"ok"``, ``"failed"`` or ``"skipped"``. ``report`` is the HTML report's path
    relative to the reports folder: this run's report when ok; for a failed district, its last good
    report if one exists (then ``stale`` is True and ``last_good`` is when that report was published),
    else None. ``reason`` says why it failed (identifiers and local paths redacted), ``failed_at`` when,
    and ``log`` names the private log folder (relative to the project root) holding the failed notebook
    and traceback. ``attempts`` counts kernel starts in the final run of the task and ``runs`` the
    times the task was started (more than 1 when a worker died under it). ``inputs`` maps raw file
    names to SHA-256 checksums.
    """

    district_id: str
    status: str
    seconds: float = 0.0
    reason: str = ""
    report: str | None = None
    attempts: int = 0
    runs: int = 0
    inputs: dict = dataclasses.field(default_factory=dict)
    districts: list | None = None
    stale: bool = False
    last_good: str | None = None
    failed_at: str | None = None
    published_at: str | None = None
    log: str | None = None
    traceback: str = dataclasses.field(default="", repr=False)  # redacted tail, shown by the CLI only

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["seconds"] = round(d["seconds"], 1)
        del d["traceback"]
        for k in ("districts", "last_good", "failed_at", "published_at", "log"):
            if d[k] is None:
                del d[k]
        if not d["stale"]:
            del d["stale"]
        return d


@dataclasses.dataclass
class BatchResult:
    """All results of :func:`run_batch`, and where the manifest and index were written."""

    districts: list[DistrictResult]
    cross: DistrictResult | None
    manifest: Path
    index: Path
    run_id: str = ""
    log_dir: Path | None = None

    @property
    def failed(self) -> list[DistrictResult]:
        out = [r for r in self.districts if r.status == "failed"]
        return out + ([self.cross] if self.cross is not None and self.cross.status == "failed" else [])

    @property
    def ok(self) -> bool:
        return not self.failed


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run_batch`: ``results`` holds the districts finished before it."""

    def __init__(self, results: list[DistrictResult], total: int):
        super().__init__("batch interrupted")
        self.results, self.total = results, total


# ---------------------------------------------------------------------------------------------
# Parameters


def notebook_parameters(notebook: str | os.PathLike) -> dict[str, dict]:
    """The parameters a notebook declares: name -> ``{"default": value, "type": name or None}``.

    ``default`` is the literal default (``ast.literal_eval`` of the cell text; absent when it is
    not a literal) and ``type`` the annotation or ``# type:`` comment papermill read, if any.

    Raises
    ------
    ParameterError
        If the notebook has no cell tagged ``parameters`` or more than one.
    FileNotFoundError
        If the notebook does not exist.
    """
    import nbformat
    import papermill

    path = Path(notebook)
    if not path.is_file():
        raise FileNotFoundError(f"notebook {notebook} not found")
    nb = nbformat.read(path, as_version=4)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    if len(tagged) != 1:
        raise ParameterError(f"{path.name}: needs exactly one cell tagged 'parameters' (found {len(tagged)})")
    out = {}
    for name, p in papermill.inspect_notebook(str(path)).items():
        entry: dict = {"type": None if p["inferred_type_name"] in ("None", None) else p["inferred_type_name"]}
        try:
            entry["default"] = ast.literal_eval(p["default"])
        except (ValueError, SyntaxError, TypeError):
            pass
        out[name] = entry
    return out


_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict, "tuple": tuple}


def _expected(spec: dict):
    """(python type or None, None allowed) from a parameter's annotation or default."""
    t = spec.get("type")
    if t:
        t = t.replace(" ", "")
        m = re.fullmatch(r"(?:Optional\[(\w+)\]|(\w+)\|None|None\|(\w+))", t)
        if m:
            return _TYPES.get(next(g for g in m.groups() if g)), True
        base = re.match(r"\w+", t)
        if base and base.group(0) in _TYPES:
            return _TYPES[base.group(0)], False
    if "default" not in spec or spec["default"] is None:
        return None, True
    return type(spec["default"]), False


def _type_ok(value, expected: type) -> bool:
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected in (list, tuple):
        return isinstance(value, (list, tuple))
    return isinstance(value, expected)


def _subjects_rule(value) -> str | None:
    from ..intake.contract import SUBJECTS_TESTED

    if isinstance(value, str):
        return f"must be a list of subjects, e.g. [{value!r}]"
    bad = [s for s in value if s not in SUBJECTS_TESTED]
    if bad:
        return f"{bad[0]!r} is not a tested subject (allowed: {', '.join(SUBJECTS_TESTED)})"
    if not value:
        return "needs at least one subject"
    if len(set(value)) != len(value):
        return "lists a subject twice"
    return None


def _at_least(low: int) -> Callable[[object], str | None]:
    def rule(value):
        return None if value >= low else f"must be at least {low}"
    return rule


def _district_rule(value) -> str | None:
    if not _DISTRICT_ID.match(value) or value == CROSS_DISTRICT:
        return f"'{value}' is not a valid district id (letters, digits, '_' and '-'; not '{CROSS_DISTRICT}')"
    return None


#: Allowed values of the parameters the package's notebooks share, by name: a function of a
#: (correctly typed) value returning None or what is wrong. Checked by :func:`check_parameters` only for
#: names the notebook declares.
PARAMETER_RULES: dict[str, Callable[[object], str | None]] = {
    "subjects": _subjects_rule,
    "min_n": _at_least(1),
    "n_boot": _at_least(0),
    "seed": _at_least(0),
    "district_id": _district_rule,
}


def check_parameters(parameters: Mapping, declared: Mapping[str, dict]) -> list[str]:
    """Problems with ``parameters`` for a notebook declaring ``declared`` (empty list: all fine).

    Unknown names are problems; so is a value whose type differs from the declared default's
    (an int is accepted for a float; a default of None accepts anything; list items are checked
    against the default's items when those all share one type), and a value that
    :data:`PARAMETER_RULES` does not allow (a subject that is not tested, ``min_n`` below 1, ...).

    Examples
    --------
    >>> declared = {"min_n": {"default": 10, "type": None}, "subjects": {"default": ["ela"], "type": None}}
    >>> for problem in check_parameters({"min_n": "10", "subject": ["math"], "subjects": ["science"]}, declared):
    ...     print(problem)
    parameter 'min_n' must be int (the notebook's default is 10), got str '10'
    unknown parameter 'subject' (the notebook declares: min_n, subjects)
    parameter 'subjects': 'science' is not a tested subject (allowed: ela, math)
    """
    problems = []
    for name, value in parameters.items():
        if name not in declared:
            problems.append(f"unknown parameter '{name}' (the notebook declares: {', '.join(sorted(declared))})")
            continue
        spec = declared[name]
        expected, none_ok = _expected(spec)
        default = spec.get("default", _UNKNOWN)
        shown = "" if default is _UNKNOWN else f" (the notebook's default is {default!r})"
        if value is None:
            if not none_ok:
                problems.append(f"parameter '{name}' cannot be None{shown}")
            continue
        if expected is None:
            continue
        if not _type_ok(value, expected):
            kind = expected.__name__ + (" or None" if none_ok else "")
            problems.append(f"parameter '{name}' must be {kind}{shown}, got {type(value).__name__} {value!r}"[:300])
            continue
        if isinstance(default, (list, tuple)) and default and isinstance(value, (list, tuple)):
            item_types = {type(x) for x in default}
            if len(item_types) == 1:
                (it,) = item_types
                bad = [x for x in value if not _type_ok(x, it)]
                if bad:
                    problems.append(f"parameter '{name}': items must be {it.__name__}, got {bad[0]!r}")
                    continue
        rule = PARAMETER_RULES.get(name)
        problem = rule(value) if rule is not None else None
        if problem:
            problems.append(f"parameter '{name}': {problem}"[:300])
    return problems


def parse_value(text: str):
    """A ``--param`` value: JSON, else a Python literal, else the text itself.

    >>> parse_value("2017"), parse_value('["math"]'), parse_value("None"), parse_value("lakeside")
    (2017, ['math'], None, 'lakeside')
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


# ---------------------------------------------------------------------------------------------
# Kernel


def ensure_kernel(kernel_name: str = "python3") -> str:
    """Make sure kernel ``kernel_name`` runs this Python (the one with this package installed).

    A missing ``python3`` kernelspec is installed into ``sys.prefix`` (the virtual environment).
    A kernelspec that launches another Python raises ``RuntimeError`` saying how to fix it.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    ksm = KernelSpecManager()
    try:
        spec = ksm.get_kernel_spec(kernel_name)
    except NoSuchKernel:
        if kernel_name != "python3":
            raise RuntimeError(f"no Jupyter kernel named '{kernel_name}'") from None
        from ipykernel.kernelspec import install

        install(prefix=sys.prefix, kernel_name="python3")
        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    exe = spec.argv[0] if spec.argv else ""
    plain = {"python", f"python{sys.version_info[0]}", f"python{sys.version_info[0]}.{sys.version_info[1]}"}
    if exe in plain:  # jupyter_client launches sys.executable for these
        return kernel_name
    if os.path.isabs(exe) and Path(exe).parent == Path(sys.executable).parent:
        return kernel_name
    raise RuntimeError(
        f"Jupyter kernel '{kernel_name}' runs {exe}, not this environment's Python ({sys.executable}), so the "
        f"notebooks could not import opportunity_research. Fix: '{sys.executable} -m ipykernel install "
        f"--sys-prefix --name {kernel_name}' and remove the other kernelspec ({spec.resource_dir}).")


# ---------------------------------------------------------------------------------------------
# One notebook run (a Dask task, or a call in this process)


@dataclasses.dataclass
class _Job:
    kind: str  # "district" or "cross"
    district_id: str
    notebook: str  # absolute
    root: str
    reports_dir: str
    raw_dir: str
    processed_dir: str
    parameters: dict
    min_n: int
    kernel_name: str
    run_id: str = ""
    log_dir: str = ""
    process: bool = True
    key: str | None = None
    start_timeout: int = 60
    execution_timeout: int | None = None
    id_districts: tuple = ()
    require_findings: bool = True


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


def _rel(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def _shown(path: Path, root: Path) -> str:
    """A path safe to show: relative to the project root, or just its name when outside it."""
    return _rel(path, root) if Path(path).resolve().is_relative_to(root) else Path(path).name


def _read_ids(*folders: Path) -> set[str]:
    """Raw identifiers (``*.csv``) and pseudonyms (``*.parquet``) in the folders' :data:`ID_SOURCES` tables.

    Best effort: a missing or unreadable file is skipped (reading it is the validator's business).
    """
    import pandas as pd

    ids: set[str] = set()
    for folder in folders:
        for table, col in ID_SOURCES:
            for f in (folder / f"{table}.csv", folder / f"{table}.parquet"):
                if not f.exists():
                    continue
                try:
                    s = (pd.read_csv(f, usecols=[col], dtype="str")[col] if f.suffix == ".csv"
                         else pd.read_parquet(f, columns=[col])[col])
                except (OSError, ValueError, KeyError, pd.errors.ParserError, ImportError):
                    continue
                ids.update(s.dropna().astype(str).str.strip())
    return ids


def _swap_in(tmp: Path, final: Path) -> None:
    """Replace ``final`` by ``tmp`` with renames (the old folder is moved aside, then removed)."""
    old = None
    if final.exists():
        old = final.with_name(f".old-{final.name}-{secrets.token_hex(4)}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _kernel_never_started(nb_out: Path) -> bool:
    """True when papermill's output notebook shows no cell was started (so the kernel never ran)."""
    import nbformat

    try:
        nb = nbformat.read(nb_out, as_version=4)
    except Exception:  # noqa: BLE001 - no readable output: nothing ran
        return True
    # papermill marks every cell 'completed' when it gives up, but only cells that ran have a start time
    return not any(c.metadata.get("papermill", {}).get("start_time") for c in nb.cells)


def _execute(job: _Job, nb_out: Path, parameters: dict, result: DistrictResult) -> None:
    """Run the notebook with papermill; retry once if the kernel failed to start (counted in ``result``)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError
    from traitlets.config import Config

    for attempt in (1, 2):
        result.attempts = attempt
        with tempfile.TemporaryDirectory(prefix="opportunity-kernel-") as kdir:
            cfg = Config()
            if os.name == "posix":  # local sockets in a private folder: no TCP ports, no warning
                cfg.KernelManager.transport = "ipc"
                cfg.KernelManager.ip = os.path.join(kdir, "kernel")
            try:
                papermill.execute_notebook(
                    job.notebook, str(nb_out), parameters=parameters, cwd=job.root, kernel_name=job.kernel_name,
                    progress_bar=False, log_output=False, start_timeout=job.start_timeout,
                    execution_timeout=job.execution_timeout, config=cfg)
                return
            except PapermillExecutionError:
                raise
            except Exception:
                if attempt == 1 and _kernel_never_started(nb_out):
                    continue
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _reason(exc: BaseException) -> str:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, _Failure):
        return str(exc)
    if isinstance(exc, PapermillExecutionError):
        value = (exc.evalue or "").strip().splitlines()
        return f"notebook cell [{exc.exec_count}] raised {exc.ename}: {value[0] if value else ''}".strip()
    if type(exc).__name__ == "ValidationFailed" and hasattr(exc, "report"):
        return _validation_reason(exc.report)
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (in {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _validation_reason(report, shown: int = 4) -> str:
    """One readable paragraph: the summary, the first errors, and how to see them all."""
    from ..intake.contract import TABLES

    id_columns = {c.name for t in TABLES.values() for c in t.columns.values() if c.pseudonymize}
    try:
        errors = report.errors
        parts = []
        for p in errors[:shown]:
            where = ", ".join(x for x in (p.file, None if p.line is None else f"line {p.line}",
                                          None if p.column is None else f"column {p.column}") if x)
            value = "" if p.value is None else f" (value {'[id]' if p.column in id_columns else repr(p.value)})"
            parts.append(f"{where}: {p.rule}{value}")
        more = f"; and {len(errors) - shown} more" if len(errors) > shown else ""
        text = f"data validation failed ({report.summary()}): " + "; ".join(parts) + more
    except AttributeError:  # an older report object: its own text table
        text = "data validation failed: " + " | ".join(
            ln.strip() for ln in str(report.format()).splitlines()[1:6] if ln.strip())
    return text + f". Full list: opportunity-research validate data/raw/{report.path.name}"


def _publish_record(folder: Path) -> dict:
    """The ``.publish.json`` of a published report folder ({} if absent or unreadable)."""
    try:
        rec = json.loads((folder / PUBLISH_RECORD).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return rec if isinstance(rec, dict) else {}


def _mark_stale(result: DistrictResult, reports: Path) -> DistrictResult:
    """For a failed result: point at the last good report, if there is one, and date the failure."""
    name = result.district_id
    result.failed_at = result.failed_at or _now()
    html = reports / name / "report.html"
    if html.exists():
        rec = _publish_record(reports / name)
        result.stale, result.report = True, f"{name}/report.html"
        result.last_good = rec.get("published_at") or _dt.datetime.fromtimestamp(
            html.stat().st_mtime, _dt.UTC).replace(microsecond=0).isoformat()
    else:
        result.stale, result.report, result.last_good = False, None, None
    return result


def _cancel_marker(reports: Path, run_id: str) -> Path:
    return reports / f".cancel-{run_id}"


@contextlib.contextmanager
def _publish_lock(name: str):
    """One publisher at a time per report folder across the cluster (a no-op outside a Dask worker)."""
    try:
        from distributed import Lock, get_worker

        get_worker()
    except (ImportError, ValueError):
        yield
        return
    import logging

    lock = Lock(f"opportunity-research-publish-{name}")
    lock.acquire()
    try:
        yield
    finally:
        # after Ctrl-C the scheduler may be gone before the release: its lease lapses anyway, so no error log
        quiet = logging.getLogger("distributed.semaphore")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)
        try:
            lock.release()
        except Exception:  # noqa: BLE001, S110 - see above
            pass
        finally:
            quiet.setLevel(level)


def _count_start(job: _Job, name: str) -> int:
    """Record that the task for ``name`` started (in the private run log) and return how many times it has."""
    if not job.log_dir or not job.run_id:
        return 1
    started = Path(job.log_dir) / job.run_id / ".started"
    started.mkdir(parents=True, exist_ok=True)
    (started / f"{name}@{os.getpid()}-{secrets.token_hex(3)}").touch()
    return len(list(started.glob(f"{name}@*")))


def _ansi_free(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


def _full_traceback(exc: BaseException) -> str:
    """The runner's traceback and, for a cell error, the cell's own traceback (as the kernel printed it)."""
    text = "".join(traceback.format_exception(exc))
    cell_tb = getattr(exc, "traceback", None)
    if isinstance(cell_tb, list) and cell_tb:
        text += "\nTraceback inside the notebook:\n" + _ansi_free("\n".join(map(str, cell_tb))) + "\n"
    return text


def _write_log(job: _Job, name: str, tmp: Path | None, full_tb: str, reason: str, root: Path) -> Path | None:
    """Keep the failed executed notebook, the full traceback and the redacted reason in the private log folder.

    The folder (``<log_dir>/<run>/<name>/``) is created readable by its owner only; it may hold student-level
    output, so nothing from it is shown without :func:`~opportunity_research.disclosure.privacy.redact`.
    """
    if not job.log_dir:
        return None
    folder = Path(job.log_dir) / (job.run_id or "run") / name
    for p in (Path(job.log_dir), folder.parent, folder):
        p.mkdir(mode=0o700, exist_ok=True)
    if tmp is not None and (tmp / "report.ipynb").exists():
        shutil.copyfile(tmp / "report.ipynb", folder / "failed.ipynb")
    (folder / "traceback.txt").write_text(full_tb, encoding="utf-8")
    (folder / "reason.txt").write_text(reason + "\n", encoding="utf-8")
    return folder


def _tail(text: str, lines: int = 8) -> str:
    out = [ln for ln in text.strip().splitlines() if ln.strip()]
    return "\n".join(out[-lines:])


def _run_job(job: _Job) -> DistrictResult:
    """Run one district (or the cross-district report) end to end; never raises (except on Ctrl-C).

    Runs in a Dask worker (or in this process). A failure leaves ``reports/<name>/`` as it was and writes
    the private log instead; a success replaces it atomically, once per run.
    """
    from ..disclosure.privacy import redact, screen_outputs
    from ..report.pages import publish_pages
    from ..report.reporting import sanitize_notebook

    t0 = time.perf_counter()
    root, reports = Path(job.root), Path(job.reports_dir)
    name = CROSS_DISTRICT if job.kind == "cross" else job.district_id
    final = reports / name
    ids: set[str] = set()
    tmp: Path | None = None
    result = DistrictResult(name, "failed")
    result.runs = _count_start(job, name)
    cancelled = _cancel_marker(reports, job.run_id)
    try:
        if job.run_id and _publish_record(final).get("run_id") == job.run_id:
            # an earlier run of this task published, then its worker died before reporting back
            result.status, result.report = "ok", f"{name}/report.html"
            result.published_at = _publish_record(final).get("published_at")
            with contextlib.suppress(OSError, json.JSONDecodeError, AttributeError):
                manifest = Path(job.processed_dir) / job.district_id / "manifest.json"
                result.inputs = json.loads(manifest.read_text()).get("inputs", {}) if job.kind == "district" else {}
            return result
        if cancelled.exists():
            raise _Failure("cancelled (Ctrl-C)")
        raw_dir, processed_dir = Path(job.raw_dir), Path(job.processed_dir)
        for d in job.id_districts:
            ids |= _read_ids(raw_dir / d, processed_dir / d)
        if job.kind == "district":
            raw = raw_dir / job.district_id
            if not raw.is_dir():
                raise _Failure(f"no raw data folder {_shown(raw, root)}")
            ids |= _read_ids(raw)  # before processing, so a validation failure's reason is redacted too
            if job.process:
                from ..intake.dataset import process_district

                process_district(raw, processed_root=processed_dir, key=job.key)
            ids |= _read_ids(processed_dir / job.district_id)
            manifest = processed_dir / job.district_id / "manifest.json"
            if manifest.exists():
                result.inputs = json.loads(manifest.read_text()).get("inputs", {})
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-{job.run_id}-", dir=reports))
        rel_tmp, rel_final = _rel(tmp, root), _rel(final, root)
        parameters = dict(job.parameters)
        if "output_dir" in parameters or job.kind == "district":
            parameters["output_dir"] = rel_tmp
        nb_out = tmp / "report.ipynb"
        _execute(job, nb_out, parameters, result)
        sanitize_notebook(nb_out, root=root, replace={rel_tmp: rel_final},
                          input_path=_shown(Path(job.notebook), root), output_path=f"{rel_final}/report.ipynb")
        if job.require_findings and not (tmp / "findings.json").exists():
            raise _Failure("the notebook wrote no findings.json: its last cell must call "
                           "reporting.write_outputs(output_dir, findings=...)")
        title = ("Opportunity report: cross-district synthesis" if job.kind == "cross"
                 else f"Opportunity report: {job.district_id}")
        publish_pages(tmp, notebook=nb_out, kind=job.kind, title=title, min_n=job.min_n,
                      districts=job.parameters.get("districts", ()) if job.kind == "cross" else ())
        # the privacy screen: nothing is published unless it passes
        problems = screen_outputs([tmp], student_ids=ids, min_n=job.min_n, root=root, base=tmp)
        if problems:
            shown = "; ".join(str(p) for p in problems[:8])
            shown += f"; and {len(problems) - 8} more" if len(problems) > 8 else ""
            raise _Failure(f"privacy screen found {len(problems)} problem(s): {shown}")
        if job.kind == "district":  # disclosure gate: re-audit the published tables from the files alone
            from ..disclosure.joint import audit_report_folder

            if unprotected := audit_report_folder(tmp, min_n=job.min_n):
                raise _Failure(f"disclosure audit found {len(unprotected)} unprotected cell(s): "
                               + "; ".join(unprotected[:8]) + (" ..." if len(unprotected) > 8 else ""))
        published_at = _now()
        (tmp / PUBLISH_RECORD).write_text(json.dumps({"district_id": name, "run_id": job.run_id,
                                                      "published_at": published_at}) + "\n", encoding="utf-8")
        with _publish_lock(name):
            if cancelled.exists():
                raise _Failure("cancelled (Ctrl-C)")
            if not (job.run_id and _publish_record(final).get("run_id") == job.run_id):
                _swap_in(tmp, final)
                tmp = None
        result.status, result.report, result.published_at = "ok", f"{name}/report.html", published_at
    except Exception as exc:  # noqa: BLE001 - every failure becomes the district's reason
        result.status = "failed"
        # local paths beyond the project root: the installed package, the notebook's folder, the worker's cwd
        local = [str(Path(__file__).resolve().parents[2]), str(Path(job.notebook).resolve().parent), os.getcwd()]
        result.reason = redact(_reason(exc), ids=ids, root=root, paths=local)[:_MAX_REASON]
        if not cancelled.exists():
            full = _full_traceback(exc)
            result.traceback = redact(_tail(full), ids=ids, root=root, paths=local)
            try:
                log = _write_log(job, name, tmp, full, result.reason, root)
                result.log = _shown(log, root) if log is not None else None
            except OSError as err:  # pragma: no cover - e.g. a read-only log folder
                result.reason += f" (and the log could not be written: {type(err).__name__})"
        _mark_stale(result, reports)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        result.seconds = time.perf_counter() - t0
    return result


# ---------------------------------------------------------------------------------------------
# The engine: Dask distributed (a LocalCluster, or an existing cluster), or this process


@contextlib.contextmanager
def _children_ignore_sigint():
    """Processes started inside inherit an ignored SIGINT, so Ctrl-C reaches only this process (which then
    shuts the cluster down) and no worker prints a traceback of its own."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _worker_check(root: str, kernel_name: str) -> str | None:
    """Run on every worker of an existing cluster: None if it can run the batch, else what is wrong."""
    if not Path(root, "data").is_dir():
        return f"it does not see the project folder {root} (data/ missing): share it at the same path"
    try:
        ensure_kernel(kernel_name)
    except RuntimeError as exc:
        return str(exc)
    return None


class _Engine:
    """Runs :func:`_run_job` tasks: in this process (``jobs=1``, no scheduler) or as Dask tasks."""

    def __init__(self, *, jobs: int, scheduler: str | None, root: Path, kernel_name: str):
        self.jobs, self.scheduler, self.root, self.kernel_name = jobs, scheduler, root, kernel_name
        self.client = self.cluster = None

    @property
    def distributed(self) -> bool:
        return self.scheduler is not None or self.jobs > 1

    def __enter__(self):
        if not self.distributed:
            return self
        import logging

        from distributed import Client, LocalCluster

        with _children_ignore_sigint():
            if self.scheduler:
                try:
                    self.client = Client(self.scheduler, timeout="30s")
                except OSError as exc:
                    raise RuntimeError(f"cannot reach the Dask scheduler at {self.scheduler}: {exc}") from None
                problems = {w: p for w, p in self.client.run(_worker_check, str(self.root), self.kernel_name).items()
                            if p}
                if not self.client.scheduler_info().get("workers"):
                    self.close()
                    raise RuntimeError(f"the Dask cluster at {self.scheduler} has no workers; start some with "
                                       f"'dask worker {self.scheduler}'")
                if problems:
                    self.close()
                    raise RuntimeError("Dask workers cannot run the batch: " + "; ".join(
                        f"worker {w}: {p}" for w, p in sorted(problems.items())))
            else:
                self.cluster = LocalCluster(n_workers=self.jobs, threads_per_worker=1, processes=True,
                                            dashboard_address=None, silence_logs=logging.ERROR)
                self.client = Client(self.cluster)
        return self

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.client is not None:
                self.client.close()
        with contextlib.suppress(Exception):
            if self.cluster is not None:
                self.cluster.close()
        self.client = self.cluster = None

    def __exit__(self, *exc):
        self.close()
        return False

    def run(self, jobs: list[_Job], on_result: Callable[[DistrictResult], None], *,
            priority: Mapping[str, int] | None = None, on_start: Callable[[str], None] | None = None) -> None:
        """Run ``jobs``; ``on_result`` is called with each result as it finishes."""
        if self.client is None:
            for job in jobs:
                if on_start:
                    on_start(job.district_id)
                on_result(_run_job(job))
            return
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        futures = {}
        rank = priority or {}
        for job in sorted(jobs, key=lambda j: -rank.get(j.district_id, 0)):  # the largest first
            fut = self.client.submit(_run_job, job, key=f"report-{job.district_id}-{job.run_id}", pure=False,
                                     priority=rank.get(job.district_id, 0))
            futures[fut] = job
        pending = as_completed(list(futures))
        try:
            while not pending.is_empty():
                batch = pending.next_batch(block=False)
                if not batch:
                    time.sleep(0.2)
                    continue
                for fut in batch:
                    job = futures[fut]
                    try:
                        r = fut.result()
                    except KilledWorker as exc:
                        r = DistrictResult(job.district_id, "failed", reason=(
                            f"every Dask worker that ran it died ({type(exc).__name__}; after "
                            "distributed.scheduler.allowed-failures retries): often memory; see the workers' logs"))
                        _mark_stale(r, Path(job.reports_dir))
                    except Exception as exc:  # noqa: BLE001 - e.g. the task could not be unpickled on a worker
                        r = DistrictResult(job.district_id, "failed", reason=f"Dask task failed: "
                                           f"{type(exc).__name__}: {str(exc)[:300]}")
                        _mark_stale(r, Path(job.reports_dir))
                    on_result(r)
        finally:
            if not pending.is_empty():
                with contextlib.suppress(Exception):
                    self.client.cancel(list(futures), force=True)


class _Progress:
    """Progress on stderr: a bar on a terminal (``"bar"``), else plain lines (``"lines"``): one per finished
    district, with the elapsed time, and a line every ``every`` seconds while nothing finishes."""

    def __init__(self, mode: str | None, total: int, *, every: float = 30.0, stream=None):
        import threading

        self.mode, self.total, self.every = mode, total, every
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.t0 = self.last = time.monotonic()
        self.current: str | None = None
        self.bar = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        if mode == "bar":
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="districts", unit="district", file=self.stream)
        elif mode == "lines" and total:
            self._print(f"{total} district(s) to run")
            threading.Thread(target=self._beat, daemon=True).start()

    def _elapsed(self) -> str:
        s = int(time.monotonic() - self.t0)
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"

    def _print(self, text: str) -> None:
        with self._lock:
            print(f"[{self.done}/{self.total} {self._elapsed()}] {text}", file=self.stream, flush=True)
            self.last = time.monotonic()

    def _beat(self) -> None:
        while not self._stop.wait(1.0):
            if time.monotonic() - self.last >= self.every:
                self._print("running" + (f": {self.current}" if self.current else ""))

    def start(self, name: str) -> None:
        self.current = name
        if self.bar is not None:
            self.bar.set_postfix_str(name)

    def finish(self, r: DistrictResult) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix_str(f"{r.district_id} {r.status}")
            self.bar.update()
        elif self.mode == "lines":
            self.current = None
            self._print(f"{r.district_id} {'stale' if r.stale else r.status} ({r.seconds:.0f} s)")

    def close(self) -> None:
        self._stop.set()
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------------------------------------
# The batch


def discover_districts(raw_dir: str | os.PathLike) -> list[str]:
    """District ids in ``raw_dir``: every folder holding a ``students.csv`` or a ``crosswalk.yaml`` (an export in
    the district's own shape), dot-folders skipped."""
    raw = Path(raw_dir)
    if not raw.is_dir():
        return []
    return sorted(p.name for p in raw.iterdir() if p.is_dir() and not p.name.startswith(".")
                  and ((p / "students.csv").exists() or (p / "crosswalk.yaml").exists()))


def _abs(path, root: Path, default: Path) -> Path:
    if path is None:
        return default
    p = Path(path)
    return (p if p.is_absolute() else root / p).resolve()


def _size(folder: Path) -> int:
    """Kilobytes of a district's raw files: the task priority, so the largest districts start first."""
    try:
        return sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) // 1024
    except OSError:
        return 0


def _merge_manifest(path: Path, reports: Path, results: list[DistrictResult], meta: dict) -> dict:
    """The new manifest: this run's entries, plus earlier entries of districts not run (whose report folder
    remains, or which had failed), and the earlier cross-district entry (replaced if it runs again)."""
    old = {}
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            old = {}
    entries = {e["district_id"]: e for e in old.get("districts", []) if isinstance(e, dict) and "district_id" in e
               and ((reports / e["district_id"]).is_dir() or e.get("status") == "failed")}
    for r in results:
        entries[r.district_id] = r.to_dict()
    manifest = dict(meta)
    manifest["districts"] = [entries[k] for k in sorted(entries)]
    keep = old.get("cross_district") and (reports / CROSS_DISTRICT).is_dir()
    manifest["cross_district"] = old["cross_district"] if keep else None
    return manifest


def _write_manifest_and_index(reports: Path, manifest: dict) -> Path:
    from ..files import atomic_write
    from ..report.reporting import PUBLISHED_FILE_MODE, write_index

    atomic_write(reports / "manifest.json", (json.dumps(manifest, indent=1) + "\n").encode("utf-8"),
                 mode=PUBLISHED_FILE_MODE)
    return write_index(reports, manifest)


def _new_run_id() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def run_batch(districts: Iterable[str] | None = None, *, notebook: str | os.PathLike = DEFAULT_NOTEBOOK,
              cross_notebook: str | os.PathLike | None = DEFAULT_CROSS_NOTEBOOK,
              root: str | os.PathLike | None = None, raw_dir: str | os.PathLike | None = None,
              processed_dir: str | os.PathLike | None = None, reports_dir: str | os.PathLike | None = None,
              log_dir: str | os.PathLike | None = None,
              jobs: int = 1, scheduler: str | None = None, min_n: int = config.MIN_CELL_SIZE,
              seed: int | None = None,
              parameters: Mapping | None = None, district_parameters: Mapping[str, Mapping] | None = None,
              process: bool = True, key: str | None = None, kernel_name: str = "python3",
              start_timeout: int = 60, execution_timeout: int | None = DEFAULT_CELL_TIMEOUT,
              progress: bool | str = False, dry_run: bool = False,
              allow_modified_template: bool = False) -> BatchResult:
    """Run the district notebook for each district, then the cross-district notebook; write the index.

    Parameters
    ----------
    districts
        District ids (folders of ``raw_dir``); default: every folder with a ``students.csv``.
    notebook, cross_notebook
        The notebooks (relative paths are taken from ``root``). ``cross_notebook=None`` or a
        missing file skips the cross-district report (noted in the manifest).
    root
        Project root: the kernels' working directory; notebook parameters are paths relative to it.
        Default: :func:`opportunity_research.config.project_root`.
    raw_dir, processed_dir, reports_dir, log_dir
        Default ``data/raw``, ``data/processed``, ``reports``, ``logs`` under ``root``. The log folder
        (failed notebooks and tracebacks, private) must lie outside the reports folder.
    jobs
        With no ``scheduler``: 1 runs the districts one after another in this process; more starts a Dask
        ``LocalCluster`` of that many single-threaded worker processes.
    scheduler
        Address of an existing Dask scheduler (``tcp://host:8786``); its workers must see ``root`` at the
        same path and have this package installed. Overrides ``jobs``.
    min_n
        Minimum cell size, passed to the notebook (as ``min_n``) and used by the privacy screen.
    seed
        Passed as the notebook's ``seed`` when given.
    parameters
        Extra notebook parameters for every district; ``district_parameters`` maps a district id to
        parameters for that district only. Both are checked against the notebook (names, types,
        :data:`PARAMETER_RULES`) before anything runs; a district whose parameters fail is not run.
    process
        Validate and process each district's raw data first (default). With False the processed
        tables must already exist.
    key
        Pseudonymization key (default: the project's key file, created if missing).
    kernel_name, start_timeout, execution_timeout
        Jupyter kernel and time limits (seconds; ``execution_timeout`` is per cell, None for no limit).
    progress
        False, ``"bar"`` (a progress bar on stderr) or ``"lines"`` (plain lines on stderr, for logs);
        True means ``"bar"``.
    dry_run
        Only check every district's parameters against the notebook and return the plan (status ``"ready"``
        or ``"failed"`` with the reason); nothing is written, processed or run.
    allow_modified_template
        Run the district notebook even if it differs from its committed version (:func:`check_template`);
        by default the batch refuses, so an exploratory edit of the template never reaches a published report.
        Every analysis parameter is passed explicitly either way (:func:`batch_parameters`).

    Returns
    -------
    BatchResult
        Per-district results (in the order given), the cross-district result, manifest and index paths.

    Raises
    ------
    ParameterError, FileNotFoundError, RuntimeError
        For problems that concern every district: a notebook that is missing, modified since its commit
        (:class:`TemplateModified`) or lacks a single ``parameters`` cell, a kernel that does not run this Python, an unreachable scheduler.
    BatchInterrupted
        On Ctrl-C, after removing this run's temporary folders and recording the finished districts in
        the manifest and index.
    """
    root = Path(root).resolve() if root is not None else config.project_root()
    raw = _abs(raw_dir, root, root / "data" / "raw")
    processed = _abs(processed_dir, root, root / "data" / "processed")
    reports = _abs(reports_dir, root, root / "reports")
    logs = _abs(log_dir, root, root / "logs")
    if logs.is_relative_to(reports):
        raise ParameterError(f"the log folder ({_shown(logs, root)}) must not lie inside the reports folder: "
                             "it holds unscreened, private output")
    nb_path = _abs(notebook, root, root / DEFAULT_NOTEBOOK)
    declared = notebook_parameters(nb_path)
    for required in ("district_id", "output_dir"):
        if required not in declared:
            raise ParameterError(f"{nb_path.name}: the parameters cell must declare '{required}'")
    if not allow_modified_template:
        check_template(nb_path, root)
        cross_path = _abs(cross_notebook, root, root / DEFAULT_CROSS_NOTEBOOK) if cross_notebook else None
        if cross_path is not None and cross_path.is_file():
            check_template(cross_path, root)
    ensure_kernel(kernel_name)
    districts = list(districts) if districts is not None else discover_districts(raw)
    run_id = _new_run_id()
    common = {"root": str(root), "reports_dir": str(reports), "raw_dir": str(raw), "processed_dir": str(processed),
              "min_n": min_n, "kernel_name": kernel_name, "run_id": run_id, "log_dir": str(logs),
              "start_timeout": start_timeout, "execution_timeout": execution_timeout}
    given = {"processed_dir": _rel(processed, root), "raw_dir": _rel(raw, root), "min_n": min_n}
    if seed is not None:
        given["seed"] = seed
    results: dict[str, DistrictResult] = {}
    todo: list[_Job] = []
    # every district's parameters are checked before anything runs or is touched
    for d in dict.fromkeys(districts):
        own = (district_parameters or {}).get(d, {})
        params = batch_parameters(declared, {"district_id": d, "output_dir": f"{_rel(reports, root)}/{d}"},
                                  {k: v for k, v in given.items() if k in declared},
                                  {"seed": seed} if seed is not None and "seed" not in declared else {},
                                  options={**(parameters or {}), **own})
        problems = [f"parameter '{k}' is set by the runner for each district; do not pass it"
                    for k in ("district_id", "output_dir") if k in (parameters or {}) or k in own]
        params.update({"district_id": d, "output_dir": f"{_rel(reports, root)}/{d}"})
        problems += check_parameters(params, declared)
        if problems:
            r = DistrictResult(d, "failed", reason="invalid parameters: " + "; ".join(problems))
            results[d] = _mark_stale(r, reports) if _DISTRICT_ID.match(d) and d != CROSS_DISTRICT else r
            continue
        todo.append(_Job("district", d, str(nb_path), parameters=params, process=process, **common))
    if dry_run:  # nothing is touched: the plan only
        ready = [results.get(d) or DistrictResult(d, "ready") for d in dict.fromkeys(districts)]
        return BatchResult(ready, None, reports / "manifest.json", reports / "index.html", run_id=run_id,
                           log_dir=logs)

    reports.mkdir(parents=True, exist_ok=True)
    for leftover in [*reports.glob(".tmp-*"), *reports.glob(".old-*"), *reports.glob(".cancel-*")]:
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
    if process and key is None:
        from ..intake.dataset import read_key

        env = os.environ.get("OPPORTUNITY_RESEARCH_KEY_FILE")
        key = read_key(Path(env) if env else root / "data" / "pseudonym.key")

    for job in todo:
        job.key = key

    mode = {True: "bar", False: None}.get(progress, progress) if isinstance(progress, bool) else progress
    meta = {"package_version": __version__, "generated_at": _now(), "run_id": run_id,
            "notebook": _shown(nb_path, root), "min_n": min_n}
    manifest_path = reports / "manifest.json"
    bar = _Progress(mode, len(todo))
    try:
        with _Engine(jobs=jobs, scheduler=scheduler, root=root, kernel_name=kernel_name) as engine:
            def done(r: DistrictResult) -> None:
                results[r.district_id] = r
                bar.finish(r)

            engine.run(todo, done, priority={j.district_id: _size(raw / j.district_id) for j in todo},
                       on_start=bar.start)
            bar.close()
            for tmp in reports.glob(f".tmp-*-{run_id}-*"):  # left by workers that died mid-district
                shutil.rmtree(tmp, ignore_errors=True)
            ordered = [results[d] for d in dict.fromkeys(districts)]
            manifest = _merge_manifest(manifest_path, reports, ordered, meta)
            cross = _run_cross(engine, manifest, cross_notebook, root, reports, raw, processed, min_n, common)
    except KeyboardInterrupt:
        bar.close()
        with contextlib.suppress(OSError):
            _cancel_marker(reports, run_id).touch()  # tasks still running on a cluster will not publish
        for tmp in reports.glob(f".tmp-*-{run_id}-*"):
            shutil.rmtree(tmp, ignore_errors=True)
        if scheduler is None:  # the local workers are gone; tasks on an existing cluster may still be running
            _cancel_marker(reports, run_id).unlink(missing_ok=True)
        finished = [results[d] for d in dict.fromkeys(districts) if d in results]
        with contextlib.suppress(Exception):
            _write_manifest_and_index(reports, _merge_manifest(manifest_path, reports, finished, meta))
        raise BatchInterrupted(finished, len(dict.fromkeys(districts))) from None
    finally:
        bar.close()
    if cross is not None:
        if cross.status == "skipped" and (reports / CROSS_DISTRICT / "report.html").exists():
            _mark_stale(cross, reports)  # an earlier synthesis is kept, marked as not matching the reports now
        manifest["cross_district"] = cross.to_dict()
    index = _write_manifest_and_index(reports, manifest)
    return BatchResult(ordered, cross, manifest_path, index, run_id=run_id, log_dir=logs)


def _run_cross(engine: _Engine, manifest: dict, cross_notebook, root: Path, reports: Path, raw: Path,
               processed: Path, min_n: int, common: dict) -> DistrictResult | None:
    """The cross-district report over every district whose report is current (this run's or earlier)."""
    ok_ids = [e["district_id"] for e in manifest["districts"]
              if e.get("status") == "ok" and (reports / e["district_id"] / "findings.json").exists()]
    cross_path = _abs(cross_notebook, root, root / DEFAULT_CROSS_NOTEBOOK) if cross_notebook is not None else None
    if cross_path is None:
        return None
    if not cross_path.is_file():
        return DistrictResult(CROSS_DISTRICT, "skipped", reason=f"{_shown(cross_path, root)} does not exist yet")
    if not ok_ids:
        return DistrictResult(CROSS_DISTRICT, "skipped", reason="no district report succeeded")
    cdeclared = notebook_parameters(cross_path)
    cparams = {"reports_dir": _rel(reports, root), "districts": ok_ids}
    if "output_dir" in cdeclared:
        cparams["output_dir"] = f"{_rel(reports, root)}/{CROSS_DISTRICT}"
    if "min_n" in cdeclared:
        cparams["min_n"] = min_n
    problems = check_parameters(cparams, cdeclared)
    if problems:
        cross = _mark_stale(DistrictResult(CROSS_DISTRICT, "failed",
                                           reason="invalid parameters: " + "; ".join(problems)), reports)
    else:
        out: list[DistrictResult] = []
        job = _Job("cross", CROSS_DISTRICT, str(cross_path), parameters=cparams, id_districts=tuple(ok_ids),
                   require_findings=False, **common)
        engine.run([job], out.append)
        cross = out[0]
    cross.districts = ok_ids
    return cross


# ---------------------------------------------------------------------------------------------
# Command line


def _summary(result: BatchResult) -> str:
    everything = result.districts + ([result.cross] if result.cross is not None else [])
    rows = [(r.district_id, "stale" if r.stale else r.status, f"{r.seconds:.1f}",
             (r.reason.splitlines() or [""])[0]) for r in everything]
    head = ("district", "status", "seconds", "reason")
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head[:3])]

    def fmt(r):
        reason = r[3] if len(r[3]) <= 100 else r[3][:97] + "..."
        return "  ".join(str(v).ljust(w) for v, w in zip(r[:3], widths)) + "  " + reason

    lines = [fmt(head), fmt(tuple("-" * w for w in widths) + ("-" * 6,))] + [fmt(r) for r in rows]
    failed = [r for r in everything if r.status == "failed"]
    if failed:
        lines.append("\nwhy:")
        for r in failed:
            lines += textwrap.wrap(r.reason, width=110, initial_indent=f"  {r.district_id}: ",
                                   subsequent_indent="    ", break_on_hyphens=False)
            if r.stale:
                lines.append(f"    kept its last good report (published {r.last_good}), marked stale in the index")
            if r.traceback:
                lines += ["    | " + ln for ln in r.traceback.splitlines()]
            if r.log:
                lines.append(f"    failed notebook and full traceback (private, may hold student data): {r.log}/")
    retried = [r.district_id for r in result.districts if r.runs > 1]
    if retried:
        lines.append(f"\nre-run after a worker was lost: {', '.join(retried)} (each published once)")
    return "\n".join(lines)


def _cmd(args) -> int:
    params = {}
    for item in args.param or []:
        if "=" not in item:
            print(f"--param {item!r}: use KEY=VALUE", file=sys.stderr)
            return 2
        k, v = item.split("=", 1)
        params[k.strip()] = parse_value(v)
    district_params = {}
    if args.params_file:
        try:
            district_params = json.loads(Path(args.params_file).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            print(f"{args.params_file}: {exc}", file=sys.stderr)
            return 2
        if not isinstance(district_params, dict) or not all(isinstance(v, dict) for v in district_params.values()):
            print(f"{args.params_file}: expected a JSON object mapping district ids to parameter objects",
                  file=sys.stderr)
            return 2
    progress = None if args.no_progress else ("bar" if sys.stderr.isatty() else "lines")
    try:
        result = run_batch(
            args.districts or None, notebook=args.notebook,
            cross_notebook=None if args.no_cross else args.cross_notebook,
            raw_dir=args.raw_dir, processed_dir=args.processed_dir, reports_dir=args.reports_dir,
            log_dir=args.log_dir, jobs=args.jobs, scheduler=args.scheduler,
            min_n=args.min_n, seed=args.seed, parameters=params, district_parameters=district_params,
            process=not args.no_process, execution_timeout=args.timeout or None, progress=progress,
            dry_run=args.dry_run, allow_modified_template=args.allow_modified_template)
    except BatchInterrupted as exc:
        n_ok = sum(r.status == "ok" for r in exc.results)
        print(f"\ninterrupted: {len(exc.results)} of {exc.total} districts finished ({n_ok} ok) and kept; "
              "temporary folders removed", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("\ninterrupted before any district ran", file=sys.stderr)
        return 130
    except (ParameterError, FileNotFoundError, RuntimeError) as exc:
        print(f"run: {exc}", file=sys.stderr)
        return 2
    if not result.districts:
        print("no districts to run: put district folders (with students.csv) in data/raw/ or name them with "
              "--districts", file=sys.stderr)
        return 2
    print(_summary(result))
    if args.dry_run:
        n_ready = sum(r.status == "ready" for r in result.districts)
        print(f"\n{n_ready} of {len(result.districts)} districts ready to run (dry run: nothing was run or written)")
        return 0 if n_ready == len(result.districts) else 1
    n_ok = sum(r.status == "ok" for r in result.districts)
    print(f"\n{n_ok} of {len(result.districts)} districts ok; index: {_shown(result.index, config.project_root())}")
    if result.failed:
        print("failed: " + ", ".join(r.district_id for r in result.failed), file=sys.stderr)
    return 0 if result.ok else 1


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "run", help="build every district's report (papermill + nbconvert on Dask), the cross-district report "
        "and the index",
        description="For each district, as one Dask task: validate and process data/raw/<district>, run the\n"
        "report notebook (papermill), export HTML without code (nbconvert), screen every output for\n"
        "identifiers, local paths and unsuppressed small cells, and publish reports/<district>/ atomically.\n"
        "Parameters are checked against the notebook before anything runs. A district that fails keeps its\n"
        "last good report, marked stale in the index; its failed notebook and traceback go to logs/<run>/\n"
        "(private). The others carry on. Then the cross-district report, reports/index.html and\n"
        "reports/manifest.json. Ctrl-C stops the batch (exit status 130) and keeps what was published.\n"
        "Exit status: 0 all ok, 1 if any district failed (named on stderr), 2 for a setup problem.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  opportunity-research run                                  # every district in data/raw\n"
        "  opportunity-research run --districts demo_lakeside demo_riverton --jobs 2\n"
        "  opportunity-research run --param 'subjects=[\"math\"]' --param n_boot=200\n"
        "  opportunity-research run --params-file district_params.json   # {\"demo_lakeside\": {\"min_n\": 20}}\n"
        "  opportunity-research run --notebook notebooks/district_report.ipynb --no-cross\n"
        "  opportunity-research run --param n_boot=200 --dry-run       # check the parameters only\n"
        "  opportunity-research run --scheduler tcp://127.0.0.1:8786     # workers: dask worker tcp://...:8786")
    p.add_argument("--districts", nargs="+", metavar="ID", help="district ids (default: every folder of data/raw "
                   "with a students.csv)")
    p.add_argument("--jobs", "-j", type=int, default=1, help="districts to run at once on this machine, each in a "
                   "worker process of a Dask LocalCluster (default 1: one after another in this process)")
    p.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                   help="submit the districts to an existing Dask cluster instead; its workers must see this "
                   "project folder at the same path (shared file system) and have this package installed")
    p.add_argument("--notebook", default=DEFAULT_NOTEBOOK, help=f"district notebook (default {DEFAULT_NOTEBOOK})")
    p.add_argument("--cross-notebook", default=DEFAULT_CROSS_NOTEBOOK,
                   help=f"cross-district notebook (default {DEFAULT_CROSS_NOTEBOOK})")
    p.add_argument("--raw-dir", default=None, help="raw district folders (default data/raw)")
    p.add_argument("--processed-dir", default=None, help="processed tables (default data/processed)")
    p.add_argument("--reports-dir", default=None, help="output folder (default reports)")
    p.add_argument("--log-dir", default=None, help="private folder for failed notebooks and tracebacks, outside "
                   "the reports folder (default logs)")
    p.add_argument("--min-n", type=int, default=config.MIN_CELL_SIZE,
                   help=f"minimum cell size for the notebook and the privacy screen (default {config.MIN_CELL_SIZE})")
    p.add_argument("--seed", type=int, default=None, help="random seed passed to the notebook (default: its own)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="notebook parameter for every district; VALUE is JSON or a Python literal, else text "
                   "(repeatable; unknown names, wrong types and values not allowed are rejected)")
    p.add_argument("--params-file", default=None, metavar="FILE.json",
                   help="per-district parameters: a JSON object {district_id: {name: value}}")
    p.add_argument("--timeout", type=int, default=DEFAULT_CELL_TIMEOUT,
                   help=f"seconds a notebook cell may run before its district fails (default {DEFAULT_CELL_TIMEOUT}; "
                   "0: no limit)")
    p.add_argument("--no-process", action="store_true", help="use the processed tables as they are "
                   "(default: validate and process data/raw first)")
    p.add_argument("--no-cross", action="store_true", help="skip the cross-district report")
    p.add_argument("--dry-run", action="store_true", help="only check every district's parameters against the "
                   "notebook and list what would run; nothing is written")
    p.add_argument("--allow-modified-template", action="store_true",
                   help="run the district notebook even if its cells differ from the committed version (default: "
                   "refuse, so an exploratory edit never reaches a published report; explore in notebooks/work/)")
    p.add_argument("--no-progress", action="store_true", help="no progress output (default: a bar on a terminal, "
                   "else a line per district and every 30 s)")
    p.set_defaults(func=_cmd)
