"""The order of the analysis' steps that keeps a large district's tables from being held together: the evidence let
go before the assessments are read, and the rows read for the growth frames let go before the models are fitted."""

from __future__ import annotations

from opportunity_research.intake.dataset import District, load_district
from opportunity_research.study import analysis

from .demo import demo_root

DISTRICT = "demo_fairview"


def test_the_evidence_and_the_growth_rows_are_let_go_before_the_next_large_step(monkeypatch):
    events = []
    released = District.released

    def recording_release(self, names, **kw):
        names = list(names)
        if set(analysis.EVIDENCE_TABLES) <= set(names):
            events.append("evidence let go")
        return released(self, names, **kw)

    def recording_read(district_id, **kw):
        if "assessments" in kw["columns"]:
            rows = (kw.get("rows") or {}).get("assessments")
            events.append(
                "years" if rows is None else "spring" if rows is analysis.SPRING_ROWS else "growth rows"
            )
        return load_district(district_id, **kw)

    fit = analysis.fit_study_models
    monkeypatch.setattr(District, "released", recording_release)
    monkeypatch.setattr(analysis, "load_district", recording_read)
    monkeypatch.setattr(
        analysis, "fit_study_models", lambda *a, **kw: events.append("models") or fit(*a, **kw)
    )
    analysis.unprotected_analysis(DISTRICT, processed_dir=str(demo_root() / "processed"), n_boot=2)
    first = [e for i, e in enumerate(events) if e not in events[:i]]
    assert first == ["evidence let go", "growth rows", "years", "models", "spring"]
