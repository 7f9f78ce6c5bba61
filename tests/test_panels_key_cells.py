"""``panels.key_cells`` (issue #21, the trajectories at 1,000,000 students): the cells of the keys numbered as
``groupby(keys, sort=True, observed=True).ngroup()`` numbers them (-1 where a key is missing), with years ranked
without hashing, constant keys skipped and the combined codes made in place."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opportunity_research.study.panels import key_cells


def _frame(n: int, seed: int, missing: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    subject = pd.Series(rng.choice(["ela", "math"], n), dtype="str")
    school = pd.Series(rng.choice(["S2", "S1", "S3"], n), dtype="str")
    if missing:
        subject[rng.random(n) < 0.1] = np.nan
        school[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "subject": subject.astype("category"),
            "school_year": rng.choice([2014, 2016, 2015], n),
            "years_later": 3,  # one value
            "school_id": school,  # text: hashed
        }
    )


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("missing", [False, True])
@pytest.mark.parametrize(
    "keys",
    [["subject", "school_year"], ["subject", "years_later", "school_year"], ["school_id", "school_year"]],
)
def test_key_cells_are_groupby_numbers(seed, missing, keys):
    f = _frame(500, seed, missing)
    cell, cells = key_cells(f, keys)
    g = f.groupby(keys, sort=True, observed=True, dropna=True)
    np.testing.assert_array_equal(cell, g.ngroup().fillna(-1).to_numpy().astype(np.int64))
    want = g.size().reset_index()[keys]
    for c in keys:  # each cell's values, in the keys' dtypes
        assert cells[c].dtype == f[c].dtype
        pd.testing.assert_series_equal(cells[c], want[c].astype(f[c].dtype), check_exact=True)
