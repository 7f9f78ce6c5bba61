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

import html as _html
import json
import logging
import os
import re
import sys
import threading
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

from .. import config
from ..files import atomic_write
from ..study.labels import SUPPRESSED_LABEL, SUPPRESSED_MARK, long_date
from ..version import __version__
from .outputs import (
    LABEL_COLUMNS,
    PUBLISHED_DIR_MODE,
    PUBLISHED_FILE_MODE,
    FigureOutput,
    TableOutput,
    figure_output,
    output_href,
    read_findings,
    table_output,
    write_findings,
    write_outputs,
)

__all__ = [
    "APPENDIX_PAGE",
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
# nbconvert's own notices (e.g. missing alt text) are replaced by this module's warnings
_NBCONVERT_LOG = logging.getLogger(__name__ + ".nbconvert")
#: This thread's HTML exporter (:func:`export_html`).
_EXPORTERS = threading.local()
_NBCONVERT_LOG.setLevel(logging.ERROR)


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
    return (
        f"{SUPPRESSED_MARK} {SUPPRESSED_LABEL.capitalize()}: the cell describes fewer than {min_n} students, or its value could "
        "be recovered from the totals and the neighbouring cells (complementary suppression). Its numbers, "
        "including the count, are not shown."
    )


# ---------------------------------------------------------------------------------------------
# Executed notebook -> shared outputs


def _env_paths(root: Path) -> list[tuple[str, str]]:
    """(absolute path, replacement) pairs scrubbed from warnings, longest first."""
    pairs = [
        (str(root) + os.sep, ""),
        (str(root), "."),
        (sys.prefix, "<python>"),
        (sys.base_prefix, "<python>"),
        (str(Path.home()), "~"),
    ]
    return sorted({p: r for p, r in pairs if len(p) > 1}.items(), key=lambda pr: len(pr[0]), reverse=True)


def sanitize_notebook(
    path: str | os.PathLike,
    *,
    root: str | os.PathLike,
    replace: Mapping[str, str] | None = None,
    input_path: str | None = None,
    output_path: str | None = None,
) -> None:
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
_CELL_DIV = re.compile(r'<div\b[^>]*\sclass="cell\s[^>]*>')  # a notebook cell (its attributes in any order)
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script\s*>", re.DOTALL | re.IGNORECASE)
_OPEN_TAG = re.compile(r"<([A-Za-z][\w-]*)\b([^>]*)>", re.DOTALL)
_URL_ATTR = re.compile(
    r"""\b(src|href|srcset|data|poster|action|xlink:href)\s*=\s*(["']?)\s*((?:https?:|file:)?//[^"'\s>]*)""",
    re.IGNORECASE,
)
_CSS_URL = re.compile(r"""(?:url\(\s*["']?\s*(?:https?:|file:)?//[^)]*\)|@import\b[^;]*)""", re.IGNORECASE)
#: The payload of a base64 ``data:`` URI (valid base64: no ``=`` but its padding, so no attribute or URL inside).
_BASE64_PAYLOAD = re.compile(r"(?<=;base64,)[A-Za-z0-9+/]{64,}={0,2}(?=[\"'\s)])")


def external_resources(html: str) -> list[str]:
    """Everything in ``html`` a browser would fetch from outside the file.

    That is any ``src``/``href``-like attribute pointing at ``http(s):``, ``file:`` or ``//`` on a
    tag other than ``<a>`` (links a reader may follow are allowed), CSS ``url(...)`` to such a
    location, and ``@import``. Embedded ``data:`` URIs are fine.

    Examples
    --------
    >>> external_resources('<img src="https://example.org/x.png"><a href="https://example.org">ok</a>')
    ['<img src=https://example.org/x.png>']

    The payloads of base64 ``data:`` URIs (a report's figures: most of its bytes) are left out before the search:
    nothing in them can be a URL or a tag, and scanning them was a third of a page's export.

    >>> external_resources('<img src="data:image/png;base64,' + "iVBORw0KGgo/" * 8 + '==" alt="x">')
    []
    """
    html = _BASE64_PAYLOAD.sub("", html)
    found = []
    for m in _OPEN_TAG.finditer(html):
        tag, attrs = m.group(1).lower(), m.group(2)
        if tag == "a" or "//" not in attrs:  # every URL it looks for holds "//"
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


_APPENDIX_SUMMARY = (
    "Technical appendix: every school's measures, every growth model, the survey scales' reliability "
    "and the reproducibility card (select to show)"
)


#: The technical appendix's own page (and its PDF), beside ``report.html``.
APPENDIX_PAGE = "appendix.html"


def _appendix_start(body: str) -> int:
    """Where the technical appendix begins (the cell holding its ``## Technical appendix`` heading), or -1."""
    h = body.find('<h2 id="technical-appendix"')
    if h < 0:
        return -1
    cells = list(_CELL_DIV.finditer(body, 0, h))
    return cells[-1].start() if cells else h


def _collapse_appendix(body: str) -> str:
    """The technical appendix (from the cell holding its ``## Technical appendix`` heading to the end) inside a
    ``<details>`` element, collapsed on screen. The printed report leaves it out and says where it is printed:
    the appendix has a page of its own (:data:`APPENDIX_PAGE`, printed as ``appendix.pdf``), so the board packet
    (``report.pdf``) holds the findings and their detail, and the technical tables travel as a marked appendix."""
    start = _appendix_start(body)
    if start < 0:
        return body
    pdf = Path(APPENDIX_PAGE).with_suffix(".pdf").name
    return (
        body[:start] + f'<p class="print-only appendix-note">{_html.escape(_APPENDIX_PRINTED)} '
        f'<a href="{pdf}">Technical appendix (PDF)</a></p>'
        '<section class="appendix" aria-label="Technical appendix"><details class="appendix">'
        f"<summary>{_html.escape(_APPENDIX_SUMMARY)}</summary>"
        f'<p class="screen-only appendix-note">Also on a page of its own: <a href="{APPENDIX_PAGE}">technical '
        f'appendix</a> (<a href="{pdf}">PDF</a>).</p>' + body[start:] + "</details></section>"
    )


_APPENDIX_PRINTED = (
    "Technical appendix: every school's measures, every growth model, the survey scales' reliability and the "
    "reproducibility card are printed separately, as an appendix to this report:"
)


def _write_appendix(
    report_path: Path, appendix: str, *, title: str, links, min_n: int, banner: str, footer: str
) -> Path:
    """The technical appendix as a page of its own beside the report (open, printable as ``appendix.pdf``)."""
    from .presentation import render

    here = report_path.name
    nav = [{"text": t, "href": h if h is not None else here} for t, h in links]
    nav.append({"text": "Technical appendix", "href": None})
    legend = ""
    if (
        re.search(r"""class\s*=\s*["'][^"']*(?<![\w-])suppressed(?![\w-])""", appendix)
        or SUPPRESSED_MARK in appendix
    ):
        legend = _legend(min_n)
    page = render(
        "report.html.j2",
        title=f"{title}: technical appendix",
        heading=title,
        kicker="Technical appendix",
        facts=[],
        banner=banner,
        has_first_screen=False,
        toc_html="",
        body=f'<p class="note">Appendix to the <a href="{here}">report</a>. '
        + _html.escape(_APPENDIX_ABOUT)
        + "</p>"
        + appendix,
        legend=legend,
        links=nav,
        downloads=[],
        footer=footer,
        running_head=f"{title}: technical appendix",
    )
    ext = external_resources(page)
    if ext:  # pragma: no cover - the same markup as the report, checked there
        raise ReportError("the technical appendix would load external resources: " + "; ".join(ext[:5]))
    out = report_path.with_name(APPENDIX_PAGE)
    atomic_write(out, page.encode("utf-8"), mode=PUBLISHED_FILE_MODE)
    return out


_APPENDIX_ABOUT = (
    "It holds the technical detail behind the report's findings; the report's page numbers do not include it."
)


def _exporter_class(html_exporter):
    """nbconvert's HTML exporter without its last step, a BeautifulSoup parse and re-serialization of the whole
    page (half of its time on a district report) to give images without alt text a placeholder and notebook cells a
    tabindex: here every image without alt text gets one naming its section (:func:`export_html`), and the basic
    template has no notebook cells to focus. The page is the same document (the same tree when parsed), its markup
    as the template wrote it."""
    from nbconvert.exporters.templateexporter import TemplateExporter
    from nbconvert.filters.highlight import Highlight2HTML
    from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

    class TemplateOnlyHTMLExporter(html_exporter):
        def from_notebook_node(self, nb, resources=None, **kw):
            # as HTMLExporter.from_notebook_node, up to its BeautifulSoup pass
            langinfo = nb.metadata.get("language_info", {})
            lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
            highlight = self.filters.get("highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self))
            resources = self._init_resources(resources)
            data_type = WidgetsDataTypeFilter(
                notebook_metadata=self._nb_metadata, parent=self, resources=resources
            )
            self.register_filter("highlight_code", highlight)
            self.register_filter("filter_data_type", data_type)
            return TemplateExporter.from_notebook_node(self, nb, resources, **kw)

    return TemplateOnlyHTMLExporter


def export_html(
    executed_nb_path: str | os.PathLike,
    html_path: str | os.PathLike,
    *,
    title: str,
    subtitle: str = "",
    min_n: int = config.MIN_CELL_SIZE,
    links: Iterable[tuple[str, str | None]] = (),
    downloads: Iterable[tuple[str, str]] = (),
) -> Path:
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

    A ``## Technical appendix`` section (to the end of the notebook) is collapsed on screen and left out of
    print; it is also written as a page of its own, :data:`APPENDIX_PAGE` beside ``html_path`` (printed as
    ``appendix.pdf``, listed in the downloads when the report's PDF is), so the printed report stays a board
    packet and the appendix prints as a marked appendix.

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

    links = list(links)
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
    exporter = getattr(_EXPORTERS, "html", None)
    if exporter is None:
        # one per thread, kept: its templates are compiled once per batch worker instead of once per district (about a
        # third of the export's time); every export registers its own notebook's filters and starts new resources
        exporter = _EXPORTERS.html = _exporter_class(HTMLExporter)(
            template_name="basic",
            exclude_input=True,
            exclude_input_prompt=True,
            exclude_output_prompt=True,
            log=_NBCONVERT_LOG,
        )
    body, _ = exporter.from_notebook_node(nb)
    body = _SCRIPT.sub("", body)

    used: set[str] = set()
    toc_items: list[tuple[int, str, str]] = []
    first_h1 = [True]
    current = [title]

    def heading(m: re.Match) -> str:
        level, inner = int(m.group(1)), m.group(3)
        text = _html.unescape(
            _TAG.sub("", re.sub(r'<a class="anchor-link".*?</a>', "", inner, flags=re.DOTALL))
        )
        text = " ".join(text.split())
        if level == 1 and first_h1[0]:
            first_h1[0] = False
            return ""
        slug = _slug(text, used)
        current[0] = text
        if level in (2, 3):
            toc_items.append((level, slug, text))
        return (
            f'<h{level} id="{slug}">{_html.escape(text)}<a class="anchor-link" href="#{slug}" '
            f'aria-hidden="true">¶</a></h{level}>'
        )

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
        pieces.append(body[pos : m.start()])
        if m.group(1):
            pieces.append(heading(m))
        else:
            pieces.append(img(re.match(r"<(img)\b([^>]*)>", m.group(0), re.DOTALL | re.IGNORECASE)))
        pos = m.end()
    pieces.append(body[pos:])
    body = "".join(pieces)
    if missing_alt[0]:
        warnings.warn(
            f"{Path(executed_nb_path).name}: {missing_alt[0]} figure(s) without alt text; "
            "display figures with reporting.figure_output(fig, alt=...)",
            stacklevel=2,
        )

    start = _appendix_start(body)
    appendix = body[start:] if start >= 0 else ""
    body = _collapse_appendix(body)
    downloads = list(downloads)
    if appendix and any(h.endswith("report.pdf") for _, h in downloads):
        downloads.append(("Technical appendix (PDF)", Path(APPENDIX_PAGE).with_suffix(".pdf").name))
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
    footer = (
        f"Generated by opportunity-research {__version__}. Student-level data never appear in this "
        f"report; groups of fewer than {min_n} students are suppressed."
    )
    page = render(
        "report.html.j2",
        title=title,
        heading=title,
        facts=[("", subtitle)] if subtitle else [],
        has_first_screen=bool(first),
        toc_html=toc_html,
        body=body,
        legend=legend,
        links=[{"text": t, "href": h} for t, h in links],
        downloads=[{"text": t, "href": h} for t, h in downloads],
        footer=footer,
        running_head=title,
    )
    ext = external_resources(page)
    if ext:
        raise ReportError(
            f"{Path(executed_nb_path).name}: the report would load external resources: " + "; ".join(ext[:5])
        )
    out = Path(html_path)
    atomic_write(out, page.encode("utf-8"), mode=PUBLISHED_FILE_MODE)
    if appendix:
        banner = re.search(r'<p class="banner"[^>]*>(.*?)</p>', body, re.DOTALL)
        _write_appendix(
            out,
            appendix,
            title=title,
            links=list(links),
            min_n=min_n,
            banner=_html.unescape(banner.group(1)) if banner else "",
            footer=footer,
        )
    return out


def _readable_time(stamp) -> str:
    """An ISO timestamp as a reader writes it (``"2026-12-05T20:05:26+00:00"`` -> ``"5 December 2026, 20:05 UTC"``)."""
    import datetime as _dt

    try:
        t = _dt.datetime.fromisoformat(str(stamp))
    except ValueError:
        return str(stamp)
    return f"{long_date(t)}, {t:%H:%M}" + (" UTC" if t.utcoffset() in (None, _dt.timedelta(0)) else "")


def _story_of(findings_path: Path, name: str) -> str:
    """The district's largest opportunity gap in one sentence, from the indicator table in its findings."""
    if not findings_path.exists():
        return ""
    try:
        ind = json.loads(findings_path.read_text(encoding="utf-8")).get("indicators") or []
    except (json.JSONDecodeError, AttributeError):
        return ""
    if not ind:
        return ""
    import pandas as pd

    from .headlines import gap_sentence, largest_gap

    row = largest_gap(pd.DataFrame(ind))
    return gap_sentence(name, row) if row else ""


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
            note = (
                f"Last good report of {str(e.get('last_good') or '')[:10]}; the run of "
                f"{str(e.get('failed_at') or '')[:10]} failed: {note}"
            )
        if ok:
            f = root / d / "findings.json"
            try:
                headline = json.loads(f.read_text(encoding="utf-8")).get("headline") if f.exists() else None
            except (json.JSONDecodeError, AttributeError):
                headline = None
            story = _story_of(f, district_name(d))
            if not stale:
                note = story or (headline if isinstance(headline, str) else "")
            report = str(e["report"])
            folder = report.rsplit("/", 1)[0] if "/" in report else d
            links.append(("report", report))
            for text, name in (
                ("board summary", "summary.html"),
                ("en español", "summary.es.html"),
                ("scorecard", "scorecard.html"),
                ("report PDF", "report.pdf"),
                ("scorecard PDF", "scorecard.pdf"),
                ("technical appendix PDF", "appendix.pdf"),
            ):
                if (root / folder / name).exists():
                    links.append((text, f"{folder}/{name}"))
        secs = e.get("seconds")
        rows.append(
            {
                "id": d,
                "name": district_name(d),
                "status": status,
                "links": links,
                "note": str(note),
                "seconds": "" if secs is None else f"{secs:.1f}",
            }
        )
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
    subtitle = f"{n_ok} of {len(manifest.get('districts', []))} district reports complete" + (
        f"; last run {_readable_time(manifest['generated_at'])}" if manifest.get("generated_at") else ""
    )
    from .presentation import is_demo

    ids = [str(e["district_id"]) for e in manifest.get("districts", [])]
    demo = bool(ids) and all(is_demo(d) for d in ids)
    links = [("All reports", None)] + (
        [("Cross-district report", cross["report"])]
        if cross and cross.get("status") == "ok" and cross.get("report")
        else []
    )
    page = render(
        "index.html.j2",
        title="Opportunity research reports",
        heading="Opportunity research reports",
        kicker="Reports",
        facts=[("Status", subtitle)],
        rows=rows,
        cross=cross,
        stale=stale,
        banner=(
            "Synthetic demonstration data: these districts and their students are invented; the numbers "
            "show what the reports do, not any real school system."
        )
        if demo
        else "",
        links=[{"text": t, "href": h} for t, h in links],
        footer=f"Generated by opportunity-research {__version__}. A district whose latest run failed keeps "
        "its last good report, marked stale, with the reason.",
    )
    ext = external_resources(page)
    if ext:  # pragma: no cover - the index is built from fixed markup
        raise ReportError("index.html would load external resources: " + "; ".join(ext))
    path = root / "index.html"
    atomic_write(path, page.encode("utf-8"), mode=PUBLISHED_FILE_MODE)
    return path


def write_scorecard(
    output_dir: str | os.PathLike,
    scorecard,
    *,
    district_id: str,
    links: Iterable[tuple[str, str | None]] | None = None,
) -> Path:
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

    links = (
        list(links)
        if links is not None
        else [
            ("All reports", "../index.html"),
            ("Report", "report.html"),
            ("Scorecard", None),
            ("Scorecard as PDF", "scorecard.pdf"),
            ("Cross-district report", "../cross_district/report.html"),
        ]
    )
    path = config.resolve(output_dir) / "scorecard.html"
    page = scorecard_page(scorecard, district_id=district_id, links=links)
    atomic_write(path, page.encode("utf-8"), mode=PUBLISHED_FILE_MODE)
    return path
