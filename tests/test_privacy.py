"""The privacy screen: identifiers, absolute paths and unsuppressed small cells in report outputs."""

from __future__ import annotations

import base64
import json
import os

import nbformat
import pandas as pd
import pytest

from opportunity_research.disclosure.privacy import (
    ScreenHit,
    is_count_column,
    redact,
    screen_outputs,
    screen_text,
)

IDS = {"L0000123", "L0000124", "S-0123456789abcdef", "2019-00042"}


def kinds(findings: list[ScreenHit]) -> list[str]:
    return sorted(f.kind for f in findings)


@pytest.mark.parametrize(
    ("text", "n"),
    [
        ("student L0000123 moved", 1),
        ("students L0000123, L0000124.", 2),
        ("l0000123 in lower case", 1),  # ids compare case-insensitively
        ("pair L0000123-L0000124", 2),  # compound token holding two ids
        ("record x-2019-00042 found", 1),  # an id with a separator inside a longer token
        ("L00001234 is another student", 0),  # a longer token is not the id
        ("L000012 is a prefix", 0),
        ("grade 3 had 123 students", 0),
    ],
)
def test_identifiers_are_matched_as_whole_tokens(text, n):
    found = screen_text(text, student_ids=IDS - {"S-0123456789abcdef"})
    assert sum(f.kind == "student_id" for f in found) == (1 if n else 0)
    if n:
        assert f"{n} identifier(s)" in found[0].detail


def test_any_pseudonym_is_found_even_if_unknown_and_the_finding_never_holds_it():
    text = "row S-00ff00ff00ff00ff and T-0123456789ABCDEF; not S-0123 nor XS-00ff00ff00ff00ff00"
    found = screen_text(text)
    assert kinds(found) == ["pseudonym"]
    assert found[0].detail.startswith("2 ")
    assert "00ff" not in str(found[0]) and "0123456789" not in str(found[0])


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("saved to /home/ana/reports/x.html", True),
        ("see /Users/bo/Desktop", True),
        ("C:\\Users\\ana\\export.csv", True),
        ("open file:///srv/data", True),
        ("cache in /tmp/abc", True),
        ("written to reports/demo_lakeside/report.html", False),
        ("https://example.org/home/page", False),
        ("ratio 1/2 and 3/4", False),
    ],
)
def test_absolute_paths(text, leak):
    assert (kinds(screen_text(text)) == ["absolute_path"]) is leak


def test_the_project_root_and_python_installation_count_as_paths(tmp_path):
    import sys

    root = tmp_path / "project"
    assert kinds(screen_text(f"working in {root}", root=root)) == ["absolute_path"]
    assert kinds(screen_text(f"python at {sys.prefix}/bin/python")) == ["absolute_path"]


def test_short_ids_are_skipped_with_a_warning(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("grade 12 and id 12345\n")
    with pytest.warns(UserWarning, match="1 identifier"):
        found = screen_outputs([f], student_ids={"12", "12345"})
    assert [(x.kind, x.location) for x in found] == [("student_id", "line 1")]


def test_count_columns():
    assert [
        is_count_column(c) for c in ("n", "reference_n", "n_students", "n_ref", "mean", "min_n_x", "ratio")
    ] == [True, True, True, True, False, False, False]


def test_small_cells_in_csv_respect_the_suppressed_flag(tmp_path):
    t = pd.DataFrame(
        {
            "group": list("abcde"),
            "n": [40, 3, 0, 9, 10],
            "reference_n": [100, 100, 100, 100, 4],
            "suppressed": [False, True, False, False, False],
        }
    )
    t.to_csv(tmp_path / "gaps.csv", index=False)
    found = screen_outputs([tmp_path / "gaps.csv"], min_n=10)
    assert [(f.kind, f.location) for f in found] == [
        ("small_cell", "column n, row(s) 4"),  # n=3 suppressed, n=0 is no cell
        ("small_cell", "column reference_n, row(s) 5"),
    ]
    # without a suppressed column every row counts
    t.drop(columns="suppressed").to_csv(tmp_path / "gaps.csv", index=False)
    found = screen_outputs([tmp_path / "gaps.csv"], min_n=10)
    assert found[0].location == "column n, row(s) 2, 4"


def test_small_cells_in_findings_json(tmp_path):
    findings = {
        "n_students": 4000,
        "overall": {"n": 7, "estimate": 0.2},  # unsuppressed record with n = 7
        "gaps": [{"group": "a", "n": 5, "suppressed": True}, {"group": "b", "n": 8, "suppressed": False}],
        "table": {
            "group": ["x", "y"],
            "n_students": [3, 50],
            "suppressed": [False, False],
        },  # column-oriented
    }
    (tmp_path / "findings.json").write_text(json.dumps(findings))
    found = screen_outputs([tmp_path / "findings.json"], min_n=10)
    assert sorted(f.location for f in found) == [
        "gaps[1].n",
        "overall.n",
        "table column n_students, row(s) 1",
    ]
    assert screen_outputs([tmp_path / "findings.json"], min_n=5) == [
        ScreenHit(
            "findings.json",
            "small_cell",
            "table column n_students, row(s) 1",
            "1 unsuppressed count(s) below 5",
        )
    ]


def _leaky_notebook(path, root):
    png = base64.b64encode(b"\x89PNG" + b"L0000123" * 20).decode()  # an id inside image bytes is not text
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {
        "parameters": {"district_id": "demo", "output_dir": f"{root}/reports/demo", "focus": ["L0000123"]}
    }  # an injected parameter naming a student
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Report"),
        nbformat.v4.new_code_cell(
            "print(x)",
            outputs=[nbformat.v4.new_output("stream", name="stdout", text="first student: L0000124\n")],
        ),
        nbformat.v4.new_code_cell(
            "fig",
            outputs=[
                nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"})
            ],
        ),
    ]
    nbformat.write(nb, path)


def test_screen_a_leaky_notebook_and_clean_files(tmp_path):
    root = tmp_path / "project"
    rep = root / "reports" / "demo"
    (rep / "tables").mkdir(parents=True)
    _leaky_notebook(rep / "report.ipynb", root)
    (rep / "report.html").write_text(
        '<p>n = 40</p>\n<img alt="x" src="data:image/png;base64,TDAwMDAxMjM=">\n<p>S-0123456789abcdef</p>\n'
    )
    (rep / "tables" / "ok.csv").write_text("group,n,suppressed\na,40,False\nb,4,True\n")
    (rep / "figures").mkdir()
    (rep / "figures" / "f.png").write_bytes(b"\x89PNG L0000123")  # figures are not read
    found = screen_outputs([rep], student_ids=IDS, root=root, base=rep)
    assert [(f.file, f.kind, f.location) for f in found] == [
        ("report.html", "student_id", "line 3"),  # a known pseudonym is both
        ("report.html", "pseudonym", "line 3"),
        ("report.ipynb", "student_id", "cells[1].outputs[0].text"),
        ("report.ipynb", "student_id", "metadata.papermill.parameters.focus"),
        ("report.ipynb", "absolute_path", "metadata.papermill.parameters.output_dir"),
    ]
    assert not any("L0000124" in str(f) or str(root) in str(f) for f in found)


def test_redact():
    text = (
        f"row 3: duplicate student_id L0000123 (also S-0123456789abcdef) in {os.sep}home{os.sep}ana{os.sep}"
        "x/students.csv"
    )
    assert redact(text, ids=IDS) == "row 3: duplicate student_id [id] (also [id]) in [path]/students.csv"
    assert redact("see /proj/data/raw/demo and /proj", root="/proj") == "see data/raw/demo and ."


def test_small_cells_in_html_tables(tmp_path):
    from opportunity_research.report.reporting import table_output

    t = pd.DataFrame(
        {
            "group": ["a", "b", "c"],
            "n": [40, 4, 1200],
            "share": [0.26, 0.5, 0.03],
            "suppressed": [False, False, False],
        }
    )
    marked = t.assign(suppressed=[False, True, False])
    html = "\n".join(
        [
            table_output(t, percent=["share"])._repr_html_(),  # table 1: n = 4 shown
            table_output(marked)._repr_html_(),  # table 2: the row is marked suppressed
            table_output(t, labels={"n": "Students"})._repr_html_(),  # table 3: relabelled count column
            t.drop(columns="suppressed").rename(columns={"n": "n_students"}).to_html(),  # table 4: pandas
            t.to_html(),  # table 5: pandas with a suppressed column saying False
            marked.to_html(),  # table 6: pandas, suppressed column True for the small row
            pd.DataFrame({"grade": [3, 4], "mean": [2.5, 7.0]}).to_html(),  # table 7: no count column
        ]
    )
    (tmp_path / "report.html").write_text(html)
    found = screen_outputs([tmp_path / "report.html"], min_n=10)
    assert [f.location for f in found] == [
        "table 1, row(s) 2",
        "table 3, row(s) 2",
        "table 4, row(s) 2",
        "table 5, row(s) 2",
    ]
    assert all(f.kind == "small_cell" for f in found)


def test_a_long_page_sharing_parts_with_ids_is_screened_exactly(tmp_path):
    """Lines are screened line by line only when the page holds something: a page full of text that shares parts
    with the identifiers (their numbers, their letters) but holds none is clean, and a leak is named by its line."""
    lines = [
        f"<p>{2019 - g % 3} 00042 students; L0000123x, S-{g:04d}; it's {g} of 123</p>" for g in range(500)
    ]
    page = tmp_path / "report.html"
    page.write_text("\n".join(lines))
    assert screen_outputs([page], student_ids=IDS, base=tmp_path) == []
    lines[250] = "<td>record x-2019-00042-y</td>"  # an id inside a compound token
    lines[300] = "<td>l0000124</td>"  # in lower case
    lines[301] = "<td>/home/ana/x</td>"
    page.write_text("\n".join(lines))
    found = screen_outputs([page], student_ids=IDS, base=tmp_path)
    assert [(f.kind, f.location) for f in found] == [
        ("student_id", "line 251"),
        ("student_id", "line 301"),
        ("absolute_path", "line 302"),
    ]


def test_paths_are_found_where_the_patterns_match_whatever_text_surrounds_them():
    """The path search skips a text holding none of the strings every match contains (issue 21: most of the screen's
    time); random texts built from the patterns' pieces get the spans of the patterns' own full scan."""
    import random
    import re

    from opportunity_research.disclosure import privacy

    known = ["/srv/project", "/opt/venv"]
    m = privacy._Matcher([], known)
    pattern = re.compile(
        "(?<![\\w.-])(?:" + "|".join(map(re.escape, sorted(known, key=len)[::-1])) + ")(?![\\w-])"
    )

    def full_scan(text):
        spans = [x.span() for x in pattern.finditer(text)]
        spans += [
            x.span()
            for x in privacy._GENERIC_PATH.finditer(text)
            if all(x.end() <= a or x.start() >= b for a, b in spans)
        ]
        return sorted(spans)

    pieces = (
        '/ home Users tmp media srv project opt/venv C: d: \\ file: // a . - _ ~ <p> " x1 : /tmp/ file://'
    )
    pieces = [*pieces.split(), " ", "/srv/project"]
    rng = random.Random(21)
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 12))) for _ in range(4000)]
    found = 0
    for text in texts:
        want = full_scan(text)
        assert m.path_spans(text) == want, text
        found += bool(want)
    assert 200 < found < len(texts) - 200  # both kinds of text were tried
