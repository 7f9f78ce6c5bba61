"""Synthetic students' records beside the assessments: climate surveys, attendance, advanced courses,
programs and the district's goals (each with its ``truth.json`` entry where the analyses must recover one).

Examples
--------
>>> from opportunity_research.synth.specs import DISTRICTS
>>> len(district_goals(DISTRICTS[0]))
6
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..intake.contract import CLIMATE_ITEMS
from .draws import expit, group_truth, make_ids, mc_reps
from .specs import ANALYSIS_YEAR, CLIMATE_EFFECTS

__all__ = ["district_goals", "gen_advanced", "gen_attendance", "gen_climate", "gen_programs"]


def _climate_means(rng, st, year_shift):
    """Deterministic part of each student's latent climate score per scale (school effects drawn here)."""
    out = {}
    for scale, (mu, b_li, b_el, b_dis, b_poc) in CLIMATE_EFFECTS.items():
        school_eff = rng.normal(0, 0.12, len(st["levels"]))
        out[scale] = (
            mu
            + year_shift
            + b_li * st["low_income"]
            + b_el * st["english_learner"]
            + b_dis * st["disability"]
            + b_poc * st["poc"]
            + school_eff[st["school_of"]]
        )
    return out


def _climate_items(rng, means, reps=1, dtype=np.int64):
    """Item responses 1-5: latent = mean + person noise, item = round(latent + item noise), clipped."""
    cols = {}
    for scale, items in CLIMATE_ITEMS.items():
        latent = np.tile(means[scale], reps)
        latent = latent + rng.normal(0, 0.6, len(latent))
        for item in items:
            cols[item] = np.clip(np.round(latent + rng.normal(0, 0.55, len(latent))), 1, 5).astype(dtype)
    return cols


def gen_climate(rng, st, student_ids, L):
    """Climate survey responses of two years (about 85% respond) and their expected scale scores by group.

    ``st`` holds the students' arrays (grade, school, race, program flags); ``L`` prefixes the response ids.
    Returns the ``climate_surveys`` table and its ``truth.json`` entry.

    Examples
    --------
    >>> import numpy as np
    >>> from opportunity_research.synth.draws import make_ids
    >>> st = {"grade": np.array([3, 4, 6, 7, 9, 11]), "latent": np.zeros(6), "low_income": np.array([1, 0, 1, 0, 1, 0]),
    ...       "english_learner": np.array([0, 0, 1, 0, 0, 0]), "disability": np.array([0, 1, 0, 0, 0, 0]),
    ...       "poc": np.array([1, 1, 0, 0, 1, 0]), "race": np.array(["black", "black", "white", "white", "latino", "white"]),
    ...       "levels": np.array([0, 1]), "school_of": np.array([0, 0, 0, 1, 1, 1])}
    >>> rng, ids = np.random.default_rng(0), make_ids("X", 6, 3)
    >>> table, truth = gen_climate(rng, st, ids, "D")
    >>> table["response_id"].iloc[0], sorted(truth["years"]) == [str(y) for y in (ANALYSIS_YEAR - 1, ANALYSIS_YEAR)]
    ('DCS0000001', True)
    """
    frames, truth = [], {}
    n = len(st["grade"])
    for year, shift in ((ANALYSIS_YEAR - 1, -0.05), (ANALYSIS_YEAR, 0.0)):
        responded = rng.random(n) < 0.85
        means = _climate_means(rng, st, shift)
        items = _climate_items(rng, means)
        frames.append(
            pd.DataFrame(
                {
                    "student_id": student_ids[responded],
                    "school_year": year,
                    **{k: v[responded] for k, v in items.items()},
                }
            )
        )
        # truth: expected scale score and favorable share by group, by Monte Carlo over fresh response noise
        reps = mc_reps(n)
        items_mc = _climate_items(np.random.default_rng(rng.integers(2**63)), means, reps, dtype=np.int8)
        group = pd.DataFrame(
            {
                v: np.tile(st[k], reps)
                for k, v in (
                    ("race", "race_ethnicity"),
                    ("low_income", "low_income"),
                    ("english_learner", "english_learner"),
                    ("disability", "disability"),
                )
            }
        )
        ytruth = {}
        for scale, its in CLIMATE_ITEMS.items():
            score = np.mean([items_mc[i] for i in its], axis=0)
            by_group = group_truth(group.assign(score=score, started_behind=0), "score")
            by_group.pop("started_behind")
            ytruth[scale] = {
                "mean_score": float(score.mean()),
                "favorable_share": float((score >= 4).mean()),
                "score_by_group": by_group,
            }
        truth[str(year)] = ytruth
    table = pd.concat(frames, ignore_index=True)
    table.insert(0, "response_id", make_ids(f"{L}CS", len(table), 7))
    return table, {
        "definition": "scale score = mean of the scale's items (1-5); favorable = score >= 4; "
        "expected values over response noise for the district's students (all students, "
        "not only responders)",
        "years": truth,
    }


def gen_attendance(rng, st, student_ids):
    """Days enrolled and present of every student in two years, and the realized chronic-absence rates.

    Examples
    --------
    >>> import numpy as np
    >>> from opportunity_research.synth.draws import make_ids
    >>> st = {"grade": np.array([3, 4, 6, 7, 9, 11]), "latent": np.zeros(6), "low_income": np.array([1, 0, 1, 0, 1, 0]),
    ...       "english_learner": np.array([0, 0, 1, 0, 0, 0]), "disability": np.array([0, 1, 0, 0, 0, 0]),
    ...       "poc": np.array([1, 1, 0, 0, 1, 0]), "race": np.array(["black", "black", "white", "white", "latino", "white"]),
    ...       "levels": np.array([0, 1]), "school_of": np.array([0, 0, 0, 1, 1, 1])}
    >>> rng, ids = np.random.default_rng(0), make_ids("X", 6, 3)
    >>> table, truth = gen_attendance(rng, st, ids)
    >>> len(table), bool((table["days_present"] <= table["days_enrolled"]).all())
    (12, True)
    """
    n = len(st["grade"])
    frames = []
    truth = {}
    for year in (ANALYSIS_YEAR - 1, ANALYSIS_YEAR):
        enrolled = rng.integers(150, 181, n)
        p_absent_mean = expit(-2.9 + 0.6 * st["low_income"] + 0.3 * st["disability"] - 0.2 * st["latent"])
        rate = np.clip(rng.beta(2, 2 / p_absent_mean - 2), 0, 0.6)
        present = np.round(enrolled * (1 - rate)).astype(np.int64)
        frames.append(
            pd.DataFrame(
                {
                    "student_id": student_ids,
                    "school_year": year,
                    "days_enrolled": enrolled,
                    "days_present": present,
                }
            )
        )
        truth[str(year)] = {"chronic_absence_rate_realized": float((present < 0.9 * enrolled).mean())}
    return pd.concat(frames, ignore_index=True), {
        "definition": "chronically absent = present < 90% of days enrolled",
        "years": truth,
    }


def gen_advanced(rng, st, student_ids):
    """Advanced courses taken in the analysis year (gifted, accelerated, honors or AP by grade).

    Examples
    --------
    >>> import numpy as np
    >>> from opportunity_research.synth.draws import make_ids
    >>> st = {"grade": np.array([3, 4, 6, 7, 9, 11]), "latent": np.zeros(6), "low_income": np.array([1, 0, 1, 0, 1, 0]),
    ...       "english_learner": np.array([0, 0, 1, 0, 0, 0]), "disability": np.array([0, 1, 0, 0, 0, 0]),
    ...       "poc": np.array([1, 1, 0, 0, 1, 0]), "race": np.array(["black", "black", "white", "white", "latino", "white"]),
    ...       "levels": np.array([0, 1]), "school_of": np.array([0, 0, 0, 1, 1, 1])}
    >>> rng, ids = np.random.default_rng(0), make_ids("X", 6, 3)
    >>> table = gen_advanced(rng, st, ids)
    >>> list(table.columns), set(table["course_type"]) <= {"gifted", "accelerated", "honors", "ap"}
    (['student_id', 'school_year', 'course_type'], True)
    """
    g = st["grade"]
    p = expit(
        -1.6 + 1.1 * st["latent"] - 0.35 * st["low_income"] - 0.3 * st["poc"] - 1.0 * st["english_learner"]
    )
    take = rng.random(len(g)) < p
    kind = np.where(
        g <= 5, "gifted", np.where(g <= 8, "accelerated", np.where(rng.random(len(g)) < 0.5, "honors", "ap"))
    )
    return pd.DataFrame(
        {"student_id": student_ids[take], "school_year": ANALYSIS_YEAR, "course_type": kind[take]}
    )


def gen_programs(rng, st, student_ids, behind):
    """Program participation in the analysis year; ``behind`` (students x subjects) raises tutoring.

    Examples
    --------
    >>> import numpy as np
    >>> from opportunity_research.synth.draws import make_ids
    >>> st = {"grade": np.array([3, 4, 6, 7, 9, 11]), "latent": np.zeros(6), "low_income": np.array([1, 0, 1, 0, 1, 0]),
    ...       "english_learner": np.array([0, 0, 1, 0, 0, 0]), "disability": np.array([0, 1, 0, 0, 0, 0]),
    ...       "poc": np.array([1, 1, 0, 0, 1, 0]), "race": np.array(["black", "black", "white", "white", "latino", "white"]),
    ...       "levels": np.array([0, 1]), "school_of": np.array([0, 0, 0, 1, 1, 1])}
    >>> rng, ids = np.random.default_rng(0), make_ids("X", 6, 3)
    >>> table = gen_programs(rng, st, ids, np.ones((6, 2), dtype=bool))
    >>> set(table["program"]) <= {"tutoring", "english_learner_services", "after_school", "extracurricular"}
    True
    """
    n = len(st["grade"])
    parts = []
    for prog, p in (
        ("tutoring", 0.10 + 0.25 * behind.max(1)),
        ("english_learner_services", 0.9 * st["english_learner"]),
        ("after_school", np.full(n, 0.18)),
        ("extracurricular", 0.45 - 0.15 * st["low_income"]),
    ):
        take = rng.random(n) < p
        parts.append(
            pd.DataFrame({"student_id": student_ids[take], "school_year": ANALYSIS_YEAR, "program": prog})
        )
    return pd.concat(parts, ignore_index=True)


def district_goals(spec):
    """The district's goals table (the same six goals for every district).

    Examples
    --------
    >>> from opportunity_research.synth.specs import DISTRICTS
    >>> district_goals(DISTRICTS[0])["goal_id"].tolist()
    ['G1', 'G2', 'G3', 'G4', 'G5', 'G6']
    """
    rows = [
        (
            "G1",
            "grade_appropriate_share",
            "all",
            ANALYSIS_YEAR,
            0.40,
            ANALYSIS_YEAR + 2,
            "Raise the share of assignments that are grade-appropriate to 40% by 2018-19.",
        ),
        (
            "G2",
            "strong_instruction_share",
            "low_income=1",
            ANALYSIS_YEAR,
            0.30,
            ANALYSIS_YEAR + 2,
            "Low-income students: strong instruction in 30% of observed lessons by 2018-19.",
        ),
        (
            "G3",
            "belonging_favorable",
            "all",
            ANALYSIS_YEAR - 1,
            0.55,
            ANALYSIS_YEAR + 1,
            "55% of students report belonging (favorable) by 2017-18.",
        ),
        (
            "G4",
            "catch_up_rate",
            "all",
            ANALYSIS_YEAR - 1,
            0.35,
            ANALYSIS_YEAR + 1,
            "35% of students below grade level reach grade level within three years.",
        ),
        (
            "G5",
            "chronic_absence_rate",
            "all",
            ANALYSIS_YEAR - 1,
            0.08,
            ANALYSIS_YEAR + 1,
            "Cut chronic absence to 8% by 2017-18.",
        ),
        (
            "G6",
            "engaged_share",
            "race_ethnicity=native_hawaiian_pacific_islander",
            ANALYSIS_YEAR,
            0.6,
            ANALYSIS_YEAR + 2,
            "Engagement of Native Hawaiian or Pacific Islander students at 60% (small group).",
        ),
    ]
    return pd.DataFrame(
        rows, columns=["goal_id", "measure", "group", "baseline_year", "target", "target_year", "description"]
    )
