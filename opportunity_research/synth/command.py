"""The ``opportunity-research synthesize`` subcommand: the five demo districts, one large district
(:func:`~opportunity_research.synth.districts.synthesize_district`) or a synthetic state
(:func:`~opportunity_research.synth.statewide.synthesize_state`)."""

from __future__ import annotations

import json

from .. import config
from .districts import synthesize, synthesize_district
from .statewide import synthesize_state

__all__ = ["register"]


def _cmd(args) -> int:
    if args.districts is None:
        paths = synthesize(args.out, seed=args.seed, students=args.students)
    elif args.districts == 1:
        paths = [synthesize_district(args.out, seed=args.seed, students=args.students)]
    else:  # N > 1: a statewide simulation
        paths = synthesize_state(args.out, districts=args.districts, seed=args.seed)
    for p in paths:
        truth = json.loads((p / "truth.json").read_text())
        print(
            f"{p}: {truth['n_students']} students, {truth['n_teachers']} teachers, "
            f"{truth['n_classrooms']} classrooms, {truth['n_schools']} schools"
        )
    return 0


def register(subparsers) -> None:
    """Add the ``synthesize`` subcommand to the command line's ``subparsers``.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="opportunity-research")
    >>> register(parser.add_subparsers())
    >>> args = parser.parse_args(["synthesize", "--districts", "1", "--students", "600"])
    >>> args.districts, args.students, args.func.__name__
    (1, 600, '_cmd')
    """
    p = subparsers.add_parser(
        "synthesize",
        help="write the five synthetic demo districts into data/raw/",
        description="Write five synthetic demo districts (about 4,000 students and 260 teachers in total, grades "
        "3-12) that pass the data contract, with the planted truths in each district's truth.json. "
        "Deterministic for a given --seed.",
    )
    p.add_argument("--out", default=None, help="output folder (default: data/raw)")
    p.add_argument(
        "--seed", type=int, default=config.DEMO_SEED, help=f"random seed (default {config.DEMO_SEED})"
    )
    p.add_argument(
        "--students",
        type=int,
        default=4000,
        help="total students over the five districts (default 4000; 1000000 works on 2 cores); with "
        "--districts 1, the students of the one district",
    )
    p.add_argument(
        "--districts",
        type=int,
        default=None,
        metavar="N",
        help="instead of the five demo districts: N=1 writes one district (demo_metro) of --students "
        "students, e.g. --districts 1 --students 1000000 (within 2 GB)",
    )
    p.set_defaults(func=_cmd)
