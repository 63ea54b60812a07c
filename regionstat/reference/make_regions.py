"""Regenerate ``regions.csv`` (region_code,region_name,level,county_code,region_name_en) from TAB638's metadata.

    .venv/bin/python -m regionstat.reference.make_regions TAB638_metadata_sv.json TAB638_metadata_en.json

The Region dimension of TAB638 (PxWeb v2 JSON-stat metadata, Swedish and English) lists Riket, the 21 counties
and the 290 municipalities in SCB's order. Run it again when SCB publishes new municipality codes, then
``regionstat generate`` to rewrite the dbt seeds that follow from it.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def level_of(code: str) -> str:
    return "country" if code == "00" else "county" if len(code) == 2 else "municipality"


def region_labels(path: str) -> tuple[list[str], dict[str, str]]:
    """The Region codes of a TAB638 metadata file in SCB's order, and their labels."""
    cat = json.loads(Path(path).read_text(encoding="utf-8"))["dimension"]["Region"]["category"]
    index = cat["index"]
    codes = sorted(index, key=index.__getitem__) if isinstance(index, dict) else list(index)
    return codes, cat["label"]


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit(
            "usage: python -m regionstat.reference.make_regions TAB638_metadata_sv.json TAB638_metadata_en.json"
        )
    codes, labels = region_labels(args[0])
    codes_en, labels_en = region_labels(args[1])
    if set(codes_en) != set(codes):
        raise SystemExit(f"{args[1]}: its Region codes differ from {args[0]}'s")
    with (HERE / "regions.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["region_code", "region_name", "level", "county_code", "region_name_en"])
        for code in codes:
            county = "" if code == "00" else code[:2]
            w.writerow([code, labels[code], level_of(code), county, labels_en[code]])
    print(f"wrote {len(codes)} region codes to {HERE / 'regions.csv'}")


if __name__ == "__main__":
    main()
