"""The score gaps' totals over every level (issue #21, 1,000,000 students): summed once per set of rows the
variables' levels are on, not once per variable, and the same to the bit as the groupby of every variable's rows
they were summed with before (the long table, one variable's rows after another's); each level's sums the same
as that table's groupby on its keys (now grouped on their codes, not hashed); the scores standardized within
(subject, year, grade) groups numbered from the keys' codes, not grouped on the three columns. Also when one
variable has missing levels (a second set of rows) and some rows have no grade (no standardized score). pandas
sums a groupby whose keys never decrease segment by segment and others with compensated summation: both cases
are here (one cell or several, variables in sorted order or not), on scores whose sums' last bits depend on the
method."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opportunity_research.study import levelgaps


def _rows(seed: int = 3, n: int = 4000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = pd.Series(rng.choice(["F", "M"], n), dtype=object)
    sex[rng.random(n) < 0.1] = None  # missing levels: the totals of "sex" run over fewer rows
    grade = rng.choice([3.0, 4.0, 5.0], n)
    grade[rng.random(n) < 0.02] = np.nan  # no grade: no standardized score
    return pd.DataFrame(
        {
            "subject": rng.choice(["ela", "math"], n),
            "school_year": rng.choice([2016, 2017], n),
            "grade": grade,
            "scale_score": rng.normal(500, 50, n) / 7,
            "ell": rng.integers(0, 2, n),
            "low_income": rng.integers(0, 2, n),
            "sex": sex,
        }
    )


def _long_table_sums(r: pd.DataFrame, variables: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    """The sums as the long table gave them: groupbys of the integer (cell, variable, level) and (cell, variable)
    keys of every variable's rows with a level, variable after variable (and whether the latter never decrease)."""
    g = r.groupby(["subject", "school_year", "grade"])["scale_score"]
    z = ((r["scale_score"] - g.transform("mean")) / g.transform("std")).to_numpy()
    r, z = r[np.isfinite(z)], z[np.isfinite(z)]
    cell = r.groupby(["subject", "school_year"], sort=True).ngroup().to_numpy()
    coded = {v: levelgaps._level_codes(r[v]) for v in variables}
    names, nv = sorted(variables), len(variables)
    texts = sorted({t for _, text in coded.values() for t in text})
    nt = len(texts)
    key = np.concatenate(
        [
            (cell[code >= 0] * nv + names.index(v)) * nt
            + np.array([texts.index(t) for t in text])[code[code >= 0]]
            for v, (code, text) in coded.items()
        ]
    )
    zz = np.concatenate([z[code >= 0] for code, _ in coded.values()])
    long = pd.DataFrame({"key": key, "z": zz, "z2": zz**2})
    each = long.groupby("key", sort=True).agg(n=("z", "size"), s=("z", "sum"), ss=("z2", "sum"))
    want = long.groupby(key // nt, sort=True).agg(N=("z", "size"), S=("z", "sum"), SS=("z2", "sum"))
    return each, want, bool((np.diff(key // nt) >= 0).all())


@pytest.mark.parametrize("one_cell", [False, True])
@pytest.mark.parametrize("variables", [["ell", "low_income", "sex"], ["low_income", "sex", "ell"]])
def test_totals_are_the_long_tables_sums_to_the_bit(one_cell, variables):
    r = _rows()
    if one_cell:  # one subject and year (as the score gaps' parts): with the variables sorted, the keys are
        r = r[(r["subject"] == "ela") & (r["school_year"] == 2016)].reset_index(drop=True)
    grp, tot = levelgaps._score_sums(r, variables)
    each, want, sorted_keys = _long_table_sums(r, variables)
    assert sorted_keys == (one_cell and variables == sorted(variables))
    assert len(tot) == len(want) == (1 if one_cell else 2 * 2) * 3
    for c in ("N", "S", "SS"):
        assert np.array_equal(tot[c].to_numpy(), want[c].to_numpy()), c
    # each level's sums too (their groups found by counting the keys, not by hashing them)
    assert len(grp) == len(each)
    for c in ("n", "s", "ss"):
        assert np.array_equal(grp[c].to_numpy(), each[c].to_numpy()), c
    # the totals of a variable with missing levels are not those of the others
    sex, ell = (tot[tot["variable"] == v]["N"].to_numpy() for v in ("sex", "ell"))
    assert (sex < ell).all()
    # and each level's counts add up to its variable's
    assert grp.groupby(["subject", "school_year", "variable"])["n"].sum().tolist() == tot["N"].tolist()
