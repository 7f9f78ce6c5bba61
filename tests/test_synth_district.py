"""One large synthetic district (``synthesize --districts 1``) and the streaming writer behind it."""

from __future__ import annotations

import hashlib
import json

import pytest

from opportunity_research.cli import main as cli_main
from opportunity_research.intake.contract import TABLES
from opportunity_research.intake.validation import validate_district
from opportunity_research.synth import districts as synth
from opportunity_research.synth.writer import write_csv


def _hashes(folder):
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()
    }


def test_streamed_tables_equal_the_in_memory_tables(tmp_path):
    """Writing each table as it is generated (and assessments chunk by chunk) gives the very same bytes as
    generating every table in memory and writing it whole."""
    paths = synth.synthesize(tmp_path / "streamed", seed=5, students=900)
    whole = synth.generate_districts(5, 900)
    for folder in paths:
        d = whole[folder.name]
        ref = tmp_path / "whole" / folder.name
        ref.mkdir(parents=True)
        for name, df in d["tables"].items():
            if df is not None:
                write_csv(df[[c for c in TABLES[name].columns if c in df.columns]], ref / f"{name}.csv")
        (ref / "truth.json").write_text(
            json.dumps(d["truth"], indent=1, sort_keys=True, default=float) + "\n"
        )
        assert _hashes(folder) == _hashes(ref), folder.name


def test_one_district_of_n_students_passes_the_contract(tmp_path):
    path = synth.synthesize_district(tmp_path, students=3000, seed=11)
    assert path == tmp_path / "demo_metro"
    report = validate_district(path)
    assert report.ok, report.format(max_rows=20)
    truth = json.loads((path / "truth.json").read_text())
    assert truth["n_students"] == 3000
    assert len(report.tables["students"]) == 3000
    assert truth["n_schools"] == 7  # seven schools per 4,000 students (at least seven)
    # calibrated on itself to the study's headline figures
    ga = report.tables["assignments"][["content", "practice", "relevance"]].sum(axis=1) >= 4
    assert ga.mean() == pytest.approx(synth.TARGETS["grade_appropriate"], abs=0.04)
    assert sorted(truth["growth"]) == ["ela", "math"]


def test_one_district_is_deterministic_and_schools_scale(tmp_path):
    a = synth.synthesize_district(tmp_path / "a", students=1200, seed=2)
    b = synth.synthesize_district(tmp_path / "b", students=1200, seed=2)
    assert _hashes(a) == _hashes(b)
    big = synth.synthesize_district(tmp_path / "c", students=12_000, seed=2)
    assert json.loads((big / "truth.json").read_text())["n_schools"] == 21


def test_cli_districts_1(tmp_path, capsys):
    assert cli_main(["synthesize", "--districts", "1", "--students", "700", "--out", str(tmp_path)]) == 0
    assert "700 students" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == ["demo_metro"]
    with pytest.raises(ValueError, match="at least 60"):
        synth.synthesize_district(tmp_path, students=10)
    with pytest.raises(FileExistsError):
        synth.synthesize_district(tmp_path, students=700, overwrite=False)
