"""Batch runner: every district's report, the cross-district report, ``reports/index.html``.

``opportunity-research run`` (or :func:`run_batch`) turns each district into one task of a
`Dask distributed <https://distributed.dask.org>`_ cluster. ``--jobs N`` starts a ``LocalCluster`` of
``N`` worker processes on this machine; ``--scheduler tcp://HOST:PORT`` submits the same tasks to an
existing cluster, whose workers must see the project folder (data, reports and logs) at the same
absolute path, as on an HPC file system or a mounted volume. ``--jobs 1`` without a scheduler runs the
districts one after another in this process, neighbours of at most 256 MB of raw files overlapping
(:meth:`~opportunity_research.batch.runner_engine.Engine.run`): in threads, the next district's step 1 runs while this
one's notebook runs, and its notebook while this one's steps 3 to 5 run; each district is still screened and gated
before it is published.
Each task, for one district:

1. **Validate and process** ``data/raw/<district>/`` into ``data/processed/<district>/``
   (:func:`opportunity_research.intake.dataset.process_district`); a contract violation fails the district
   with the first problems as its reason.
2. **Execute** the notebook with papermill on the worker's warm kernel (one kernel per worker, reset to its
   baseline before each district: :mod:`~opportunity_research.batch.warm_kernel`; IPC transport, cwd = project root;
   a serial batch's last task shuts it down once its notebook has run), into
   ``.reports-staging/tmp-<district>-<run>-<random>/`` (beside ``reports/``, never inside it: see
   :func:`staging_dir`); the notebook's ``output_dir`` parameter is that folder.
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
district with bad parameters is not run and nothing of it is touched.

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

Modules: :mod:`~opportunity_research.batch.runner_parameters` (what a notebook declares, checks),
:mod:`~opportunity_research.batch.runner_task` (one task, step by step), :mod:`~opportunity_research.batch.warm_kernel`
(one kernel per worker, reset between districts), :mod:`~opportunity_research.batch.runner_engine` (Dask or this
process, progress) and this one (:class:`BatchSettings`, :func:`run_batch`, the manifest and index, the command).

Examples
--------
$ opportunity-research run                                   # every district in data/raw, one at a time
$ opportunity-research run --districts demo_lakeside demo_riverton --jobs 2
$ opportunity-research run --param 'subjects=["math"]' --param n_boot=200 --no-cross
$ opportunity-research run --scheduler tcp://10.0.0.5:8786   # an existing Dask cluster
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as _dt
import json
import os
import secrets
import shutil
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from .. import config
from ..version import __version__
from .cross import run_cross
from .discovery import DEFAULT_COUNTS_NOTEBOOK, counts_only, discover_districts
from .runner_engine import Engine, Progress
from .runner_parameters import (
    CROSS_DISTRICT,
    DISTRICT_ID,
    PARAMETER_RULES,
    RUNNER_PARAMETERS,
    ParameterError,
    TemplateModified,
    batch_parameters,
    check_parameters,
    check_template,
    notebook_parameters,
    parse_value,
)
from .runner_task import (
    DEFAULT_CELL_TIMEOUT,
    PUBLISH_RECORD,
    DistrictResult,
    Job,
    cancel_marker,
    ensure_kernel,
    mark_stale,
    now_utc,
    rel_path,
    shown_path,
    staging_dir,
)
from .summary import batch_summary

__all__ = [
    "CROSS_DISTRICT",
    "DEFAULT_CELL_TIMEOUT",
    "DEFAULT_COUNTS_NOTEBOOK",
    "DEFAULT_CROSS_NOTEBOOK",
    "DEFAULT_NOTEBOOK",
    "PARAMETER_RULES",
    "PUBLISH_RECORD",
    "RUNNER_PARAMETERS",
    "BatchInterrupted",
    "BatchResult",
    "BatchSettings",
    "DistrictResult",
    "ParameterError",
    "TemplateModified",
    "batch_parameters",
    "check_parameters",
    "check_template",
    "counts_only",
    "discover_districts",
    "ensure_kernel",
    "notebook_parameters",
    "parse_value",
    "register",
    "run_batch",
    "staging_dir",
]

DEFAULT_NOTEBOOK = "notebooks/district_report.ipynb"
DEFAULT_CROSS_NOTEBOOK = "notebooks/cross_district.ipynb"


@dataclasses.dataclass
class BatchResult:
    """All results of :func:`run_batch`, and where the manifest and index were written.

    Examples
    --------
    >>> ok, bad = DistrictResult("demo_lakeside", "ok"), DistrictResult("demo_riverton", "failed")
    >>> result = BatchResult([ok, bad], None, Path("reports/manifest.json"), Path("reports/index.html"))
    >>> result.ok, [r.district_id for r in result.failed]
    (False, ['demo_riverton'])
    """

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
    """Ctrl-C during :func:`run_batch`: ``results`` holds the districts finished before it.

    Examples
    --------
    >>> exc = BatchInterrupted([DistrictResult("demo_lakeside", "ok")], total=3)
    >>> [r.district_id for r in exc.results], exc.total, isinstance(exc, KeyboardInterrupt)
    (['demo_lakeside'], 3, True)
    """

    def __init__(self, results: list[DistrictResult], total: int):
        super().__init__("batch interrupted")
        self.results, self.total = results, total


# ---------------------------------------------------------------------------------------------
# The batch


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
    entries = {
        e["district_id"]: e
        for e in old.get("districts", [])
        if isinstance(e, dict)
        and "district_id" in e
        and ((reports / e["district_id"]).is_dir() or e.get("status") == "failed")
    }
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

    atomic_write(
        reports / "manifest.json",
        (json.dumps(manifest, indent=1) + "\n").encode("utf-8"),
        mode=PUBLISHED_FILE_MODE,
    )
    return write_index(reports, manifest)


def _new_run_id() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


@dataclasses.dataclass(frozen=True)
class BatchSettings:
    """How to run a batch: one object instead of two dozen arguments (:func:`run_batch` takes either).

    Attributes
    ----------
    notebook, cross_notebook
        The notebooks (relative paths are taken from ``root``). ``notebook=None`` (default) chooses per
        district: :data:`DEFAULT_NOTEBOOK` for a full export, ``counts_notebook`` for a counts-only folder
        (:func:`counts_only`); a notebook given runs every district. ``cross_notebook=None`` or a
        missing file skips the cross-district report (noted in the manifest).
    counts_notebook
        The notebook of counts-only districts when ``notebook`` is None (default
        :data:`DEFAULT_COUNTS_NOTEBOOK`).
    root
        Project root: the kernels' working directory; notebook parameters are paths relative to it.
        Default: :func:`opportunity_research.config.project_root`.
    raw_dir, processed_dir, reports_dir, log_dir
        Default ``data/raw``, ``data/processed``, ``reports``, ``logs`` under ``root``. The log folder
        (failed notebooks and tracebacks, private) must lie outside the reports folder.
    jobs
        With no ``scheduler``: 1 runs the districts one after another in this process (the next one's inputs and
        notebook overlapping this one's later steps: see :meth:`.runner_engine.Engine.run`); more starts a Dask
        ``LocalCluster`` of that many single-threaded worker processes (at most one per district to run: a single
        district runs in this process).
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

    Examples
    --------
    >>> s = BatchSettings(jobs=2)
    >>> s.jobs, s.min_n, s.notebook, s.cross_notebook
    (2, 10, None, 'notebooks/cross_district.ipynb')
    """

    notebook: str | os.PathLike | None = None
    cross_notebook: str | os.PathLike | None = DEFAULT_CROSS_NOTEBOOK
    root: str | os.PathLike | None = None
    raw_dir: str | os.PathLike | None = None
    processed_dir: str | os.PathLike | None = None
    reports_dir: str | os.PathLike | None = None
    log_dir: str | os.PathLike | None = None
    jobs: int = 1
    scheduler: str | None = None
    min_n: int = config.MIN_CELL_SIZE
    seed: int | None = None
    parameters: Mapping | None = None
    district_parameters: Mapping[str, Mapping] | None = None
    process: bool = True
    key: str | None = None
    kernel_name: str = "python3"
    start_timeout: int = 60
    execution_timeout: int | None = DEFAULT_CELL_TIMEOUT
    progress: bool | str = False
    dry_run: bool = False
    allow_modified_template: bool = False
    counts_notebook: str | os.PathLike = DEFAULT_COUNTS_NOTEBOOK


def run_batch(
    districts: Iterable[str] | None = None, settings: BatchSettings | None = None, **options
) -> BatchResult:
    """Run the district notebook for each district, then the cross-district notebook; write the index.

    Parameters
    ----------
    districts
        District ids (folders of ``raw_dir``); default: :func:`discover_districts`.
    settings
        A :class:`BatchSettings` (every field is documented there).
    **options
        Fields of :class:`BatchSettings` given one by one (``run_batch(["a"], root=..., jobs=2)``); with
        ``settings`` as well, they replace its fields.

    Returns
    -------
    BatchResult
        Per-district results (in the order given), the cross-district result, manifest and index paths.

    Raises
    ------
    ParameterError, FileNotFoundError, RuntimeError
        For problems that concern every district: a notebook that is missing or lacks a single
        ``parameters`` cell, a kernel that does not run this Python, an unreachable scheduler.
    BatchInterrupted
        On Ctrl-C, after removing this run's temporary folders and recording the finished districts in
        the manifest and index.

    Examples
    --------
    A dry run over an empty raw folder checks the notebook and writes nothing:

    >>> import tempfile
    >>> root = Path(__file__).resolve().parents[2]
    >>> result = run_batch([], root=root, dry_run=True, raw_dir=tempfile.mkdtemp(), reports_dir=tempfile.mkdtemp(),
    ...                    log_dir=tempfile.mkdtemp(), progress=False)
    >>> result.districts, result.cross, result.ok
    ([], None, True)
    """
    if settings is None:
        settings = BatchSettings(**options)
    elif options:
        settings = dataclasses.replace(settings, **options)
    (
        notebook,
        cross_notebook,
        root,
        raw_dir,
        processed_dir,
        reports_dir,
        log_dir,
        jobs,
        scheduler,
        min_n,
        seed,
        parameters,
        district_parameters,
        process,
        key,
        kernel_name,
        start_timeout,
        execution_timeout,
        progress,
        dry_run,
        allow_modified_template,
        counts_notebook,
    ) = (getattr(settings, f.name) for f in dataclasses.fields(BatchSettings))
    root = Path(root).resolve() if root is not None else config.project_root()
    raw = _abs(raw_dir, root, root / "data" / "raw")
    processed = _abs(processed_dir, root, root / "data" / "processed")
    reports = _abs(reports_dir, root, root / "reports")
    logs = _abs(log_dir, root, root / "logs")
    if logs.is_relative_to(reports):
        raise ParameterError(
            f"the log folder ({shown_path(logs, root)}) must not lie inside the reports folder: "
            "it holds unscreened, private output"
        )
    nb_path = _abs(notebook, root, root / DEFAULT_NOTEBOOK)
    districts = list(districts) if districts is not None else discover_districts(raw)
    # per district: an explicit notebook runs every district; else counts-only folders get the counts notebook
    counts_path = _abs(counts_notebook, root, root / DEFAULT_COUNTS_NOTEBOOK) if notebook is None else nb_path
    chosen = {d: counts_path if counts_only(raw / d) else nb_path for d in dict.fromkeys(districts)}
    declared_by: dict[Path, dict] = {}
    for path in dict.fromkeys([nb_path, *chosen.values()]):
        declared_by[path] = notebook_parameters(path)
        for required in ("district_id", "output_dir"):
            if required not in declared_by[path]:
                raise ParameterError(f"{path.name}: the parameters cell must declare '{required}'")
        if not allow_modified_template:
            check_template(path, root)
    if not allow_modified_template:
        cross_path = _abs(cross_notebook, root, root / DEFAULT_CROSS_NOTEBOOK) if cross_notebook else None
        if cross_path is not None and cross_path.is_file():
            check_template(cross_path, root)
    ensure_kernel(kernel_name)
    run_id = _new_run_id()
    common = {
        "root": str(root),
        "reports_dir": str(reports),
        "raw_dir": str(raw),
        "processed_dir": str(processed),
        "min_n": min_n,
        "kernel_name": kernel_name,
        "run_id": run_id,
        "log_dir": str(logs),
        "start_timeout": start_timeout,
        "execution_timeout": execution_timeout,
    }
    given = {"processed_dir": rel_path(processed, root), "raw_dir": rel_path(raw, root), "min_n": min_n}
    if seed is not None:
        given["seed"] = seed
    results: dict[str, DistrictResult] = {}
    todo: list[Job] = []
    # every district's parameters are checked before anything runs or is touched
    for d in dict.fromkeys(districts):
        own = (district_parameters or {}).get(d, {})
        declared = declared_by[chosen[d]]
        params = batch_parameters(
            declared,
            {"district_id": d, "output_dir": f"{rel_path(reports, root)}/{d}"},
            {k: v for k, v in given.items() if k in declared},
            {"seed": seed} if seed is not None and "seed" not in declared else {},
            options={**(parameters or {}), **own},
        )
        problems = [
            f"parameter '{k}' is set by the runner for each district; do not pass it"
            for k in ("district_id", "output_dir")
            if k in (parameters or {}) or k in own
        ]
        params.update({"district_id": d, "output_dir": f"{rel_path(reports, root)}/{d}"})
        problems += check_parameters(params, declared)
        if problems:
            r = DistrictResult(d, "failed", reason="invalid parameters: " + "; ".join(problems))
            results[d] = mark_stale(r, reports) if DISTRICT_ID.match(d) and d != CROSS_DISTRICT else r
            continue
        todo.append(Job("district", d, str(chosen[d]), parameters=params, process=process, **common))
    if dry_run:  # nothing is touched: the plan only
        ready = [results.get(d) or DistrictResult(d, "ready") for d in dict.fromkeys(districts)]
        return BatchResult(
            ready, None, reports / "manifest.json", reports / "index.html", run_id=run_id, log_dir=logs
        )

    reports.mkdir(parents=True, exist_ok=True)
    staging = staging_dir(reports)
    staging.mkdir(exist_ok=True)
    # leftovers of runs that were killed: in the staging folder, and inside reports/ from versions before it
    for leftover in [
        *staging.iterdir(),
        *reports.glob(".tmp-*"),
        *reports.glob(".old-*"),
        *reports.glob(".cancel-*"),
    ]:
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
    meta = {
        "package_version": __version__,
        "generated_at": now_utc(),
        "run_id": run_id,
        "notebook": shown_path(nb_path, root),
        "min_n": min_n,
    }
    manifest_path = reports / "manifest.json"
    bar = Progress(mode, len(todo))
    try:
        # no more local workers than districts: one district (or only the cross-district report) runs in this
        # process, without a cluster to start whose second worker would only warm a kernel and wait
        workers = jobs if scheduler else max(1, min(jobs, len(todo)))
        with Engine(jobs=workers, scheduler=scheduler, root=root, kernel_name=kernel_name) as engine:

            def done(r: DistrictResult) -> None:
                results[r.district_id] = r
                bar.finish(r)

            engine.run(
                todo,
                done,
                priority={j.district_id: _size(raw / j.district_id) for j in todo},
                on_start=bar.start,
                last=cross_notebook is None,  # else the cross-district report runs after them
            )
            bar.close()
            for tmp in staging.glob(f"tmp-*-{run_id}-*"):  # left by workers that died mid-district
                shutil.rmtree(tmp, ignore_errors=True)
            ordered = [results[d] for d in dict.fromkeys(districts)]
            manifest = _merge_manifest(manifest_path, reports, ordered, meta)
            cross = run_cross(
                engine,
                manifest,
                _abs(cross_notebook, root, root / DEFAULT_CROSS_NOTEBOOK)
                if cross_notebook is not None
                else None,
                root=root,
                reports=reports,
                min_n=min_n,
                common=common,
            )
    except KeyboardInterrupt:
        bar.close()
        with contextlib.suppress(OSError):
            cancel_marker(reports, run_id).touch()  # tasks still running on a cluster will not publish
        for tmp in staging.glob(f"tmp-*-{run_id}-*"):
            shutil.rmtree(tmp, ignore_errors=True)
        if scheduler is None:  # the local workers are gone; tasks on an existing cluster may still be running
            cancel_marker(reports, run_id).unlink(missing_ok=True)
        finished = [results[d] for d in dict.fromkeys(districts) if d in results]
        with contextlib.suppress(Exception):
            _write_manifest_and_index(reports, _merge_manifest(manifest_path, reports, finished, meta))
        raise BatchInterrupted(finished, len(dict.fromkeys(districts))) from None
    finally:
        bar.close()
        with contextlib.suppress(OSError):  # only when empty: another run may be staging
            staging.rmdir()
    if cross is not None:
        if cross.status == "skipped" and (reports / CROSS_DISTRICT / "report.html").exists():
            mark_stale(cross, reports)  # an earlier synthesis is kept, marked as not matching the reports now
        manifest["cross_district"] = cross.to_dict()
    index = _write_manifest_and_index(reports, manifest)
    return BatchResult(ordered, cross, manifest_path, index, run_id=run_id, log_dir=logs)


# ---------------------------------------------------------------------------------------------
# Command line


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
        if not isinstance(district_params, dict) or not all(
            isinstance(v, dict) for v in district_params.values()
        ):
            print(
                f"{args.params_file}: expected a JSON object mapping district ids to parameter objects",
                file=sys.stderr,
            )
            return 2
    progress = None if args.no_progress else ("bar" if sys.stderr.isatty() else "lines")
    try:
        settings = BatchSettings(
            notebook=args.notebook,
            cross_notebook=None if args.no_cross else args.cross_notebook,
            raw_dir=args.raw_dir,
            processed_dir=args.processed_dir,
            reports_dir=args.reports_dir,
            log_dir=args.log_dir,
            jobs=args.jobs,
            scheduler=args.scheduler,
            min_n=args.min_n,
            seed=args.seed,
            parameters=params,
            district_parameters=district_params,
            process=not args.no_process,
            execution_timeout=args.timeout or None,
            progress=progress,
            dry_run=args.dry_run,
            allow_modified_template=args.allow_modified_template,
        )
        result = run_batch([] if args.cross_only else args.districts or None, settings)
    except BatchInterrupted as exc:
        n_ok = sum(r.status == "ok" for r in exc.results)
        print(
            f"\ninterrupted: {len(exc.results)} of {exc.total} districts finished ({n_ok} ok) and kept; "
            "temporary folders removed",
            file=sys.stderr,
        )
        return 130
    except KeyboardInterrupt:
        print("\ninterrupted before any district ran", file=sys.stderr)
        return 130
    except (ParameterError, FileNotFoundError, RuntimeError) as exc:
        print(f"run: {exc}", file=sys.stderr)
        return 2
    if not result.districts and not args.cross_only:
        print(
            "no districts to run: put district folders (with students.csv) in data/raw/ or name them with "
            "--districts",
            file=sys.stderr,
        )
        return 2
    print(batch_summary(result))
    if args.dry_run:
        n_ready = sum(r.status == "ready" for r in result.districts)
        print(
            f"\n{n_ready} of {len(result.districts)} districts ready to run (dry run: nothing was run or written)"
        )
        return 0 if n_ready == len(result.districts) else 1
    n_ok = sum(r.status == "ok" for r in result.districts)
    print(
        f"\n{n_ok} of {len(result.districts)} districts ok; index: {shown_path(result.index, config.project_root())}"
    )
    if result.failed:
        print("failed: " + ", ".join(r.district_id for r in result.failed), file=sys.stderr)
    return 0 if result.ok else 1


def register(subparsers) -> None:
    """Add the ``run`` subcommand (:func:`run_batch` from the command line) to ``subparsers``.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> register(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["run", "--districts", "demo_lakeside", "--jobs", "2", "--no-cross"])
    >>> args.command, args.districts, args.jobs, args.no_cross, callable(args.func)
    ('run', ['demo_lakeside'], 2, True, True)
    """
    p = subparsers.add_parser(
        "run",
        help="build every district's report (papermill + nbconvert on Dask), the cross-district report "
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
        '  opportunity-research run --params-file district_params.json   # {"demo_lakeside": {"min_n": 20}}\n'
        "  opportunity-research run --notebook notebooks/district_report.ipynb --no-cross\n"
        "  opportunity-research run --param n_boot=200 --dry-run       # check the parameters only\n"
        "  opportunity-research run --scheduler tcp://127.0.0.1:8786     # workers: dask worker tcp://...:8786",
    )
    p.add_argument(
        "--districts",
        nargs="+",
        metavar="ID",
        help="district ids (default: every folder of data/raw with a students.csv)",
    )
    p.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=1,
        help="districts to run at once on this machine, each in a "
        "worker process of a Dask LocalCluster (default 1: one after another in this process)",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="tcp://HOST:PORT",
        help="submit the districts to an existing Dask cluster instead; its workers must see this "
        "project folder at the same path (shared file system) and have this package installed",
    )
    p.add_argument(
        "--notebook",
        default=None,
        help=f"district notebook for every district (default {DEFAULT_NOTEBOOK}, and "
        f"{DEFAULT_COUNTS_NOTEBOOK} for a counts-only folder: level_counts.csv without students.csv)",
    )
    p.add_argument(
        "--cross-notebook",
        default=DEFAULT_CROSS_NOTEBOOK,
        help=f"cross-district notebook (default {DEFAULT_CROSS_NOTEBOOK})",
    )
    p.add_argument("--raw-dir", default=None, help="raw district folders (default data/raw)")
    p.add_argument("--processed-dir", default=None, help="processed tables (default data/processed)")
    p.add_argument("--reports-dir", default=None, help="output folder (default reports)")
    p.add_argument(
        "--log-dir",
        default=None,
        help="private folder for failed notebooks and tracebacks, outside the reports folder (default logs)",
    )
    p.add_argument(
        "--min-n",
        type=int,
        default=config.MIN_CELL_SIZE,
        help=f"minimum cell size for the notebook and the privacy screen (default {config.MIN_CELL_SIZE})",
    )
    p.add_argument(
        "--seed", type=int, default=None, help="random seed passed to the notebook (default: its own)"
    )
    p.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="notebook parameter for every district; VALUE is JSON or a Python literal, else text "
        "(repeatable; unknown names, wrong types and values not allowed are rejected)",
    )
    p.add_argument(
        "--params-file",
        default=None,
        metavar="FILE.json",
        help="per-district parameters: a JSON object {district_id: {name: value}}",
    )
    p.add_argument(
        "--timeout",
        type=int,
        default=DEFAULT_CELL_TIMEOUT,
        help=f"seconds a notebook cell may run before its district fails (default {DEFAULT_CELL_TIMEOUT}; "
        "0: no limit)",
    )
    p.add_argument(
        "--no-process",
        action="store_true",
        help="use the processed tables as they are (default: validate and process data/raw first)",
    )
    p.add_argument("--no-cross", action="store_true", help="skip the cross-district report")
    p.add_argument(
        "--cross-only",
        action="store_true",
        help="run no district: only the cross-district report "
        "over the current district reports, and the index (what `make reports` runs when only the "
        "cross-district notebook changed)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="only check every district's parameters against the "
        "notebook and list what would run; nothing is written",
    )
    p.add_argument(
        "--allow-modified-template",
        action="store_true",
        help="run the district notebook even if its cells differ from the committed version (default: "
        "refuse, so an exploratory edit never reaches a published report; explore in notebooks/work/)",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress output (default: a bar on a terminal, else a line per district and every 30 s)",
    )
    p.set_defaults(func=_cmd)
