"""Shared fixtures: real snapshot server over HTTP on loopback, isolated data directories."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DATA = PROJECT_ROOT / "reference" / "data"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh REGIONSTAT_DATA_DIR per test; never the user's ./data."""
    d = tmp_path / "data"
    d.mkdir()
    monkeypatch.setenv("REGIONSTAT_DATA_DIR", str(d))
    monkeypatch.delenv("REGIONSTAT_API_URL", raising=False)
    return d


@pytest.fixture
def snapshot_server() -> Iterator[object]:
    """The bundled PxWeb v2 snapshot server on 127.0.0.1 with SCB's limits; `.url` is the API base."""
    from tools.snapshot.server import SnapshotServer

    with SnapshotServer() as server:
        yield server


@pytest.fixture
def make_snapshot_server() -> Iterator[object]:
    """Factory for servers with other limits or faults: make_snapshot_server(max_data_cells=2000, ...)."""
    from tools.snapshot.server import SnapshotServer

    started: list[SnapshotServer] = []

    def factory(**kwargs: object) -> SnapshotServer:
        server = SnapshotServer(**kwargs)
        server.start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def run_with_inbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One offline pipeline run (the bundled snapshot plus Linköping's ksi2242.px and PE12.px in the inbox),
    shared by the key-figure and locality tests; treat it as read-only."""
    import shutil

    from regionstat.cli.main import run_pipeline
    from regionstat.settings import Settings

    data = tmp_path_factory.mktemp("run_with_inbox") / "data"
    inbox = Settings(data_dir=data).inbox_dir
    inbox.mkdir(parents=True)
    for name in ("ksi2242.px", "PE12.px"):
        shutil.copy(REFERENCE_DATA / "linkoping_kommun_px" / name, inbox / name)
    assert run_pipeline(Settings(data_dir=data), docs=False).exit_code == 0
    return data


@pytest.fixture(scope="session")
def built_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ``regionstat run`` (GX docs off) on the bundled snapshot, built once per test process and shared:
    read it as it is, or copy it before changing anything (tests/test_readme.py, tests/test_changes.py)."""
    from regionstat.cli.main import run_pipeline
    from regionstat.settings import Settings

    data = tmp_path_factory.mktemp("built") / "data"
    summary = run_pipeline(Settings(data_dir=data), docs=False)
    assert summary.exit_code == 0, summary.problems
    return data
