"""Every published demo page, loaded in a real headless Chromium (the system's, through Playwright).

``make test`` builds the demo reports first (``make reports``) and obtains a browser
(``python -m opportunity_research.report.browser --ensure``). A missing browser or missing pages FAIL these
tests (never skip): the pages are the product reviewers see.

For each page (index, every district's report and scorecard, the cross-district report):

* no console error and no failed request (every ``file:`` resource loads);
* every image decoded (``naturalWidth > 0``);
* at a 1280 px window no table is wider than the window and no table scrolls inside its box;
* at 390 px the page does not scroll sideways, and laid out for print (a Letter page's width) no table is
  wider than the page;
* every link resolves: a local file that exists, and an ``#anchor`` that exists in its target;
* beside each report, technical appendix and scorecard a PDF whose text holds every table header (a report's
  in its PDF and its appendix's together), running headers and page numbers ("Page 1 of N"); a report prints
  at most 15 pages, a scorecard at most 6.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from opportunity_research import config
from opportunity_research.report.browser import INSTALL_HINT, find_chromium, shared_chromium

# run first, in the worker's one Chromium (tests/conftest.py)
pytestmark = [pytest.mark.long(35), pytest.mark.usefixtures("worker_browser")]

REPORTS = config.project_root() / "reports"


def _pages() -> list[Path]:
    pages = [REPORTS / "index.html"] if (REPORTS / "index.html").exists() else []
    for d in (
        sorted(p for p in REPORTS.iterdir() if p.is_dir() and not p.name.startswith("."))
        if REPORTS.exists()
        else []
    ):
        pages += [
            d / n
            for n in ("report.html", "appendix.html", "scorecard.html", "summary.html", "summary.es.html")
            if (d / n).exists()
        ]
    return pages


PAGES = _pages()
IDS = [p.relative_to(REPORTS).as_posix() for p in PAGES]


@pytest.fixture(scope="module")
def browser():
    if find_chromium() is None:
        pytest.fail(
            "No Chromium for the browser tests. Run 'python -m opportunity_research.report.browser --ensure' "
            "(installs Debian's chromium as root) or: " + INSTALL_HINT,
            pytrace=False,
        )
    return shared_chromium()


@pytest.fixture(scope="module")
def tab(browser):
    """One tab for every page of the module: a new tab starts a renderer (about half a second of CPU), and a
    page measured at three widths is laid out again on resize rather than loaded three times."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    yield page
    page.close()


def test_the_demo_pages_exist():
    """make test builds the reports first; without them the browser tests would test nothing."""
    assert PAGES, f"no pages under {REPORTS}: run 'make reports' first"
    names = {p.name for p in PAGES}
    assert {"index.html", "report.html", "scorecard.html"} <= names
    districts = [
        p.parent.name for p in PAGES if p.name == "report.html" and p.parent.name != "cross_district"
    ]
    assert districts and all((REPORTS / d / "scorecard.html").exists() for d in districts)


_IDENTIFIERS = re.compile(
    r"\b(?:race_ethnicity|low_income|english_learner|started_behind|grade_appropriate|"
    r"strong_instruction|high_expectations|ci_lower|ci_upper|n_classrooms|hours_without|"
    r"reference_estimate|school_id|classroom_id|[a-z_]+=[a-z0-9_.]+)\b|\b(?:19|20)\d\d\.0\b|"
    r"\b2,0\d\d-\d\d\b|\b(?:in|since|from|to) 2,0\d\d\b|\bnan\b|\bNone\b"
)


def _norm(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


_CHECKS = """() => {
  const imgs = [...document.images].map(i => ({src: i.currentSrc.slice(0, 60), ok: i.complete && i.naturalWidth > 0}));
  const tables = [...document.querySelectorAll('table')].map(t => {
    const r = t.getBoundingClientRect();
    const box = t.closest('.table-wrap') || t.parentElement;
    return {caption: (t.caption ? t.caption.innerText : '').slice(0, 60), right: r.right, width: r.width,
            inner: box.scrollWidth - box.clientWidth};
  });
  const links = [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'));
  const ids = [...document.querySelectorAll('[id]')].map(e => e.id);
  const headers = [...document.querySelectorAll('table thead th')].filter(th => th.getAttribute('scope') === 'col')
                    .map(th => th.innerText.trim()).filter(t => t);
  return {imgs, tables, links, ids, headers, width: document.documentElement.scrollWidth, inner: window.innerWidth,
          text: document.body.innerText};
}"""


def _load(tab, path: Path) -> list[str]:
    """Open ``path`` in ``tab`` at 1280 px on screen; the console errors, page errors and failed requests."""
    tab.set_viewport_size({"width": 1280, "height": 900})
    tab.emulate_media(media="screen")
    problems: list[str] = []
    listeners = {
        "console": lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
        "pageerror": lambda e: problems.append(f"page error: {e}"),
        "requestfailed": lambda r: problems.append(f"failed request: {r.url} ({r.failure})"),
        "response": lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None,
    }
    for event, listener in listeners.items():
        tab.on(event, listener)
    try:
        tab.goto(path.as_uri(), wait_until="load")  # every image is a data URI: nothing loads after "load"
    finally:
        for event, listener in listeners.items():
            tab.remove_listener(event, listener)
    return problems


def _measure(tab, width: int, media: str = "screen") -> dict:
    """The loaded page laid out at ``width`` px for ``media`` (screen or print): :data:`_CHECKS`."""
    tab.set_viewport_size({"width": width, "height": 900})
    tab.emulate_media(media=media)
    return tab.evaluate(_CHECKS)


_READERS = """() => ({
  unnamed: [...document.querySelectorAll('table')].filter(t =>
    [...t.tBodies].some(b => [...b.rows].some(r => r.cells.length > 1 && !r.querySelector('th')))).length,
  alts: [...document.images].map(i => i.alt.length)})"""

#: What each page's two tests read, by page: observed once, by the first of them (``scope="module"`` parameters
#: group a page's tests; a test run alone observes its page itself)
_SEEN: dict[Path, dict] = {}


def _observe(tab, path: Path) -> dict:
    """``path`` loaded once in ``tab`` and read there: ``problems`` (:func:`_load`), ``wide`` (1280 px on screen),
    ``axe`` (axe-core's violations, or the error that stopped it: the WCAG test raises it) with ``unnamed`` and
    ``alts`` at that same layout, then ``narrow`` (390 px) and ``paper`` (print). A page's load and its layouts
    are most of its browser time: the page is laid out at 1280 px once, and axe-core checks the layout the
    ``wide`` checks measured (the pages run no script, so measuring them changes nothing in them)."""
    if path not in _SEEN:
        from opportunity_research.report.browser import axe_violations

        seen = {"problems": _load(tab, path), "wide": _measure(tab, 1280)}
        try:
            seen["axe"] = axe_violations(tab)
        except Exception as exc:  # noqa: BLE001 - raised by the WCAG test, not by the layout test
            seen["axe"] = exc
        seen |= tab.evaluate(_READERS)
        seen["narrow"] = _measure(tab, 390)
        seen["paper"] = _measure(tab, 703, media="print")
        _SEEN[path] = seen
    return _SEEN[path]


_HEADING_TEXT = re.compile(r'<h[23][^>]*>(.*?)</h[23]>|<span class="gt_title">(.*?)</span>', re.DOTALL)


def _headings(path: Path) -> set[str]:
    """The page's section headings and table captions, normalized as :func:`_norm` does."""
    found = (a or b for a, b in _HEADING_TEXT.findall(path.read_text(encoding="utf-8")))
    from html import unescape

    return {_norm(unescape(re.sub(r"<[^>]+>", "", h))).replace("¶", "") for h in found} - {""}


def _ends_with_heading(text: str, heads: set[str]) -> bool:
    """The printed page's last line (or two, a heading that wraps) is a heading or a table caption."""
    lines = [line for line in text.splitlines() if line.strip()]
    return bool(lines) and (_norm(lines[-1]) in heads or _norm("".join(lines[-2:])) in heads)


@functools.cache
def _pdf_pages(pdf: Path) -> tuple[str, ...]:
    """The text of each printed page, extracted once per test run (pypdf takes about 0.07 s a page)."""
    from pypdf import PdfReader

    return tuple(p.extract_text() or "" for p in PdfReader(pdf).pages)


def _ids_of(path: Path) -> set[str]:
    return set(re.findall(r'\sid="([^"]+)"', path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("path", PAGES, ids=IDS, scope="module")
def test_page_in_chromium(tab, path):
    seen = _observe(tab, path)
    assert seen["problems"] == [], seen["problems"]
    wide = seen["wide"]
    # human language only: no column, group, level or measure identifier in what a reader sees
    raw = sorted(set(_IDENTIFIERS.findall(wide["text"])))
    assert not raw, f"identifiers shown to readers: {raw}"
    bad_imgs = [i["src"] for i in wide["imgs"] if not i["ok"]]
    assert not bad_imgs, f"images not decoded: {bad_imgs}"
    too_wide = [t for t in wide["tables"] if t["right"] > wide["inner"] + 0.5 or t["inner"] > 1]
    assert not too_wide, f"tables wider than a 1280 px window or scrolling inside: {too_wide}"
    assert wide["width"] <= wide["inner"], "the page scrolls sideways at 1280 px"
    narrow = seen["narrow"]
    assert narrow["width"] <= narrow["inner"], (
        f"the page scrolls sideways at 390 px ({narrow['width']} px wide)"
    )
    # on paper (US Letter less the page margins: 8.5 in - 3 cm = 703 CSS px) no table is cut at the right edge
    paper = seen["paper"]
    cut = [t["caption"] or "(table)" for t in paper["tables"] if t["right"] > paper["inner"] + 0.5]
    assert not cut and paper["width"] <= paper["inner"], f"tables wider than the printed page: {cut}"
    # every link resolves
    broken = []
    for href in set(wide["links"]):
        u = urlparse(href)
        if u.scheme in ("http", "https", "mailto"):
            continue  # the pages load nothing from the network; outside links are for readers
        assert u.scheme == "", f"unexpected link {href}"
        target = (path.parent / unquote(u.path)).resolve() if u.path else path
        if (
            not target.exists()
            or u.fragment
            and u.fragment not in (set(wide["ids"]) if target == path else _ids_of(target))
        ):
            broken.append(href)
    assert not broken, f"links that do not resolve: {sorted(broken)}"
    # the printable copy: every table header, running headers and page numbers; a report's technical appendix
    # prints as a document of its own (appendix.pdf), so the report's tables are in the two PDFs together
    if path.name in ("report.html", "appendix.html", "scorecard.html"):
        pdf = path.with_suffix(".pdf")
        assert pdf.exists(), f"no PDF beside {path.name}"
        pages = _pdf_pages(pdf)
        text = _norm("\n".join(pages))
        appendix = path.with_name("appendix.pdf")
        both = text
        if path.name == "report.html" and appendix.exists():
            both += _norm("\n".join(_pdf_pages(appendix)))
        missing = sorted({h for h in wide["headers"] if _norm(h) not in both})
        assert not missing, f"table headers missing from {pdf.name}: {missing}"
        n = len(pages)
        assert _norm(f"Page 1 of {n}") in text and _norm(f"Page {n} of {n}") in text
        assert _norm("opportunity-research") in _norm(pages[0])
        # a board packet: every report prints at most 15 pages (a district's technical appendix apart), every
        # scorecard at most 6
        heads = _headings(path)  # no heading or caption ends a printed page (away from what it heads)
        ends = [i + 1 for i, p in enumerate(pages) if _ends_with_heading(p, heads)]
        assert not ends, f"{pdf.name}: page(s) {ends} end with a heading or a table caption"
        limit = {"report.html": 15, "scorecard.html": 6}.get(path.name)
        assert limit is None or n <= limit, f"{pdf.name} prints {n} pages (at most {limit})"


#: Pipeline words a reader must not meet outside the Methods and the technical appendix: school ids, file names,
#: column and parameter names (snake_case, e.g. min_n, district ids), ISO timestamps and method jargon.
_PIPELINE_WORDS = re.compile(
    r"\b[A-Z]{1,5}SCH\d{2,4}\b|\b[\w-]+\.(?:csv|json|parquet|ipynb|py)\b|\b[a-z]+_[a-z0-9_]+\b|"
    r"\b\d{4}-\d\d-\d\dT\d\d:\d\d|\blinear[- ]programming\b|\bLP audit\b|\bMixedLM\b|"
    r"\bstatsmodels\b|\bREML\b"
)


@pytest.mark.parametrize("path", PAGES, ids=IDS, scope="module")
def test_page_meets_wcag_21_aa_and_speaks_to_readers(tab, path):
    """axe-core (injected by Playwright) finds no serious or critical WCAG 2.1 A/AA violation; every table's
    body rows are named by a row header; no pipeline word before the Methods."""
    seen = _observe(tab, path)
    found, text, unnamed, alts = seen["axe"], seen["wide"]["text"], seen["unnamed"], seen["alts"]
    if isinstance(found, Exception):
        raise found
    assert not found, [(v["id"], v["impact"], v["help"], v["nodes"]) for v in found]
    assert unnamed == 0, f"{unnamed} table(s) with body rows that no row header names"
    assert all(0 < n <= 300 for n in alts), f"alt texts must be 1-300 characters: {alts}"
    reader = (
        text.rsplit("Methods and limitations", 1)[0]
        if path.name == "report.html"
        else ""  # the technical appendix is for analysts, like the Methods
        if path.name == "appendix.html"
        else text
    )
    words = sorted(set(_PIPELINE_WORDS.findall(reader)))
    assert not words, f"pipeline words shown to readers: {words}"


def test_published_files_are_world_readable():
    """Folders 0755 and files 0644, so a web server or a colleague on a shared drive can open them."""
    assert PAGES
    bad = [
        p.relative_to(REPORTS).as_posix()
        for p in REPORTS.rglob("*")
        if not p.name.startswith(".")
        and not any(part.startswith(".") for part in p.relative_to(REPORTS).parts)
        and (p.stat().st_mode & 0o777) != (0o755 if p.is_dir() else 0o644)
    ]
    assert not bad, f"not world-readable (0644/0755): {bad[:10]}"


def test_a_district_without_a_climate_survey_or_a_second_year_says_what_it_needs():
    """demo_pinebrook has no climate survey and one school year: its sections name the data they need."""
    from html import unescape

    page = REPORTS / "demo_pinebrook" / "report.html"
    assert page.exists(), "run 'make reports' first"
    text = re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8"))))
    # in a reader's words: the data, not the file name (the data contract names the files)
    assert (
        "Belonging, consistency and coherence needs data this district did not provide: the climate survey file"
        in text
    )
    assert (
        "Catch-up rates needs data this district did not provide: the assessment results with spring results in "
        "at least two school years" in text
    )
    card = re.sub(
        r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", (page.parent / "scorecard.html").read_text()))
    )
    assert "Not available for this district" in card and "the climate survey file" in card
    assert ".csv" not in text.rsplit("Methods and limitations", 1)[0] and ".csv" not in card
