"""Shared fixtures: real snapshot server over HTTP on loopback, isolated data directories."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from filelock import FileLock

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DATA = PROJECT_ROOT / "reference" / "data"

#: xdist groups, longest first (measured with `--durations`, -n 2); then other groups marked `slow`, then the rest.
#: CI runs `--dist loadgroup` with `--no-loadscope-reorder` (pyproject.toml), so xdist hands out work units in the
#: order sorted here: the two longest chains start at once, one per worker, and short tests fill in behind them.
#: xdist's default order (most tests first) started the four-test Airflow chain late, and the run waited for it.
LONGEST_GROUPS_FIRST = ("airflow", "pipeline", "changes", "dbt_trust", "tests/test_key_figures.py", "runs")


def _xdist_group(item: pytest.Item) -> str | None:
    mark = item.get_closest_marker("xdist_group")
    return None if mark is None else str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Schedule for two workers: a test outside any xdist group joins its module's group, so a module-scoped
    fixture (a dbt build, a snapshot) runs on one worker only, not on both; then the longest groups go first."""
    for item in items:
        if _xdist_group(item) is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))  # tests/test_x.py
    slow_groups = {_xdist_group(item) for item in items if item.get_closest_marker("slow")}

    def rank(item: pytest.Item) -> int:
        group = _xdist_group(item)
        if group in LONGEST_GROUPS_FIRST:
            return LONGEST_GROUPS_FIRST.index(group)
        return len(LONGEST_GROUPS_FIRST) + (group not in slow_groups)

    items.sort(key=rank)  # stable: collection order within a rank


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


def _built_once_per_run(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """The data directory `name`, built by `build(data_dir)` once per pytest run rather than once per xdist worker.

    A session fixture runs once per worker process, and a whole pipeline run is the suite's dearest setup: with
    `-n 2` each worker used to build its own copy of the same directory. Under xdist the first worker that asks
    builds it below the run's shared temp root while holding a file lock; the other waits for the lock and reads
    the same directory. Sharing is safe: the warehouse is only ever written through a work copy swapped in
    atomically (warehouse/db.py) and readers open it read-only; tests that change anything take a private copy
    (`built_data_copy`). A build that failed leaves no completion marker, so the next asker builds again and fails
    with its own message.
    """
    if os.environ.get("PYTEST_XDIST_WORKER") is None:  # one process: a plain session temp dir
        data = tmp_path_factory.mktemp(name) / "data"
        build(data)
        return data
    root = tmp_path_factory.getbasetemp().parent / f"shared-{name}"  # the controller's basetemp: this run only
    complete = root / ".complete"
    with FileLock(f"{root}.lock"):
        if not complete.exists():
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()
            build(root / "data")
            complete.touch()
    return root / "data"


@pytest.fixture(scope="session")
def run_with_inbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One offline pipeline run (the bundled snapshot plus Linköping's ksi2242.px and PE12.px in the inbox),
    shared by the key-figure and locality tests and by both xdist workers; treat it as read-only."""
    from regionstat.cli.main import run_pipeline
    from regionstat.settings import Settings

    def build(data: Path) -> None:
        inbox = Settings(data_dir=data).inbox_dir
        inbox.mkdir(parents=True)
        for name in ("ksi2242.px", "PE12.px"):
            shutil.copy(REFERENCE_DATA / "linkoping_kommun_px" / name, inbox / name)
        assert run_pipeline(Settings(data_dir=data), docs=False).exit_code == 0

    return _built_once_per_run(tmp_path_factory, "run_with_inbox", build)


@pytest.fixture(scope="session")
def built_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ``regionstat run`` (GX docs off) on the bundled snapshot, built once per pytest run and shared by both
    xdist workers: read it as it is (tests/test_readme.py), or take `built_data_copy` before changing anything."""
    from regionstat.cli.main import run_pipeline
    from regionstat.settings import Settings

    def build(data: Path) -> None:
        summary = run_pipeline(Settings(data_dir=data), docs=False)
        assert summary.exit_code == 0, summary.problems

    return _built_once_per_run(tmp_path_factory, "built", build)


@pytest.fixture(scope="module")
def built_data_copy(built_data: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A private copy of `built_data` for one test module that reruns, republishes or drops files into it: the
    same result as its own ``regionstat run`` on the bundled snapshot, for the price of a directory copy."""
    data = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2]) / "data"
    shutil.copytree(built_data, data)
    return data
