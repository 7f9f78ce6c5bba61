"""A headless Chromium for printing report pages to PDF (and for the browser tests).

The pages are printed by the system's Chromium through Playwright's Python API with an explicit
executable (``playwright install`` is never needed or run). Running headers and page numbers come from
the pages' own CSS (``@page`` margin boxes, Chromium 131 or later), so a reader printing from the
browser gets the same paper as the PDF files.

Finding the browser, in order: the ``OPPORTUNITY_RESEARCH_CHROMIUM`` environment variable, then
``chromium``, ``chromium-browser``, ``google-chrome`` and ``google-chrome-stable`` on the ``PATH``.
:func:`ensure_chromium` (``python -m opportunity_research.report.browser --ensure``, used by ``make``) also
installs Debian's ``chromium`` package with ``apt-get`` when running as root, and otherwise fails with
instructions.

Examples
--------
>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "page.html").write_text("<!doctype html><html lang='en'><title>Page</title><p>One page.</p></html>")
>>> with chromium() as browser:
...     pdf = print_pdf(folder / "page.html", folder / "page.pdf", browser=browser)
>>> pdf.name, pdf.read_bytes()[:5]
('page.pdf', b'%PDF-')
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from ..files import atomic_path

__all__ = [
    "AXE_SCRIPT",
    "AXE_VERSION",
    "CHROMIUM_ARGS",
    "BrowserMissing",
    "axe_violations",
    "chromium",
    "close_shared_chromium",
    "ensure_chromium",
    "find_chromium",
    "print_pdf",
    "print_pdfs",
    "relative_links",
    "screenshots",
    "shared_chromium",
    "shared_tab",
]

#: Command-line switches of every Chromium this package starts: headless, no network chatter, no sandbox
#: (containers and CI run as root).
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = (
    "Install Chromium: on Debian/Ubuntu 'sudo apt-get install -y chromium'; elsewhere install Chromium "
    "or Google Chrome and set OPPORTUNITY_RESEARCH_CHROMIUM to its executable."
)


#: axe-core (the npm package), installed by ``make browser`` into ``.axe/`` of the project for the browser tests.
AXE_VERSION = "4.14.1"
AXE_SCRIPT = Path(__file__).resolve().parents[2] / ".axe" / "node_modules" / "axe-core" / "axe.min.js"
#: The WCAG rule sets axe-core checks: WCAG 2.0 and 2.1, levels A and AA.
AXE_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")


def axe_violations(page, *, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict]:
    """axe-core's WCAG 2.1 A/AA violations of a loaded Playwright ``page`` with one of ``impacts``.

    Each: ``{"id", "impact", "help", "nodes": [target, ...]}`` (at most five targets). Raises
    ``FileNotFoundError`` naming the setup step when axe-core is not installed. axe-core runs every rule of
    :data:`AXE_TAGS` and reports each violation in full; it describes one node of each rule that passed, was
    inapplicable or incomplete (``resultTypes``: the selectors and HTML it makes for every node of those cost a
    sixth of a report page's run, and nothing reads them).

    Examples
    --------
    >>> AXE_TAGS
    ('wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa')
    >>> page = shared_chromium().new_page()
    >>> page.set_content("<!doctype html><html lang='en'><title>Page</title><img src='chart.png'></html>")
    >>> [(v["id"], v["impact"], v["nodes"]) for v in axe_violations(page)]
    [('image-alt', 'critical', ['img'])]
    >>> page.close()
    """
    if not AXE_SCRIPT.exists():
        raise FileNotFoundError(
            f"axe-core is not installed at {AXE_SCRIPT}: run 'make browser' (npm install of "
            f"axe-core@{AXE_VERSION} into .axe/)"
        )
    page.add_script_tag(path=str(AXE_SCRIPT))
    found = page.evaluate(
        """async (tags) => {
          const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
          return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                         nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}));
        }""",
        list(AXE_TAGS),
    )
    return [v for v in found if v["impact"] in impacts]


class BrowserMissing(RuntimeError):
    """No Chromium could be found (or installed).

    Examples
    --------
    >>> issubclass(BrowserMissing, RuntimeError)
    True
    """


def find_chromium() -> str | None:
    """Path of a Chromium executable, or None (see the module notes for the search order).

    Examples
    --------
    >>> import os
    >>> os.environ["OPPORTUNITY_RESEARCH_CHROMIUM"] = "/nonexistent/chromium"  # the variable wins, even if wrong
    >>> find_chromium() is None
    True
    >>> del os.environ["OPPORTUNITY_RESEARCH_CHROMIUM"]
    """
    env = os.environ.get("OPPORTUNITY_RESEARCH_CHROMIUM")
    if env:
        return env if Path(env).is_file() and os.access(env, os.X_OK) else None
    for name in _NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def ensure_chromium(*, install: bool = True) -> str:
    """A Chromium executable: found, or installed with ``apt-get install -y chromium`` when running as root.

    Raises
    ------
    BrowserMissing
        With installation instructions, when none is found and it cannot be installed here.

    Examples
    --------
    >>> import os
    >>> os.environ["OPPORTUNITY_RESEARCH_CHROMIUM"] = "/nonexistent/chromium"
    >>> try:
    ...     ensure_chromium(install=False)
    ... except BrowserMissing as exc:
    ...     print(str(exc)[:30])
    No Chromium found (looked at $
    >>> del os.environ["OPPORTUNITY_RESEARCH_CHROMIUM"]
    """
    found = find_chromium()
    if found:
        return found
    if install and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (
            ["apt-get", "update"],
            ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
        ):
            res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            if res.returncode != 0:
                raise BrowserMissing(
                    f"'{' '.join(cmd)}' failed ({res.returncode}): {res.stderr.strip()[-500:]}. "
                    + INSTALL_HINT
                )
        found = find_chromium()
        if found:
            return found
    raise BrowserMissing(
        "No Chromium found (looked at $OPPORTUNITY_RESEARCH_CHROMIUM and "
        f"{', '.join(_NAMES)} on the PATH). " + INSTALL_HINT
    )


@contextlib.contextmanager
def chromium(executable: str | None = None) -> Iterator[object]:
    """A running headless Chromium (a Playwright ``Browser``), closed on exit.

    Launched by this thread's Playwright when :func:`shared_chromium` keeps one running (Playwright's synchronous
    API refuses to start a second driver in a thread whose driver runs, and a driver's start costs about 0.55 CPU-s;
    the shared browser is left alone); otherwise by a Playwright of its own, stopped on exit.

    Examples
    --------
    >>> with chromium() as browser:
    ...     browser.is_connected()
    True
    >>> shared = shared_chromium()
    >>> with chromium() as browser:  # beside the shared browser, from its Playwright
    ...     browser is not shared, browser.is_connected()
    (True, True)
    >>> shared.is_connected(), close_shared_chromium()
    (True, True)
    """
    from playwright.sync_api import sync_playwright

    exe = executable or find_chromium()
    if exe is None:
        raise BrowserMissing("No Chromium found. " + INSTALL_HINT)
    shared = getattr(_SHARED, "browser", None)
    running = shared is not None and shared.is_connected()
    with contextlib.nullcontext(_SHARED.playwright) if running else sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=list(CHROMIUM_ARGS), headless=True)
        try:
            yield browser
        finally:
            browser.close()


_SHARED = threading.local()


def shared_chromium(executable: str | None = None):
    """A headless Chromium kept running for this thread, started on first use: one per batch worker.

    Playwright's synchronous objects belong to the thread that started them, so the browser is per thread (a
    Dask worker runs its tasks in one thread; ``--jobs 1`` runs them in the main thread). A browser that has
    disconnected is replaced. :func:`close_shared_chromium`, in the same thread, stops it.

    Examples
    --------
    >>> browser = shared_chromium()
    >>> shared_chromium() is browser, browser.is_connected()
    (True, True)
    >>> close_shared_chromium()
    True
    """
    browser = getattr(_SHARED, "browser", None)
    if browser is not None and browser.is_connected():
        return browser
    close_shared_chromium()
    from playwright.sync_api import sync_playwright

    exe = executable or find_chromium()
    if exe is None:
        raise BrowserMissing("No Chromium found. " + INSTALL_HINT)
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=exe, args=list(CHROMIUM_ARGS), headless=True)
    except BaseException:
        pw.stop()
        raise
    _SHARED.playwright, _SHARED.browser = pw, browser
    return browser


def shared_tab(executable: str | None = None):
    """An open tab of this thread's :func:`shared_chromium`, kept for the next caller: one per batch worker.

    Every new tab (a Playwright page, in a browser context of its own) starts a renderer process, which loads its
    fonts and sets up its caches again: about 0.9 CPU-s of Chromium's 2.8 for a demo district's five PDFs on the
    2-core machine of issue 21 (measured with the browser's processes sampled, as a closed tab's renderer leaves
    no trace in its parent's CPU times). The batch therefore prints district after district in this one tab.
    :func:`print_pdfs` leaves it on ``about:blank`` after each folder (no district's page stays loaded; the renderer
    told to give back what it can) and closes it when printing failed, so the next call opens a new one; a tab of a
    browser that has been replaced is replaced too. :func:`close_shared_chromium` closes it with the browser.

    Examples
    --------
    >>> tab = shared_tab()
    >>> shared_tab() is tab, tab.context.browser is shared_chromium()
    (True, True)
    >>> tab.close()
    >>> shared_tab() is tab  # a closed tab is replaced
    False
    >>> close_shared_chromium()
    True
    """
    browser = shared_chromium(executable)
    tab = getattr(_SHARED, "tab", None)
    if tab is not None and not tab.is_closed() and tab.context.browser is browser:
        return tab
    if tab is not None:
        with contextlib.suppress(Exception):
            tab.close()
    _SHARED.tab = browser.new_page()
    return _SHARED.tab


def close_shared_chromium() -> bool:
    """Stop this thread's shared browser (and its shared tab), if any (True if there was one).

    Examples
    --------
    >>> close_shared_chromium()  # no shared browser in this thread
    False
    """
    browser, pw = getattr(_SHARED, "browser", None), getattr(_SHARED, "playwright", None)
    _SHARED.browser = _SHARED.playwright = _SHARED.tab = None
    with contextlib.suppress(Exception):
        if browser is not None:
            browser.close()
    with contextlib.suppress(Exception):
        if pw is not None:
            pw.stop()
    return browser is not None


def print_pdf(html_path: str | os.PathLike, pdf_path: str | os.PathLike, *, browser=None, tab=None) -> Path:
    """Print a page to PDF as Chromium prints it (the page's ``@page`` size, margins, headers and page numbers).

    Written to a temporary name, then renamed (mode 0644). ``browser``: a running browser from
    :func:`chromium` (default: one started for this page). ``tab``: an open Playwright page of that browser to
    print in, left open (several pages printed in one tab share its renderer process instead of starting one
    each; see :func:`print_pdfs`).

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "page.html").write_text("<!doctype html><title>Page</title><a href='scorecard.html'>Scorecard</a>")
    >>> pdf = print_pdf(folder / "page.html", folder / "page.pdf")
    >>> pdf.read_bytes()[:5], oct(pdf.stat().st_mode & 0o777)
    (b'%PDF-', '0o644')
    """
    html_path, pdf_path = Path(html_path).resolve(), Path(pdf_path)
    if tab is None and browser is None:
        with chromium() as b:
            return print_pdf(html_path, pdf_path, browser=b)
    page = tab if tab is not None else browser.new_page()
    try:
        # print media before the page loads: it is laid out for print only (emulated after loading, the page was laid
        # out for the screen first and then again for print)
        page.emulate_media(media="print")
        _print(page, html_path, pdf_path)
    finally:
        if tab is None:
            page.close()
    return pdf_path


def _print(page, html_path: Path, pdf_path: Path) -> None:
    """:func:`print_pdf` in ``page``, a tab already in print media (``html_path`` resolved)."""
    page.goto(html_path.as_uri(), wait_until="load")
    with atomic_path(pdf_path, mode=0o644) as tmp:
        page.pdf(path=tmp, prefer_css_page_size=True, print_background=True, outline=True, tagged=True)
        relative_links(tmp, base=html_path.parent)


def print_pdfs(pages: list[Path], *, browser=None, tab=None) -> list[Path]:
    """Print each HTML page to a PDF beside it (``report.html`` to ``report.pdf``), one after another in one tab of
    ``browser``: one renderer process for them all (a new tab for each page costs a renderer's start, about a
    third of a second each on the 2-core machine of issue 21).

    ``tab``: an open tab to print in instead (e.g. :func:`shared_tab`), kept open for the next folder: it is left
    on ``about:blank`` afterwards with its renderer's memory purged (:func:`_purge`), and closed if printing failed
    (a crashed or stuck renderer is not reused).

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name in ("a", "b"):
    ...     _ = (folder / f"{name}.html").write_text(f"<!doctype html><title>{name}</title><p>Page {name}.</p>")
    >>> pdfs = print_pdfs([folder / "a.html", folder / "b.html"], browser=shared_chromium())
    >>> [p.name for p in pdfs], [p.read_bytes()[:5] for p in pdfs]
    (['a.pdf', 'b.pdf'], [b'%PDF-', b'%PDF-'])

    In a tab kept open:

    >>> tab = shared_tab()
    >>> [p.name for p in print_pdfs([folder / "a.html"], tab=tab)], tab.url, tab.is_closed()
    (['a.pdf'], 'about:blank', False)
    >>> close_shared_chromium()
    True
    """

    def each(tab) -> list[Path]:
        tab.emulate_media(media="print")  # once for the pages (see print_pdf)
        written = []
        for page in pages:
            _print(tab, Path(page).resolve(), Path(page).with_suffix(".pdf"))
            written.append(Path(page).with_suffix(".pdf"))
        return written

    if tab is None:
        tab = browser.new_page()
        try:
            return each(tab)
        finally:
            tab.close()
    try:
        written = each(tab)
        tab.goto("about:blank")
    except BaseException:
        with contextlib.suppress(Exception):
            tab.close()
        raise
    _purge(tab)
    return written


def _purge(tab) -> None:
    """Ask the tab's renderer to give back what it keeps after printing (Chrome DevTools Protocol: its JavaScript
    heap purged, then a critical memory-pressure signal, which drops its caches): the kept tab otherwise held on to
    about 110 MB of its last folder until the next one (Chromium's processes 660 -> 550 MB PSS after a demo
    district's five PDFs, no more CPU). Best effort: a failure changes nothing printed."""
    with contextlib.suppress(Exception):
        cdp = tab.context.new_cdp_session(tab)
        try:
            cdp.send("Memory.forciblyPurgeJavaScriptMemory")
            cdp.send("Memory.simulatePressureNotification", {"level": "critical"})
        finally:
            cdp.detach()


def relative_links(pdf_path: str | os.PathLike, *, base: str | os.PathLike) -> int:
    """Rewrite the PDF's links to local files as paths relative to ``base`` (the page's folder), in place.

    Chromium prints every link as an absolute URL, so a page printed from a staging folder would link to
    ``file:///<project>/reports/.tmp-<district>-<run>/scorecard.html``: a local path in a published file and
    a dead link once the folder is swapped into place. Relative links (``scorecard.html``,
    ``../index.html``) work wherever the published folder is copied. Links to the web are left alone.
    Returns the number of links rewritten.

    Chromium writes each link's ``/URI`` as a literal string in an uncompressed object, so the fast path
    replaces each local URI in place by the (shorter) relative one, padded with spaces to the same length:
    every object keeps its byte offset and the cross-reference table stays valid, and nothing else in the file
    changes. A PDF written otherwise (object streams, hexadecimal strings, a relative link longer than the
    absolute one) is rewritten object by object with pypdf instead; either way no ``file:`` URI is left.

    Examples
    --------
    >>> import tempfile
    >>> from pypdf import PdfReader, PdfWriter
    >>> from pypdf.annotations import Link
    >>> folder = Path(tempfile.mkdtemp())
    >>> w = PdfWriter()
    >>> _ = w.add_blank_page(200, 200)
    >>> _ = w.add_annotation(0, Link(rect=(0, 0, 50, 50), url=(folder / "scorecard.html").as_uri() + "#goals"))
    >>> _ = w.add_annotation(0, Link(rect=(60, 0, 110, 50), url="https://tntp.org/"))
    >>> with open(folder / "page.pdf", "wb") as f:
    ...     _ = w.write(f)
    >>> relative_links(folder / "page.pdf", base=folder)
    1
    >>> [str(a.get_object()["/A"]["/URI"]) for a in PdfReader(folder / "page.pdf").pages[0]["/Annots"]]
    ['scorecard.html#goals', 'https://tntp.org/']
    """
    base = Path(base).resolve()
    data = Path(pdf_path).read_bytes()
    rewritten = _relative_links_in_place(data, base)
    if rewritten is None:
        return _relative_links_pypdf(pdf_path, base)
    new, changed = rewritten
    if changed:
        with open(pdf_path, "wb") as f:
            f.write(new)
    return changed


def _relative_uri(uri: str, base: Path) -> str | None:
    """``uri`` relative to ``base`` when it is a ``file:`` URI, else None."""
    from urllib.parse import unquote, urlparse

    if not uri.startswith("file:"):
        return None
    u = urlparse(uri)
    return Path(os.path.relpath(unquote(u.path), base)).as_posix() + (f"#{u.fragment}" if u.fragment else "")


#: ``/URI`` followed by a literal string (balanced parentheses are not used by Chromium: they are escaped).
_URI_LITERAL = re.compile(rb"/URI\s*\(((?:[^()\\]|\\.)*)\)", re.DOTALL)
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def _pdf_literal(raw: bytes) -> bytes:
    """The bytes a PDF literal string's body stands for (escapes resolved)."""
    return re.sub(
        rb"\\([0-7]{1,3}|\r\n|.)",
        lambda m: (
            bytes([int(m.group(1), 8) & 0xFF])
            if m.group(1)[:1].isdigit()
            else b""
            if m.group(1) in (b"\n", b"\r", b"\r\n")
            else _ESCAPES.get(m.group(1), m.group(1))
        ),
        raw,
        flags=re.DOTALL,
    )


def _relative_links_in_place(data: bytes, base: Path) -> tuple[bytes, int] | None:
    """(the PDF with its local links made relative, same length; links rewritten), or None when the PDF is not
    laid out as Chromium writes it (see :func:`relative_links`)."""
    if b"/ObjStm" in data or len(re.findall(rb"/URI\s*[(<]", data)) != len(_URI_LITERAL.findall(data)):
        return None
    out, changed, last = [], 0, 0
    for m in _URI_LITERAL.finditer(data):
        try:
            uri = _pdf_literal(m.group(1)).decode("ascii")
        except UnicodeDecodeError:
            return None
        rel = _relative_uri(uri, base)
        if rel is None:
            continue
        if not rel.isascii():
            return None
        body = rel.encode("ascii").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
        new = b"/URI (" + body + b")"
        if len(new) > len(m.group(0)):
            return None
        out += [data[last : m.start()], new.ljust(len(m.group(0)), b" ")]
        last, changed = m.end(), changed + 1
    out.append(data[last:])
    new_data = b"".join(out)
    # e.g. an escaped or otherwise spelled local URI: let pypdf decide
    return (new_data, changed) if b"file:" not in new_data else None


def _relative_links_pypdf(pdf_path: str | os.PathLike, base: Path) -> int:
    """:func:`relative_links` for any PDF: pypdf reads and rewrites the whole document."""
    import logging

    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import NameObject, TextStringObject

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # Chromium's trailers draw harmless size warnings
    writer = PdfWriter(clone_from=PdfReader(str(pdf_path)))
    changed = 0
    for page in writer.pages:
        for ref in page.get("/Annots") or []:
            annot = ref.get_object()
            action = annot.get("/A")
            action = action.get_object() if action is not None else None
            if action is None or "/URI" not in action:
                continue
            rel = _relative_uri(str(action["/URI"]), base)
            if rel is None:
                continue
            action[NameObject("/URI")] = TextStringObject(rel)
            changed += 1
    if changed:
        with open(pdf_path, "wb") as f:
            writer.write(f)
    return changed


def screenshots(
    reports_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    district: str = "demo_lakeside",
    executable: str | None = None,
) -> list[Path]:
    """Screenshots of one district's pages for the documentation (README), written into ``out_dir``.

    ``report-first-screen.png`` and ``scorecard-first-screen.png`` (a 1280 x 900 window),
    ``report-phone.png`` (390 x 844), and ``report-printed-page.png`` / ``scorecard-printed-page.png``
    (the first page of each PDF, as Chromium's PDF viewer shows it).

    Examples
    --------
    Not run as a doctest: it needs a district's built report (``make reports``) and waits 5 s for Chromium's PDF
    viewer; ``make screenshots`` runs it.

    >>> written = screenshots("reports", "docs/img")  # doctest: +SKIP
    >>> sorted(p.name for p in written)  # doctest: +SKIP
    ['report-first-screen.png', 'report-phone.png', 'report-printed-page.png', 'scorecard-first-screen.png',
     'scorecard-printed-page.png']
    """
    import time

    folder, out = Path(reports_dir) / district, Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with chromium(executable) as browser:
        for name, page_file, (w, h) in (
            ("report-first-screen", "report.html", (1280, 900)),
            ("report-phone", "report.html", (390, 844)),
            ("scorecard-first-screen", "scorecard.html", (1280, 900)),
        ):
            page = browser.new_page(viewport={"width": w, "height": h})
            page.goto((folder / page_file).resolve().as_uri(), wait_until="load")
            page.screenshot(path=str(out / f"{name}.png"))
            page.close()
            written.append(out / f"{name}.png")
        for name, pdf in (("report-printed-page", "report.pdf"), ("scorecard-printed-page", "scorecard.pdf")):
            page = browser.new_page(viewport={"width": 850, "height": 1100})
            page.goto(
                (folder / pdf).resolve().as_uri() + "#toolbar=0&navpanes=0&view=FitH", wait_until="load"
            )
            time.sleep(2.5)  # the PDF viewer draws after load
            page.screenshot(path=str(out / f"{name}.png"))
            page.close()
            written.append(out / f"{name}.png")
    for p in written:
        os.chmod(p, 0o644)
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m opportunity_research.report.browser [--ensure]``: print the Chromium in use (installing it if asked)."""
    ap = argparse.ArgumentParser(
        prog="python -m opportunity_research.report.browser",
        description="Find (or, with --ensure, install) the Chromium used for PDFs and browser tests.",
    )
    ap.add_argument(
        "--ensure", action="store_true", help="install Debian's chromium with apt-get if missing (root)"
    )
    ap.add_argument("--screenshots", metavar="DIR", help="write screenshots of one district's pages into DIR")
    ap.add_argument(
        "--district", default="demo_lakeside", help="district for --screenshots (default demo_lakeside)"
    )
    ap.add_argument("--reports", default="reports", help="reports folder for --screenshots (default reports)")
    args = ap.parse_args(argv)
    try:
        path = ensure_chromium(install=args.ensure) if args.ensure else find_chromium()
    except BrowserMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if path is None:
        print("error: no Chromium found. " + INSTALL_HINT, file=sys.stderr)
        return 1
    print(path)
    if args.screenshots:
        for p in screenshots(args.reports, args.screenshots, district=args.district, executable=path):
            print(p)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
