"""Relative links in the printed PDFs: rewritten in place (same length, every object where it was) for Chromium's
PDFs, with pypdf for any other PDF; either way no ``file:`` URI is left and web links are untouched."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter
from pypdf.annotations import Link
from pypdf.generic import ByteStringObject, NameObject

from opportunity_research.report import browser
from opportunity_research.report.browser import find_chromium, print_pdf, relative_links, shared_chromium

pytestmark = pytest.mark.usefixtures("worker_browser")  # the worker's one Chromium (tests/conftest.py)


def _uris(pdf: Path) -> list[str]:
    reader = PdfReader(str(pdf), strict=True)  # strict: a cross-reference table off by one byte fails here
    out = []
    for page in reader.pages:
        for ref in page.get("/Annots") or []:
            action = ref.get_object().get("/A")
            if action is not None and "/URI" in action.get_object():
                out.append(str(action.get_object()["/URI"]))
    return out


def _pdf_with_links(path: Path, urls: list[str], *, hex_strings: bool = False) -> Path:
    w = PdfWriter()
    w.add_blank_page(300, 300)
    for i, url in enumerate(urls):
        w.add_annotation(0, Link(rect=(10 * i, 0, 10 * i + 8, 8), url=url))
    if hex_strings:  # a URI written as a hexadecimal string: not the layout the in-place rewrite handles
        for ref in w.pages[0]["/Annots"]:
            action = ref.get_object()["/A"]
            action[NameObject("/URI")] = ByteStringObject(str(action["/URI"]).encode())
    with open(path, "wb") as f:
        w.write(f)
    return path


def test_local_links_are_rewritten_in_place(tmp_path, monkeypatch):
    monkeypatch.setattr(browser, "_relative_links_pypdf", lambda *a: pytest.fail("pypdf path taken"))
    (tmp_path / "sub").mkdir()
    urls = [
        (tmp_path / "scorecard.html").as_uri() + "#goals",
        (tmp_path / "a (1).html").as_uri(),  # parentheses: escaped in the PDF string
        (tmp_path.parent / "index.html").as_uri(),
        "https://tntp.org/",
    ]
    pdf = _pdf_with_links(tmp_path / "sub" / "page.pdf", urls)
    before = pdf.read_bytes()
    assert relative_links(pdf, base=tmp_path / "sub") == 3
    after = pdf.read_bytes()
    assert len(after) == len(before) and b"file:" not in after
    assert _uris(pdf) == ["../scorecard.html#goals", "../a (1).html", "../../index.html", "https://tntp.org/"]
    uri = re.compile(rb"/URI\s*\((?:[^()\\]|\\.)*\)\s*")  # only the URIs changed: the same bytes elsewhere
    assert uri.sub(b"", after) == uri.sub(b"", before)
    assert relative_links(pdf, base=tmp_path / "sub") == 0 and pdf.read_bytes() == after


def test_other_pdfs_are_rewritten_with_pypdf(tmp_path):
    pdf = _pdf_with_links(tmp_path / "page.pdf", [(tmp_path / "report.html").as_uri()], hex_strings=True)
    assert b"/URI <" in pdf.read_bytes()
    assert relative_links(pdf, base=tmp_path) == 1
    assert _uris(pdf) == ["report.html"] and b"file:" not in pdf.read_bytes()


def test_chromium_pdfs_take_the_in_place_path(tmp_path, monkeypatch):
    assert find_chromium(), "no Chromium: run 'python -m opportunity_research.report.browser --ensure'"
    monkeypatch.setattr(browser, "_relative_links_pypdf", lambda *a: pytest.fail("pypdf path taken"))
    (tmp_path / "page.html").write_text(
        "<!doctype html><html lang='en'><title>Page</title><p><a href='scorecard.html#goals'>Scorecard</a> "
        "<a href='../index.html'>All reports</a> <a href='https://tntp.org/'>TNTP</a></p></html>"
    )
    pdf = print_pdf(tmp_path / "page.html", tmp_path / "page.pdf", browser=shared_chromium())
    assert sorted(_uris(pdf)) == ["../index.html", "https://tntp.org/", "scorecard.html#goals"]
    assert b"file:" not in pdf.read_bytes()
