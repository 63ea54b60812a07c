"""The bundled offline snapshot of SCB tables and a local PxWeb API v2 server that serves it.

`tools.snapshot.build` (re)builds `tables/` from `reference/data/`; `tools.snapshot.server.SnapshotServer`
serves it over HTTP with the same protocol, limits and error shapes as SCB's PxWebApi 2.0.
"""

from __future__ import annotations

from pathlib import Path

TABLES_DIR = Path(__file__).resolve().parent / "tables"

__all__ = ["TABLES_DIR"]
