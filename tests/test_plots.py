"""Figures: drawn from tidy tables, alt text with the numbers, suppressed rows never plotted as values."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import Rectangle
from PIL import Image

from opportunity_research.report import plots
from opportunity_research.stats.gaps import gap_table


@pytest.fixture(scope="module")
def gaps():
    rng = np.random.default_rng(2)
    race = np.array(
        ["black"] * 400 + ["white"] * 500 + ["asian"] * 60 + ["native_hawaiian_pacific_islander"] * 4
    )
    li = np.tile([0, 1], len(race) // 2)
    y = np.clip(0.3 + 0.1 * (race == "white") - 0.05 * li + rng.normal(0, 0.1, len(race)), 0, 1)
    df = pd.DataFrame(
        {
            "race_ethnicity": race,
            "low_income": li,
            "grade_appropriate": y,
            "classroom_id": np.arange(len(race)) % 40,
        }
    )
    t = gap_table(
        df,
        outcome="grade_appropriate",
        group=["race_ethnicity", "low_income"],
        cluster="classroom_id",
        n_boot=200,
    )
    # the tiny group and its complement hidden as a disclosure pass would, with reasons the figure prints
    reasons = {"native_hawaiian_pacific_islander": "n < 10", "asian": "complementary"}
    hide = t["level"].isin(list(reasons))
    numbers = [c for c in t.columns if pd.api.types.is_numeric_dtype(t[c]) and c != "suppressed"]
    t.loc[hide, numbers] = np.nan
    t["suppressed"] = hide
    t["suppression_reason"] = t["level"].map(reasons).fillna("")
    return t


def _points(ax):
    """(x, y) of every plotted point (interval caps are markers too, but not from the series markers)."""
    xs, ys = [], []
    for line in ax.lines:
        if line.get_marker() in plots.MARKERS:
            xs += list(line.get_xdata())
            ys += list(line.get_ydata())
    return np.array(xs, dtype=float), np.array(ys, dtype=float)


def test_gap_plot_from_a_gap_table(gaps):
    fig = plots.gap_plot(gaps, title="Grade-appropriate assignments")
    ax = fig.axes[0]
    shown = gaps[~gaps["suppressed"]]
    xs, ys = _points(ax)
    assert len(xs) == len(shown)
    assert np.sort(xs) == pytest.approx(np.sort(shown["difference"].to_numpy(dtype=float)))
    # suppressed rows (the tiny group and its complement) are text, with no point at their position
    rows = gaps.reset_index(drop=True)
    hidden_pos = rows.index[rows["suppressed"]].to_numpy(dtype=float)
    assert len(hidden_pos) == 2 and not np.isin(hidden_pos, ys).any()
    texts = [t.get_text() for t in ax.texts]
    assert "suppressed (n < 10)" in texts and "suppressed (complementary)" in texts
    # the two group variables differ by marker, not only by colour
    markers = {line.get_marker() for line in ax.lines if line.get_marker() in plots.MARKERS}
    assert len(markers) == 2
    # alt text: every shown difference (in percentage points), its interval and n; the suppressed rows named
    alt = fig.alt_text
    black = rows[rows["level"] == "black"].iloc[0]
    assert f"Black or African American students: {100 * black['difference']:+.1f}" in alt
    assert f"95% CI {100 * black['ci_lower']:+.1f} to {100 * black['ci_upper']:+.1f}; n = 400" in alt
    assert "Native Hawaiian or Other Pacific Islander students: suppressed (n < 10)." in alt
    assert "Asian students: suppressed (complementary)." in alt
    assert "percentage points" in alt and "all other students" in alt
    assert "n = 4)" not in alt and "n = 60)" not in alt


def test_gap_plot_without_intervals_and_not_in_percent():
    t = pd.DataFrame(
        {
            "group": "g",
            "level": ["a", "b"],
            "n": [30, 40],
            "reference": "all other students",
            "estimate": [2.0, 3.0],
            "reference_estimate": [3.0, 2.0],
            "hedges_g": [-0.8, 0.8],
            "difference": [-1.0, 1.0],
            "suppressed": False,
            "suppression_reason": "",
        }
    )
    fig = plots.gap_plot(t, value="hedges_g")
    assert _points(fig.axes[0])[0] == pytest.approx([-0.8, 0.8])
    assert "G: a: -0.80 (n = 30)." in fig.alt_text and "CI" not in fig.alt_text
    fig2 = plots.gap_plot(t)
    assert "G: b: +1.00 (n = 40)." in fig2.alt_text and "percentage" not in fig2.alt_text


def test_resource_bars_with_groups_and_a_suppressed_bar():
    df = pd.DataFrame(
        {
            "label": ["Grade-appropriate assignments", "Strong instruction"] * 2,
            "group": "low_income",
            "level": [0, 0, 1, 1],
            "estimate": [0.30, 0.20, 0.18, np.nan],
            "ci_lower": [0.25, 0.15, 0.14, np.nan],
            "ci_upper": [0.35, 0.25, 0.22, np.nan],
            "n": [400, 400, 380, pd.NA],
            "suppressed": [False, False, False, True],
            "suppression_reason": ["", "", "", "n < 10"],
        }
    )
    fig = plots.resource_bars(df, hue="level", title="Share of class time")
    ax = fig.axes[0]
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert sorted(b.get_height() for b in bars) == pytest.approx([0.18, 0.20, 0.30])
    assert len({b.get_hatch() for b in bars}) == 2  # groups differ by hatch as well as colour
    assert any(t.get_text() == "suppressed (n < 10)" for t in ax.texts)
    alt = fig.alt_text
    assert (
        "Grade-appropriate assignments, Students not from low-income families: 30.0% (95% CI 25.0% to 35.0%; n = 400)."
        in alt
    )
    assert "Strong instruction, Low-income students: suppressed (n < 10)." in alt
    assert alt.startswith("Share of class time.")


def test_interval_plot_generic():
    df = pd.DataFrame(
        {
            "label": ["ELA", "Math", "ELA", "Math"],
            "grade_band": ["3-5", "3-5", "6-8", "6-8"],
            "estimate": [0.4, 0.5, 0.3, 0.35],
            "ci_lower": [0.35, 0.45, 0.25, 0.3],
            "ci_upper": [0.45, 0.55, 0.35, 0.4],
            "n": [120, 130, 140, 150],
        }
    )
    fig = plots.interval_plot(df, hue="grade_band", percent=True, title="On grade level", xlabel="Share")
    xs, _ = _points(fig.axes[0])
    assert sorted(xs) == pytest.approx([0.3, 0.35, 0.4, 0.5])
    assert "3-5, ELA: 40.0% (95% CI 35.0% to 45.0%; n = 120)." in fig.alt_text
    assert fig.alt_text.startswith("On grade level.")


def test_one_outcome_per_figure(gaps):
    with pytest.raises(ValueError, match="one outcome"):
        plots.gap_plot(pd.concat([gaps, gaps]))


def test_student_rows_are_refused():
    df = pd.DataFrame({"student_id": ["S-1"], "label": ["x"], "estimate": [1.0]})
    with pytest.raises(ValueError, match="not student rows"):
        plots.interval_plot(df)
    with pytest.raises(KeyError, match="nope"):
        plots.interval_plot(df.drop(columns="student_id"), estimate="nope")


def test_save_figure_is_atomic_and_stores_alt_text(tmp_path, gaps):
    fig = plots.gap_plot(gaps)
    path = tmp_path / "figs" / "gaps.png"
    alt = plots.save_figure(fig, path)
    assert alt == fig.alt_text
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["gaps.png"]  # no temporary file left behind
    assert Image.open(path).info["Description"] == alt
    bare = mpl.figure.Figure()
    bare.add_subplot().plot([1, 2])
    with pytest.raises(ValueError, match="no alt text"):
        plots.save_figure(bare, tmp_path / "bare.png")
    assert plots.save_figure(bare, tmp_path / "bare.png", alt="A line.") == "A line."


def test_style_is_scoped_and_colour_blind_safe():
    before = mpl.rcParams["axes.spines.top"]
    with plots.style():
        assert mpl.rcParams["axes.prop_cycle"].by_key()["color"][:3] == ["#0072B2", "#D55E00", "#009E73"]
        assert mpl.rcParams["axes.spines.top"] is False
    assert mpl.rcParams["axes.spines.top"] == before
    with mpl.rc_context():
        plots.apply_style()
        assert mpl.rcParams["axes.titlelocation"] == "left"
    assert len(set(plots.MARKERS)) == len(plots.MARKERS) and len(set(plots.HATCHES)) == len(plots.HATCHES)
    # grayscale: the first four series colours have clearly different lightness (plus different markers)
    lum = [np.dot(mpl.colors.to_rgb(c), [0.299, 0.587, 0.114]) for c in plots.PALETTE[:4]]
    assert min(abs(a - b) for i, a in enumerate(lum) for b in lum[i + 1 :]) > 0.04


def test_level_labels():
    # the package's label registry (opportunity_research.study.labels)
    assert plots.level_label("race_ethnicity", "black") == "Black or African American students"
    assert plots.level_label("english_learner", 1) == "English learners"
    assert plots.level_label("english_learner", 0.0) == "Students who are not English learners"
    assert plots.level_label("grade", 5, {("grade", 5): "Grade 5"}) == "Grade 5"


# ---------------------------------------------------------------------------------------------
# report charts


def _tidy_gaps():
    return pd.DataFrame(
        {
            "measure": "strong_instruction",
            "subject": ["ela", "math", "ela", "math"],
            "group": ["low_income", "low_income", "disability", "disability"],
            "level": [1.0, 1.0, 1.0, 1.0],
            "n": [400, 380, np.nan, np.nan],
            "difference": [-0.05, -0.03, np.nan, np.nan],
            "ci_lower": [-0.09, -0.06, np.nan, np.nan],
            "ci_upper": [-0.01, 0.0, np.nan, np.nan],
            "suppressed": [False, False, True, True],
            "suppression_reason": ["", "", "n < 10", "complementary"],
        }
    )


def _points_of(ax):
    xs = np.concatenate([line.get_xdata() for line in ax.lines if line.get_marker() in plots.MARKERS])
    return np.sort(xs.astype(float))


def test_gap_chart_points_intervals_and_suppressed_text():
    fig = plots.gap_chart(_tidy_gaps(), resource="strong_instruction")
    ax = fig.axes[0]
    assert _points_of(ax) == pytest.approx([-0.05, -0.03])
    texts = [t.get_text() for t in ax.texts]
    assert "ELA: suppressed (n < 10)" in texts and "Math: suppressed (complementary)" in texts
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "Low-income students",
        "Students with disabilities",
    ]
    assert "Low-income students, ELA: −5.0 (95% interval −9.0 to −1.0; n = 400)." in fig.alt_text
    with pytest.raises(ValueError, match="no rows"):
        plots.gap_chart(_tidy_gaps(), resource="engaged")


def test_growth_chart_shows_unverified_and_missing_effects_as_text():
    g = pd.DataFrame(
        {
            "subject": ["ela", "ela", "math"],
            "model": "all_four",
            "effect": "access",
            "resource": ["grade_appropriate", "engaged", "grade_appropriate"],
            "estimate": [0.3, 0.1, 0.2],
            "ci_lower": [0.1, -0.2, 0.0],
            "ci_upper": [0.5, 0.4, 0.4],
            "months": [10.0, 3.0, 6.0],
            "months_ci_lower": [3.0, -6.0, 0.0],
            "months_ci_upper": [17.0, 12.0, 12.0],
            "n": 900,
            "converged": [True, True, False],
        }
    )
    fig = plots.growth_chart(g)
    ax = fig.axes[0]
    assert _points_of(ax) == pytest.approx([0.1, 0.3])
    texts = [t.get_text() for t in ax.texts]
    assert "Math: model not verified" in texts and "Math: not estimated" in texts
    assert "Grade-appropriate assignments, ELA: +0.30 SD" in fig.alt_text
    months = plots.growth_chart(g, months=True)
    assert _points_of(months.axes[0]) == pytest.approx([3.0, 10.0]) and "+10.0 months" in months.alt_text


def test_trend_chart_needs_two_years_and_draws_each_series():
    t = pd.DataFrame(
        {
            "school_year": [2015, 2016, 2015, 2016],
            "measure": ["belonging"] * 2 + ["coherence"] * 2,
            "estimate": [0.2, 0.25, 0.3, 0.28],
            "ci_lower": [0.15, 0.2, 0.25, 0.22],
            "ci_upper": [0.25, 0.3, 0.35, 0.33],
            "suppressed": False,
        }
    )
    fig = plots.trend_chart(t, title="Favorable")
    ax = fig.axes[0]
    assert [x.get_text() for x in ax.get_xticklabels()] == ["2015-16", "2016-17"]
    assert "Belonging, 2016-17: 25% (95% interval 20% to 30%)." in fig.alt_text
    with pytest.raises(ValueError, match="two or more"):
        plots.trend_chart(t[t["school_year"] == 2015], title="x")


def test_study_chart_places_the_published_figures():
    from opportunity_research.report.presentation import STUDY

    rates = pd.DataFrame(
        {
            "resource": ["grade_appropriate", "engaged"],
            "subject": "all",
            "estimate": [0.18, 0.5],
            "ci_lower": [0.15, 0.47],
            "ci_upper": [0.21, 0.53],
        }
    )
    demands = pd.DataFrame(
        {"measure": ["met_grade_level"], "estimate": [0.12], "ci_lower": [0.1], "ci_upper": [0.14]}
    )
    study = {k: v[0] for k, v in STUDY.items()}
    fig = plots.study_chart(rates, demands, study)
    diamonds = next(line for line in fig.axes[0].lines if line.get_marker() == "D")
    assert np.asarray(diamonds.get_xdata(), dtype=float) == pytest.approx([0.26, 0.55, 0.17])
    assert "Grade-appropriate assignments: district 18% (95% interval 15% to 21%), study 26%." in fig.alt_text
    # a district that changed a cut rule: no study mark for that resource (its table says "not comparable"),
    # and the alt text says why; the other resources keep theirs
    fig = plots.study_chart(rates, demands, {**study, "grade_appropriate": float("nan")})
    diamonds = next(line for line in fig.axes[0].lines if line.get_marker() == "D")
    x = np.asarray(diamonds.get_xdata(), dtype=float)
    assert np.isnan(x[0]) and x[1:] == pytest.approx([0.55, 0.17])
    assert "Grade-appropriate assignments: district 18% (95% interval 15% to 21%), no comparable study" in (
        fig.alt_text
    )
    # the cross-district chart of the four resources draws the districts only: no study mark to disagree with
    # the cross-district table's "no study figure shown" for a district with its own cut points
    bars = plots.resource_bars(
        pd.DataFrame(
            {
                "label": ["Grade-appropriate assignments"] * 2,
                "district": ["A", "B"],
                "estimate": [0.2, 0.3],
                "ci_lower": [0.15, 0.25],
                "ci_upper": [0.25, 0.35],
                "n": [100, 120],
            }
        ),
        hue="district",
    )
    marks = {line.get_marker() for line in bars.axes[0].lines}  # the intervals' caps only
    assert marks <= {"_"}, marks


# ---------------------------------------------------------------------------------------------
# axes: every numeric tick label states its tick's value (issue: 2.5-point ticks were labelled -8, -2, +2, +8)


def _label_value(text: str) -> float | None:
    """The number a tick label states (a percent or points label in percent units), None for a text label."""
    t = text.replace("\u2212", "-").replace("%", "").replace("+", "").strip()
    try:
        return float(t)
    except ValueError:
        return None


def _check_ticks(fig) -> int:
    """Assert every numeric tick label of ``fig`` equals its tick value (as is, or x100 on a percent axis)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()  # the renderer places and labels the ticks
    checked = 0
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks():
                value, text = tick.get_loc(), tick.label1.get_text()
                number = _label_value(text)
                if not text or number is None or not lo - 1e-9 <= value <= hi + 1e-9:
                    continue
                percent = "%" in text or axis.get_major_formatter().__class__.__name__ == "FuncFormatter"
                expected = 100 * value if percent else value
                assert number == pytest.approx(expected, abs=1e-6), (
                    f"{ax.get_title() or fig.alt_text[:40]!r}: tick at {value!r} labelled {text!r}"
                )
                checked += 1
    return checked


@pytest.mark.parametrize("span", [0.03, 0.08, 0.15, 0.4, 0.006])
def test_tick_labels_equal_tick_values_in_every_figure_type(gaps, span):
    # differences spread over +-span so the locator picks 0.5, 1, 2, 2.5, 5 or 10 point steps
    g = _tidy_gaps().assign(
        difference=[-span, span, np.nan, np.nan],
        ci_lower=[-span * 1.2, span * 0.5, np.nan, np.nan],
        ci_upper=[-span * 0.5, span * 1.2, np.nan, np.nan],
    )
    wide = gaps.assign(
        difference=np.linspace(-span, span, len(gaps)),
        ci_lower=np.linspace(-span, span, len(gaps)) - span / 4,
        ci_upper=np.linspace(-span, span, len(gaps)) + span / 4,
    )
    growth = pd.DataFrame(
        {
            "subject": ["ela", "math"],
            "model": "all_four",
            "effect": "access",
            "resource": "grade_appropriate",
            "estimate": [-span, span],
            "ci_lower": [-2 * span, 0.0],
            "ci_upper": [0.0, 2 * span],
            "months": [-10 * span, 10 * span],
            "months_ci_lower": [-20 * span, 0.0],
            "months_ci_upper": [0.0, 20 * span],
            "n": 900,
            "converged": True,
        }
    )
    trend = pd.DataFrame(
        {
            "school_year": [2015, 2016, 2017],
            "measure": "belonging",
            "estimate": [0.4, 0.4 + span, 0.4 - span],
            "ci_lower": [0.35, 0.35 + span, 0.35 - span],
            "ci_upper": [0.45, 0.45 + span, 0.45 - span],
            "suppressed": False,
        }
    )
    bars = pd.DataFrame(
        {
            "label": ["A", "B"],
            "estimate": [0.2, 0.2 + span],
            "ci_lower": [0.15, 0.15 + span],
            "ci_upper": [0.25, 0.25 + span],
            "n": [100, 100],
        }
    )
    rates = pd.DataFrame(
        {
            "resource": ["grade_appropriate", "engaged"],
            "subject": "all",
            "estimate": [0.26 + span, 0.55 - span],
            "ci_lower": [0.2 + span, 0.5 - span],
            "ci_upper": [0.3 + span, 0.6 - span],
        }
    )
    demands = pd.DataFrame(
        {
            "measure": ["met_grade_level"],
            "estimate": [0.17 + span],
            "ci_lower": [0.1 + span],
            "ci_upper": [0.2 + span],
        }
    )
    from opportunity_research.report.presentation import STUDY

    figures = {
        "gap_chart": plots.gap_chart(g, resource="strong_instruction"),
        "gap_plot": plots.gap_plot(wide),
        "gap_plot hedges_g": plots.gap_plot(
            wide.assign(hedges_g=np.linspace(-span, span, len(wide)) * 10), value="hedges_g"
        ),
        "interval_plot percent": plots.interval_plot(bars, percent=True),
        "interval_plot": plots.interval_plot(
            bars[["estimate", "ci_lower", "ci_upper"]].mul(7).assign(label=bars["label"])
        ),
        "resource_bars": plots.resource_bars(bars),
        "growth_chart": plots.growth_chart(growth),
        "growth_chart months": plots.growth_chart(growth, months=True),
        "trend_chart": plots.trend_chart(trend, title="Favorable"),
        "study_chart": plots.study_chart(rates, demands, {k: v[0] for k, v in STUDY.items()}),
    }
    public = {n for n in plots.__all__ if n.endswith(("_chart", "_plot", "_bars"))}
    assert public <= {name.split()[0] for name in figures}, "a figure type has no tick test"
    for name, fig in figures.items():
        assert _check_ticks(fig) >= 2, name


def test_tick_text_never_rounds_to_a_neighbour():
    assert [plots.tick_text(v, points=True) for v in (-0.075, -0.025, 0.025, 0.075)] == [
        "−7.5",
        "−2.5",
        "+2.5",
        "+7.5",
    ]
    assert plots.tick_text(0.005) == "0.5%" and plots.tick_text(-0.2, points=True) == "−20"
