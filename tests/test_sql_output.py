"""`regionstat sql` output is complete text: CSV that DuckDB's read_csv (or a spreadsheet) reads back as queried,
and every text format ends with a newline so shells and `cat` put the prompt on its own line.

A tiny warehouse (two loaded rows, no dbt) is enough: the formats are what is under test, not the marts.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from regionstat.cli.main import main

RAW_QUERY = 'select "Region", "Tid", value, _source_name, _synthetic, _loaded_at from raw.population order by "Region"'

# Values pandas' CSV writer got wrong: lists as numpy reprs, NULL integers as "", structs as Python dicts.
TRICKY_QUERY = """
select [1, 2] as list, {'a': 1} as struct, null::int as missing_int, '' as empty, 'x"y,z' as quote_comma,
       'a' || chr(10) || 'b' as newline, 0.1::double + 0.2 as float, date '2024-01-01' as day,
       '0580' as region_code, 'Linköping' as name, true as flag
from range(2)
"""


@pytest.fixture
def tiny_warehouse(data_dir: Path) -> Path:
    """raw.population with two rows, through the real landing and loader."""
    from regionstat.settings import Settings
    from tests.test_warehouse_load import _land
    from warehouse.load import load_validated

    settings = Settings.from_env()
    _land(settings, [1.0, 2.0])
    load_validated(settings=settings)
    return data_dir


def _read_csv(path: Path, **options: object) -> tuple[list[str], list[tuple]]:
    with duckdb.connect() as con:
        rel = con.read_csv(str(path), **options)
        return rel.columns, rel.fetchall()


def test_csv_reads_back_as_queried(tiny_warehouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with duckdb.connect(str(tiny_warehouse / "warehouse.duckdb"), read_only=True) as con:
        rel = con.sql(RAW_QUERY)
        columns = rel.columns
        expected = con.sql(f"select columns(*)::varchar from ({RAW_QUERY})").fetchall()  # DuckDB's own text
    assert main(["sql", RAW_QUERY, "--format", "csv"]) == 0
    printed = capsys.readouterr().out
    assert printed.endswith("\n") and printed.count("\n") == len(expected) + 1
    path = tmp_path / "out.csv"
    assert main(["sql", RAW_QUERY, "--format", "csv", "--output", str(path)]) == 0
    assert path.read_text(encoding="utf-8") == printed  # the file is what stdout shows
    header, rows = _read_csv(path, all_varchar=True)
    assert header == columns and rows == expected
    header, rows = _read_csv(path)
    assert [row[0] for row in rows] == ["0580", "0581"]  # codes keep their leading zero
    assert [row[2] for row in rows] == [1.0, 2.0]


def test_csv_of_lists_nulls_and_quotes(
    tiny_warehouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tricky.csv"
    assert main(["sql", TRICKY_QUERY, "--format", "csv", "--output", str(path)]) == 0
    header, rows = _read_csv(path, allow_quoted_nulls=False)  # NULL is empty, '' is "": both survive
    names = "list struct missing_int empty quote_comma newline float day region_code name flag"
    assert header == names.split()
    one = (
        "[1, 2]",
        "{'a': 1}",
        None,
        "",
        'x"y,z',
        "a\nb",
        0.30000000000000004,
        date(2024, 1, 1),
        "0580",
        "Linköping",
        True,
    )
    assert rows == [one, one]


def test_empty_result_is_a_header_line(tiny_warehouse: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "select 1 as a, 2 as b where false", "--format", "csv"]) == 0
    assert capsys.readouterr().out == "a,b\n"


@pytest.mark.parametrize("fmt", ["table", "json", "jsonl", "csv"])
def test_every_text_format_ends_with_a_newline(
    fmt: str, tiny_warehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sql", RAW_QUERY, "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert out.endswith("\n") and not out.endswith("\n\n") and "0581" in out
