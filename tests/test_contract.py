"""The contract is the single source: the documentation page must match it."""

from pathlib import Path

from opportunity_research.contract import TABLES, contract_markdown, optional_tables, required_tables


def test_docs_page_is_generated_from_the_contract():
    page = Path(__file__).resolve().parents[1] / "docs" / "data_contract.md"
    assert page.read_text() == contract_markdown(), "run `make docs` to regenerate docs/data_contract.md"


def test_every_table_documents_its_columns_and_keys():
    assert set(required_tables()) | set(optional_tables()) == set(TABLES)
    assert {"climate_surveys", "attendance", "advanced_courses", "programs", "goals"} <= set(optional_tables())
    for t in TABLES.values():
        assert set(t.key) <= set(t.columns), t.name
        for ref in t.references:
            assert set(ref.target_columns) <= set(TABLES[ref.table].columns)
        for c in t.columns.values():
            assert c.description and c.kind in {"id", "text", "int", "float", "flag", "category"}
