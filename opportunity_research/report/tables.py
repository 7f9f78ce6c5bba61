"""Display tables and page rendering: the machinery every report page builds on.

:func:`table` formats a tidy table column by column (:class:`Col`: a column and a format) and lays it out
with `great_tables <https://posit-dev.github.io/great-tables/>`_ (caption, column labels, spanners, row
groups, source notes). The table library's own stylesheet is dropped: the page's stylesheet
(``templates/report.css``) styles every table alike, and on narrow screens each row reflows into a block whose
values carry their column header (``data-label``), so no page scrolls sideways on a phone. The first cell of
each row is a row header (``<th scope="row">``), so a screen reader names the group with each value; ids are
unique per table; a table with row groups (``groups=``) becomes one table per group whose repeated header
names the group, so a printed continuation page still says which subject its rows belong to. Rows flagged
``suppressed`` show :data:`SUPPRESSED_MARK` in every value cell (counts included) and the table gets a note
explaining the mark. An interval is one cell ("22% to 30%") beside the number it belongs to.
:func:`render` renders the package's page templates.

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
from ..intake.contract import ALL_OTHERS
from ..study import labels
from ..study.labels import SUPPRESSED_LABEL, SUPPRESSED_MARK
from ..version import __version__

__all__ = [
    "STATUS_TEXT",
    "Col",
    "HtmlBlock",
    "Table",
    "fmt_number",
    "humanize",
    "interval_text",
    "is_missing",
    "reader_words",
    "render",
    "stylesheet",
    "table",
]

_TEMPLATES = Path(__file__).with_name("templates")


# ---------------------------------------------------------------------------------------------
# Templates


@lru_cache(maxsize=1)
def _env():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
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
    """The pages' stylesheet (``templates/report.css``).

    Examples
    --------
    >>> "@media print" in stylesheet()
    True
    """
    return (_TEMPLATES / "report.css").read_text(encoding="utf-8")


def render(template: str, **context) -> str:
    """Render one of the package's templates (``templates/<template>``) with ``context``.

    Every page template extends ``base.html.j2``, which needs ``title``; the stylesheet, version and
    running header/footer have defaults.

    Examples
    --------
    >>> "<title>A page</title>" in render("base.html.j2", title="A page")
    True
    """
    ctx = {
        "css": stylesheet(),
        "version": __version__,
        "links": [],
        "kicker": "",
        "heading": "",
        "facts": [],
        "banner": "",
        "footer": "",
        "running_head": context.get("title", ""),
        "running_right": "",
        "running_foot": f"Generated {labels.long_date(_dt.datetime.now(_dt.UTC))} by opportunity-research {__version__}",
    }
    ctx.update(context)
    return _env().get_template(template).render(**ctx)


class HtmlBlock:
    """A piece of HTML shown by Jupyter (``_repr_html_``), with a plain-text form.

    Examples
    --------
    >>> b = HtmlBlock("<p>Hi</p>", "Hi")
    >>> b._repr_html_(), repr(b)
    ('<p>Hi</p>', 'Hi')
    """

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

    Examples
    --------
    >>> Col("n", "count").header, Col("ci_lower", "interval_percent").header
    ('Students', '95% interval')
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


_KEY_FORMATS = {
    "text",
    "group",
    "groupspec",
    "measure",
    "subject",
    "school",
    "year",
    "school_year",
    "reference",
}
STATUS_TEXT = {
    "met": "✓ Met",
    "on track": "↗ On track",
    "off track": "✗ Off track",
    "baseline set": "◔ Baseline set",
    "no data": "○ No data",
}


def is_missing(v) -> bool:
    """True for None, NA and NaN.

    Examples
    --------
    >>> is_missing(float("nan")), is_missing(None), is_missing(0)
    (True, True, False)
    """
    return (
        v is None
        or v is pd.NA
        or (isinstance(v, float) and math.isnan(v))
        or (isinstance(v, (np.floating,)) and np.isnan(v))
    )


def fmt_number(v, digits: int) -> str:
    """A number with ``digits`` decimals and a true minus sign (the missing mark when missing).

    Examples
    --------
    >>> fmt_number(-0.123, 2), fmt_number(None, 1)
    ('−0.12', '–')
    """
    if is_missing(v):
        return labels.MISSING
    return f"{float(v):.{digits}f}".replace("-", "−")


_GROUP_SPEC = re.compile(r"\b([a-z][a-z_]*)=([A-Za-z0-9_.\-]+)")
_ID_WORDS = {"school_id": "school", "classroom_id": "classroom", "teacher_id": "teacher"}


def humanize(text) -> str:
    """Identifiers inside free text (a goal's reason, an engine message) as words: ``"race_ethnicity=black"``
    -> ``"Black or African American students"``, ``school_id`` -> ``school``.

    Examples
    --------
    >>> humanize("no data for this group (low_income=1)")
    'no data for this group (Low-income students)'
    """
    if is_missing(text):
        return ""
    out = _GROUP_SPEC.sub(lambda m: labels.group(f"{m.group(1)}={m.group(2)}"), str(text))
    return re.sub(r"\b(school_id|classroom_id|teacher_id)\b", lambda m: _ID_WORDS[m.group(1)], out)


_FILE_WORDS = {
    "climate_surveys": "the climate survey file",
    "assessments": "the assessment results",
    "goals": "a goals file",
    "observations": "the lesson observations",
    "assignments": "the assignment ratings",
    "student_surveys": "the student surveys",
    "teacher_surveys": "the teacher surveys",
    "work_samples": "the student work samples",
    "attendance": "the attendance records",
    "courses": "the course records",
    "programs": "the program records",
}


def reader_words(text) -> str:
    """A sentence about data files as a reader says it: ``"assessments.grade_equivalent (...)"`` -> ``"grade-
    equivalent scores in the assessment results (...)"``, ``"climate_surveys.csv"`` -> ``"the climate survey
    file"``, other snake_case names as words. (The data contract names the files and columns.)

    Examples
    --------
    >>> reader_words("assessments.grade_equivalent (spring results)")
    'grade-equivalent scores in the assessment results (spring results)'
    >>> reader_words("climate_surveys.csv for belonging")
    'the climate survey file for belonging'
    """
    out = humanize(text)
    out = re.sub(
        r"\b([a-z_]+)\.([a-z][a-z_]+)\b(?<!\.csv)",
        lambda m: (
            m.group(0)
            if m.group(2) == "csv"
            else f"{m.group(2).replace('_', '-')} scores in {_FILE_WORDS.get(m.group(1), m.group(1).replace('_', ' '))}"
            if m.group(2).endswith(("equivalent", "score", "scale_score"))
            else f"{m.group(2).replace('_', ' ')} in {_FILE_WORDS.get(m.group(1), m.group(1).replace('_', ' '))}"
        ),
        out,
    )
    out = re.sub(
        r"\b([a-z_]+)\.csv\b",
        lambda m: _FILE_WORDS.get(m.group(1), f"the {m.group(1).replace('_', ' ')} file"),
        out,
    )
    out = re.sub(
        r"\b[a-z]+(?:_[a-z0-9]+)+\b",
        lambda m: m.group(0).replace("_", " ").replace("grade equivalent", "grade-equivalent"),
        out,
    )
    return out


def interval_text(lo, hi, fmt) -> str:
    """``"<lo> to <hi>"`` formatted by ``fmt`` (the missing mark when either is missing).

    Examples
    --------
    >>> from opportunity_research.study import labels
    >>> interval_text(0.07, 0.13, labels.percent)
    '7% to 13%'
    """
    if is_missing(lo) or is_missing(hi):
        return labels.MISSING
    return f"{fmt(lo)} to {fmt(hi)}"


def _records(data: pd.DataFrame, cols: list[Col]) -> list[dict]:
    """``data.to_dict("records")`` with only the columns :func:`_cell` reads (a column's own, ``group``, an
    interval's bounds): a report's tidy tables carry many more, and the conversion goes a column at a time.

    Examples
    --------
    >>> t = pd.DataFrame({"group": ["low_income"], "n": [40], "reference_n": [500], "ci_lower": [0.4], "ci_upper": [0.6]})
    >>> _records(t, [Col("n", "count"), Col("estimate", "interval_percent")])
    [{'group': 'low_income', 'n': 40, 'ci_lower': 0.4, 'ci_upper': 0.6}]
    """
    used = {c.name for c in cols} | {"group"}
    used |= {
        f"{c.prefix}ci_{end}" for c in cols if c.fmt.startswith("interval") for end in ("lower", "upper")
    }
    if not data.columns.is_unique:
        return [{k: v for k, v in r.items() if k in used} for r in data.to_dict("records")]
    names = [c for c in data.columns if c in used]
    return (
        [dict(zip(names, row)) for row in zip(*(data[c].tolist() for c in names))]
        if names
        else [{}] * len(data)
    )


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
        return fmt_number(v, 2)
    if f == "number1":
        return fmt_number(v, 1)
    if f == "ratio":
        return labels.MISSING if is_missing(v) else f"{float(v):.2f}×"
    if f.startswith("interval"):
        fm = {
            "interval_percent": labels.percent,
            "interval_points": labels.points,
            "interval_ratio": lambda x: f"{float(x):.2f}",
            "interval_number": lambda x: fmt_number(x, 2),
            "interval_number1": lambda x: fmt_number(x, 1),
        }[f]
        return interval_text(row.get(f"{col.prefix}ci_lower"), row.get(f"{col.prefix}ci_upper"), fm)
    if f == "status":
        return STATUS_TEXT.get(str(v), str(v))
    if f in ("value", "note"):  # preformatted text (masked in suppressed rows); "note" is left-aligned
        return labels.MISSING if is_missing(v) else str(v)
    if f == "reference":
        if is_missing(v) or str(v) in (ALL_OTHERS, "all others", ""):
            return labels.ALL_OTHERS_LABEL.capitalize()
        return labels.level(row.get("group", ""), v)
    if is_missing(v):
        return labels.MISSING
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    return str(v)


class Table(HtmlBlock):
    """A display table (great_tables layout, this package's formats and labels).

    Examples
    --------
    >>> import pandas as pd
    >>> t = table(pd.DataFrame({"n": [12]}), [Col("n", "count")], caption="Counts")
    >>> isinstance(t, Table), t.headers, t.frame.to_dict("records")
    (True, ['Students'], [{'Students': '12'}])
    """

    def __init__(self, html: str, text: str, headers: list[str], frame: pd.DataFrame):
        super().__init__(html, text)
        self.headers = headers
        self.frame = frame


def _suppression_note(min_n: int) -> str:
    return (
        f"{SUPPRESSED_MARK} {SUPPRESSED_LABEL.capitalize()}: describes fewer than {min_n} students, or could be "
        "recovered from "
        "totals and neighbouring cells; its numbers, counts included, are not shown."
    )


_GT_STYLE = re.compile(r"<style>.*?</style>", re.DOTALL)
_GT_DIV = re.compile(r'^\s*<div id="[a-z]+" style="[^"]*">', re.DOTALL)
_TD = re.compile(r'<td headers="([^"]*)" class="gt_row ([^"]*)">')


def table(
    data: pd.DataFrame,
    columns: Sequence[Col | tuple | str],
    *,
    caption: str,
    subtitle: str | None = None,
    groups: str | None = None,
    spanners: Mapping[str, Sequence[str]] | None = None,
    notes: Iterable[str] = (),
    school_names: Mapping | None = None,
    min_n: int = config.MIN_CELL_SIZE,
    empty: str = "No rows to show.",
) -> Table:
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

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"subject": ["ela", "math"], "group": "low_income", "level": [1, 1], "n": [40, 42]})
    >>> html = table(t, [Col("level", "group"), Col("n", "count")], caption="By subject", groups="subject").html
    >>> html.count("<table"), '<th scope="row"' in html  # one table per subject; groups as row headers
    (2, True)
    """
    from .gt_fast import TableClass as GT

    if not caption:
        raise ValueError("table: every report table needs a caption")
    cols = [c if isinstance(c, Col) else Col(*c) if isinstance(c, tuple) else Col(c) for c in columns]
    bad = [
        c.name for c in cols if re.match(r"^(student|teacher)s?_?(id|ids|name|names)$", c.name, re.IGNORECASE)
    ]
    if bad:
        raise ValueError(f"table: identifier column(s) {bad} cannot be shown in a report")
    headers = [c.header for c in cols]
    if data is None or len(data) == 0:
        html = (
            f'<div class="table-wrap"><p class="note"><strong>{_html.escape(caption)}.</strong> '
            f"{_html.escape(empty)}</p></div>"
        )
        return Table(html, f"{caption}\n{empty}", headers, pd.DataFrame(columns=headers))
    supp = (
        data["suppressed"].fillna(False).astype(bool).to_numpy()
        if "suppressed" in data.columns
        else np.zeros(len(data), dtype=bool)
    )
    keys = [f"c{i}" for i in range(len(cols))]
    out = {k: [] for k in keys}
    for i, row in enumerate(_records(data, cols)):
        for k, c in zip(keys, cols):
            out[k].append(
                SUPPRESSED_MARK if supp[i] and c.fmt not in _KEY_FORMATS else _cell(c, row, school_names)
            )
    frame = pd.DataFrame(out)
    group_col = None
    if groups is not None:
        group_col = "_group"
        frame[group_col] = [
            labels.subject(v)
            if groups == "subject"
            else labels.measure(v)
            if groups in ("measure", "resource")
            else str(v)
            for v in data[groups]
        ]
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
    if hasattr(gt, "markup"):  # FastGT: the table alone, no CSS compiled (the page's stylesheet styles it)
        html = f'<div class="table-wrap">\n\n{gt.markup()}\n</div>\n'
    else:
        html = gt.as_raw_html(inline_css=False)
        html = _GT_STYLE.sub("", html, count=1)
        html = _GT_DIV.sub('<div class="table-wrap">', html, count=1)
    # the caption is a <caption> (the first table row stays the header row, which screen readers and the
    # privacy screen read as the column headers)
    cap = (
        f'<caption><span class="gt_title">{_html.escape(caption)}</span>'
        + (f'<span class="gt_subtitle">{_html.escape(subtitle)}</span>' if subtitle else "")
        + "</caption>"
    )
    html = re.sub(
        r'<table class="gt_table"([^>]*)>',
        lambda m: f'<table class="gt_table reflow"{m.group(1)}>{cap}',
        html,
        count=1,
    )
    lookup = dict(zip(keys, headers))

    def td(m: re.Match) -> str:
        key = m.group(1).split()[-1]
        lab = lookup.get(key, "")
        return (
            f'<td headers="{m.group(1)}" class="gt_row {m.group(2)}" data-label="{_html.escape(lab)}">'
            if lab
            else m.group(0)
        )

    html = _TD.sub(td, html)
    html = _row_headers(html)
    html = _unique_ids(html, caption + (subtitle or ""))
    if group_col:
        html = _split_groups(html, caption)
    # plain-text form
    widths = [max([len(h)] + [len(s) for s in frame[k]]) for k, h in zip(keys, headers)]
    lines = [caption, "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += [
        "  ".join(str(s).ljust(w) for s, w in zip(r, widths)).rstrip()
        for r in frame[keys].itertuples(index=False, name=None)
    ]
    if supp.any():
        lines.append(f"{SUPPRESSED_MARK} suppressed")
    shown = frame[keys].set_axis(headers, axis=1)
    return Table(html, "\n".join(lines), headers, shown)


_FIRST_TD = re.compile(r'<td headers="([^"]*\bc0)" class="gt_row ([^"]*)"([^>]*)>(.*?)</td>', re.DOTALL)


def _row_headers(html: str) -> str:
    """The first cell of each body row as a row header (``<th scope="row">``), so a screen reader names the row
    (the group, the measure) with every value of it."""
    return _FIRST_TD.sub(
        lambda m: (
            f'<th scope="row" headers="{m.group(1)}" class="gt_row gt_stub {m.group(2)}"'
            f"{m.group(3)}>{m.group(4)}</th>"
        ),
        html,
    )


def _unique_ids(html: str, key: str) -> str:
    """Ids (column and group headings) and the ``headers`` that point at them, prefixed per table, so two tables
    on one page never share an id."""
    import hashlib

    pre = "t" + hashlib.md5(key.encode("utf-8")).hexdigest()[:6] + "-"
    ids = set(re.findall(r'\sid="([^"]+)"', html))
    if not ids:
        return html

    def fix_id(m: re.Match) -> str:
        return f' id="{pre}{re.sub(r"[^A-Za-z0-9_-]+", "-", m.group(1))}"'

    def fix_headers(m: re.Match) -> str:
        return (
            'headers="'
            + " ".join(
                pre + re.sub(r"[^A-Za-z0-9_-]+", "-", h) if h in ids else h for h in m.group(1).split()
            )
            + '"'
        )

    html = re.sub(r'\sid="([^"]+)"', fix_id, html)
    return re.sub(r'headers="([^"]*)"', fix_headers, html)


_GROUP_ROW = re.compile(r'\s*<tr class="gt_group_heading_row">\s*<th[^>]*>(.*?)</th>\s*</tr>', re.DOTALL)


def _split_groups(html: str, caption: str) -> str:
    """One table per row group (e.g. per subject), the group's heading row inside the repeated header.

    Printed, a table's header repeats on every page it runs onto, so a continuation page still says which
    subject (or measure) its rows belong to; the first table keeps the caption, the others repeat it with the
    group's name. Source notes stay under the last table.
    """
    m = re.search(
        r'(<table class="gt_table reflow"[^>]*>)(<caption>.*?</caption>)\s*<thead>(.*?)</thead>\s*'
        r'<tbody class="gt_table_body">(.*?)</tbody>(.*?)</table>',
        html,
        re.DOTALL,
    )
    if not m:
        return html
    open_tag, cap, head, body, foot = m.groups()
    parts = _GROUP_ROW.split(body)  # ['', group1, rows1, group2, rows2, ...]
    if len(parts) < 3 or parts[0].strip():
        return html
    groups = list(zip(parts[1::2], parts[2::2]))
    name_rows = [g.group(0) for g in _GROUP_ROW.finditer(body)]
    out = []
    for i, (name, rows) in enumerate(groups):
        label = _html.unescape(re.sub(r"<[^>]+>", "", name)).strip()
        c = re.sub(
            r'<span class="gt_title">(.*?)</span>',
            lambda t, lab=label: f'<span class="gt_title">{t.group(1)}: {_html.escape(lab)}</span>',
            cap,
            count=1,
        )
        if i:
            c = re.sub(r'<span class="gt_subtitle">.*?</span>', "", c)
        ncols = head.count("<th ") if "gt_col_spanners" not in head else None
        span = f' colspan="{ncols}"' if ncols else ' colspan="100"'
        gid = re.search(r'<th[^>]*\sid="([^"]+)"', name_rows[i])
        group_row = (
            f'<tr class="gt_group_heading_row"><th class="gt_group_heading"{span} scope="colgroup"'
            + (f' id="{gid.group(1)}"' if gid else "")
            + f">{name}</th></tr>"
        )
        h = head
        if i:  # the repeated column headings get ids of their own, and this table's cells point at them
            col_ids = set(re.findall(r'\sid="([^"]+)"', head))
            h = re.sub(r'\sid="([^"]+)"', lambda t, k=i: f' id="{t.group(1)}-g{k}"', head)
            rows = re.sub(
                r'headers="([^"]*)"',
                lambda t, k=i, ids=col_ids: (
                    'headers="' + " ".join(f"{x}-g{k}" if x in ids else x for x in t.group(1).split()) + '"'
                ),
                rows,
            )
        out.append(
            f'{open_tag}{c}<thead>{h}{group_row}</thead><tbody class="gt_table_body">{rows}</tbody>'
            + (foot if i == len(groups) - 1 else "")
            + "</table>"
        )
    return html[: m.start()] + "\n".join(out) + html[m.end() :]


def _hidden_family_notes(data: pd.DataFrame, supp: np.ndarray) -> list[str]:
    """One sentence per student-group variable whose every row in the table is hidden."""
    if "variable" in data.columns:
        fam = data["variable"].astype("str").to_numpy()
    elif {"group", "level"} <= set(data.columns):
        fam = data["group"].astype("str").to_numpy()
    else:
        return []
    whole = pd.Series(supp).groupby(fam).all()
    return [
        f"{labels.VARIABLES.get(v, v)}: every group in this table is {SUPPRESSED_LABEL}."
        for v in whole[whole].index
        if v != "all"
    ]


def needs_note(needs: Iterable[str], *, what: str) -> HtmlBlock:
    """A note saying which data a section needs (when the district did not provide it).

    Examples
    --------
    >>> print(needs_note(["climate_surveys.csv for belonging"], what="Belonging"))
    Belonging needs: the climate survey file for belonging
    """
    items = [reader_words(s) for s in needs]
    html = (
        f'<div class="needs" role="note"><p><strong>{_html.escape(what)} needs data this district did not '
        "provide:</strong></p><ul>" + "".join(f"<li>{_html.escape(s)}</li>" for s in items) + "</ul></div>"
    )
    return HtmlBlock(html, f"{what} needs: " + "; ".join(items))
