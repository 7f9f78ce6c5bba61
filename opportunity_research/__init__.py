"""opportunity-research: Opportunity Myth-style equity analysis on a school district's own data."""

from __future__ import annotations

__version__ = "0.1.0"
