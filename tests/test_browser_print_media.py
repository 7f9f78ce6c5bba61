"""A page is printed as loaded in print media: never laid out for the screen first (report.browser.print_pdf)."""

from __future__ import annotations

import pytest
from pypdf import PdfReader

from opportunity_research.report import browser

pytestmark = pytest.mark.usefixtures("worker_browser")  # the worker's one Chromium (tests/conftest.py)

#: A page that writes the media it is parsed in: what the first layout of the page is for.
_PAGE = (
    "<!doctype html><html lang='en'><title>media</title><p id='m'>unknown</p>"
    "<script>document.getElementById('m').textContent = "
    "matchMedia('print').matches ? 'parsed for print' : 'parsed for screen';</script></html>"
)


def _text(pdf) -> str:
    return " ".join(page.extract_text() for page in PdfReader(str(pdf)).pages)


def test_a_page_is_loaded_in_print_media(tmp_path):
    if browser.find_chromium() is None:
        pytest.skip("no Chromium")
    (tmp_path / "a.html").write_text(_PAGE)
    tab = browser.shared_tab()
    tab.emulate_media(media="screen")  # e.g. left so by a browser test
    pdf = browser.print_pdf(tmp_path / "a.html", tmp_path / "a.pdf", tab=tab)
    assert "parsed for print" in _text(pdf)
    # and in a tab of its own
    with browser.chromium() as b:
        pdf = browser.print_pdfs([tmp_path / "a.html"], browser=b)[0]
    assert "parsed for print" in _text(pdf)
