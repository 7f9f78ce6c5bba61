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
