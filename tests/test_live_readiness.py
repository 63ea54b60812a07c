"""Issue 13 items 4 and 6: the offline snapshot says what it covers, and catalogue selections hold against
SCB's real (recorded) metadata. Real HTTP to the snapshot server on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from extract.pipeline import extract_all
from regionstat.settings import Settings


def test_snapshot_metadata_publishes_coverage(snapshot_server) -> None:
    """The snapshot lists the regions it holds per table; SCB's own metadata fields stay as recorded."""
    import requests

    doc = json.loads(requests.get(f"{snapshot_server.url}/tables/TAB638/metadata", timeout=30).content)
    coverage = doc["extension"]["regionstat"]["coverage"]
    assert sorted(coverage["Region"]) == [
        "00", "05", "0509", "0512", "0513", "0560", "0561", "0562", "0563", "0580", "0581", "0582", "0583", "0584",
        "0586",
    ]  # fmt: skip
    assert "px" in doc["extension"]  # SCB's own extension untouched


def test_region_set_beyond_the_snapshot_fails_up_front_pointing_to_live(tmp_path: Path) -> None:
    """REGIONSTAT_REGION_SET=sweden offline: no batch of nulls lands; each table says what is missing."""
    settings = Settings(data_dir=tmp_path, region_set="sweden")
    results = {
        r.source_name: r for r in extract_all(["population_tab638", "commuting_totals_tab5839"], settings=settings)
    }
    pop = results["population_tab638"]
    assert pop.status == "failed"
    assert pop.message.startswith(
        "table TAB638: the offline snapshot has no Region data for 297 of the 312 regions region set 'sweden' asks for"
    )
    assert "use --live" in pop.message
    assert results["commuting_totals_tab5839"].message.startswith(
        "table TAB5839: the offline snapshot has no Region data for 277 of the 290 regions"
    )
    assert not list((tmp_path / "landing").rglob("*.parquet"))


@pytest.mark.parametrize("region_set", ["ostergotland"])
def test_covered_region_set_lands_every_table(tmp_path: Path, region_set: str) -> None:
    results = extract_all(
        ["population_tab638", "land_area_tab628"], settings=Settings(data_dir=tmp_path, region_set=region_set)
    )
    assert [r.status for r in results] == ["landed", "landed"]
