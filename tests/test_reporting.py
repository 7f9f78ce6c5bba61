"""Report outputs: display tables and figures, findings.json, the HTML export and the index page."""

from __future__ import annotations

import base64
import json
import math
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pandas as pd
import pytest

from opportunity_research.report import reporting
from opportunity_research.report.reporting import (
    SUPPRESSED_MARK,
    ReportError,
    export_html,
    external_resources,
    figure_output,
    read_findings,
    sanitize_notebook,
    table_output,
    write_findings,
    write_index,
    write_outputs,
)

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:|file:)?//""", re.IGNORECASE)


def gap_rows():
    return pd.DataFrame(
        {
            "group": ["low_income", "low_income", "disability"],
            "level": [1, 0, 1],
            "n": [412, 1388, 7],
            "estimate": [0.214, 0.281, np.nan],
            "difference": [-0.067, 0.067, np.nan],
            "suppressed": [False, False, True],
            "suppression_reason": ["", "", "n < 10"],
        }
    )


def test_table_output_formats_values_and_marks_every_number_of_suppressed_rows():
    t = table_output(
        gap_rows(), percent=["estimate", "difference"], digits=1, caption="Gaps", labels={"n": "students"}
    )
    html = t._repr_html_()
    assert "<caption>Gaps</caption>" in html and '<th scope="col">students</th>' in html
    assert "1,388" in html and "21.4%" in html and "-6.7%" in html
    # suppressed row: n, estimate, difference marked (3 cells); its labels group/level stay
    assert html.count('class="suppressed"') == 3
    assert "<td>disability</td>" in html and ">7<" not in html
    assert "suppressed" not in re.sub(
        r'class="suppressed"|(title|aria-label)="Hidden to protect small groups"', "", html
    )  # flag column hidden
    lines = repr(t).splitlines()
    assert lines[0] == "Gaps" and lines[-1] == f"{SUPPRESSED_MARK} suppressed"
    assert lines[-2].split() == ["disability", "1", SUPPRESSED_MARK, SUPPRESSED_MARK, SUPPRESSED_MARK]


def test_table_output_refuses_identifier_columns():
    with pytest.raises(ValueError, match="student_id"):
        table_output(pd.DataFrame({"student_id": ["S-1"], "n": [1]}))


def test_figure_output_needs_alt_text_and_carries_it():
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    with pytest.raises(ValueError, match="alt text"):
        figure_output(fig)
    out = figure_output(fig, alt="A line rising from 1 to 3.")
    assert out.png[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"Description" in out.png and b"A line rising from 1 to 3." in out.png
    data, meta = out._repr_mimebundle_()
    assert base64.b64decode(data["image/png"]) == out.png
    assert meta == {"image/png": {"alt": "A line rising from 1 to 3."}}
    assert not plt.fignum_exists(fig.number)  # closed: no second inline copy (other tests' figures aside)
    fig2, ax2 = plt.subplots()
    fig2.alt_text = "Empty axes."
    assert figure_output(ax2).alt == "Empty axes."  # an Axes stands for its figure
    import seaborn as sns

    grid = sns.FacetGrid(pd.DataFrame({"x": [1, 2], "g": ["a", "b"]}), col="g")
    assert figure_output(grid, alt="Two panels.").png[:4] == b"\x89PNG"
    assert not plt.fignum_exists(fig2.number) and not plt.fignum_exists(grid.figure.number)
    # same figure, same bytes (reports are reproducible)
    figs = []
    for _ in range(2):
        f, a = plt.subplots()
        a.bar(["a", "b"], [3, 4])
        figs.append(figure_output(f, alt="x").png)
    assert figs[0] == figs[1]


def test_write_findings_cleans_values(tmp_path):
    findings = {
        "n": np.int64(4000),
        "share": np.float64(0.26),
        "missing": np.nan,
        "inf": float("inf"),
        "na": pd.NA,
        "flag": np.bool_(True),
        "year": np.int32(2017),
        "table": pd.DataFrame({"group": ["a"], "estimate": [np.nan], "n": [12]}),
        "nested": {"ci": (0.1, 0.2)},
        3: "int key",
    }
    path = write_findings(findings, tmp_path / "out")
    data = json.loads(path.read_text())
    assert data == {
        "n": 4000,
        "share": 0.26,
        "missing": None,
        "inf": None,
        "na": None,
        "flag": True,
        "year": 2017,
        "table": [{"group": "a", "estimate": None, "n": 12}],
        "nested": {"ci": [0.1, 0.2]},
        "3": "int key",
    }
    assert list(data) == ["n", "share", "missing", "inf", "na", "flag", "year", "table", "nested", "3"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["findings.json"]  # no temporary files left


@pytest.mark.parametrize(
    "bad", [{"student_id": "S-1"}, {"x": {"teacher_ids": []}}, {"t": pd.DataFrame({"student_id": ["a"]})}]
)
def test_write_findings_refuses_identifiers(tmp_path, bad):
    with pytest.raises(ValueError, match="(student|teacher)"):
        write_findings(bad, tmp_path)
    assert not (tmp_path / "findings.json").exists()


def test_write_outputs_and_read_findings(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    written = write_outputs(
        tmp_path / "d1",
        findings={"headline": "h", "n_students": 10},
        tables={"gaps": gap_rows()},
        figures={"line": figure_output(fig, alt="A line.")},
    )
    assert [p.relative_to(tmp_path).as_posix() for p in written] == [
        "d1/findings.json",
        "d1/tables/gaps.csv",
        "d1/figures/line.png",
    ]
    back = pd.read_csv(tmp_path / "d1" / "tables" / "gaps.csv")
    assert back["estimate"].iloc[0] == 0.214 and math.isnan(back["estimate"].iloc[2])  # full precision
    assert read_findings(tmp_path) == {"d1": {"headline": "h", "n_students": 10}}
    with pytest.raises(ValueError, match="name"):
        write_outputs(tmp_path / "d2", findings={}, tables={"../x": gap_rows()})
    with pytest.raises(ValueError, match="identifier"):
        write_outputs(tmp_path / "d2", findings={}, tables={"t": pd.DataFrame({"student_id": ["a"]})})


PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


def executed_notebook(path):
    """An executed notebook as papermill would leave it (no kernel needed)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {
        "parameters": {"district_id": "demo", "output_dir": "reports/.tmp-demo-x1"},
        "input_path": "/abs/notebooks/district_report.ipynb",
        "output_path": "/abs/out.ipynb",
        "start_time": "2026-01-01T00:00:00",
        "end_time": "2026-01-01T00:00:09",
        "duration": 9.0,
    }
    out = nbformat.v4.new_output
    cells = [
        nbformat.v4.new_markdown_cell("# District report\n\nIntro paragraph."),
        nbformat.v4.new_code_cell('district_id = "x"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            '# Parameters\ndistrict_id = "demo"\noutput_dir = "reports/.tmp-demo-x1"\n',
            metadata={"tags": ["injected-parameters"]},
            outputs=[out("stream", name="stdout", text="injected output\n")],
        ),
        nbformat.v4.new_code_cell(
            "import secret_module_name",
            metadata={"tags": ["remove"]},
            outputs=[out("stream", name="stdout", text="removed cell output\n")],
        ),
        nbformat.v4.new_markdown_cell("## Access to resources\n\nText with a [link](https://tntp.org/)."),
        nbformat.v4.new_code_cell(
            "table_output(gaps)",
            outputs=[
                out(
                    "execute_result",
                    execution_count=5,
                    data={"text/html": table_output(gap_rows())._repr_html_(), "text/plain": "table"},
                )
            ],
        ),
        nbformat.v4.new_markdown_cell("### Who gets less"),
        nbformat.v4.new_code_cell(
            "figure_output(fig, alt=...)",
            outputs=[
                out(
                    "display_data",
                    data={"image/png": PNG, "text/plain": "fig"},
                    metadata={"image/png": {"alt": "Bars of access by group."}},
                ),
                out("display_data", data={"image/png": PNG, "text/plain": "fig"}),  # no alt
                out("stream", name="stderr", text="/abs/site/x.py:3: UserWarning: careful\n"),
            ],
        ),
        nbformat.v4.new_code_cell(
            "plotly_like()",
            outputs=[
                out(
                    "display_data",
                    data={
                        "text/html": '<script src="https://cdn.example.org/lib.js"></script>'
                        "<script>var x = 1;</script><p>chart</p>"
                    },
                )
            ],
        ),
        nbformat.v4.new_markdown_cell("## Access to resources"),  # duplicate heading gets its own anchor
        nbformat.v4.new_code_cell(
            "write_outputs(output_dir)",
            metadata={"tags": ["remove-output"]},
            outputs=[out("stream", name="stdout", text="wrote reports/.tmp-demo-x1\n")],
        ),
    ]
    for i, c in enumerate(cells):
        c.id = f"c{i}"
        if c.cell_type == "code":
            c.metadata["execution"] = {"iopub.status.busy": "2026-01-01T00:00:01Z"}
            c.metadata["papermill"] = {
                "status": "completed",
                "start_time": "t",
                "end_time": "t",
                "duration": 0.1,
            }
    nb.cells = cells
    nbformat.write(nb, path)
    return path


def test_export_html_is_self_contained_without_code(tmp_path):
    nb = executed_notebook(tmp_path / "report.ipynb")
    with pytest.warns(UserWarning, match="1 figure"):
        html_path = export_html(nb, tmp_path / "report.html", title="Opportunity report: demo")
    html = html_path.read_text()
    # no code, no injected parameters, no removed cells
    for source in (
        'district_id = "x"',
        "Parameters",
        "table_output(gaps)",
        "figure_output(",
        "plotly_like",
        "secret_module_name",
        "injected output",
        "removed cell output",
        "write_outputs",
        ".tmp-demo",
    ):
        assert source not in html, source
    assert "In&nbsp;[" not in html and "Out[" not in html
    # nothing loaded from outside; the plain link stays
    assert "<script" not in html and not EXTERNAL.findall(html.replace('href="https://tntp.org/"', ""))
    assert external_resources(html) == []
    assert 'href="https://tntp.org/"' in html and "<p>chart</p>" in html
    # title once, first notebook heading dropped, table of contents linking each section heading
    assert html.count("<h1>") == 1 and "<title>Opportunity report: demo</title>" in html
    assert "District report" not in html and "Intro paragraph." in html
    toc = re.search(r'<details class="toc".*?</details>', html, re.DOTALL).group(0)
    assert re.findall(r'href="#([^"]+)"', toc) == [
        "access-to-resources",
        "who-gets-less",
        "access-to-resources-2",
    ]
    assert (
        '<ol><li><a href="#access-to-resources">Access to resources</a><ol><li><a href="#who-gets-less">'
        'Who gets less</a></li></ol></li><li><a href="#access-to-resources-2">'
    ) in toc  # nested by level
    for anchor in ("access-to-resources", "who-gets-less", "access-to-resources-2"):
        assert f'id="{anchor}"' in html
    # figures: alt text carried; the one without gets its section's name
    assert 'alt="Bars of access by group."' in html and 'alt="Figure in section: Who gets less"' in html
    assert all("alt=" in tag for tag in re.findall(r"<img\b[^>]*>", html))
    assert f"data:image/png;base64,{PNG}" in html
    # suppression legend; print styles
    assert (
        'class="legend"' in html
        and f"{SUPPRESSED_MARK} Hidden to protect small groups: the cell describes fewer than 10" in html
    )
    assert "@media print" in html


def test_export_html_legend_only_when_something_is_suppressed(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "t",
            outputs=[
                nbformat.v4.new_output(
                    "execute_result",
                    execution_count=1,
                    data={"text/html": table_output(gap_rows().iloc[:2])._repr_html_()},
                )
            ],
        )
    ]
    nbformat.write(nb, tmp_path / "a.ipynb")
    html = export_html(tmp_path / "a.ipynb", tmp_path / "a.html", title="t").read_text()
    assert 'class="legend"' not in html and 'class="suppressed"' not in html


@pytest.mark.parametrize(
    "snippet",
    [
        '<img src="https://example.org/x.png" alt="x">',
        '<link rel="stylesheet" href="//fonts.example.org/css">',
        '<div style="background: url(https://example.org/bg.png)"></div>',
        "<style>@import 'https://example.org/x.css';</style>",
    ],
)
def test_export_html_refuses_external_resources(tmp_path, snippet):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "x", outputs=[nbformat.v4.new_output("display_data", data={"text/html": snippet})]
        )
    ]
    nbformat.write(nb, tmp_path / "a.ipynb")
    with pytest.raises(ReportError, match="external"):
        export_html(tmp_path / "a.ipynb", tmp_path / "a.html", title="t")
    assert not (tmp_path / "a.html").exists()


def test_sanitize_notebook(tmp_path):
    path = executed_notebook(tmp_path / "report.ipynb")
    nb = nbformat.read(path, as_version=4)
    nb.cells[7].outputs[2]["text"] = f"{tmp_path}/opportunity_research/gaps.py:3: UserWarning: careful\n"
    nb.cells[2].id = "random1"
    nbformat.write(nb, path)
    sanitize_notebook(
        path,
        root=tmp_path,
        replace={"reports/.tmp-demo-x1": "reports/demo"},
        input_path="notebooks/district_report.ipynb",
        output_path="reports/demo/report.ipynb",
    )
    nb = nbformat.read(path, as_version=4)
    pm = nb.metadata["papermill"]
    assert pm == {
        "parameters": {"district_id": "demo", "output_dir": "reports/demo"},
        "input_path": "notebooks/district_report.ipynb",
        "output_path": "reports/demo/report.ipynb",
    }
    assert (
        nb.cells[2].source.endswith('output_dir = "reports/demo"\n')
        and nb.cells[2].id == "injected-parameters"
    )
    assert nb.cells[10].outputs[0]["text"] == "wrote reports/demo\n"
    assert nb.cells[7].outputs[2]["text"] == "opportunity_research/gaps.py:3: UserWarning: careful\n"
    for c in nb.cells:
        assert "execution" not in c.metadata
        assert set(c.metadata.get("papermill", {})) <= {"status", "exception"}
    first = path.read_bytes()
    sanitize_notebook(path, root=tmp_path, replace={"reports/.tmp-demo-x1": "reports/demo"})
    assert path.read_bytes() == first  # idempotent


def test_write_index(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "findings.json").write_text(
        json.dumps({"headline": "26% of assignments were on grade level."})
    )
    manifest = {
        "generated_at": "2026-01-01T00:00:00+00:00",
        "districts": [
            {"district_id": "a", "status": "ok", "seconds": 12.34, "reason": "", "report": "a/report.html"},
            {
                "district_id": "b<x>",
                "status": "failed",
                "seconds": 0.5,
                "reason": "data validation failed: grade 13",
                "report": None,
            },
        ],
        "cross_district": {
            "district_id": "cross_district",
            "status": "ok",
            "report": "cross_district/report.html",
            "districts": ["a"],
        },
    }
    html = write_index(tmp_path, manifest).read_text()
    assert '<a href="a/report.html">report</a>' in html and "26% of assignments were on grade level." in html
    assert (
        "B&lt;x&gt;" in html
        and "(b&lt;" not in html
        and "data validation failed: grade 13" in html
        and "12.3" in html
    )
    assert '<a href="cross_district/report.html">Cross-district report</a> (1 district: A)' in html
    assert "does not cover" not in html
    manifest["cross_district"]["districts"] = ["a", "c"]
    assert "does not cover exactly the districts" in write_index(tmp_path, manifest).read_text()
    assert "1 of 2 district reports complete" in html
    assert external_resources(html) == [] and "<script" not in html


def test_index_without_cross_district(tmp_path):
    html = write_index(tmp_path, {"districts": [], "cross_district": None}).read_text()
    assert "No district has been run yet." in html and "Not run." in html


def test_module_docs_name_the_conventions():
    doc = reporting.__doc__
    for word in ("figure_output", "table_output", "write_outputs", "remove", "injected-parameters", "alt"):
        assert word in doc


def test_export_html_is_the_document_nbconvert_would_write(tmp_path, monkeypatch):
    """export_html skips nbconvert's BeautifulSoup re-serialization: the page parses to the same tree as with
    nbconvert's own HTMLExporter (images without alt text named by section, the appendix split at its cell)."""
    from bs4 import BeautifulSoup

    nb = executed_notebook(tmp_path / "report.ipynb")
    book = nbformat.read(nb, as_version=4)
    book.cells.append(nbformat.v4.new_markdown_cell("## Technical appendix\n\nFor analysts: the models."))
    nbformat.write(book, nb)
    pages = {}
    for name, exporter in (("ours", None), ("nbconvert", lambda cls: cls)):
        if exporter is not None:
            monkeypatch.setattr(reporting, "_exporter_class", exporter)
        folder = tmp_path / name
        folder.mkdir()
        with pytest.warns(UserWarning, match="1 figure"):
            export_html(nb, folder / "report.html", title="Opportunity report: demo")
        pages[name] = {
            p.name: str(BeautifulSoup(p.read_text(), "html.parser")) for p in sorted(folder.glob("*.html"))
        }
    assert list(pages["ours"]) == ["appendix.html", "report.html"]
    assert pages["ours"] == pages["nbconvert"]
    assert 'alt="Figure in section: Who gets less"' in pages["ours"]["report.html"]


def test_external_resources_beside_and_around_embedded_figures():
    """The search leaves out base64 payloads and tags without "//" (a third of a report's export): what a browser
    would fetch is still found, before, after and between embedded figures, and inside a data URI that is not
    base64 (an SVG may load a URL)."""
    from opportunity_research.report.reporting import external_resources

    png = base64.b64encode(bytes(range(256)) * 40 + b"\xff\xff\xff" * 3).decode()
    assert "//" in png  # the payload holds what the tag filter looks for
    page = (
        f'<img src="data:image/png;base64,{png}" alt="a"><script src="https://cdn.example/x.js"></script>'
        f"<img alt='b' src='data:image/png;base64,{png}'><link rel=stylesheet href=//cdn.example/y.css>"
        f'<td style="background:url(file:///etc/z.png)">1</td><img src="data:image/svg+xml,<svg><image '
        f'href=\'https://t.example/p.png\'/></svg>" alt="c"><style>@import "u.css";</style>'
        f'<a href="https://tntp.org/">a link is fine</a><img src="data:image/png;base64,{png}" alt="d">'
    )
    assert external_resources(page) == [
        "<script src=https://cdn.example/x.js>",
        "<link href=//cdn.example/y.css>",
        "<image href=https://t.example/p.png>",
        "url(file:///etc/z.png)",
        '@import "u.css"',
    ]
    assert external_resources(f'<img src="data:image/png;base64,{png}" alt="a"><p>text</p>') == []
