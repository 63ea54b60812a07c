"""The ingest DAG's extract task offline: its own snapshot server, its own rate-limit window (no window shared with
the other tasks' servers, whose calls made the 10th task or so sleep), the same batch as ``regionstat run``."""

from __future__ import annotations

from pathlib import Path

import regionstat.dag_support as ra


def test_offline_extract_task_keeps_its_rate_limit_window_to_itself(data_dir: Path) -> None:
    first = ra.extract_one("population_tab5557")
    assert first["status"] == "landed" and first["rows"] > 0 and first["requests"] == 1
    assert Path(str(first["manifest_path"])).is_file()
    assert not (data_dir / ".state" / "ratelimit").exists()  # nothing written to the shared window
    again = ra.extract_one("population_tab5557")
    assert again["status"] == "skipped_fresh"  # the landing ledger is shared as before: unchanged upstream
