"""The package version, in a module of its own so any module can read it without importing the package
(``from ..version import __version__``; the package ``__init__`` re-exports it)."""

__version__ = "0.1.0"
