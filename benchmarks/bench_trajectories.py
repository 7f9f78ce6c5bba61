"""Benchmark: the district analysis' trajectory tables, call by call, as ``unprotected_analysis`` makes them.

The "trajectories" stage of ``bench_district.py`` on its own: the spring panel (``trajectories.yearly_panel``,
built once), catch-up rates, growth in grade levels (endpoints, up to the year before the analysis year), level
movement and the scorecard's trajectory indicators, on one processed district (its assessments and students as
the analysis reads them, small race/ethnicity groups pooled). For each call: wall seconds, CPU seconds (this
process) and rows; then the total, the peak resident memory during the calls (psutil, every 20 ms) above the
loaded tables, and the load average.

    .venv/bin/python benchmarks/bench_trajectories.py --students 100000         # synthesize + process, then time
    .venv/bin/python benchmarks/bench_trajectories.py --processed DIR --district demo_metro   # an existing one
    .venv/bin/python benchmarks/bench_trajectories.py --students 20000 --repeat 3

``--save FILE`` pickles the tables (with their ``attrs``) for comparing two versions of the code.
"""

from __future__ import annotations

import argparse
import os
import pickle
import resource
import shutil
import tempfile
import time
from pathlib import Path

import psutil
from bench_district import Sampler

KEY = "bench-key-012345"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def calls(d) -> dict:
    """The trajectory calls of ``unprotected_analysis`` on district ``d``, in its order, by name."""
    from opportunity_research.study import measures, trajectories

    end = measures.analysis_year(d) - 1
    got = {}

    def panel():
        got["panel"] = trajectories.yearly_panel(d.assessments, students=d.students)
        return got["panel"]

    return {
        "yearly_panel": panel,
        "catch_up_rates": lambda: trajectories.catch_up_rates(got["panel"], students=d.students),
        "grade_level_growth": lambda: trajectories.grade_level_growth(
            got["panel"], students=d.students, method="endpoints", end_year=end
        ),
        "level_movement": lambda: trajectories.level_movement(got["panel"], students=d.students),
        "trajectory_indicators": lambda: trajectories.trajectory_indicators(
            got["panel"], students=d.students
        ),
    }


def run(processed: Path, district: str, repeat: int = 1, save: str | None = None) -> dict:
    from opportunity_research.intake.dataset import load_district
    from opportunity_research.study.analysis import pool_small_groups

    d = load_district(
        district,
        processed_root=processed,
        columns={"assessments": None, "students": None, "classrooms": ["school_year"]},
    )
    d, _ = pool_small_groups(d)
    base = psutil.Process().memory_info().rss
    print(
        f"{district}: {len(d.students):,} students, {len(d.assessments):,} assessment rows "
        f"(tables as read: {base / 2**30:.2f} GB resident)"
    )
    best: dict[str, tuple[float, float, int]] = {}
    out = {}
    for _ in range(repeat):
        with Sampler() as pk:  # bench_district's sampler: MiB, this process and its children
            for name, f in calls(d).items():
                w, c = time.perf_counter(), _cpu()
                res = f()
                w, c = time.perf_counter() - w, _cpu() - c
                rows = len(res.frame) if name == "yearly_panel" else len(res)
                if name not in best or w < best[name][0]:
                    best[name] = (w, c, rows)
                if name != "yearly_panel":
                    out[name] = res
            del res
    for name, (w, c, rows) in best.items():
        print(f"  {name:<24}{w:8.2f} s wall {c:8.2f} CPU-s  {rows:>10,} rows")
    wall, cpu = sum(v[0] for v in best.values()), sum(v[1] for v in best.values())
    print(
        f"  {'total':<24}{wall:8.2f} s wall {cpu:8.2f} CPU-s  peak {pk.peak / 1024:.2f} GB resident "
        f"(+{(pk.peak - base / 2**20) / 1024:.2f} GB over the tables); load average "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    if save:
        with open(save, "wb") as fh:
            pickle.dump({k: (v, dict(v.attrs)) for k, v in out.items()}, fh, protocol=5)
    return {"seconds": best, "peak_gb": pk.peak / 1024, "over_tables_gb": (pk.peak - base / 2**20) / 1024}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--students", type=int, default=20_000, help="synthesize one district of this size")
    ap.add_argument("--processed", default=None, help="an existing processed root (no synthesis)")
    ap.add_argument("--district", default="demo_metro")
    ap.add_argument("--repeat", type=int, default=1, help="best of this many runs")
    ap.add_argument("--save", default=None, help="pickle the tables to this file")
    args = ap.parse_args(argv)
    if args.processed:
        run(Path(args.processed), args.district, args.repeat, args.save)
        return 0
    from opportunity_research.intake.dataset import process_district
    from opportunity_research.synth.districts import synthesize_district

    root = Path(tempfile.mkdtemp(prefix="bench-trajectories-"))
    try:
        synthesize_district(root / "raw", students=args.students, seed=1)
        process_district(root / "raw" / args.district, processed_root=root / "processed", key=KEY)
        run(root / "processed", args.district, args.repeat, args.save)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
