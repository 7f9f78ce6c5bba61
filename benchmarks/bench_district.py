"""Benchmark: one district from raw CSV to published report, stage by stage, at 10k, 100k and 1M students.

For each size, in a fresh temporary project:

1. ``synthesize``: ``synthesize_district(students=N)`` (one district, ``demo_metro``), seconds and peak memory
   (not part of the end-to-end figure: a real district brings its own CSV files);
2. per-stage profile of the analysis, in a fresh process: ``read`` (load_district), ``score`` (classroom
   access from the evidence), ``access`` (student access), ``gaps``, ``models`` (growth frame + study models),
   ``climate``, ``trajectories``, ``scorecard`` (indicators, needs, scorecard), ``equity`` (composition,
   furthest, multiple measures, rates), ``disclosure`` (the publishing-boundary audit, when the package has
   ``opportunity_research.disclosure.joint``), ``other`` (the rest of ``analyze_district``); each stage's seconds
   and the peak resident memory reached during it;
3. end to end through the batch runner in a fresh process (``run_batch(jobs=1)``: validate + process,
   notebook (papermill, the kernel runs the analysis), pages (HTML, PDFs printed by Chromium), privacy screen and
   disclosure gate), with seconds per stage, CPU seconds, and the peak memory of the whole process tree (runner,
   notebook kernel, Chromium and Playwright's driver), sampled every 20 ms (:class:`Sampler`) as two sums, both
   printed: **RSS** (each process's resident set: a page several processes share, e.g. a library or Chromium's
   shared memory, counts once in each) and **PSS** (proportional: a shared page counts 1/n in each of the n
   processes mapping it; the memory the tree really takes from the machine). Chromium's processes share much, so
   the RSS sum overstates the pages step most. Also each role's peak RSS, PSS and USS (its private pages) by stage,
   and the task's own steps (``DistrictResult.stages``: inputs, notebook, pages, screen+audit, publish) with their
   wall and CPU seconds (of the runner and its children during each; a thread of the step counts in it);

Then the scaling ratios (time and peak at each size / the previous size) and, in the same run, the demo
report against the floor: a one-cell notebook through papermill + nbconvert (median of 3) vs the demo districts'
reports (``make reports`` data: the five districts of 4,000 students), run serially (``jobs=1``: one district's
pages beside the next one's notebook). The figure against the target is the batch's wall time a district; each
district's own seconds (from its start to its publishing) overlap its neighbours'. Also each step's mean wall and
CPU seconds (``DistrictResult.stages``).

    .venv/bin/python benchmarks/bench_district.py                       # 10k, 100k and 1M students + demo
    .venv/bin/python benchmarks/bench_district.py --students 100000     # one size
    .venv/bin/python benchmarks/bench_district.py --quick               # 10k students, no demo comparison
    .venv/bin/python benchmarks/bench_district.py --demo-only           # only the demo report vs the floor
    .venv/bin/python benchmarks/bench_district.py --students 100000 1000000 --no-stages  # end to end only
    .venv/bin/python benchmarks/bench_district.py --students 1000000 --no-stages --no-demo \
        --raw /work/big/p1000k/raw/demo_metro        # an existing raw district instead of synthesizing one

The demo comparison also prints the batch's CPU seconds (runner, kernel and Chromium: this process and its reaped
children) per district, which depend much less than wall time on what else the machine runs.

Targets (issue 14): 1M students end to end <= 120 s and <= 2 GB peak (both sums are printed: see step 3); 1M / 100k
time ratio <= 12; demo report <= 5x the floor.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
KEY = "bench-key-012345"

#: Analysis stages: (module, function) -> stage; only the outermost timed call counts (no double counting).
ANALYSIS_STAGES = {
    ("intake.dataset", "load_district"): "read",
    ("study.measures", "score_evidence"): "score",
    ("study.measures", "classroom_access"): "score",
    ("study.measures", "student_access"): "access",
    ("study.equity", "resource_gaps"): "gaps",
    ("study.measures", "growth_frame"): "models",
    ("study.growth", "fit_study_models"): "models",
    ("study.climate", "climate_summary"): "climate",
    ("study.climate", "climate_reliability"): "climate",
    ("study.climate", "climate_indicators"): "scorecard",
    ("study.panels", "yearly_panel"): "trajectories",
    ("study.trajectories", "catch_up_rates"): "trajectories",
    ("study.trajectories", "grade_level_growth"): "trajectories",
    ("study.trajectories", "level_movement"): "trajectories",
    ("study.trajectories", "trajectory_indicators"): "trajectories",
    ("study.equity", "opportunity_indicators"): "scorecard",
    ("study.scorecard", "needs_of"): "scorecard",
    ("study.scorecard", "opportunity_scorecard"): "scorecard",
    ("study.measures", "resource_rates"): "equity",
    ("study.measures", "demands_vs_standards"): "equity",
    ("study.equity", "classroom_composition"): "equity",
    ("study.equity", "furthest_from_opportunity"): "equity",
    ("study.equity", "multiple_measures_gaps"): "equity",
}
#: Runner stages (end to end).
RUNNER_STAGES = {
    ("intake.dataset", "process_district"): "validate+process",
    ("batch.runner_task", "_execute"): "notebook",
    ("batch.runner_task", "_build_pages"): "pages (HTML+PDF)",
    ("batch.runner_task", "_screen_and_audit"): "privacy screen+gate",
}


#: Roles of the process tree, by what a process runs (:func:`role_of`).
ROLES = ("runner", "kernel", "chromium", "playwright", "other")


def role_of(proc) -> str:
    """The role of a process of the tree: the Jupyter ``kernel``, ``chromium`` (the browser and its renderer, GPU,
    utility and zygote helpers), ``playwright`` (its Node.js driver), the ``runner`` (the sampling process itself)
    or ``other``."""
    import psutil

    with contextlib.suppress(psutil.Error):
        if proc.pid == os.getpid():
            return "runner"
        cmd = " ".join(proc.cmdline())
        if "ipykernel" in cmd:
            return "kernel"
        if "playwright" in cmd and "node" in proc.name():
            return "playwright"
        if "chrom" in proc.name().lower() or "chrom" in cmd.split(" ", 1)[0].lower():
            return "chromium"
    return "other"


def _smaps_rollup(pid: int) -> tuple[int, int, int]:
    """(RSS, PSS, USS) of a process in bytes, read together from ``/proc/PID/smaps_rollup`` (USS: its private pages,
    clean and dirty); zeros where the file cannot be read."""
    rss = pss = uss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Rss:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith(b"Pss:"):
                    pss = int(line.split()[1]) * 1024
                elif line.startswith((b"Private_Clean:", b"Private_Dirty:")):
                    uss += int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss, pss, uss


class Sampler:
    """Peak memory of this process and its children, overall and per named stage (psutil, every 20 ms), in MiB.

    Two sums over the process tree, both kept:

    * ``peak`` / ``peaks``: the sum of each process's **RSS** (resident set). A page that several processes map
      (shared libraries, Chromium's shared memory between its browser, GPU and renderer processes, the pages its
      renderers share with the zygote they were forked from) counts once in each of them, so the sum overstates the
      memory the tree takes from the machine, most where many processes share much (Chromium).
    * ``pss_peak`` / ``pss_peaks`` (Linux): the sum of each process's **PSS** (proportional set size: a shared page
      counts 1/n in each of the n processes mapping it), i.e. what the tree really holds; pages shared with
      processes outside the tree count only in part. ``/proc/PID/smaps_rollup`` walks a process's page tables
      (about 50 ms of CPU for a 1.4 GB kernel, 0.2 s of wall time on a loaded machine), too slow for every sample:
      it is read every ``pss_every`` seconds (a sweep), and each sample counts a process as its RSS now less its
      shared excess (RSS - PSS) at the last sweep. What grows within a second is private memory (a kernel's or the
      runner's tables), which this counts exactly. A process is also read when first seen (e.g. each of Chromium's,
      whose shared pages are most of their RSS). USS likewise: RSS now less its shared pages (RSS - USS) at the last
      sweep.

    ``roles``: per role (:func:`role_of`), the peak of its RSS, PSS and USS (unique set size: pages it alone
    maps, what stopping it would free); ``stage_roles``: the same per stage; ``at_peak``: the
    stage and the roles' (RSS, PSS) at the moment of each sum's peak; ``stage_at_peak``: the roles' (RSS, PSS) at
    each stage's PSS peak. ``own_cpu``: the CPU seconds of the sampling itself
    (this process's, left out of the benchmark's CPU figures).
    """

    def __init__(self, interval: float = 0.02, pss_every: float = 1.0):
        import psutil

        self.proc = psutil.Process()
        self.interval, self.pss_every = interval, pss_every
        self.stage: str | None = None
        self.peaks: dict[str, float] = {}
        self.peak = 0.0
        self.pss_peaks: dict[str, float] = {}
        self.pss_peak = 0.0
        self.roles: dict[str, dict[str, float]] = {}
        self.stage_roles: dict[str | None, dict[str, dict[str, float]]] = {}
        self.at_peak: dict[str, dict] = {}
        self.stage_at_peak: dict[str, dict] = {}
        self.own_cpu = 0.0
        self._roles: dict[tuple, str] = {}
        # process -> (RSS - PSS, RSS - USS) at its last sweep, MiB
        self._swept: dict[tuple, tuple[float, float]] = {}
        self._last_sweep = -float("inf")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tree(self, sweep: bool = False) -> list[tuple[str, float, float, float]]:
        """(role, RSS, PSS, USS in MiB) of each process of the tree; ``sweep``: read every PSS and USS now."""
        out = []
        for p in [self.proc, *self.proc.children(recursive=True)]:
            with contextlib.suppress(Exception):  # a child may exit while we look
                key = (p.pid, p.create_time())
                if self._roles.get(key, "other") == "other":  # looked at again: a child just forked may not
                    self._roles[key] = role_of(p)  # have run its program yet
                rss = p.memory_info().rss / 2**20
                if sweep or key not in self._swept:  # a new process at once (it is small then)
                    at, pss, uss = _smaps_rollup(p.pid)  # one snapshot: the process may grow meanwhile
                    if pss:
                        self._swept[key] = ((at - pss) / 2**20, (at - uss) / 2**20)
                excess, shared = self._swept.get(key, (0.0, 0.0))
                out.append((self._roles[key], rss, rss - excess, rss - shared))
        return out

    def rss(self) -> float:
        """The tree's summed RSS now, MiB."""
        return sum(r for _, r, _, _ in self._tree())

    def _run(self) -> None:
        t0 = time.thread_time()
        while not self._stop.is_set():
            self.sample()
            time.sleep(self.interval)
        self.own_cpu += time.thread_time() - t0

    def sample(self) -> None:
        with self._lock:  # the sampling thread and the stages' calls
            now = time.monotonic()
            sweep = now - self._last_sweep >= self.pss_every
            if sweep:
                self._last_sweep = now
            t = time.thread_time()
            tree = self._tree(sweep)
            if threading.current_thread() is not self._thread:
                self.own_cpu += time.thread_time() - t
            self._record(tree)

    def _record(self, tree) -> None:
        by_role: dict[str, list[float]] = {}
        for role, rss, pss, uss in tree:
            got = by_role.setdefault(role, [0.0, 0.0, 0.0])
            got[0], got[1], got[2] = got[0] + rss, got[1] + pss, got[2] + uss
        rss, pss = sum(v[0] for v in by_role.values()), sum(v[1] for v in by_role.values())
        for role, (r, p, u) in by_role.items():
            for table in (self.roles, self.stage_roles.setdefault(self.stage, {})):
                peak = table.setdefault(role, {"rss": 0.0, "pss": 0.0, "uss": 0.0})
                peak["rss"], peak["pss"], peak["uss"] = (
                    max(peak["rss"], r),
                    max(peak["pss"], p),
                    max(peak["uss"], u),
                )
        shown = {role: (round(v[0]), round(v[1])) for role, v in sorted(by_role.items())}
        if rss > self.peak:
            self.peak, self.at_peak["rss"] = rss, {"stage": self.stage, "roles": shown}
        if pss > self.pss_peak:
            self.pss_peak, self.at_peak["pss"] = pss, {"stage": self.stage, "roles": shown}
        if self.stage is not None:
            self.peaks[self.stage] = max(self.peaks.get(self.stage, 0.0), rss)
            if pss > self.pss_peaks.get(self.stage, 0.0):
                self.pss_peaks[self.stage], self.stage_at_peak[self.stage] = pss, shown

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def wrap_outermost(targets: dict, before, after) -> None:
    """Wrap each function of ``targets`` (``{(module under opportunity_research, function): label}``) and every
    name bound to it (also by ``from .module import fn``), so that each of its outermost calls (not those made
    inside another wrapped call) runs ``state = before(label)`` first and ``after(label, state)`` after."""
    import functools
    import importlib

    depth = [0]
    for mod_name in ("study.analysis", "disclosure.district", "batch.runner", "batch.runner_task"):
        importlib.import_module(f"opportunity_research.{mod_name}")
    for (mod_name, fn_name), label in targets.items():
        try:
            mod = importlib.import_module(f"opportunity_research.{mod_name}")
        except ImportError:
            continue
        fn = getattr(mod, fn_name, None)
        if fn is None:
            continue

        def wrapped(*a, __fn=fn, __label=label, **k):
            if depth[0]:
                return __fn(*a, **k)
            depth[0] += 1
            state = before(__label)
            try:
                return __fn(*a, **k)
            finally:
                after(__label, state)
                depth[0] -= 1

        new = functools.wraps(fn)(wrapped)
        for other in [m for name, m in sys.modules.items() if name.startswith("opportunity_research")]:
            for attr, value in list(vars(other).items()):
                if value is fn:
                    setattr(other, attr, new)


def _instrument(stages: dict, sampler: Sampler, seconds: dict) -> None:
    """Wrap each named function so its (outermost) calls add to its stage's seconds and set the sampler stage."""

    def before(stage):
        sampler.sample()  # the stage that ends here (e.g. "other") gets its reading too
        prev, sampler.stage = sampler.stage, stage
        sampler.sample()
        return prev, time.perf_counter()

    def after(stage, state):
        prev, t = state
        seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - t
        sampler.sample()
        sampler.stage = prev

    wrap_outermost(stages, before, after)


def _disclosure_stages() -> dict:
    """The disclosure audit's public functions, when the package has the module (issue 9)."""
    try:
        import opportunity_research.disclosure.joint as disc
    except ImportError:
        return {}
    return {
        ("disclosure.joint", name): "disclosure"
        for name in getattr(disc, "__all__", [])
        if callable(getattr(disc, name))
    }


# ----------------------------------------------------------------------------------------------------------
# stages, each in a fresh process
# ----------------------------------------------------------------------------------------------------------
def _synth(root: str, students: int, queue) -> None:
    from opportunity_research.synth.districts import synthesize_district

    with Sampler() as s:
        t = time.perf_counter()
        synthesize_district(Path(root) / "data" / "raw", students=students, seed=1)
        secs = time.perf_counter() - t
    queue.put({"seconds": secs, "peak_mb": s.peak})


def _analysis(root: str, district: str, queue) -> None:
    from opportunity_research.disclosure.district import analyze_district
    from opportunity_research.intake.dataset import process_district

    process_district(
        Path(root) / "data" / "raw" / district, processed_root=Path(root) / "data" / "processed", key=KEY
    )
    seconds: dict[str, float] = {}
    with Sampler() as s:
        _instrument({**ANALYSIS_STAGES, **_disclosure_stages()}, s, seconds)
        s.stage = "other"
        t, c = time.perf_counter(), _cpu()
        analyze_district(district, processed_dir=str(Path(root) / "data" / "processed"))
        total, cpu = time.perf_counter() - t, _cpu() - c
    seconds["other"] = total - sum(v for k, v in seconds.items() if k != "other")
    queue.put({"seconds": seconds, "peaks": s.peaks, "total": total, "cpu": cpu, "peak_mb": s.peak})


def _end_to_end(root: str, district: str, queue) -> None:
    from opportunity_research.batch.runner import run_batch

    notebook = PROJECT / "notebooks" / "district_report.ipynb"
    seconds: dict[str, float] = {}
    with Sampler() as s, TreeCPU() as sampled:
        _instrument(RUNNER_STAGES, s, seconds)
        t, c = time.perf_counter(), _cpu()
        res = run_batch(
            [district],
            notebook=notebook,
            cross_notebook=None,
            root=Path(root),
            jobs=1,
            key=KEY,
            reports_dir=Path(root) / "reports",
        )
        total, cpu = time.perf_counter() - t, _cpu() - c
    # the sampling threads' own CPU time left out (TreeCPU leaves its own out of its figure)
    cpu -= s.own_cpu + sampled.own
    status = [(r.district_id, r.status, r.reason) for r in res.districts]
    queue.put(
        {
            "seconds": seconds,
            "peaks": s.peaks,
            "total": total,
            "cpu": cpu,
            "sampler_cpu": s.own_cpu,
            "peak_mb": s.peak,
            "pss_peaks": s.pss_peaks,
            "pss_peak_mb": s.pss_peak,
            "roles": s.roles,
            "stage_roles": {str(k): v for k, v in s.stage_roles.items()},
            "at_peak": s.at_peak,
            "stage_at_peak": s.stage_at_peak,
            "cpu_sampled": sampled.cpu - s.own_cpu,
            "status": status,
            "steps": {r.district_id: r.stages for r in res.districts},
        }
    )


def _cpu() -> float:
    """CPU seconds of this process and of its children that have ended (notebook kernels, browsers)."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _in_process(target, *args) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q))
    p.start()
    out = q.get()
    p.join()
    return out


# ----------------------------------------------------------------------------------------------------------
# demo report vs floor
# ----------------------------------------------------------------------------------------------------------
def _tree_cpu() -> float:
    """CPU seconds (user + system) of this process and of its children that have exited (the notebook kernel,
    Chromium and its helpers, once the batch has closed them)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class TreeCPU:
    """CPU seconds of this process and every descendant, sampled with psutil every ``interval`` s: a process that
    exits before the batch ends still counts (its last sample). ``os.times()``' children figures miss Chromium's
    processes (the renderer a closed tab ends, the browser's own helpers: they are not reaped up the chain to this
    process); this counts them, less at most ``interval`` s of each process that exits. The sampling thread's own
    CPU time is left out."""

    def __init__(self, interval: float = 0.05):
        import psutil

        self.proc, self.interval = psutil.Process(), interval
        self.seen: dict = {}
        self.own = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = time.thread_time()
        while not self._stop.is_set():
            for p in self.proc.children(recursive=True):
                with contextlib.suppress(Exception):  # a child may exit while we look
                    t = p.cpu_times()
                    self.seen[(p.pid, p.create_time())] = t.user + t.system
            time.sleep(self.interval)
        self.own = time.thread_time() - t0

    def __enter__(self):
        t = self.proc.cpu_times()
        self.start = t.user + t.system
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        t = self.proc.cpu_times()
        self.cpu = t.user + t.system - self.start - self.own + sum(self.seen.values())


def demo_vs_floor() -> dict:
    sys.path.insert(0, str(PROJECT / "benchmarks"))
    from bench_batch import floor_once

    from opportunity_research.batch.runner import run_batch
    from opportunity_research.synth.districts import synthesize

    root = Path(tempfile.mkdtemp(prefix="bench-demo-"))
    try:
        synthesize(root / "data" / "raw")
        districts = sorted(p.name for p in (root / "data" / "raw").iterdir() if p.is_dir())
        floors = [floor_once(root) for _ in range(3)]
        cpu0, t0 = _tree_cpu(), time.perf_counter()
        with TreeCPU() as sampled:
            res = run_batch(
                districts,
                notebook=PROJECT / "notebooks" / "district_report.ipynb",
                cross_notebook=None,
                root=root,
                jobs=1,
                key=KEY,
                reports_dir=root / "reports",
            )
        cpu, wall = _tree_cpu() - cpu0, time.perf_counter() - t0
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "cpu_seconds": cpu,
        "cpu_sampled": sampled.cpu,
        "wall_seconds": wall,
        "load": os.getloadavg(),
        "floor": statistics.median(floors),
        "floors": floors,
        "districts": {r.district_id: (r.status, r.seconds) for r in res.districts},
        "stages": {r.district_id: r.stages for r in res.districts},
    }


def _print_demo_stages(stages: dict) -> None:
    """Each step's mean wall and CPU seconds over the demo districts (:attr:`DistrictResult.stages`: the CPU of the
    runner's process tree while the step ran)."""
    names = list(dict.fromkeys(s for per in stages.values() for s in per))
    print("  per step, mean of the districts (wall s, CPU s of the process tree meanwhile):")
    for s in names:
        walls = [per[s][0] for per in stages.values() if s in per]
        cpus = [per[s][1] for per in stages.values() if s in per and per[s][1] is not None]
        cpu = f"{statistics.mean(cpus):5.2f}" if cpus else "    -"
        print(f"    {s:<14} {statistics.mean(walls):5.2f} s wall  {cpu} CPU s")


def run_size(
    students: int, *, stages: bool = True, raw: Path | None = None, keep: Path | None = None
) -> dict:
    """The figures of one size. ``raw``: an existing raw district folder (linked in as ``demo_metro``, read only)
    instead of one synthesized here; ``keep``: copy the published reports folder there before cleaning up."""
    root = Path(tempfile.mkdtemp(prefix=f"bench-district-{students}-"))
    try:
        if raw is None:
            out = {"synthesize": _in_process(_synth, str(root), students)}
        else:
            (root / "data" / "raw").mkdir(parents=True)
            (root / "data" / "raw" / "demo_metro").symlink_to(raw.resolve(), target_is_directory=True)
            out = {"synthesize": None}
        if stages:
            out["analysis"] = _in_process(_analysis, str(root), "demo_metro")
            shutil.rmtree(root / "data" / "processed", ignore_errors=True)
        out["end_to_end"] = _in_process(_end_to_end, str(root), "demo_metro")
        if keep is not None:
            shutil.copytree(root / "reports", keep, dirs_exist_ok=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out


def _print_size(n: int, r: dict) -> None:
    syn, ana, e2e = r["synthesize"], r.get("analysis"), r["end_to_end"]
    print(f"\n== {n:,} students")
    if syn is not None:
        print(f"  synthesize (not in end to end)   {syn['seconds']:8.1f} s  peak {syn['peak_mb']:7.0f} MB")
    if ana is not None:
        _print_stages(ana)
    _print_end_to_end(e2e)


def _print_stages(ana: dict) -> None:
    print("  analysis, per stage (fresh process, in-process calls):")
    order = [
        "read",
        "score",
        "access",
        "gaps",
        "models",
        "climate",
        "trajectories",
        "scorecard",
        "equity",
        "disclosure",
        "other",
    ]
    for stage in order + sorted(set(ana["seconds"]) - set(order)):
        if stage in ana["seconds"]:
            print(f"    {stage:<28}{ana['seconds'][stage]:8.2f} s  peak {ana['peaks'].get(stage, 0):7.0f} MB")
    print(
        f"    {'analysis total':<28}{ana['total']:8.2f} s  peak {ana['peak_mb']:7.0f} MB   "
        f"CPU {ana.get('cpu', float('nan')):.1f} s"
    )


def _print_end_to_end(e2e: dict) -> None:
    print(
        "  end to end, raw CSV to published report (run_batch, jobs=1; the process tree: runner + kernel + Chromium;"
        "\n  RSS = summed resident sets (shared pages once per process), PSS = summed proportional sets (real use)):"
    )
    for stage in dict.fromkeys(RUNNER_STAGES.values()):
        if stage in e2e["seconds"]:
            print(
                f"    {stage:<28}{e2e['seconds'][stage]:8.2f} s  peak RSS {e2e['peaks'].get(stage, 0):7.0f} MB"
                f"  PSS {e2e.get('pss_peaks', {}).get(stage, 0):7.0f} MB"
            )
    other = e2e["total"] - sum(e2e["seconds"].values())
    print(f"    {'other (ids, publish)':<28}{other:8.2f} s")
    print(
        f"    {'END TO END':<28}{e2e['total']:8.2f} s  peak RSS {e2e['peak_mb']:7.0f} MB"
        f"  PSS {e2e.get('pss_peak_mb', float('nan')):7.0f} MB   status {e2e['status']}"
    )
    print(
        f"    CPU {e2e.get('cpu', float('nan')):.1f} s (runner + reaped children), "
        f"{e2e.get('cpu_sampled', float('nan')):.1f} s (every process of the tree, sampled); the memory "
        f"sampling's own {e2e.get('sampler_cpu', float('nan')):.1f} s left out of both"
    )
    for district, steps in e2e.get("steps", {}).items():
        # the task's own steps (DistrictResult.stages: wall and CPU of the runner and its children during each)
        shown = ", ".join(
            f"{step} {wall:.2f} s / {'-' if cpu is None else f'{cpu:.1f}'} CPU s"
            for step, (wall, cpu) in steps.items()
        )
        print(f"    steps of {district} (wall / CPU): {shown}")
    for what, at in e2e.get("at_peak", {}).items():
        roles = ", ".join(f"{r} {v[0]}/{v[1]}" for r, v in at["roles"].items())
        print(f"    at the {what.upper()} peak ({at['stage']}), RSS/PSS MB by role: {roles}")
    for stage, roles in e2e.get("stage_at_peak", {}).items():
        shown = ", ".join(f"{r} {v[0]}/{v[1]}" for r, v in roles.items())
        print(f"    at the PSS peak of {stage}, RSS/PSS MB by role: {shown}")
    stages = e2e.get("stage_roles", {})
    if stages:
        print("    peak by role and stage, MB (RSS / PSS / USS; each its own peak):")
        for stage, roles in stages.items():
            shown = "; ".join(
                f"{r} {v['rss']:.0f}/{v['pss']:.0f}/{v['uss']:.0f}" for r, v in sorted(roles.items())
            )
            print(f"      {'(between stages)' if stage == 'None' else stage:<26}{shown}")
    print(f"    load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--students", type=int, nargs="*", default=None, help="sizes (default 10000 100000 1000000)"
    )
    ap.add_argument("--quick", action="store_true", help="10,000 students, no demo comparison")
    ap.add_argument("--no-demo", action="store_true", help="skip the demo report vs floor comparison")
    ap.add_argument("--demo-only", action="store_true", help="only the demo report vs floor comparison")
    ap.add_argument(
        "--no-stages",
        action="store_true",
        help="skip the analysis' per-stage profile (step 2): end to end only, about half the time at 1M",
    )
    ap.add_argument(
        "--raw",
        type=Path,
        default=None,
        help="an existing raw district folder (e.g. /work/big/p1000k/raw/demo_metro) instead of synthesizing "
        "one; with a single --students size (what the folder holds)",
    )
    ap.add_argument("--keep", type=Path, default=None, help="copy the published reports folder here")
    ap.add_argument("--json", default=None, help="also write every figure to this JSON file")
    args = ap.parse_args(argv)
    if args.raw is not None and len(args.students or []) != 1:
        ap.error("--raw needs one --students size: the number of students the folder holds")
    sizes = (
        [] if args.demo_only else args.students or ([10_000] if args.quick else [10_000, 100_000, 1_000_000])
    )
    results = {}
    for n in sizes:
        results[n] = run_size(n, stages=not args.no_stages, raw=args.raw, keep=args.keep)
        _print_size(n, results[n])
    if len(sizes) > 1:
        print("\nscaling (end to end):")
        for a, b in itertools.pairwise(sizes):
            ra, rb = results[a]["end_to_end"], results[b]["end_to_end"]
            analysis = (
                f"; analysis time {results[b]['analysis']['total'] / results[a]['analysis']['total']:.1f}x"
                if "analysis" in results[a]
                else ""
            )
            print(
                f"  {b:,} / {a:,} students ({b / a:.0f}x): time {rb['total'] / ra['total']:.1f}x, "
                f"peak memory {rb['peak_mb'] / ra['peak_mb']:.1f}x{analysis}"
            )
    if 1_000_000 in results:
        e = results[1_000_000]["end_to_end"]
        print(
            f"\ntargets at 1M: end to end {e['total']:.1f} s (<= 120), peak {e['peak_mb'] / 1024:.2f} GB summed RSS, "
            f"{e.get('pss_peak_mb', float('nan')) / 1024:.2f} GB summed PSS (<= 2)"
        )
    if not (args.quick or args.no_demo):
        demo = demo_vs_floor()
        results["demo"] = demo
        secs = [s for st, s in demo["districts"].values()]
        print(
            f"\ndemo reports vs floor (same run): floor {demo['floor']:.2f} s (runs "
            f"{', '.join(f'{x:.2f}' for x in demo['floors'])})"
        )
        for d, (st, s) in demo["districts"].items():
            print(f"  {d:<16} {st:<7} {s:6.2f} s  = {s / demo['floor']:.1f}x floor")
        print(
            f"  mean {statistics.mean(secs):.2f} s = {statistics.mean(secs) / demo['floor']:.1f}x floor, each district "
            "from its start to its publishing (the serial batch runs the next district's notebook while one's "
            "pages are printed)"
        )
        print(
            f"  the batch: {demo['wall_seconds']:.1f} s wall = {demo['wall_seconds'] / len(secs):.2f} s a district "
            f"= {demo['wall_seconds'] / len(secs) / demo['floor']:.1f}x floor (target <= 5x), "
            f"{demo['cpu_seconds']:.1f} CPU s "
            f"(runner, kernel, Chromium) = {demo['cpu_seconds'] / len(secs):.1f} CPU s a district; load average "
            + ", ".join(f"{x:.2f}" for x in demo["load"])
        )
        print(
            f"  every process of the tree, sampled (Chromium's exited renderers too): {demo['cpu_sampled']:.1f} CPU s "
            f"= {demo['cpu_sampled'] / len(secs):.1f} CPU s a district"
        )
        _print_demo_stages(demo["stages"])
    if args.json:
        Path(args.json).write_text(json.dumps({str(k): v for k, v in results.items()}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
