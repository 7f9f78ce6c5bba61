"""The spring results as the analysis holds them (``analysis._spring_results``): their students' ids read alone
first, then as categories of the roster's ids when every result's student is on the roster, and their window as
one category; the same values as the rows read with every column."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd

from opportunity_research.intake.dataset import load_district
from opportunity_research.study import analysis
from opportunity_research.study.joins import roster_positions

from .demo import demo_root

DISTRICT = "demo_fairview"


def reader(root):
    def read(names, rows=None, skip=None, columns=None):
        return load_district(
            DISTRICT, processed_root=root, columns=dict.fromkeys(names, columns), skip=skip, rows=rows
        )

    return read


def plain(root) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The roster and the spring rows read with every column (what the analysis held before)."""
    read = reader(root)
    return read(["students"]).students, read(
        ["assessments"], rows={"assessments": analysis.SPRING_ROWS}
    ).assessments


def test_the_spring_results_hold_roster_codes_and_one_window_with_the_same_values():
    root = demo_root() / "processed"
    students, full = plain(root)
    d, at = analysis._spring_results(reader(root)(["students"]), reader(root), window=True)
    got = d.assessments
    assert isinstance(got["student_id"].dtype, pd.CategoricalDtype)
    assert isinstance(got["window"].dtype, pd.CategoricalDtype)
    assert got["window"].cat.categories.tolist() == ["spring"]
    # each result's student is the roster's student at its position, which is its code
    np.testing.assert_array_equal(at, roster_positions(students, full))
    np.testing.assert_array_equal(got["student_id"].cat.codes.to_numpy(), at)
    pd.testing.assert_frame_equal(
        got.astype({"student_id": full["student_id"].dtype, "window": full["window"].dtype})[
            list(full.columns)
        ],
        full,
        check_exact=True,
    )


def test_a_result_off_the_roster_keeps_the_ids_as_read(tmp_path):
    """A result whose student is not on the roster: the ids are read with the other columns, as text."""
    src = demo_root() / "processed" / DISTRICT
    shutil.copytree(src, tmp_path / DISTRICT)
    path = tmp_path / DISTRICT / "assessments.parquet"
    path.chmod(0o644)
    t = pd.read_parquet(path)
    t.loc[t.index[t["window"] == "spring"][0], "student_id"] = "not-on-the-roster"
    t.to_parquet(path)
    _, full = plain(tmp_path)
    d, at = analysis._spring_results(reader(tmp_path)(["students"]), reader(tmp_path), window=True)
    assert (at < 0).sum() == 1
    pd.testing.assert_frame_equal(
        d.assessments.astype({"window": full["window"].dtype})[list(full.columns)], full, check_exact=True
    )
    assert d.assessments["student_id"].dtype == full["student_id"].dtype
