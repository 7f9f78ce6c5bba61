"""Benchmark: the disclosure pass (joint suppression + audit): information loss and time.

Two measurements:

1. **Every demo district** (``data/processed``, ``make process``): the district analysis runs once
   (``analysis.unprotected_analysis`` inside ``disclosure.district.analyze_district``), then the joint pass
   (``disclosure.protect_tables``) is timed on the district's whole published set, once per setting of
   :data:`SETTINGS` (rule 2's ``close_counts``). Printed per district and setting:
   published cells, small cells (rows hidden by the primary rule), complements (rows hidden beyond them),
   secondary per primary (the information loss), gap rows hidden, hidden counts audited, seconds.
2. **A large synthetic district** (``--students``, default 1,000,000, in ``--schools`` schools): the audit
   input is built at that scale with the package's own producers (``gap_table`` for two subjects x four
   resources over five group variables, and the scorecard's per-school indicator cells), then protected
   and audited. Building the input (the aggregation over the students) is timed separately.

Usage::

    python benchmarks/bench_disclosure.py            # both (the demo part needs `make process`)
    python benchmarks/bench_disclosure.py --quick    # 100,000 students, the smallest demo district only
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from opportunity_research import config
from opportunity_research.disclosure import joint as disclosure
from opportunity_research.disclosure.district import analyze_district
from opportunity_research.disclosure.joint import DISTRICT_SPECS, protect_tables
from opportunity_research.stats.estimates import two_level_estimates
from opportunity_research.stats.gaps import gap_table
from opportunity_research.study import analysis
from opportunity_research.study.indicators import indicator_rows

RESOURCES = ("grade_appropriate", "strong_instruction", "engaged", "high_expectations")
VARIABLES = ("race_ethnicity", "low_income", "english_learner", "disability", "started_behind")
RACES = [
    "black",
    "hispanic_latino",
    "white",
    "asian",
    "two_or_more",
    "american_indian_alaska_native",
    "native_hawaiian_pacific_islander",
]
RACE_P = [0.30, 0.30, 0.28, 0.06, 0.04, 0.012, 0.008]


def demo_districts(quick: bool) -> list[tuple[str, int]]:
    import pyarrow.parquet as pq

    root = config.processed_dir()
    sizes = {
        p.name: pq.ParquetFile(p / "students.parquet").metadata.num_rows
        for p in sorted(root.glob("*"))
        if (p / "students.parquet").exists()
    }
    if not sizes:
        raise SystemExit("no processed district: run `make process` first")
    names = sorted(sizes)
    if quick:
        names = [min(sizes, key=sizes.get)]
    return [(n, sizes[n]) for n in names]


def _line(name: str, report, tables_out: dict, seconds: float) -> str:
    gaps = tables_out.get("gaps")
    gap = f"{int(gaps['suppressed'].sum())} of {len(gaps)}" if gaps is not None else "-"
    return (
        f"{name:<30} {report.cells:>7,} {report.primary:>6,} {report.beyond_primary:>11,} "
        f"{report.secondary_per_primary:>9.2f} {gap:>10} {report.hidden_counts:>7,} {seconds:>8.2f} "
        f"{'passed' if report.passed else 'FAILED'}"
    )


#: Settings of the protection rule compared per district (``protect_tables(close_counts=...)``): rule 2 hides
#: counts close to any hidden count (``all``, the default) or only to a hidden small count (``small``).
SETTINGS = ("all", "small")

HEADER = (
    f"{'district':<30} {'cells':>7} {'small':>6} {'complements':>11} {'sec/prim':>9} {'gap rows':>10} "
    f"{'counts':>7} {'seconds':>8} audit"
)


def bench_demo(quick: bool) -> None:
    real = disclosure.protect_district
    captured = {}

    def capture(a, **kw):
        captured["tables"] = disclosure.district_tables(a, kw.get("indicators"))
        captured["year"] = analysis.measures.analysis_year(a.district)
        return real(a, **kw)

    print(HEADER)
    disclosure.protect_district = capture
    try:
        for name, _n in demo_districts(quick):
            analyze_district(name, n_boot=20)
            for close in SETTINGS:
                t = time.perf_counter()
                out, report = protect_tables(
                    captured["tables"], min_n=config.MIN_CELL_SIZE, year=captured["year"], close_counts=close
                )
                print(_line(f"{name} [{close}]", report, out, time.perf_counter() - t), flush=True)
    finally:
        disclosure.protect_district = real


def synthetic_students(n: int, schools: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    school = rng.zipf(1.3, n) % schools  # unequal school sizes: some small schools, some large
    race = rng.choice(len(RACES), n, p=RACE_P)
    df = pd.DataFrame(
        {
            "school_id": pd.Categorical.from_codes(school, [f"S{i:04d}" for i in range(schools)]),
            "race_ethnicity": pd.Categorical.from_codes(race, RACES).astype(str),
            "low_income": (rng.random(n) < 0.55).astype(int),
            "english_learner": (rng.random(n) < 0.12).astype(int),
            "disability": (rng.random(n) < 0.13).astype(int),
            "started_behind": (rng.random(n) < 0.5).astype(int),
            "school_year": 2016,
            "_sid": np.arange(n),
        }
    )
    df["school_id"] = df["school_id"].astype(str)
    classroom = school * 40 + rng.integers(0, 40, n)
    for j, r in enumerate(RESOURCES):
        room = rng.beta(1 + j, 4, schools * 40)
        df[r] = room[classroom]
    df["classroom_id"] = classroom
    return df


def audit_input(df: pd.DataFrame) -> dict:
    gaps = []
    for subject in ("ela", "math"):
        for r in RESOURCES:
            t = gap_table(df, outcome=r, group=list(VARIABLES), min_n=1, n_boot=0, cluster="classroom_id")
            gaps.append(t.assign(measure=r, subject=subject))
    ind = []
    for r in RESOURCES:
        t = two_level_estimates(
            df,
            keys=["school_year"],
            variables=list(VARIABLES),
            value=r,
            kind="mean",
            cluster="school_id",
            confidence=0.95,
        )
        ind.append(indicator_rows(t.assign(suppressed=False, suppression_reason=""), measure=f"{r}_share"))
    return {
        "gaps": (pd.concat(gaps, ignore_index=True), DISTRICT_SPECS["gaps"]),
        "indicators_shares": (pd.concat(ind, ignore_index=True), DISTRICT_SPECS["indicators_shares"]),
    }


def bench_large(students: int, schools: int) -> None:
    t0 = time.perf_counter()
    df = synthetic_students(students, schools)
    tables = audit_input(df)
    build = time.perf_counter() - t0
    t1 = time.perf_counter()
    out, report = protect_tables(tables, min_n=config.MIN_CELL_SIZE, year=2016)
    protect = time.perf_counter() - t1
    print(_line(f"{students:,} students", report, out, protect) + f"   (building the tables {build:.1f} s)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="100,000 students; the smallest demo district")
    p.add_argument(
        "--students", type=int, default=None, help="students in the large district (default 1,000,000)"
    )
    p.add_argument("--schools", type=int, default=None, help="schools in the large district (default 200)")
    p.add_argument("--skip-demo", action="store_true", help="only the large district")
    args = p.parse_args()
    warnings.simplefilter("ignore")
    if not args.skip_demo:
        bench_demo(args.quick)
    bench_large(
        args.students or (100_000 if args.quick else 1_000_000), args.schools or (40 if args.quick else 200)
    )


if __name__ == "__main__":
    main()
