"""Regenerate ``regions.csv`` (region_code,region_name,level,county_code) from SCB's TAB638 metadata.

    .venv/bin/python -m regionstat.reference.make_regions path/to/TAB638_metadata_sv.json

The Region dimension of TAB638 (PxWeb v2 JSON-stat metadata) lists Riket, the 21 counties and the 290
municipalities in SCB's order. Run it again when SCB publishes new municipality codes.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def level_of(code: str) -> str:
    return "country" if code == "00" else "county" if len(code) == 2 else "municipality"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m regionstat.reference.make_regions TAB638_metadata_sv.json")
    meta = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    cat = meta["dimension"]["Region"]["category"]
    index = cat["index"]
    codes = sorted(index, key=index.__getitem__) if isinstance(index, dict) else list(index)
    with (HERE / "regions.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["region_code", "region_name", "level", "county_code"])
        for code in codes:
            w.writerow([code, cat["label"][code], level_of(code), "" if code == "00" else code[:2]])
    print(f"wrote {len(codes)} region codes to {HERE / 'regions.csv'}")


if __name__ == "__main__":
    main()
