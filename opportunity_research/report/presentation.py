"""The presentation layer: display tables, headline findings and page parts built from tidy results.

Statistics modules return tidy DataFrames with identifier-safe columns; this module turns them into
what a reviewer reads, with every header, group, subject, school and measure name taken from
:mod:`opportunity_research.study.labels` and every number formatted by it (so a number reads the same in a
table, a sentence and a chart). Nothing here computes a statistic.

Tables
    :func:`table` formats a tidy table column by column (:class:`Col`: a column and a format) and
    lays it out with `great_tables <https://posit-dev.github.io/great-tables/>`_ (caption, column
    labels, spanners, row groups, source notes). The table library's own stylesheet is dropped: the
    page's stylesheet (``templates/report.css``) styles every table alike, and on narrow screens each
    row reflows into a block whose values carry their column header (``data-label``), so no page scrolls
    sideways on a phone. Rows flagged ``suppressed`` show :data:`SUPPRESSED_MARK` in every value cell
    (counts included) and the table gets a note explaining the mark. An interval is one cell ("22% to
    30%") beside the number it belongs to.
Section tables
    One function per analysis (:func:`resources_table`, :func:`gaps_table`, :func:`growth_table`, ...)
    fixes its columns and caption, so the notebook holds no layout decisions.
Headline findings
    :func:`headline_findings` ranks candidate findings (see its docstring for the rule) and
    :func:`first_screen` renders the report's first screen from ``templates/first_screen.html.j2``.

Examples
--------
>>> import pandas as pd
>>> t = pd.DataFrame({"group": ["low_income", "low_income"], "level": [1, 0], "n": [40.0, None],
...                   "estimate": [0.25, None], "ci_lower": [0.2, None], "ci_upper": [0.31, None],
...                   "suppressed": [False, True]})
>>> out = table(t, [Col("level", "group"), Col("n", "count"), Col("estimate", "percent"),
...                 Col("interval", "interval_percent")], caption="Access by group")
>>> print(out)  # doctest: +NORMALIZE_WHITESPACE
Access by group
Group                                   Students  Share  95% interval
Low-income students                     40        25%    20% to 31%
Students not from low-income families   ‡         ‡      ‡
‡ suppressed
>>> 'data-label="95% interval"' in out._repr_html_()
True
"""

from __future__ import annotations

import datetime as _dt
import html as _html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from .. import config
from ..study import labels
from ..study.labels import SUPPRESSED_LABEL, SUPPRESSED_MARK
from ..version import __version__

__all__ = [
    "LAB_CSS",
    "STUDY",
    "Col",
    "Finding",
    "HtmlBlock",
    "Table",
    "catch_up_table",
    "climate_table",
    "composition_table",
    "cross_gaps_table",
    "cross_goals_table",
    "cross_growth_table",
    "cross_resources_table",
    "demands_table",
    "diagnostics_table",
    "district_name",
    "first_screen",
    "furthest_table",
    "gaps_table",
    "glance_table",
    "goals_table",
    "grade_level_growth_table",
    "growth_table",
    "headline_findings",
    "hetop_table",
    "humanize",
    "is_demo",
    "lab_style",
    "link",
    "methods_scoring",
    "model_trust_note",
    "multiple_table",
    "needs_note",
    "reliability_table",
    "render",
    "reproducibility_table",
    "resources_table",
    "robustness_note",
    "schools_table",
    "scorecard_page",
    "scorecard_tables",
    "sensitivity_table",
    "study_comparison_table",
    "table",
    "v_gap_table",
]

#: The Opportunity Myth's published figures (TNTP 2018; see the domain brief), shown beside the district's.
STUDY = {
    "grade_appropriate": (0.26, "of assignments were grade-appropriate"),
    "strong_instruction": (0.16, "of lessons had strong instruction"),
    "engaged": (0.55, "of surveyed moments were engaged"),
    "high_expectations": (0.44, "of teachers held high expectations"),
    "met_demands": (0.71, "of work met the assignment's demands"),
    "met_grade_level": (0.17, "of work met grade-level standards"),
}
#: The study's contrast of classrooms serving mostly higher-income vs mostly low-income students.
_STUDY_INCOME_RATIO = {"grade_appropriate": "about twice as much", "strong_instruction": "about five times as much"}
STUDY_SOURCE = "TNTP, The Opportunity Myth (2018): five school systems, about 4,000 students, mostly 2016-17"

_TEMPLATES = Path(__file__).with_name("templates")


# ---------------------------------------------------------------------------------------------
# Templates


@lru_cache(maxsize=1)
def _env():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(_TEMPLATES)), autoescape=jinja2.select_autoescape(
        ["html", "j2"]), undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["css_string"] = _css_string
    return env


def _css_string(text) -> str:
    """A CSS string literal (for ``@page`` margin boxes)."""
    from markupsafe import Markup

    s = str(text or "").replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    s = s.replace("<", "\\3c ").replace(">", "\\3e ")
    return Markup(f'"{s}"')


@lru_cache(maxsize=1)
def stylesheet() -> str:
    """The pages' stylesheet (``templates/report.css``)."""
    return (_TEMPLATES / "report.css").read_text(encoding="utf-8")


def render(template: str, **context) -> str:
    """Render one of the package's templates (``templates/<template>``) with ``context``.

    Every page template extends ``base.html.j2``, which needs ``title``; the stylesheet, version and
    running header/footer have defaults.
    """
    ctx = {"css": stylesheet(), "version": __version__, "links": [], "kicker": "", "heading": "", "facts": [],
           "banner": "", "footer": "", "running_head": context.get("title", ""), "running_right": "",
           "running_foot": f"Generated {_dt.datetime.now(_dt.UTC):%d %B %Y} by opportunity-research {__version__}"}
    ctx.update(context)
    return _env().get_template(template).render(**ctx)


class HtmlBlock:
    """A piece of HTML shown by Jupyter (``_repr_html_``), with a plain-text form."""

    def __init__(self, html: str, text: str = ""):
        self.html = html
        self.text = text

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text


# ---------------------------------------------------------------------------------------------
# Tables


@dataclass(frozen=True)
class Col:
    """One displayed column: a column of the tidy table, its format, and optionally its header.

    Formats: ``text``, ``group`` (the row's ``group`` variable and this column's level, by
    :func:`labels.level`), ``groupspec`` (``"var=level"``), ``measure``, ``subject``, ``school``,
    ``count``, ``percent``, ``percent1``, ``points``, ``number``, ``number1``, ``ratio``, ``year``,
    ``school_year``, ``interval_percent``, ``interval_points``, ``interval_number`` (from ``ci_lower`` /
    ``ci_upper``, or ``<prefix>ci_lower`` with ``Col(..., prefix=...)``), ``status``, ``reference``
    (the comparison group). Label formats are kept in suppressed rows; every other cell shows the mark.
    """

    name: str
    fmt: str = "text"
    label: str | None = None
    prefix: str = ""

    @property
    def header(self) -> str:
        if self.label is not None:
            return self.label
        if self.fmt.startswith("interval"):
            return labels.column("interval")
        return labels.column(self.name)


_KEY_FORMATS = {"text", "group", "groupspec", "measure", "subject", "school", "year", "school_year", "reference"}
_STATUS = {"met": "✓ Met", "on track": "↗ On track", "off track": "✗ Off track", "baseline set": "◔ Baseline set",
           "no data": "○ No data"}


def _missing(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) or (
        isinstance(v, (np.floating,)) and np.isnan(v))


def _number(v, digits: int) -> str:
    if _missing(v):
        return labels.MISSING
    return f"{float(v):.{digits}f}".replace("-", "−")


_GROUP_SPEC = re.compile(r"\b([a-z][a-z_]*)=([A-Za-z0-9_.\-]+)")
_ID_WORDS = {"school_id": "school", "classroom_id": "classroom", "teacher_id": "teacher"}


def humanize(text) -> str:
    """Identifiers inside free text (a goal's reason, an engine message) as words: ``"race_ethnicity=black"``
    -> ``"Black or African American students"``, ``school_id`` -> ``school``."""
    if _missing(text):
        return ""
    out = _GROUP_SPEC.sub(lambda m: labels.group(f"{m.group(1)}={m.group(2)}"), str(text))
    return re.sub(r"\b(school_id|classroom_id|teacher_id)\b", lambda m: _ID_WORDS[m.group(1)], out)


def _interval(lo, hi, fmt) -> str:
    if _missing(lo) or _missing(hi):
        return labels.MISSING
    return f"{fmt(lo)} to {fmt(hi)}"


def _cell(col: Col, row: Mapping, names: Mapping | None) -> str:
    v = row.get(col.name)
    f = col.fmt
    if f == "group":
        return labels.level(row.get("group", col.name), v)
    if f == "groupspec":
        return labels.group(v)
    if f == "measure":
        return labels.measure(v)
    if f == "subject":
        return labels.subject(v)
    if f == "school":
        return labels.school(v, names)
    if f == "year":
        return labels.year(v)
    if f == "school_year":
        return labels.school_year(v)
    if f == "count":
        return labels.count(v)
    if f == "percent":
        return labels.percent(v)
    if f == "percent1":
        return labels.percent(v, 1)
    if f == "points":
        return labels.points(v)
    if f == "number":
        return _number(v, 2)
    if f == "number1":
        return _number(v, 1)
    if f == "ratio":
        return labels.MISSING if _missing(v) else f"{float(v):.2f}×"
    if f.startswith("interval"):
        fm = {"interval_percent": labels.percent, "interval_points": labels.points,
              "interval_ratio": lambda x: f"{float(x):.2f}",
              "interval_number": lambda x: _number(x, 2), "interval_number1": lambda x: _number(x, 1)}[f]
        return _interval(row.get(f"{col.prefix}ci_lower"), row.get(f"{col.prefix}ci_upper"), fm)
    if f == "status":
        return _STATUS.get(str(v), str(v))
    if f in ("value", "note"):  # preformatted text (masked in suppressed rows); "note" is left-aligned
        return labels.MISSING if _missing(v) else str(v)
    if f == "reference":
        if _missing(v) or str(v) in ("all other students", "all others", ""):
            return "All other students"
        return labels.level(row.get("group", ""), v)
    if _missing(v):
        return labels.MISSING
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    return str(v)


class Table(HtmlBlock):
    """A display table (great_tables layout, this package's formats and labels)."""

    def __init__(self, html: str, text: str, headers: list[str], frame: pd.DataFrame):
        super().__init__(html, text)
        self.headers = headers
        self.frame = frame


def _suppression_note(min_n: int) -> str:
    return (f"{SUPPRESSED_MARK} {SUPPRESSED_LABEL.capitalize()}: describes fewer than {min_n} students, or could be recovered from "
            "totals and neighbouring cells; its numbers, counts included, are not shown.")


_GT_STYLE = re.compile(r"<style>.*?</style>", re.DOTALL)
_GT_DIV = re.compile(r'^\s*<div id="[a-z]+" style="[^"]*">', re.DOTALL)
_TD = re.compile(r'<td headers="([^"]*)" class="gt_row ([^"]*)">')


def table(data: pd.DataFrame, columns: Sequence[Col | tuple | str], *, caption: str, subtitle: str | None = None,
          groups: str | None = None, spanners: Mapping[str, Sequence[str]] | None = None,
          notes: Iterable[str] = (), school_names: Mapping | None = None,
          min_n: int = config.MIN_CELL_SIZE, empty: str = "No rows to show.") -> Table:
    """Format and lay out a tidy table for a report.

    Parameters
    ----------
    data
        A tidy table. Rows with a true ``suppressed`` column show :data:`SUPPRESSED_MARK` in every
        value cell.
    columns
        What to show: :class:`Col` objects (or ``(name, fmt)`` / ``name``), in order. Headers come from
        :mod:`opportunity_research.study.labels` unless a ``Col`` gives one.
    caption, subtitle
        Every table has a caption (its title); the subtitle says what the numbers are.
    groups
        A column whose formatted values become row-group headings (e.g. ``subject``).
    spanners
        ``{spanner label: [column names]}`` headings over several columns.
    notes
        Source notes under the table (the suppression note is added when a row is suppressed).
    school_names
        ``{school_id: name}`` for ``school`` columns.
    min_n
        Minimum cell size, named in the suppression note.
    empty
        Shown instead of a table without rows.

    Returns
    -------
    Table
        Shown as HTML by Jupyter, as text otherwise; ``headers`` lists the column headers.
    """
    from great_tables import GT

    if not caption:
        raise ValueError("table: every report table needs a caption")
    cols = [c if isinstance(c, Col) else Col(*c) if isinstance(c, tuple) else Col(c) for c in columns]
    bad = [c.name for c in cols if re.match(r"^(student|teacher)s?_?(id|ids|name|names)$", c.name, re.IGNORECASE)]
    if bad:
        raise ValueError(f"table: identifier column(s) {bad} cannot be shown in a report")
    headers = [c.header for c in cols]
    if data is None or len(data) == 0:
        html = (f'<div class="table-wrap"><p class="note"><strong>{_html.escape(caption)}.</strong> '
                f"{_html.escape(empty)}</p></div>")
        return Table(html, f"{caption}\n{empty}", headers, pd.DataFrame(columns=headers))
    supp = (data["suppressed"].fillna(False).astype(bool).to_numpy() if "suppressed" in data.columns
            else np.zeros(len(data), dtype=bool))
    keys = [f"c{i}" for i in range(len(cols))]
    records = data.to_dict("records")
    out = {k: [] for k in keys}
    for i, row in enumerate(records):
        for k, c in zip(keys, cols):
            out[k].append(SUPPRESSED_MARK if supp[i] and c.fmt not in _KEY_FORMATS else _cell(c, row, school_names))
    frame = pd.DataFrame(out)
    group_col = None
    if groups is not None:
        group_col = "_group"
        frame[group_col] = [labels.subject(v) if groups == "subject" else labels.measure(v) if groups in (
            "measure", "resource") else str(v) for v in data[groups]]
    gt = GT(frame, groupname_col=group_col) if group_col else GT(frame)
    gt = gt.cols_label(**dict(zip(keys, headers)))
    right = [k for k, c in zip(keys, cols) if c.fmt not in _KEY_FORMATS and c.fmt not in ("status", "note")]
    if right:
        gt = gt.cols_align("right", columns=right)
    left = [k for k in keys if k not in right]
    if left:
        gt = gt.cols_align("left", columns=left)
    for label_, names in (spanners or {}).items():
        ks = [k for k, c in zip(keys, cols) if c.name in names]
        if ks:
            gt = gt.tab_spanner(label=label_, columns=ks)
    notes = list(notes)
    if supp.any():
        notes.append(_suppression_note(min_n))
        notes += _hidden_family_notes(data, supp)
    for n in notes:
        gt = gt.tab_source_note(n)
    html = gt.as_raw_html(inline_css=False)
    html = _GT_STYLE.sub("", html, count=1)
    html = _GT_DIV.sub('<div class="table-wrap">', html, count=1)
    # the caption is a <caption> (the first table row stays the header row, which screen readers and the
    # privacy screen read as the column headers)
    cap = (f'<caption><span class="gt_title">{_html.escape(caption)}</span>'
           + (f'<span class="gt_subtitle">{_html.escape(subtitle)}</span>' if subtitle else "") + "</caption>")
    html = re.sub(r'<table class="gt_table"([^>]*)>', lambda m: f'<table class="gt_table reflow"{m.group(1)}>{cap}',
                  html, count=1)
    lookup = dict(zip(keys, headers))

    def td(m: re.Match) -> str:
        key = m.group(1).split()[-1]
        lab = lookup.get(key, "")
        return (f'<td headers="{m.group(1)}" class="gt_row {m.group(2)}" data-label="{_html.escape(lab)}">'
                if lab else m.group(0))

    html = _TD.sub(td, html)
    # plain-text form
    widths = [max([len(h)] + [len(s) for s in frame[k]]) for k, h in zip(keys, headers)]
    lines = [caption, "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(str(s).ljust(w) for s, w in zip(r, widths)).rstrip()
              for r in frame[keys].itertuples(index=False, name=None)]
    if supp.any():
        lines.append(f"{SUPPRESSED_MARK} suppressed")
    shown = frame[keys].set_axis(headers, axis=1)
    return Table(html, "\n".join(lines), headers, shown)


def _hidden_family_notes(data: pd.DataFrame, supp: np.ndarray) -> list[str]:
    """One sentence per student-group variable whose every row in the table is hidden."""
    if "variable" in data.columns:
        fam = data["variable"].astype("str").to_numpy()
    elif {"group", "level"} <= set(data.columns):
        fam = data["group"].astype("str").to_numpy()
    else:
        return []
    whole = pd.Series(supp).groupby(fam).all()
    return [f"{labels.VARIABLES.get(v, v)}: every group in this table is {SUPPRESSED_LABEL}."
            for v in whole[whole].index if v != "all"]


def needs_note(needs: Iterable[str], *, what: str) -> HtmlBlock:
    """A note saying which data a section needs (when the district did not provide it)."""
    items = [str(s) for s in needs]
    html = (f'<div class="needs" role="note"><p><strong>{_html.escape(what)} needs data this district did not '
            "provide:</strong></p><ul>" + "".join(f"<li>{_html.escape(s)}</li>" for s in items) + "</ul></div>")
    return HtmlBlock(html, f"{what} needs: " + "; ".join(items))


# ---------------------------------------------------------------------------------------------
# Section tables (one per analysis of the district report)


def glance_table(glance: pd.DataFrame) -> Table:
    """The district at a glance (``analysis.at_a_glance``)."""
    return table(glance, [Col("what", label="What"), Col("number", "count", label="Number")],
                 caption="What the analysis is based on")


def resources_table(rates: pd.DataFrame, *, min_n: int = config.MIN_CELL_SIZE, cuts: Mapping | None = None) -> Table:
    """The four resources, district-wide, beside the study's published figures (``measures.resource_rates``).

    ``cuts``: the cut points the rates used (``DistrictAnalysis.cuts``); a resource scored with a rule other
    than TNTP's default gets a note saying its study figure is not directly comparable.
    """
    from .settings import study_note

    r = rates[rates["subject"] == "all"] if "subject" in rates.columns else rates
    changed = [f"{labels.measure(x)}: {study_note(x, cuts)}." for x in r["resource"] if study_note(x, cuts)]
    r = r.assign(study=[STUDY.get(x, (np.nan,))[0] for x in r["resource"]],
                 evidence=[f"{labels.count(n)} {labels.UNITS.get(x, '')}".strip() for x, n in zip(r["resource"],
                                                                                                   r["n"])])
    return table(r, [Col("resource", "measure"), Col("evidence", label="Evidence"),
                     Col("n_classrooms", "count"), Col("estimate", "percent", label="District"),
                     Col("interval", "interval_percent"), Col("study", "percent", label="Study (2018)"),
                     Col("hours_without", "count", label="Hours a year without it (of 180)")],
                 caption="Share of class time with each resource",
                 subtitle="District share with a 95% interval that allows for clustering in classrooms, beside "
                          "the Opportunity Myth study's published figure.",
                 notes=[f"Study: {STUDY_SOURCE}.", *changed], min_n=min_n)


def demands_table(demands: pd.DataFrame) -> Table:
    """Met the demands of the assignment vs met grade-level standards (``measures.demands_vs_standards``)."""
    d = demands.assign(study=[STUDY.get(x, (np.nan,))[0] for x in demands["measure"]])
    return table(d, [Col("measure", "measure"), Col("n", "count", label="Work samples"),
                     Col("n_classrooms", "count"), Col("estimate", "percent", label="District"),
                     Col("interval", "interval_percent"), Col("study", "percent", label="Study (2018)")],
                 caption="Student work: the assignment's demands vs grade-level standards",
                 notes=[f"Study: {STUDY_SOURCE}."])


_GAP_COLS = [Col("level", "group"), Col("n", "count"), Col("estimate", "percent", label="Share"),
             Col("reference", "reference"), Col("reference_estimate", "percent", label="Their share"),
             Col("difference", "points"), Col("interval", "interval_points"), Col("ratio", "ratio")]


def _with_ratio_interval(cols: list[Col], data: pd.DataFrame, label: str = "Ratio, 95% interval") -> list[Col]:
    """The ratio's own interval beside the ratio, when the table carries it (``ratio_ci_lower``/``_upper``)."""
    if "ratio_ci_lower" not in data.columns:
        return cols
    i = next(k for k, c in enumerate(cols) if c.name == "ratio") + 1
    return cols[:i] + [Col("ratio", "interval_ratio", label=label, prefix="ratio_")] + cols[i:]


def gaps_table(gaps: pd.DataFrame, resource: str, *, min_n: int = config.MIN_CELL_SIZE) -> Table:
    """One resource's gaps by student group, both subjects (``equity.resource_gaps``)."""
    t = gaps[gaps["measure"] == resource]
    return table(t, _with_ratio_interval(_GAP_COLS, t), caption=f"{labels.measure(resource)}: access by student group",
                 subtitle="Each group's share compared with all other students (or the named group); the "
                          "difference in percentage points with a 95% cluster-bootstrap interval.",
                 groups="subject" if "subject" in t.columns else None, min_n=min_n)


def composition_table(comp: pd.DataFrame, *, min_n: int = config.MIN_CELL_SIZE) -> Table:
    """Classrooms by composition (``equity.classroom_composition``); counts are classrooms."""
    cols = [Col("level", "group", label="Classrooms"), Col("n", "count", label="Classrooms (n)"),
            Col("estimate", "percent", label="Share"), Col("reference_text", label="Compared with"),
            Col("reference_estimate", "percent", label="Their share"), Col("difference", "points"),
            Col("interval", "interval_points"), Col("ratio", "ratio")]
    t = comp.assign(reference_text=[labels.level(g, 1 - float(lv)) if str(lv) not in ("nan", "<NA>") else ""
                                    for g, lv in zip(comp["group"], comp["level"])])
    return table(t, _with_ratio_interval(cols, t), caption="Classrooms by who is in them", groups="measure",
                 subtitle="Share of each kind of classroom's evidence with the resource; n counts classrooms.",
                 min_n=min_n)


def furthest_table(furthest: pd.DataFrame, *, min_n: int = config.MIN_CELL_SIZE) -> Table:
    """Groups over-represented among students furthest from opportunity (``equity.furthest_from_opportunity``)."""
    cols = [Col("level", "group"), Col("n", "count"), Col("estimate", "percent", label="In the bottom fifth"),
            Col("reference_estimate", "percent", label="All other students"),
            Col("difference", "points"), Col("interval", "interval_points"), Col("ratio", "ratio",
                                                                                  label="Times as likely")]
    return table(furthest, _with_ratio_interval(cols, furthest, "95% interval of the ratio"),
                 caption="Students furthest from opportunity, by group", groups="subject",
                 subtitle="Share of each group in the bottom fifth of a composite of the four resources.",
                 min_n=min_n)


def multiple_table(multiple: pd.DataFrame, *, min_n: int = config.MIN_CELL_SIZE) -> Table:
    """Chronic absence, advanced coursework and programs by group (``equity.multiple_measures_gaps``)."""
    cols = [Col("level", "group"), Col("n", "count"), Col("estimate", "percent", label="Share"),
            Col("reference_estimate", "percent", label="All other students"),
            Col("difference", "points"), Col("interval", "interval_points"), Col("ratio", "ratio")]
    return table(multiple, _with_ratio_interval(cols, multiple),
                 caption="Multiple measures by student group", groups="measure", min_n=min_n)


def growth_table(growth: pd.DataFrame, *, models: Sequence[str] = ("all_four",)) -> Table:
    """Growth-model effects of access (``growth.fit_study_models(...).effects``); unverified models marked.

    ``models`` selects the models shown (default: the model with all four resources together; the
    technical appendix shows every model).
    """
    g = (growth[growth["effect"].isin(["access", "extra_if_behind"]) & growth["model"].isin(list(models))].copy()
         if len(growth) else growth)
    if len(g):
        g["model_label"] = [labels.measure(r) if m != "all_four" or len(models) == 1
                            else f"{labels.measure(r)} (all four together)" for m, r in zip(g["model"], g["resource"])]
        g["model_label"] = [lab + ("" if bool(c) else " †") for lab, c in zip(g["model_label"], g["converged"])]
    contrast = len(g) and "contrast_estimate" in g.columns
    notes = [("Effects in standard deviations (SD) of the spring score. 25th → 75th percentile: classrooms at the "
              "district's 75th vs its 25th percentile of access; months of learning are an approximation from that "
              "contrast (typical annual gains by grade), shown only where it can be computed. Full vs none: "
              "classrooms that always vs never have the resource.")] if contrast else [
             ("Effects in standard deviations of the spring score, from no access (0) to full access (1); months "
              "of learning are an approximation (typical annual gains by grade).")]
    if len(g) and not g["converged"].astype(bool).all():
        notes.append("† The model could not be verified; do not rely on this row (see the technical appendix).")
    cols = [Col("model_label", label="Resource"), Col("effect", "measure")]
    if contrast:
        cols += [Col("contrast_estimate", "number", label="25th → 75th percentile (SD)"),
                 Col("contrast", "interval_number", prefix="contrast_", label="95% interval")]
    cols += [Col("months", "number1", label="Months"),
             Col("months", "interval_number1", label="Months, 95% interval", prefix="months_"),
             Col("estimate", "number", label="Full vs none (SD)"), Col("interval", "interval_number"), Col("n", "count")]
    return table(g, cols,
                 caption=("What access is worth: growth-model effects" + (
                     ", all four resources in one model" if list(models) == ["all_four"] else ", every model")),
                 groups="subject", notes=notes,
                 empty="Too few students with fall and spring scores for growth models.")


def diagnostics_table(growth: pd.DataFrame, warnings_: Sequence[str]) -> Table:
    """Technical appendix: convergence and samples of each growth model, with the engine's messages."""
    if len(growth):
        m = growth.drop_duplicates(["subject", "model"])[["subject", "model", "n", "n_classrooms", "n_schools",
                                                          "converged"]]
        msgs = {}
        for w in warnings_:
            subj, _, rest = str(w).partition(" / ")
            model, _, text = rest.partition(": ")
            msgs.setdefault((subj, model), []).append(text)
        m = m.assign(note=[humanize("; ".join(msgs.get((s, mo), []))) for s, mo in zip(m["subject"], m["model"])],
                     model=[labels.measure(x) for x in m["model"]])
    else:
        m = growth
    return table(m, [Col("model", label="Model"), Col("n", "count"), Col("n_classrooms", "count"),
                     Col("n_schools", "count"), Col("converged", label="Verified"), Col("note", label="Engine notes")],
                 caption="Growth-model diagnostics", groups="subject" if len(m) else None,
                 empty="No growth model was fitted.")


def climate_table(cs: pd.DataFrame, *, min_n: int = config.MIN_CELL_SIZE) -> Table:
    """Belonging, consistency and coherence, district by group (``climate.climate_summary``)."""
    t = cs[cs["school_id"] == "all"] if len(cs) else cs
    if len(t):
        t = t[t["school_year"] == t["school_year"].max()]
    year = labels.school_year(t["school_year"].iloc[0]) if len(t) else ""
    return table(t, [Col("group", "groupspec", label="Students"),
                     Col("n", "count", label="Responses"), Col("mean_score", "number"),
                     Col("mean", "interval_number", prefix="mean_", label="Mean, 95% interval"),
                     Col("favorable", "percent", label="Favorable"),
                     Col("favorable", "interval_percent", prefix="favorable_", label="Favorable, 95% interval")],
                 caption=f"Belonging, consistency and coherence, {year}", groups="scale",
                 subtitle="Mean scale score (1-5) and the share answering favorably (4 or more), by student group.",
                 min_n=min_n)


def reliability_table(rel: pd.DataFrame) -> Table:
    """Internal consistency of the climate scales (``climate.climate_reliability``)."""
    return table(rel, [Col("school_year", "school_year"), Col("scale", "measure"), Col("n_items", "count",
                                                                                        label="Items"),
                       Col("n", "count", label="Responses"), Col("alpha", "number"), Col("interval", "interval_number")],
                 caption="How consistent the survey scales are (Cronbach's alpha)")


def catch_up_table(cu: pd.DataFrame, *, min_n: int = config.MIN_CELL_SIZE) -> Table:
    """Catch-up rates, district, all students (``trajectories.catch_up_rates``)."""
    t = cu[(cu["school_id"] == "all") & (cu["group"] == "all")] if len(cu) else cu
    return table(t, [Col("start_year", "school_year"), Col("years_later", "count"),
                     Col("n_start", "count", label="Below grade level at the start"),
                     Col("n", "count", label="Tested later"), Col("estimate", "percent", label="At grade level later"),
                     Col("interval", "interval_percent")],
                 caption="Do students who fall behind catch up?", groups="subject", min_n=min_n)


def grade_level_growth_table(ggl: pd.DataFrame, *, min_n: int = config.MIN_CELL_SIZE) -> Table:
    """Growth in grade levels per year (``trajectories.grade_level_growth``), all students."""
    t = ggl[(ggl["group"] == "all")] if len(ggl) else ggl
    return table(t, [Col("school_id", "school"), Col("start_year", "school_year"), Col("end_year", "school_year"),
                     Col("n", "count"), Col("start_offset", "number", label="Grade levels ahead (+) or behind (−) "
                                                                        "at the start"),
                     Col("growth", "number", label="Grade levels a year"),
                     Col("growth", "interval_number", prefix="growth_")],
                 caption="Growth in grade levels per year", groups="subject", min_n=min_n,
                 notes=[("1.0 is a typical year's growth; schools whose students start behind and grow at least 1.3 "
                         "grade levels a year are trajectory-changing.")])


def goals_table(goals: pd.DataFrame) -> Table:
    """The district's goals and their status (``Scorecard.goals``)."""
    g = goals.copy()
    if len(g):
        share = ~g["measure"].eq("growth_grade_levels")
        fmtv = [labels.percent(v) if s else _number(v, 2) for v, s in zip(g["target"], share)]
        g["target_text"] = [f"{t} by {labels.year(y)}" for t, y in zip(fmtv, g["target_year"])]
        g["reason"] = [humanize(r) for r in g["reason"]]
        g["current_text"] = [labels.MISSING if _missing(v) else (labels.percent(v) if s else _number(v, 2))
                             + f" ({labels.school_year(y)})" for v, s, y in zip(g["current"], share, g["current_year"])]
    return table(g, [Col("goal_id", label="Goal"), Col("measure", "measure"), Col("group", "groupspec",
                                                                                  label="Students"),
                     Col("target_text", label="Target"), Col("current_text", label="Current"),
                     Col("status", "status"), Col("reason", label="Why")],
                 caption="The district's goals", empty="The district has not written goals (an optional goals.csv).")


def reproducibility_table(card: pd.DataFrame) -> Table:
    """The reproducibility card with values as a reader writes them (lists joined, empty mappings 'none')."""
    def value(v) -> str:
        text = str(v)
        if text in ("{}", "[]", "None", "''"):
            return "none"
        m = re.fullmatch(r"\[(.*)\]", text)
        if m:
            return ", ".join(labels.subject(x.strip(" '\"")) for x in m.group(1).split(","))
        return text.strip("'\"")
    c = card.assign(value=[value(v) for v in card["value"]],
                    item=[str(i).replace("parameter: ", "Parameter: ").replace("_", " ") for i in card["item"]])
    return table(c, [Col("item", label="Item"), Col("value", label="Value")], caption="Reproducibility card")


def study_comparison_table(rates: pd.DataFrame, demands: pd.DataFrame, *, cuts: Mapping | None = None) -> Table:
    """District vs the study's published figures, the six headline shares side by side (``cuts``: the cut points
    the rates used; a share scored with a rule other than the study's gets a note instead of a silent comparison)."""
    from .settings import study_note

    rows = []
    r = rates[rates["subject"] == "all"] if "subject" in rates.columns else rates
    for x in list(r.itertuples()) + list(demands.itertuples()):
        code = getattr(x, "resource", None) or x.measure
        if code in STUDY:
            rows.append({"measure": code, "estimate": x.estimate, "ci_lower": x.ci_lower, "ci_upper": x.ci_upper,
                         "study": STUDY[code][0], "difference": x.estimate - STUDY[code][0]})
    notes = [f"{labels.measure(x['measure'])}: {study_note(x['measure'], cuts)}." for x in rows
             if study_note(x["measure"], cuts)]
    return table(pd.DataFrame(rows), [Col("measure", "measure"), Col("estimate", "percent", label="District"),
                                      Col("interval", "interval_percent"), Col("study", "percent",
                                                                               label="Study (2018)"),
                                      Col("difference", "points", label="District − study (points)")],
                 caption="This district beside the study's published figures",
                 notes=[f"Study: {STUDY_SOURCE}.", *notes])


# ---------------------------------------------------------------------------------------------
# District identity and the first screen


def is_demo(district_id: str) -> bool:
    """Whether a district is one of the synthetic demonstration districts (ids ``demo_*``, as ``synthesize`` writes)."""
    return str(district_id).startswith("demo_")


def district_name(district_id: str) -> str:
    """A readable district name from its id (``"demo_lakeside"`` -> ``"Lakeside"``, ``"north_valley_usd"`` ->
    ``"North Valley USD"``)."""
    words = str(district_id).removeprefix("demo_").replace("-", " ").replace("_", " ").split()
    return " ".join(w.upper() if w.lower() in ("usd", "isd", "cusd", "sd") else w[:1].upper() + w[1:]
                    for w in words) or str(district_id)


@dataclass(frozen=True)
class Finding:
    """One headline finding: what it is about, the number, its interval, what it means, and its rank score."""

    what: str
    number: str
    interval: str
    meaning: str
    score: float


def _z(est, lo, hi, ref) -> float:
    """Distance of ``est`` from ``ref`` in half-widths of its 95% interval (0 when the interval covers ``ref``)."""
    if any(_missing(v) for v in (est, lo, hi)):
        return 0.0
    half = max((hi - lo) / 2, 1e-9)
    if lo <= ref <= hi:
        return 0.0
    return abs(est - ref) / half


def headline_findings(a, *, top: int = 5) -> list[Finding]:
    """The report's ranked headline findings (3 to ``top``), each with its number, interval and meaning.

    Candidates: the share of class time with each resource and the work-sample contrast, each against
    the study's published figure; the largest gap per resource (group vs all others); the
    classroom-composition contrast (mostly higher- vs mostly low-income classrooms); the strongest growth
    effect of access; the catch-up rate. Only unsuppressed numbers with an interval are candidates.
    Ranking rule: how far the number sits from its point of comparison (the study's figure, or no
    difference) measured in half-widths of its own 95% interval; numbers whose interval covers the
    comparison, and the catch-up rate (which has no natural comparison), score 0 and come last, in the
    order above. At least three findings are shown when three candidates exist.
    """
    from .settings import study_note

    cands: list[Finding] = []
    rates = a.rates[a.rates["subject"] == "all"] if "subject" in a.rates.columns else a.rates
    for r in rates.itertuples():
        study = STUDY.get(r.resource, (np.nan, ""))[0]
        if _missing(r.estimate):
            continue
        rel = "more" if r.estimate > study else "less"
        note = study_note(r.resource, getattr(a, "cuts", None))
        cands.append(Finding(
            what=labels.measure(r.resource), number=labels.percent(r.estimate),
            interval=f"95% interval {_interval(r.ci_lower, r.ci_upper, labels.percent)}; "
                     f"{labels.count(r.n)} {labels.UNITS.get(r.resource, '')}",
            meaning=(f"Share of {labels.UNITS.get(r.resource, 'evidence')} with this resource: {rel} than the study's "
                     f"{labels.percent(study)}" + ("" if _z(r.estimate, r.ci_lower, r.ci_upper, study) else
                                                   ", within the uncertainty of this estimate")
                     + (f" ({note})" if note else "") + "."),
            score=0.0 if note else _z(r.estimate, r.ci_lower, r.ci_upper, study)))
    d = a.demands.set_index("measure") if len(a.demands) else None
    if d is not None and {"met_demands", "met_grade_level"} <= set(d.index):
        md, gl = d.loc["met_demands"], d.loc["met_grade_level"]
        if not _missing(gl["estimate"]):
            cands.append(Finding(
                what="Work that met grade-level standards", number=labels.percent(gl["estimate"]),
                interval=f"95% interval {_interval(gl['ci_lower'], gl['ci_upper'], labels.percent)}; "
                         f"{labels.count(gl['n'])} work samples",
                meaning=(f"Students met their assignments' demands {labels.percent(md['estimate'])} of the time, but "
                         f"their work showed grade-level mastery only {labels.percent(gl['estimate'])} of the time "
                         f"(study: {labels.percent(STUDY['met_demands'][0])} vs "
                         f"{labels.percent(STUDY['met_grade_level'][0])})."),
                score=_z(gl["estimate"], gl["ci_lower"], gl["ci_upper"], md["estimate"])))
    g = a.gaps
    if len(g):
        g = g[~g["suppressed"].astype(bool) & g["difference"].notna() & g["ci_upper"].notna()]
        for _, part in g.groupby("measure", sort=False):
            r = part.sort_values("difference").iloc[0]
            if r["difference"] >= 0:
                continue
            ref = ("all other students" if str(r["reference"]) in ("all other students", "nan")
                   else labels.level_phrase(r["group"], r["reference"]))
            who = labels.level(r["group"], r["level"])
            cands.append(Finding(
                what=f"{labels.measure(r['measure'])}: {who} ({labels.subject(r['subject'])})",
                number=f"{labels.points(r['difference'])} points",
                interval=f"95% interval {_interval(r['ci_lower'], r['ci_upper'], labels.points)}; "
                         f"{labels.count(r['n'])} students",
                meaning=(f"{who} had this resource {labels.percent(r['estimate'])} of the time, vs "
                         f"{labels.percent(r['reference_estimate'])} for {ref}."),
                score=_z(r["difference"], r["ci_lower"], r["ci_upper"], 0.0)))
    gr = a.growth
    if len(gr):
        e = gr[(gr["model"] == "all_four") & (gr["effect"] == "access") & gr["converged"].astype(bool)]
        if len(e):
            e = e.assign(_z=[_z(x, lo, hi, 0) for x, lo, hi in zip(e["estimate"], e["ci_lower"], e["ci_upper"])])
            r = e.sort_values(["_z", "estimate"], ascending=False).iloc[0]
            months = ("" if _missing(r.get("months")) else
                      f" Between classrooms at the district's 25th and 75th percentile of access: roughly "
                      f"{_number(r['months'], 1)} months of learning (95% interval "
                      f"{_interval(r.get('months_ci_lower'), r.get('months_ci_upper'), lambda x: _number(x, 1))}).")
            cands.append(Finding(
                what=f"Growth with {labels.measure(r['resource']).lower()} ({labels.subject(r['subject'])})",
                number=f"{_number(r['estimate'], 2)} SD",
                interval=f"95% interval {_interval(r['ci_lower'], r['ci_upper'], lambda x: _number(x, 2))}; "
                         f"{labels.count(r['n'])} students",
                meaning=("Students in classrooms that always had this resource grew this much more over the year than "
                         "students in classrooms that never did (an association, not proof of cause)." + months),
                score=float(r["_z"])))
    comp = getattr(a, "composition", None)
    if comp is not None and len(comp):
        c = comp[~comp["suppressed"].astype(bool) & comp["measure"].isin(list(STUDY)) & comp["difference"].notna()
                 & comp["level"].astype(str).isin(["0", "0.0"]) & comp["group"].eq("majority_low_income")]
        if len(c):
            c = c.assign(_z=[_z(x, lo, hi, 0) for x, lo, hi in zip(c["difference"], c["ci_lower"], c["ci_upper"])])
            r = c.sort_values("_z", ascending=False).iloc[0]
            cands.append(Finding(
                what=f"{labels.measure(r['measure'])}: higher- vs lower-income classrooms",
                number=f"{float(r['ratio']):.1f}×" if not _missing(r["ratio"]) else labels.points(r["difference"]),
                interval=f"difference {labels.points(r['difference'])} points, 95% interval "
                         f"{_interval(r['ci_lower'], r['ci_upper'], labels.points)}; {labels.count(r['n'])} vs "
                         f"{labels.count(r['reference_n'])} classrooms",
                meaning=(f"Classrooms serving mostly higher-income students had this resource "
                         f"{labels.percent(r['estimate'])} of the time, vs {labels.percent(r['reference_estimate'])} in "
                         "classrooms serving mostly low-income students"
                         + (f" (the study found {_STUDY_INCOME_RATIO[r['measure']]}"
                            + (f"; {study_note(r['measure'], getattr(a, 'cuts', None))}"
                               if study_note(r["measure"], getattr(a, "cuts", None)) else "") + ")."
                            if r["measure"] in _STUDY_INCOME_RATIO else ".")),
                score=float(r["_z"])))
    cu = a.catch_up
    if len(cu):
        c = cu[(cu["school_id"] == "all") & (cu["group"] == "all") & (cu["subject"] == "all")
               & ~cu["suppressed"].astype(bool)].sort_values(["years_later", "start_year"], ascending=[True, False])
        if len(c):  # no natural point of comparison: shown only when fewer than three findings stand out
            r = c.iloc[0]
            cands.append(Finding(
                what="Students behind who caught up", number=labels.percent(r["estimate"]),
                interval=f"95% interval {_interval(r['ci_lower'], r['ci_upper'], labels.percent)}; "
                         f"{labels.count(r['n'])} students",
                meaning=(f"Of students below grade level in {labels.school_year(r['start_year'])}, this share was at "
                         f"grade level {int(r['years_later'])} year{'s' if int(r['years_later']) != 1 else ''} later."),
                score=0.0))
    order = sorted(range(len(cands)), key=lambda i: (-cands[i].score, i))
    ranked = [cands[i] for i in order]
    strong = [f for f in ranked if f.score > 0][:top]
    if len(strong) < 3:
        strong = ranked[:max(3, len(strong))]
    return strong


def first_screen(a, *, generated: _dt.date | None = None, source: str | None = None,
                 findings: Sequence[Finding] | None = None) -> HtmlBlock:
    """The report's first screen: district, school year, date, data source, demo banner, ranked findings.

    ``a`` is a :class:`~opportunity_research.study.analysis.DistrictAnalysis`. The school year is the analysis
    year; ``generated`` defaults to today (UTC); ``source`` to a description of the district's data.
    """
    from ..study.measures import analysis_year

    d = a.district
    did = d.district_id
    demo = is_demo(did)
    year = analysis_year(d)
    date = (generated or _dt.datetime.now(_dt.UTC).date())
    if source is None:
        files = sorted(d.manifest.get("inputs", {}))
        source = ("Synthetic demonstration data (opportunity-research synthesize)" if demo else
                  f"The district's own records ({len(files)} files: {', '.join(files[:6])}"
                  + (", ..." if len(files) > 6 else "") + ")")
    found = list(findings) if findings is not None else headline_findings(a)
    name = district_name(did)
    html = render("first_screen.html.j2", title=f"Opportunity report: {name}", name=name, district_id=did,
                  school_year=labels.school_year(year), generated=f"{date:%d %B %Y}".lstrip("0"),
                  source=source, demo=demo, findings=found,
                  n_students=labels.count(len(d.students)), n_schools=labels.count(d.schools["school_id"].nunique()))
    text = "\n".join([f"Opportunity report: {name} ({labels.school_year(year)})"]
                     + [f"{i + 1}. {f.what}: {f.number} ({f.interval}). {f.meaning}" for i, f in enumerate(found)])
    return HtmlBlock(html, text)


# ---------------------------------------------------------------------------------------------
# The Opportunity Scorecard page


def _measure_value(measure: str, x) -> str:
    if _missing(x):
        return labels.MISSING
    return _number(x, 2) if measure == "growth_grade_levels" else labels.percent(x)


def _with_values(t: pd.DataFrame) -> pd.DataFrame:
    t = t.copy()
    t["value_text"] = [_measure_value(m, v) for m, v in zip(t["measure"], t["estimate"])]
    t["interval_text"] = [labels.MISSING if _missing(lo) or _missing(hi) else
                          f"{_measure_value(m, lo)} to {_measure_value(m, hi)}"
                          for m, lo, hi in zip(t["measure"], t["ci_lower"], t["ci_upper"])]
    return t


def _trend(r) -> str:
    if _missing(r["first_year"]):
        return "One year only"
    if _missing(r["change"]):
        return f"Since {labels.school_year(r['first_year'])}: not available"
    if r["measure"] == "growth_grade_levels":
        ch = _number(r["change"], 2)
        ch = ch if ch.startswith("−") else "+" + ch
    else:
        ch = labels.points(r["change"], 0) + " points"
    return f"{ch} since {labels.school_year(r['first_year'])} ({_measure_value(r['measure'], r['first_estimate'])})"


def scorecard_tables(card, *, school_names: Mapping | None = None) -> list[Table]:
    """The scorecard's tables: goals, district measures with trends, student groups, largest gaps, schools.

    Every table is long (one row per value), so no column is lost on paper or on a phone.
    """
    names = {**getattr(card, "schools", {}), **dict(school_names or {})}
    min_n = card.min_n
    out = [goals_table(card.goals)]
    t = card.table
    value_cols = [Col("value_text", "value", label="Value"), Col("interval_text", "value", label="95% interval"),
                  Col("n", "count")]
    if len(t):
        dist = _with_values(t[(t["school_id"] == "all") & (t["group"] == "all")])
        dist["trend"] = [_trend(r) for r in dist.to_dict("records")]
        out.append(table(dist, [Col("measure", "measure"), Col("school_year", "school_year")] + value_cols
                         + [Col("trend", "note", label="Trend")],
                         caption="District measures", min_n=min_n,
                         subtitle="The latest value of each measure with its 95% interval, and the change since the "
                                  "first year with data."))
        grp = _with_values(t[(t["school_id"] == "all") & (t["group"] != "all")])
        if len(grp):
            out.append(table(grp, [Col("group", "groupspec", label="Students")] + value_cols, caption="District by student group", groups="measure", min_n=min_n))
        sch = _with_values(t[(t["school_id"] != "all") & (t["group"] == "all")])
        if len(sch):
            sch["school_label"] = [labels.school(x, names) for x in sch["school_id"]]
            sch = sch.sort_values(["school_label"], kind="stable")
            out.append(table(sch, [Col("measure", "measure")] + value_cols,
                             caption="Schools", groups="school_label", min_n=min_n))
    lg = card.largest_gaps
    if len(lg):
        lg = lg.copy()
        lg["who"] = [labels.level(g, lv) if not _missing(lv) else r for g, lv, r in
                     zip(lg["group"], lg["level"], lg["note"])]
        lg["reference_text"] = [("All other students" if _missing(ref) or str(ref) in ("all other students", "nan")
                                 else labels.level(g, ref)) if not _missing(d) else ""
                                for g, ref, d in zip(lg["group"], lg["reference"], lg["difference"])]
        cols = [Col("measure", "measure", label="Resource")] + (
            [Col("subject", "subject")] if "subject" in lg.columns else []) + [
            Col("who", label="Students"), Col("estimate", "percent", label="Their share"),
            Col("reference_text", label="Compared with"), Col("reference_estimate", "percent", label="Share"),
            Col("difference", "points"), Col("interval", "interval_points")]
        out.append(table(lg, cols, caption="Largest gaps in access",
                         subtitle="Per resource, the group furthest below the students it is compared with."))
    return out


def scorecard_page(card, *, district_id: str, links: Sequence[tuple[str, str | None]] = (),
                   generated: _dt.date | None = None, school_names: Mapping | None = None) -> str:
    """The printable Opportunity Scorecard page (self-contained HTML) of a :class:`~opportunity_research.study.scorecard.Scorecard`."""
    name = district_name(district_id)
    t = card.table
    years = sorted({int(y) for y in t["school_year"]}) if len(t) else []
    date = generated or _dt.datetime.now(_dt.UTC).date()
    facts = [("School year", labels.school_year(years[-1]) if years else labels.MISSING),
             ("Generated", f"{date:%d %B %Y}".lstrip("0")),
             ("Data source", "Synthetic demonstration data" if is_demo(district_id) else "The district's own records")]
    tables = scorecard_tables(card, school_names=school_names)
    title = f"Opportunity Scorecard: {name}"
    from ..study import scorecard as _sc

    rules = getattr(_sc, "GOAL_STATUS_RULES", None) or {
        "on track": "at or past the straight-line path from the baseline to the target"}
    statuses = [_STATUS.get(k, k) for k in getattr(_sc, "GOAL_STATUSES", _STATUS)]
    return render("scorecard.html.j2", title=title, kicker="Opportunity Scorecard", heading=name, facts=facts,
                  banner=_DEMO_BANNER if is_demo(district_id) else "",
                  links=[{"text": x, "href": h} for x, h in links], tables=tables, needs=list(card.needs),
                  statuses=statuses, rules=[(_STATUS.get(k, k), v) for k, v in rules.items()], min_n=card.min_n,
                  mark=SUPPRESSED_MARK,
                  running_head=title, running_right=facts[0][1],
                  footer=f"Generated by opportunity-research {__version__}. Belonging, consistency and coherence are "
                         "shares of students answering favorably. Catch-up rate: share of students below grade level "
                         "who are at grade level later. Growth: grade levels gained per year (1.0 = a typical year).")


_DEMO_BANNER = ("Synthetic demonstration data: this district and its students are invented; the numbers show what "
                "the report does, not any real school system.")


def schools_table(card, *, school_names: Mapping | None = None) -> Table:
    """School-level breakdown: every scorecard measure per school (latest year), schools by name."""
    names = {**getattr(card, "schools", {}), **dict(school_names or {})}
    t = card.table
    sch = _with_values(t[(t["school_id"] != "all") & (t["group"] == "all")]) if len(t) else t
    if len(sch):
        sch = sch.assign(school_label=[labels.school(x, names) for x in sch["school_id"]])
        sch = sch.sort_values(["school_label"], kind="stable")
    return table(sch, [Col("measure", "measure"), Col("value_text", "value", label="Value"),
                       Col("interval_text", "value", label="95% interval"), Col("n", "count")],
                 caption="Schools: every measure, latest year", groups="school_label" if len(sch) else None,
                 min_n=card.min_n, empty="No school-level measures could be computed.")


def model_trust_note(growth: pd.DataFrame) -> HtmlBlock:
    """One plain-language line on whether the growth models can be trusted (details in the appendix)."""
    if growth is None or not len(growth):
        text = ("The district has too few students with fall and spring scores in the analysis year to estimate "
                "what access is worth.")
    else:
        m = growth.drop_duplicates(["subject", "model"])
        bad = m[~m["converged"].astype(bool)]
        if len(bad):
            which = "; ".join(f"{labels.subject(s)}: {labels.measure(x).lower()}" for s, x in
                              zip(bad["subject"], bad["model"]))
            text = (f"{len(bad)} of {len(m)} growth models could not be verified ({which}); their rows are marked † "
                    "and should not be relied on. The technical appendix says why.")
        else:
            text = (f"All {len(m)} growth models were verified (the estimation engine's checks passed); the "
                    "technical appendix lists their samples.")
    return HtmlBlock(f'<p class="note" role="note">{_html.escape(text)}</p>', text)


#: Table styles of the HTML report, scoped to JupyterLab's and Jupyter's output areas (whose own table rules
#: right-align every cell and put the caption into the title), for :func:`lab_style`.
LAB_CSS = """
.jp-OutputArea-output .table-wrap, .output_html .table-wrap { margin: .4rem 0 1rem; max-width: 100%; }
.jp-OutputArea-output table.gt_table, .output_html table.gt_table {
  border-collapse: collapse; font-size: .88rem; font-variant-numeric: tabular-nums; width: auto; max-width: 100%;
  table-layout: auto; margin: 0; }
.jp-OutputArea-output table.gt_table > caption, .output_html table.gt_table > caption {
  caption-side: top; text-align: left; padding: 0 0 .4rem; }
.jp-OutputArea-output table.gt_table > caption .gt_title, .output_html table.gt_table > caption .gt_title {
  display: block; font-weight: 700; font-size: .95rem; }
.jp-OutputArea-output table.gt_table > caption .gt_subtitle, .output_html table.gt_table > caption .gt_subtitle {
  display: block; font-weight: 400; font-size: .85rem; color: var(--jp-ui-font-color2, #555); }
.jp-OutputArea-output table.gt_table th, .jp-OutputArea-output table.gt_table td,
.output_html table.gt_table th, .output_html table.gt_table td {
  padding: .2rem .45rem; border: 0; border-bottom: 1px solid var(--jp-border-color2, #ddd); white-space: normal;
  vertical-align: top; }
.jp-OutputArea-output table.gt_table .gt_left, .output_html table.gt_table .gt_left { text-align: left; }
.jp-OutputArea-output table.gt_table .gt_right, .output_html table.gt_table .gt_right {
  text-align: right; white-space: nowrap; }
.jp-OutputArea-output table.gt_table th.gt_col_heading, .output_html table.gt_table th.gt_col_heading {
  border-bottom: 2px solid var(--jp-ui-font-color1, #555); font-weight: 600; vertical-align: bottom;
  white-space: normal; }
.jp-OutputArea-output table.gt_table .gt_group_heading, .output_html table.gt_table .gt_group_heading {
  text-align: left; font-weight: 700; background: var(--jp-layout-color2, #f2f2f2); }
.jp-OutputArea-output table.gt_table .gt_sourcenote, .output_html table.gt_table .gt_sourcenote {
  text-align: left; font-size: .8rem; color: var(--jp-ui-font-color2, #555); border: 0; }
.jp-OutputArea-output p.note, .output_html p.note { font-size: .9rem; }
"""


def lab_style() -> HtmlBlock:
    """The report's table styles for tables shown in JupyterLab (captions, left-aligned labels, right-aligned
    numbers, source notes). Display it once in a notebook cell whose output the published report leaves out
    (a cell tagged ``remove``); the published pages have their own stylesheet."""
    return HtmlBlock(f"<style>{LAB_CSS}</style>", "")


def methods_scoring(cuts: Mapping | None = None) -> HtmlBlock:
    """The Methods bullet on scoring, stating the cut points this report used (a changed one says so).

    Examples
    --------
    >>> "at least 5 of 6 (TNTP’s default: 4)" in methods_scoring({"grade_appropriate": 5}).html
    True
    """
    from .settings import scoring_text

    lead, _, rest = scoring_text(cuts).partition(": ")
    return HtmlBlock(f"<ul><li><strong>{_html.escape(lead)}</strong>: {_html.escape(rest)}</li></ul>",
                     f"- {lead}: {rest}")


def link(text: str, href: str, *, note: str = "") -> HtmlBlock:
    """A link shown in the report (e.g. to the scorecard page beside it)."""
    return HtmlBlock(f'<p class="note"><a href="{_html.escape(href)}">{_html.escape(text)}</a>'
                     + (f" {_html.escape(note)}" if note else "") + "</p>", f"{text}: {href}")


# ---------------------------------------------------------------------------------------------
# Sensitivity of growth effects to unmeasured confounding (added beside the growth table)


def robustness_note(growth: pd.DataFrame) -> HtmlBlock:
    """The growth section's plain sentences on how strong a hidden confounder would have to be (one per effect).

    From :func:`opportunity_research.study.findings.robustness_sentences`; empty when there is no growth model.
    """
    from ..study.findings import robustness_sentences

    items = robustness_sentences(growth)
    if not items:
        return HtmlBlock("", "")
    html = ('<div class="note" role="note"><p><strong>Could something unmeasured explain these effects '
            "away?</strong></p><ul>" + "".join(f"<li>{_html.escape(t)}</li>" for t in items) + "</ul></div>")
    return HtmlBlock(html, "\n".join(items))


def sensitivity_table(growth: pd.DataFrame) -> Table:
    """Technical appendix: robustness values of every growth effect, its benchmark and E-value.

    Columns from :data:`opportunity_research.study.growth.SENSITIVITY_COLUMNS` (no student counts: the
    degrees of freedom count classrooms).
    """
    g = growth
    if len(g) and "robustness_value" in g.columns:
        g = g.copy()
        g["model_label"] = [labels.measure(r) if m != "all_four" else f"{labels.measure(r)} (all four together)"
                            for m, r in zip(g["model"], g["resource"])]
        g["benchmark_label"] = [labels.level(b, 1) if isinstance(b, str) and b else labels.MISSING
                                for b in g["benchmark"]]
    else:
        g = pd.DataFrame()
    cols = [Col("model_label", label="Resource"), Col("effect", "measure"),
            Col("t_value", "number", label="t"), Col("sensitivity_dof", label="Degrees of freedom (classrooms)"),
            Col("partial_r2", "percent1", label="Partial R² of access"),
            Col("robustness_value", "percent1", label="Robustness value"),
            Col("robustness_value_05", "percent1", label="Robustness value (5% level)"),
            Col("benchmark_label", "note", label="Strongest observed classroom share"),
            Col("benchmark_r2_access", "percent1", label="Its partial R² with access"),
            Col("benchmark_r2_growth", "percent1", label="Its partial R² with growth"),
            Col("benchmark_adjusted_contrast", "number", label="Contrast after a confounder as strong (SD)"),
            Col("e_value", "number", label="E-value"), Col("e_value_ci", "number", label="E-value, interval")]
    notes = [("Robustness value (Cinelli & Hazlett 2020): the share of the remaining variation in both access and "
              "growth an unmeasured classroom factor would have to explain to bring the effect to zero (5% level: "
              "to make it statistically indistinguishable from zero). Computed from the model's t value with "
              "degrees of freedom = classrooms minus the fixed effects constant within classrooms, since access "
              "varies by classroom. Benchmarks: classroom shares of low-income students, English learners and "
              "students with disabilities, in classroom-level regressions. E-value (VanderWeele & Ding 2017) of the "
              "25th → 75th percentile contrast, with RR = exp(0.91 × SD).")]
    return table(g, cols, caption="How strong would a hidden confounder have to be? Sensitivity of every growth effect",
                 groups="subject" if len(g) else None, notes=notes, empty="No growth model was fitted.")



# ---------------------------------------------------------------------------------------------
# Gaps and means from performance levels (V statistic, HETOP)

_FLAGS = ("low_income", "english_learner", "disability")


def v_gap_table(gaps: pd.DataFrame, *, year: int | None = None) -> Table:
    """V gaps (from counts by performance level) beside scale-score gaps, each group vs all other students.

    ``gaps`` is :func:`opportunity_research.study.levelgaps.level_gaps` (the latest year unless ``year``); for
    0/1 groups only the flagged group is shown (the other row is its mirror image). Count columns: ``n``,
    ``reference_n``.
    """
    g = gaps if gaps is not None else pd.DataFrame()
    if len(g):
        year = int(g["school_year"].max()) if year is None else int(year)
        g = g[(g["school_year"] == year) & ~(g["group"].isin(_FLAGS) & (g["level"].astype(str) == "0"))].copy()
        g["group_label"] = [labels.level(v, lv) for v, lv in zip(g["group"], g["level"])]
    has_scores = len(g) and g["score_gap"].notna().any()
    cols = [Col("group_label", label="Group"), Col("n", "count"), Col("reference_n", "count", label="All other students"),
            Col("v", "number", label="V gap (SD)"), Col("v", "interval_number", prefix="v_", label="V, 95% interval")]
    if has_scores:
        cols += [Col("score_gap", "number", label="Scale-score gap (SD)"),
                 Col("score_gap", "interval_number", prefix="score_gap_", label="Scale-score gap, 95% interval")]
    notes = [("V (Ho & Reardon 2012): the gap between the group and all other students in pooled standard deviations, "
              "estimated from how many students of each are at each performance level (binormal maximum "
              "likelihood); it does not depend on where the cut scores fall. Negative: the group scores lower.")]
    if has_scores:
        notes.append("Scale-score gap: the same comparison from scale scores standardized within grade.")
    return table(g, cols, caption=f"Achievement gaps from performance levels{'' if not len(g) else f', spring {year}'}",
                 groups="subject" if len(g) else None, notes=notes,
                 empty="No counts of students by performance level.")


def hetop_table(means: pd.DataFrame, *, school_names: Mapping | None = None) -> Table:
    """Group means and SDs estimated from counts by performance level (HETOP), in district SD units."""
    m = means if means is not None else pd.DataFrame()
    if len(m):
        m = m.copy()
        school = m["group"].astype(str) == "all"
        m["group_label"] = [labels.school(sc, school_names) if isc else labels.group(gr)
                            for isc, sc, gr in zip(school, m["school_id"], m["group"])]
        m["grouping_label"] = [f"{labels.subject(su)}: " + ("schools" if isc else labels.variable(gr.partition("=")[0]))
                               for su, isc, gr in zip(m["subject"], school, m["group"].astype(str))]
        m["sd_shared"] = m["sd_shared"].map(lambda x: "shared" if x is True or x == 1 else "own")
    cols = [Col("group_label", label="School or group"), Col("n", "count"), Col("mean", "number", label="Mean (SD units)"),
            Col("mean", "interval_number", prefix="mean_", label="Mean, 95% interval"),
            Col("sd", "number", label="SD"), Col("sd", "interval_number", prefix="sd_", label="SD, 95% interval"),
            Col("sd_shared", label="SD estimated")]
    notes = [("HETOP (Reardon, Shear, Castellano & Ho 2017): each school's or group's mean and standard deviation "
              "estimated from its counts by performance level, on a scale where the district's students have mean "
              "0 and SD 1. Groups of fewer than 50 students share one SD.")]
    return table(m, cols, caption="Average achievement from performance levels (HETOP)",
                 groups="grouping_label" if len(m) else None, notes=notes, school_names=school_names,
                 empty="No counts of students by performance level.")


# ---------------------------------------------------------------------------------------------
# The cross-district report


def _district_col(t: pd.DataFrame) -> pd.DataFrame:
    return t.assign(district=[district_name(d) for d in t["district_id"]]) if len(t) else t


def cross_resources_table(resources: pd.DataFrame) -> Table:
    """Each district's share of class time with each resource (``crossdistrict.compare(...).resources``)."""
    t = _district_col(resources)
    if len(t):
        t = t.assign(study=[STUDY.get(r, (np.nan,))[0] for r in t["resource"]]).sort_values(
            ["resource", "district"], kind="stable")
    return table(t, [Col("district", label="District"), Col("n", "count", label="Evidence"),
                     Col("estimate", "percent", label="Share"), Col("interval", "interval_percent"),
                     Col("study", "percent", label="Study (2018)")],
                 caption="The four resources in each district", groups="resource" if len(t) else None,
                 notes=[f"Study: {STUDY_SOURCE}."])


def cross_gaps_table(gaps: pd.DataFrame) -> Table:
    """Per district and resource, the largest unsuppressed shortfall (``crossdistrict.compare(...).gaps``)."""
    t = _district_col(gaps)
    return table(t, [Col("district", label="District"), Col("subject", "subject"), Col("level", "group"),
                     Col("n", "count"), Col("difference", "points"), Col("interval", "interval_points")],
                 caption="Largest gap in each resource, by district", groups="measure" if len(t) else None,
                 subtitle="The group furthest below all other students, per district; percentage points.")


def cross_growth_table(growth: pd.DataFrame) -> Table:
    """Growth-model effects (all four resources together) per district (``crossdistrict.compare(...).growth``)."""
    t = _district_col(growth)
    if len(t):
        t = t.assign(district=[d + ("" if bool(c) else " †") for d, c in zip(t["district"], t["converged"])])
        t = t.sort_values(["resource", "effect", "district", "subject"], kind="stable")
    notes = ["Standard deviations of the spring score, full vs no access; months of learning are an approximation."]
    if len(t) and not t["converged"].astype(bool).all():
        notes.append("† The model could not be verified; do not rely on this row.")
    return table(t, [Col("district", label="District"), Col("subject", "subject"), Col("effect", "measure"),
                     Col("estimate", "number", label="Effect (SD)"), Col("interval", "interval_number"),
                     Col("months", "number1", label="Months")],
                 caption="What access is worth, by district", groups="resource" if len(t) else None, notes=notes,
                 empty="No district had enough students for growth models.")


def cross_goals_table(goals: pd.DataFrame) -> Table:
    """Every district's goals and their status (``crossdistrict.compare(...).goals``)."""
    t = _district_col(goals)
    if len(t):
        t = t.assign(target_text=[(labels.percent(v) if m != "growth_grade_levels" else _number(v, 2))
                                  + f" by {labels.year(y)}" for v, m, y in zip(t["target"], t["measure"],
                                                                                t["target_year"])])
    return table(t, [Col("district", label="District"), Col("goal_id", label="Goal"), Col("measure", "measure"),
                     Col("group", "groupspec", label="Students"), Col("target_text", label="Target"),
                     Col("status", "status")],
                 caption="Goals and their status, by district", empty="No district has written goals.")
