"""bench.common.run_measured reports the measured command's own peak RSS, not the bench process's."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from bench.common import run_measured

SMALL_CHILD = "import numpy as np; a = np.ones(40 * 2**20 // 8); print('ok')"  # ~40 MB touched


def test_peak_rss_of_the_command_alone_not_inherited_from_a_big_parent() -> None:
    ballast = np.ones(600 * 2**20 // 8)  # 600 MB touched in this (the measuring) process
    ballast[::4096] += 1.0
    # the trap: a child forked from this process starts from its high-water mark
    direct = subprocess.Popen([sys.executable, "-c", SMALL_CHILD])
    _, _, usage = os.wait4(direct.pid, 0)
    assert usage.ru_maxrss / 1024 > 600, "the kernel no longer carries the parent's peak into the child"

    measured = run_measured([sys.executable, "-c", SMALL_CHILD])
    assert measured["returncode"] == 0 and "ok" in measured["output"]
    assert 40 < measured["peak_rss_mb"] < 200, measured
    assert measured["cpu_s"] is not None and measured["cpu_s"] > 0
    del ballast
