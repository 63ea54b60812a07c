"""The ledger view behind ``regionstat status``: per source, the live batch, its validation and freshness."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from extract.catalogue import load_catalogue
from extract.landing import manifests
from extract.settings import Settings
from warehouse.db import connect_reader


def status_rows(settings: Settings) -> list[dict[str, Any]]:
    catalogue = load_catalogue()
    landed = {m.source_name: m for m in manifests(settings.landing_dir)}  # newest wins
    ledger: dict[str, dict[str, Any]] = {}
    validation: dict[str, str] = {}
    if settings.warehouse_path.exists():
        con = connect_reader(settings)
        try:
            for row in con.execute(
                "select source_name, load_id, status, rows, loaded_at, reason from ops.loads "
                "qualify row_number() over (partition by source_name order by loaded_at desc) = 1"
            ).fetchall():
                ledger[row[0]] = dict(
                    zip(("source_name", "load_id", "status", "rows", "loaded_at", "reason"), row, strict=True)
                )
            for source, fails, warns in con.execute(
                "select source_name, count(*) filter (where not success and severity = 'fail'), "
                "count(*) filter (where not success and severity = 'warn') from ops.validation_results "
                "where load_id in (select load_id from ops.loads qualify row_number() over "
                "(partition by source_name order by loaded_at desc) = 1) group by 1"
            ).fetchall():
                validation[source] = "passed" if not fails else f"{fails} failed"
                if warns:
                    validation[source] += f", {warns} warning(s)"
        finally:
            con.close()
    rows = []
    entries = [(s.name, s.raw_table, s.freshness) for s in catalogue.sources]
    entries += [(f.name, f.raw_table, {}) for f in catalogue.files]
    now = datetime.now()
    for name, raw_table, freshness in entries:
        led = ledger.get(name, {})
        loaded_at = led.get("loaded_at")
        age = (now - loaded_at).total_seconds() / 86400 if loaded_at else None
        fresh = "n/a"
        if age is not None and freshness:
            fresh = (
                "error"
                if age > freshness.get("error_after_days", 1e9)
                else "warn"
                if age > freshness.get("warn_after_days", 1e9)
                else "fresh"
            )
        elif age is None:
            fresh = "never loaded"
        pending = landed.get(name)
        rows.append(
            {
                "source_name": name,
                "raw_table": raw_table,
                "status": led.get("status") or ("landed" if pending else "-"),
                "rows": led.get("rows"),
                "loaded_at": loaded_at,
                "validation": validation.get(name, "-"),
                "age_days": age,
                "freshness": fresh,
                "reason": led.get("reason"),
                "landed_load_id": pending.load_id if pending else None,
            }
        )
    return rows
