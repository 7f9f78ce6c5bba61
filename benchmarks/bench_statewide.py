"""Benchmark: a synthetic state through the batch, serially and on a LocalCluster, against the machine's ceiling.

In one run, in a fresh temporary project:

1. ``synthesize --districts N`` (:func:`opportunity_research.synth.statewide.synthesize_state`: log-normal district
   sizes, median 900 students by default);
2. **the machine's two-process ceiling**: a fixed CPU-bound piece of work (NumPy and pure Python, no I/O) in one
   process, then the same work in two processes at once, alternated three times; ceiling = 2 x (one process's
   time) / (two processes' time). On an idle 2-core machine it is close to 2; on a shared machine it is what two
   workers can hope for *now*, which is why it is measured in the same run as the batch: before the batches,
   between them and after them;
3. the batch serially (``run_batch(jobs=1)``: one warm kernel and one browser in this process), then on a
   ``LocalCluster`` of ``--jobs`` workers (one warm kernel and one browser each; the largest districts first, one
   task per district, the next handed to a worker when it is free); for each: seconds, districts and students
   per minute, and peak resident memory (serial: this process with its kernel and browser; cluster: each worker
   process with its kernel and browser, sampled every 0.2 s with psutil), and the load average during each;
4. where the cluster's time went: the districts' own seconds summed (serial against cluster: how much slower
   each district ran with two at once) and the share of the workers' time they filled (the rest is the
   cluster's start, the wait for the last district and the cross-district report at the end); CPU seconds of the
   whole process tree per run (a core's time per district and per 1,000 students: the sizing figure that does not
   depend on the load) and the serial seconds per district against district size; and the whole machine's CPU
   time over each run (busy with the batch's tree, busy with other processes, waiting on I/O, idle): whether a
   cluster that is slower than the ceiling left the cores idle or shared them;
5. the speed-up (serial / cluster) and its share of the ceiling (the issue's target: at least 90%), and the bound
   the schedule itself sets: one task per district, so two workers finish no sooner than the longest district
   (serial seconds sum / max(longest, sum / jobs)); a small state whose largest district is a large share of the
   work is capped by it whatever the machine.

``--median-students`` sets the median district size (default 900; ``min_students`` is the smaller of 400 and half
the median). A 200-district state at the default median holds about 330,000 students and its largest district
about 20,000: hours on 2 shared cores. A small median makes the state's districts cheap, so the run measures
mostly the per-district fixed cost (kernel reset, notebook, pages, PDFs, screen, gate) and how it parallelizes.

    .venv/bin/python benchmarks/bench_statewide.py                    # 200 districts (hours on 2 shared cores)
    .venv/bin/python benchmarks/bench_statewide.py --districts 20
    .venv/bin/python benchmarks/bench_statewide.py --quick            # 4 districts, no cross-district report

The figures are wall-clock on whatever else the machine runs: quote the ceiling beside the speed-up.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import tempfile
import threading
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def _cpu_work(n: int = 2_500_000) -> float:
    """A fixed CPU-bound task: NumPy arithmetic and a pure-Python loop (the two kinds of work a report does)."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal(n)
    total = 0.0
    for _ in range(8):
        total += float(np.sort(x)[n // 2] + np.sqrt(np.abs(x)).sum())
    acc = 0
    for i in range(n):
        acc += i % 7
    return total + acc


def _timed_work(_=None) -> float:
    t = time.perf_counter()
    _cpu_work()
    return time.perf_counter() - t


def two_process_ceiling(rounds: int = 3) -> tuple[float, float, float]:
    """(one process's seconds, two processes' seconds, ceiling = 2 * one / two), in fresh processes.

    ``rounds`` alternations of one alone and two at once (summed), so that a change of the machine's load during
    the measurement falls on both sides."""
    ctx = mp.get_context("spawn")
    one = two = 0.0
    # each process in a session of its own, as the batch's kernels are (jupyter_client starts every kernel in a
    # new session): with the kernel's autogroup scheduling (/proc/sys/kernel/sched_autogroup_enabled) a busy
    # machine shares its CPUs between sessions, so two processes of one session get no more than one would
    with ctx.Pool(1, initializer=os.setsid) as solo, ctx.Pool(2, initializer=os.setsid) as pair:
        solo.map(_timed_work, [None])  # the import and first-touch costs, not measured
        pair.map(_timed_work, [None, None])
        for _ in range(rounds):
            t = time.perf_counter()
            solo.map(_timed_work, [None])
            one += time.perf_counter() - t
            t = time.perf_counter()
            pair.map(_timed_work, [None, None], chunksize=1)
            two += time.perf_counter() - t
    return one / rounds, two / rounds, 2 * one / two


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of every child process reaped so far (a batch's kernels,
    browsers and, on a LocalCluster, its worker processes once the cluster has shut down)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class TreePeak:
    """Peak resident memory of process trees, sampled every ``every`` seconds in a thread (and the load average).

    ``roots()`` returns the processes to follow (each with its descendants: a worker and its kernel)."""

    def __init__(self, roots, every: float = 0.2):
        self.roots, self.every = roots, every
        self.peaks: dict[int, int] = {}
        self.loads: list[float] = []  # the 1-minute load average, every ``every`` seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            self.loads.append(os.getloadavg()[0])
            for pid in self.roots():
                try:
                    p = psutil.Process(pid)
                    rss = p.memory_info().rss + sum(c.memory_info().rss for c in p.children(recursive=True))
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                self.peaks[pid] = max(self.peaks.get(pid, 0), rss)
            self._stop.wait(self.every)

    def __enter__(self):
        import psutil

        self._cpu0 = psutil.cpu_times()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        import psutil

        self._stop.set()
        self._thread.join()
        end = psutil.cpu_times()
        self.machine = {k: getattr(end, k) - getattr(self._cpu0, k) for k in end._fields}
        return False

    def machine_text(self, tree_cpu: float) -> str:
        """The whole machine's CPU time over the run (every process, not only the batch's): busy, waiting on
        I/O, idle, each a share of (CPUs x wall), and the batch's own process tree's share."""
        m = self.machine
        total = sum(v for k, v in m.items() if k not in ("guest", "guest_nice"))  # guest is inside user
        idle, iowait = m.get("idle", 0.0), m.get("iowait", 0.0)
        busy = total - idle - iowait
        return (
            f"busy {100 * busy / total:.0f}% (the batch's tree {100 * tree_cpu / total:.0f}%, other processes "
            f"{100 * (busy - tree_cpu) / total:.0f}%), waiting on I/O {100 * iowait / total:.0f}%, "
            f"idle {100 * idle / total:.0f}%"
        )


def _worker_pids(holder: dict) -> list[int]:
    client = holder.get("client")
    if client is None:
        return []
    try:
        return [int(pid) for pid in client.run(os.getpid).values()]
    except Exception:  # noqa: BLE001 - the cluster is starting or closing
        return []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--districts", type=int, default=200, help="districts in the synthetic state (default 200)"
    )
    ap.add_argument("--median-students", type=int, default=900, help="median district size (default 900)")
    ap.add_argument("--jobs", type=int, default=2, help="LocalCluster workers (default 2)")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="4 districts (median 900 students), no cross-district report (for make bench)",
    )
    ap.add_argument("--no-cross", action="store_true", help="skip the cross-district report")
    args = ap.parse_args()
    if args.quick:
        args.districts, args.no_cross = 4, True

    from opportunity_research.batch import runner_engine
    from opportunity_research.batch.runner import BatchSettings, run_batch
    from opportunity_research.synth.statewide import synthesize_state

    root = Path(tempfile.mkdtemp(prefix="bench-statewide-"))
    raw = root / "data" / "raw"
    try:
        t = time.perf_counter()
        synthesize_state(
            raw,
            districts=args.districts,
            median_students=args.median_students,
            min_students=min(400, args.median_students // 2),
        )
        t_synth = time.perf_counter() - t
        state = json.loads((raw / "state.json").read_text())
        districts = [d["district_id"] for d in state["districts"]]
        students = sum(d["n_students"] for d in state["districts"])
        sizes = sorted(d["n_students"] for d in state["districts"])

        load_start = os.getloadavg()[0]
        ceilings = [two_process_ceiling()]  # before, between and after the two batches
        base = BatchSettings(
            notebook=PROJECT / "notebooks" / "district_report.ipynb",
            root=root,
            cross_notebook=None if args.no_cross else PROJECT / "notebooks" / "cross_district.ipynb",
            key="bench-key-012345",
        )

        me = os.getpid()
        with TreePeak(lambda: [me]) as serial_peak:
            t, cpu = time.perf_counter(), cpu_seconds()
            serial = run_batch(districts, base, jobs=1, reports_dir=root / "reports_serial")
            t_serial, cpu_serial = time.perf_counter() - t, cpu_seconds() - cpu
        ceilings.append(two_process_ceiling())

        # the cluster's worker pids, found through the engine's client while it runs
        holder: dict = {}
        enter = runner_engine.Engine.__enter__

        def spy(self):
            out = enter(self)
            holder["client"] = self.client
            return out

        runner_engine.Engine.__enter__ = spy
        pids: list[int] = []
        try:

            def roots():
                if not pids:
                    pids.extend(_worker_pids(holder))
                return pids

            with TreePeak(roots) as cluster_peak:
                t, cpu = time.perf_counter(), cpu_seconds()
                cluster = run_batch(districts, base, jobs=args.jobs, reports_dir=root / "reports_cluster")
                t_cluster, cpu_cluster = time.perf_counter() - t, cpu_seconds() - cpu
        finally:
            runner_engine.Engine.__enter__ = enter
        # the ceiling again after the batch: the machine's load may have changed while it ran
        ceilings.append(two_process_ceiling())
    finally:
        shutil.rmtree(root, ignore_errors=True)

    n = len(districts)
    ok_s = sum(r.status == "ok" for r in serial.districts)
    ok_c = sum(r.status == "ok" for r in cluster.districts)
    gib = 1024**3

    def mean(xs) -> float:
        return sum(xs) / len(xs) if xs else float("nan")

    print(
        f"synthetic state: {n} districts, {students:,} students (median {sizes[n // 2]:,}, largest {sizes[-1]:,});"
        f" synthesized in {t_synth:.1f} s; {os.cpu_count()} CPUs"
    )
    print(
        f"load average (1 min): {load_start:.1f} at the start, mean {mean(serial_peak.loads):.1f} during the serial"
        f" run, {mean(cluster_peak.loads):.1f} during the cluster run, {os.getloadavg()[0]:.1f} at the end"
    )
    for when, (one, two, c) in zip(
        ("before the batches", "between them", "after them"), ceilings, strict=True
    ):
        print(
            f"two-process ceiling {when + ':':<19} one process {one:.2f} s, two at once {two:.2f} s -> {c:.2f}x"
        )
    print(f"{'run':<26}{'seconds':>9}{'ok':>6}{'districts/min':>15}{'students/min':>14}  peak memory")
    print(
        f"{'serial (jobs 1)':<26}{t_serial:>9.1f}{ok_s:>6}{60 * n / t_serial:>15.2f}{60 * students / t_serial:>14,.0f}"
        f"  {max(serial_peak.peaks.values(), default=0) / gib:.2f} GiB (runner + kernel + browser)"
    )
    per_worker = ", ".join(f"{v / gib:.2f}" for v in cluster_peak.peaks.values()) or "not sampled"
    print(
        f"{f'LocalCluster ({args.jobs} workers)':<26}{t_cluster:>9.1f}{ok_c:>6}{60 * n / t_cluster:>15.2f}"
        f"{60 * students / t_cluster:>14,.0f}  {per_worker} GiB per worker (worker + kernel + browser)"
    )
    # where the cluster's time went: the districts' own seconds (slower per task when two share the CPUs), and
    # how much of the workers' time they filled (the rest: cluster start, the wait for the last district, the
    # cross-district report at the end)
    sum_s = sum(r.seconds for r in serial.districts)
    sum_c = sum(r.seconds for r in cluster.districts)
    cross_s = serial.cross.seconds if serial.cross is not None else 0.0
    cross_c = cluster.cross.seconds if cluster.cross is not None else 0.0
    largest = max(cluster.districts, key=lambda r: r.seconds)
    print(
        f"districts' own seconds: serial {sum_s:.1f} (+ cross-district {cross_s:.1f}), cluster {sum_c:.1f} "
        f"(+ {cross_c:.1f}): each district {sum_c / sum_s:.2f}x as long on the cluster; the workers were busy "
        f"with districts {100 * sum_c / (args.jobs * t_cluster):.0f}% of the cluster's wall time (longest district "
        f"{largest.seconds:.1f} s)"
    )
    # which steps slow down beside another district: each step's wall and CPU seconds (the worker's process tree:
    # runner, kernel, browser), summed over the districts, serial against cluster
    steps = list(dict.fromkeys(k for r in [*serial.districts, *cluster.districts] for k in r.stages))
    if steps:
        print("per step, summed over the districts (serial -> cluster): wall s, CPU s of the worker's tree")
        for k in steps:
            ws, cs = (
                sum(r.stages[k][0] for r in res.districts if k in r.stages) for res in (serial, cluster)
            )
            us, uc = (
                sum(r.stages[k][1] or 0.0 for r in res.districts if k in r.stages)
                for res in (serial, cluster)
            )
            print(
                f"  {k:<14} wall {ws:7.1f} -> {cs:7.1f} ({cs / ws if ws else float('nan'):.2f}x)   CPU {us:7.1f} "
                f"-> {uc:7.1f} ({uc / us if us else float('nan'):.2f}x); CPU/wall {us / ws if ws else 0:.2f} -> "
                f"{uc / cs if cs else 0:.2f}"
            )
    # sizing figures that do not depend on the load: CPU seconds (a core's time) per district and per student,
    # and the per-district wall seconds of the serial run against district size (least squares)
    import numpy as np

    size = {d["district_id"]: d["n_students"] for d in state["districts"]}
    xs = np.array([size[r.district_id] / 1000 for r in serial.districts])
    ys = np.array([r.seconds for r in serial.districts])
    slope, fixed = np.polyfit(xs, ys, 1) if len(xs) > 1 else (float("nan"), float("nan"))
    print(
        f"CPU seconds (whole process tree): serial {cpu_serial:.0f} = {cpu_serial / n:.1f} a district, "
        f"{1000 * cpu_serial / students:.1f} per 1,000 students; cluster {cpu_cluster:.0f} "
        f"({cpu_cluster / cpu_serial:.2f}x serial: the workers' own start, imports and kernels)"
    )
    print(
        f"serial wall seconds per district ~ {fixed:.1f} + {slope:.1f} per 1,000 students (least squares over "
        f"{n} districts of {sizes[0]:,} to {sizes[-1]:,} students; wall time, so inflated by the load)"
    )
    print(f"the machine's CPUs during the serial run: {serial_peak.machine_text(cpu_serial)}")
    print(f"the machine's CPUs during the cluster run: {cluster_peak.machine_text(cpu_cluster)}")
    speedup = t_serial / t_cluster
    c_mean = mean([c for _, _, c in ceilings])
    shares = ", ".join(f"{100 * speedup / c:.0f}%" for _, _, c in ceilings)
    print(
        f"speed-up serial / cluster: {speedup:.2f}x = {100 * speedup / c_mean:.0f}% of the mean ceiling "
        f"{c_mean:.2f}x (of each: {shares}); target >= 90%"
    )
    # the schedule's own bound: a district is one task, so the workers cannot finish before its longest district
    # does; with each district's serial seconds, the best ``jobs`` workers could do (no slowdown side by side, no
    # start-up) is max(longest, sum / jobs). A small state of log-normal sizes is bounded by its largest district
    # whatever the machine; the ceiling bounds the rest.
    longest_s = max(r.seconds for r in serial.districts)
    bound = sum_s / max(longest_s, sum_s / args.jobs)
    print(
        f"the schedule allows at most {bound:.2f}x (longest district {longest_s:.1f} s of {sum_s:.1f} s serially); "
        f"the speed-up is {100 * speedup / min(bound, c_mean):.0f}% of the lower of that and the mean ceiling"
    )
    failed = [r for r in [*serial.districts, *cluster.districts] if r.status != "ok"]
    for r in failed[:5]:
        print(f"  failed: {r.district_id}: {r.reason[:160]}")


if __name__ == "__main__":
    main()
