"""joins.increasing_ids: ids in increasing order found unique without hashing, and only those; joins.run_positions:
the positions id_positions gives, each run of one id looked up once; joins.id_positions_of on int64 keys: the
positions Arrow gives."""

import numpy as np
import pandas as pd
import pytest

from opportunity_research.intake.dataset import District
from opportunity_research.study import measures
from opportunity_research.study.joins import (
    id_positions,
    id_positions_of,
    increasing_ids,
    run_positions,
    unique_ids,
)
from opportunity_research.synth.districts import generate_districts
from opportunity_research.synth.specs import METRO


@pytest.fixture(scope="module")
def district():
    tables = generate_districts(5, 400, specs=(METRO,))["demo_metro"]["tables"]
    return District("demo_metro", {k: v for k, v in tables.items() if v is not None})


@pytest.mark.parametrize(
    ("ids", "want"),
    [
        (pd.Series(["a1", "a2", "b"], dtype="str"), True),
        (pd.Series(["a1", "a1", "b"], dtype="str"), False),  # repeated
        (pd.Series(["a", None, "c"], dtype="str"), False),  # missing: Arrow's all() would skip it
        (pd.Series(["a", "b", None], dtype="str"), False),
        (pd.Series(["a", "b", None, "c"], dtype="str"), False),  # the compares a missing id makes are skipped
        (pd.Series(["b", "a"], dtype="str"), False),  # unique, out of order: not said unique here
        (pd.Series([1, 5, 9], dtype=np.int64), True),
        (pd.Series([1, 5, 5], dtype=np.int64), False),
        (pd.Series([1.0, 2.0]), False),  # floats: not compared (NaN)
        (pd.Series([1, 2], dtype="Int64"), False),
        (pd.Series(["a", "b"], dtype=object), False),
    ],
)
def test_increasing_ids(ids, want):
    assert increasing_ids(ids) is want
    if want:
        assert ids.notna().all() and ids.is_unique


@pytest.mark.parametrize(
    "ids",
    [["a", "b", "c"], ["a", "a", "c"], ["a", None, "c"], ["c", "a", "b"], ["c", "a", "c"], [None, "a", "b"]],
)
def test_increasing_ids_says_unique_ids(ids):
    for s in (pd.Series(ids, dtype="str"), pd.Series(ids, dtype=object)):
        assert unique_ids(s) == bool(s.notna().all() and not s.duplicated().any())
        assert not increasing_ids(s) or unique_ids(s)


def test_work_sample_classrooms_sorted_and_not(district):
    """The work samples' classroom codes as the merge gives them, the assignments' ids sorted or not, repeated."""
    tables = dict(district.tables)
    a = tables["assignments"]
    merged = tables["work_samples"].merge(
        a[["assignment_id", "classroom_id"]], on="assignment_id", how="left"
    )
    want = measures._sorted_codes(merged["classroom_id"])
    for order in (np.argsort(a["assignment_id"].to_numpy(), kind="stable"), np.arange(len(a))[::-1]):
        d = District(district.district_id, {**tables, "assignments": a.take(order).reset_index(drop=True)})
        np.testing.assert_array_equal(measures._work_sample_classrooms(d), want)
    twice = District(
        district.district_id, {**tables, "assignments": pd.concat([a, a.iloc[:1]], ignore_index=True)}
    )
    assert measures._work_sample_classrooms(twice) is None


@pytest.mark.parametrize("dtype", ["str", np.int64])
def test_run_positions_are_id_positions(dtype):
    rng = np.random.default_rng(7)
    known = pd.Series([f"k{i}" for i in rng.permutation(50)])
    ids = pd.Series(np.repeat([f"k{i}" for i in rng.integers(0, 70, 40)], rng.integers(1, 5, 40)))
    if dtype is np.int64:
        known, ids = (x.str[1:].astype(np.int64) for x in (known, ids))
    else:
        known, ids = known.astype(dtype), ids.astype(dtype)
        ids[[0, 5, 6]] = None
    want = id_positions(known, ids)
    assert (want >= 0).any() and (want < 0).any() and len(set(ids)) < len(ids)
    for rows in (slice(None), slice(0, 0), slice(0, 1), slice(5, 9)):
        np.testing.assert_array_equal(run_positions(known, ids.iloc[rows]), want[rows])


def test_id_positions_of_int64_keys_as_in_arrow(monkeypatch):
    rng = np.random.default_rng(3)
    known = pd.Series(rng.integers(-(2**62), 2**62, 200, dtype=np.int64))
    parts = [pd.Series(known.to_numpy()[rng.integers(0, 200, n)]) for n in (50, 0, 80)]
    parts[2][::7] = 12345  # not known
    got = id_positions_of(known, parts)
    arrow = [p.astype("int64[pyarrow]") for p in parts]
    want = id_positions_of(known.astype("int64[pyarrow]"), arrow)  # the Arrow hash table's
    assert [len(x) for x in got] == [50, 0, 80] and (want[2] < 0).any()
    for g, w in zip(got, want, strict=True):
        assert g.dtype == np.int64
        np.testing.assert_array_equal(g, w)
    # pandas' hash table made the int64 positions (Arrow's not asked)
    import pyarrow.compute as pc

    monkeypatch.setattr(pc, "index_in", lambda *a, **k: (_ for _ in ()).throw(AssertionError("Arrow asked")))
    for g, w in zip(id_positions_of(known, parts), want, strict=True):
        np.testing.assert_array_equal(g, w)
    monkeypatch.undo()
    # a repeated known id: Arrow's answer (its first position), as before
    twice = pd.concat([known, known.iloc[:5]], ignore_index=True)
    for g, w in zip(id_positions_of(twice, parts), want, strict=True):
        np.testing.assert_array_equal(g, w)
