#!/usr/bin/env python3
"""What asking costs (network.ask, netjail/run/ask.py): how long a held request waits between the question and its
answer when the answer is given at once, on the agent channel — the harness's --agent-fd outside the jail, and the
command's own channel (network.ask.agentChannel) inside it.

Run with the project's interpreter:  .venv/bin/python bench/ask.py [--requests 50]

Inside the jail a Python client GETs a loopback origin, one new connection per request, alternating between a host
that allowedDomains covers (never asked) and one it does not (asked each time, answered "once" as soon as the
question arrives). Prints, per channel, the median request time of each and their difference (what the question
adds, as the client sees it), and the median `waited_ms` of the `ask` records (question to answer, as netjail
measures it). The machine's load moves these figures: compare cases run together. Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# Inside the jail: argv[1] allowed URL, argv[2] asked URL, argv[3] requests; with SANDBOX_AGENT_CHANNEL_FD set it
# answers its own questions. Prints {"allowed": [s, …], "asked": [s, …]}.
CLIENT = r"""
import json, os, socket, sys, threading, time, urllib.request

if "SANDBOX_AGENT_CHANNEL_FD" in os.environ:
    channel = socket.socket(fileno=int(os.environ["SANDBOX_AGENT_CHANNEL_FD"]))
    lines = channel.makefile("rb")
    lines.readline()
    channel.sendall(b'{"type":"hello","protocol_version":1}\n')

    def answer():
        for line in lines:
            message = json.loads(line)
            if message["type"] == "permission_request":
                channel.sendall(json.dumps({"type": "permission_response", "id": message["id"],
                                            "behavior": "allow"}).encode() + b"\n")

    threading.Thread(target=answer, daemon=True).start()
time.sleep(0.5)  # the hello reaches netjail before the first question
allowed, asked, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
times = {"allowed": [], "asked": []}
for url in (allowed, asked):
    urllib.request.urlopen(url, timeout=30).read()  # warm-up, not counted
for _ in range(count):  # interleaved, so that a change of load meanwhile moves both alike
    for name, url in (("allowed", allowed), ("asked", asked)):
        started = time.perf_counter()
        urllib.request.urlopen(url, timeout=30).read()
        times[name].append(time.perf_counter() - started)
print(json.dumps(times), flush=True)
"""


class Origin(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, *args: object) -> None:
        pass


def netjail() -> str:
    return str(Path(sys.executable).parent / "netjail")


def harness(sock: socket.socket) -> None:
    """The --agent-fd end: hello, then "once" for every question, at once."""
    lines = sock.makefile("rb")
    for line in lines:
        message = json.loads(line)
        if message["type"] == "hello":
            sock.sendall(b'{"type":"hello","protocol_version":1}\n')
        elif message["type"] == "permission_request":
            answer = {"type": "permission_response", "id": message["id"], "behavior": "allow"}
            sock.sendall(json.dumps(answer).encode() + b"\n")


def run_case(work: Path, port: int, requests: int, jailed: bool) -> tuple[dict, list[int]]:
    ask = {"enabled": True, "timeoutSeconds": 30, **({"agentChannel": True} if jailed else {})}
    network = {"allowedDomains": [f"allowed.test:{port}"], "deniedDomains": [], "ask": ask,
               "hosts": {"allowed.test": "127.0.0.1", "asked.test": "127.0.0.1"}}  # fmt: skip
    settings = work / f"settings-{'jailed' if jailed else 'harness'}.json"
    filesystem = {"allowWrite": ["."], "denyWrite": [], "denyRead": []}
    settings.write_text(json.dumps({"network": network, "filesystem": filesystem}))
    (work / "client.py").write_text(CLIENT)
    state = work / ("state-jailed" if jailed else "state-harness")
    env = {**os.environ, "NETJAIL_STATE_DIR": str(state)}
    argv = [netjail(), "-s", str(settings)]
    urls = [f"http://allowed.test:{port}/", f"http://asked.test:{port}/", str(requests)]
    pass_fds: tuple[int, ...] = ()
    ours = None
    if not jailed:
        ours, theirs = socket.socketpair()
        argv += ["--agent-fd", str(theirs.fileno())]
        pass_fds = (theirs.fileno(),)
        threading.Thread(target=harness, args=(ours,), daemon=True).start()
    argv += ["--", sys.executable, "-u", str(work / "client.py"), *urls]
    done = subprocess.run(
        argv, cwd=work, env=env, pass_fds=pass_fds, capture_output=True, text=True, timeout=600
    )
    if not jailed:
        theirs.close()
    if done.returncode != 0 or not done.stdout.strip():
        sys.exit(f"netjail exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    records = [
        json.loads(line) for line in (state / "runs" / "latest" / "flows.jsonl").read_text().splitlines()
    ]
    waited = [r["waited_ms"] for r in records if r["event"] == "ask"]
    if ours is not None:
        ours.close()
    return json.loads(done.stdout.splitlines()[-1]), waited


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    work = Path(tempfile.mkdtemp(prefix="netjail-bench-ask-"))
    for name, jailed in (("--agent-fd (harness outside)", False), ("agentChannel (the command)", True)):
        times, waited = run_case(work, port, args.requests, jailed)
        allowed, asked = statistics.median(times["allowed"]), statistics.median(times["asked"])
        print(
            f"{name:30} GET allowed {allowed * 1000:6.2f} ms  asked {asked * 1000:6.2f} ms  "
            f"difference {(asked - allowed) * 1000:6.2f} ms  waited_ms median {statistics.median(waited):.0f} "
            f"(max {max(waited)}, {len(waited)} questions)"
        )
    server.shutdown()


if __name__ == "__main__":
    main()
