"""Benchmark: the district analysis (``unprotected_analysis``) call by call, time and memory, on a processed district.

For each call of the analysis (read, scoring, access, gaps, models, climate, trajectories, level gaps, indicators,
equity tables; and with ``--protect`` the joint disclosure pass): wall seconds, CPU seconds, the resident memory
when it ends and the peak during it (psutil, every 20 ms; the outermost call of each function counts). Then the
total, the peak, what the returned analysis holds (``memory_usage(deep=True)`` of its tables and of the district's
tables it keeps) and the load average.

    .venv/bin/python benchmarks/bench_analysis.py --processed data/processed --district demo_lakeside
    .venv/bin/python benchmarks/bench_analysis.py --processed DIR --compare unprotected.pkl   # identical tables?
    .venv/bin/python benchmarks/bench_analysis.py --processed DIR --save out.pkl --protect

``--compare FILE`` checks every table of the analysis (and the indicators) for exact equality (values, dtypes,
index, ``attrs``) with a pickled ``(analysis, indicators)`` of ``unprotected_analysis`` (same ``--n-boot``);
``--save FILE`` writes that pickle.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pickle
import resource
import time
from pathlib import Path

import psutil
from bench_district import Sampler, wrap_outermost

#: The calls timed, (module, function), in the order the analysis makes them.
CALLS = [
    ("intake.dataset", "load_district"),
    ("study.analysis", "pool_small_groups"),
    ("study.measures", "score_evidence"),
    ("study.measures", "classroom_access"),
    ("study.measures", "student_access"),
    ("study.equity", "resource_gaps"),
    ("study.measures", "growth_frame"),
    ("study.growth", "fit_study_models"),
    ("study.climate", "climate_summary"),
    ("study.climate", "climate_reliability"),
    ("study.panels", "yearly_panel"),
    ("study.trajectories", "catch_up_rates"),
    ("study.trajectories", "grade_level_growth"),
    ("study.trajectories", "level_movement"),
    ("study.trajectories", "movement_and_growth"),
    ("study.trajectories", "trajectory_indicators"),
    ("study.levelgaps", "level_counts_from_assessments"),
    ("study.levelgaps", "score_gaps"),
    ("study.levelgaps", "level_gaps"),
    ("study.equity", "opportunity_indicators"),
    ("study.climate", "climate_indicators"),
    ("study.indicators", "needs_of"),
    ("study.measures", "resource_rates"),
    ("study.measures", "demands_vs_standards"),
    ("study.equity", "classroom_composition"),
    ("study.equity", "furthest_from_opportunity"),
    ("study.equity", "multiple_measures_gaps"),
    ("disclosure.joint", "protect_district"),
]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def instrument(sampler: Sampler, record: dict) -> None:
    """Wrap each function of :data:`CALLS` (every name bound to it) so its outermost calls add to ``record``."""

    def before(name):
        sampler.sample()
        prev, sampler.stage = sampler.stage, name
        sampler.peaks[name] = 0.0
        sampler.sample()
        return prev, time.perf_counter(), _cpu()

    def after(name, state):
        prev, w, c = state
        w, c = time.perf_counter() - w, _cpu() - c
        sampler.sample()
        got = record.setdefault(name, [0.0, 0.0, 0.0, 0.0, 0])
        got[0] += w
        got[1] += c
        got[2] = max(got[2], sampler.peaks.get(name, 0.0))
        got[3] = sampler.rss()
        got[4] += 1
        sampler.stage = prev

    wrap_outermost({call: call[1] for call in CALLS}, before, after)


def held(a, indicators) -> list[tuple[str, float]]:
    """MB held by each table of the analysis and each table of its district (deep)."""
    import pandas as pd

    out = []
    for f in dataclasses.fields(a):
        v = getattr(a, f.name)
        if isinstance(v, pd.DataFrame):
            out.append((f.name, v.memory_usage(deep=True).sum() / 2**20))
    for name, t in a.district.tables.items():
        out.append((f"district.{name}", t.memory_usage(deep=True).sum() / 2**20))
    out.append(("indicators", indicators.memory_usage(deep=True).sum() / 2**20))
    return out


def compare(a, ind, b, ind_b) -> list[str]:
    """Differences between two ``(analysis, indicators)`` (empty: identical; the district's tables not compared)."""
    import numpy as np
    import pandas as pd

    bad = []

    def same(x, y, where):
        if isinstance(x, pd.DataFrame) or isinstance(y, pd.DataFrame):
            try:
                pd.testing.assert_frame_equal(x, y, check_exact=True)
            except AssertionError as e:
                bad.append(f"{where}: {str(e).splitlines()[0:3]}")
                return
            if repr(x.attrs) != repr(y.attrs):
                bad.append(f"{where}: attrs differ")
        elif dataclasses.is_dataclass(x) and not isinstance(x, type):
            for f in dataclasses.fields(x):
                same(getattr(x, f.name), getattr(y, f.name), f"{where}.{f.name}")
        elif isinstance(x, float) and isinstance(y, float) and np.isnan(x) and np.isnan(y):
            return
        elif x != y:
            bad.append(f"{where}: {x!r:.80} != {y!r:.80}")

    for f in dataclasses.fields(a):
        if f.name == "district":
            da, db = a.district, b.district
            if da.district_id != db.district_id or da.manifest != db.manifest:
                bad.append("district: id or manifest differ")
            continue
        same(getattr(a, f.name), getattr(b, f.name), f.name)
    same(ind, ind_b, "indicators")
    return bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--processed", required=True, help="a processed root")
    ap.add_argument("--district", default="demo_metro")
    ap.add_argument("--n-boot", type=int, default=20, help="bootstrap replicates of the gap intervals")
    ap.add_argument(
        "--protect", action="store_true", help="also the joint disclosure pass (protect_district)"
    )
    ap.add_argument("--save", default=None, help="pickle (analysis, indicators) to this file")
    ap.add_argument("--compare", default=None, help="compare with this pickled (analysis, indicators)")
    args = ap.parse_args(argv)

    from opportunity_research.study.analysis import unprotected_analysis

    base = psutil.Process().memory_info().rss / 2**20
    record: dict = {}
    with Sampler() as s:
        instrument(s, record)
        from opportunity_research.study import analysis

        w, c = time.perf_counter(), _cpu()
        a, ind = analysis.unprotected_analysis(
            args.district, processed_dir=args.processed, n_boot=args.n_boot
        )
        w1, c1 = time.perf_counter() - w, _cpu() - c
        if args.protect:
            from opportunity_research.disclosure import joint

            joint.protect_district(a, indicators=ind)
        w, c = time.perf_counter() - w, _cpu() - c
        end = s.rss()
    del unprotected_analysis
    print(f"{args.district} in {args.processed}: before the analysis {base:.0f} MB resident")
    print(f"  {'call':<32}{'wall s':>8}{'CPU s':>8}{'peak MB':>9}{'end MB':>9}{'calls':>6}")
    for name, (cw, cc, pk, e, k) in record.items():
        print(f"  {name:<32}{cw:8.2f}{cc:8.2f}{pk:9.0f}{e:9.0f}{k:6d}")
    timed = sum(v[0] for k, v in record.items() if k != "protect_district")
    print(f"  {'other (untimed) in the analysis':<32}{w1 - timed:8.2f}")
    print(
        f"  analysis {w1:.1f} s wall, {c1:.1f} CPU-s"
        + (f"; with the protection pass {w:.1f} s wall, {c:.1f} CPU-s" if args.protect else "")
        + f"; peak {s.peak:.0f} MB, at the end {end:.0f} MB; load average "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    tables = held(a, ind)
    print(
        f"  held by the analysis: {sum(mb for _, mb in tables):.0f} MB ("
        + ", ".join(f"{n} {mb:.0f}" for n, mb in sorted(tables, key=lambda t: -t[1]) if mb >= 1)
        + ")"
    )
    if args.save:
        with open(args.save, "wb") as fh:
            pickle.dump((a, ind), fh, protocol=5)
    if args.compare:
        with open(args.compare, "rb") as fh:
            b, ind_b = pickle.load(fh)
        bad = compare(a, ind, b, ind_b)
        print(
            f"  compared with {Path(args.compare).name}: "
            + ("IDENTICAL (every table, exact)" if not bad else f"{len(bad)} DIFFERENCES")
        )
        for line in bad[:40]:
            print("    " + line)
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
