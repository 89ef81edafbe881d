#!/usr/bin/env python3
"""What the relay terminal (netjail/run/terminal.py) costs: a run on a pseudo-terminal against the same run with
no terminal, and a command writing a lot of output through the relay against the same command writing to a
pseudo-terminal directly (no netjail).

Run with the project's interpreter:  .venv/bin/python bench/terminal_relay.py [--repeat 5] [--megabytes 50]

Prints the median wall time of each case. The machine's load moves these figures a lot: compare cases run
together, never figures from different moments. Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.terminal import take_terminal  # noqa: E402


def netjail() -> str:
    return str(Path(sys.executable).parent / "netjail")


def on_terminal(argv: list[str], env: dict[str, str], cwd: str) -> float:
    """Wall time of `argv` as the foreground of a fresh pseudo-terminal whose output is read as it comes."""
    master, slave = os.openpty()
    started = time.monotonic()
    proc = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True, preexec_fn=take_terminal,
        env=env, cwd=cwd,
    )  # fmt: skip
    os.close(slave)
    while True:
        try:
            if not os.read(master, 65536):
                break
        except OSError:  # EIO: nothing holds the terminal any more
            break
    proc.wait()
    elapsed = time.monotonic() - started
    os.close(master)
    return elapsed


def without_terminal(argv: list[str], env: dict[str, str], cwd: str) -> float:
    started = time.monotonic()
    subprocess.run(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=cwd
    )
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--megabytes", type=int, default=50)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="netjail-bench-relay-")
    settings = Path(work) / "settings.json"
    filesystem = {"allowWrite": ["."], "denyWrite": [], "denyRead": []}
    settings.write_text(
        json.dumps({"network": {"allowedDomains": [], "deniedDomains": []}, "filesystem": filesystem})
    )
    env = {**os.environ, "NETJAIL_STATE_DIR": str(Path(work) / "state")}
    output = f"head -c {args.megabytes * 1000 * 1000} /dev/zero | base64 -w 100"
    jailed = [netjail(), "-s", str(settings), "-c"]
    cases = {
        "-c true, no terminal": lambda: without_terminal([*jailed, "true"], env, work),
        "-c true, on a terminal (relayed)": lambda: on_terminal([*jailed, "true"], env, work),
        f"{args.megabytes} MB of base64 to a terminal, no netjail": lambda: on_terminal(["bash", "-c", output], env, work),
        f"{args.megabytes} MB of base64 to a terminal, relayed": lambda: on_terminal([*jailed, output], env, work),
    }  # fmt: skip
    for name, case in cases.items():
        times = [case() for _ in range(args.repeat)]
        print(f"{name:55} median {statistics.median(times):.3f} s  (min {min(times):.3f})")


if __name__ == "__main__":
    main()
