"""What a report notebook displays and writes: display tables with suppressed cells marked
(:func:`table_output`), figures with alt text (:func:`figure_output`), and the machine-readable outputs
(``findings.json``, ``tables/*.csv``, ``figures/*.png``; :func:`write_outputs`, :func:`read_findings`).
:mod:`opportunity_research.report.reporting` re-exports these for the notebooks."""

from __future__ import annotations

import base64
import datetime as _dt
import html as _html
import io
import json
import math
import numbers
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .. import config
from ..files import atomic_write
from ..study import labels as registry
from ..study.labels import SUPPRESSED_LABEL, SUPPRESSED_MARK
from .presentation import HtmlBlock

__all__ = [
    "LABEL_COLUMNS",
    "MAX_ALT",
    "PUBLISHED_DIR_MODE",
    "PUBLISHED_FILE_MODE",
    "FigureOutput",
    "TableOutput",
    "figure_output",
    "output_href",
    "read_findings",
    "short_alt",
    "table_output",
    "write_findings",
    "write_outputs",
]

#: Modes of published files and folders: readable by a web server or a colleague on a shared drive.
PUBLISHED_FILE_MODE, PUBLISHED_DIR_MODE = 0o644, 0o755
_FORBIDDEN = re.compile(r"^(student|teacher)s?_?(id|ids|name|names)$", re.IGNORECASE)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


#: A display table with suppressed cells marked; shown by Jupyter through ``_repr_html_``.
TableOutput = HtmlBlock


def _fmt(value, *, percent: bool, digits: int) -> str:
    # Numbers go through the one formatter (study.labels); this table keeps the ASCII hyphen as its minus.
    if value is None or value is pd.NA:
        return registry.MISSING
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if not isinstance(value, numbers.Real):
        return str(value)
    if percent:
        return registry.percent(value, digits, minus="-")
    if isinstance(value, numbers.Integral):
        return registry.count(value)
    whole = float(value).is_integer() and abs(value) >= 1000
    return registry.number(value, 0 if whole else digits, thousands=True, minus="-")


#: Numeric columns that label a row rather than measure it: never masked in suppressed rows.
LABEL_COLUMNS = (
    "grade",
    "level",
    "reference",
    "school_year",
    "year",
    "group",
    "subject",
    "measure",
    "resource",
)


def table_output(
    data: pd.DataFrame,
    *,
    columns: Iterable[str] | None = None,
    labels: Mapping[str, str] | None = None,
    percent: Iterable[str] = (),
    digits: int = 2,
    caption: str | None = None,
    keys: Iterable[str] = LABEL_COLUMNS,
    min_n: int = config.MIN_CELL_SIZE,
) -> TableOutput:
    """A table for display in a report, with every number of a suppressed row replaced by a mark.

    Parameters
    ----------
    data
        A tidy table; rows whose ``suppressed`` column is true are suppressed.
    columns
        Columns to show, in order (default: all but ``suppressed`` and ``suppression_reason``).
    labels
        Column headers to show instead of column names.
    percent
        Columns holding shares (0-1), shown as percentages.
    digits
        Decimal places of non-integer numbers (percentages included).
    caption
        Table caption.
    keys
        Columns that label rows (shown even in suppressed rows); every other numeric column,
        counts included, shows the mark in a suppressed row.
    min_n
        Minimum cell size, named in the mark's tooltip.

    Returns
    -------
    TableOutput
        Displays as HTML in Jupyter (``class="suppressed"`` on suppressed cells) and as text otherwise.

    Examples
    --------
    >>> import pandas as pd
    >>> gaps = pd.DataFrame({"group": "english_learner", "level": [0, 1], "n": [45, 3], "estimate": [0.41, 0.5],
    ...                      "suppressed": [False, True], "suppression_reason": ["", "n < 10"]})
    >>> t = table_output(gaps, caption="Gaps")
    >>> "n < 10" in t._repr_html_(), "0.5" in t._repr_html_()
    (False, False)
    """
    cols = (
        list(columns)
        if columns is not None
        else [c for c in data.columns if c not in ("suppressed", "suppression_reason")]
    )
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise KeyError(f"table_output: no column(s) {missing} in the table")
    bad = [c for c in cols if _FORBIDDEN.match(str(c))]
    if bad:
        raise ValueError(f"table_output: identifier column(s) {bad} cannot be shown in a report")
    labels = dict(labels or {})
    percent = set(percent)
    supp = (
        data["suppressed"].fillna(False).astype(bool).to_numpy()
        if "suppressed" in data.columns
        else np.zeros(len(data), dtype=bool)
    )
    keys = set(keys)
    numeric = {
        c: pd.api.types.is_numeric_dtype(data[c]) and not pd.api.types.is_bool_dtype(data[c]) for c in cols
    }
    title = SUPPRESSED_LABEL.capitalize()
    head = "".join(f'<th scope="col">{_html.escape(str(labels.get(c, c)))}</th>' for c in cols)
    rows, text_rows = [], []
    for i, rec in enumerate(data[cols].itertuples(index=False, name=None)):
        cells, texts = [], []
        for c, v in zip(cols, rec):
            if supp[i] and numeric[c] and c not in keys:
                cells.append(
                    f'<td class="suppressed" title="{title}" aria-label="{title}">{SUPPRESSED_MARK}</td>'
                )
                texts.append(SUPPRESSED_MARK)
            else:
                s = _fmt(v, percent=c in percent, digits=digits)
                cls = ' class="num"' if numeric[c] else ""
                cells.append(f"<td{cls}>{_html.escape(s)}</td>")
                texts.append(s)
        rows.append("<tr>" + "".join(cells) + "</tr>")
        text_rows.append(texts)
    cap = f"<caption>{_html.escape(caption)}</caption>" if caption else ""
    html = (
        f'<table class="report-table">{cap}<thead><tr>{head}</tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>"
    )
    widths = [max([len(str(labels.get(c, c)))] + [len(r[j]) for r in text_rows]) for j, c in enumerate(cols)]
    lines = ([caption] if caption else []) + [
        "  ".join(str(labels.get(c, c)).ljust(w) for c, w in zip(cols, widths))
    ]
    lines += ["  ".join(s.ljust(w) for s, w in zip(r, widths)) for r in text_rows]
    if supp.any():
        lines.append(f"{SUPPRESSED_MARK} suppressed")
    return TableOutput(html, "\n".join(lines))


#: Longest alt text a page shows (screen-reader users hear the values in the table beside the figure).
MAX_ALT = 300
_BESIDE = " The values are in the table beside the chart."


def short_alt(alt: str) -> str:
    """The first sentence of ``alt`` (cut at a word, with an ellipsis, if still too long), plus a pointer to the
    table: at most :data:`MAX_ALT` characters.

    Examples
    --------
    >>> short_alt("Gaps by group, in points. Low-income students: -5.2 (95% interval -8.0 to -2.4).")
    'Gaps by group, in points. The values are in the table beside the chart.'
    >>> len(short_alt("word " * 200)) <= MAX_ALT
    True
    """
    text = " ".join(str(alt).split())
    first = re.split(r"(?<=\.)\s", text, maxsplit=1)[0]
    if len(first) + len(_BESIDE) > MAX_ALT:
        first = first[: MAX_ALT - len(_BESIDE) - 2].rsplit(" ", 1)[0] + "…"
    return first + (_BESIDE if first != text else "")


class FigureOutput:
    """A rendered figure with its alt text; Jupyter shows it through ``_repr_mimebundle_``.

    ``png`` holds the PNG bytes; :func:`write_outputs` writes them to ``figures/<name>.png``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> out = figure_output(fig, alt="An empty chart.")
    >>> isinstance(out, FigureOutput), sorted(out._repr_mimebundle_()[0])
    (True, ['image/png', 'text/plain'])
    """

    def __init__(self, png: bytes, alt: str):
        self.png = png
        self.alt = alt

    @property
    def short_alt(self) -> str:
        """The alt text shown on the page (:func:`short_alt`): at most :data:`MAX_ALT` characters; the full
        description stays in the PNG's metadata and the values are in the table beside the figure."""
        return short_alt(self.alt)

    def _repr_mimebundle_(self, include=None, exclude=None):
        data = {
            "image/png": base64.b64encode(self.png).decode("ascii"),
            "text/plain": f"[Figure: {self.alt}]",
        }
        return data, {"image/png": {"alt": self.short_alt}}

    def __repr__(self) -> str:
        return f"[Figure: {self.alt}]"


def output_href(output_dir: str | os.PathLike, name: str, *, published: bool) -> str:
    """A link from the notebook's output to ``name`` in ``output_dir`` that works where the output is read.

    A published report page sits beside the file, so the link is ``name``; in an interactive run (JupyterLab,
    where links resolve from the notebook's folder, the kernel's working directory) it is the relative path
    from there to ``output_dir/name``, never an absolute path.

    Examples
    --------
    >>> output_href("reports/demo_x", "scorecard.html", published=True)
    'scorecard.html'
    >>> import os
    >>> output_href(os.path.join(os.getcwd(), "out"), "scorecard.html", published=False)
    'out/scorecard.html'
    """
    if published:
        return name
    return Path(os.path.relpath(config.resolve(output_dir) / name, Path.cwd())).as_posix()


def figure_output(fig, *, alt: str | None = None, dpi: int = 110) -> FigureOutput:
    """Render a matplotlib figure to PNG with alt text, and close it (no duplicate inline figure).

    Parameters
    ----------
    fig
        A matplotlib ``Figure`` (or an object with ``.figure``, such as a seaborn grid or an Axes).
    alt
        Alt text: what the figure shows, in a sentence or two. Default: ``fig.alt_text`` if set;
        a figure without alt text is refused.
    dpi
        Resolution; 110 is sharp on laptop screens and in print at report width.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> _ = ax.plot([1, 2], [3, 4])
    >>> out = figure_output(fig, alt="A rising line.")
    >>> out.alt, out.png[:4]
    ('A rising line.', b'\x89PNG')
    """
    from matplotlib.figure import Figure

    alt = alt if alt is not None else getattr(fig, "alt_text", None)
    fig = fig if isinstance(fig, Figure) else fig.figure  # an Axes, a seaborn grid, ...
    alt = alt if alt is not None else getattr(fig, "alt_text", None)
    if not alt or not str(alt).strip():
        raise ValueError("figure_output: a report figure needs alt text (pass alt='what the figure shows')")
    buf = io.BytesIO()
    fig.savefig(
        buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None, "Description": str(alt)}
    )
    import matplotlib.pyplot as plt

    plt.close(fig)  # no-op for a figure pyplot does not manage
    return FigureOutput(buf.getvalue(), str(alt))


def _clean_json(obj, where: str = "findings"):
    """JSON-ready copy: numpy/pandas scalars to Python, NaN/inf/NA to None, frames to records."""
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                k = str(k.item() if hasattr(k, "item") else k)
            if _FORBIDDEN.match(k):
                raise ValueError(f"{where}: key '{k}' would put identifiers in a shared output")
            out[k] = _clean_json(v, f"{where}.{k}")
        return out
    if isinstance(obj, pd.DataFrame):
        bad = [c for c in obj.columns if _FORBIDDEN.match(str(c))]
        if bad:
            raise ValueError(f"{where}: identifier column(s) {bad} cannot go into findings")
        return [_clean_json(r, where) for r in obj.to_dict(orient="records")]
    if isinstance(obj, pd.Series):
        return _clean_json(obj.to_dict(), where)
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_clean_json(v, f"{where}[{i}]") for i, v in enumerate(list(obj))]
    if obj is None or obj is pd.NA or obj is pd.NaT:
        return None
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        x = float(obj)
        return x if math.isfinite(x) else None
    if isinstance(obj, str):
        return obj
    if isinstance(obj, (pd.Timestamp, _dt.date)):
        return obj.isoformat()
    if isinstance(obj, Path):
        if obj.is_absolute():
            raise ValueError(f"{where}: absolute path in findings")
        return obj.as_posix()
    raise TypeError(f"{where}: cannot write a {type(obj).__name__} to findings.json")


def write_findings(findings: Mapping, output_dir: str | os.PathLike) -> Path:
    """Write ``findings.json`` (UTF-8, indented, key order kept) atomically and return its path.

    Numpy and pandas scalars become plain numbers; NaN, infinities and missing values become
    ``null``; DataFrames become lists of records. Keys or columns naming identifiers
    (``student_id``, ``teacher_ids``, ...) and absolute paths raise ``ValueError``.

    Examples
    --------
    >>> import tempfile, pathlib, json, numpy as np
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> path = write_findings({"headline": "26% on grade level", "share": np.float64(0.26), "gap": float("nan")}, folder)
    >>> path.name, json.loads(path.read_text())
    ('findings.json', {'headline': '26% on grade level', 'share': 0.26, 'gap': None})
    """
    clean = _clean_json(findings)
    text = json.dumps(clean, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    path = config.resolve(output_dir) / "findings.json"
    atomic_write(path, text.encode("utf-8"), mode=PUBLISHED_FILE_MODE)
    return path


def write_outputs(
    output_dir: str | os.PathLike,
    *,
    findings: Mapping,
    tables: Mapping[str, pd.DataFrame] | None = None,
    figures: Mapping[str, FigureOutput] | None = None,
) -> list[Path]:
    """Write a report's machine-readable outputs into ``output_dir`` (the notebook's last cell).

    Parameters
    ----------
    output_dir
        The notebook's ``output_dir`` parameter.
    findings
        Headline numbers for ``findings.json`` (see :func:`write_findings`).
    tables
        Name -> tidy table, written to ``tables/<name>.csv`` (full precision, no index).
    figures
        Name -> :class:`FigureOutput` (from :func:`figure_output`), written to ``figures/<name>.png``.

    Returns
    -------
    list of Path
        The files written.

    Examples
    --------
    >>> import pandas as pd
    >>> gaps = pd.DataFrame({"group": "english_learner", "level": [0, 1], "n": [45, 3], "estimate": [0.41, 0.5],
    ...                      "suppressed": [False, True], "suppression_reason": ["", "n < 10"]})
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> paths = write_outputs(folder, findings={"headline": "x"}, tables={"gaps": gaps})
    >>> sorted(p.relative_to(folder).as_posix() for p in paths)
    ['findings.json', 'tables/gaps.csv']
    """
    out = config.resolve(output_dir)
    written = [write_findings(findings, out)]
    for kind, items in (("tables", tables or {}), ("figures", figures or {})):
        for name in items:
            if not _NAME.match(str(name)):
                raise ValueError(f"{kind} name {name!r}: use letters, digits, '_' and '-' only")
    for name, df in (tables or {}).items():
        bad = [c for c in df.columns if _FORBIDDEN.match(str(c))]
        if bad:
            raise ValueError(f"table '{name}': identifier column(s) {bad} cannot be written to a report")
        path = out / "tables" / f"{name}.csv"
        atomic_write(
            path, df.to_csv(index=False, lineterminator="\n").encode("utf-8"), mode=PUBLISHED_FILE_MODE
        )
        written.append(path)
    for name, fig in (figures or {}).items():
        if not isinstance(fig, FigureOutput):
            fig = figure_output(fig)
        path = out / "figures" / f"{name}.png"
        atomic_write(path, fig.png, mode=PUBLISHED_FILE_MODE)
        written.append(path)
    return written


def read_findings(reports_dir: str | os.PathLike, districts: Iterable[str] | None = None) -> dict[str, dict]:
    """``findings.json`` of each district report (for the cross-district notebook).

    Parameters
    ----------
    reports_dir
        The reports folder (``reports``).
    districts
        District ids; default: every ``<reports_dir>/<district>/findings.json``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> reports = pathlib.Path(tempfile.mkdtemp())
    >>> _ = write_findings({"headline": "a finding"}, reports / "demo_a")
    >>> read_findings(reports)
    {'demo_a': {'headline': 'a finding'}}
    """
    root = config.resolve(reports_dir)
    if districts is None:
        districts = sorted(
            p.parent.name
            for p in root.glob("*/findings.json")
            if not p.parent.name.startswith(".") and p.parent.name != "cross_district"
        )
    return {d: json.loads((root / d / "findings.json").read_text(encoding="utf-8")) for d in districts}
