"""The explorer: its computation against a hand-computed reference, and notebooks/explore.ipynb executed
headless with a simulated widget interaction."""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pytest

from opportunity_research import config
from opportunity_research.intake.dataset import load_district
from opportunity_research.report.explore import explore_gaps, explore_options, processed_districts
from opportunity_research.study import measures

pytestmark = pytest.mark.long(35)  # run first (tests/conftest.py)

DISTRICT = "demo_pinebrook"


@pytest.fixture(scope="module")
def district():
    if DISTRICT not in processed_districts():
        pytest.skip("demo data not processed: run `make process`")
    return load_district(DISTRICT)


def test_explorer_table_matches_group_means_computed_by_hand(district):
    t = explore_gaps(
        district,
        resource="grade_appropriate",
        subject="math",
        variable="low_income",
        cuts={"grade_appropriate": 3},
        n_boot=50,
    ).set_index("level")
    # independent: score assignments by hand, average per classroom, give each student their classroom's share
    a = district.assignments.dropna(subset=["content", "practice", "relevance"])
    room = ((a["content"] + a["practice"] + a["relevance"]) >= 3).groupby(a["classroom_id"]).mean()
    cls = district.classrooms.set_index("classroom_id")
    enr = district.enrollments[district.enrollments["classroom_id"].map(cls["subject"]) == "math"]
    share = enr.assign(s=enr["classroom_id"].map(room)).groupby("student_id")["s"].mean().dropna()
    li = district.students.set_index("student_id")["low_income"].reindex(share.index)
    for level in (0, 1):
        assert t.loc[level, "estimate"] == pytest.approx(share[li == level].mean(), abs=1e-12)
        assert t.loc[level, "n"] == (li == level).sum()
    assert set(t["reference_label"]) == {"all other students"}


def test_a_cut_point_and_a_reference_change_the_table(district):
    base = explore_gaps(district, variable="race_ethnicity", n_boot=30)
    stricter = explore_gaps(district, variable="race_ethnicity", cuts={"grade_appropriate": 6}, n_boot=30)
    shown = ~base["suppressed"].astype(bool)
    assert not np.allclose(base.loc[shown, "estimate"], stricter.loc[shown, "estimate"])
    named = explore_gaps(district, variable="race_ethnicity", reference="white", n_boot=30)
    assert "white" not in set(named["level"]) and set(named["reference_label"]) == {"White students"}
    with pytest.raises(ValueError, match="resource: 'engagement' is not one of"):
        explore_gaps(district, resource="engagement")


def test_options_cover_every_resource_subject_and_cut():
    o = explore_options()
    assert o["resources"] == list(measures.RESOURCES) and o["subjects"] == ["ela", "math"]
    assert set(o["cuts"]) == {
        "grade_appropriate",
        "strong_instruction",
        "engaged",
        "high_expectations_current",
        "high_expectations_old",
    }


INTERACTION = """
import json
explorer.controls["district"].value = "demo_pinebrook"
explorer.controls["subject"].value = "math"
before = explorer.table[["level", "estimate"]].to_dict("list")
n0 = explorer.n_updates
explorer.controls["cut_grade_appropriate"].value = 5  # what dragging the slider does
after = explorer.table[["level", "estimate"]].to_dict("list")
explorer.controls["variable"].value = "low_income"
explorer.controls["reference"].value = 0
print(json.dumps({"before": before, "after": after, "updates": explorer.n_updates - n0,
                  "reference": explorer.table["reference_label"].iloc[0], "levels": explorer.table["level"].tolist(),
                  "cut": explorer.cuts()["grade_appropriate"], "error": explorer.error,
                  "table_html": len(explorer.table_out.outputs), "chart": len(explorer.chart_out.outputs)},
                 default=str))
"""


def test_explore_notebook_runs_headless_and_the_widgets_drive_the_table(district, tmp_path):
    from nbclient import NotebookClient

    from opportunity_research.batch.kernel_client import SteppedKernelManager

    nb = nbformat.read(config.project_root() / "notebooks" / "explore.ipynb", as_version=4)
    (at,) = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    # parameters injected after the notebook's own, as papermill injects them: a processed folder holding only the
    # district the interaction drives (the explorer opens on the first district and computes the cells its report
    # hides, a whole disclosure pass of about 4.5 CPU-s for demo_fairview, which nothing here reads), and 20
    # bootstrap replicates, not 200 (what is asserted is the widgets' wiring and the point estimates, which the
    # replicates do not change)
    (tmp_path / "processed").mkdir()
    (tmp_path / "processed" / DISTRICT).symlink_to(config.processed_dir() / DISTRICT)
    nb.cells.insert(
        at + 1, nbformat.v4.new_code_cell(f"processed_dir = {str(tmp_path / 'processed')!r}\nn_boot = 20")
    )
    nb.cells.append(nbformat.v4.new_code_cell(INTERACTION))
    # a client that cannot sleep through a reply already on its socket: nbclient's own now and then waited out
    # the whole cell timeout (jupyter/nbclient#312; opportunity_research.batch.kernel_client)
    NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        kernel_manager_class=SteppedKernelManager,
        resources={"metadata": {"path": str(config.project_root())}},
    ).execute()
    widget_out = nb.cells[at + 2].outputs
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in widget_out)
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("name") == "stdout")
    got = json.loads(text)
    assert got["error"] is None and got["cut"] == 5
    assert got["updates"] == 3  # the cut point, the group variable, the reference: one update each
    assert (
        got["before"]["level"] == got["after"]["level"]
        and got["before"]["estimate"] != got["after"]["estimate"]
    )
    assert got["reference"] == "students not from low-income families" and got["levels"] == [1]
    assert got["table_html"] == 1 and got["chart"] == 1
    assert not any(o.get("name") == "stderr" for c in nb.cells for o in c.get("outputs", []))


def test_the_explorer_hides_every_cell_the_report_hides(monkeypatch):
    # Fairview: its report hides Asian, Black and Two or more (joint pass over every table); so must the explorer
    from opportunity_research.disclosure import district as district_analysis
    from opportunity_research.report import explore

    if "demo_fairview" not in processed_districts():
        pytest.skip("demo data not processed: run `make process`")
    fair = load_district("demo_fairview")
    # the report's analysis, as report_hidden runs it (kept here rather than run a second time)
    analyses, analyze = [], district_analysis.analyze_district

    def kept(*args, **kwargs):
        analyses.append(analyze(*args, **kwargs))
        return analyses[-1]

    monkeypatch.setattr(district_analysis, "analyze_district", kept)
    monkeypatch.setattr(explore, "_REPORT_HIDDEN", {})
    hidden = explore.report_hidden("demo_fairview")
    (a,) = analyses
    for resource in measures.RESOURCES:
        for subject in ("ela", "math"):
            report = a.gaps[
                (a.gaps["measure"] == resource)
                & (a.gaps["subject"] == subject)
                & (a.gaps["group"] == "race_ethnicity")
            ]
            t = explore_gaps(fair, resource=resource, subject=subject, hidden=hidden, n_boot=20)
            shown = set(t.loc[~t["suppressed"].astype(bool), "level"])
            assert not shown & set(report.loc[report["suppressed"].astype(bool), "level"]), (
                resource,
                subject,
            )
            assert t.loc[t["suppressed"].astype(bool), ["n", "estimate", "difference"]].isna().all().all()
    # a stricter cut and a named reference: still no small cell and no lone complement
    t = explore_gaps(
        fair,
        variable="race_ethnicity",
        reference="white",
        cuts={"grade_appropriate": 5},
        hidden=hidden,
        n_boot=20,
    )
    assert (t.loc[~t["suppressed"].astype(bool), "n"] >= 10).all() and t["suppressed"].sum() != 1


def test_explorer_controls_labels_and_banner(district):
    pytest.importorskip("ipywidgets")
    from opportunity_research.report.explore import ALL_OTHERS_CHOICE, Explorer

    ex = Explorer(["demo_pinebrook"], n_boot=20)
    c = ex.controls
    assert c["reference"].value == ALL_OTHERS_CHOICE and c["reference"].label == "All other students"
    assert all(v is not None for v in (c["district"].value, c["resource"].value, c["subject"].value))
    c["variable"].value = "low_income"
    assert [lab for lab, _ in c["reference"].options] == [
        "All other students",
        "Students not from low-income families",
        "Low-income students",
    ]
    assert (
        "For analysts with access to this district's data" in ex.banner.value
        and "writes nothing" in ex.banner.value
    )
    # what the table output shows (outside a kernel, an Output widget captures nothing: rebuild it the same way)
    from opportunity_research.report.presentation import gaps_table

    html = gaps_table(ex.table, c["resource"].value, min_n=ex.min_n)._repr_html_()
    for raw in ("hispanic_latino", "reference_n", "low_income", ">0<", ">1<"):
        assert raw not in html, raw
    import re

    diffs = re.findall(r'data-label="Difference \(points\)">([^<]*)<', html)
    assert diffs and not any("%" in d for d in diffs) and "Low-income students" in html
    c["cut_grade_appropriate"].value = 5
    assert "at least 5 of 6 (TNTP’s default: 4)" in ex.status.value
