#!/usr/bin/env python3
"""How long the flows commands take on a large run, and how much memory they use.

Run with the project's interpreter:  .venv/bin/python bench/flows_read.py [--records 100000]

Writes a synthetic run (run_start, N flow records of realistic shape and mix, run_end) into a temporary
NETJAIL_STATE_DIR, then times the real `netjail` command on it: the flows table (piped, and on a terminal
through `script` when it exists), `--json`, a filter, `audit --json`, `audit --html`, `why --json` and
`runs`. Prints wall time and peak RSS for each. Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.unit.inspect.test_flows_pure import synthetic_run  # noqa: E402


def netjail() -> str:
    candidate = Path(sys.executable).parent / "netjail"
    return str(candidate) if candidate.exists() else "netjail"


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, int, int]:
    """(seconds, peak RSS of that child in MB, bytes it wrote to stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    written = 0
    while chunk := proc.stdout.read(1 << 20):
        written += len(chunk)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}")
    return elapsed, usage.ru_maxrss // 1024, written


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="netjail-bench-flows-"))
    try:
        run_dir = state / "runs" / "20260101T000000.000Z-bench0"
        t0 = time.perf_counter()
        synthetic_run(run_dir, args.records, random.Random(1))
        size = (run_dir / "flows.jsonl").stat().st_size
        print(
            f"synthetic run: {args.records} flows, {size / 1e6:.1f} MB, written in {time.perf_counter() - t0:.1f} s"
        )
        env = {**os.environ, "NETJAIL_STATE_DIR": str(state), "COLUMNS": "160"}
        nj = netjail()
        html = state / "report.html"
        cases = [
            ("flows (piped)", [nj, "flows"]),
            ("flows --json", [nj, "flows", "--json"]),
            ("flows --denied --host '*.example.test'", [nj, "flows", "--denied", "--host", "*.example.test"]),
            ("audit --json", [nj, "audit", "--json"]),
            ("audit --html", [nj, "audit", "--html", str(html)]),
            ("why --json", [nj, "why", "--json"]),
            ("runs", [nj, "runs"]),
        ]
        if shutil.which("script"):
            cases.insert(1, ("flows (terminal, rich)", ["script", "-qec", f"{nj} flows", "/dev/null"]))
        print(f"{'command':42} {'seconds':>8} {'peak RSS MB':>12} {'output MB':>10}")
        for label, argv in cases:
            seconds, rss, out = timed(argv, env)
            print(f"{label:42} {seconds:8.2f} {rss:12d} {out / 1e6:10.1f}")
    finally:
        shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
