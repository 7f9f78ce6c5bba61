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
3. **Side by side with tau-Argus**, per demo district and for the large district: the same school x group
   count tables (school x race/ethnicity, school x each 0/1 flag, with school and district totals; counted
   from the students) through our joint pass (one linked set, for each protection range of
   :data:`PROTECTIONS`: ``min_n`` wide intervals, and ``1``, "not exactly computable") and through tau-Argus
   (``pytauargus``: the frequency rule ``FREQ(min_n, 0)`` for the same primary cells, then its modular
   method ``MOD``, one table at a time: the headless engine has no linked-table protection, so the school
   totals shared by the tables may be hidden in one table and shown in another; those are counted). Printed:
   small cells, cells hidden beyond them, secondary per primary, seconds, and for tau-Argus the narrowest
   audited interval of a hidden cell and the inconsistent shared totals.

   ``pytauargus`` is EUPL-1.2 licensed, so it is an optional, benchmark-only extra
   (``pip install -e ".[bench-tauargus]"``), never a dependency of the package; without it the tau-Argus
   column is skipped with a message.

4. **A pickled district's whole pass** (``--pickle PATH ...``): ``(analysis, indicators)`` as
   ``study.analysis.unprotected_analysis(..., n_boot=20)`` returns them (``bench_analysis.py --processed DIR
   --n-boot 20 --save PATH`` writes one, e.g. of a 10,000-student district made by ``synthesize_district``),
   protected by ``disclosure.joint.protect_district`` as the analysis does; printed: wall and CPU seconds (this process' user + system, and of them the main thread's: the rest is the block LPs' threads), peak memory, hidden counts, rows
   hidden beyond the small cells, and the load average before and after. Only this part runs with ``--pickle``.
   With ``--save DIR`` each protected analysis is pickled to ``DIR/<pickle's name>``; with ``--compare DIR`` it is
   compared with the one pickled there (every table of the analysis and every field of the audit report, exact,
   as ``bench_analysis.py --compare`` compares them; the report's ``seconds`` is left out): the same pass, before
   and after a change.

Usage::

    python benchmarks/bench_disclosure.py --pickle p10k.pkl   # part 4 only (e.g. a 10,000-student district)
    python benchmarks/bench_disclosure.py --pickle p10k.pkl --save before/   # then, after a change:
    python benchmarks/bench_disclosure.py --pickle p10k.pkl --compare before/   # the same output?
    python benchmarks/bench_disclosure.py            # all three (the demo parts need `make process`)
    python benchmarks/bench_disclosure.py --quick    # 100,000 students, the smallest demo district only
    python benchmarks/bench_disclosure.py --tauargus-only   # part 3 only
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import tempfile
import time
import warnings

import numpy as np
import pandas as pd

from opportunity_research import config
from opportunity_research.disclosure import joint as disclosure
from opportunity_research.disclosure.design import unshown_trend_rows
from opportunity_research.disclosure.joint import DISTRICT_SPECS, TableSpec, protect_tables
from opportunity_research.intake.dataset import load_district
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
        f"{name:<36} {report.cells:>7,} {report.primary + report.small_unpublished:>6,} {report.beyond_primary:>11,} "
        f"{report.secondary_per_primary:>9.2f} {gap:>10} {report.hidden_counts:>7,} {seconds:>8.2f} "
        f"{'passed' if report.passed else 'FAILED'}"
    )


#: Settings of the protection rule compared per district (``protect_tables(close_counts=...)``): rule 2 hides
#: counts close to any hidden count (``all``, the default) or only to a hidden small count (``small``).
SETTINGS = ("all", "small")

HEADER = (
    f"{'district':<36} {'cells':>7} {'small':>6} {'complements':>11} {'sec/prim':>9} {'gap rows':>10} "
    f"{'counts':>7} {'seconds':>8} audit"
)


def bench_demo(quick: bool) -> None:
    print(HEADER)
    for name, _n in demo_districts(quick):
        a, indicators = analysis.unprotected_analysis(name, n_boot=20)
        # the published set: a school's scorecard indicator of a year shown nowhere is not in it (protect_district)
        tables = disclosure.district_tables(a, indicators[~unshown_trend_rows(indicators)])
        year = analysis.measures.analysis_year(a.district)
        # the published path (disclosure.joint.protect_district): schools' "all other students" rows of yes/no
        # groups never published (the fixed design), every other row published or hidden cell by cell;
        # "left out" = the earlier design (a variable's school breakdowns left out for a year where one school's
        # group is small, counted as loss), "whole" = every row published, for comparison
        design = disclosure.never_published(tables)
        marked, left = disclosure.school_breakdowns(tables, min_n=config.MIN_CELL_SIZE, year=year)
        for close in SETTINGS:
            for path in ("published", "left out", "whole"):
                t = time.perf_counter()
                out, report = protect_tables(
                    marked if path == "left out" else tables,
                    min_n=config.MIN_CELL_SIZE,
                    year=year,
                    close_counts=close,
                    unpublished=left if path == "left out" else None,
                    never_published=design if path == "published" else None,
                )
                label = f"{name} [{close}, {path}]"
                print(_line(label, report, out, time.perf_counter() - t), flush=True)


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
            t = gap_table(df, outcome=r, group=list(VARIABLES), n_boot=0, cluster="classroom_id")
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


#: Protection ranges compared on the school x group tables: every hidden count bounded to an interval at least
#: ``min_n`` wide (the default), or only "not exactly computable" (1).
PROTECTIONS = (config.MIN_CELL_SIZE, 1)
#: The student-table variables of the school x group tables (``started_behind`` comes from test results).
TABLE_VARIABLES = ("race_ethnicity", "low_income", "english_learner", "disability")
TAU_HEADER = f"{'district':<22} {'tool':<30} {'cells':>6} {'small':>6} {'beyond':>7} {'sec/prim':>9} {'seconds':>8}  notes"


def school_group_cells(students: pd.DataFrame, variables=TABLE_VARIABLES) -> pd.DataFrame:
    """School x group counts in the package's cell format: school (``"all"`` = district) x ``group``."""
    parts = [
        students.groupby("school_id", observed=True).size().rename("n").reset_index().assign(group="all"),
        pd.DataFrame({"school_id": ["all"], "n": [len(students)], "group": ["all"]}),
    ]
    for v in variables:
        lev = v + "=" + students[v].astype(str)
        by_school = students.groupby(["school_id", lev.rename("group")], observed=True).size()
        parts.append(by_school.rename("n").reset_index())
        parts.append(
            lev.value_counts().rename("n").rename_axis("group").reset_index().assign(school_id="all")
        )
    out = pd.concat(parts, ignore_index=True)
    out["variable"] = out["group"].str.split("=").str[0]
    return out[["school_id", "variable", "group", "n"]].assign(school_year=2016)


def ours_on_cells(cells: pd.DataFrame, protection: int) -> tuple:
    spec = TableSpec("cell", universe=("school_year",), year="school_year")
    t = time.perf_counter()
    _out, report = protect_tables(
        {"school_groups": (cells, spec)}, min_n=config.MIN_CELL_SIZE, protection=protection, year=2016
    )
    return report, time.perf_counter() - t


#: tau-Argus's frequency-rule protection levels tried (a percentage of each unsafe cell's value): 0, a hidden
#: cell only not exactly computable (like our protection 1); 100, the cell's own value on either side.
TAU_SAFETY_RANGES = (0, 100)


def _narrowest_small(report) -> float:
    """Narrowest audited interval (``floor(high) - ceil(low)``) of a hidden count below ``min_n``."""
    iv = report.intervals
    if iv is None or not len(iv) or "true" not in iv.columns:
        return float("nan")
    true = pd.to_numeric(iv["true"], errors="coerce")
    small = iv[(true > 0) & (true < report.min_n)]
    if not len(small):
        return float("nan")
    return float((np.floor(small["high"] + 1e-7) - np.ceil(small["low"] - 1e-7)).min())


def tauargus_available() -> bool:
    return importlib.util.find_spec("pytauargus") is not None


def tauargus_on_cells(students: pd.DataFrame, variables=TABLE_VARIABLES, *, safety_range: int = 0) -> dict:
    """The same school x group tables through tau-Argus: ``FREQ(min_n, safety_range)`` then ``MOD``, one table
    per variable. ``safety_range`` is tau-Argus's protection level for the frequency rule, a percentage of each
    unsafe cell's value (0: a hidden cell only has to be not exactly computable)."""
    from pytauargus import protect

    micro = students[["school_id", *variables]].astype(str).assign(one=1.0)
    small = beyond = cells = 0
    narrowest = np.inf
    hidden_totals: list[set] = []
    t = time.perf_counter()
    for v in variables:
        # the engine writes its solver logs into the working directory: run it inside the temporary folder
        with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
            res = protect(
                micro[["school_id", v, "one"]],
                ["school_id", v],
                response="one",
                safety_rules=f"FREQ({config.MIN_CELL_SIZE},{safety_range})",
                suppress="MOD(1)",
                workdir=tmp,
            )
            tab = res.tables[0].dataframe()
            tab = tab[tab["freq"] > 0]
            st = tab["status"].astype(str)
            cells += len(tab)
            small += int((st == "U").sum())
            beyond += int((st == "M").sum())
            audit = res.engine.audit(0)
            widths = [r["max"] - r["min"] for r in audit if str(r["status"]).lower() == "u"]
            if widths:
                narrowest = min(narrowest, min(widths))
            total = tab[v].astype(str).eq(_tau_total(tab, v))
            hidden_totals.append(set(tab.loc[total & st.isin(["U", "M"]), "school_id"].astype(str)))
    inconsistent = set.union(*hidden_totals) - set.intersection(*hidden_totals) if hidden_totals else set()
    return {
        "cells": cells,
        "small": small,
        "beyond": beyond,
        "seconds": time.perf_counter() - t,
        "narrowest": narrowest,
        "inconsistent": len(inconsistent),
    }


def _tau_total(tab: pd.DataFrame, v: str) -> str:
    """tau-Argus's code of the total of variable ``v`` (the code that is not a level of the micro data)."""
    codes = tab[v].astype(str)
    return codes[codes.str.lower().str.contains("tot") | codes.eq("")].iloc[0] if len(codes) else ""


def _tau_line(
    name: str, tool: str, cells: int, small: int, beyond: int, seconds: float, notes: str = ""
) -> str:
    ratio = beyond / small if small else 0.0
    return (
        f"{name:<22} {tool:<30} {cells:>6,} {small:>6,} {beyond:>7,} {ratio:>9.2f} {seconds:>8.2f}  {notes}"
    )


def bench_tauargus(quick: bool, students: int | None, schools: int | None) -> None:
    """Part 3: our joint pass and tau-Argus on the same school x group count tables."""
    cases = []
    for name, _n in demo_districts(quick):
        st = load_district(name).students
        cases.append((name, st))
    n = students or (100_000 if quick else 1_000_000)
    big = synthetic_students(n, schools or (40 if quick else 200))
    cases.append((f"{n:,} students", big))
    have_tau = tauargus_available()
    print(TAU_HEADER)
    for name, st in cases:
        cells = school_group_cells(st)
        for p in PROTECTIONS:
            report, secs = ours_on_cells(cells, p)
            label = f"ours, protection {p}" + (" (= min_n)" if p == config.MIN_CELL_SIZE else "")
            print(
                _tau_line(
                    name,
                    label,
                    report.cells,
                    report.primary,
                    report.beyond_primary,
                    secs,
                    f"narrowest small-cell interval {_narrowest_small(report):g}; audit "
                    + ("passed" if report.passed else "FAILED"),
                ),
                flush=True,
            )
        if not have_tau:
            print(
                f"{name:<22} {'tau-Argus MOD':<30} skipped: pytauargus is not installed "
                f"(optional, EUPL-1.2: pip install -e '.[bench-tauargus]')"
            )
            continue
        for rng in TAU_SAFETY_RANGES:
            r = tauargus_on_cells(st, safety_range=rng)
            notes = (
                f"narrowest small-cell interval {r['narrowest']:g}; school totals hidden in some tables and "
                f"shown in others: {r['inconsistent']}"
            )
            tool = f"tau-Argus MOD, FREQ({config.MIN_CELL_SIZE},{rng})"
            print(
                _tau_line(name, tool, r["cells"], r["small"], r["beyond"], r["seconds"], notes),
                flush=True,
            )


def bench_pickled(paths: list[str], save: str | None = None, compare: str | None = None) -> int:
    """Part 4: ``disclosure.joint.protect_district`` on pickled ``(analysis, indicators)``, wall and CPU seconds;
    the protected analysis pickled to the folder ``save`` or compared with the one pickled in ``compare`` (returns
    the number of pickles that differ)."""
    import pickle
    import resource
    from pathlib import Path

    differ = 0
    for path in paths:
        with open(path, "rb") as f:
            a, indicators = pickle.load(f)
        load = os.getloadavg()
        r0, t0, m0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter(), time.thread_time()
        out = disclosure.protect_district(a, indicators=indicators)
        main = time.thread_time() - m0
        wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
        cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
        rep = out.disclosure
        print(
            f"{path}: protection pass {wall:.1f} s wall, {cpu:.1f} CPU-s ({main:.1f} in the main thread, the rest other threads: "
            f"the block LPs), peak RSS {r1.ru_maxrss / 2**20:.2f} GB; "
            f"{rep.hidden_counts:,} hidden counts, {rep.beyond_primary:,} rows hidden beyond the small cells, "
            f"audit {'passed' if rep.passed else 'FAILED'}; load average "
            f"{', '.join(f'{x:.2f}' for x in load)} -> {', '.join(f'{x:.2f}' for x in os.getloadavg())}",
            flush=True,
        )
        rep.seconds = 0.0  # the one field that differs between runs of the same pass
        if save:
            Path(save).mkdir(parents=True, exist_ok=True)
            with open(Path(save) / Path(path).name, "wb") as f:
                pickle.dump(out, f, protocol=5)
        if compare:
            # benchmarks/ (this script's folder) is on the path
            from bench_analysis import compare as differences

            with open(Path(compare) / Path(path).name, "rb") as f:
                before = pickle.load(f)
            bad = differences(out, None, before, None)
            differ += bool(bad)
            print(
                f"  compared with {Path(compare) / Path(path).name}: "
                + (
                    "IDENTICAL (every table and audit field, exact)" if not bad else f"{len(bad)} DIFFERENCES"
                ),
                flush=True,
            )
            for line in bad[:40]:
                print("    " + line)
    return differ


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="100,000 students; the smallest demo district")
    p.add_argument(
        "--students", type=int, default=None, help="students in the large district (default 1,000,000)"
    )
    p.add_argument("--schools", type=int, default=None, help="schools in the large district (default 200)")
    p.add_argument("--skip-demo", action="store_true", help="only the large district")
    p.add_argument("--tauargus-only", action="store_true", help="only the side-by-side with tau-Argus")
    p.add_argument(
        "--pickle",
        nargs="+",
        default=None,
        help="only part 4: protect_district on pickled (analysis, indicators) (bench_analysis.py --save PATH)",
    )
    p.add_argument(
        "--save", default=None, help="with --pickle: pickle each protected analysis into this folder"
    )
    p.add_argument(
        "--compare", default=None, help="with --pickle: compare each protected analysis with this folder's"
    )
    args = p.parse_args()
    warnings.simplefilter("ignore")
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.pickle:
        raise SystemExit(1 if bench_pickled(args.pickle, args.save, args.compare) else 0)
    if not args.tauargus_only:
        if not args.skip_demo:
            bench_demo(args.quick)
        bench_large(
            args.students or (100_000 if args.quick else 1_000_000),
            args.schools or (40 if args.quick else 200),
        )
    bench_tauargus(args.quick, args.students, args.schools)
    print(f"load average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
