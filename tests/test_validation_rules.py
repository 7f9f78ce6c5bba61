"""The rules across tables on id codes shared across tables (``validation_rules._Ids``), and the fall vs spring
grade rule on rows past the first."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opportunity_research.intake.validation import validate_district
from opportunity_research.intake.validation_rules import _Ids
from opportunity_research.intake.validation_schema import as_categories, shared_encodings

try:
    from .districtkit import make_valid_district
except ImportError:  # pragma: no cover - tests/ not a package
    from districtkit import make_valid_district


def _column(values, kind):
    s = pd.Series(values, dtype="str")
    return as_categories(s) if kind == "category" else s


@pytest.mark.parametrize("kind", ["str", "category"])
@pytest.mark.parametrize("seed", range(6))
def test_ids_answer_what_pandas_does_on_the_text(seed, kind):
    """isin and first_rows equal pandas' answers on the text (empty cells, repeats, ids only one table holds,
    an empty table), whichever column is registered first and whether the columns are text or categoricals."""
    rng = np.random.default_rng(seed)
    pool = np.array([f"id{i}" for i in range(12)] + ["", " id1"], dtype=object)

    def draw(n):
        v = pool[rng.integers(0, len(pool), n)].astype(object)
        v[v == ""] = None
        return list(v)

    frames = {
        name: pd.DataFrame({"x": _column(draw(n), kind)})
        for name, n in (("a", 40), ("b", 25), ("c", 0), ("d", 7))
    }
    order = list(rng.permutation(list(frames)))
    with shared_encodings():
        ids = _Ids(frames)
        for first in order:  # the registration order changes the codes, never the answers
            ids.rows(first, "x")
        for source in frames:
            for target in frames:
                values = frames[source]["x"].astype("str")
                universe = frames[target]["x"].astype("str")
                expect = values.isin(universe.dropna()).to_numpy() & values.notna().to_numpy()
                assert ids.isin(source, "x", target).tolist() == expect.tolist()
                first = {}
                for row, v in enumerate(universe):
                    if isinstance(v, str):
                        first.setdefault(v, row)
                expect_rows = [first.get(v, -1) if isinstance(v, str) else -1 for v in values]
                assert ids.first_rows(source, "x", target).tolist() == expect_rows


def _lines_of_fall_rows(folder, n):
    rows = (folder / "assessments.csv").read_text().splitlines()
    return [i + 1 for i, r in enumerate(rows) if ",fall," in r][-n:]


def test_fall_grade_above_spring_grade_is_reported_on_any_row(tmp_path):
    """The rule's values were built from two Series with different labels: a fall row past the first one raised
    (operands could not be broadcast) instead of being reported."""
    d = make_valid_district(tmp_path / "d")
    lines = _lines_of_fall_rows(d, 2)
    text = (d / "assessments.csv").read_text().splitlines(keepends=True)
    for line in lines:
        cells = text[line - 1].split(",")
        spring = int(cells[4])
        cells[4] = str(spring + 1)
        text[line - 1] = ",".join(cells)
    (d / "assessments.csv").write_text("".join(text))
    for keep in ("all", "across"):
        report = validate_district(d, keep=keep)
        hits = [p for p in report.problems if p.rule.startswith("fall grade is above")]
        assert [p.line for p in hits] == lines
        assert all(p.value.endswith(f" > {int(p.value.split(' > ')[0]) - 1}") for p in hits)
        assert not report.ok
