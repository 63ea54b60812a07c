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
