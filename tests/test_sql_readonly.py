"""`regionstat sql` is read-only for real: no writes, no files, no settings; errors are one line, exit 2.

A module-scoped copy of the session's pipeline run gives a real warehouse (raw, staging, marts) and published
Parquet marts. Every escape attempt must be refused by DuckDB itself and leave the warehouse and the marts
byte-identical.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from regionstat.cli.main import main

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sql")]

QUERY = "select region_code, year, population from marts.fct_population where region_code = '0580' order by year"


@pytest.fixture(scope="module")
def run_dir(built_data_copy: Path) -> Path:
    """This module's own copy of the session's `regionstat run` on the bundled snapshot (conftest.py)."""
    return built_data_copy


@pytest.fixture
def env(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REGIONSTAT_DATA_DIR", str(run_dir))
    monkeypatch.delenv("REGIONSTAT_API_URL", raising=False)
    return run_dir


def _checksums(data: Path) -> dict[str, str]:
    """Every file of the data directory (warehouse, marts, landing, ...) by content."""
    return {
        str(p.relative_to(data)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(data.rglob("*"))
        if p.is_file() and ".state" not in p.parts
    }


def _expected(data: Path, query: str = QUERY) -> list[tuple]:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(query).fetchall()


ESCAPES = {
    "copy over the warehouse": "copy (select 1 as x) to '{data}/warehouse.duckdb' (format csv)",
    "copy over a published mart": "copy (select 1 as x) to '{data}/marts/fct_population.parquet' (format parquet)",
    "copy to a new file outside": "copy (select 1 as x) to '{outside}/leak.csv'",
    "copy a table to a file": "copy marts.fct_population to '{outside}/leak.parquet'",
    "export database": "export database '{outside}/export'",
    "attach a new database": "attach '{outside}/other.duckdb' as other",
    "read_csv of /etc/passwd": "select * from read_csv('/etc/passwd')",
    "read_text of /etc/passwd": "select * from read_text('/etc/passwd')",
    "glob outside": "select * from glob('/etc/*')",
    "replacement scan of a file": "select * from '/etc/passwd'",
    "read_parquet of a mart file": "select * from read_parquet('{data}/marts/fct_population.parquet')",
    "install an extension": "install httpfs",
    "load an extension": "load httpfs",
    "set a setting": "set threads = 1",
    "re-enable file access": "set enable_external_access = true",
    "reset the lock": "reset enable_external_access",
    "pragma": "pragma enable_profiling",
    "create a table": "create table marts.evil as select 1 as x",
    "drop a mart": "drop table marts.fct_population",
}


@pytest.mark.parametrize("name", list(ESCAPES), ids=list(ESCAPES))
def test_escape_attempts_are_refused_and_change_nothing(
    name: str, env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _checksums(env)
    outside = tmp_path / "outside"
    outside.mkdir()
    query = ESCAPES[name].format(data=env, outside=outside)
    assert main(["sql", query]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), captured.err
    assert any(word in err[0] for word in ("Permission Error", "locked", "read-only", "does not exist")), err[0]
    assert _checksums(env) == before
    assert list(outside.iterdir()) == []  # nothing written outside either


def test_refusal_names_the_file(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "select * from read_text('/etc/passwd')"]) == 2
    err = capsys.readouterr().err
    assert '"/etc/passwd"' in err and "disabled by configuration" in err and "root:" not in err


@pytest.mark.parametrize(
    "query",
    [
        QUERY,
        "select count(*) as n from raw.population where _source_name = 'population_tab638'",
        "select count(*) as n from staging.stg_scb__population",
        "select * from marts.mart_commuting_totals_series where municipality_code = '0580' order by year",
    ],
    ids=["marts", "raw", "staging", "marts-series"],
)
def test_normal_selects_work(query: str, env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = _expected(env, query)
    assert expected and expected[0][0] not in (None, 0)
    assert main(["sql", query, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [tuple(r.values()) for r in rows] == [tuple(r) for r in expected]


def test_output_files_csv_parquet_json(env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _checksums(env)
    expected = _expected(env)
    assert main(["sql", QUERY, "--format", "parquet", "--output", str(tmp_path / "p.parquet")]) == 0
    assert [tuple(r.values()) for r in pq.read_table(tmp_path / "p.parquet").to_pylist()] == expected
    assert main(["sql", QUERY, "--format", "csv", "--output", str(tmp_path / "p.csv")]) == 0
    lines = (tmp_path / "p.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "region_code,year,population" and len(lines) == len(expected) + 1
    assert lines[1].split(",")[0] == expected[0][0] and int(lines[1].split(",")[2]) == expected[0][2]
    assert main(["sql", QUERY, "--format", "json", "--output", str(tmp_path / "p.json")]) == 0
    rows = json.loads((tmp_path / "p.json").read_text(encoding="utf-8"))
    assert [tuple(r.values()) for r in rows] == expected
    assert "wrote" in capsys.readouterr().out
    assert not list(tmp_path.glob(".*.tmp"))
    assert _checksums(env) == before


def test_output_into_the_data_directory_is_refused(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _checksums(env)
    target = env / "marts" / "fct_population.parquet"
    assert main(["sql", QUERY, "--format", "parquet", "--output", str(target)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "inside the data directory" in err[0] and str(target) in err[0]
    assert _checksums(env) == before


@pytest.mark.parametrize(
    ("query", "needles"),
    [
        ("selec 1", ["Parser Error", "syntax error", "(at line 1, column 1)"]),
        ("select * from marts.fct_populaton", ["Catalog Error", "fct_populaton", "Did you mean"]),
        ("select nope from marts.fct_population", ["Binder Error", '"nope"', "Candidate bindings"]),
    ],
    ids=["syntax", "unknown-table", "unknown-column"],
)
def test_sql_errors_are_one_line_with_the_hint(
    query: str, needles: list[str], env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sql", query]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), captured.err
    for needle in needles:
        assert needle in err[0], err[0]


def test_table_format_prints_brackets_as_data(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "select '[/bold]' as \"[x]\", '[red]y' as z"]) == 0
    out = capsys.readouterr().out
    assert "[/bold]" in out and "[red]y" in out and "[x]" in out


# ------------------------------------------------------------------------------------------------ output conventions
def test_table_prints_numbers_as_duckdb_does(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Years and integers without thousands separators, floats to at most 4 decimals, whole floats as integers."""
    sql = "select 2024 as y, 5260645 as n, 0.384762345::double as lq, 10603.1::double as a, 1234.0::double as f"
    assert main(["sql", sql]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "2024" in line)
    assert [c.strip() for c in row.strip("│ ").split("│")] == ["2024", "5260645", "0.3848", "10603.1", "1234"]


def test_jsonl_is_one_object_per_row(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", QUERY, "--format", "jsonl"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [tuple(json.loads(line).values()) for line in lines] == [tuple(r) for r in _expected(env)]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.startswith("regionstat ")


@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_a_closed_pipe_ends_quietly(env: Path, fmt: str) -> None:
    """`regionstat sql ... | head -1`: exit 0 and nothing on stderr, not 'error: Broken pipe'."""
    import subprocess
    import sys

    # well over any pipe buffer (64 KiB by default, 1 MiB at most) in either format: the table format renders every
    # row with rich before writing, so 100,000 rows (about 1.5 MB of table) instead of the csv's 300,000
    rows = 100_000 if fmt == "table" else 300_000
    code = "import sys; from regionstat.cli.main import main; sys.exit(main(sys.argv[1:]))"
    argv = [sys.executable, "-c", code, "sql", f"select * from range({rows})", "--format", fmt, "--limit", str(rows)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()  # the reader goes away while the writer still has most of its output to write
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0 and err == b"", err[-2000:]
