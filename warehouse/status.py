"""The ledger view behind ``regionstat status``: per source, the live batch, its validation and freshness."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from regionstat.batches import batches
from regionstat.catalogue import load_catalogue
from regionstat.settings import Settings
from warehouse.db import connect_reader


def _parse_time(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def status_rows(settings: Settings) -> list[dict[str, Any]]:
    catalogue = load_catalogue()
    landed = {m.source_name: m for m in batches(settings.landing_dir)}  # newest wins
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
    entries = [(s.name, s.raw_table, s.freshness, s.closed) for s in catalogue.sources]
    entries += [(f.name, f.raw_table, None, None) for f in catalogue.files]
    now = datetime.now(UTC)
    for name, raw_table, freshness, closed in entries:
        led = ledger.get(name, {})
        loaded_at = led.get("loaded_at")
        newest = landed.get(name)
        updated = _parse_time(newest.updated) if newest and newest.updated else None
        # freshness is the age of the data upstream (the table's `updated`), the thresholds in the catalogue;
        # sources without an upstream date (files) fall back to the time they were loaded
        since = updated or (loaded_at.replace(tzinfo=UTC) if loaded_at else None)
        age = (now - since).total_seconds() / 86400 if since else None
        if age is None:
            fresh = "never loaded"
        elif closed:
            fresh = "closed series"
        elif freshness is None:
            fresh = "n/a"
        else:
            fresh = freshness.verdict(age)
        threshold = None
        if fresh in ("fresh", "warn", "error") and freshness is not None:
            # the rule behind the verdict, in days: fresh below warn_after, warn above it, error above error_after
            limit = freshness.error_after_days if fresh == "error" else freshness.warn_after_days
            threshold = f"{'<' if fresh == 'fresh' else '>'} {limit} d"
        pending = newest
        rows.append(
            {
                "source_name": name,
                "raw_table": raw_table,
                "status": led.get("status") or ("landed" if pending else "-"),
                "rows": led.get("rows"),
                "loaded_at": loaded_at,
                "validation": validation.get(name, "-"),
                "upstream_updated": updated,
                # said, not left blank: a landed file that states no date (a CSV) has an unknown vintage
                "vintage": f"{updated:%Y-%m-%d}" if updated else ("vintage unknown" if newest else ""),
                "age_days": age,
                "freshness": fresh,
                "freshness_threshold": threshold,
                "reason": led.get("reason"),
                "landed_load_id": pending.load_id if pending else None,
            }
        )
    return rows
