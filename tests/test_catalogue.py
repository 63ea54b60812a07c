"""The catalogue resolves region sets and names every source the design asks for."""

from __future__ import annotations

import pytest

from regionstat.catalogue import load_catalogue
from regionstat.errors import CatalogueError

OSTERGOTLAND = ["0509", "0512", "0513", "0560", "0561", "0562", "0563", "0580", "0581", "0582", "0583", "0584", "0586"]


def test_default_region_set_is_ostergotland_plus_sweden() -> None:
    rs = load_catalogue().region_set()
    assert list(rs.municipalities) == OSTERGOTLAND
    assert rs.counties == ("05",)
    assert rs.all_codes[0] == "00"


def test_all_sweden_is_one_setting() -> None:
    rs = load_catalogue().region_set("sweden")
    assert len(rs.municipalities) == 290
    assert len(rs.counties) == 21


def test_placeholders_resolve_per_variable() -> None:
    cat = load_catalogue()
    sel = cat.source("commuting_flows").resolved_selection(cat.region_set())
    assert sel["Bostadskommun"] == OSTERGOTLAND
    assert sel["Arbetsstallekommun"] == "*"
    pop = cat.source("TAB638").resolved_selection(cat.region_set())
    assert pop["Region"][:2] == ["00", "05"] and len(pop["Region"]) == 15


def test_catalogue_covers_the_design_tables() -> None:
    cat = load_catalogue()
    tables = {s.table for s in cat.sources}
    assert {"TAB638", "TAB5557", "TAB628", "TAB3204", "TAB1830", "TAB5839"} <= tables
    assert set(cat.raw_tables) >= {
        "population",
        "land_area",
        "localities",
        "employment_by_sector",
        "commuting_flows",
        "commuting_totals",
    }


def test_unknown_names_are_clear_errors() -> None:
    cat = load_catalogue()
    with pytest.raises(CatalogueError, match="no catalogue source named 'TAB9999'"):
        cat.source("TAB9999")
    with pytest.raises(CatalogueError, match="unknown region set 'norrland'"):
        cat.region_set("norrland")


def test_series_agree_with_the_dbt_seed() -> None:
    """seeds/series_breaks.csv, which `regionstat generate` writes, reads back as the catalogue's `series:`."""
    import csv
    from pathlib import Path

    seed = Path(__file__).resolve().parent.parent / "dbt_project" / "seeds" / "series_breaks.csv"
    with seed.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))

    def text(value: object) -> str:
        return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)

    cat = load_catalogue()
    assert [r["source_series"] for r in rows] == [s.id for s in cat.series]
    for row, series in zip(rows, cat.series, strict=True):
        as_seed = {
            "raw_table": series.raw_table,
            "source_table": series.source_table,
            "source_series": series.id,
            "year_from": text(series.year_from),
            "year_to": text(series.year_to),
            "register": series.register,
            "age_range": text(series.age_range),
            "totals_additive": text(series.totals_additive),
            "reconciliation_tolerance": text(series.reconciliation_tolerance),
            "break_note": series.break_note,
        }
        assert as_seed == row


def test_every_selected_content_code_is_a_measure_and_series_belong_to_their_source() -> None:
    cat = load_catalogue()
    for source in cat.sources:
        selected = source.selection.get("ContentsCode")
        if isinstance(selected, list):
            assert set(map(str, selected)) <= set(source.measures), source.name
        assert source.measures, source.name
        assert source.freshness is not None and source.freshness.warn_after_days < source.freshness.error_after_days
        assert all(s.source_table == source.table for s in cat.series_of(source))
    assert cat.non_count_contents == {"BE0101U1", "BE0101U3", "000003F9"}
    # offline, the 2018 delineation is a synthetic stand-in table of its own (the real 2023 one stays real)
    assert {s.offline_table or s.table for s in cat.sources if s.synthetic_offline} == {
        "TAB1830",
        "TAB3204",
        "LandarealTatortN_SYNTHETIC2018",
    }


def test_a_series_named_by_no_source_is_a_catalogue_error(tmp_path) -> None:
    import yaml

    from regionstat.catalogue import CATALOGUE_PATH

    doc = yaml.safe_load(CATALOGUE_PATH.read_text(encoding="utf-8"))
    doc["sources"][0]["series"] = []
    bad = tmp_path / "catalogue.yaml"
    bad.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(CatalogueError, match="rtb_1968_2024 named by no source"):
        load_catalogue(bad)
