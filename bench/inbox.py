"""Peak memory of the inbox intake on a large CSV: ``python -m bench.inbox [--mb 200]``.

Generates a SYNTHETIC commuting CSV of about ``--mb`` MB (invented values, PE12 codes, into a temporary data dir;
never committed), then runs ``extract_inbox`` on it in a fresh Python process and records its peak RSS (the
kernel's high-water mark) and wall time in ``bench/results/inbox.json``. The goal is < 1 GiB for 200 MB: the CSV
is streamed and converted to Arrow in chunks (the drill's whole-file read peaked at 7.3 GB).
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench.common import PYTHON, child_env, last_json_line, run_measured, write_result

GOAL_MB = 1024
WORKER = """
import json, sys
from pathlib import Path
from extract.pipeline import extract_inbox
from regionstat.settings import Settings
results = extract_inbox(settings=Settings(data_dir=Path(sys.argv[1])))
print(json.dumps({"results": [{"status": r.status, "rows": r.rows, "message": r.message[:200]} for r in results]}))
"""


def write_synthetic_csv(path: Path, target_bytes: int) -> int:
    """A commuting CSV of at least ``target_bytes`` with unique keys; returns its data rows. Values are invented."""
    flows, areas = ("In", "Ut", "Netto"), ("Annan", "Samma", "Tot", "Lika", "Totkn")
    districts = [f"{d:03d}" for d in range(100, 1000)]
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("flow_type,district,area,period,value\n")
        written = 0
        for period in itertools.count(1000):  # synthetic periods keep every key unique
            lines = [
                f"{flow},{district},{area},{period},{(rows + i) % 9973}\n"
                for i, (flow, district, area) in enumerate(itertools.product(flows, districts, areas))
            ]
            block = "".join(lines)
            fh.write(block)
            rows += len(lines)
            written += len(block)
            if written >= target_bytes:
                return rows
    raise AssertionError("unreachable")


def bench_inbox(mb: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="regionstat-bench-inbox-"))
    try:
        data = work / "data"
        inbox = data / "inbox" / "commuting"
        inbox.mkdir(parents=True)
        csv_path = inbox / "synthetic_bench_commuting.csv"
        rows = write_synthetic_csv(csv_path, mb * 10**6)
        size = csv_path.stat().st_size
        measured = run_measured([PYTHON, "-c", WORKER, str(data)], env=child_env())
        try:
            results = last_json_line(measured["output"])["results"]
            outcome = results[0]["status"] if results else "nothing read"
        except ValueError:
            outcome = f"no result: {measured['output'][-300:]}"
        return {
            "csv_bytes": size,
            "csv_rows": rows,
            "outcome": outcome,
            "peak_rss_mb": measured["peak_rss_mb"],
            "wall_s": measured["wall_s"],
            "returncode": measured["returncode"],
            "goals": {f"peak_rss_under_{GOAL_MB}_mb": measured["peak_rss_mb"] < GOAL_MB, "landed": outcome == "landed"},
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=int, default=200, help="size of the generated CSV in MB (default 200)")
    args = p.parse_args(argv)
    payload = bench_inbox(args.mb)
    path = write_result("inbox", payload)
    print(
        f"inbox: {payload['csv_bytes'] / 1e6:,.0f} MB CSV, {payload['csv_rows']:,} rows -> {payload['outcome']}; "
        f"peak RSS {payload['peak_rss_mb']:,.0f} MB, {payload['wall_s']:.0f} s ({path})"
    )
    return 0 if all(payload["goals"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
