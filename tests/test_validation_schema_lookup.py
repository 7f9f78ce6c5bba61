"""``IdCodes`` looks each column's distinct ids up in a hash index of its domain's ids built once (while no id is
added), not hashed again for every column: the codes are those of a lookup by text."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from opportunity_research.intake import validation_schema
from opportunity_research.intake.validation_schema import IdCodes


def _reference(columns):
    """Each column's codes by a plain dict of the ids met so far, new ones appended in the column's order."""
    seen, out = {}, []
    for col in columns:
        out.append([seen.setdefault(v, len(seen)) for v in col])
    return out


def _columns(width_of, seed=0):
    rng = np.random.default_rng(seed)
    pool = [width_of(i) for i in range(400)]
    return [list(dict.fromkeys(rng.choice(pool, size=150).tolist())) for _ in range(6)]


def test_codes_equal_a_lookup_by_text_for_ids_of_one_width_and_of_many():
    for width_of in (lambda i: f"M{i:07d}", lambda i: f"S-{i}", lambda i: f"{i:012d}"):
        columns = _columns(width_of)
        ids = IdCodes()
        got = [ids.codes(pa.array(c), "student_id").tolist() for c in columns]
        assert got == _reference(columns)
        assert ids.ids("student_id").to_pylist() == list(dict.fromkeys(v for c in columns for v in c))


def test_the_domains_ids_are_packed_once_while_none_is_added(monkeypatch):
    calls = []
    packed = validation_schema._packed
    monkeypatch.setattr(validation_schema, "_packed", lambda arr: calls.append(len(arr)) or packed(arr))
    known = [f"M{i:07d}" for i in range(1000)]
    ids = IdCodes()
    ids.codes(pa.array(known), "student_id")
    for start in range(0, 1000, 100):  # ten columns, every id known already
        assert ids.codes(pa.array(known[start : start + 100]), "student_id").tolist() == list(
            range(start, start + 100)
        )
    assert calls.count(1000) == 1  # the domain's ids: once, not once per column
    ids.codes(pa.array(["M9999999", "M0000005"]), "student_id")  # one new id: looked up, then appended
    assert ids.codes(pa.array(["M9999999"]), "student_id").tolist() == [1000]
    assert calls.count(1001) == 1
