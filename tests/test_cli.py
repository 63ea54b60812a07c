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
