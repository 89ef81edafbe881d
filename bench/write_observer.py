"""What the write observer (netjail/jail/linux/write_observer.py) costs a write-heavy command: the same netjail run
with `record.refusedWrites` true and false, interleaved, and the difference per write call.

The command creates N files in the project (one openat each, through the observer's fast path: a writable
mount), then removes them (one unlinkat each), so it makes 2 × N observed calls.

    .venv/bin/python bench/write_observer.py                 # 5,000 files, 5 rounds, medians
    .venv/bin/python bench/write_observer.py --files 20000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

NETJAIL = str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "netjail")


def settings(directory: Path, observe: bool) -> Path:
    path = directory / f"settings-{'on' if observe else 'off'}.json"
    path.write_text(
        json.dumps(
            {
                "network": {"allowedDomains": [], "deniedDomains": []},
                "filesystem": {"denyRead": [], "allowWrite": ["."], "denyWrite": []},
                "record": {"refusedWrites": observe},
            }
        )
    )
    return path


def timed(cfg: Path, work: Path, files: int, env: dict[str, str]) -> float:
    command = f"for i in $(seq {files}); do : > f$i; done; rm -f f*"
    start = time.perf_counter()
    subprocess.run([NETJAIL, "-s", str(cfg), "-c", command], cwd=work, env=env, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="netjail-bench-writes-"))
    try:
        work = directory / "work"
        work.mkdir()
        env = {**os.environ, "NETJAIL_STATE_DIR": str(directory / "state")}
        on, off = settings(directory, True), settings(directory, False)
        times: dict[str, list[float]] = {"on": [], "off": []}
        for _ in range(args.rounds):
            times["on"].append(timed(on, work, args.files, env))
            times["off"].append(timed(off, work, args.files, env))
        on_s, off_s = statistics.median(times["on"]), statistics.median(times["off"])
        calls = 2 * args.files
        print(f"{calls} observed write calls, median of {args.rounds} rounds")
        print(f"  observer on : {on_s:.3f} s")
        print(f"  observer off: {off_s:.3f} s")
        print(f"  cost: {(on_s - off_s) / calls * 1e6:.1f} µs per write call ({on_s / off_s:.2f}×)")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
