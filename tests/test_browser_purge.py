"""The batch's kept tab gives its renderer's memory back after each folder (report.browser._purge)."""

from __future__ import annotations

import pytest

from opportunity_research.report import browser

pytestmark = pytest.mark.usefixtures("worker_browser")  # the worker's one Chromium (tests/conftest.py)


def test_the_kept_tab_is_purged_after_a_folder_and_still_prints(tmp_path, monkeypatch):
    if browser.find_chromium() is None:
        pytest.skip("no Chromium")
    (tmp_path / "a.html").write_text("<!doctype html><title>a</title><p>Page a.</p>")
    sent = []
    tab = browser.shared_tab()
    new_session = type(tab.context).new_cdp_session

    def recording(context, page):
        session = new_session(context, page)
        send, detach = session.send, session.detach
        session.send = lambda method, params=None: (sent.append(method), send(method, params))[1]
        session.detach = lambda: (sent.append("detach"), detach())[1]
        return session

    monkeypatch.setattr(type(tab.context), "new_cdp_session", recording)
    for _ in range(2):  # the purged tab prints the next folder
        pdfs = browser.print_pdfs([tmp_path / "a.html"], tab=tab)
        assert pdfs[0].read_bytes()[:5] == b"%PDF-"
        assert browser.shared_tab() is tab and tab.url == "about:blank"
    purge = ["Memory.forciblyPurgeJavaScriptMemory", "Memory.simulatePressureNotification", "detach"]
    assert sent == purge * 2
