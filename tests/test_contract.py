"""The contract is the single source: the documentation page must match it."""

from pathlib import Path

from opportunity_research.intake.contract import TABLES, optional_tables, required_tables
from opportunity_research.intake.contract_page import contract_markdown


def test_docs_page_is_generated_from_the_contract():
    page = Path(__file__).resolve().parents[1] / "docs" / "data_contract.md"
    assert page.read_text() == contract_markdown(), "run `make docs` to regenerate docs/data_contract.md"


def test_every_table_documents_its_columns_and_keys():
    assert set(required_tables()) | set(optional_tables()) == set(TABLES)
    assert {"climate_surveys", "attendance", "advanced_courses", "programs", "goals"} <= set(
        optional_tables()
    )
    for t in TABLES.values():
        assert set(t.key) <= set(t.columns), t.name
        for ref in t.references:
            assert set(ref.target_columns) <= set(TABLES[ref.table].columns)
        for c in t.columns.values():
            assert c.description and c.kind in {"id", "text", "int", "float", "flag", "category"}


def test_worked_crosswalk_example_on_the_page_is_a_valid_crosswalk(tmp_path):
    from opportunity_research.intake.crosswalk import load_crosswalk

    page = contract_markdown()
    block = page.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "crosswalk.yaml").write_text(block)
    cw, problems = load_crosswalk(tmp_path)
    assert problems == []
    assert (
        cw.files["students"] == "Student Roster.csv"
        and cw.columns["students"]["race_ethnicity"] == "FED_RACE"
    )
    assert cw.codes[("assessments", "school_year")] == {"2015-16": "2015", "2016-17": "2016"}
    assert cw.codes[("assessments", "performance_level")]["Below Basic"] == "1"


def test_scoring_rules_on_the_page_use_the_scorers_defaults():
    import inspect

    from opportunity_research.intake.contract import CUT_POINTS
    from opportunity_research.study import measures

    sig = {
        name: inspect.signature(getattr(measures, name)).parameters
        for name in ("score_assignments", "score_observations", "score_engagement", "score_expectations")
    }
    assert sig["score_assignments"]["cut"].default == CUT_POINTS["grade_appropriate"][0]
    assert sig["score_observations"]["cut"].default == CUT_POINTS["strong_instruction"][0]
    assert sig["score_engagement"]["cut"].default == CUT_POINTS["engaged"][0]
    assert sig["score_expectations"]["cut_current"].default == CUT_POINTS["high_expectations_current"][0]
    assert sig["score_expectations"]["cut_old"].default == CUT_POINTS["high_expectations_old"][0]
    page = contract_markdown()
    assert (
        "| Grade-appropriate assignment | `assignments` |" in page
        and '| 4 (0-6) | `cuts["grade_appropriate"]` |' in page
    )
    assert "## The analysis year" in page and "--analysis-year" in page
