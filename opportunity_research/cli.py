"""The ``opportunity-research`` command line.

Each subcommand lives in the module that does the work; that module exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable taking the
parsed arguments and returning the exit code. This file only wires them together.

Examples
--------
$ opportunity-research synthesize                 # five demo districts into data/raw/
$ opportunity-research init data/raw/my_district        # draft a crosswalk for an export in its own shape
$ opportunity-research validate data/raw/demo_lakeside
$ opportunity-research process data/raw/demo_lakeside
$ opportunity-research run --jobs 2              # every district's report
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .version import __version__

#: Modules that contribute subcommands, in the order ``--help`` lists them.
COMMAND_MODULES = ("synth.command", "intake.draft", "intake.validation", "intake.dataset", "batch.runner")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand (each module in :data:`COMMAND_MODULES` registers its own).

    Examples
    --------
    >>> parser = build_parser()
    >>> args = parser.parse_args(["validate", "data/raw/demo_lakeside"])
    >>> args.command, callable(args.func)
    ('validate', True)
    """
    parser = argparse.ArgumentParser(
        prog="opportunity-research",
        description="Opportunity Myth-style equity analysis on a school district's own data. "
        "Typical flow: synthesize (or bring data/raw/<district>/), validate, process, run.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run 'opportunity-research <command> --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"{__package__}.{name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code.

    Examples
    --------
    >>> try:
    ...     main(["--version"])
    ... except SystemExit as e:
    ...     print("exit code", e.code)
    opportunity-research 0.1.0
    exit code 0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
