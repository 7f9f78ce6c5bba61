"""Benchmark: V statistic and HETOP fits from counts by performance level.

* ``v_statistic`` on two groups over four levels (one district gap cell), mean of many fits;
* ``hetop`` on G groups x 5 levels (G = 50, 300, 1000: a district's schools x groups up to a state's schools),
  one joint fit each, with the number of groups that share the SD (fewer than 50 students).

    .venv/bin/python benchmarks/bench_ordinal.py            # G up to 1000
    .venv/bin/python benchmarks/bench_ordinal.py --quick    # G up to 300
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from opportunity_research.stats.ordinal import hetop, v_statistic


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    cuts = np.array([-0.6, 0.2, 1.0])
    pa = np.diff(np.r_[0, stats.norm.cdf(cuts, 0.5, 1.2), 1])
    pb = np.diff(np.r_[0, stats.norm.cdf(cuts), 1])
    draws = [(rng.multinomial(300, pa), rng.multinomial(250, pb)) for _ in range(200)]
    t0 = time.perf_counter()
    for a, b in draws:
        v_statistic(a, b)
    print(
        f"v_statistic: {1000 * (time.perf_counter() - t0) / len(draws):.2f} ms per fit (2 groups x 4 levels)"
    )
    c = np.array([-1.0, -0.2, 0.6, 1.5])
    for g in (50, 300) if args.quick else (50, 300, 1000):
        mus, sds = rng.normal(0, 0.4, g), rng.uniform(0.8, 1.2, g)
        ns = rng.integers(20, 400, g)
        counts = np.array(
            [
                rng.multinomial(n, np.diff(np.r_[0, stats.norm.cdf(c, m, s), 1]))
                for n, m, s in zip(ns, mus, sds)
            ]
        )
        t0 = time.perf_counter()
        fit = hetop(counts, shared_sd=ns < 50)
        print(
            f"hetop: {g} groups x 5 levels ({int((ns < 50).sum())} sharing the SD): "
            f"{time.perf_counter() - t0:.2f} s, converged={fit.converged}"
        )


if __name__ == "__main__":
    main()
