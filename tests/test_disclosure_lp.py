"""The audit's LP engine (disclosure.lp): the shortcuts decide exactly what the exact LP bounds decide."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opportunity_research.disclosure.lp import interval_width, intervals
from opportunity_research.disclosure.model import PopulationModel, TableSpec


def _hidden_breakdowns(seed: int, schools: int = 40, levels: int = 4, tables: int = 3):
    """Schools x levels, school totals and district rows shown, every school breakdown hidden.

    Several tables publish the same school totals (the same relation reaches the component several times),
    and some schools are small, so that some hidden counts are narrower than the protection range.
    """
    rng = np.random.default_rng(seed)
    size = rng.integers(4, 60, size=schools)
    share = rng.dirichlet(np.ones(levels), size=schools)
    x = np.array([rng.multinomial(s, p) for s, p in zip(size, share)])
    frames = {}
    for k in range(tables):
        rows = []
        for s in range(schools):
            rows.append({"school_id": f"S{s}", "group": "all", "n": float(size[s]), "suppressed": False})
            for lv in range(levels):
                rows.append({"school_id": f"S{s}", "group": f"g={lv}", "n": np.nan, "suppressed": True})
        rows.append({"school_id": "all", "group": "all", "n": float(size.sum()), "suppressed": False})
        for lv in range(levels):
            rows.append(
                {"school_id": "all", "group": f"g={lv}", "n": float(x[:, lv].sum()), "suppressed": False}
            )
        frames[f"t{k}"] = (pd.DataFrame(rows), TableSpec("cell"))
    m = PopulationModel(frames, year=2016, known=False, min_n=10)
    shown = ~np.array(m.pre_hidden)
    targets = sorted({v for r in np.flatnonzero(~shown) for v in m.row_vars[r] if np.isnan(m.var_x[v])})
    return m, shown, targets


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shortcuts_decide_as_the_exact_bounds(seed):
    m, shown, targets = _hidden_breakdowns(seed)
    exact = intervals(m, shown, targets)  # need=inf: every target gets its own exact LP bounds
    fast = intervals(m, shown, targets, need=10)
    narrow = [t for t in targets if interval_width(exact[t]) < 10]
    assert narrow and len(narrow) < len(targets)  # the case has both kinds
    for t in targets:
        assert (interval_width(fast[t]) >= 10) == (interval_width(exact[t]) >= 10), t
        # an inner range found from feasible points lies inside the exact interval
        assert fast[t][0] >= exact[t][0] - 1e-6 and fast[t][1] <= exact[t][1] + 1e-6
