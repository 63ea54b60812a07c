"""Regenerate ``regions.csv`` (code,label,level) from SCB's TAB638 metadata, the Region dimension.

    .venv/bin/python expectations/reference/make_regions.py

Run it again when the reference metadata is refreshed (new municipality codes).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent.parent / "reference" / "data" / "scb_v2_metadata" / "TAB638_metadata_sv.json"


def main() -> None:
    meta = json.loads(SOURCE.read_text(encoding="utf-8"))
    cat = meta["dimension"]["Region"]["category"]
    index = cat["index"]
    codes = sorted(index, key=index.__getitem__) if isinstance(index, dict) else list(index)
    with (HERE / "regions.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["code", "label", "level"])
        for code in codes:
            level = "country" if code == "00" else "county" if len(code) == 2 else "municipality"
            w.writerow([code, cat["label"][code], level])
    print(f"wrote {len(codes)} region codes to {HERE / 'regions.csv'}")


if __name__ == "__main__":
    main()
