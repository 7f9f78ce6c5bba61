"""analyze_district's options (cut points, subjects, reference groups) and the district notebook run with
non-default parameters."""

from __future__ import annotations

import json

import nbformat
import pytest

from opportunity_research import config
from opportunity_research.disclosure.district import analyze_district
from opportunity_research.study import analysis, measures
from opportunity_research.study.analysis import check_analysis_options, reference_label

pytestmark = pytest.mark.long(20)  # run first (tests/conftest.py)

DISTRICT = "demo_pinebrook"


@pytest.fixture(scope="module")
def processed():
    if not (config.processed_dir() / DISTRICT / "manifest.json").exists():
        pytest.skip("demo data not processed: run `make process`")
    return DISTRICT


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"cuts": {"engagement": 9}}, "cuts: unknown cut point 'engagement'"),
        ({"cuts": {"engaged": 13}}, "cuts: engaged must be a number from 0 to 12 (got 13)"),
        ({"cuts": {"engaged": "8"}}, "cuts: engaged must be a number from 0 to 12 (got '8')"),
        ({"subjects": "ela"}, "subjects: give a list of tested subjects"),
        (
            {"subjects": ["ELA"]},
            "subjects: 'ELA' is not a tested subject; use ela, math (did you mean 'ela'?)",
        ),
        ({"reference": {"race": "white"}}, "reference: 'race' is not a student group variable"),
        ({"reference": {"race_ethnicity": "White"}}, "reference: 'White' is not a level of race_ethnicity"),
        ({"reference": {"low_income": 2}}, "reference: 2 is not a level of low_income; use one of 0, 1"),
    ],
)
def test_unusable_options_are_refused_with_the_option_named(kwargs, message):
    with pytest.raises(ValueError) as exc:
        check_analysis_options(**kwargs)
    assert message in str(exc.value)


@pytest.fixture(scope="module")
def cut_analyses(processed):
    """The district's analysis with the grade-appropriate cut at 4 (the default) and at 5."""
    return {
        4: analyze_district(processed, n_boot=20),
        5: analyze_district(processed, cuts={"grade_appropriate": 5}, n_boot=20),
    }


def _grade_appropriate(a) -> float:
    return float(
        a.rates.loc[
            (a.rates["resource"] == "grade_appropriate") & (a.rates["subject"] == "all"), "estimate"
        ].iloc[0]
    )


def test_a_cut_point_changes_the_rates_as_scored_by_hand(processed, cut_analyses):
    d = analysis.load_district(processed)
    a4, a5 = cut_analyses[4], cut_analyses[5]
    score = d.assignments[["content", "practice", "relevance"]].sum(axis=1, min_count=3).dropna()
    assert (score >= 4).mean() != (score >= 5).mean()  # the two cuts give two rates
    for a, cut in ((a4, 4), (a5, 5)):
        assert _grade_appropriate(a) == pytest.approx((score >= cut).mean(), abs=1e-12)
        assert a.cuts["grade_appropriate"] == cut and a.cuts["engaged"] == 8
    # the other resources do not move
    other = a4.rates["resource"] != "grade_appropriate"
    assert a4.rates.loc[other, "estimate"].tolist() == a5.rates.loc[other, "estimate"].tolist()


def test_reference_groups_reach_the_gap_tables_and_the_labels(processed):
    a = analyze_district(processed, reference={"race_ethnicity": "white"}, subjects=["math"], n_boot=20)
    race = a.gaps[a.gaps["group"] == "race_ethnicity"]
    assert set(race["reference"].astype(str)) == {"white"} and "white" not in set(race["level"].astype(str))
    assert set(a.gaps["subject"]) == {"math"}
    assert a.reference_label("race_ethnicity") == "White students"
    assert a.reference_label("low_income") == "all other students"
    assert reference_label({}) == "all other students"


def test_analysis_year_from_the_manifest_drives_growth(processed):
    d = analysis.load_district(processed)
    assert measures.analysis_year(d) == d.manifest.get("analysis_year", 2016) == 2016


def test_district_notebook_runs_with_another_district_reference_and_cuts(processed, cut_analyses, tmp_path):
    import papermill as pm

    out_nb = tmp_path / "report.ipynb"
    pm.execute_notebook(
        str(config.project_root() / "notebooks" / "district_report.ipynb"),
        str(out_nb),
        parameters={
            "district_id": DISTRICT,
            "reference_groups": {"race_ethnicity": "white"},
            "cuts": {"grade_appropriate": 5, "engaged": 9},
            "n_boot": 30,
            "output_dir": str(tmp_path / "out"),
        },
        cwd=str(config.project_root()),
        kernel_name="python3",
        progress_bar=False,
    )
    nb = nbformat.read(out_nb, as_version=4)
    text = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "did not converge" not in "".join(
        o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stderr"
    )
    found = json.loads((tmp_path / "out" / "findings.json").read_text())
    assert found["district_id"] == DISTRICT
    assert found["parameters"]["cuts"] == {"grade_appropriate": 5, "engaged": 9}
    assert found["parameters"]["reference_groups"] == {"race_ethnicity": "white"}
    # the notebook's rate of grade-appropriate assignments is the analysis' with its cut at 5 (the rate reads that
    # cut alone: no other cut, reference group, seed or replicate count; and it differs at the default cut, 4)
    assert found["resources"]["grade_appropriate"]["estimate"] == pytest.approx(
        _grade_appropriate(cut_analyses[5])
    )
    assert "filterwarnings" not in text


def test_output_folder_follows_the_district_id():
    nb = nbformat.read(config.project_root() / "notebooks" / "district_report.ipynb", as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assert 'output_dir = ""' in params.source and 'demo_lakeside"' not in params.source.split("output_dir")[1]
    assert all(
        "#" in line for line in params.source.splitlines() if "=" in line
    )  # every parameter documented
    setup = nb.cells[nb.cells.index(params) + 1].source
    assert 'output_dir = output_dir or f"reports/_interactive/{district_id}"' in setup
    assert "filterwarnings" not in setup
