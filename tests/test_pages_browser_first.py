"""publish_pages in the shared browser (a batch's pages): the browser is asked for (started, when it is not running
yet) before the HTML pages are written, so that it comes up while they are written and ``before_print`` waits (the
batch's disclosure gate), instead of after them; the PDFs are printed after ``before_print``, as before."""

from __future__ import annotations

import nbformat
import pytest

from opportunity_research.report import browser, pages

# the worker's one Chromium (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("worker_browser")


def test_the_shared_browser_is_asked_for_before_the_pages_are_written(tmp_path, monkeypatch):
    if browser.find_chromium() is None:
        pytest.skip("no Chromium: nothing is printed")
    events = []

    def recorded(module, name):
        real = getattr(module, name)

        def call(*args, **kwargs):
            events.append(name)
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, call)

    recorded(browser, "shared_tab")
    recorded(pages, "export_html")
    recorded(browser, "print_pdfs")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Cross-district report")]
    nbformat.write(nb, tmp_path / "report.ipynb")
    written = pages.publish_pages(
        tmp_path,
        notebook=tmp_path / "report.ipynb",
        kind="cross",
        title="Cross-district report",
        shared_browser=True,
        before_print=lambda: events.append("before_print"),
    )
    assert events == ["shared_tab", "export_html", "before_print", "print_pdfs"]
    assert [p.name for p in written] == ["report.html", "report.pdf"]
    assert (tmp_path / "report.pdf").read_bytes()[:5] == b"%PDF-"
