"""Benchmark: the study models of a district whose school variance the design cannot identify.

In ``demo_hillcrest`` (and ``demo_fairview``, ``demo_pinebrook``) every tested grade sits in one school, so with
grade fixed effects the school variance is not identified: the REML criterion is flat in it. Fitting it anyway
sends the optimizer chain wandering along the flat ridge (Powell to relative SDs ~1e5, where round-off makes the
criterion look better); the identifiability pre-check drops the level before fitting.

Prints, per subject, the seconds for ``fit_study_models`` with the pre-check (default) and without it
(``drop_unidentified=False``), their ratio, and the largest difference in fixed effects between the two (the
flat ridge leaves the fixed effects unchanged when the guard rejects the round-off optimum). Uses the frames
committed beside the lme4 references (tests/reference/frames), so it needs no demo data.

    .venv/bin/python benchmarks/bench_identification.py            # ELA and math of demo_hillcrest
    .venv/bin/python benchmarks/bench_identification.py --quick    # ELA only
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from opportunity_research.study.growth import fit_study_models

FRAMES = Path(__file__).resolve().parents[1] / "tests" / "reference" / "frames"


def timed(frame: pd.DataFrame, subject: str, drop: bool):
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm = fit_study_models(frame, subject=subject, fit_options={"drop_unidentified": drop})
    return time.perf_counter() - t, sm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="ELA only")
    ap.add_argument("--district", default="demo_hillcrest")
    args = ap.parse_args()
    subjects = ["ela"] if args.quick else ["ela", "math"]
    print(
        f"{'subject':8} {'pre-check s':>12} {'no pre-check s':>15} {'ratio':>7} {'not converged':>14} "
        f"{'max |d beta|':>13}"
    )
    for s in subjects:
        frame = pd.read_csv(FRAMES / f"{args.district}_{s}.csv.gz")
        t_on, on = timed(frame, s, True)
        t_off, off = timed(frame, s, False)
        bad = sum(not m.converged for m in off.models.values())
        diff = max(
            float(
                np.max(
                    np.abs(
                        on.models[k].coefficients["estimate"].to_numpy()
                        - off.models[k].coefficients["estimate"].to_numpy()
                    )
                )
            )
            for k in on.models
        )
        print(
            f"{s:8} {t_on:12.2f} {t_off:15.2f} {t_off / t_on:7.1f} {bad:>10} of {len(off.models)} {diff:13.2e}"
        )


if __name__ == "__main__":
    main()
