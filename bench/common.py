"""Shared plumbing for the benchmarks: machine info, result files, measured subprocesses."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from regionstat.batches import atomic_write

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
PYTHON = sys.executable
PACKAGES = [
    "duckdb",
    "pyarrow",
    "numpy",
    "pandas",
    "orjson",
    "requests",
    "dbt-core",
    "dbt-duckdb",
    "great-expectations",
    "apache-airflow",
    "pxwebpy",
    "pyjstat",
    "psutil",
]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info() -> dict[str, Any]:
    versions = {}
    for p in PACKAGES:
        try:
            versions[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            versions[p] = None
    vm = psutil.virtual_memory()
    status = _git("status", "--porcelain")
    return {
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "ram_gb": round(vm.total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": versions,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
    }


def write_result(name: str, payload: dict[str, Any], out_dir: Path = RESULTS_DIR) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": name,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        **payload,
    }
    path = out_dir / f"{name}.json"
    atomic_write(path, json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n")
    return path


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DO_NOT_TRACK": "1",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "GX_ANALYTICS_ENABLED": "False",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "160",
        }
    )
    env.pop("REGIONSTAT_API_URL", None)
    env.update(extra)
    return env


def run_measured(
    cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path = ROOT, timeout: float = 900, sample_s: float = 0.1
) -> dict[str, Any]:
    """Run ``cmd``; wall time, CPU time, exit code, output, and peak RSS two ways: the kernel's high-water mark
    of the command alone (``ru_maxrss`` from wait4 in the clean launcher ``bench.rusage``, children included; a
    command forked straight from this process would start from this process's own high-water mark) and the
    sampled sum over the live process tree."""
    start = time.perf_counter()
    fd, rusage_path = tempfile.mkstemp(prefix="bench-rusage-", suffix=".json")
    os.close(fd)
    launcher = [PYTHON, "-m", "bench.rusage", rusage_path, "--", *cmd]
    proc = subprocess.Popen(
        launcher, cwd=cwd, env=_with_bench_path(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    peak_tree = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak_tree
        try:
            root = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        while not stop.is_set():
            total = 0
            try:
                for p in root.children(recursive=True):  # the command's tree, not the launcher
                    with contextlib.suppress(psutil.NoSuchProcess):
                        total += p.memory_info().rss
            except psutil.NoSuchProcess:
                break
            peak_tree = max(peak_tree, total)
            stop.wait(sample_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    def kill_tree() -> None:
        with contextlib.suppress(psutil.NoSuchProcess):
            for p in [*psutil.Process(proc.pid).children(recursive=True), psutil.Process(proc.pid)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.kill()

    killer = threading.Timer(timeout, kill_tree)
    killer.start()
    try:
        out = proc.stdout.read() if proc.stdout else ""
        proc.wait()
    finally:
        killer.cancel()
        stop.set()
        sampler.join(timeout=2)
    try:
        usage = json.loads(Path(rusage_path).read_text() or "{}")
    except ValueError:
        usage = {}
    finally:
        Path(rusage_path).unlink(missing_ok=True)
    return {
        "returncode": proc.returncode,
        "wall_s": round(time.perf_counter() - start, 3),
        "peak_rss_mb": usage.get("peak_rss_mb"),
        "cpu_s": round(usage.get("cpu_user_s", 0) + usage.get("cpu_system_s", 0), 3) if usage else None,
        "peak_rss_method": "ru_maxrss of the command alone (wait4 in a clean launcher, children included)",
        "peak_rss_tree_sampled_mb": round(peak_tree / 2**20, 1),
        "output": out,
    }


def _with_bench_path(env: dict[str, str] | None) -> dict[str, str]:
    """The launcher is ``python -m bench.rusage`` run from ``cwd``: make sure ``bench`` imports from anywhere."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def last_json_line(text: str) -> dict[str, Any]:
    """The last line of ``text`` that parses as a JSON object (workers print their result that way)."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    raise ValueError(f"no JSON result line in output:\n{text[-2000:]}")
