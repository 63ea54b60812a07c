"""Run a command and report ITS peak RSS, not the bench's: ``python -m bench.rusage OUT.json -- CMD ...``.

A child's ``ru_maxrss`` starts from the high-water mark of the address space it was forked from (Linux carries the
pre-exec ``hiwater_rss`` into the child's ``signal->maxrss``), so a command spawned straight from a bench that holds
1 GB reports at least 1 GB. This launcher is a freshly exec'd small interpreter (about 10 MB, below any measured
Python process); the command forked from it starts from that, and ``wait4`` gives its own rusage (children
included: ``RUSAGE_CHILDREN`` of the command are folded into it by the kernel).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    out, sep, *cmd = argv
    if sep != "--" or not cmd:
        raise SystemExit("usage: python -m bench.rusage OUT.json -- CMD ...")
    start = time.perf_counter()
    proc = subprocess.Popen(cmd)  # stdout/stderr inherited
    _, status, usage = os.wait4(proc.pid, 0)
    record = {
        "wall_s": round(time.perf_counter() - start, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "cpu_user_s": round(usage.ru_utime, 3),
        "cpu_system_s": round(usage.ru_stime, 3),
        "launcher_peak_rss_mb": round(
            __import__("resource").getrusage(__import__("resource").RUSAGE_SELF).ru_maxrss / 1024, 1
        ),
    }
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(record, fh)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
