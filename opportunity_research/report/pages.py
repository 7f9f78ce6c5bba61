"""Publishing a report folder: the HTML page from the executed notebook, PDF copies, links and file modes.

The batch runner calls :func:`publish_pages` once per report folder, after the notebook ran and was
sanitized, before the privacy screen and the swap into ``reports/``. It

1. writes ``report.html`` (:func:`opportunity_research.report.reporting.export_html`; a report with a technical
   appendix also gets ``appendix.html``, the appendix on a page of its own) with a navigation bar
   (all reports, this district's report and scorecard, their PDFs, the cross-district report; the
   cross-district page links back to every district) and a Downloads section listing every CSV table,
   figure and PDF of the folder;
2. prints ``report.pdf`` (the board packet, without the technical appendix), ``appendix.pdf``,
   ``scorecard.pdf`` and the board summaries beside the HTML pages with the system's Chromium
   (:mod:`opportunity_research.report.browser`); without a browser it warns, writes no PDF and removes the links
   to the missing PDFs (``require_pdf=True`` makes that an error instead);
3. makes the folder world-readable (folders 0755, files 0644), since ``mkdtemp``/``mkstemp`` create them
   private.

A folder layout, e.g. ``reports/demo_lakeside/``::

    report.html  report.pdf  appendix.html  appendix.pdf  scorecard.html  scorecard.pdf
    summary.html  summary.pdf  summary.es.html  summary.es.pdf  report.ipynb  findings.json
    tables/*.csv  figures/*.png
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

from .. import config
from .reporting import APPENDIX_PAGE, PUBLISHED_DIR_MODE, PUBLISHED_FILE_MODE, export_html
from .school_detail import csv_label

__all__ = ["CROSS_DISTRICT", "make_world_readable", "page_links", "publish_pages"]

CROSS_DISTRICT = "cross_district"


def make_world_readable(folder: str | os.PathLike) -> None:
    """Folders 0755 and files 0644 under ``folder`` (itself included); symbolic links are left alone.

    Examples
    --------
    >>> import os, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "report.html").write_text("<p>report</p>")
    >>> make_world_readable(folder)
    >>> oct(folder.stat().st_mode & 0o777), oct((folder / "report.html").stat().st_mode & 0o777)
    ('0o755', '0o644')
    """
    root = Path(folder)
    os.chmod(root, PUBLISHED_DIR_MODE)
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            p = Path(dirpath, d)
            if not p.is_symlink():
                os.chmod(p, PUBLISHED_DIR_MODE)
        for f in filenames:
            p = Path(dirpath, f)
            if not p.is_symlink():
                os.chmod(p, PUBLISHED_FILE_MODE)


def page_links(
    kind: str, *, here: str, districts: Iterable[str] = (), pdf: bool = True
) -> list[tuple[str, str | None]]:
    """The navigation bar of a page: ``(text, href)`` pairs, ``href=None`` for the page itself.

    ``kind`` is ``"district"`` or ``"cross"``; ``here`` the page's file name (``report.html`` or
    ``scorecard.html``). Links are relative within ``reports/``.

    Examples
    --------
    >>> page_links("district", here="report.html", pdf=True)
    [('All reports', '../index.html'), ('Board summary', 'summary.html'), ('Report', None), ('Report PDF', 'report.pdf'), ('Scorecard', 'scorecard.html'), ('Scorecard PDF', 'scorecard.pdf'), ('Cross-district report', '../cross_district/report.html')]
    """
    from .presentation import district_name

    links: list[tuple[str, str | None]] = [("All reports", "../index.html")]
    if kind == "cross":
        links.append(("Cross-district report", None))
        if pdf:
            links.append(("PDF", "report.pdf"))
        links += [(district_name(d), f"../{d}/report.html") for d in districts]
        return links
    links.append(("Board summary", None if here == "summary.html" else "summary.html"))
    links.append(("Report", None if here == "report.html" else "report.html"))
    if pdf:
        links.append(("Report PDF", "report.pdf"))
    links.append(("Scorecard", None if here == "scorecard.html" else "scorecard.html"))
    if pdf:
        links.append(("Scorecard PDF", "scorecard.pdf"))
    links.append(("Cross-district report", f"../{CROSS_DISTRICT}/report.html"))
    return links


def _downloads(folder: Path, pdf: bool) -> list[tuple[str, str]]:
    out = [(csv_label(p.stem), f"tables/{p.name}") for p in sorted((folder / "tables").glob("*.csv"))]
    out += [
        (f"{p.stem.replace('_', ' ').capitalize()} (PNG figure)", f"figures/{p.name}")
        for p in sorted((folder / "figures").glob("*.png"))
    ]
    if pdf:
        out.append(("This report (PDF)", "report.pdf"))
        if (folder / "scorecard.html").exists():
            out.append(("Opportunity Scorecard (PDF)", "scorecard.pdf"))
    if pdf and (folder / "summary.html").exists():
        out.append(("Board summary (PDF)", "summary.pdf"))
        out.append(("Resumen para la junta escolar (PDF, español)", "summary.es.pdf"))
    if (folder / "findings.json").exists():
        out.append(("Headline numbers, machine-readable (JSON)", "findings.json"))
    return out


_LOCAL_LINK = re.compile(r'<a href="([^":#/?]+\.(?:pdf|html))">([^<]*)</a>(\s*)')


def _drop_dead_links(page: Path, suffixes: tuple[str, ...] = (".html", ".pdf")) -> None:
    """Remove links from ``page`` to files of its own folder that do not exist (e.g. PDFs not made), of the
    given ``suffixes``."""
    text = page.read_text(encoding="utf-8")
    new = _LOCAL_LINK.sub(
        lambda m: (
            m.group(0) if (page.parent / m.group(1)).exists() or not m.group(1).endswith(suffixes) else ""
        ),
        text,
    )
    if new != text:
        from ..files import atomic_write

        atomic_write(page, new.encode("utf-8"), mode=PUBLISHED_FILE_MODE)


def publish_pages(
    folder: str | os.PathLike,
    *,
    notebook: str | os.PathLike,
    kind: str,
    title: str,
    min_n: int = config.MIN_CELL_SIZE,
    districts: Iterable[str] = (),
    require_pdf: bool = False,
    shared_browser: bool = False,
    before_print: Callable[[], object] | None = None,
) -> list[Path]:
    """Write a report folder's pages: ``report.html``, the PDFs, links; then make it world-readable.

    Parameters
    ----------
    folder
        The report folder (the runner's temporary folder, swapped into ``reports/`` afterwards).
    notebook
        The executed, sanitized notebook.
    kind
        ``"district"`` or ``"cross"``.
    title
        Page title (a district report's first screen replaces it with the district's name).
    min_n
        Minimum cell size, named in the suppression legend.
    districts
        For the cross-district page: the districts it covers (linked from its navigation bar).
    require_pdf
        Raise :class:`opportunity_research.report.browser.BrowserMissing` when no Chromium is available
        instead of publishing HTML only.
    shared_browser
        Print in this thread's long-lived browser and tab (:func:`opportunity_research.report.browser.shared_tab`,
        one per batch worker, kept from folder to folder) instead of starting a browser for this folder; it is
        started (if it is not running yet) before the HTML pages are written.
    before_print
        Called once the HTML pages are written (and their links to missing pages dropped), before the PDFs are
        printed: the batch starts the privacy screen there, in a thread, while Chromium prints.

    Returns
    -------
    list of Path
        The pages written (HTML and PDF).

    Examples
    --------
    >>> import tempfile, pathlib, nbformat
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> nb = nbformat.v4.new_notebook()
    >>> nb.cells = [nbformat.v4.new_markdown_cell("# Cross-district report")]
    >>> nbformat.write(nb, folder / "report.ipynb")
    >>> pages = publish_pages(folder, notebook=folder / "report.ipynb", kind="cross", title="Cross-district report")
    >>> pages[0].name, (folder / "report.html").read_text().count("Cross-district report") > 0
    ('report.html', True)
    """
    from .browser import BrowserMissing, chromium, find_chromium, print_pdfs, shared_tab

    folder = Path(folder)
    exe = find_chromium()
    if exe is None:
        if require_pdf:
            raise BrowserMissing(
                "no Chromium to print the PDF copies; run 'python -m opportunity_research.report.browser "
                "--ensure' or set OPPORTUNITY_RESEARCH_CHROMIUM"
            )
        warnings.warn(
            "no Chromium found: publishing HTML only, without PDF copies "
            "(python -m opportunity_research.report.browser --ensure installs one)",
            stacklevel=2,
        )
    pdf = exe is not None
    # the shared browser first: it starts while the HTML pages are written and ``before_print`` waits (the batch's
    # disclosure gate), not after them (1.8 s of a million-student district's pages, on the way to its PDFs)
    tab = shared_tab(exe) if pdf and shared_browser else None
    districts = list(districts)
    written = [
        export_html(
            notebook,
            folder / "report.html",
            title=title,
            min_n=min_n,
            links=page_links(kind, here="report.html", districts=districts, pdf=pdf),
            downloads=_downloads(folder, pdf),
        )
    ]
    pages = [folder / "report.html"] + [
        folder / n
        for n in (APPENDIX_PAGE, "scorecard.html", "summary.html", "summary.es.html")
        if (folder / n).exists()
    ]
    if (folder / APPENDIX_PAGE).exists():
        written.append(folder / APPENDIX_PAGE)
    for page in pages:  # e.g. a notebook that writes no board summary: no link to one, on screen or on paper
        _drop_dead_links(page, (".html",))
    if before_print is not None:
        before_print()
    if tab is not None:
        written += print_pdfs(pages, tab=tab)
    elif pdf:
        with chromium(exe) as browser:
            written += print_pdfs(pages, browser=browser)
    for page in pages:
        _drop_dead_links(page)
    make_world_readable(folder)
    return written
