"""Publish every mart as Parquet, atomically, sorted, so that unchanged data gives byte-identical files."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from extract.settings import Settings
from warehouse.db import connect_reader, writer

log = logging.getLogger(__name__)

MART_SCHEMA = "marts"


def publish_marts(*, settings: Settings, wait: float | None = None) -> dict[str, str]:
    """Write ``data/marts/<model>.parquet`` for every table in schema ``marts``; returns name -> sha256."""
    out = settings.marts_dir
    out.mkdir(parents=True, exist_ok=True)
    checksums: dict[str, str] = {}
    with writer(settings, wait=wait, purpose="publish"):
        con = connect_reader(settings)
        try:
            con.execute("set preserve_insertion_order = true")
            names = [
                r[0]
                for r in con.execute(
                    "select table_name from information_schema.tables where table_schema = ? "
                    "and table_type = 'BASE TABLE' order by table_name",
                    [MART_SCHEMA],
                ).fetchall()
            ]
            for name in names:
                final = out / f"{name}.parquet"
                tmp = out / f".{name}.parquet.tmp"
                con.execute(
                    f"copy (select * from {MART_SCHEMA}.\"{name}\" order by all) to '{tmp}' "
                    "(format parquet, compression zstd, row_group_size 100000)"
                )
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
                os.replace(tmp, final)
                checksums[name] = hashlib.sha256(final.read_bytes()).hexdigest()
        finally:
            con.close()
    index = out / "_index.json"
    tmp_index = out / "._index.json.tmp"
    tmp_index.write_text(json.dumps(checksums, indent=2, sort_keys=True))
    os.replace(tmp_index, index)
    log.info("published %d marts to %s", len(checksums), out)
    return checksums


def mart_paths(settings: Settings) -> list[Path]:
    return sorted(settings.marts_dir.glob("*.parquet"))
