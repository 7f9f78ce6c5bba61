"""The nested group codes of the growth models (stats.design.nested_codes, sorted_codes): the same numbers as the
hash-table factorization they replace, for integer and text ids, ids unique across or only within outer groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opportunity_research.stats.design import nested_codes, sorted_codes


def _factorized(frame: pd.DataFrame, groups) -> tuple[list, list, list]:
    """nested_codes as it was: every level's (outer, own) keys factorized with pandas, sorted."""
    codes, sizes, parents = [], [], []
    parent = np.zeros(len(frame), dtype=np.int64)
    for level, col in enumerate(groups):
        own, uniq = pd.factorize(frame[col], sort=True)
        key = parent * np.int64(len(uniq) + 1) + own
        code, kuniq = pd.factorize(key, sort=True)
        code = code.astype(np.int64)
        if level > 0:
            par = np.empty(len(kuniq), dtype=np.int64)
            par[code] = parent
            parents.append(par)
        codes.append(code)
        sizes.append(len(kuniq))
        parent = code
    return codes, sizes, parents


def _frames(seed: int):
    rng = np.random.default_rng(seed)
    n = 2000
    school = rng.integers(0, 30, n)
    unique_room = school * 50 + rng.integers(0, 7, n)  # ids unique across schools
    local_room = rng.integers(0, 7, n)  # ids restart in every school
    wide = rng.integers(0, 2**40, 60)[rng.integers(0, 60, n)]  # a range far wider than the rows
    yield pd.DataFrame({"s": school, "r": unique_room})
    yield pd.DataFrame({"s": school, "r": local_room})
    yield pd.DataFrame({"s": (school - 15).astype(np.int8), "r": local_room.astype(np.uint16)})
    yield pd.DataFrame({"s": wide, "r": -unique_room})
    yield pd.DataFrame({"s": [f"S{x:02d}" for x in school], "r": [f"R{x}" for x in local_room]})
    yield pd.DataFrame({"s": school, "r": [f"R{x}" for x in unique_room], "k": rng.integers(0, 3, n)})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nested_codes_are_the_sorted_factorization(seed):
    for frame in _frames(seed):
        for groups in (list(frame.columns), list(frame.columns)[:1], list(frame.columns)[::-1]):
            got, want = nested_codes(frame, groups), _factorized(frame, groups)
            assert got[1] == want[1]
            for a, b in zip(got[0] + got[2], want[0] + want[2]):
                assert a.dtype == np.int64
                np.testing.assert_array_equal(a, b)


def test_sorted_codes_of_integers_and_text():
    for values in (
        np.array([5, -3, 5, 2**40]),
        np.array([3, 3, 1], dtype=np.uint8),
        np.array([-128, 127, 0], dtype=np.int8),
        np.array([2**63 + 5, 2**63 + 1, 2**63 + 5], dtype=np.uint64),
        np.array([2**63 - 1, -(2**63), 2**63 - 1]),
        pd.Series(["b", "a", "b"], dtype="str"),
        np.array([2.5, 1.0, 2.5]),
    ):
        codes, k = sorted_codes(values)
        want, uniq = pd.factorize(values, sort=True)
        np.testing.assert_array_equal(codes, want)
        assert codes.dtype == np.int64 and k == len(uniq)


def test_integer_ids_need_no_hash_table(monkeypatch):
    """Integer group codes (as fit_study_models makes them) are ranked without pandas' factorize."""
    from opportunity_research.stats import design

    frame = next(_frames(0))
    want = _factorized(frame, ["s", "r"])

    def refuse(*args, **kwargs):
        raise AssertionError("factorized with a hash table")

    monkeypatch.setattr(design.pd, "factorize", refuse)
    got = nested_codes(frame, ["s", "r"])
    for a, b in zip(got[0] + got[2], want[0] + want[2]):
        np.testing.assert_array_equal(a, b)
