"""Columnar reads: load_district(columns=...) reads only the named tables and columns, with the same values."""

from __future__ import annotations

import pandas as pd
import pytest

from opportunity_research.intake.dataset import load_district

from .demo import demo_root, district


def test_only_named_tables_and_columns_are_read():
    full = district("demo_fairview")
    part = load_district(
        "demo_fairview",
        processed_root=demo_root() / "processed",
        columns={"students": ["student_id", "grade"], "assessments": None},
    )
    assert list(part.tables) == ["students", "assessments"]
    assert list(part.students.columns) == ["student_id", "grade"]
    pd.testing.assert_frame_equal(part.students, full.students[["student_id", "grade"]])
    pd.testing.assert_frame_equal(part.assessments, full.assessments)
    assert part.manifest == full.manifest
    assert part.classrooms is None and not part.has("classrooms")


def test_unknown_tables_and_columns_are_named():
    root = demo_root() / "processed"
    with pytest.raises(KeyError, match="students.*no column.*shoe_size"):
        load_district("demo_fairview", processed_root=root, columns={"students": ["student_id", "shoe_size"]})
    with pytest.raises(KeyError, match="unknown table.*lunch"):
        load_district("demo_fairview", processed_root=root, columns={"lunch": None})
