"""Benchmark: gap_table with a 1,000-replicate cluster bootstrap, against a naive per-replicate pandas loop.

Synthetic students (~25 per classroom, the seven race/ethnicity categories, a binary and a continuous
outcome). For each size it times ``gap_table(outcome=..., group="race_ethnicity", cluster="classroom_id",
n_boot=1000)`` for both outcomes (best of ``--repeat`` runs) and a naive loop that, for each replicate,
concatenates the rows of the resampled classrooms and recomputes the group means with ``groupby``. The naive loop is
timed on a few replicates and extrapolated to 1,000 (it would take far too long to run in full).

    .venv/bin/python benchmarks/bench_gaps.py            # 40,000 and 1,000,000 students
    .venv/bin/python benchmarks/bench_gaps.py --quick    # 40,000 students, fewer replicates
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from opportunity_research.intake.contract import RACE_ETHNICITY
from opportunity_research.stats.gaps import gap_table

SHARES = {
    "hispanic_latino": 0.28,
    "american_indian_alaska_native": 0.01,
    "asian": 0.05,
    "black": 0.25,
    "native_hawaiian_pacific_islander": 0.004,
    "white": 0.366,
    "two_or_more": 0.04,
}
assert set(SHARES) == set(RACE_ETHNICITY)


def synthetic(students: int, seed: int = 0) -> pd.DataFrame:
    """Students in classrooms of ~25, with a classroom effect and a planted gap."""
    rng = np.random.default_rng(seed)
    n_rooms = max(2, students // 25)
    room = rng.integers(0, n_rooms, students)
    effect = rng.normal(0, 0.5, n_rooms)
    race = rng.choice(list(SHARES), students, p=np.array(list(SHARES.values())) / sum(SHARES.values()))
    gap = np.where(race == "white", 0.25, 0.0)
    return pd.DataFrame(
        {
            "classroom_id": pd.Series(room).map(lambda i: f"C-{i:06d}"),
            "race_ethnicity": race,
            "on_grade_level": (rng.random(students) < 1 / (1 + np.exp(-(effect[room] + gap)))).astype("int8"),
            "score": effect[room] + gap + rng.normal(0, 1, students),
        }
    )


def naive_seconds_per_replicate(df: pd.DataFrame, outcome: str, replicates: int, seed: int = 0) -> float:
    """Resample classrooms and recompute every level's difference from all other students, with pandas.

    A reasonable straightforward version: row positions of each classroom are found once; each replicate
    concatenates the drawn classrooms' rows and runs a ``groupby``.
    """
    rng = np.random.default_rng(seed)
    rows = list(df.groupby("classroom_id", sort=False).indices.values())
    t = time.perf_counter()
    for _ in range(replicates):
        drawn = rng.integers(0, len(rows), len(rows))
        sample = df.iloc[np.concatenate([rows[i] for i in drawn])]
        g = sample.groupby("race_ethnicity")[outcome].agg(["sum", "count"])
        rest = (g["sum"].sum() - g["sum"]) / (g["count"].sum() - g["count"])
        _ = g["sum"] / g["count"] - rest
    return (time.perf_counter() - t) / replicates


def fast_seconds(df: pd.DataFrame, outcome: str, n_boot: int, repeat: int) -> tuple[float, pd.DataFrame]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = gap_table(
            df, outcome=outcome, group="race_ethnicity", cluster="classroom_id", n_boot=n_boot, seed=1
        )
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--quick", action="store_true", help="40,000 students, 200 replicates, 3 naive replicates"
    )
    ap.add_argument("--students", type=int, nargs="*", default=None)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of gap_table per case (best is shown)")
    args = ap.parse_args()
    sizes = args.students or ([40_000] if args.quick else [40_000, 1_000_000])
    n_boot = 200 if args.quick else 1000
    naive_reps = {n: (3 if args.quick else (20 if n <= 100_000 else 2)) for n in sizes}

    print(f"gap_table, cluster bootstrap with {n_boot} replicates, group = race_ethnicity (7 levels)")
    print(
        f"{'students':>10} {'classrooms':>10} {'outcome':<15} {'gap_table s':>11} {'naive s':>10} "
        f"{'naive/fast':>10} {'naive measured on':>18}"
    )
    for n in sizes:
        df = synthetic(n)
        rooms = df["classroom_id"].nunique()
        for outcome in ("on_grade_level", "score"):
            secs, table = fast_seconds(df, outcome, n_boot, args.repeat)
            per_rep = naive_seconds_per_replicate(df, outcome, naive_reps[n])
            naive = per_rep * n_boot
            print(
                f"{n:>10,} {rooms:>10,} {outcome:<15} {secs:>11.2f} {naive:>10.1f} {naive / secs:>9.0f}x "
                f"{naive_reps[n]:>8} replicates"
            )
        white = table.set_index("level").loc["white"]
        print(
            f"{'':>10} check: white vs all others, score difference {white['difference']:+.3f} "
            f"(95% CI {white['ci_lower']:+.3f} to {white['ci_upper']:+.3f}; planted +0.25)"
        )


if __name__ == "__main__":
    main()
