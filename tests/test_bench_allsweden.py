"""The bench's synthetic all-Sweden snapshot covers every catalogue source (incl. TAB638's ages layer and the
offline 2018 tätort table), is labelled synthetic, adds up, and its cache key moves with the catalogue."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

import bench.allsweden as allsweden
from extract.pipeline import extract_source
from extract.pxweb import PxWebClient
from regionstat.batches import latest_batch
from regionstat.catalogue import load_catalogue
from regionstat.settings import Settings
from tools.snapshot.server import SnapshotServer


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return allsweden.ensure_snapshot(tmp_path_factory.mktemp("allsweden"))


def test_every_catalogue_table_is_generated_and_marked_synthetic(snapshot: Path):
    allsweden.check_coverage(snapshot)  # raises on a missing table or fact layer
    for source in load_catalogue().sources:
        prov = (snapshot / (source.offline_table or source.table) / "provenance.json").read_text(encoding="utf-8")
        assert '"synthetic": true' in prov, source.name
    assert (snapshot / "TAB638" / "facts.ages_2024.parquet").exists()


def test_ages_add_up_to_each_municipality_total(snapshot: Path):
    con = duckdb.connect()
    [(mismatches, municipalities)] = con.execute(
        f"""
        with ages as (select Region, sum(value) as v from '{snapshot}/TAB638/facts.ages_2024.parquet' group by 1),
        totals as (select Region, value from '{snapshot}/TAB638/facts.parquet' where Tid = '2024')
        select count(*) filter (where ages.v is distinct from totals.value), count(ages.Region)
        from totals left join ages using (Region) where length(Region) = 4
        """
    ).fetchall()
    assert (mismatches, municipalities) == (0, 290)


@pytest.mark.parametrize(
    ("name", "raw_table"), [("population_by_age_tab638", "population_by_age"), ("localities_2018", "localities")]
)
def test_new_sources_land_with_values_at_sweden_scale(snapshot: Path, tmp_path: Path, name: str, raw_table: str):
    settings = Settings(data_dir=tmp_path / "data", region_set="sweden")
    with SnapshotServer(tables_dir=snapshot) as server:
        client = PxWebClient(server.url, state_dir=False)
        res = extract_source(name, settings=settings, client=client, base_url=server.url)
    assert res.status == "landed", res.message
    batch = latest_batch(settings, raw_table, name)
    assert batch is not None and batch.synthetic
    sql = f"select count(*), count(*) - count(value) from '{batch.parquet_path}'"
    [(total, nulls)] = duckdb.connect().execute(sql).fetchall()
    assert total > 3000 and nulls == 0, (total, nulls)


def test_cache_key_moves_with_the_catalogue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    before = allsweden.digest()
    changed = tmp_path / "catalogue.yaml"
    changed.write_bytes(allsweden.CATALOGUE.read_bytes() + b"\n# a new source\n")
    monkeypatch.setattr(allsweden, "CATALOGUE", changed)
    assert allsweden.digest() != before
