"""A synthetic state: many districts of realistic, skewed sizes, each with planted truths.

``opportunity-research synthesize --districts N`` (or :func:`synthesize_state`) writes ``N`` districts
``state_0001`` ... into ``data/raw/`` for trying the batch at the scale of a state education agency
(Texas has about 1,200 districts). District enrolments follow a log-normal distribution: many small
districts, a few large ones (median 900 students; with ``N = 200`` the largest is typically 15-25
times the median), clipped to ``[min_students, max_students]``. Each district draws its own make-up
(share of students of colour and its mix, poverty, school segregation, a district-wide shift in access
to the four resources, whether it ran the climate survey, how many prior years of scores it has).

The districts themselves come from the demo generator in :mod:`opportunity_research.synth.districts`, so every
district passes the data contract and has a ``truth.json`` with the values planted in it (access
rates by group, the growth effects of each resource, ...). Districts are generated in small groups whose
resource intercepts are calibrated together to the study's headline shares, so districts differ around
those shares by their own shift; a district of more than 6,000 students is generated on its own (its
access then matches the headline shares on average). ``data/raw/state.json`` lists every district with
its size and the parameters of the size distribution.

Examples
--------
>>> import tempfile, json, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> paths = synthesize_state(out, districts=3, seed=7, median_students=200, min_students=120)
>>> [p.name for p in paths]
['state_0001', 'state_0002', 'state_0003']
>>> state = json.loads((out / "state.json").read_text())
>>> sum(d["n_students"] for d in state["districts"]) == state["n_students"]
True
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .. import config
from ..intake.contract import TABLES
from .districts import generate_districts
from .specs import DistrictSpec
from .writer import write_csv

__all__ = ["district_sizes", "state_specs", "synthesize_state"]

#: Students per generation group: below 6,000 the demo generator uses one school per spec'd school.
_GROUP_STUDENTS = 5_999
#: Share of each group of students of colour in the demo's POC mix (RACE_ETHNICITY order, minus white).
_BASE_MIX = np.array([0.45, 0.02, 0.10, 0.33, 0.01, 0.09])


def district_sizes(
    n: int,
    *,
    seed: int = config.DEMO_SEED,
    median_students: int = 900,
    sigma: float = 1.1,
    min_students: int = 400,
    max_students: int = 60_000,
) -> np.ndarray:
    """Enrolments of ``n`` districts: log-normal (``median_students``, ``sigma``), clipped, as integers.

    Examples
    --------
    >>> sizes = district_sizes(1000, seed=1)
    >>> int(np.median(sizes)) in range(800, 1000), bool(sizes.max() > 10 * np.median(sizes))
    (True, True)
    """
    if n < 1:
        raise ValueError(f"districts must be at least 1, got {n}")
    if not 60 <= min_students <= median_students <= max_students:
        raise ValueError(
            f"need 60 <= min_students ({min_students}) <= median_students ({median_students}) <= "
            f"max_students ({max_students})"
        )
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    sizes = np.exp(np.log(median_students) + sigma * rng.standard_normal(n))
    return np.clip(np.round(sizes), min_students, max_students).astype(np.int64)


def state_specs(sizes: np.ndarray, *, seed: int = config.DEMO_SEED) -> list[DistrictSpec]:
    """One :class:`~opportunity_research.synth.specs.DistrictSpec` per district size (``share`` = its size).

    Examples
    --------
    >>> specs = state_specs(np.array([450, 5200]), seed=1)
    >>> [(s.district_id, s.share, s.schools) for s in specs]
    [('state_0001', 450.0, (1, 1, 0)), ('state_0002', 5200.0, (10, 5, 4))]
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    n = len(sizes)
    poc = rng.beta(2.0, 2.2, n).clip(0.05, 0.95)
    mixes = rng.dirichlet(_BASE_MIX * 40, n)
    low_income = rng.normal(0, 0.5, n) + 1.5 * (poc - 0.5)
    resource_shift = rng.normal(0, 0.15, n)
    climate = rng.random(n) < 0.85
    prior_years = rng.choice([0, 2, 4], size=n, p=[0.1, 0.2, 0.7])
    specs = []
    for i, size in enumerate(sizes):
        size = int(size)
        schools = (max(1, round(size / 500)), max(1, round(size / 1100)), round(size / 1400))
        specs.append(
            DistrictSpec(
                f"state_{i + 1:04d}",
                chr(65 + i % 26),
                float(size),
                schools,
                float(poc[i]),
                tuple(float(x) for x in mixes[i]),
                float(low_income[i]),
                float(0.2 + 0.6 * rng.random() * min(1.0, sum(schools) / 6)),
                float(resource_shift[i]),
                climate=bool(climate[i]),
                prior_years=int(prior_years[i]),
            )
        )
    return specs


def _groups(specs: list[DistrictSpec]) -> list[list[DistrictSpec]]:
    """Consecutive districts in groups of at most ~6,000 students; a larger district alone."""
    groups, current, total = [], [], 0.0
    for s in specs:
        if s.share > _GROUP_STUDENTS:
            groups.append([s])
            continue
        if current and total + s.share > _GROUP_STUDENTS:
            groups.append(current)
            current, total = [], 0.0
        current.append(s)
        total += s.share
    return groups + ([current] if current else [])


def _generate_group(seed: int, group: list[DistrictSpec]) -> dict[str, dict]:
    total = int(sum(s.share for s in group))
    scale = max(1, round(total / 4000))  # synth multiplies the schools of every spec by this
    specs = [
        dataclasses.replace(
            s,
            share=s.share / total,
            schools=tuple(max(1 if k < 2 else 0, round(c / scale)) for k, c in enumerate(s.schools)),
        )
        for s in group
    ]
    return generate_districts(seed, total, specs=tuple(specs))


def synthesize_state(
    out_dir: str | os.PathLike | None = None,
    *,
    districts: int,
    seed: int = config.DEMO_SEED,
    median_students: int = 900,
    sigma: float = 1.1,
    min_students: int = 400,
    max_students: int = 60_000,
    overwrite: bool = True,
) -> list[Path]:
    """Write a synthetic state of ``districts`` districts (CSV files and ``truth.json`` each); return their folders.

    Parameters
    ----------
    out_dir
        Folder to write into (default ``data/raw``); districts go to ``out_dir/state_NNNN/``, each written to a
        temporary folder and renamed into place when complete, and ``out_dir/state.json`` lists them.
    districts
        Number of districts.
    seed
        Random seed; the same seed and sizes give byte-identical files.
    median_students, sigma, min_students, max_students
        The log-normal size distribution (see :func:`district_sizes`). The default floor of 400 students keeps
        every district large enough for every model of the district report.
    overwrite
        Replace existing ``state_*`` folders (no other folder is ever replaced).

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp())
    >>> [p.name for p in synthesize_state(out, districts=2, seed=3, median_students=150, min_students=120)]
    ['state_0001', 'state_0002']
    >>> json.loads((out / "state_0001" / "truth.json").read_text())["n_students"] >= 120
    True
    """
    out = Path(out_dir) if out_dir is not None else config.raw_dir()
    out.mkdir(parents=True, exist_ok=True)
    sizes = district_sizes(
        districts,
        seed=seed,
        median_students=median_students,
        sigma=sigma,
        min_students=min_students,
        max_students=max_students,
    )
    specs = state_specs(sizes, seed=seed)
    if not overwrite:
        clash = [s.district_id for s in specs if (out / s.district_id).exists()]
        if clash:
            raise FileExistsError(f"{out / clash[0]} exists; pass overwrite=True to replace it")
    seeds = np.random.SeedSequence([seed, 3]).generate_state(len(specs))
    paths, listed = [], []
    for k, group in enumerate(_groups(specs)):
        generated = _generate_group(int(seeds[k]), group)  # one group in memory at a time
        for district_id, d in generated.items():
            final = out / district_id
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{district_id}-", dir=out))
            for name, df in d["tables"].items():
                if df is not None:
                    write_csv(df[[c for c in TABLES[name].columns if c in df.columns]], tmp / f"{name}.csv")
            (tmp / "truth.json").write_text(
                json.dumps(d["truth"], indent=1, sort_keys=True, default=float) + "\n"
            )
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            paths.append(final)
            listed.append({"district_id": district_id, "n_students": int(d["truth"]["n_students"])})
    state = {
        "seed": seed,
        "n_districts": districts,
        "n_students": sum(e["n_students"] for e in listed),
        "size_distribution": {
            "kind": "lognormal",
            "median_students": median_students,
            "sigma": sigma,
            "min_students": min_students,
            "max_students": max_students,
        },
        "districts": sorted(listed, key=lambda e: e["district_id"]),
    }
    tmp_state = out / ".state.json.tmp"
    tmp_state.write_text(json.dumps(state, indent=1) + "\n")
    os.replace(tmp_state, out / "state.json")
    return sorted(paths)
