"""Batch runner: every district's report, the cross-district report, ``reports/index.html``.

``opportunity-research run`` (or :func:`run_batch`) does, for each district:

1. **Validate the parameters** against the notebook's ``parameters`` cell (read with
   ``papermill.inspect_notebook``): unknown names are rejected (papermill would only warn) and each
   value must have the type of the notebook's literal default.
2. **Validate and process** ``data/raw/<district>/`` into ``data/processed/<district>/``
   (:func:`opportunity_research.dataset.process_district`); a contract violation fails the district
   with the first problems as its reason.
3. **Execute** the notebook with papermill in a fresh kernel (IPC transport, cwd = project root),
   into ``reports/.tmp-<district>-<random>/``; the notebook's ``output_dir`` parameter is that folder
   (as a project-relative path) and its last cell writes ``findings.json``, ``tables/*.csv`` and
   ``figures/*.png`` there. A kernel that fails to start is retried once; a cell error is not.
4. **Build** the shared outputs: the executed notebook is sanitized
   (:func:`~opportunity_research.reporting.sanitize_notebook`: timings removed, temporary paths replaced
   by the final ones) and exported to HTML (:func:`~opportunity_research.reporting.export_html`).
5. **Screen** everything in the folder (:func:`~opportunity_research.privacy.screen_outputs`) for
   student or teacher identifiers (raw or pseudonymized), absolute local paths and unsuppressed cells
   below ``min_n``; any finding fails the district. Then the **disclosure gate**
   (:func:`~opportunity_research.disclosure.audit_report_folder`) re-audits the published tables from the
   files alone (LP bounds of every hidden count); an unprotected cell fails the district, named.
6. **Publish** atomically: the finished folder replaces ``reports/<district>/`` by rename.

Districts run in parallel worker processes (``--jobs``); a failed district does not stop the others.

Failure policy: a failed district leaves **no report at all**. Its folder is replaced by one holding
only ``FAILED.txt`` (the reason, with identifiers and local paths redacted), and any earlier report is
removed, because it would no longer match the current inputs and code. Nothing half-built is ever
left under ``reports/<district>/``: temporary folders are deleted, and a crash between runs leaves
only dot-folders that the next run removes.

Then the cross-district notebook (``notebooks/cross_district.ipynb``; parameters ``reports_dir`` and
``districts``, plus ``output_dir`` if it declares one) runs once over the successful districts into
``reports/cross_district/`` the same way, and ``reports/manifest.json`` and ``reports/index.html``
are rewritten. Output layout::

    reports/
      index.html                 every district, its status and report link; the cross-district report
      manifest.json              one entry per district (merged across runs, never duplicated)
      <district_id>/             a complete report ...
        report.html              self-contained, no code
        report.ipynb             the executed notebook (sanitized)
        findings.json            headline numbers, machine-readable
        tables/*.csv
        figures/*.png
      <district_id>/FAILED.txt   ... or only this, if the district failed
      cross_district/            the same files for the cross-district report

Re-running is idempotent: the same inputs give the same report files (timings are stripped), and
the manifest holds one entry per district.

Examples
--------
$ opportunity-research run                                   # every district in data/raw, one at a time
$ opportunity-research run --districts demo_lakeside demo_riverton --jobs 2
$ opportunity-research run --param 'subjects=["math"]' --param school_year=2017 --no-cross
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import datetime as _dt
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import textwrap
import time
import traceback
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from . import __version__, config

__all__ = [
    "CROSS_DISTRICT",
    "DEFAULT_CROSS_NOTEBOOK",
    "DEFAULT_NOTEBOOK",
    "BatchResult",
    "DistrictResult",
    "ParameterError",
    "check_parameters",
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
_DISTRICT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_UNKNOWN = object()
_MAX_REASON = 1500


class ParameterError(ValueError):
    """The notebook's parameters cell is unusable, or parameters do not fit it."""


class _Failure(Exception):
    """A district failed for a reason that is already a readable sentence."""


@dataclasses.dataclass
class DistrictResult:
    """Outcome of one district (or of the cross-district report).

    ``status`` is ``"ok"``, ``"failed"`` or ``"skipped"``; ``report`` is the HTML report's path
    relative to the reports folder (None unless ok); ``reason`` says why it failed (identifiers
    and local paths redacted); ``inputs`` maps raw file names to SHA-256 checksums.
    """

    district_id: str
    status: str
    seconds: float = 0.0
    reason: str = ""
    report: str | None = None
    attempts: int = 0
    inputs: dict = dataclasses.field(default_factory=dict)
    districts: list | None = None

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["seconds"] = round(d["seconds"], 1)
        if d["districts"] is None:
            del d["districts"]
        return d


@dataclasses.dataclass
class BatchResult:
    """All results of :func:`run_batch`, and where the manifest and index were written."""

    districts: list[DistrictResult]
    cross: DistrictResult | None
    manifest: Path
    index: Path

    @property
    def failed(self) -> list[DistrictResult]:
        out = [r for r in self.districts if r.status == "failed"]
        return out + ([self.cross] if self.cross is not None and self.cross.status == "failed" else [])

    @property
    def ok(self) -> bool:
        return not self.failed


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


def check_parameters(parameters: Mapping, declared: Mapping[str, dict]) -> list[str]:
    """Problems with ``parameters`` for a notebook declaring ``declared`` (empty list: all fine).

    Unknown names are problems; so is a value whose type differs from the declared default's
    (an int is accepted for a float; a default of None accepts anything; list items are checked
    against the default's items when those all share one type).

    Examples
    --------
    >>> declared = {"min_n": {"default": 10, "type": None}, "subjects": {"default": ["ela"], "type": None}}
    >>> for problem in check_parameters({"min_n": "10", "subject": ["math"]}, declared):
    ...     print(problem)
    parameter 'min_n' must be int (the notebook's default is 10), got str '10'
    unknown parameter 'subject' (the notebook declares: min_n, subjects)
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
# One notebook run (runs in a worker process)


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
    process: bool = True
    key: str | None = None
    start_timeout: int = 60
    execution_timeout: int | None = None
    id_districts: tuple = ()
    require_findings: bool = True
    env: dict | None = None  # the parent's environment, for worker processes forked from a forkserver


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


def _publish_failure(reports_dir: Path, name: str, reason: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=reports_dir))
    what = "The cross-district report" if name == CROSS_DISTRICT else f"District {name}"
    (tmp / "FAILED.txt").write_text(
        f"{what}: FAILED. No report was published.\n\nReason:\n{reason}\n\n"
        "Any earlier report here was removed: it would no longer match the current inputs and code.\n"
        f"Fix the problem, then run: opportunity-research run --districts {name}\n", encoding="utf-8")
    from .pages import make_world_readable

    make_world_readable(tmp)
    _swap_in(tmp, reports_dir / name)


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
    from .contract import TABLES

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


def _run_job(job: _Job) -> DistrictResult:
    """Run one district (or the cross-district report) end to end; never raises."""
    from .pages import publish_pages
    from .privacy import redact, screen_outputs
    from .reporting import sanitize_notebook

    t0 = time.perf_counter()
    if job.env is not None and job.env != dict(os.environ):
        os.environ.clear()
        os.environ.update(job.env)
    root, reports = Path(job.root), Path(job.reports_dir)
    name = CROSS_DISTRICT if job.kind == "cross" else job.district_id
    final = reports / name
    ids: set[str] = set()
    tmp: Path | None = None
    result = DistrictResult(name, "failed")
    try:
        raw_dir, processed_dir = Path(job.raw_dir), Path(job.processed_dir)
        for d in job.id_districts:
            ids |= _read_ids(raw_dir / d, processed_dir / d)
        if job.kind == "district":
            raw = raw_dir / job.district_id
            if not raw.is_dir():
                raise _Failure(f"no raw data folder {_shown(raw, root)}")
            ids |= _read_ids(raw)  # before processing, so a validation failure's reason is redacted too
            if job.process:
                from .dataset import process_district

                process_district(raw, processed_root=processed_dir, key=job.key)
            ids |= _read_ids(processed_dir / job.district_id)
            manifest = processed_dir / job.district_id / "manifest.json"
            if manifest.exists():
                result.inputs = json.loads(manifest.read_text()).get("inputs", {})
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=reports))
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
        problems = screen_outputs([tmp], student_ids=ids, min_n=job.min_n, root=root, base=tmp)
        if problems:
            shown = "; ".join(str(p) for p in problems[:8])
            shown += f"; and {len(problems) - 8} more" if len(problems) > 8 else ""
            raise _Failure(f"privacy screen found {len(problems)} problem(s): {shown}")
        if job.kind == "district":  # disclosure gate: re-audit the published tables from the files alone
            from .disclosure import audit_report_folder

            if unprotected := audit_report_folder(tmp, min_n=job.min_n):
                raise _Failure(f"disclosure audit found {len(unprotected)} unprotected cell(s): "
                               + "; ".join(unprotected[:8]) + (" ..." if len(unprotected) > 8 else ""))
        _swap_in(tmp, final)
        tmp = None
        result.status, result.report = "ok", f"{name}/report.html"
    except Exception as exc:  # noqa: BLE001 - every failure becomes the district's reason
        result.status, result.report = "failed", None
        result.reason = redact(_reason(exc), ids=ids, root=root)[:_MAX_REASON]
        try:
            _publish_failure(reports, name, result.reason)
        except OSError as err:  # pragma: no cover - e.g. a read-only reports folder
            result.reason += f" (and FAILED.txt could not be written: {type(err).__name__})"
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        result.seconds = time.perf_counter() - t0
    return result


# ---------------------------------------------------------------------------------------------
# The batch


def _mp_context():
    """Worker processes start clean (no inherited threads or zmq sockets): 'forkserver' with the heavy
    modules imported once in the server where available, else 'spawn'."""
    import multiprocessing as mp

    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["opportunity_research.runner", "opportunity_research.privacy",
                                    "opportunity_research.reporting", "opportunity_research.dataset",
                                    "papermill", "nbconvert", "jupyter_client"])
        return ctx
    return mp.get_context("spawn")


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


def _merge_manifest(path: Path, reports: Path, results: list[DistrictResult], meta: dict) -> dict:
    """The new manifest: this run's entries, plus earlier entries of districts not run whose folder remains,
    and the earlier cross-district entry (replaced if the cross-district report runs)."""
    old = {}
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            old = {}
    entries = {e["district_id"]: e for e in old.get("districts", []) if isinstance(e, dict) and "district_id" in e
               and (reports / e["district_id"]).is_dir()}
    for r in results:
        entries[r.district_id] = r.to_dict()
    manifest = dict(meta)
    manifest["districts"] = [entries[k] for k in sorted(entries)]
    keep = old.get("cross_district") and (reports / CROSS_DISTRICT).is_dir()
    manifest["cross_district"] = old["cross_district"] if keep else None
    return manifest


def run_batch(districts: Iterable[str] | None = None, *, notebook: str | os.PathLike = DEFAULT_NOTEBOOK,
              cross_notebook: str | os.PathLike | None = DEFAULT_CROSS_NOTEBOOK,
              root: str | os.PathLike | None = None, raw_dir: str | os.PathLike | None = None,
              processed_dir: str | os.PathLike | None = None, reports_dir: str | os.PathLike | None = None,
              jobs: int = 1, min_n: int = config.MIN_CELL_SIZE, seed: int | None = None,
              parameters: Mapping | None = None, district_parameters: Mapping[str, Mapping] | None = None,
              process: bool = True, key: str | None = None, kernel_name: str = "python3",
              start_timeout: int = 60, execution_timeout: int | None = None,
              progress: bool = False) -> BatchResult:
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
    raw_dir, processed_dir, reports_dir
        Default ``data/raw``, ``data/processed``, ``reports`` under ``root``.
    jobs
        Districts run at once (worker processes); 1 runs them in this process.
    min_n
        Minimum cell size, passed to the notebook (as ``min_n``) and used by the privacy screen.
    seed
        Passed as the notebook's ``seed`` when given.
    parameters
        Extra notebook parameters for every district; ``district_parameters`` maps a district id to
        parameters for that district only. Both are validated against the notebook.
    process
        Validate and process each district's raw data first (default). With False the processed
        tables must already exist.
    key
        Pseudonymization key (default: the project's key file, created if missing).
    kernel_name, start_timeout, execution_timeout
        Jupyter kernel and time limits (seconds; no execution limit by default).
    progress
        Show a progress bar on stderr.

    Returns
    -------
    BatchResult
        Per-district results (in the order given), the cross-district result, manifest and index paths.

    Raises
    ------
    ParameterError, FileNotFoundError, RuntimeError
        For problems that concern every district: a notebook that is missing or lacks a single
        ``parameters`` cell, or a kernel that does not run this Python.
    """
    from .reporting import write_index

    root = Path(root).resolve() if root is not None else config.project_root()
    raw = _abs(raw_dir, root, root / "data" / "raw")
    processed = _abs(processed_dir, root, root / "data" / "processed")
    reports = _abs(reports_dir, root, root / "reports")
    nb_path = _abs(notebook, root, root / DEFAULT_NOTEBOOK)
    declared = notebook_parameters(nb_path)
    for required in ("district_id", "output_dir"):
        if required not in declared:
            raise ParameterError(f"{nb_path.name}: the parameters cell must declare '{required}'")
    ensure_kernel(kernel_name)
    districts = list(districts) if districts is not None else discover_districts(raw)
    reports.mkdir(parents=True, exist_ok=True)
    for leftover in list(reports.glob(".tmp-*")) + list(reports.glob(".old-*")):
        shutil.rmtree(leftover, ignore_errors=True)
    if process and key is None:
        from .dataset import read_key

        env = os.environ.get("OPPORTUNITY_RESEARCH_KEY_FILE")
        key = read_key(Path(env) if env else root / "data" / "pseudonym.key")

    given = {"processed_dir": _rel(processed, root), "raw_dir": _rel(raw, root), "min_n": min_n}
    if seed is not None:
        given["seed"] = seed
    results: dict[str, DistrictResult] = {}
    todo: list[_Job] = []
    for d in dict.fromkeys(districts):
        params = {"district_id": d, "output_dir": f"{_rel(reports, root)}/{d}"}
        params.update({k: v for k, v in given.items() if k in declared})
        if seed is not None and "seed" not in declared:
            params["seed"] = seed  # asked for explicitly: reported as unknown below
        params.update(parameters or {})
        params.update((district_parameters or {}).get(d, {}))
        problems = []
        if not _DISTRICT_ID.match(d) or d == CROSS_DISTRICT:
            problems.append(f"'{d}' is not a valid district id (letters, digits, '_' and '-'; "
                            f"not '{CROSS_DISTRICT}')")
        problems += check_parameters(params, declared)
        if problems:
            reason = "invalid parameters: " + "; ".join(problems)
            results[d] = DistrictResult(d, "failed", reason=reason)
            if _DISTRICT_ID.match(d) and d != CROSS_DISTRICT:
                _publish_failure(reports, d, reason)
            continue
        todo.append(_Job("district", d, str(nb_path), str(root), str(reports), str(raw), str(processed), params,
                         min_n, kernel_name, process=process, key=key, start_timeout=start_timeout,
                         execution_timeout=execution_timeout))

    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), desc="districts", unit="district", disable=not progress, file=sys.stderr)
    try:
        if jobs <= 1 or len(todo) <= 1:
            for job in todo:
                bar.set_postfix_str(job.district_id)
                results[job.district_id] = _run_job(job)
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=_mp_context()) as pool:
                env = dict(os.environ)
                futures = {pool.submit(_run_job, dataclasses.replace(job, env=env)): job for job in todo}
                for fut in as_completed(futures):
                    job = futures[fut]
                    try:
                        results[job.district_id] = fut.result()
                    except BrokenProcessPool as exc:
                        results[job.district_id] = DistrictResult(
                            job.district_id, "failed", reason=f"worker process died ({type(exc).__name__})")
                    bar.set_postfix_str(job.district_id)
                    bar.update()
    finally:
        bar.close()
    ordered = [results[d] for d in dict.fromkeys(districts)]

    meta = {"package_version": __version__,
            "generated_at": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
            "notebook": _shown(nb_path, root), "min_n": min_n}
    manifest_path = reports / "manifest.json"
    manifest = _merge_manifest(manifest_path, reports, ordered, meta)

    # the cross-district report covers every district with a complete report, from this run or earlier ones
    cross = None
    ok_ids = [e["district_id"] for e in manifest["districts"]
              if e.get("status") == "ok" and (reports / e["district_id"] / "findings.json").exists()]
    cross_path = _abs(cross_notebook, root, root / DEFAULT_CROSS_NOTEBOOK) if cross_notebook is not None else None
    if cross_path is None:
        pass
    elif not cross_path.is_file():
        cross = DistrictResult(CROSS_DISTRICT, "skipped", reason=f"{_shown(cross_path, root)} does not exist yet")
    elif not ok_ids:
        cross = DistrictResult(CROSS_DISTRICT, "skipped", reason="no district report succeeded")
    else:
        cdeclared = notebook_parameters(cross_path)
        cparams = {"reports_dir": _rel(reports, root), "districts": ok_ids}
        if "output_dir" in cdeclared:
            cparams["output_dir"] = f"{_rel(reports, root)}/{CROSS_DISTRICT}"
        if "min_n" in cdeclared:
            cparams["min_n"] = min_n
        problems = check_parameters(cparams, cdeclared)
        if problems:
            cross = DistrictResult(CROSS_DISTRICT, "failed", reason="invalid parameters: " + "; ".join(problems))
            _publish_failure(reports, CROSS_DISTRICT, cross.reason)
        else:
            cross = _run_job(_Job("cross", CROSS_DISTRICT, str(cross_path), str(root), str(reports), str(raw),
                                  str(processed), cparams, min_n, kernel_name, start_timeout=start_timeout,
                                  execution_timeout=execution_timeout, id_districts=tuple(ok_ids),
                                  require_findings=False))
        cross.districts = ok_ids
    if cross is not None:
        if cross.status == "skipped" and (reports / CROSS_DISTRICT).exists():
            shutil.rmtree(reports / CROSS_DISTRICT)  # an earlier synthesis no longer matches the reports
        manifest["cross_district"] = cross.to_dict()
    from .reporting import _atomic_write

    _atomic_write(manifest_path, (json.dumps(manifest, indent=1) + "\n").encode("utf-8"))
    index = write_index(reports, manifest)
    return BatchResult(ordered, cross, manifest_path, index)


# ---------------------------------------------------------------------------------------------
# Command line


def _summary(result: BatchResult) -> str:
    rows = [(r.district_id, r.status, f"{r.seconds:.1f}", (r.reason.splitlines() or [""])[0])
            for r in result.districts + ([result.cross] if result.cross is not None else [])]
    head = ("district", "status", "seconds", "reason")
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head[:3])]

    def fmt(r):
        reason = r[3] if len(r[3]) <= 100 else r[3][:97] + "..."
        return "  ".join(str(v).ljust(w) for v, w in zip(r[:3], widths)) + "  " + reason

    lines = [fmt(head), fmt(tuple("-" * w for w in widths) + ("-" * 6,))] + [fmt(r) for r in rows]
    failed = [r for r in result.districts + ([result.cross] if result.cross is not None else [])
              if r.status == "failed"]
    if failed:
        lines.append("\nwhy:")
        for r in failed:
            lines += textwrap.wrap(r.reason, width=110, initial_indent=f"  {r.district_id}: ",
                                   subsequent_indent="    ", break_on_hyphens=False)
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
        district_params = json.loads(Path(args.params_file).read_text(encoding="utf-8"))
        if not isinstance(district_params, dict) or not all(isinstance(v, dict) for v in district_params.values()):
            print(f"{args.params_file}: expected a JSON object mapping district ids to parameter objects",
                  file=sys.stderr)
            return 2
    try:
        result = run_batch(
            args.districts or None, notebook=args.notebook,
            cross_notebook=None if args.no_cross else args.cross_notebook,
            raw_dir=args.raw_dir, processed_dir=args.processed_dir, reports_dir=args.reports_dir, jobs=args.jobs,
            min_n=args.min_n, seed=args.seed, parameters=params, district_parameters=district_params,
            process=not args.no_process, execution_timeout=args.timeout,
            progress=not args.no_progress and sys.stderr.isatty())
    except (ParameterError, FileNotFoundError, RuntimeError) as exc:
        print(f"run: {exc}", file=sys.stderr)
        return 2
    if not result.districts:
        print("no districts to run: put district folders (with students.csv) in data/raw/ or name them with "
              "--districts", file=sys.stderr)
        return 2
    print(_summary(result))
    n_ok = sum(r.status == "ok" for r in result.districts)
    print(f"\n{n_ok} of {len(result.districts)} districts ok; index: {_shown(result.index, config.project_root())}")
    return 0 if result.ok else 1


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "run", help="build every district's report (papermill + nbconvert), the cross-district report and the index",
        description="For each district: check the notebook parameters, validate and process data/raw/<district>,\n"
        "run the report notebook (papermill), export HTML without code (nbconvert), screen every output for\n"
        "identifiers, local paths and unsuppressed small cells, and publish reports/<district>/ atomically.\n"
        "A failed district keeps only reports/<district>/FAILED.txt; the others carry on. Then the\n"
        "cross-district report, reports/index.html and reports/manifest.json.\n"
        "Exit status: 0 all ok, 1 if any district failed, 2 for a setup problem.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  opportunity-research run                                  # every district in data/raw\n"
        "  opportunity-research run --districts demo_lakeside demo_riverton --jobs 2\n"
        "  opportunity-research run --param 'subjects=[\"math\"]' --param school_year=2017\n"
        "  opportunity-research run --params-file district_params.json   # {\"demo_lakeside\": {\"min_n\": 20}}\n"
        "  opportunity-research run --notebook my_report.ipynb --no-cross")
    p.add_argument("--districts", nargs="+", metavar="ID", help="district ids (default: every folder of data/raw "
                   "with a students.csv)")
    p.add_argument("--jobs", "-j", type=int, default=1, help="districts to run at once (default 1)")
    p.add_argument("--notebook", default=DEFAULT_NOTEBOOK, help=f"district notebook (default {DEFAULT_NOTEBOOK})")
    p.add_argument("--cross-notebook", default=DEFAULT_CROSS_NOTEBOOK,
                   help=f"cross-district notebook (default {DEFAULT_CROSS_NOTEBOOK})")
    p.add_argument("--raw-dir", default=None, help="raw district folders (default data/raw)")
    p.add_argument("--processed-dir", default=None, help="processed tables (default data/processed)")
    p.add_argument("--reports-dir", default=None, help="output folder (default reports)")
    p.add_argument("--min-n", type=int, default=config.MIN_CELL_SIZE,
                   help=f"minimum cell size for the notebook and the privacy screen (default {config.MIN_CELL_SIZE})")
    p.add_argument("--seed", type=int, default=None, help="random seed passed to the notebook (default: its own)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="notebook parameter for every district; VALUE is JSON or a Python literal, else text "
                   "(repeatable; unknown names and wrong types are rejected)")
    p.add_argument("--params-file", default=None, metavar="FILE.json",
                   help="per-district parameters: a JSON object {district_id: {name: value}}")
    p.add_argument("--timeout", type=int, default=None, help="seconds a notebook cell may run (default: no limit)")
    p.add_argument("--no-process", action="store_true", help="use the processed tables as they are "
                   "(default: validate and process data/raw first)")
    p.add_argument("--no-cross", action="store_true", help="skip the cross-district report")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (it is off anyway when stderr is "
                   "not a terminal)")
    p.set_defaults(func=_cmd)
