"""One task of the batch: a district (or the cross-district report) from raw data to a published folder.

Part of the batch runner (:mod:`opportunity_research.batch.runner`), which describes the steps; here each is a named
function: :func:`_prepare_inputs` (validate and process, collect the identifiers to screen for),
:func:`_execute` (the notebook, with papermill, on the worker's warm kernel), :func:`_build_pages` (sanitize the
notebook, HTML and PDF pages), :func:`_screen_and_audit` (privacy screen, disclosure gate; the gate, :class:`_Gate`,
starts in a thread as soon as the notebook has run and overlaps the HTML pages' writing, and the screen,
:class:`_Screen`, starts once they are written, beside the gate's end and Chromium's printing, which waits for the
gate) and
:func:`_publish` (atomic, once per run). :func:`run_job` chains them and turns any failure into the district's reason:
:func:`prepare_job` the inputs, :func:`run_notebook` the notebook, :func:`finish_job` the rest, so that a serial batch
can prepare a district while the one before runs its notebook, and run its notebook while the one before that is printed
(:meth:`~.runner_engine.Engine.run`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from .kernel_isolation import freeze_baseline, return_memory
from .runner_parameters import CROSS_DISTRICT

if TYPE_CHECKING:
    from ..disclosure.identifiers import Identifiers

# DistrictResult and ensure_kernel are public through opportunity_research.batch.runner; the steps of run_job
# (prepare_job, run_notebook, finish_job) are for runner_engine
__all__ = ["PUBLISH_RECORD", "run_job", "staging_dir"]

#: Seconds a notebook cell may run before its district fails (``--timeout``).
DEFAULT_CELL_TIMEOUT = 1800
#: File in a published report folder recording the run that published it.
PUBLISH_RECORD = ".publish.json"
_MAX_REASON = 1500


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
    # step -> (wall seconds, CPU seconds of the worker's process tree: runner, kernel, browser); for benchmarks. In a
    # serial batch the next district's inputs and notebook may overlap this one's pages (Engine.run): the CPU
    # seconds of either then count both, and ``seconds`` includes the wait between the notebook and the pages
    stages: dict = dataclasses.field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["seconds"] = round(d["seconds"], 1)
        del d["traceback"], d["stages"]
        for k in ("districts", "last_good", "failed_at", "published_at", "log"):
            if d[k] is None:
                del d[k]
        if not d["stale"]:
            del d["stale"]
        return d


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
        f"--sys-prefix --name {kernel_name}' and remove the other kernelspec ({spec.resource_dir})."
    )


# ---------------------------------------------------------------------------------------------
# One notebook run (a Dask task, or a call in this process)


@dataclasses.dataclass
class Job:
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
    #: No further task runs on this worker after this one (:meth:`~.runner_engine.Engine.run` sets it on a serial
    #: batch's last task): its warm kernel is shut down once the notebook has run, instead of being kept for a next
    #: district. (The browser stays until :meth:`~.runner_engine.Engine.close`: at 1M students it holds about 0.5 GB
    #: PSS, the district's size does not change that, and the notebook step, not the pages, sets the run's peak.)
    last: bool = False


def now_utc() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


def rel_path(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def shown_path(path: Path, root: Path) -> str:
    """A path safe to show: relative to the project root, or just its name when outside it."""
    return rel_path(path, root) if Path(path).resolve().is_relative_to(root) else Path(path).name


def staging_dir(reports: Path) -> Path:
    """Where a run stages its work: ``.<reports>-staging/`` beside the reports folder, never inside it.

    A sibling, so that publishing is a rename on the same file system; nothing a reader of ``reports/`` sees
    (no half-built folder, no folder moved aside, no cancel marker) appears there while a run is in flight.

    Examples
    --------
    >>> staging_dir(Path("/srv/project/reports")).as_posix()
    '/srv/project/.reports-staging'
    """
    return reports.parent / f".{reports.name}-staging"


def _swap_in(tmp: Path, final: Path) -> None:
    """Replace ``final`` by ``tmp`` with renames (the old folder is moved aside into ``tmp``'s folder, the staging
    folder, then removed)."""
    old = None
    if final.exists():
        old = tmp.parent / f"old-{final.name}-{secrets.token_hex(4)}"
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


def _execute(job: Job, nb_out: Path, parameters: dict, result: DistrictResult) -> None:
    """Run the notebook with papermill on this worker's warm kernel (:mod:`opportunity_research.batch.warm_kernel`;
    shut down afterwards when the job is the worker's ``last``); retry once if the kernel failed to start (counted in
    ``result``)."""
    from papermill.exceptions import PapermillExecutionError

    from . import warm_kernel

    for attempt in (1, 2):
        result.attempts = attempt
        try:
            warm_kernel.execute(
                job.notebook,
                str(nb_out),
                parameters=parameters,
                cwd=job.root,
                kernel_name=job.kernel_name,
                start_timeout=job.start_timeout,
                execution_timeout=job.execution_timeout,
                last=job.last,
            )
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
            where = ", ".join(
                x
                for x in (
                    p.file,
                    None if p.line is None else f"line {p.line}",
                    None if p.column is None else f"column {p.column}",
                )
                if x
            )
            value = (
                "" if p.value is None else f" (value {'[id]' if p.column in id_columns else repr(p.value)})"
            )
            parts.append(f"{where}: {p.rule}{value}")
        more = f"; and {len(errors) - shown} more" if len(errors) > shown else ""
        text = f"data validation failed ({report.summary()}): " + "; ".join(parts) + more
    except AttributeError:  # an older report object: its own text table
        text = "data validation failed: " + " | ".join(
            ln.strip() for ln in str(report.format()).splitlines()[1:6] if ln.strip()
        )
    return text + f". Full list: opportunity-research validate data/raw/{report.path.name}"


def _publish_record(folder: Path) -> dict:
    """The ``.publish.json`` of a published report folder ({} if absent or unreadable)."""
    try:
        rec = json.loads((folder / PUBLISH_RECORD).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return rec if isinstance(rec, dict) else {}


def mark_stale(result: DistrictResult, reports: Path) -> DistrictResult:
    """For a failed result: point at the last good report, if there is one, and date the failure."""
    name = result.district_id
    result.failed_at = result.failed_at or now_utc()
    html = reports / name / "report.html"
    if html.exists():
        rec = _publish_record(reports / name)
        result.stale, result.report = True, f"{name}/report.html"
        result.last_good = (
            rec.get("published_at")
            or _dt.datetime.fromtimestamp(html.stat().st_mtime, _dt.UTC).replace(microsecond=0).isoformat()
        )
    else:
        result.stale, result.report, result.last_good = False, None, None
    return result


def cancel_marker(reports: Path, run_id: str) -> Path:
    return staging_dir(reports) / f"cancel-{run_id}"


@contextlib.contextmanager
def _publish_lock(name: str):
    """One publisher at a time per report folder across the cluster (a no-op outside a Dask worker)."""
    if "distributed" not in sys.modules:  # not a Dask worker (one has imported it): no need to import it here
        yield
        return
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


def _count_start(job: Job, name: str) -> int:
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


def _write_log(job: Job, name: str, tmp: Path | None, full_tb: str, reason: str, root: Path) -> Path | None:
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


def _already_published(job: Job, name: str, final: Path, result: DistrictResult) -> bool:
    """True (and ``result`` filled in) when an earlier run of this task published, then its worker died before
    reporting back."""
    if not (job.run_id and _publish_record(final).get("run_id") == job.run_id):
        return False
    result.status, result.report = "ok", f"{name}/report.html"
    result.published_at = _publish_record(final).get("published_at")
    with contextlib.suppress(OSError, json.JSONDecodeError, AttributeError):
        manifest = Path(job.processed_dir) / job.district_id / "manifest.json"
        result.inputs = json.loads(manifest.read_text()).get("inputs", {}) if job.kind == "district" else {}
    return True


def _prepare_inputs(job: Job, result: DistrictResult, ids: Identifiers) -> None:
    """Step 1: validate and process the district's raw data; name (to ``ids``) the folders of the identifiers the
    privacy screen and every shown reason must not contain (raw ids and pseudonyms: :class:`Identifiers`, which reads
    them when the screen or a redaction first needs them, not while the notebook runs)."""
    root, raw_dir, processed_dir = Path(job.root), Path(job.raw_dir), Path(job.processed_dir)
    for d in job.id_districts:
        ids.read(raw_dir / d, processed_dir / d)
    if job.kind != "district":
        return
    raw = raw_dir / job.district_id
    if not raw.is_dir():
        raise _Failure(f"no raw data folder {shown_path(raw, root)}")
    ids.read(raw)  # before processing, so a validation failure's reason is redacted too
    if job.process:
        from ..intake.dataset import process_district

        process_district(raw, processed_root=processed_dir, key=job.key)
        return_memory()  # what processing freed, back to the system while the notebook runs
    ids.read(processed_dir / job.district_id)
    manifest = processed_dir / job.district_id / "manifest.json"
    if manifest.exists():
        result.inputs = json.loads(manifest.read_text()).get("inputs", {})


def _build_pages(job: Job, tmp: Path, final: Path, nb_out: Path, before_print=None) -> None:
    """Step 3: the executed notebook sanitized, its findings checked, the HTML pages and PDFs built
    (``before_print``: see :func:`~opportunity_research.report.pages.publish_pages`) in this thread's shared
    browser."""
    from ..report.pages import publish_pages
    from ..report.reporting import sanitize_notebook

    root = Path(job.root)
    rel_tmp, rel_final = rel_path(tmp, root), rel_path(final, root)
    sanitize_notebook(
        nb_out,
        root=root,
        replace={rel_tmp: rel_final},
        input_path=shown_path(Path(job.notebook), root),
        output_path=f"{rel_final}/report.ipynb",
    )
    if job.require_findings and not (tmp / "findings.json").exists():
        raise _Failure(
            "the notebook wrote no findings.json: its last cell must call "
            "reporting.write_outputs(output_dir, findings=...)"
        )
    title = (
        "Opportunity report: cross-district synthesis"
        if job.kind == "cross"
        else f"Opportunity report: {job.district_id}"
    )
    publish_pages(
        tmp,
        notebook=nb_out,
        kind=job.kind,
        title=title,
        min_n=job.min_n,
        districts=job.parameters.get("districts", ()) if job.kind == "cross" else (),
        shared_browser=True,
        before_print=before_print,
    )


class _Gate:
    """The disclosure gate of a district (its published tables re-audited from the files alone,
    :func:`~opportunity_research.disclosure.joint.audit_report_folder`), run in a thread of its own.

    It reads only ``findings.json`` and ``tables/*.csv``, which the notebook has written and nothing after it
    changes, so :func:`run_job` starts it as soon as the notebook has run: it works while the notebook is sanitized
    and the HTML pages are written, and :func:`_screen_and_audit` takes its result after the privacy screen. Same
    audit, same decision, same messages as run after the screen; a task that fails before then does not wait for it
    (its result is never read). :meth:`wait` lets it finish (and give its memory back) before Chromium prints: at
    1,000,000 students the audit held 360 MB at its peak, which otherwise came on top of the printing browser's and
    the screen's (the browser is started meanwhile, and the screen once the HTML pages are written: at a million
    students the gate is mostly done by then).
    """

    def __init__(self, job: Job, folder: Path):
        self.problems: list[str] = []
        self.error: BaseException | None = None
        self._thread = None
        if job.kind != "district":  # the cross-district report publishes no district tables
            return
        from ..disclosure.joint import audit_report_folder  # imported here, not in the thread

        def run() -> None:
            try:
                self.problems = audit_report_folder(folder, min_n=job.min_n)
            except BaseException as exc:  # noqa: BLE001 - handed to the task by result()
                self.error = exc
            return_memory()  # the audit's model, freed, back to the system while the pages and the screen run

        self._thread = threading.Thread(target=run, name=f"disclosure-gate-{job.district_id}", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        """Until the gate has finished (its result is read later, by :meth:`result`)."""
        if self._thread is not None:
            self._thread.join()

    def result(self) -> list[str]:
        """The unprotected cells the gate found (empty: the folder may be published); raises what the gate
        raised."""
        if self._thread is None:
            return []
        self._thread.join()
        if self.error is not None:
            raise self.error
        return self.problems


#: The files the privacy screen reads (:func:`~opportunity_research.disclosure.privacy.screen_outputs`); it
#: reads no other file (PDFs, PNG figures).
_SCREENED = (".ipynb", ".html", ".htm", ".json", ".csv", ".txt", ".md")


def _screened_files(folder: Path) -> dict[Path, tuple[int, int, int]]:
    """Every file of ``folder`` the privacy screen reads, with what would show that it changed (inode, size,
    modification time in ns: a rewrite, atomic or in place, changes one of them)."""
    out = {}
    for f in sorted(q for q in folder.rglob("*") if q.is_file() and q.suffix.lower() in _SCREENED):
        st = f.stat()
        out[f] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return out


class _Screen:
    """The privacy screen of a folder whose pages are written, run in a thread while the gate ends (:class:`_Gate`)
    and Chromium prints the PDFs.

    It screens the files the screen reads as they are when it starts (:func:`_screened_files`): the sanitized
    notebook, findings, tables and the HTML pages; printing adds only PDFs, which the screen does not read.
    :meth:`result` gives its findings only if those files are still exactly the ones it read (the same names,
    inodes, sizes and times); otherwise (e.g. no browser: the links to the PDFs not made are removed from the
    pages afterwards) the whole folder is screened again there, as before. Same screen, same findings, same
    order; a task that fails before then does not wait for it.
    """

    def __init__(self, job: Job, folder: Path, ids: Identifiers):
        from ..disclosure.privacy import screen_outputs

        self.job, self.folder, self.ids = job, folder, ids
        self.files = _screened_files(folder)
        self.problems: list = []
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.problems = self._screen(list(self.files))
            except BaseException as exc:  # noqa: BLE001 - handed to the task by result()
                self.error = exc
            return_memory()

        self._screen_outputs = screen_outputs
        self._thread = threading.Thread(target=run, name=f"privacy-screen-{folder.name}", daemon=True)
        self._thread.start()

    def _screen(self, paths) -> list:
        job = self.job
        return self._screen_outputs(
            paths, student_ids=self.ids, min_n=job.min_n, root=Path(job.root), base=self.folder
        )

    def result(self) -> list:
        """The screen's findings on the folder as it is now (empty: nothing found); raises what it raised."""
        self._thread.join()
        if _screened_files(self.folder) != self.files:
            return self._screen([self.folder])  # something the screen reads changed after it started
        if self.error is not None:
            raise self.error
        return self.problems


def _screen_and_audit(
    job: Job, tmp: Path, ids: Identifiers, gate: _Gate | None = None, screen: _Screen | None = None
) -> None:
    """Step 4: the privacy screen over every file, then the disclosure gate: nothing is published unless both
    pass. ``gate``: the gate already started on ``tmp`` (:class:`_Gate`); by default it is run here. ``screen``:
    the screen already started on ``tmp`` while the PDFs were printed (:class:`_Screen`); by default it is run
    here."""
    from ..disclosure.privacy import screen_outputs

    if screen is not None:
        problems = screen.result()
    else:
        problems = screen_outputs([tmp], student_ids=ids, min_n=job.min_n, root=Path(job.root), base=tmp)
    if problems:
        shown = "; ".join(str(p) for p in problems[:8])
        shown += f"; and {len(problems) - 8} more" if len(problems) > 8 else ""
        raise _Failure(f"privacy screen found {len(problems)} problem(s): {shown}")
    # disclosure gate (districts): re-audit the published tables from the files alone
    if unprotected := (gate if gate is not None else _Gate(job, tmp)).result():
        raise _Failure(
            f"disclosure audit found {len(unprotected)} unprotected cell(s): "
            + "; ".join(unprotected[:8])
            + (" ..." if len(unprotected) > 8 else "")
        )


def _publish(job: Job, name: str, tmp: Path, final: Path, cancelled: Path) -> str | None:
    """Step 5: replace ``final`` by ``tmp`` atomically, under the per-district lock, once per run.

    Returns the publication time, and None when ``tmp`` was not moved (another run of this task published)."""
    published_at = now_utc()
    (tmp / PUBLISH_RECORD).write_text(
        json.dumps({"district_id": name, "run_id": job.run_id, "published_at": published_at}) + "\n",
        encoding="utf-8",
    )
    with _publish_lock(name):
        if cancelled.exists():
            raise _Failure("cancelled (Ctrl-C)")
        if job.run_id and _publish_record(final).get("run_id") == job.run_id:
            return None
        _swap_in(tmp, final)
    return published_at


def _record_failure(
    job: Job,
    name: str,
    exc: Exception,
    result: DistrictResult,
    ids: Identifiers,
    tmp: Path | None,
    cancelled: Path,
) -> None:
    """A failed task: the redacted reason and traceback tail in ``result``, the full story in the private log."""
    from ..disclosure.privacy import redact

    root = Path(job.root)
    result.status = "failed"
    # local paths beyond the project root: the installed package, the notebook's folder, the worker's cwd
    local = [str(Path(__file__).resolve().parents[2]), str(Path(job.notebook).resolve().parent), os.getcwd()]
    result.reason = redact(_reason(exc), ids=ids, root=root, paths=local)[:_MAX_REASON]
    if not cancelled.exists():
        full = _full_traceback(exc)
        result.traceback = redact(_tail(full), ids=ids, root=root, paths=local)
        try:
            log = _write_log(job, name, tmp, full, result.reason, root)
            result.log = shown_path(log, root) if log is not None else None
        except OSError as err:  # pragma: no cover - e.g. a read-only log folder
            result.reason += f" (and the log could not be written: {type(err).__name__})"
    mark_stale(result, Path(job.reports_dir))


def _tree_cpu() -> dict | None:
    """CPU seconds so far of this process and each running descendant (the warm kernel, the browser's processes),
    by (pid, start time); None when they cannot be read."""
    try:
        import psutil

        me = psutil.Process()
        out = {}
        for p in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):  # a child may exit while we look
                t = p.cpu_times()
                out[(p.pid, p.create_time())] = t.user + t.system
        return out
    except Exception:  # noqa: BLE001 - a measurement only
        return None


_WARM = threading.Lock()
_warm = False


def _freeze_warm_process() -> None:
    """Once per process, after its first published report: :func:`~.kernel_isolation.freeze_baseline` here too.

    By then the worker (or the runner itself, ``--jobs 1``) has imported what every task imports (nbconvert,
    papermill, Playwright, the disclosure audit, ...): about 160,000 objects that live as long as the process. The
    gate's and the screen's threads each end with :func:`~.kernel_isolation.return_memory`, whose full collection
    walked all of them: 80 ms each, 0.16 CPU-s of a demo district (2-core machine of issue 21). Frozen, later
    collections walk only what later tasks create, which they collect as before.
    """
    global _warm
    with _WARM:
        if _warm:
            return
        _warm = True
    freeze_baseline()


@contextlib.contextmanager
def _stage(result: DistrictResult, name: str):
    """Record the step's wall seconds and the CPU seconds the worker's process tree spent meanwhile (processes that
    exit during the step, e.g. a closed tab's renderer, leave their last CPU seconds uncounted)."""
    t, before = time.perf_counter(), _tree_cpu()
    try:
        yield
    finally:
        after = _tree_cpu()
        cpu = (
            None
            if before is None or after is None
            else sum(max(c - before.get(k, 0.0), 0.0) for k, c in after.items())
        )
        result.stages[name] = (time.perf_counter() - t, cpu)


@dataclasses.dataclass
class Started:
    """A task whose first steps are done (:func:`prepare_job`, :func:`run_notebook`): what the next step needs."""

    job: Job
    result: DistrictResult
    ids: Identifiers
    t0: float
    tmp: Path | None = None  # the staging folder, once made
    nb_out: Path | None = None  # the executed notebook, once it has run
    error: Exception | None = None  # what failed the task so far (finish_job records it)
    done: bool = False  # published by an earlier run of this task (nothing left to do)


def prepare_job(job: Job) -> Started:
    """Step 1 of a task: its inputs (validate and process; the identifiers to screen for). Never raises (except on
    Ctrl-C): a failure is kept in :attr:`Started.error` for :func:`finish_job`, which records it.

    The serial batch runs this for the next district in a thread while this district's notebook runs
    (:meth:`~.runner_engine.Engine.run`)."""
    from ..disclosure.identifiers import Identifiers

    t0 = time.perf_counter()
    name, reports = CROSS_DISTRICT if job.kind == "cross" else job.district_id, Path(job.reports_dir)
    started = Started(job, DistrictResult(name, "failed"), Identifiers(), t0)
    result = started.result
    result.runs = _count_start(job, name)
    try:
        if _already_published(job, name, reports / name, result):
            started.done = True
            return started
        if cancel_marker(reports, job.run_id).exists():
            raise _Failure("cancelled (Ctrl-C)")
        with _stage(result, "inputs"):
            _prepare_inputs(job, result, started.ids)
    except Exception as exc:  # noqa: BLE001 - every failure becomes the district's reason, in finish_job
        started.error = exc
    return started


def run_notebook(started: Started) -> Started:
    """Step 2 of a task :func:`prepare_job` prepared: the notebook, into a new staging folder (nothing when the task
    has failed or is done). Never raises (except on Ctrl-C, after removing the staging folder): a failure is kept
    in :attr:`Started.error` for :func:`finish_job`.

    The serial batch runs this for the next district in a thread while this district's pages are printed
    (:meth:`~.runner_engine.Engine.run`)."""
    job, result = started.job, started.result
    if started.error is not None or started.done:
        return started
    reports = Path(job.reports_dir)
    try:
        if cancel_marker(reports, job.run_id).exists():  # e.g. a serial batch's next district, ahead
            raise _Failure("cancelled (Ctrl-C)")
        staging = staging_dir(reports)
        staging.mkdir(parents=True, exist_ok=True)
        started.tmp = Path(tempfile.mkdtemp(prefix=f"tmp-{result.district_id}-{job.run_id}-", dir=staging))
        parameters = dict(job.parameters)
        if "output_dir" in parameters or job.kind == "district":
            parameters["output_dir"] = rel_path(started.tmp, Path(job.root))
        nb_out = started.tmp / "report.ipynb"
        with _stage(result, "notebook"):
            _execute(job, nb_out, parameters, result)
        started.nb_out = nb_out
    except Exception as exc:  # noqa: BLE001 - every failure becomes the district's reason, in finish_job
        started.error = exc
    except BaseException:
        abandon(started)
        raise
    return started


def abandon(started: Started) -> None:
    """Remove the staging folder of a task that will not be finished (the batch was interrupted)."""
    if started.tmp is not None:
        shutil.rmtree(started.tmp, ignore_errors=True)
        started.tmp = None


def finish_job(started: Started) -> DistrictResult:
    """Steps 3 to 5 of a task :func:`run_notebook` ran: pages, screen and audit, publish; or the failure of its first
    steps recorded. Never raises (except on Ctrl-C); the staging folder is gone afterwards."""
    job, result, ids, tmp = started.job, started.result, started.ids, started.tmp
    name = result.district_id
    reports = Path(job.reports_dir)
    final = reports / name
    cancelled = cancel_marker(reports, job.run_id)
    try:
        if started.error is not None:
            raise started.error
        if not started.done:
            gate = _Gate(job, tmp)  # the disclosure gate, while the HTML pages are built
            screens: list[_Screen] = []  # the privacy screen, while Chromium prints

            def before_print() -> None:  # the pages written: the screen starts; the gate done (its memory
                # returned) before the browser prints
                screens.append(_Screen(job, tmp, ids))
                gate.wait()

            with _stage(result, "pages"):
                _build_pages(job, tmp, final, started.nb_out, before_print=before_print)
            with _stage(result, "screen+audit"):
                _screen_and_audit(job, tmp, ids, gate, screens[0] if screens else None)
            with _stage(result, "publish"):
                published_at = _publish(job, name, tmp, final, cancelled)
            if published_at is not None:
                tmp = None  # moved into place
            result.status, result.report = "ok", f"{name}/report.html"
            result.published_at = published_at or _publish_record(final).get("published_at")
    except Exception as exc:  # noqa: BLE001 - every failure becomes the district's reason
        _record_failure(job, name, exc, result, ids, tmp, cancelled)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        started.tmp = None
        if result.status == "ok":
            _freeze_warm_process()
        result.seconds = time.perf_counter() - started.t0
    return result


def run_job(job: Job) -> DistrictResult:
    """Run one district (or the cross-district report) end to end: :func:`prepare_job`, :func:`run_notebook`,
    :func:`finish_job`; never raises (except on Ctrl-C).

    Runs in a Dask worker (or in this process). A failure leaves ``reports/<name>/`` as it was and writes
    the private log instead; a success replaces it atomically, once per run. The steps: inputs, notebook,
    pages, screen and audit, publish (see the module docstring).

    Examples
    --------
    A job for a district folder that does not exist fails with its reason, and publishes nothing:

    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> job = Job("district", "nowhere", "notebooks/district_report.ipynb", root=root, reports_dir=root + "/reports",
    ...           raw_dir=root + "/data/raw", processed_dir=root + "/data/processed", parameters={}, min_n=10,
    ...           kernel_name="python3")
    >>> r = run_job(job)
    >>> r.status, r.reason
    ('failed', 'no raw data folder data/raw/nowhere')

    Each step it reached has its wall and CPU seconds (for benchmarks; not in the manifest):

    >>> list(r.stages), r.stages["inputs"][0] >= 0, "stages" in r.to_dict()
    (['inputs'], True, False)
    """
    return finish_job(run_notebook(prepare_job(job)))
