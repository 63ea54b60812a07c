"""Every README block marked ``test`` in its fence (```` ```bash test ````, ```` ```python test ````) runs as written,
from a directory laid out like a fresh clone after ``make install`` and ``regionstat run`` (``.venv/``, ``data/``),
and exits 0 with output and no error line. The deployment-secrets block is run by tests/test_compose.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("changes")]  # shares `built_data` with test_changes

README = PROJECT_ROOT / "README.md"
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>bash|sh|python) test\n(?P<body>.*?)^(?P=indent)```$", re.M | re.S)


def snippets() -> list[tuple[int, str, str]]:
    """(line number, language, code) of every runnable README block."""
    text = README.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m["lang"], textwrap.dedent(m["body"])) for m in FENCE.finditer(text)]


def test_the_readme_has_runnable_blocks() -> None:
    found = snippets()
    assert {lang for _, lang, _ in found} == {"bash", "python"}
    assert any("regionstat sql" in code for _, _, code in found)
    assert any("regionstat status" in code for _, _, code in found)


@pytest.mark.parametrize(("line", "lang", "code"), snippets(), ids=[f"README.md:{n}" for n, _, _ in snippets()])
def test_readme_block_runs_as_written(line: int, lang: str, code: str, built_data: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    clone.mkdir()
    (clone / ".venv").symlink_to(PROJECT_ROOT / ".venv")
    (clone / "data").symlink_to(built_data)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGIONSTAT_")}
    env["COLUMNS"] = "100"
    command = [str(clone / ".venv" / "bin" / "python"), "-c", code] if lang == "python" else ["bash", "-c", code]
    if lang != "python":
        command[1:1] = ["-e", "-o", "pipefail"]
    r = subprocess.run(command, cwd=clone, env=env, capture_output=True, text=True, timeout=600)
    where = f"README.md:{line} ({lang})"
    assert r.returncode == 0, f"{where} exited {r.returncode}:\n{r.stderr[-2000:]}"
    assert r.stdout.strip(), f"{where} printed nothing"
    assert "Traceback" not in r.stderr and not re.search(r"^error:", r.stderr, re.M), f"{where}:\n{r.stderr}"
