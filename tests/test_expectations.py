"""GX validation of landing batches: a corpus of bad inputs, each with its exact outcome; good and warn-only batches.

Batches are built here (Parquet + manifest per CONTRACTS.md), independent of the extract code. GX is imported
and its context created once per process (expectations.gxcore), so the whole file shares one context.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from expectations.validate import build_data_docs, list_quarantine, validate_batch, validate_pending
from regionstat.settings import Settings

MUNIS = ["0509", "0512", "0513", "0560", "0561", "0562", "0563", "0580", "0581", "0582", "0583", "0584", "0586"]
REGIONS = ["00", "05", *MUNIS]
YEARS = ["2020", "2021", "2022", "2023", "2024"]
_clock = itertools.count(1)


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir)


def land(
    data_dir: Path,
    rows: list[dict],
    *,
    source_name: str = "population_tab638",
    raw_table: str = "population",
    table_id: str = "TAB638",
    cells: int | None = None,
    types: dict[str, pa.DataType] | None = None,
    region_set: str = "ostergotland",
    kind: str = "pxweb",
    selection: dict | None = None,
) -> Path:
    """Write one landing batch (Parquet + manifest) the way extract/landing.py does; return the manifest path."""
    df = pd.DataFrame(rows)
    fields = []
    for col in df.columns:
        t = (types or {}).get(col) or (pa.float64() if col == "value" else pa.string())
        fields.append(pa.field(col, t))
    arrays = []
    for f in fields:
        vals = df[f.name].tolist()
        vals = [None if (isinstance(v, float) and v != v) else v for v in vals]
        if pa.types.is_string(f.type):
            vals = [None if v is None else str(v) for v in vals]
        arrays.append(pa.array(vals, type=f.type))
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    buf = io.BytesIO()
    pq.write_table(table, buf)
    data = buf.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    load_id = f"20260101T{next(_clock):06d}Z-{digest[:8]}"
    d = data_dir / "landing" / raw_table / source_name
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{load_id}.parquet").write_bytes(data)
    manifest = {
        "load_id": load_id,
        "source_name": source_name,
        "raw_table": raw_table,
        "kind": kind,
        "table_id": table_id,
        "source_url": f"http://127.0.0.1/api/v2/tables/{table_id}/data",
        "query": {"selection": selection} if selection else {},
        "updated": "2025-02-21T07:00:00Z",
        "fetched_at": "2026-01-01T00:00:00+00:00",
        "rows": len(df),
        "cells": len(df) if cells is None else cells,
        "requests": 1,
        "content_sha256": digest,
        "synthetic": True,
        "region_set": region_set,
        "file": None,
        "schema": {f.name: str(f.type) for f in fields},
    }
    path = d / f"{load_id}.manifest.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return path


def population(years: list[str] = YEARS, factor: dict[str, float] | None = None) -> list[dict]:
    out = []
    for r_i, region in enumerate(REGIONS):
        for y_i, year in enumerate(years):
            v = float(1000 + 100 * r_i + y_i) * (factor or {}).get(year, 1.0)
            out.append(
                {
                    "Region": region,
                    "Alder": "tot",
                    "ContentsCode": "BE0101N1",
                    "Tid": year,
                    "value": float(round(v)),
                    "status": None,
                }
            )
    return out


def first_line(outcome) -> str:
    reason = outcome.quarantined_to.with_name(f"{outcome.load_id}.reason.txt")
    return reason.read_text(encoding="utf-8").splitlines()[0]


def assert_quarantined(
    outcome, data_dir: Path, expected_first_line: str, raw_table: str = "population", source: str = "population_tab638"
) -> None:
    assert not outcome.success
    assert first_line(outcome) == expected_first_line
    qdir = data_dir / "quarantine" / raw_table / source
    for suffix in (".parquet", ".manifest.json", ".validation.parquet", ".reason.txt"):
        assert (qdir / f"{outcome.load_id}{suffix}").exists(), suffix
    assert not list((data_dir / "landing" / raw_table / source).glob(f"{outcome.load_id}*"))
    res = pd.read_parquet(outcome.results_path)
    assert list(res.columns) == [
        "run_id",
        "load_id",
        "source_name",
        "expectation",
        "column",
        "severity",
        "success",
        "observed_value",
        "details",
        "validated_at",
    ]
    assert ((res.severity == "fail") & ~res.success).any()


# -- good and warn-only -----------------------------------------------------------------------------------


def test_good_batch_passes_with_zero_warnings(data_dir: Path) -> None:
    m = land(data_dir, population())
    out = validate_batch(m, settings=_settings(data_dir))
    assert out.success, out.failures
    assert out.failures == [] and out.warnings == []
    assert out.quarantined_to is None
    assert out.results_path == m.with_name(f"{out.load_id}.validation.parquet") and out.results_path.exists()
    res = pd.read_parquet(out.results_path)
    assert res.success.all() and set(res.severity) <= {"fail", "warn"}
    assert {
        "expect_column_values_to_be_in_set",
        "expect_compound_columns_to_be_unique",
        "expect_table_row_count_to_equal",
        "expect_table_columns_to_match_set",
    } <= set(res.expectation)
    assert (res.load_id == out.load_id).all() and res.run_id.nunique() == 1


def test_more_than_5pct_change_warns_and_passes(data_dir: Path) -> None:
    s = _settings(data_dir)
    first = validate_batch(land(data_dir, population()), settings=s)
    assert first.success
    out = validate_batch(land(data_dir, population(factor={"2024": 1.10})), settings=s)
    assert out.success and out.failures == []
    assert len(out.warnings) == 1
    assert out.warnings[0].startswith(
        "expect_year_totals_within_5pct_of_previous_load(Tid) failed: 1 year total changed more than 5% vs previous "
        f"load {first.load_id}: 2024 BE0101N1 +10.0%"
    )
    res = pd.read_parquet(out.results_path)
    warn = res[(res.severity == "warn") & ~res.success]
    assert list(warn.expectation) == ["expect_year_totals_within_5pct_of_previous_load"]
    assert out.results_path.parent == data_dir / "landing" / "population" / "population_tab638"


# -- the corpus of bad inputs ---------------------------------------------------------------------------


def test_value_as_string_is_quarantined(data_dir: Path) -> None:
    rows = population()
    for r in rows:
        r["value"] = str(int(r["value"]))
    out = validate_batch(land(data_dir, rows, types={"value": pa.string()}), settings=_settings(data_dir))
    assert_quarantined(
        out,
        data_dir,
        "quarantined: expect_column_values_to_be_of_type(value) failed: expected float64, found 75 "
        "str values e.g. '1000', '1001', '1002'",
    )


def test_unknown_region_code_is_quarantined(data_dir: Path) -> None:
    rows = population()
    rows[-1]["Region"] = "9999"
    out = validate_batch(land(data_dir, rows), settings=_settings(data_dir))
    assert_quarantined(
        out, data_dir, "quarantined: expect_column_values_to_be_in_set(Region) failed: 1 unknown code '9999'"
    )
    assert len(out.failures) == 1


def test_negative_count_is_quarantined(data_dir: Path) -> None:
    rows = population()
    rows[3]["value"] = -5.0
    out = validate_batch(land(data_dir, rows), settings=_settings(data_dir))
    assert_quarantined(
        out, data_dir, "quarantined: expect_column_values_to_be_between(value) failed: 1 value below 0: '-5.0'"
    )


def test_duplicated_keys_are_quarantined(data_dir: Path) -> None:
    rows = population()
    rows.append(dict(rows[0]))
    out = validate_batch(land(data_dir, rows), settings=_settings(data_dir))
    assert_quarantined(
        out,
        data_dir,
        "quarantined: expect_compound_columns_to_be_unique(Region,Alder,ContentsCode,Tid) failed: 2 rows with "
        "duplicated keys (Region, Alder, ContentsCode, Tid)",
    )


def test_truncated_table_vanished_years_are_quarantined(data_dir: Path) -> None:
    s = _settings(data_dir)
    good = validate_batch(land(data_dir, population()), settings=s)
    assert good.success
    out = validate_batch(land(data_dir, population(years=YEARS[2:])), settings=s)
    assert_quarantined(
        out,
        data_dir,
        "quarantined: expect_column_distinct_values_to_contain_set(Tid) failed: 2 values vanished since "
        f"previous batch {good.load_id}: '2020', '2021'",
    )
    assert out.warnings == []  # totals of the years still there did not change
    # the good batch stays in landing; the bad one is gone from it
    assert [p.name for p in (data_dir / "landing/population/population_tab638").glob("*.manifest.json")] == [
        f"{good.load_id}.manifest.json"
    ]


def test_renamed_dimension_column_is_schema_drift(data_dir: Path) -> None:
    rows = [{("Year" if k == "Tid" else k): v for k, v in r.items()} for r in population()]
    out = validate_batch(land(data_dir, rows), settings=_settings(data_dir))
    assert_quarantined(
        out,
        data_dir,
        "quarantined: expect_table_columns_to_match_set failed: missing column 'Tid'; unexpected column 'Year'",
    )


def test_row_count_not_equal_to_cells_is_quarantined(data_dir: Path) -> None:
    out = validate_batch(land(data_dir, population(), cells=80), settings=_settings(data_dir))
    assert_quarantined(
        out, data_dir, "quarantined: expect_table_row_count_to_equal failed: 75 rows but the manifest promises 80 cells"
    )
    assert len(out.failures) == 1


def test_unknown_status_symbol_and_non_integral_count(data_dir: Path) -> None:
    rows = population()
    rows[0]["status"] = "x"
    rows[1]["value"] = 1000.5
    out = validate_batch(land(data_dir, rows), settings=_settings(data_dir))
    assert out.failures == [
        "expect_column_values_to_be_in_set(status) failed: 1 unknown symbol 'x'",
        "expect_column_values_to_be_null(value) failed: 1 non-integral count: '1000.5'",
    ]


def test_land_area_may_be_fractional_and_file_source_net_flows_may_be_negative(data_dir: Path) -> None:
    s = _settings(data_dir)
    rows = [
        {"Region": r, "Kon": "1+2", "ContentsCode": "BE0101U3", "Tid": "2024", "value": 1234.56, "status": None}
        for r in REGIONS
    ]
    land_area = land(data_dir, rows, source_name="land_area_tab628", raw_table="land_area")
    assert validate_batch(land_area, settings=s).success
    frows = [
        # municipality: the PE12 entry's constant column, part of its landing shape
        {"flow_type": t, "district": "110", "area": "Annan", "period": "2024", "municipality": "0580", "value": v}
        | {"status": None}
        for t, v in (("In", 10.0), ("Ut", 30.0), ("Netto", -20.0))
    ]
    out = validate_batch(
        land(
            data_dir, frows, source_name="linkoping_commuting_districts", raw_table="municipal_commuting", kind="file"
        ),
        settings=s,
    )
    assert out.success and out.warnings == [], out.failures


def test_locality_codes(data_dir: Path) -> None:
    s = _settings(data_dir)
    rows = [
        {"Tatort": c, "ContentsCode": cc, "Tid": "2023", "value": 100.0, "status": None}
        for c in ("0580TC111", "0581TB102")
        for cc in ("000003F7", "000003F9")
    ]
    assert validate_batch(land(data_dir, rows, source_name="localities", raw_table="localities"), settings=s).success
    rows[0]["Tatort"] = "0580T111"
    out = validate_batch(land(data_dir, rows, source_name="localities", raw_table="localities"), settings=s)
    assert first_line(out).startswith(
        "quarantined: expect_column_values_to_match_regex(Tatort) failed: 1 value not matching "
        "^\\d{4}T[BC]\\d{3}$: '0580T111'"
    )


def _od_rows(stay: float) -> list[dict]:
    return [
        {
            "Bostadskommun": b,
            "Arbetsstallekommun": a,
            "Kon": k,
            "ContentsCode": "000001XX",
            "Tid": "2023",
            "value": stay if a == b else 100.0,
            "status": None,
        }
        for b in ("0580", "0581")
        for a in ("0580", "0581")
        for k in ("1", "2")
    ]


def test_od_flows_against_employed_residents(data_dir: Path) -> None:
    s = _settings(data_dir)
    od = {"source_name": "commuting_flows", "raw_table": "commuting_flows", "table_id": "TAB1830"}
    out = validate_batch(land(data_dir, _od_rows(900.0), **od), settings=s)
    assert out.success
    assert out.warnings == [
        "expect_od_row_sum_at_most_employed_residents(Bostadskommun) failed: skipped: no "
        "employment_by_sector batch in landing to compare with"
    ]
    emp = [
        {
            "Region": r,
            "SNI2007": "A-U+US",
            "Kon": k,
            "ContentsCode": "000002XI",
            "Tid": "2023",
            "value": 1000.0,
            "status": None,
        }
        for r in ("0580", "0581")
        for k in ("1", "2")
    ]
    land(data_dir, emp, source_name="employment_by_sector", raw_table="employment_by_sector", table_id="TAB3204")
    assert validate_batch(land(data_dir, _od_rows(800.0), **od), settings=s).warnings == [
        "expect_year_totals_within_5pct_of_previous_load(Tid) failed: 1 year total changed more than 5% vs previous "
        f"load {out.load_id}: 2023 000001XX -10.0%"
    ]
    bad = validate_batch(land(data_dir, _od_rows(1000.0), **od), settings=s)
    assert first_line(bad).startswith(
        "quarantined: expect_od_row_sum_at_most_employed_residents(Bostadskommun) failed: 4 residence-years commute "
        "more people than live there employed"
    )


def test_validate_pending_list_quarantine_and_offline_data_docs(data_dir: Path) -> None:
    s = _settings(data_dir)
    land(data_dir, population())
    bad = [
        {
            "Region": r["Region"],
            "Civilstand": "SC",
            "Alder": "TotSA",
            "Kon": "TotSa",
            "ContentsCode": "000007ME",
            "Tid": "2025",
            "value": r["value"],
            "status": None,
        }
        for r in population(years=["2025"])
    ]
    bad[0]["Region"] = "9999"
    land(data_dir, bad, source_name="population_tab5557", table_id="TAB5557")
    outcomes = validate_pending(s, build_docs=False)
    assert [o.success for o in outcomes] == [True, False]
    assert validate_pending(s, build_docs=False) == []  # nothing left to validate
    q = list_quarantine(s)
    assert [(e.source_name, e.raw_table) for e in q] == [("population_tab5557", "population")]
    assert q[0].reason == "quarantined: expect_column_values_to_be_in_set(Region) failed: 1 unknown code '9999'"

    from expectations.docs import missing_local_assets, remote_assets

    index = build_data_docs(s)
    assert index == data_dir / "docs" / "gx" / "index.html" and index.exists()
    # GX's own pages; every stylesheet, script and image they load is a file of the site (no CDN)
    assert remote_assets(index.parent) == []
    assert missing_local_assets(index.parent) == []
    pages = list((index.parent / "validations").rglob("*.html"))
    assert len(pages) == 2
    html = index.read_text(encoding="utf-8")
    assert 'src="static/vendor/jquery@3.7.1/jquery.min.js"' in html and "landing.population.population_tab638" in html
    assert "../" * 6 + "static/vendor/bootstrap@4.3.1/css/bootstrap.min.css" in pages[0].read_text(encoding="utf-8")
    # one named GX data asset per source, on the index and on each page; GX's placeholders are gone
    assert "population_tab638 (raw.population)" in html and "population_tab5557 (raw.population)" in html
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "Data asset: None" not in text and "__none__" not in text, page
        assert f"Data asset: {page.stem} (raw.population)" in text, page
        # GX's own rendering of a row condition ("If value % 1 != 0, then values must be null") is replaced by
        # the expectation's description
        assert "value % 1" not in text and "counts are whole numbers" in text, page


@pytest.mark.parametrize("n_regions,n_years", [(312, 330)])
def test_100k_rows_validate(data_dir: Path, n_regions: int, n_years: int) -> None:
    from regionstat.catalogue import load_regions

    regions = [r.code for r in load_regions()][:n_regions]
    years = [str(y) for y in range(1700, 1700 + n_years)]
    rows = [
        {"Region": r, "Alder": "tot", "ContentsCode": "BE0101N1", "Tid": y, "value": 1.0, "status": None}
        for r in regions
        for y in years
    ]
    m = land(data_dir, rows)
    out = validate_batch(m, settings=_settings(data_dir))  # speed is a benchmark figure (make bench), not a test
    assert out.success, out.failures
    assert out.rows == 102_960


def test_data_docs_assets_are_gx_own_vendored_unchanged() -> None:
    """Every asset GX's Data Docs templates load has a vendored copy, and the copies GX pins by hash are the
    very files it pins (so the integrity attributes dropped for ``file://`` pages lose no check)."""
    import base64
    import hashlib
    import re

    from great_expectations.render.view import view as gx_view

    from expectations.docs import GX_WEB_ASSETS, VENDOR, VENDORED, offline_template

    templates = Path(gx_view.__file__).parent / "templates"
    pinned = 0
    for template in sorted(templates.glob("*.j2")):
        source = template.read_text(encoding="utf-8")
        local = offline_template(template.name, source)  # raises for a CSS/JS/image URL with no vendored copy
        assert not any(url in local for url in [*VENDORED, GX_WEB_ASSETS]), template.name
        for url, algo, digest in re.findall(r'src="(https?://[^"]+)"\s+integrity="(sha\d+)-([^"]+)"', source):
            data = (VENDOR / VENDORED[url]).read_bytes()
            assert base64.b64encode(hashlib.new(algo, data).digest()).decode() == digest, url
            pinned += 1
    assert pinned >= 2
    assert all((VENDOR / local).is_file() for local in VENDORED.values())


# -- honest emptiness (issue 13 item 4) -------------------------------------------------------------------


def test_all_null_batch_is_quarantined(data_dir: Path) -> None:
    """A fetch that came back as nothing but nulls ('..') is not data, whatever the HTTP status was."""
    rows = [{**r, "value": None, "status": ".."} for r in population()]
    out = validate_batch(land(data_dir, rows), settings=_settings(data_dir))
    assert_quarantined(
        out,
        data_dir,
        "quarantined: expect_batch_to_have_values(value) failed: TAB638: all 75 values are null (nothing was fetched)",
    )


def test_requested_regions_without_value_are_quarantined(data_dir: Path) -> None:
    """Region set sweden against a snapshot holding Östergötland: 297 of the 312 regions asked for are all null."""
    from regionstat.catalogue import load_catalogue

    sweden = list(load_catalogue().region_set("sweden").all_codes)
    held = {r["Region"]: r for r in population(["2024"])}
    rows = [
        held.get(code)
        or {"Region": code, "Alder": "tot", "ContentsCode": "BE0101N1", "Tid": "2024", "value": None, "status": ".."}
        for code in sweden
    ]
    selection = {"Region": sweden, "Alder": ["tot"], "ContentsCode": ["BE0101N1"], "Tid": "*"}
    out = validate_batch(land(data_dir, rows, region_set="sweden", selection=selection), settings=_settings(data_dir))
    assert_quarantined(
        out,
        data_dir,
        "quarantined: expect_requested_regions_to_have_values(Region) failed: TAB638: 297 of 312 requested "
        "regions have no value (01, 03, 04, 06, 07, 08, 09, 10, 12, 13 (+287 more))",
    )
    # the same regions, all delivered: passes
    full = [{**r, "value": 1000.0, "status": None} for r in rows]
    ok = validate_batch(land(data_dir, full, region_set="sweden", selection=selection), settings=_settings(data_dir))
    assert ok.success, ok.failures
