"""Synthetic demo districts with planted, documented truths.

``synthesize()`` writes five districts of different size and make-up into ``data/raw/`` that
pass the data contract and look like *The Opportunity Myth*'s sample (about 4,000 students and
260 teachers, grades 3-12). Beside each district's CSV files it writes ``truth.json``: the
values the generator planted, which the analyses must recover (access rates per resource and
subgroup, classroom-composition contrasts, the growth effect of each resource and its extra
effect for students who started behind, variance components, catch-up rates, climate-scale
differences). Everything is vectorized (no per-student Python loops), so ``--students
1000000`` runs on a 2-core machine, and deterministic for a given seed.

How the data are generated (what ``truth.json`` means)
-----------------------------------------------------
* Students sit in schools that differ in the share of students of colour and of low-income
  students; within a school and grade, students are tracked into sections by prior achievement,
  so sections differ in composition and prior achievement.
* Each section ``c`` gets, for each resource, a probability ``p_c`` (logit-linear in the
  section's share of students of colour, share of low-income students and mean prior
  achievement, plus a random section effect). Its evidence is drawn from ``p_c``: each
  assignment is grade-appropriate with probability ``p_c`` (its three 0-2 ratings are then drawn
  among the combinations whose sum is >= 4, or < 4), likewise observations (IPG composite >= 2),
  engagement moments (four items summing to >= 8) and the teacher's expectations survey. The
  logit intercepts are solved so that, pooled over the five districts, the expected shares hit
  the study's headline figures (26%, 16%, 55%, 44% of teachers; 71% / 17% of work samples).
* ``truth.json["access"][resource][subject]`` gives, for each student group, the expected mean
  section-level share over the group's students in that subject, i.e. the estimand of the
  student-level exposure measure; differences are against all other students.
* Spring scores are generated from the standardized fall score *as the analysis computes it*,
  the *observed* section-level access shares, their interaction with "started behind" (fall
  score below the grade-level cut), student characteristics, and school and section random
  intercepts. Effects are in standard-deviation units of the spring score.
* Earlier years follow a catch-up process in grade-level units; catch-up rates and growth rates
  in ``truth.json`` are expectations computed by Monte Carlo over fresh noise for the same
  students.

Examples
--------
>>> import tempfile, json, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> paths = synthesize(out, seed=1, students=400)
>>> sorted(p.name for p in paths)[:2]
['demo_fairview', 'demo_hillcrest']
>>> "access" in json.loads((paths[0] / "truth.json").read_text())
True
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .. import config
from ..intake.contract import (
    ENGAGEMENT_ITEMS,
    EXPECTATION_ITEMS_CURRENT,
    EXPECTATION_ITEMS_OLD,
    RESOURCES,
)
from .draws import (
    ASSIGN,
    ASSIGN_GOOD,
    ENG,
    ENG_GOOD,
    EXP_CUR,
    EXP_CUR_GOOD,
    EXP_OLD,
    EXP_OLD_GOOD,
    OBS,
    OBS_GOOD,
    OLD_NAMES,
    expit,
    group_truth,
    logit,
    make_ids,
    mc_reps,
    pick_rows,
    solve_intercept,
    standardize,
)
from .records import district_goals, gen_advanced, gen_attendance, gen_climate, gen_programs
from .specs import (
    ANALYSIS_YEAR,
    BEHIND_EXTRA,
    DISTRICTS,
    GRADES,
    GROWTH_EFFECTS,
    GROWTH_OTHER,
    METRO,
    POC,
    RESOURCE_SLOPES,
    TARGETS,
    VAR_CLASSROOM,
    VAR_SCHOOL,
    DistrictSpec,
)
from .writer import CsvSink

__all__ = ["DISTRICTS", "METRO", "TARGETS", "generate_districts", "synthesize", "synthesize_district"]


def _gen_students(rng, spec, n_students, scale=1):
    """Schools and students of one district (before sections); ``scale`` multiplies the number of schools."""
    n_el, n_mid, n_high = (k * scale for k in spec.schools)
    levels = ["elementary"] * n_el + ["middle"] * n_mid + ["high"] * n_high
    n_grades = np.array([len(GRADES[lv]) for lv in levels], dtype=float)
    size_w = n_grades * rng.uniform(0.75, 1.25, len(levels))
    school_of = np.sort(rng.choice(len(levels), size=n_students, p=size_w / size_w.sum()))
    school_poc = expit(logit(spec.poc_share) + rng.normal(0, spec.segregation, len(levels)))
    first = np.array([GRADES[lv][0] for lv in levels])
    grade = first[school_of] + (rng.random(n_students) * n_grades[school_of]).astype(np.int64)
    poc = rng.random(n_students) < school_poc[school_of]
    mix = np.array(spec.poc_mix) / np.sum(spec.poc_mix)
    # object arrays of a few shared strings: 8 bytes a student, not 128 for a 32-character NumPy string
    race = np.where(poc, np.array(POC, dtype=object)[rng.choice(len(POC), size=n_students, p=mix)], "white")
    low_income = (
        rng.random(n_students)
        < expit(
            spec.low_income_base + 1.0 * (poc - spec.poc_share) + rng.normal(0, 0.3, len(levels))[school_of]
        )
    ).astype(np.int8)
    el_p = np.where(np.isin(race, ["hispanic_latino", "asian"]), 0.28, 0.04)
    english_learner = (rng.random(n_students) < el_p).astype(np.int8)
    disability = (rng.random(n_students) < 0.13).astype(np.int8)
    gender = np.array(["female", "male", "nonbinary"], dtype=object)[
        rng.choice(3, size=n_students, p=[0.49, 0.49, 0.02])
    ]
    school_eff = rng.normal(0, 0.25, len(levels))
    latent = (
        school_eff[school_of]
        - 0.35 * low_income
        - 0.20 * poc
        - 0.35 * english_learner
        - 0.45 * disability
        + rng.normal(0, 0.9, n_students)
    )
    return {
        "levels": levels,
        "school_of": school_of,
        "grade": grade,
        "race": race,
        "poc": poc.astype(np.int8),
        "low_income": low_income,
        "english_learner": english_learner,
        "disability": disability,
        "gender": gender,
        "latent": latent,
    }


def _gen_sections(rng, st, elementary_class=23, secondary_class=26):
    """Track students into sections per school, grade and subject (vectorized).

    Within a school and grade, students are ranked by prior achievement plus noise and cut into
    ``round(n / class size)`` sections. Elementary homerooms keep the same students and teacher for ELA
    and math; secondary sections each have their own teacher.
    """
    n = len(st["grade"])
    elem = (np.array(st["levels"]) == "elementary")[st["school_of"]]
    cell = st["school_of"] * 100 + st["grade"]  # school-grade cell
    _, cell_idx, cell_n = np.unique(cell, return_inverse=True, return_counts=True)
    size = np.where(elem, elementary_class, secondary_class)
    k = np.maximum(1, np.round(cell_n[cell_idx] / size)).astype(np.int64)
    noise = rng.normal(0, 0.6, (2, n))
    parts = []
    for j, subject in enumerate(("ela", "math")):
        key = (
            st["latent"] + noise[0 if j == 0 else 1] * np.where(elem, 0, 1) + noise[0] * np.where(elem, 1, 0)
        )
        order = np.lexsort((key, cell_idx))
        rank = np.empty(n, dtype=np.int64)
        starts = np.r_[0, np.cumsum(np.bincount(cell_idx))[:-1]]
        rank[order] = np.arange(n) - starts[cell_idx[order]]
        part = rank * k // cell_n[cell_idx]  # section number within the cell, 0..k-1
        parts.append(
            pd.DataFrame(
                {"student": np.arange(n), "cell": cell_idx, "part": part, "subject": subject, "elem": elem}
            )
        )
    enroll = pd.concat(parts, ignore_index=True)
    sections = (
        enroll.groupby(["subject", "cell", "part"], sort=True)
        .agg(elem=("elem", "first"))
        .reset_index()
        .sort_values(["cell", "subject", "part"], kind="stable")
        .reset_index(drop=True)
    )
    sections["sec"] = np.arange(len(sections))
    first_student = pd.Series(np.arange(n)).groupby(cell_idx).first()
    sections["school"] = st["school_of"][first_student.to_numpy()[sections["cell"]]]
    sections["grade"] = st["grade"][first_student.to_numpy()[sections["cell"]]]
    # teachers: one per secondary section; one per elementary homeroom (shared by its ELA and math sections)
    homeroom = sections["elem"] & (sections["subject"] == "math")
    sections["teacher"] = -1
    own = ~homeroom
    sections.loc[own, "teacher"] = np.arange(own.sum())
    ela_teacher = sections[sections["elem"] & (sections["subject"] == "ela")].set_index(["cell", "part"])[
        "teacher"
    ]
    sections.loc[homeroom, "teacher"] = ela_teacher.reindex(
        pd.MultiIndex.from_frame(sections.loc[homeroom, ["cell", "part"]])
    ).to_numpy()
    enroll = enroll.merge(sections[["subject", "cell", "part", "sec"]], on=["subject", "cell", "part"])
    enroll = enroll.sort_values(["sec", "student"], kind="stable")[["student", "sec"]].reset_index(drop=True)
    return sections[["sec", "school", "teacher", "subject", "grade"]], enroll


def _section_composition(sections, enroll, st):
    df = enroll.assign(
        poc=st["poc"][enroll.student], li=st["low_income"][enroll.student], z=st["latent"][enroll.student]
    )
    comp = df.groupby("sec").agg(
        n=("student", "size"), poc=("poc", "mean"), li=("li", "mean"), z=("z", "mean")
    )
    return sections.join(comp, on="sec")


def generate_districts(seed: int, total_students: int, specs=DISTRICTS) -> dict[str, dict]:
    """Generate every district in memory; returns {district_id: {"tables": ..., "truth": ...}}.

    Examples
    --------
    >>> d = generate_districts(1, 400)
    >>> sorted(d), sorted(d["demo_lakeside"])
    (['demo_fairview', 'demo_hillcrest', 'demo_lakeside', 'demo_pinebrook', 'demo_riverton'], ['tables', 'truth'])
    >>> len(d["demo_lakeside"]["tables"]["students"]) > 0
    True
    """
    stage, icpt = _prepare(seed, total_students, specs)
    return {d["spec"].district_id: _finish_district(d, icpt) for d in stage}


def _prepare(
    seed: int, total_students: int, specs=DISTRICTS, scale: int | None = None
) -> tuple[list[dict], dict]:
    """Students, sections and the pooled calibration of every district (the tables come later, one district
    at a time, from :func:`_finish_district`)."""
    root = np.random.SeedSequence(seed)
    rngs = [np.random.default_rng(s) for s in root.spawn(len(specs))]
    stage = []
    for spec, rng in zip(specs, rngs):
        n = max(60, round(total_students * spec.share))
        st = _gen_students(rng, spec, n, scale=scale or max(1, round(total_students / 4000)))
        sections, enroll = _gen_sections(rng, st)
        sections = _section_composition(sections, enroll, st)
        lin = {}
        for r, (b_poc, b_li, b_z, sd) in RESOURCE_SLOPES.items():
            lin[r] = (
                spec.resource_shift
                + b_poc * (sections.poc - 0.5)
                + b_li * (sections.li - 0.5)
                + b_z * sections.z
                + rng.normal(0, sd, len(sections))
            ).to_numpy()
        # evidence volume per section (~5,000 assignments, ~1,000 observations, ~30,000 moments for 4,000)
        n_assign = rng.poisson(13, len(sections)) + 3
        n_obs = rng.poisson(2.0, len(sections)) + 2
        stage.append(
            {
                "spec": spec,
                "rng": rng,
                "st": st,
                "sections": sections,
                "enroll": enroll,
                "lin": lin,
                "n_assign": n_assign,
                "n_obs": n_obs,
            }
        )
    # engagement: per enrollment, Poisson(3.8)+0 moments, with a student-level effect
    for d in stage:
        rng = d["rng"]
        m = rng.poisson(3.8, len(d["enroll"]))
        d["eng_rows"] = np.repeat(np.arange(len(d["enroll"])), m)
        stud_eff = rng.normal(0, 0.5, len(d["st"]["grade"]))
        sec = d["enroll"].sec.to_numpy()[d["eng_rows"]]
        stu = d["enroll"].student.to_numpy()[d["eng_rows"]]
        level_shift = np.where(d["sections"].grade.to_numpy()[sec] <= 5, 0.7, -0.25)
        d["eng_lin"] = d["lin"]["engaged"][sec] + stud_eff[stu] + level_shift
    # pooled calibration of the logit intercepts
    icpt = {}
    icpt["grade_appropriate"] = solve_intercept(
        np.concatenate([d["lin"]["grade_appropriate"] for d in stage]),
        np.concatenate([d["n_assign"] for d in stage]).astype(float),
        TARGETS["grade_appropriate"],
    )
    icpt["strong_instruction"] = solve_intercept(
        np.concatenate([d["lin"]["strong_instruction"] for d in stage]),
        np.concatenate([d["n_obs"] for d in stage]).astype(float),
        TARGETS["strong_instruction"],
    )
    eng_lin = np.concatenate([d["eng_lin"] for d in stage])
    icpt["engaged"] = solve_intercept(eng_lin, np.ones_like(eng_lin), TARGETS["engaged"])
    he = np.concatenate([d["lin"]["high_expectations"] for d in stage])
    icpt["high_expectations"] = solve_intercept(he, np.ones_like(he), TARGETS["high_expectations"])
    return stage, icpt


def _finish_district(d, icpt, tables: dict | None = None):
    spec, rng, st, sections, enroll = d["spec"], d["rng"], d["st"], d["sections"], d["enroll"]
    L = spec.letter
    n_st, n_sec = len(st["grade"]), len(sections)
    p = {
        r: expit(icpt[r] + d["lin"][r])
        for r in ("grade_appropriate", "strong_instruction", "high_expectations")
    }
    p_eng_resp = expit(icpt["engaged"] + d["eng_lin"])
    school_ids = make_ids(f"{L}SCH", len(st["levels"]), 3)
    student_ids = make_ids(L, n_st, 7)
    sec_ids = make_ids(f"{L}C", n_sec, 5)
    teacher_ids = make_ids(f"{L}T", int(sections.teacher.max()) + 1, 5)
    tables = {} if tables is None else tables
    tables["schools"] = pd.DataFrame(
        {
            "school_id": school_ids,
            "school_name": [
                f"{spec.district_id.split('_')[1].title()} {lv.title()} School {i + 1}"
                for i, lv in enumerate(st["levels"])
            ],
            "school_level": st["levels"],
        }
    )
    tables["students"] = pd.DataFrame(
        {
            "student_id": student_ids,
            "school_id": school_ids[st["school_of"]],
            "grade": st["grade"],
            "race_ethnicity": st["race"],
            "low_income": st["low_income"],
            "english_learner": st["english_learner"],
            "disability": st["disability"],
            "gender": st["gender"],
        }
    )
    tables["classrooms"] = pd.DataFrame(
        {
            "classroom_id": sec_ids,
            "school_id": school_ids[sections.school],
            "teacher_id": teacher_ids[sections.teacher],
            "subject": sections.subject,
            "grade": sections.grade,
            "school_year": ANALYSIS_YEAR,
        }
    )
    tables["enrollments"] = pd.DataFrame(
        {"student_id": student_ids[enroll.student], "classroom_id": sec_ids[enroll.sec]}
    )

    # --- assignments and work samples
    a_sec = np.repeat(np.arange(n_sec), d["n_assign"])
    a_ga = rng.random(len(a_sec)) < p["grade_appropriate"][a_sec]
    ratings = pick_rows(rng, ASSIGN, ASSIGN_GOOD, a_ga)
    assignment_ids = make_ids(f"{L}A", len(a_sec), 7)
    tables["assignments"] = pd.DataFrame(
        {
            "assignment_id": assignment_ids,
            "classroom_id": sec_ids[a_sec],
            "content": ratings[:, 0],
            "practice": ratings[:, 1],
            "relevance": ratings[:, 2],
        }
    )
    roster = enroll.sort_values("sec", kind="stable")
    sec_start = np.searchsorted(roster.sec.to_numpy(), np.arange(n_sec))
    sec_size = np.bincount(roster.sec.to_numpy(), minlength=n_sec)
    k = np.minimum(rng.poisson(4.4, len(a_sec)), sec_size[a_sec])
    ws_a = np.repeat(np.arange(len(a_sec)), k)
    pick = sec_start[a_sec[ws_a]] + (rng.random(len(ws_a)) * sec_size[a_sec[ws_a]]).astype(np.int64)
    ws = pd.DataFrame({"a": ws_a, "student": roster.student.to_numpy()[pick]}).drop_duplicates()
    a_ga[ws.a].mean() if len(ws) else TARGETS["grade_appropriate"]
    p_md_ga = min(0.95, TARGETS["met_grade_level"] / TARGETS["grade_appropriate"])
    p_md_other = (TARGETS["met_demands"] - TARGETS["grade_appropriate"] * p_md_ga) / (
        1 - TARGETS["grade_appropriate"]
    )
    ws_ga = a_ga[ws.a.to_numpy()]
    met_dem = rng.random(len(ws)) < np.where(ws_ga, p_md_ga, p_md_other)
    tables["work_samples"] = pd.DataFrame(
        {
            "work_sample_id": make_ids(f"{L}W", len(ws), 8),
            "assignment_id": assignment_ids[ws.a],
            "student_id": student_ids[ws.student],
            "met_demands": met_dem.astype(np.int8),
            "met_grade_level": (met_dem & ws_ga).astype(np.int8),
        }
    )
    del ws, ws_a, pick, ws_ga, met_dem, ratings, roster

    # --- observations
    o_sec = np.repeat(np.arange(n_sec), d["n_obs"])
    o_strong = rng.random(len(o_sec)) < p["strong_instruction"][o_sec]
    obs = pick_rows(rng, OBS, OBS_GOOD, o_strong)
    tables["observations"] = pd.DataFrame(
        {
            "observation_id": make_ids(f"{L}O", len(o_sec), 6),
            "classroom_id": sec_ids[o_sec],
            **{c: obs[:, i] for i, c in enumerate(["ca1a", "ca1b", "ca1c", "ca2", "ca3", "col"])},
        }
    )
    # --- engagement moments
    e_rows = d["eng_rows"]
    e_engaged = rng.random(len(e_rows)) < p_eng_resp
    items = pick_rows(rng, ENG, ENG_GOOD, e_engaged)
    tables["engagement_surveys"] = pd.DataFrame(
        {
            "response_id": make_ids(f"{L}E", len(e_rows), 8),
            "student_id": student_ids[enroll.student.to_numpy()[e_rows]],
            "classroom_id": sec_ids[enroll.sec.to_numpy()[e_rows]],
            **{c: items[:, i] for i, c in enumerate(ENGAGEMENT_ITEMS)},
        }
    )
    del items
    # --- teacher expectations: one response per section; a fifth of teachers on the old form
    high = rng.random(n_sec) < p["high_expectations"]
    old = rng.random(int(sections.teacher.max()) + 1)[sections.teacher.to_numpy()] < 0.2
    cur = pick_rows(rng, EXP_CUR, EXP_CUR_GOOD, high)
    old_items = pick_rows(rng, EXP_OLD, EXP_OLD_GOOD, high)
    ts = pd.DataFrame(
        {
            "response_id": make_ids(f"{L}TS", n_sec, 5),
            "teacher_id": teacher_ids[sections.teacher],
            "classroom_id": sec_ids,
            "form": np.where(old, "old", "current"),
        }
    )
    all_items = list(dict.fromkeys([*EXPECTATION_ITEMS_CURRENT, *EXPECTATION_ITEMS_OLD]))
    for name in all_items:
        col = np.full(n_sec, np.nan)
        if name in EXPECTATION_ITEMS_CURRENT:
            j = list(EXPECTATION_ITEMS_CURRENT).index(name)
            col = np.where(~old, cur[:, j], col)
        if name in EXPECTATION_ITEMS_OLD:
            j = OLD_NAMES.index(name)
            col = np.where(old, old_items[:, j], col)
        ts[name] = pd.array(col, dtype="Int64")
    tables["teacher_surveys"] = ts

    # --- observed section access (as the analysis computes it) and expected access (truth)
    obs_access = pd.DataFrame(
        {
            "grade_appropriate": np.bincount(a_sec, a_ga, n_sec) / np.bincount(a_sec, minlength=n_sec),
            "strong_instruction": np.bincount(o_sec, o_strong, n_sec) / np.bincount(o_sec, minlength=n_sec),
            "engaged": np.bincount(enroll.sec.to_numpy()[e_rows], e_engaged, n_sec)
            / np.bincount(enroll.sec.to_numpy()[e_rows], minlength=n_sec),
            "high_expectations": high.astype(float),
        }
    )
    sec_eng_n = np.bincount(enroll.sec.to_numpy()[e_rows], minlength=n_sec)
    exp_access = pd.DataFrame(
        {
            "grade_appropriate": p["grade_appropriate"],
            "strong_instruction": p["strong_instruction"],
            "engaged": np.bincount(enroll.sec.to_numpy()[e_rows], p_eng_resp, n_sec)
            / np.maximum(sec_eng_n, 1),
            "high_expectations": p["high_expectations"],
        }
    )
    exp_access.loc[sec_eng_n == 0, "engaged"] = np.nan

    # --- assessments: prior springs (catch-up process), then the analysis year fall and spring
    stream = tables.stream("assessments") if isinstance(tables, CsvSink) else None
    assess, traj_truth = _gen_assessments(
        rng, spec, st, sections, enroll, obs_access, student_ids, school_ids, out=stream
    )
    if stream is None:
        assessment_years = sorted(int(y) for y in assess["table"].school_year.unique())
        tables["assessments"] = assess.pop("table")
    else:
        assessment_years = stream.close()
    started_behind = assess["behind"]  # (n_st, 2) for ela, math

    # --- climate, attendance, advanced courses, programs, goals
    truth_climate = None
    if spec.climate:
        tables["climate_surveys"], truth_climate = gen_climate(rng, st, student_ids, L)
    tables["attendance"], truth_att = gen_attendance(rng, st, student_ids)
    tables["advanced_courses"] = gen_advanced(rng, st, student_ids)
    tables["programs"] = gen_programs(rng, st, student_ids, started_behind)
    tables["goals"] = district_goals(spec)

    # --- truth
    rows = enroll.assign(subject=sections.subject.to_numpy()[enroll.sec])
    rows = rows[rows.subject.isin(["ela", "math"])]
    subj_idx = (rows.subject == "math").to_numpy().astype(int)
    frame = pd.DataFrame(
        {
            "race_ethnicity": st["race"][rows.student],
            "low_income": st["low_income"][rows.student],
            "english_learner": st["english_learner"][rows.student],
            "disability": st["disability"][rows.student],
            "started_behind": started_behind[rows.student.to_numpy(), subj_idx],
        }
    )
    access_truth = {}
    for r in RESOURCES:
        access_truth[r] = {}
        for j, subject in enumerate(("ela", "math")):
            f = frame.assign(v=exp_access[r].to_numpy()[rows.sec.to_numpy()])[subj_idx == j].dropna(
                subset=["v"]
            )
            access_truth[r][subject] = {"overall": float(f.v.mean()), "groups": group_truth(f, "v")}
    comp = sections.assign(**{f"p_{r}": exp_access[r] for r in RESOURCES}, n_assign=d["n_assign"])
    maj = comp.poc > 0.5
    hi_inc = comp.li < 0.5
    composition = {
        "n_majority_students_of_color": int(maj.sum()),
        "n_other": int((~maj).sum()),
        "grade_appropriate_ratio_not_majority_poc_vs_majority": float(
            comp.p_grade_appropriate[~maj].mean() / comp.p_grade_appropriate[maj].mean()
        ),
        "strong_instruction_ratio_higher_vs_lower_income": float(
            comp.p_strong_instruction[hi_inc].mean() / comp.p_strong_instruction[~hi_inc].mean()
        ),
        "grade_appropriate_ratio_higher_vs_lower_income": float(
            comp.p_grade_appropriate[hi_inc].mean() / comp.p_grade_appropriate[~hi_inc].mean()
        ),
        "majority_poc_never_grade_appropriate_expected": float(
            ((1 - comp.p_grade_appropriate[maj]) ** comp.n_assign[maj]).mean()
        ),
    }
    truth = {
        "district_id": spec.district_id,
        "note": "Values planted by opportunity_research.synth.districts; see its module docstring for definitions.",
        "n_students": n_st,
        "n_schools": len(school_ids),
        "n_teachers": len(teacher_ids),
        "n_classrooms": n_sec,
        "analysis_year": ANALYSIS_YEAR,
        "calibration_targets": TARGETS,
        "scoring_defaults": {
            "grade_appropriate_cut": 4,
            "strong_instruction_cut": 2,
            "engaged_cut": 8,
            "high_expectations_cut_current": 12,
            "high_expectations_cut_old": 18,
        },
        "access": access_truth,
        "composition": composition,
        "growth": assess["growth_truth"],
        "trajectories": traj_truth,
        "climate": truth_climate,
        "attendance": truth_att,
        "has_climate_surveys": spec.climate,
        "assessment_years": assessment_years,
    }
    return {"tables": tables, "truth": truth}


def _gen_assessments(rng, spec, st, sections, enroll, obs_access, student_ids, school_ids, out=None):
    """Assessment rows (appended chunk by chunk to ``out`` when given, else concatenated) and the truths."""
    n = len(st["grade"])
    grade = st["grade"]
    school = st["school_of"]
    n_schools = len(st["levels"])
    # school growth bumps (grade levels per year above 1 for everyone); one planted trajectory-changing school
    bump = rng.normal(0.0, 0.05, n_schools)
    tc = spec.trajectory_changing_school
    base_shift = np.zeros(n_schools)
    if tc is not None:
        bump[tc] = 0.55
        base_shift[tc] = -0.9
    kappa = 0.12  # extra growth (grade levels per year) for students below grade level
    tables, behind_cols, truth_traj = [] if out is None else out, np.zeros((n, 2), dtype=np.int8), {}
    growth_truth = {}
    years = list(range(ANALYSIS_YEAR - spec.prior_years, ANALYSIS_YEAR))
    for j, subject in enumerate(("ela", "math")):
        a0 = 1.25 * (st["latent"] + rng.normal(0, 0.35, n)) - 0.35 + base_shift[school]
        first_grade = grade - len(years)

        def chain(a_start, noise_rng, size_mult=1, first_grade=first_grade):
            a = np.tile(a_start, size_mult)
            g0 = np.tile(first_grade, size_mult)
            sch = np.tile(school, size_mult)
            out_a, out_obs = [], []
            for t in range(len(years)):
                obs = a + noise_rng.normal(0, 0.3, a.shape)
                out_a.append(a)
                out_obs.append(obs)
                rate = 1 + bump[sch] + kappa * (obs < 0) + noise_rng.normal(0, 0.15, a.shape)
                a = a + (rate - 1)
            return out_a, out_obs, g0

        lat, obs, g0 = chain(a0, rng)
        for t, y in enumerate(years):
            g_t = g0 + t
            tested = g_t >= 3
            a_obs = np.clip(obs[t], -4.5, 3.5)
            tables.append(_score_rows(student_ids[tested], subject, y, "spring", g_t[tested], a_obs[tested]))
        # --- analysis year: fall offset follows the last spring (summer), spring from the growth model
        a_fall_lat = (lat[-1] + (1 + bump[school] - 1)) if years else a0
        a_fall_obs = np.clip(a_fall_lat + rng.normal(0, 0.3, n), -4.5, 3.5)
        behind = (a_fall_obs < 0).astype(np.int8)
        behind_cols[:, j] = behind
        fall_z = standardize(a_fall_obs, grade)
        sec_of = enroll.assign(subject=sections.subject.to_numpy()[enroll.sec]).query("subject == @subject")
        sec_of = sec_of.set_index("student").sec.reindex(np.arange(n)).to_numpy()
        acc = obs_access.to_numpy()[sec_of]  # (n, 4)
        u_school = rng.normal(0, np.sqrt(VAR_SCHOOL), n_schools)[school]
        u_class = rng.normal(0, np.sqrt(VAR_CLASSROOM), len(sections))[sec_of]
        eff = np.array([GROWTH_EFFECTS[r] for r in RESOURCES])
        extra = np.array([BEHIND_EXTRA[r] for r in RESOURCES])
        resid_var = 0.40
        y = (
            GROWTH_OTHER["fall_z"] * fall_z
            + GROWTH_OTHER["started_behind"] * behind
            + acc @ eff
            + (acc * behind[:, None]) @ extra
            + GROWTH_OTHER["low_income"] * st["low_income"]
            + GROWTH_OTHER["english_learner"] * st["english_learner"]
            + GROWTH_OTHER["disability"] * st["disability"]
            + u_school
            + u_class
            + rng.normal(0, np.sqrt(resid_var), n)
        )
        # map to offsets with the fall distribution's location and spread per grade, then to scale scores
        fall_s = pd.Series(a_fall_obs).groupby(grade)
        a_spring = fall_s.transform("mean").to_numpy() + fall_s.transform("std").to_numpy() * y
        sd_y = float(np.std(y - pd.Series(y).groupby(grade).transform("mean").to_numpy(), ddof=1))
        tables.append(_score_rows(student_ids, subject, ANALYSIS_YEAR, "fall", grade, a_fall_obs, fall=True))
        tables.append(
            _score_rows(student_ids, subject, ANALYSIS_YEAR, "spring", grade, np.clip(a_spring, -4.5, 3.5))
        )
        growth_truth[subject] = {
            "units": "SD of the spring score within grade (analysis standardizes within district, subject and grade)",
            "access_effects": {r: GROWTH_EFFECTS[r] / sd_y for r in RESOURCES},
            "behind_extra": {r: BEHIND_EXTRA[r] / sd_y for r in RESOURCES},
            "other": {k: v / sd_y for k, v in GROWTH_OTHER.items()},
            "variance_school": VAR_SCHOOL / sd_y**2,
            "variance_classroom": VAR_CLASSROOM / sd_y**2,
            "variance_residual": resid_var / sd_y**2,
            "planted_raw_scale": {
                "access_effects": GROWTH_EFFECTS,
                "behind_extra": BEHIND_EXTRA,
                "sd_spring": sd_y,
            },
            "share_started_behind": float(behind.mean()),
        }
        # --- trajectory truths by Monte Carlo over fresh noise for the same students
        if len(years) >= 2:
            mc_rng = np.random.default_rng(rng.integers(2**63))
            reps = mc_reps(n)
            _, obs_mc, g0_mc = chain(np.tile(a0, 1), mc_rng, reps)
            tested0 = g0_mc >= 3
            below0 = (obs_mc[0] < 0) & tested0
            catch = {
                str(k): float((obs_mc[k][below0] >= 0).mean()) for k in range(1, min(3, len(years) - 1) + 1)
            }
            sch_mc = np.tile(school, reps)
            growth_rows = {}
            first_obs = obs_mc[0]
            last_obs = obs_mc[-1]
            rate_mc = 1 + (last_obs - first_obs) / (len(years) - 1)
            for s in range(n_schools):
                m = (sch_mc == s) & tested0
                if m.sum() == 0:
                    continue
                growth_rows[str(school_ids[s])] = {
                    "mean_start_offset": float(first_obs[m].mean()),
                    "mean_growth_grade_levels": float(rate_mc[m].mean()),
                    "trajectory_changing": bool(first_obs[m].mean() < 0 and rate_mc[m].mean() >= 1.3),
                }
            truth_traj[subject] = {
                "start_year": years[0],
                "window": "spring",
                "catch_up_rate": catch,
                "catch_up_definition": "share at grade level k years after start_year among students below grade "
                "level in start_year (spring; tested both years)",
                "growth_by_school": growth_rows,
                "growth_definition": "(grade_equivalent in last prior year - first) / years, mean over students "
                "tested in start_year; years = the prior (spring) years only",
                "years": years,
            }
    table = pd.concat(tables, ignore_index=True) if out is None else None
    return {"table": table, "behind": behind_cols, "growth_truth": growth_truth}, truth_traj


def _score_rows(ids, subject, year, window, grade, offset, fall=False):
    ge = grade - (0.75 if fall else 0.0) + offset
    score = np.round(200 + 20 * ge, 1)
    cut = 200 + 20 * (grade - (0.75 if fall else 0.0))
    level = np.select([offset < -1, offset < 0, offset < 1], [1, 2, 3], 4)
    return pd.DataFrame(
        {
            "student_id": ids,
            "subject": subject,
            "school_year": year,
            "window": window,
            "grade": grade,
            "scale_score": score,
            "grade_level_cut": cut.astype(float),
            "performance_level": level,
            "grade_equivalent": np.round(np.clip(ge, -2, 16), 2),
        }
    )


def synthesize(
    out_dir: str | os.PathLike | None = None,
    *,
    seed: int = config.DEMO_SEED,
    students: int = 4000,
    overwrite: bool = True,
) -> list[Path]:
    """Write the five synthetic demo districts (CSV files plus ``truth.json``) and return their folders.

    Parameters
    ----------
    out_dir
        Folder to write into (default ``data/raw``). Each district goes to ``out_dir/<district_id>/``,
        written to a temporary folder first and renamed into place when complete.
    seed
        Random seed; the same seed gives byte-identical files.
    students
        Total number of students over the five districts (about 4,000 as in the study; 1,000,000 works).
    overwrite
        Replace existing demo district folders (only folders named ``demo_*`` are ever replaced).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> paths = synthesize(pathlib.Path(tempfile.mkdtemp()), seed=2, students=400)
    >>> [p.name for p in paths]
    ['demo_fairview', 'demo_hillcrest', 'demo_lakeside', 'demo_pinebrook', 'demo_riverton']
    """
    out = Path(out_dir) if out_dir is not None else config.raw_dir()
    out.mkdir(parents=True, exist_ok=True)
    stage, icpt = _prepare(seed, students)
    for d in stage:
        final = out / d["spec"].district_id
        if final.exists() and not overwrite:
            raise FileExistsError(f"{final} exists; pass overwrite=True to replace it")
    paths = []
    while stage:  # finish, write and forget one district at a time
        paths.append(_write_district(out, stage.pop(0), icpt))
    return sorted(paths)


def _write_district(out: Path, d: dict, icpt: dict) -> Path:
    """Finish one prepared district, streaming its tables to a temporary folder renamed into place."""
    district_id = d["spec"].district_id
    final = out / district_id
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{district_id}-", dir=out))
    try:
        truth = _finish_district(d, icpt, tables=CsvSink(tmp))["truth"]
        (tmp / "truth.json").write_text(json.dumps(truth, indent=1, sort_keys=True, default=float) + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def synthesize_district(
    out_dir: str | os.PathLike | None = None,
    *,
    students: int = 4000,
    seed: int = config.DEMO_SEED,
    spec: DistrictSpec = METRO,
    overwrite: bool = True,
) -> Path:
    """Write one synthetic district of ``students`` students (CSV files plus ``truth.json``); return its folder.

    The district has :data:`METRO`'s make-up (by default) and about one school per 570 students (seven
    schools per 4,000), with its logit intercepts calibrated on itself to the study's headline figures. Tables
    are written as they are generated, so a million students fit in well under 2 GB. Written to a temporary
    folder first and renamed into place when complete; deterministic for a given seed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = synthesize_district(pathlib.Path(tempfile.mkdtemp()), students=600, seed=3)
    >>> p.name, sorted(x.name for x in p.iterdir())[:3]
    ('demo_metro', ['advanced_courses.csv', 'assessments.csv', 'assignments.csv'])
    """
    if students < 60:
        raise ValueError(f"students={students}: a district needs at least 60 students")
    if spec.share != 1.0:
        spec = DistrictSpec(**{**spec.__dict__, "share": 1.0})
    out = Path(out_dir) if out_dir is not None else config.raw_dir()
    out.mkdir(parents=True, exist_ok=True)
    final = out / spec.district_id
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} exists; pass overwrite=True to replace it")
    stage, icpt = _prepare(seed, students, (spec,), scale=max(1, round(students / 4000)))
    return _write_district(out, stage.pop(), icpt)
