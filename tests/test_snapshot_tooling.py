"""The offline snapshot is repository tooling (`tools/snapshot/`): rebuilt byte-identically, absent from the wheel.

Outside a checkout (the runtime wheel installed on its own) the offline default cannot start; the CLI must say so
in one line instead of a traceback.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from extract.pipeline import SNAPSHOT_MISSING
from tools.snapshot import TABLES_DIR

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: a guard against a hung child process, not a performance limit
HANG_GUARD_SECONDS = 600


def _files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def test_rebuilding_the_snapshot_gives_the_committed_bytes(tmp_path: Path) -> None:
    """`python -m tools.snapshot.build` from a copy of tools/ writes exactly the committed tables."""
    shutil.copytree(PROJECT_ROOT / "tools", tmp_path / "tools", ignore=shutil.ignore_patterns("tables", "__pycache__"))
    (tmp_path / "reference").symlink_to(PROJECT_ROOT / "reference", target_is_directory=True)
    subprocess.run(
        [sys.executable, "-m", "tools.snapshot.build"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=HANG_GUARD_SECONDS,
    )
    built = tmp_path / "tools" / "snapshot" / "tables"
    assert _files(built) == _files(TABLES_DIR)
    changed = [str(f) for f in _files(TABLES_DIR) if (built / f).read_bytes() != (TABLES_DIR / f).read_bytes()]
    assert changed == []


def _uv() -> str | None:
    local = PROJECT_ROOT / ".tools" / "bin" / "uv"
    return shutil.which("uv") or (str(local) if local.exists() else None)


@pytest.fixture
def installed_wheel(tmp_path: Path) -> Path:
    """The runtime wheel, built from this checkout and unpacked: what `pip install regionstat` would put on a path."""
    uv = _uv()
    if uv is None:
        pytest.skip("uv is not installed (make install bootstraps it into .tools/)")
    dist = tmp_path / "dist"
    build = subprocess.run(
        [uv, "build", "--wheel", "--offline", "--quiet", "--out-dir", str(dist)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
    )
    if build.returncode != 0:  # no cached build backend: nothing to check here
        pytest.skip(f"cannot build the wheel offline: {build.stderr.strip().splitlines()[-1:]}")
    (wheel,) = dist.glob("regionstat-*.whl")
    target = tmp_path / "installed"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(target)
    return target


def test_wheel_leaves_out_the_snapshot(installed_wheel: Path) -> None:
    assert (installed_wheel / "extract" / "pipeline.py").is_file()
    assert not (installed_wheel / "tools").exists()
    assert not list(installed_wheel.rglob("*.parquet"))


@pytest.mark.parametrize(
    "command",
    [["extract", "--table", "TAB638"], ["snapshot", "serve", "--port", "0"]],
    ids=["extract", "snapshot-serve"],
)
def test_offline_default_without_the_checkout_fails_in_one_line(
    installed_wheel: Path, tmp_path: Path, command: list[str]
) -> None:
    """`python -S` skips the editable install's .pth, so only the wheel and the dependencies are importable
    (site-packages also holds cron_descriptor's unrelated top-level `tools` directory: it must not confuse us)."""
    env = {k: v for k, v in os.environ.items() if k != "REGIONSTAT_API_URL"}
    env["PYTHONPATH"] = os.pathsep.join([str(installed_wheel), *site.getsitepackages()])
    env["REGIONSTAT_DATA_DIR"] = str(tmp_path / "data")
    cli = "import sys; from regionstat.cli.main import main; sys.exit(main(sys.argv[1:]))"
    run = subprocess.run(
        [sys.executable, "-S", "-c", cli, *command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
    )
    assert run.returncode == 1, run.stderr
    assert run.stderr.strip().splitlines() == [f"error: {SNAPSHOT_MISSING}"]
    assert "Traceback" not in run.stdout
