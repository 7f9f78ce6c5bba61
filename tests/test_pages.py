"""Publishing a report folder: HTML with navigation and downloads, PDFs beside it, world-readable files."""

from __future__ import annotations

import os
import warnings

import pandas as pd
import pytest

from opportunity_research.report.browser import BrowserMissing, find_chromium
from opportunity_research.report.pages import make_world_readable, page_links, publish_pages

from .test_reporting import executed_notebook

pytestmark = pytest.mark.usefixtures("worker_browser")  # the worker's one Chromium (tests/conftest.py)


def folder_with_pages(tmp_path):
    folder = tmp_path / ".tmp-demo_x-abc"
    folder.mkdir(mode=0o700)
    nb = executed_notebook(folder / "report.ipynb")
    (folder / "tables").mkdir(mode=0o700)
    pd.DataFrame({"n": [12], "suppressed": [False]}).to_csv(folder / "tables" / "gaps.csv", index=False)
    os.chmod(folder / "tables" / "gaps.csv", 0o600)
    (folder / "scorecard.html").write_text(
        '<!DOCTYPE html><html><body><nav><a href="report.html">Report</a> '
        '<a href="scorecard.pdf">Scorecard PDF</a></nav><p>card</p></body></html>'
    )
    return folder, nb


def test_page_links():
    links = dict(page_links("district", here="scorecard.html"))
    assert links == {
        "All reports": "../index.html",
        "Board summary": "summary.html",
        "Report": "report.html",
        "Report PDF": "report.pdf",
        "Scorecard": None,
        "Scorecard PDF": "scorecard.pdf",
        "Cross-district report": "../cross_district/report.html",
    }
    cross = page_links("cross", here="report.html", districts=["demo_lakeside"], pdf=False)
    assert ("Lakeside", "../demo_lakeside/report.html") in cross and ("All reports", "../index.html") in cross


def test_publish_without_a_browser_drops_the_pdf_links(tmp_path, monkeypatch):
    monkeypatch.setenv("OPPORTUNITY_RESEARCH_CHROMIUM", str(tmp_path / "no-such-chromium"))
    folder, nb = folder_with_pages(tmp_path)
    with pytest.raises(BrowserMissing):
        publish_pages(folder, notebook=nb, kind="district", title="t", require_pdf=True)
    with pytest.warns(UserWarning, match="without PDF copies"):
        publish_pages(folder, notebook=nb, kind="district", title="Opportunity report: x")
    html = (folder / "report.html").read_text()
    assert (
        '<a href="scorecard.html">Scorecard</a>' in html and '<a href="../index.html">All reports</a>' in html
    )
    assert '<a href="tables/gaps.csv">Gaps (CSV)</a>' in html
    assert "report.pdf" not in html and not (folder / "report.pdf").exists()
    assert (
        "scorecard.pdf" not in (folder / "scorecard.html").read_text()
    )  # no link to a file that is not there
    assert (folder.stat().st_mode & 0o777) == 0o755
    assert all((p.stat().st_mode & 0o777) == (0o755 if p.is_dir() else 0o644) for p in folder.rglob("*"))


def test_publish_prints_pdfs_with_page_numbers(tmp_path):
    assert find_chromium(), "no Chromium: run 'python -m opportunity_research.report.browser --ensure'"
    from pypdf import PdfReader

    folder, nb = folder_with_pages(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        written = publish_pages(folder, notebook=nb, kind="district", title="Opportunity report: x")
    assert [p.name for p in written] == ["report.html", "report.pdf", "scorecard.pdf"]
    text = " ".join(p.extract_text() for p in PdfReader(folder / "report.pdf").pages)
    assert "Page 1 of" in text and "Opportunity report: x" in text and "Access to resources" in text
    html = (folder / "report.html").read_text()
    assert '<a href="report.pdf">Report PDF</a>' in html and '<a href="scorecard.pdf">' in html
    assert all((p.stat().st_mode & 0o777) == (0o755 if p.is_dir() else 0o644) for p in folder.rglob("*"))


def test_make_world_readable(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True, mode=0o700)
    (tmp_path / "a" / "b" / "f.txt").write_text("x")
    os.chmod(tmp_path / "a" / "b" / "f.txt", 0o600)
    make_world_readable(tmp_path / "a")
    assert oct((tmp_path / "a" / "b").stat().st_mode & 0o777) == "0o755"
    assert oct((tmp_path / "a" / "b" / "f.txt").stat().st_mode & 0o777) == "0o644"


def test_the_technical_appendix_prints_as_a_document_of_its_own(tmp_path):
    """A report's technical appendix stays in report.html (collapsed), is left out of report.pdf with a line
    saying where it is, and is published as appendix.html and appendix.pdf, linked relatively."""
    import nbformat
    from pypdf import PdfReader

    assert find_chromium(), "no Chromium: run 'python -m opportunity_research.report.browser --ensure'"
    folder, nb = folder_with_pages(tmp_path)
    book = nbformat.read(nb, as_version=4)
    book.cells += [
        nbformat.v4.new_markdown_cell("## Technical appendix\n\nFor analysts: the model samples."),
        nbformat.v4.new_markdown_cell(
            "### Growth-model diagnostics\n\nEvery model converged (appendix text)."
        ),
    ]
    nbformat.write(book, nb)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # printed in this worker's kept tab, as the batch prints (a browser started for the folder is
        # test_publish_prints_pdfs_with_page_numbers'; the pages are the same either way)
        written = publish_pages(
            folder, notebook=nb, kind="district", title="Opportunity report: x", shared_browser=True
        )
    names = [p.name for p in written]
    assert names[:2] == ["report.html", "appendix.html"] and {"report.pdf", "appendix.pdf"} <= set(names)
    html = (folder / "report.html").read_text()
    assert '<details class="appendix">' in html and "Every model converged" in html  # on screen, collapsed
    assert '<a href="appendix.pdf">Technical appendix (PDF)</a>' in html and 'href="appendix.html"' in html
    report = " ".join(p.extract_text() for p in PdfReader(folder / "report.pdf").pages)
    appendix = " ".join(p.extract_text() for p in PdfReader(folder / "appendix.pdf").pages)
    assert "Every model converged" not in report and "printed separately" in report
    assert "Every model converged" in appendix and "Technical appendix" in appendix
    page = (folder / "appendix.html").read_text()
    assert '<a href="report.html">Report</a>' in page and "<details" not in page
    for pdf in ("report.pdf", "appendix.pdf"):  # links relative to the published folder
        for p in PdfReader(folder / pdf).pages:
            for ref in p.get("/Annots") or []:
                action = ref.get_object().get("/A")
                uri = str(action.get_object().get("/URI", "")) if action is not None else ""
                assert not uri.startswith("file:") and ".tmp-" not in uri, (pdf, uri)
    assert all((p.stat().st_mode & 0o777) == (0o755 if p.is_dir() else 0o644) for p in folder.rglob("*"))


def test_the_batch_prints_folder_after_folder_in_one_tab(tmp_path):
    """With ``shared_browser`` (the batch), every folder is printed in this thread's one kept tab
    (:func:`~opportunity_research.report.browser.shared_tab`: a new tab per folder starts a renderer process, about
    0.9 CPU-s a demo district), which is left on about:blank between folders; a tab whose printing failed is
    closed, and the next folder gets a new one."""
    from opportunity_research.report.browser import print_pdfs, shared_tab

    assert find_chromium(), "no Chromium: run 'python -m opportunity_research.report.browser --ensure'"
    tab = shared_tab()
    loaded = []
    tab.on("load", lambda page: loaded.append(page.url))
    folders = []
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        folder, nb = folder_with_pages(tmp_path / name)
        written = publish_pages(folder, notebook=nb, kind="district", title="t", shared_browser=True)
        assert [p.name for p in written] == ["report.html", "report.pdf", "scorecard.pdf"]
        assert (folder / "report.pdf").read_bytes()[:5] == b"%PDF-"
        assert shared_tab() is tab and tab.url == "about:blank"
        folders.append(folder)
    printed = [u for u in loaded if u != "about:blank"]
    assert printed == [(f / n).resolve().as_uri() for f in folders for n in ("report.html", "scorecard.html")]
    with pytest.raises(Exception, match="ERR_FILE_NOT_FOUND"):
        print_pdfs([tmp_path / "missing.html"], tab=tab)
    assert tab.is_closed() and shared_tab() is not tab
