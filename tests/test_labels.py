"""The label registry: every identifier a report shows has a human label, and numbers read one way."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from opportunity_research.intake.contract import GOAL_MEASURES, RACE_ETHNICITY, SUBGROUP_VARIABLES
from opportunity_research.report.tables import render
from opportunity_research.study import labels
from opportunity_research.study.measures import RESOURCES


@pytest.mark.parametrize("code", list(GOAL_MEASURES) + list(RESOURCES) + ["met_demands", "met_grade_level"])
def test_every_measure_has_a_label(code):
    assert code in labels.MEASURES and "_" not in labels.measure(code)


@pytest.mark.parametrize("var", list(SUBGROUP_VARIABLES))
def test_every_group_variable_and_level_reads_as_words(var):
    assert "_" not in labels.variable(var)
    levels = list(RACE_ETHNICITY) if var == "race_ethnicity" else [0, 1, 0.0, 1.0, "0", "1.0", True]
    for lv in levels:
        text = labels.level(var, lv)
        assert "_" not in text and not any(ch.isdigit() for ch in text), (var, lv, text)


def test_levels_spelled_as_floats_or_strings_agree():
    assert (
        labels.level("low_income", 1.0) == labels.level("low_income", "1") == labels.level("low_income", True)
    )
    assert labels.level("started_behind", np.float64(0.0)) == "Students who started at grade level"
    assert labels.group("low_income=1.0") == "Low-income students" and labels.group("all") == "All students"
    assert labels.level_phrase("disability", 1) == "students with disabilities"
    assert labels.level_phrase("race_ethnicity", "black") == "Black or African American students"


def test_number_formats():
    assert labels.year(2016.0) == "2016" and labels.year(np.int64(2016)) == "2016"  # never "2,016"
    assert labels.school_year(2016) == "2016-17" and labels.school_year(1999) == "1999-00"
    assert (
        labels.count(29.0) == "29" and labels.count(1234) == "1,234" and labels.count(pd.NA) == labels.MISSING
    )
    assert labels.percent(0.2634) == "26%" and labels.percent(0.2634, 1) == "26.3%"
    assert labels.percent(-0.001) == "0%"  # no "-0%"
    assert (
        labels.points(-0.0521) == "−5.2" and labels.points(0.0521) == "+5.2" and labels.points(0.0) == "0.0"
    )
    assert labels.percent(float("nan")) == labels.MISSING


def test_columns_fall_back_to_readable_words():
    assert labels.column("ci_lower") == "95% interval, low"
    assert labels.column("n_schools") == "Schools"
    assert labels.column("some_new_column") == "Some new column"
    assert labels.school("S1", {"S1": "Oak Elementary"}) == "Oak Elementary" and labels.school("S9") == "S9"
    assert labels.subject("ela") == "ELA" and labels.subject("social_studies") == "Social studies"


def test_long_date_has_no_leading_zero_and_names_the_month():
    assert labels.long_date(dt.date(2026, 12, 6)) == "6 December 2026"
    assert labels.long_date(dt.datetime(2027, 1, 31, 23, 59)) == "31 January 2027"


def test_the_printed_running_foot_writes_todays_date_in_the_one_form():
    html = render("base.html.j2", title="A page")
    today = dt.datetime.now(dt.UTC)
    # the foot is rendered into CSS; either side of midnight UTC the date is one of these two
    forms = {labels.long_date(today), labels.long_date(today - dt.timedelta(minutes=1))}
    assert any(f"Generated {f} by opportunity-research" in html for f in forms)
