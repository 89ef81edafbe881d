"""The protected-name scan's speed: builds a tree of about N entries (directories of files, a few repositories,
a node_modules and a virtualenv the scan skips) and prints entries/s for netjail.jail.protected.scan.

    .venv/bin/python bench/scan.py              # 100,000 entries, 5 runs, the median
    .venv/bin/python bench/scan.py --entries 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from netjail.jail.protected import DEFAULT_SCAN_LIMIT, scan


def build(root: Path, entries: int) -> None:
    """Directories of 20 files, 5 levels deep; 10 git repositories; a node_modules and a .venv (skipped)."""
    made = 0
    index = 0
    while made < entries:
        directory = (
            root / f"d{index % 10}" / f"e{index // 10 % 10}" / f"f{index // 100 % 10}" / f"g{index // 1000}"
        )
        directory.mkdir(parents=True, exist_ok=True)
        for i in range(20):
            (directory / f"file{i}.py").touch()
        made += 21
        index += 1
    for i in range(10):
        subprocess.run(["git", "init", "-q", str(root / f"d{i}" / "repo")], check=True)
    (root / "node_modules" / "pkg").mkdir(parents=True)
    (root / ".venv" / "lib").mkdir(parents=True)
    (root / ".venv" / "pyvenv.cfg").touch()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp).resolve()
        build(root, args.entries)
        scan([root], installation=[])  # warm the dentry cache, as a second run in the same tree would be
        times, seen = [], 0
        for _ in range(args.repeat):
            start = time.perf_counter()
            seen = scan([root], installation=[]).entries
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    rate = seen / median
    print(f"scan: {seen} entries in {median * 1000:.0f} ms (median of {args.repeat}): {rate:,.0f} entries/s")
    print(f"default budget {DEFAULT_SCAN_LIMIT:,} entries ≈ {DEFAULT_SCAN_LIMIT / rate:.1f} s at this rate")


if __name__ == "__main__":
    main()
