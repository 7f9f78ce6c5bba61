"""Report outputs: what a notebook writes, and the self-contained HTML made from the executed notebook.

A report notebook (``notebooks/district_report.ipynb``) follows these conventions, which this module
relies on:

Structure
    One markdown ``# Title`` heading first; sections are ``##`` headings and subsections ``###``
    (they make the report's table of contents). Code is hidden in the HTML: everything a reader
    sees is a markdown cell or a cell *output*. Cells tagged ``remove`` (or ``remove-cell``) are
    left out of the HTML; cells tagged ``remove-output`` keep nothing but are run. The cell papermill
    injects (tag ``injected-parameters``) never appears in the HTML. No maths markup (there is no
    MathJax: the report loads nothing from the network); write ``R²``, ``≥`` in Unicode.
Tables
    Report notebooks display tables with :mod:`opportunity_research.report.presentation` (labelled, formatted,
    laid out by great_tables). :func:`table_output` is the plain fallback for ad-hoc tables. Rows whose ``suppressed`` flag is true show the
    mark :data:`SUPPRESSED_MARK` (in an element of class ``suppressed``) instead of every number,
    counts included; the HTML report then carries a legend explaining the mark.
Figures
    Display figures with :func:`figure_output`, which requires alt text and stores it in the output's
    metadata (``{"image/png": {"alt": ...}}``, the key nbconvert reads); the PNG is rendered once,
    so there is no duplicate inline figure. A figure without alt text in the HTML gets one
    naming its section, with a warning.
Outputs
    The last cell calls :func:`write_outputs` with the notebook's ``output_dir`` parameter::

        write_outputs(output_dir, findings={...}, tables={"gaps": gaps}, figures={"access": fig_out})

    which writes ``findings.json`` (machine-readable headline numbers; an optional top-level
    ``"headline"`` sentence is shown on the index page), ``tables/<name>.csv`` (full precision,
    tidy, with the ``suppressed`` flag) and ``figures/<name>.png`` (alt text in the PNG's
    ``Description``). Identifier columns and keys (``student_id``, ``teacher_id``) are refused.

The batch runner (:mod:`opportunity_research.batch.runner`) then calls :func:`sanitize_notebook`,
:func:`opportunity_research.report.pages.publish_pages` (which calls :func:`export_html` and prints the PDFs)
and :func:`write_index`. Page layouts are Jinja2 templates in ``opportunity_research/report/templates/``
(``base.html.j2``, ``report.html.j2``, ``index.html.j2``, ``scorecard.html.j2``) with one stylesheet,
``report.css``; published files are written world-readable (:data:`PUBLISHED_FILE_MODE`).

Examples
--------
>>> import pandas as pd
>>> t = pd.DataFrame({"group": ["a", "b"], "n": [40, 4], "estimate": [0.25, float("nan")],
...                   "suppressed": [False, True]})
>>> html = table_output(t, percent=["estimate"], digits=0)._repr_html_()
>>> "25%" in html, html.count('class="suppressed"')
(True, 2)
"""

from __future__ import annotations

import base64
import datetime as _dt
import html as _html
import io
import json
import logging
import math
import numbers
import os
import re
import sys
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .. import config
from ..files import atomic_write
from ..study.labels import SUPPRESSED_LABEL, SUPPRESSED_MARK
from ..version import __version__
from .presentation import HtmlBlock

__all__ = [
    "LABEL_COLUMNS",
    "PUBLISHED_DIR_MODE",
    "PUBLISHED_FILE_MODE",
    "REMOVE_TAGS",
    "SUPPRESSED_MARK",
    "FigureOutput",
    "ReportError",
    "TableOutput",
    "export_html",
    "external_resources",
    "figure_output",
    "output_href",
    "read_findings",
    "sanitize_notebook",
    "table_output",
    "write_findings",
    "write_index",
    "write_outputs",
]

#: Cells with any of these tags are left out of the HTML report.
REMOVE_TAGS = frozenset({"injected-parameters", "remove", "remove-cell", "remove_cell"})
_REMOVE_OUTPUT_TAGS = frozenset({"remove-output", "remove_output"})
#: Keys and columns that must never appear in findings or tables.
_FORBIDDEN = re.compile(r"^(student|teacher)s?_?(id|ids|name|names)$", re.IGNORECASE)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
# nbconvert's own notices (e.g. missing alt text) are replaced by this module's warnings
_NBCONVERT_LOG = logging.getLogger(__name__ + ".nbconvert")
_NBCONVERT_LOG.setLevel(logging.ERROR)


#: Modes of published files and folders: readable by a web server or a colleague on a shared drive.
PUBLISHED_FILE_MODE, PUBLISHED_DIR_MODE = 0o644, 0o755
#: Where the first screen ends; the report's table of contents is put there.
_CONTENTS = "<!-- contents -->"


class ReportError(RuntimeError):
    """The report cannot be built as required (e.g. it would load an external resource).

    Examples
    --------
    >>> issubclass(ReportError, RuntimeError)
    True
    """


def _legend(min_n: int) -> str:
    return (f"{SUPPRESSED_MARK} {SUPPRESSED_LABEL.capitalize()}: the cell describes fewer than {min_n} students, or its value could "
            "be recovered from the totals and the neighbouring cells (complementary suppression). Its numbers, "
            "including the count, are not shown.")


# ---------------------------------------------------------------------------------------------
# What notebooks display and write


#: A display table with suppressed cells marked; shown by Jupyter through ``_repr_html_``.
TableOutput = HtmlBlock


def _fmt(value, *, percent: bool, digits: int) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        if percent:
            return f"{100 * float(value):.{digits}f}%"
        if float(value).is_integer() and abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{float(value):,.{digits}f}"
    return str(value)


#: Numeric columns that label a row rather than measure it: never masked in suppressed rows.
LABEL_COLUMNS = ("grade", "level", "reference", "school_year", "year", "group", "subject", "measure", "resource")


def table_output(data: pd.DataFrame, *, columns: Iterable[str] | None = None,
                 labels: Mapping[str, str] | None = None, percent: Iterable[str] = (), digits: int = 2,
                 caption: str | None = None, keys: Iterable[str] = LABEL_COLUMNS,
                 min_n: int = config.MIN_CELL_SIZE) -> TableOutput:
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
    cols = list(columns) if columns is not None else [
        c for c in data.columns if c not in ("suppressed", "suppression_reason")]
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise KeyError(f"table_output: no column(s) {missing} in the table")
    bad = [c for c in cols if _FORBIDDEN.match(str(c))]
    if bad:
        raise ValueError(f"table_output: identifier column(s) {bad} cannot be shown in a report")
    labels = dict(labels or {})
    percent = set(percent)
    supp = (data["suppressed"].fillna(False).astype(bool).to_numpy() if "suppressed" in data.columns
            else np.zeros(len(data), dtype=bool))
    keys = set(keys)
    numeric = {c: pd.api.types.is_numeric_dtype(data[c]) and not pd.api.types.is_bool_dtype(data[c]) for c in cols}
    title = SUPPRESSED_LABEL.capitalize()
    head = "".join(f'<th scope="col">{_html.escape(str(labels.get(c, c)))}</th>' for c in cols)
    rows, text_rows = [], []
    for i, rec in enumerate(data[cols].itertuples(index=False, name=None)):
        cells, texts = [], []
        for c, v in zip(cols, rec):
            if supp[i] and numeric[c] and c not in keys:
                cells.append(f'<td class="suppressed" title="{title}" aria-label="{title}">{SUPPRESSED_MARK}</td>')
                texts.append(SUPPRESSED_MARK)
            else:
                s = _fmt(v, percent=c in percent, digits=digits)
                cls = ' class="num"' if numeric[c] else ""
                cells.append(f"<td{cls}>{_html.escape(s)}</td>")
                texts.append(s)
        rows.append("<tr>" + "".join(cells) + "</tr>")
        text_rows.append(texts)
    cap = f"<caption>{_html.escape(caption)}</caption>" if caption else ""
    html = (f'<table class="report-table">{cap}<thead><tr>{head}</tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>")
    widths = [max([len(str(labels.get(c, c)))] + [len(r[j]) for r in text_rows]) for j, c in enumerate(cols)]
    lines = ([caption] if caption else []) + ["  ".join(str(labels.get(c, c)).ljust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(s.ljust(w) for s, w in zip(r, widths)) for r in text_rows]
    if supp.any():
        lines.append(f"{SUPPRESSED_MARK} suppressed")
    return TableOutput(html, "\n".join(lines))


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

    def _repr_mimebundle_(self, include=None, exclude=None):
        data = {"image/png": base64.b64encode(self.png).decode("ascii"), "text/plain": f"[Figure: {self.alt}]"}
        return data, {"image/png": {"alt": self.alt}}

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
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight",
                metadata={"Software": None, "Description": str(alt)})
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


def write_outputs(output_dir: str | os.PathLike, *, findings: Mapping,
                  tables: Mapping[str, pd.DataFrame] | None = None,
                  figures: Mapping[str, FigureOutput] | None = None) -> list[Path]:
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
        atomic_write(path, df.to_csv(index=False, lineterminator="\n").encode("utf-8"), mode=PUBLISHED_FILE_MODE)
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
        districts = sorted(p.parent.name for p in root.glob("*/findings.json")
                           if not p.parent.name.startswith(".") and p.parent.name != "cross_district")
    return {d: json.loads((root / d / "findings.json").read_text(encoding="utf-8")) for d in districts}


# ---------------------------------------------------------------------------------------------
# Executed notebook -> shared outputs


def _env_paths(root: Path) -> list[tuple[str, str]]:
    """(absolute path, replacement) pairs scrubbed from warnings, longest first."""
    pairs = [(str(root) + os.sep, ""), (str(root), "."), (sys.prefix, "<python>"),
             (sys.base_prefix, "<python>"), (str(Path.home()), "~")]
    return sorted({p: r for p, r in pairs if len(p) > 1}.items(), key=lambda pr: len(pr[0]), reverse=True)


def sanitize_notebook(path: str | os.PathLike, *, root: str | os.PathLike,
                      replace: Mapping[str, str] | None = None, input_path: str | None = None,
                      output_path: str | None = None) -> None:
    """Clean an executed notebook in place before it is shared.

    * ``metadata.papermill`` input/output paths become the given project-relative paths; the
      timing fields (start/end time, duration) of the notebook and of every cell are removed, so
      re-running on the same inputs gives the same file.
    * Every ``old -> new`` text in ``replace`` is replaced in sources, outputs and parameters (the
      runner maps its temporary output folder to the final one).
    * Warnings (stderr) lose the machine-specific part of file paths (project root, Python
      installation, home folder). Other outputs are left as they are: the privacy screen reports
      any absolute path that remains.

    Examples
    --------
    >>> import tempfile, pathlib, nbformat
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> nb = nbformat.v4.new_notebook()
    >>> nb.cells = [nbformat.v4.new_markdown_cell("# Report\\n\\nThe finding first."),
    ...             nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output("stream", name="stdout", text="1\\n")])]
    >>> nbformat.write(nb, folder / "report.ipynb")
    >>> sanitize_notebook(folder / "report.ipynb", root=folder)
    >>> nbformat.read(folder / "report.ipynb", as_version=4).cells[1].outputs[0]["text"]
    '1\\n'
    """
    import nbformat

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    replace = dict(replace or {})

    def rep(text: str) -> str:
        for old, new in replace.items():
            text = text.replace(old, new)
        return text

    def rep_obj(obj):
        if isinstance(obj, str):
            return rep(obj)
        if isinstance(obj, list):
            return [rep_obj(v) for v in obj]
        if isinstance(obj, dict):
            return type(obj)({k: rep_obj(v) for k, v in obj.items()})
        return obj

    env = _env_paths(Path(root).resolve())
    pm = nb.metadata.get("papermill")
    if pm is not None:
        for key in ("start_time", "end_time", "duration"):
            pm.pop(key, None)
        if input_path is not None:
            pm["input_path"] = input_path
        if output_path is not None:
            pm["output_path"] = output_path
        if "parameters" in pm:
            pm["parameters"] = rep_obj(pm["parameters"])
    for cell in nb.cells:
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.id = "injected-parameters"  # papermill draws a random id on every run
        cell.metadata.pop("execution", None)
        cp = cell.metadata.get("papermill")
        if cp is not None:
            for key in ("start_time", "end_time", "duration"):
                cp.pop(key, None)
        cell.source = rep(cell.source)
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                text = rep(out["text"])
                if out.get("name") == "stderr":
                    for old, new in env:
                        text = text.replace(old, new)
                out["text"] = text
            elif "data" in out:
                for mime, value in list(out["data"].items()):
                    if mime.startswith("text/") or mime == "application/json":
                        out["data"][mime] = rep_obj(value)
    nbformat.write(nb, path)


_HEADING = re.compile(r"<h([1-6])(\s[^>]*)?>(.*?)</h\1>", re.DOTALL | re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script\s*>", re.DOTALL | re.IGNORECASE)
_OPEN_TAG = re.compile(r"<([A-Za-z][\w-]*)\b([^>]*)>", re.DOTALL)
_URL_ATTR = re.compile(r"""\b(src|href|srcset|data|poster|action|xlink:href)\s*=\s*(["']?)\s*((?:https?:|file:)?//[^"'\s>]*)""",
                       re.IGNORECASE)
_CSS_URL = re.compile(r"""(?:url\(\s*["']?\s*(?:https?:|file:)?//[^)]*\)|@import\b[^;]*)""", re.IGNORECASE)


def external_resources(html: str) -> list[str]:
    """Everything in ``html`` a browser would fetch from outside the file.

    That is any ``src``/``href``-like attribute pointing at ``http(s):``, ``file:`` or ``//`` on a
    tag other than ``<a>`` (links a reader may follow are allowed), CSS ``url(...)`` to such a
    location, and ``@import``. Embedded ``data:`` URIs are fine.

    Examples
    --------
    >>> external_resources('<img src="https://example.org/x.png"><a href="https://example.org">ok</a>')
    ['<img src=https://example.org/x.png>']
    """
    found = []
    for m in _OPEN_TAG.finditer(html):
        tag, attrs = m.group(1).lower(), m.group(2)
        if tag == "a":
            continue
        found += [f"<{tag} {a.group(1)}={a.group(3)}>" for a in _URL_ATTR.finditer(attrs)]
    found += [m.group(0)[:120] for m in _CSS_URL.finditer(html)]
    return found


def _slug(text: str, used: set[str]) -> str:
    base = re.sub(r"[^\w]+", "-", text.lower()).strip("-") or "section"
    slug, i = base, 2
    while slug in used:
        slug, i = f"{base}-{i}", i + 1
    used.add(slug)
    return slug


def export_html(executed_nb_path: str | os.PathLike, html_path: str | os.PathLike, *, title: str,
                subtitle: str = "", min_n: int = config.MIN_CELL_SIZE,
                links: Iterable[tuple[str, str | None]] = (), downloads: Iterable[tuple[str, str]] = ()) -> Path:
    """Write a self-contained HTML report (no code, no external resources) from an executed notebook.

    Code cells show only their outputs; the injected-parameters cell and cells tagged ``remove``
    are left out; images stay embedded as ``data:`` URIs. A table of contents links the ``##`` and
    ``###`` headings (the notebook's first ``#`` heading is dropped: ``title`` is the page's
    heading). When any cell is marked suppressed, a legend explains the mark. Scripts are
    removed; any other reference to an external resource raises :class:`ReportError`.

    Parameters
    ----------
    executed_nb_path
        The executed (and sanitized) notebook.
    html_path
        Where to write the HTML (atomically).
    title
        Page title, e.g. "Opportunity report: demo_lakeside".
    subtitle
        A line under the title (plain text).
    min_n
        Minimum cell size, named in the legend.
    links
        ``(text, href)`` pairs for the navigation bar (``href=None``: this page).
    downloads
        ``(text, href)`` pairs listed in a "Downloads" section (CSV tables, figures, the PDF).

    The page layout is ``templates/report.html.j2``. A notebook whose first output is the first screen
    (:func:`opportunity_research.report.presentation.first_screen`) supplies the page heading itself; the
    table of contents follows it.

    Examples
    --------
    >>> import tempfile, pathlib, nbformat
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> nb = nbformat.v4.new_notebook()
    >>> nb.cells = [nbformat.v4.new_markdown_cell("# Report\\n\\nThe finding first."),
    ...             nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output("stream", name="stdout", text="1\\n")])]
    >>> nbformat.write(nb, folder / "report.ipynb")
    >>> html = export_html(folder / "report.ipynb", folder / "report.html", title="Opportunity report: demo")
    >>> text = html.read_text()
    >>> "The finding first." in text, "print(1)" in text, external_resources(text)
    (True, False, [])
    """
    import nbformat
    from nbconvert import HTMLExporter

    from .presentation import render

    nb = nbformat.read(Path(executed_nb_path), as_version=4)
    cells = []
    for cell in nb.cells:
        tags = set(cell.metadata.get("tags", []))
        if tags & REMOVE_TAGS:
            continue
        if cell.cell_type == "code" and (tags & _REMOVE_OUTPUT_TAGS or not cell.outputs):
            continue
        cells.append(cell)
    nb.cells = cells
    exporter = HTMLExporter(template_name="basic", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True, log=_NBCONVERT_LOG)
    body, _ = exporter.from_notebook_node(nb)
    body = _SCRIPT.sub("", body)

    used: set[str] = set()
    toc_items: list[tuple[int, str, str]] = []
    first_h1 = [True]
    current = [title]

    def heading(m: re.Match) -> str:
        level, inner = int(m.group(1)), m.group(3)
        text = _html.unescape(_TAG.sub("", re.sub(r'<a class="anchor-link".*?</a>', "", inner, flags=re.DOTALL)))
        text = " ".join(text.split())
        if level == 1 and first_h1[0]:
            first_h1[0] = False
            return ""
        slug = _slug(text, used)
        current[0] = text
        if level in (2, 3):
            toc_items.append((level, slug, text))
        return (f'<h{level} id="{slug}">{_html.escape(text)}<a class="anchor-link" href="#{slug}" '
                f'aria-hidden="true">¶</a></h{level}>')

    # headings and images in document order, so an image without alt text can name its section
    missing_alt = [0]

    def img(m: re.Match) -> str:
        attrs = re.sub(r'\s*\balt="No description has been provided for this image"', "", m.group(2))
        if re.search(r"\balt\s*=", attrs):  # (nbconvert's placeholder above counts as missing)
            return m.group(0)
        missing_alt[0] += 1
        return f'<img alt="Figure in section: {_html.escape(current[0])}"{attrs}>'

    pieces, pos = [], 0
    pattern = re.compile(_HEADING.pattern + r"|<(img)\b([^>]*)>", re.DOTALL | re.IGNORECASE)
    for m in pattern.finditer(body):
        pieces.append(body[pos:m.start()])
        if m.group(1):
            pieces.append(heading(m))
        else:
            pieces.append(img(re.match(r"<(img)\b([^>]*)>", m.group(0), re.DOTALL | re.IGNORECASE)))
        pos = m.end()
    pieces.append(body[pos:])
    body = "".join(pieces)
    if missing_alt[0]:
        warnings.warn(f"{Path(executed_nb_path).name}: {missing_alt[0]} figure(s) without alt text; "
                      "display figures with reporting.figure_output(fig, alt=...)", stacklevel=2)

    toc = []
    for level, slug, text in toc_items:  # sections (##) with their subsections (###)
        if level == 2 or not toc:
            toc.append({"slug": slug, "text": text, "children": []})
        else:
            toc[-1]["children"].append({"slug": slug, "text": text})
    legend = ""
    if re.search(r"""class\s*=\s*["'][^"']*(?<![\w-])suppressed(?![\w-])""", body) or SUPPRESSED_MARK in body:
        legend = _legend(min_n)
    first = re.search(r'<header class="page-head first-screen" data-title="([^"]*)"', body)
    toc_html = render("toc.html.j2", title=title, toc=toc) if toc else ""
    if first:  # the first screen leads; the contents come where it ends
        title = _html.unescape(first.group(1)) or title
        if _CONTENTS in body:
            body, toc_html = body.replace(_CONTENTS, toc_html, 1), ""
    footer = (f"Generated by opportunity-research {__version__}. Student-level data never appear in this "
              f"report; groups of fewer than {min_n} students are suppressed.")
    page = render("report.html.j2", title=title, heading=title, facts=[("", subtitle)] if subtitle else [],
                  has_first_screen=bool(first), toc_html=toc_html, body=body, legend=legend,
                  links=[{"text": t, "href": h} for t, h in links],
                  downloads=[{"text": t, "href": h} for t, h in downloads], footer=footer, running_head=title)
    ext = external_resources(page)
    if ext:
        raise ReportError(f"{Path(executed_nb_path).name}: the report would load external resources: "
                          + "; ".join(ext[:5]))
    out = Path(html_path)
    atomic_write(out, page.encode("utf-8"), mode=PUBLISHED_FILE_MODE)
    return out


def write_index(reports_root: str | os.PathLike, manifest: Mapping) -> Path:
    """Write ``<reports_root>/index.html``: every district's status, its report, scorecard and PDFs, and the
    cross-district report.

    ``manifest`` is the batch manifest (see :mod:`opportunity_research.batch.runner`): ``districts`` is a
    list of entries with ``district_id``, ``status``, ``seconds``, ``reason`` and ``report`` (path of
    the HTML report relative to ``reports_root``, or None); ``cross_district`` is one such entry or
    None. A district's ``findings.json`` ``"headline"`` sentence is shown when present; its scorecard and
    PDF copies are linked when the files exist. The page layout is ``templates/index.html.j2``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> reports = pathlib.Path(tempfile.mkdtemp())
    >>> manifest = {"generated_at": "2026-01-01T00:00:00+00:00", "districts": [
    ...     {"district_id": "demo_a", "status": "failed", "seconds": 0.5, "reason": "data validation failed", "report": None}],
    ...     "cross_district": None}
    >>> page = write_index(reports, manifest)
    >>> page.name, "data validation failed" in page.read_text()
    ('index.html', True)
    """
    from .presentation import district_name, render

    root = Path(reports_root)
    rows = []
    for e in manifest.get("districts", []):
        d = str(e["district_id"])
        status = str(e.get("status", ""))
        stale = bool(e.get("stale")) and status == "failed"  # a failed run whose last good report is kept
        ok = bool(e.get("report")) and (status == "ok" or stale)
        note = e.get("reason") or ""
        links = []
        if stale:
            status = "stale"
            note = (f"Last good report of {str(e.get('last_good') or '')[:10]}; the run of "
                    f"{str(e.get('failed_at') or '')[:10]} failed: {note}")
        if ok:
            f = root / d / "findings.json"
            try:
                headline = json.loads(f.read_text(encoding="utf-8")).get("headline") if f.exists() else None
            except (json.JSONDecodeError, AttributeError):
                headline = None
            if not stale:
                note = headline if isinstance(headline, str) else ""
            report = str(e["report"])
            folder = report.rsplit("/", 1)[0] if "/" in report else d
            links.append(("report", report))
            for text, name in (("scorecard", "scorecard.html"), ("report PDF", "report.pdf"),
                               ("scorecard PDF", "scorecard.pdf")):
                if (root / folder / name).exists():
                    links.append((text, f"{folder}/{name}"))
        secs = e.get("seconds")
        rows.append({"id": d, "name": district_name(d), "status": status, "links": links, "note": str(note),
                     "seconds": "" if secs is None else f"{secs:.1f}"})
    cross = dict(manifest.get("cross_district") or {}) or None
    stale = False
    if cross and cross.get("status") == "ok" and cross.get("report"):
        covered = list(cross.get("districts") or [])
        cross["covered"] = ", ".join(district_name(d) for d in covered)
        cross["n"] = len(covered)
        current = [e["district_id"] for e in manifest.get("districts", []) if e.get("status") == "ok"]
        stale = sorted(covered) != sorted(current)
        pdf = Path(str(cross["report"])).with_suffix(".pdf").as_posix()
        cross["pdf"] = pdf if (root / pdf).exists() else None
    n_ok = sum(e.get("status") == "ok" for e in manifest.get("districts", []))
    subtitle = (f"{n_ok} of {len(manifest.get('districts', []))} district reports complete"
                + (f"; last run {manifest['generated_at']}" if manifest.get("generated_at") else ""))
    links = [("All reports", None)] + ([("Cross-district report", cross["report"])]
                                       if cross and cross.get("status") == "ok" and cross.get("report") else [])
    page = render("index.html.j2", title="Opportunity research reports", heading="Opportunity research reports",
                  kicker="Reports", facts=[("Status", subtitle)], rows=rows, cross=cross, stale=stale,
                  links=[{"text": t, "href": h} for t, h in links],
                  footer=f"Generated by opportunity-research {__version__}. A district whose latest run failed keeps "
                         "its last good report, marked stale, with the reason. Details: manifest.json.")
    ext = external_resources(page)
    if ext:  # pragma: no cover - the index is built from fixed markup
        raise ReportError("index.html would load external resources: " + "; ".join(ext))
    path = root / "index.html"
    atomic_write(path, page.encode("utf-8"), mode=PUBLISHED_FILE_MODE)
    return path


def write_scorecard(output_dir: str | os.PathLike, scorecard, *, district_id: str,
                    links: Iterable[tuple[str, str | None]] | None = None) -> Path:
    """Write the printable Opportunity Scorecard page ``scorecard.html`` into ``output_dir`` (atomically).

    The page is :func:`opportunity_research.report.presentation.scorecard_page`; by default it links back to the
    index, the district's report and the cross-district report (relative links within ``reports/``).

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd
    >>> from opportunity_research.study.scorecard import opportunity_scorecard
    >>> ind = pd.DataFrame({"measure": ["catch_up_rate"], "school_id": "all", "group": "all", "school_year": [2016], "n": [130],
    ...                     "estimate": [0.31], "ci_lower": [0.24], "ci_upper": [0.39], "suppressed": False, "suppression_reason": ""})
    >>> path = write_scorecard(pathlib.Path(tempfile.mkdtemp()), opportunity_scorecard(ind), district_id="demo_lakeside")
    >>> path.name, "Lakeside" in path.read_text()
    ('scorecard.html', True)
    """
    from .presentation import scorecard_page

    links = list(links) if links is not None else [
        ("All reports", "../index.html"), ("Report", "report.html"), ("Scorecard", None),
        ("Scorecard as PDF", "scorecard.pdf"), ("Cross-district report", "../cross_district/report.html")]
    path = config.resolve(output_dir) / "scorecard.html"
    page = scorecard_page(scorecard, district_id=district_id, links=links)
    atomic_write(path, page.encode("utf-8"), mode=PUBLISHED_FILE_MODE)
    return path
