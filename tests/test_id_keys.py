"""The analysis on integer student ids: pseudonyms read as int64 keys (intake.dataset.pseudonym_keys), and the text
path kept for ids of any other form."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from opportunity_research.intake import dataset
from opportunity_research.intake.dataset import load_district, pseudonym_keys, pseudonym_text, pseudonymize
from opportunity_research.study import analysis
from opportunity_research.study.analysis import unprotected_analysis
from opportunity_research.study.panels import ids_in

from .demo import demo_root

DISTRICT = "demo_fairview"


def _compare(a, ind, b, ind_b):
    """Every table of two analyses exactly equal (the district's tables aside)."""
    for f in analysis.DistrictAnalysis.__dataclass_fields__:
        if f == "district":
            continue
        x, y = getattr(a, f), getattr(b, f)
        if isinstance(x, pd.DataFrame):
            pd.testing.assert_frame_equal(x, y, check_exact=True, obj=f)
        else:
            assert x == y, f
    pd.testing.assert_frame_equal(ind, ind_b, check_exact=True)


def _spelled(pseudonym: str) -> int:
    """The number a pseudonym's 16 hex digits spell, its top bit flipped, as a signed 64-bit integer."""
    return int.from_bytes(bytes.fromhex(pseudonym[2:]), "big") - 2**63


def test_keys_are_one_to_one_and_ordered_as_the_pseudonyms():
    raw = pd.Series([str(i) for i in range(5000)] + ["7", "42"])
    ids = pseudonymize(raw, key="0123456789abcdef", prefix="S-", salt="d1")
    edges = pd.Series(
        ["S-0000000000000000", "S-7fffffffffffffff", "S-8000000000000000", "S-ffffffffffffffff"]
    )
    ids = pd.concat([ids, edges], ignore_index=True).astype("str")
    keys = pseudonym_keys(ids)
    assert keys.dtype == np.int64 and len(keys) == len(ids)
    # the number each pseudonym spells, its top bit flipped
    want = [_spelled(t) for t in ids]
    assert keys.tolist() == want
    # the same order, the same groups and first appearances as the text
    text = ids.to_numpy(dtype=object)
    assert (np.argsort(keys, kind="stable") == np.argsort(text, kind="stable")).all()
    assert (pd.factorize(keys)[0] == pd.factorize(ids)[0]).all()
    assert (pd.factorize(keys, sort=True)[0] == pd.factorize(ids, sort=True)[0]).all()
    pd.testing.assert_series_equal(pseudonym_text(keys), ids)


def test_keys_of_several_chunks_and_slices():
    ids = [f"S-{i:016x}" for i in range(0, 2**40, 2**33)]
    chunked = pa.chunked_array([pa.array(ids[:50], pa.large_string()), pa.array(ids[50:], pa.large_string())])
    sliced = pd.Series(pd.arrays.ArrowStringArray(chunked.slice(3, 100)), dtype="str")
    assert pseudonym_keys(sliced).tolist() == [_spelled(t) for t in ids[3:103]]
    small = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([pa.array(ids[5:9], pa.string())])))
    assert pseudonym_keys(small).tolist() == [_spelled(t) for t in ids[5:9]]
    assert pseudonym_keys(pd.Series([], dtype="str")).tolist() == []


@pytest.mark.parametrize(
    "values",
    [
        ["a", "b"],
        ["S-0123456789abcdef", None],  # a missing id
        ["S-0123456789abcdef", "S-0123456789ABCDEF"],  # upper case: not the text's order
        ["S-0123456789abcdef", "T-0123456789abcdef"],  # another prefix
        ["S-0123456789abcdef", "S-0123456789abcdeg"],  # not a hex digit
        ["S-0123456789abcdef", "S-0123456789abcde"],  # another length
        ["S-0123456789abcdef0", "S-0123456789abcdef0"],  # one length, another width
    ],
)
def test_ids_of_another_form_stay_text(values):
    assert pseudonym_keys(pd.Series(values, dtype="str")) is None
    assert pseudonym_keys(pd.Series(values, dtype=object)) is None  # not Arrow text


def _processed(tmp_path, ids):
    folder = tmp_path / "d1"
    folder.mkdir()
    students = pd.DataFrame({"student_id": pd.Series(ids, dtype="str"), "grade": range(len(ids))})
    students.to_parquet(folder / "students.parquet", index=False)
    results = students.iloc[[1, 0, 1]].assign(window=["fall", "spring", "spring"])[["student_id", "window"]]
    results.to_parquet(folder / "assessments.parquet", index=False)
    (folder / "manifest.json").write_text(json.dumps({"tables": {}}))
    return tmp_path


def test_load_district_reads_pseudonyms_as_keys_and_other_ids_as_text(tmp_path):
    ids = ["S-00000000000000ff", "S-ff00000000000000"]
    root = _processed(tmp_path, ids)
    spring = {"assessments": (["window"], lambda t: t["window"] == "spring")}
    d = load_district("d1", processed_root=root, id_keys=True, rows=spring)
    assert d.students["student_id"].tolist() == [255 - 2**63, 2**63 - 2**56]
    assert d.assessments["student_id"].tolist() == [255 - 2**63, 2**63 - 2**56]  # read by rows
    assert d.assessments.index.tolist() == [1, 2]
    text = load_district("d1", processed_root=root, rows=spring)  # without id_keys: the text
    assert text.students["student_id"].tolist() == ids and text.students["student_id"].dtype == "str"


def test_load_district_keeps_text_ids_of_another_form(tmp_path):
    (tmp_path / "x").mkdir()
    root = _processed(tmp_path / "x", ["a", "b"])
    d = load_district("d1", processed_root=root, id_keys=True)
    assert d.students["student_id"].tolist() == ["a", "b"] and d.assessments["student_id"].dtype == "str"


def test_ids_in_looks_up_integer_ids_in_arrow(monkeypatch):
    ids, values = pd.Series([7, -3, 5, 2**62], name="student_id"), pd.Series([5, 7, 9, 2**62])
    want = ids.isin(set(values))
    monkeypatch.setattr(pd.Series, "isin", lambda *a, **k: pytest.fail("isin used"))
    pd.testing.assert_series_equal(ids_in(ids, values), want)


@pytest.fixture(scope="module")
def both():
    """The analysis of a demo district on integer ids, with the dtype of ``student_id`` in every table it read, and
    the analysis on the ids' text (pseudonym_keys finding none)."""
    root = str(demo_root() / "processed")
    seen = []
    read = analysis.load_district

    def recording(*a, **kw):
        d = read(*a, **kw)
        seen.extend(str(t["student_id"].dtype) for t in d.tables.values() if "student_id" in t.columns)
        return d

    with pytest.MonkeyPatch.context() as m:
        m.setattr(analysis, "load_district", recording)
        keyed = unprotected_analysis(DISTRICT, processed_dir=root, n_boot=20)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(dataset, "pseudonym_keys", lambda ids, **k: None)
        text = unprotected_analysis(DISTRICT, processed_dir=root, n_boot=20)
    return keyed, text, seen


def test_the_analysis_joins_integer_ids(both):
    (a, _), _, seen = both  # (the analysis on integer ids, and the dtypes of the ids it read)
    assert seen and set(seen) == {"int64"}
    # the roster returned with the processed table's text ids
    root = demo_root() / "processed"
    full = load_district(DISTRICT, processed_root=root, columns={"students": ["student_id"]}).students[
        "student_id"
    ]
    pd.testing.assert_series_equal(a.district.students["student_id"], full)


def test_the_analysis_on_integer_ids_is_the_analysis_on_text(both):
    (a, ind), (b, ind_b), _ = both
    _compare(a, ind, b, ind_b)
    pd.testing.assert_frame_equal(a.district.students, b.district.students)
