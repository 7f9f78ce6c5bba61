"""Shared demo data for tests: the five synthetic districts, synthesized and processed once per process."""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

from opportunity_research import config
from opportunity_research.intake.dataset import load_district, process_district
from opportunity_research.synth.districts import synthesize

TEST_KEY = "test-key-0123456"


@functools.cache
def demo_root() -> Path:
    """A temporary folder with raw/<district>/ (CSV + truth.json) and processed/<district>/ (parquet)."""
    root = Path(tempfile.mkdtemp(prefix="opportunity-demo-"))
    for raw in synthesize(root / "raw", seed=config.DEMO_SEED):
        process_district(raw, processed_root=root / "processed", key=TEST_KEY)
    return root


def district(district_id: str):
    return load_district(district_id, processed_root=demo_root() / "processed")


def truth(district_id: str) -> dict:
    return json.loads((demo_root() / "raw" / district_id / "truth.json").read_text())
