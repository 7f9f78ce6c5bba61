"""Reading a table's text columns: empty cells and whitespace found from the columns' offsets and end bytes
(``validation_read._edges``), exactly what pyarrow's length and trim passes find."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from opportunity_research.intake.validation import validate_district
from opportunity_research.intake.validation_read import _edges, _empty_to_null, _whitespace
from opportunity_research.intake.validation_report import ProblemCollector

try:
    from .districtkit import make_valid_district
except ImportError:  # pragma: no cover - tests/ not a package
    from districtkit import make_valid_district

#: Cells clean, empty, or with whitespace (ASCII, control, Unicode: no-break, em and ideographic spaces) at
#: either end, or non-ASCII text at an end that is not whitespace.
CELLS = [
    "a1",
    "M0001",
    "",
    " a",
    "a ",
    "\ta",
    "a\r",
    "\u00a0a",
    "a\u2003",
    "\u3000",
    "é",
    "aé",
    "日本",
    "a b",
    "~!",
]


@pytest.mark.parametrize("large", [False, True])
@pytest.mark.parametrize("seed", range(8))
def test_edges_find_what_the_pyarrow_passes_find(seed, large):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 30))
    cells = [CELLS[i] for i in rng.integers(0, 4 if seed % 2 else len(CELLS), n)]
    kind = pa.large_string() if large else pa.string()
    whole = pa.array(["x"] * 3 + cells, type=kind).slice(3)  # an offset into the buffers, as a chunk may have
    cut = int(rng.integers(0, n + 1))
    for arr in (whole, pa.chunked_array([whole.slice(0, cut), whole.slice(cut)], type=kind)):
        empty, space = _edges(arr)
        lengths = pc.binary_length(arr)
        assert empty == (n > 0 and pc.any(pc.equal(lengths, 0)).as_py())
        trimmed = pc.utf8_trim_whitespace(arr)
        needs_trim = pc.any(pc.not_equal(lengths, pc.binary_length(trimmed))).as_py() or False
        assert needs_trim <= space  # nothing to strip is never missed
        if not any(c and (not c[0].isascii() or not c[-1].isascii() or c.strip() != c) for c in cells):
            assert not space  # an all-printable-ASCII column is never trimmed
        out = ProblemCollector()
        assert _whitespace(arr, "t.csv", "c", None, out).to_pylist() == trimmed.to_pylist()
        assert bool(out.parts) == needs_trim
        expect = [None if c == "" else c for c in cells]
        assert _empty_to_null(arr).to_pylist() == expect


def test_a_null_cell_is_looked_at_by_the_pyarrow_passes():
    assert _edges(pa.array(["a", None])) == (True, True)
    assert _empty_to_null(pa.array(["a", None, ""])).to_pylist() == ["a", None, None]


def test_ids_equal_after_trimming_are_one_id(tmp_path):
    """' 1001' is stripped to '1001': a whitespace warning and a duplicate key, as before the end-byte check."""
    d = make_valid_district(tmp_path / "d")
    text = (d / "students.csv").read_text().splitlines(keepends=True)
    text[2] = " 1001" + text[2][text[2].index(",") :]
    (d / "students.csv").write_text("".join(text))
    for keep in ("all", "across"):
        report = validate_district(d, keep=keep)
        got = {
            (p.severity, p.line, p.rule.split(" (")[0]) for p in report.problems if p.file == "students.csv"
        }
        assert ("warning", 3, "leading/trailing whitespace stripped") in got
        assert ("error", 3, "duplicate key") in got


def test_header_only_and_empty_cells_in_text_columns(tmp_path):
    d = make_valid_district(tmp_path / "d")
    (d / "programs.csv").write_text((d / "programs.csv").read_text().splitlines()[0] + "\n")
    text = (d / "classrooms.csv").read_text().splitlines(keepends=True)
    cells = text[2].split(",")
    cells[2] = ""  # teacher_id empty
    text[2] = ",".join(cells)
    (d / "classrooms.csv").write_text("".join(text))
    report = validate_district(d)
    assert [p.rule for p in report.problems if p.file == "programs.csv"] == [
        "optional table has no data rows"
    ]
    assert len(report.tables["programs"]) == 0
    teachers = report.tables["classrooms"]["teacher_id"]
    assert teachers.isna().tolist() == [False, True, False, False]
