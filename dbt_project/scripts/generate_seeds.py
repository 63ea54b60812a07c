"""Regenerate the generated seed CSVs (municipalities, counties, locality_names) from reference data.

Run from the project root:  .venv/bin/python dbt_project/scripts/generate_seeds.py
The maintained seeds (la_membership, municipality_travel_time, locality_typology_rules, series_breaks,
sni2007_groups) are edited by hand; this script only (re)writes the three generated ones and reads
la_membership.csv / study-area list to fill the Östergötland columns of municipalities.csv.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REF = ROOT / "reference" / "data"
SEEDS = ROOT / "dbt_project" / "seeds"

# Central LA-Linköping (the 2018-2020 project "Samlad planering för utveckling av LA-Linköping"; seed doc 000/001)
STUDY_AREA = {"0580", "0583", "0586", "0513", "0561"}


def main() -> None:
    sv = json.loads((REF / "scb_v2_metadata" / "TAB638_metadata_sv.json").read_text(encoding="utf-8"))
    en = json.loads((REF / "scb_v2_metadata" / "TAB638_metadata_en.json").read_text(encoding="utf-8"))
    cat = sv["dimension"]["Region"]["category"]
    labels_en = en["dimension"]["Region"]["category"]["label"]
    codes = sorted(cat["index"], key=lambda c: cat["index"][c])
    counties = {c: cat["label"][c] for c in codes if len(c) == 2 and c != "00"}
    munis = [c for c in codes if len(c) == 4]
    assert len(munis) == 290 and len(counties) == 21, (len(munis), len(counties))

    la = {}
    with open(SEEDS / "la_membership.csv", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            la[r["municipality_code"]] = r

    with open(SEEDS / "counties.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["county_code", "county_name_sv", "county_name_en"])
        for c, name in counties.items():
            w.writerow([c, name, labels_en[c]])

    with open(SEEDS / "municipalities.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["municipality_code", "municipality_name", "county_code", "la_region", "la_vintage", "study_area"])
        for c in munis:
            known = c[:2] == "05"
            m = la.get(c)
            w.writerow(
                [
                    c,
                    cat["label"][c],
                    c[:2],
                    m["la_region"] if m else "",
                    m["vintage"] if m else "",
                    ("true" if c in STUDY_AREA else "false") if known else "",
                ]
            )

    with open(REF / "tatorter_2023_scb_subset.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with open(SEEDS / "locality_names.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["locality_code", "locality_name", "municipality_code", "name_year", "source"])
        for r in sorted(rows, key=lambda r: r["tatort_code"]):
            w.writerow([r["tatort_code"], r["tatort_name"], r["kommun_code"], 2023, "tatorter_2023_scb_subset"])


if __name__ == "__main__":
    main()
