"""The command line: every command has --help, and failures exit non-zero with one line saying why."""

from __future__ import annotations

from pathlib import Path

import pytest

from regionstat.cli.main import main

COMMANDS = ["run", "extract", "validate", "load", "build", "publish", "report", "docs", "status", "sql"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "REGIONSTAT_DATA_DIR" in capsys.readouterr().out


def test_snapshot_serve_help_reaches_the_server(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["snapshot", "serve", "--help"])
    assert exc.value.code == 0
    assert "--max-data-cells" in capsys.readouterr().out


def test_sql_without_a_warehouse_is_one_clear_line(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "select 1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "does not exist yet" in err[0]


def test_unknown_table_is_one_clear_line(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["extract", "--table", "TAB0000"]) == 1
    err = capsys.readouterr().err
    assert "error: no catalogue source named 'TAB0000'" in err


def test_empty_quarantine(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["quarantine", "list"]) == 0
    assert "quarantine is empty" in capsys.readouterr().out


def test_status_without_a_warehouse_names_the_path_and_the_variable(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    typo = data_dir.parent / "dta"  # a mistyped REGIONSTAT_DATA_DIR: not 13 "never loaded" rows and exit 0
    monkeypatch.setenv("REGIONSTAT_DATA_DIR", str(typo))
    assert main(["status"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: no warehouse at {typo / 'warehouse.duckdb'}")
    assert "REGIONSTAT_DATA_DIR" in err[0]
    assert not typo.exists()  # status created nothing


def test_status_fits_a_100_column_terminal_and_shows_thresholds(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from regionstat.catalogue import load_catalogue
    from regionstat.cli import main as cli
    from regionstat.settings import Settings
    from tests.test_warehouse_load import _land
    from warehouse.load import load_validated

    settings = Settings.from_env()
    _land(settings, [1.0, 2.0])
    load_validated(settings=settings)
    monkeypatch.setattr(cli.console, "width", 100)
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100
    names = [s.name for s in load_catalogue().sources] + [f.name for f in load_catalogue().files]
    assert all(any(f" {name} " in f" {line} " for line in lines) for name in names)  # never cut or wrapped
    header = next(line for line in lines if line.split()[:1] == ["source"])
    assert "closed series" in out and "--wide shows them" in out and "raw table" not in header
    assert main(["status", "--wide"]) == 0
    wide = capsys.readouterr().out
    assert "raw table" in wide and "upstream updated" in wide and "2025-02-21" in wide


def test_freshness_label_carries_its_threshold(data_dir: Path) -> None:
    from regionstat.cli.main import _STATUS_COLUMNS

    freshness = dict((h, get) for h, get, _ in _STATUS_COLUMNS)["freshness"]
    assert freshness({"freshness": "fresh", "freshness_threshold": "< 400 d"}) == "fresh (< 400 d)"
    assert freshness({"freshness": "closed series", "freshness_threshold": None}) == "closed series"


@pytest.mark.slow
def test_build_select_matching_nothing_is_an_error(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--select", "typo"]) == 1  # dbt itself warns and says "0 ok" with success
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no dbt node matches --select typo")
    assert not (data_dir / "warehouse.duckdb").exists()  # the work copy was discarded
