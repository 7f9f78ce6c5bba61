"""The analysis reads the climate surveys and the student records only where it first needs them (issue 21)."""

import pandas as pd
import pytest

from opportunity_research.intake.dataset import District, load_district
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
    assert not set(reads[0]) & set(late) and "assessments" in reads[0]
    assert reads[1:] == [sorted(analysis.LATE_TABLES["climate"]), sorted(analysis.LATE_TABLES["records"])]
    # the analysis is complete: the late tables' results are there
    assert a.district.has("attendance") and a.district.has("programs")


def test_spring_results_copy_without_doubling_the_table():
    """The spring rows keep their labels and order; the whole table's columns are let go as they are copied."""
    a = pd.DataFrame(
        {
            "student_id": pd.array(["s1", "s2", "s1", "s3"], dtype="str"),
            "window": pd.array(["fall", "spring", "spring", "spring"], dtype="str"),
            "school_year": [2016, 2015, 2016, 2016],
            "scale_score": [1.0, 2.0, 3.0, 4.0],
        },
        index=[10, 11, 12, 13],
    )
    want = a[a["window"] == "spring"].copy()
    d, whole = analysis._spring_results(District("d", {"assessments": a}))
    pd.testing.assert_frame_equal(d.assessments, want, check_exact=True)
    assert a.columns.empty  # the given frame was emptied column by column
    assert len(whole) == 4 and whole["school_year"].tolist() == [2016, 2015, 2016, 2016]


def test_climate_surveys_are_read_after_the_assessments_are_let_go(monkeypatch):
    """Spring rows kept after the growth models, the panel built, then the climate surveys read: the assessments
    and the climate surveys are never held together."""
    if "demo_pinebrook" not in processed_districts():
        pytest.skip("demo data not processed: run `make process`")
    events = []

    def recording(district_id, **kw):
        events.append("read " + ",".join(sorted(kw["columns"])))
        return load_district(district_id, **kw)

    spring, panel = analysis._spring_results, analysis.trajectories.yearly_panel
    monkeypatch.setattr(analysis, "load_district", recording)
    monkeypatch.setattr(analysis, "_spring_results", lambda d: events.append("spring") or spring(d))
    monkeypatch.setattr(
        analysis.trajectories, "yearly_panel", lambda *a, **kw: events.append("panel") or panel(*a, **kw)
    )
    analysis.unprotected_analysis("demo_pinebrook", n_boot=20)
    climate = "read " + ",".join(sorted(analysis.LATE_TABLES["climate"]))
    first = [e for i, e in enumerate(events) if e not in events[:i]]  # the panel is passed on to each table
    assert first[1:] == [
        "spring",
        "panel",
        climate,
        "read " + ",".join(sorted(analysis.LATE_TABLES["records"])),
    ]
