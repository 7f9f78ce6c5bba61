"""The analysis reads the climate surveys and the student records only where it first needs them (issue 21)."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from opportunity_research.intake.dataset import District, load_district, read_rows
from opportunity_research.report.explore import processed_districts
from opportunity_research.study import analysis


def test_with_tables_keeps_the_contract_order_and_refuses_other_data():
    students = pd.DataFrame({"student_id": ["S-1"]})
    schools = pd.DataFrame({"school_id": ["A"]})
    manifest = {"inputs": {"students.csv": "abc"}, "tables": {"students": 1, "schools": 1}}
    d = District("d", {"students": students}, manifest)
    both = d.with_tables(District("d", {"schools": schools}, dict(manifest)))
    assert list(both.tables) == ["schools", "students"] and both.schools is schools
    assert both.manifest is d.manifest
    changed = {**manifest, "inputs": {"students.csv": "def"}}
    with pytest.raises(RuntimeError, match="processed data changed"):
        d.with_tables(District("d", {"schools": schools}, changed))


def test_late_tables_are_read_at_their_first_use(monkeypatch):
    if "demo_pinebrook" not in processed_districts():
        pytest.skip("demo data not processed: run `make process`")
    reads = []

    def recording(district_id, **kw):
        reads.append(sorted(kw["columns"]))
        return load_district(district_id, **kw)

    monkeypatch.setattr(analysis, "load_district", recording)
    a, _ = analysis.unprotected_analysis("demo_pinebrook", n_boot=20)
    late = [t for names in analysis.LATE_TABLES.values() for t in names]
    assert not set(reads[0]) & set(late) and "students" in reads[0]
    others = [r for r in reads[1:] if r != ["assessments"]]
    assert others == [sorted(analysis.LATE_TABLES["climate"]), sorted(analysis.LATE_TABLES["records"])]
    # the analysis is complete: the late tables' results are there
    assert a.district.has("attendance") and a.district.has("programs")


def test_the_assessments_are_never_read_whole(monkeypatch):
    """The rows the growth models use, then the school years, then the spring rows (their ids, then the rest):
    each read of more than the school years selects rows (read_rows), so the whole table is never held (issue 21:
    at 1M the analysis' peak was the whole table's spring copy)."""
    if "demo_fairview" not in processed_districts():
        pytest.skip("demo data not processed: run `make process`")
    reads = []

    def recording(district_id, **kw):
        if "assessments" in kw["columns"]:
            cols = kw["columns"]["assessments"]
            what = "years" if cols == ["school_year"] else "rows"
            got = [(kw.get(k) or {}).get("assessments") for k in ("rows", "skip")]
            reads.append((what, *got))
        return load_district(district_id, **kw)

    monkeypatch.setattr(analysis, "load_district", recording)
    a, _ = analysis.unprotected_analysis("demo_fairview", n_boot=20)
    assert [what for what, *_ in reads] == ["rows", "years", "rows", "rows"]
    assert reads[0][1][0] == ["window", "school_year"]
    assert reads[2][1] is analysis.SPRING_ROWS and reads[3][1] is analysis.SPRING_ROWS
    # the growth models' rows without the columns only the spring analyses read; the spring rows' ids alone, then
    # every other column (analysis._spring_results: every result's student is on the roster, the window known)
    assert set(analysis.GROWTH_UNUSED["assessments"]) <= set(reads[0][2])
    assert reads[3][2] == ["student_id", "window"]
    whole = load_district("demo_fairview", columns={"assessments": ["school_year"]}).assessments
    assert len(a.district.assessments) == len(whole)  # the report counts every result and year
    assert a.district.assessments["school_year"].astype(int).tolist() == whole["school_year"].tolist()


def test_the_growth_rows_give_the_growth_models_what_the_whole_table_gives():
    """student_access and growth_frame read only the analysis year's results and the spring before: on those rows
    they make the same tables as on the whole table."""
    if "demo_fairview" not in processed_districts():
        pytest.skip("demo data not processed: run `make process`")
    from opportunity_research.study import measures

    d = load_district("demo_fairview")
    by, select = analysis._growth_rows(measures.analysis_year(d))
    kept = select(d.assessments[by])
    assert 0 < kept.sum() < len(kept)  # some rows are left out
    part = dataclasses.replace(d, tables={**d.tables, "assessments": d.assessments[kept]})
    for whole, rows in ((d, part),):
        acc, acc_rows = measures.student_access(whole), measures.student_access(rows)
        pd.testing.assert_frame_equal(acc_rows, acc, check_exact=True)
        for s in ("ela", "math"):
            pd.testing.assert_frame_equal(
                measures.growth_frame(rows, subject=s, access=acc_rows),
                measures.growth_frame(whole, subject=s, access=acc),
                check_exact=True,
            )


@pytest.mark.parametrize("row_group_size", [2, 3, 100])
def test_read_rows_is_the_selected_rows_of_the_whole_table(tmp_path, row_group_size):
    """Values, dtypes, order and labels (each row's number in the table) of a whole read's selected rows."""
    t = pd.DataFrame(
        {
            "student_id": pd.array(["s1", "s2", None, "s3", "s1"], dtype="str"),
            "window": pd.array(["fall", "spring", "spring", None, "spring"], dtype="str"),
            "school_year": [2016, 2015, 2016, 2016, 2014],
            "scale_score": [1.0, 2.0, np.nan, 4.0, 5.0],
        }
    )
    path = tmp_path / "t.parquet"
    t.to_parquet(path, row_group_size=row_group_size)
    whole = pd.read_parquet(path)
    spring = read_rows(path, ["window"], lambda f: f["window"] == "spring")
    pd.testing.assert_frame_equal(spring, whole[whole["window"] == "spring"], check_exact=True)
    assert spring.index.tolist() == [1, 2, 4]
    cols = read_rows(
        path, ["school_year"], lambda f: f["school_year"] > 2014, columns=["scale_score", "window"]
    )
    pd.testing.assert_frame_equal(cols, whole.loc[whole["school_year"] > 2014, ["scale_score", "window"]])
    none = read_rows(path, ["window"], lambda f: f["window"] == "winter")
    pd.testing.assert_frame_equal(none, whole.iloc[:0], check_index_type=False)
    # every row selected: the table as read whole (its RangeIndex); an unknown column: every row
    pd.testing.assert_frame_equal(read_rows(path, ["school_year"], lambda f: f["school_year"] > 0), whole)
    pd.testing.assert_frame_equal(read_rows(path, ["term"], lambda f: f["term"] == 1), whole)


def test_climate_surveys_are_read_after_the_assessments_are_let_go(monkeypatch):
    """Spring rows kept after the growth models, the panel built, then the climate surveys read: the assessments
    and the climate surveys are never held together."""
    if "demo_pinebrook" not in processed_districts():
        pytest.skip("demo data not processed: run `make process`")
    events = []

    panel = analysis.trajectories.yearly_panel

    def recording(district_id, **kw):
        spring = (kw.get("rows") or {}).get("assessments") is analysis.SPRING_ROWS
        events.append("spring" if spring else "read " + ",".join(sorted(kw["columns"])))
        return load_district(district_id, **kw)

    monkeypatch.setattr(analysis, "load_district", recording)
    monkeypatch.setattr(
        analysis.trajectories, "yearly_panel", lambda *a, **kw: events.append("panel") or panel(*a, **kw)
    )
    analysis.unprotected_analysis("demo_pinebrook", n_boot=20)
    climate = "read " + ",".join(sorted(analysis.LATE_TABLES["climate"]))
    first = [e for i, e in enumerate(events) if e not in events[:i]]  # the panel is passed on to each table
    assert first[-4:] == [
        "spring",
        "panel",
        climate,
        "read " + ",".join(sorted(analysis.LATE_TABLES["records"])),
    ]
