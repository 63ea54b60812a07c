"""Adding an SCB table is a catalogue entry plus one staging model and one mart.

A SYNTHETIC fixture table (made-up values, marked synthetic in its snapshot provenance and in the catalogue) is
served by the snapshot server next to the bundled tables. The test adds only its catalogue entry (a copy of the
catalogue, via REGIONSTAT_CATALOGUE), runs `regionstat generate` into a copy of the dbt project, adds a staging
model and a mart there, and runs the real pipeline (extract, validate, load, dbt build) to the mart's figures.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from regionstat import generate
from regionstat.catalogue import CATALOGUE_PATH, load_catalogue
from regionstat.settings import PROJECT_ROOT, Settings

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("pipeline")]

TABLE = "TAB9901"
CONTENT = "FX0001"
YEARS = ("2023", "2024")


def fixture_value(index: int, year: str) -> float:
    """The made-up figure of the fixture: distinct per region and year, whole numbers."""
    return float(1000 + 10 * index + (int(year) - 2023))


def write_fixture_table(tables: Path, regions: list[str]) -> None:
    """A PxWeb v2 snapshot table (JSON-stat 2 metadata + facts.parquet) in the layout the server serves."""
    table = tables / TABLE
    table.mkdir()
    meta = {
        "version": "2.0",
        "class": "dataset",
        "label": "SYNTHETIC: test fixture, dwellings by region and year",
        "source": "regionstat test fixture (made-up values)",
        "updated": "2025-01-15T07:00:00Z",
        "role": {"time": ["Tid"], "metric": ["ContentsCode"]},
        "id": ["Region", "ContentsCode", "Tid"],
        "size": [len(regions), 1, len(YEARS)],
        "dimension": {
            "Region": {
                "label": "region",
                "category": {"index": {r: i for i, r in enumerate(regions)}, "label": {r: r for r in regions}},
                "extension": {"elimination": False, "show": "code_value", "codelists": []},
            },
            "ContentsCode": {
                "label": "tabellinnehåll",
                "category": {
                    "index": {CONTENT: 0},
                    "label": {CONTENT: "Bostäder (syntetiska)"},
                    "unit": {CONTENT: {"base": "antal", "decimals": 0}},
                },
                "extension": {"elimination": False, "show": "value", "codelists": []},
            },
            "Tid": {
                "label": "år",
                "category": {"index": {y: i for i, y in enumerate(YEARS)}, "label": {y: y for y in YEARS}},
                "extension": {"elimination": False, "show": "code", "codelists": []},
            },
        },
        "extension": {
            "px": {"tableid": TABLE, "matrix": TABLE, "language": "sv", "decimals": 0},
            "regionstat": {"synthetic": True, "note": "SYNTHETIC: a test fixture, not SCB data"},
        },
        "value": [],
    }
    (table / "metadata.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    rows = [(r, y, fixture_value(i, y)) for i, r in enumerate(regions) for y in YEARS]
    facts = pa.table(
        {
            "Region": [r for r, _, _ in rows],
            "ContentsCode": [CONTENT] * len(rows),
            "Tid": [y for _, y, _ in rows],
            "value": [v for _, _, v in rows],
            "status": pa.array([None] * len(rows), pa.string()),
        }
    )
    pq.write_table(facts, table / "facts.parquet")
    (table / "provenance.json").write_text(
        json.dumps({"table": TABLE, "synthetic": True, "facts": ["made-up values for a test"]}), encoding="utf-8"
    )
    index_path = tables / "index.json"
    index = json.loads(index_path.read_text(encoding="utf-8"))
    index["tables"].append(
        {
            "id": TABLE,
            "label": meta["label"],
            "updated": meta["updated"],
            "firstPeriod": YEARS[0],
            "lastPeriod": YEARS[-1],
            "synthetic": True,
            "size": len(rows),
            "factRows": len(rows),
        }
    )
    index_path.write_text(json.dumps(index, ensure_ascii=False, indent=1), encoding="utf-8")


def catalogue_with_fixture(path: Path) -> None:
    """The bundled catalogue plus the fixture's entry: source, series and dbt documentation."""
    doc = yaml.safe_load(CATALOGUE_PATH.read_text(encoding="utf-8"))
    doc["sources"].append(
        {
            "name": "fixture_dwellings",
            "table": TABLE,
            "raw_table": "fixture_dwellings",
            "description": "SYNTHETIC test fixture: dwellings per region and year.",
            "selection": {"Region": "{regions}", "ContentsCode": [CONTENT], "Tid": "*"},
            "freshness": {"warn_after_days": 400, "error_after_days": 800},
            "series": ["fixture_2023"],
            "synthetic_offline": True,
            "measures": {CONTENT: {"name": "Bostäder (syntetiska)", "unit": "antal", "count": True}},
        }
    )
    doc["series"].append(
        {
            "id": "fixture_2023",
            "raw_table": "fixture_dwellings",
            "source_table": TABLE,
            "year_from": 2023,
            "year_to": None,
            "register": "FIXTURE",
            "age_range": None,
            "totals_additive": True,
            "reconciliation_tolerance": 0,
            "break_note": "test fixture",
        }
    )
    doc["dbt_sources"]["scb"]["tables"]["fixture_dwellings"] = {
        "description": "SYNTHETIC test fixture (TAB9901): dwellings per region and year.",
        "columns": {"Region": "SCB region code.", "ContentsCode": "FX0001.", "Tid": "Year.", "value": "Dwellings."},
    }
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")


STAGING = """
with

source as (

    select * from {{ source('scb', 'fixture_dwellings') }}

),

series_breaks as (

    select * from {{ ref('series_breaks') }}
    where raw_table = 'fixture_dwellings'

),

renamed as (

    select
        region as region_code,
        {{ region_level('region') }} as region_level,
        cast(tid as integer) as year,
        cast(value as double) as dwellings,
        {{ raw_lineage_columns() }}
    from source

),

final as (

    {{ select_with_source_series('renamed') }}

)

select * from final
"""

MART = """
select
    year,
    count(*) as municipalities,
    sum(dwellings) as dwellings,
    {{ provenance_columns(lineage_agg('lineage')) }}
from {{ ref('stg_scb__fixture_dwellings') }}
where region_level = 'municipality'
group by year
order by year
"""


@pytest.fixture
def project_with_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, list[str]]]:
    """A project root in tmp_path: the catalogue copy, a dbt project copy and snapshot tables with the fixture."""
    root = tmp_path / "project"
    shutil.copytree(
        PROJECT_ROOT / "dbt_project",
        root / "dbt_project",
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"),
    )
    catalogue = tmp_path / "catalogue.yaml"
    catalogue_with_fixture(catalogue)
    monkeypatch.setenv("REGIONSTAT_CATALOGUE", str(catalogue))
    cat = load_catalogue()
    regions = list(cat.region_set().all_codes)
    tables = tmp_path / "tables"
    shutil.copytree(PROJECT_ROOT / "tools" / "snapshot" / "tables", tables)
    write_fixture_table(tables, regions)
    # the one manual step per table besides the catalogue entry: a staging model and a mart
    (root / "dbt_project/models/staging/scb/stg_scb__fixture_dwellings.sql").write_text(STAGING, encoding="utf-8")
    (root / "dbt_project/models/marts/mart_fixture_dwellings.sql").write_text(MART, encoding="utf-8")
    yield root, regions


def test_a_new_table_reaches_its_mart(
    project_with_fixture: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from regionstat.cli import main as cli
    from tools.snapshot.server import SnapshotServer
    from warehouse import build

    root, regions = project_with_fixture
    written = generate.write(root, generate.render(load_catalogue()))
    assert generate.SOURCES_YAML in written and generate.SEEDS / "series_breaks.csv" in written
    assert b"FX0001,TAB9901,fixture_dwellings" in (root / generate.SEEDS / "measures.csv").read_bytes()
    monkeypatch.setattr(build, "DBT_PROJECT_DIR", root / "dbt_project")

    with SnapshotServer(tables_dir=tmp_path / "tables") as server:
        settings = Settings(data_dir=tmp_path / "data", api_url=server.url)
        summary = cli.run_pipeline(settings, docs=False)
    assert summary.problems == [], summary.problems

    municipalities = [r for r in regions if len(r) == 4]
    index = {r: i for i, r in enumerate(regions)}
    con = duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "select year, municipalities, dwellings, is_synthetic, source_tables from marts.mart_fixture_dwellings"
        ).fetchall()
    finally:
        con.close()
    expected = [
        (int(y), len(municipalities), sum(fixture_value(index[m], y) for m in municipalities), True, TABLE)
        for y in YEARS
    ]
    assert rows == expected
