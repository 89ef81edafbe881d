#!/usr/bin/env python3
"""What credential injection (docs/credentials.md) costs: the same runs with and without a masked credential.

    .venv/bin/python bench/credentials.py [--repeat 5] [--requests 200]

Cases, each a fresh netjail run against a loopback HTTPS origin (a trustme CA; nothing leaves the machine):
- 200 kept-alive GETs with `Authorization: Bearer $API_TOKEN` (headers scanned and swapped on each request);
- 20 POSTs of a 1 MB JSON body holding the token (the body streamed through the swap).
Each is run with `API_TOKEN` passed in as it is (`envPassthrough`, no injection) and masked (`credentials.envVars`,
injected at the origin). Prints curl's own median time per request, and the ratio masked / passed through. The
machine's load moves these figures: compare the two columns of one run, never runs from different moments.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import ssl
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import trustme  # noqa: E402

from tests.support import servers  # noqa: E402

TOKEN = "sk-bench-" + secrets.token_urlsafe(30)
NAME = "origin.test"
WRITE_OUT = "%{http_code} %{time_total}\\n"


def netjail() -> str:
    return str(Path(sys.executable).parent / "netjail")


def settings(work: Path, port: int, ca: Path, masked: bool) -> Path:
    path = work / f"settings-{'masked' if masked else 'plain'}.json"
    data: dict = {
        "network": {
            "allowedDomains": [NAME],
            "deniedDomains": [],
            "hosts": {NAME: "127.0.0.1"},
            "tlsTerminate": {"extraCaCertPaths": [str(ca)]},
        },
        "filesystem": {"allowWrite": ["."], "denyWrite": [], "denyRead": []},
    }
    if masked:
        data["credentials"] = {"envVars": [{"name": "API_TOKEN", "mode": "mask", "injectHosts": [NAME]}]}
    else:
        data["envPassthrough"] = ["API_TOKEN"]
    path.write_text(json.dumps(data))
    return path


def curl_times(cfg: Path, command: str, env: dict[str, str], cwd: Path) -> list[float]:
    done = subprocess.run(
        [netjail(), "-s", str(cfg), "-c", command],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    rows = [line.split() for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not rows or any(code != "200" for code, _ in rows):
        raise SystemExit(f"bench: a run failed (exit {done.returncode}): {done.stderr[-500:]}")
    return [float(seconds) for _, seconds in rows[1:]]  # the first opens the connection


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="netjail-bench-credentials-"))
    servers.OriginHandler.disable_nagle_algorithm = True  # as bench/run.py: no delayed-ACK stalls
    ca = trustme.CA()
    ca_path = work / "origin-ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(NAME, "127.0.0.1").configure_cert(context)
    origin = servers.start_origin("bench-credentials", context)
    (work / "body.json").write_text(json.dumps({"key": "@TOKEN@", "pad": "x" * 1_000_000}))
    url = f"https://{NAME}:{origin.port}"
    curl = "curl -sS --max-time 30"
    each = f"-o /dev/null -w '{WRITE_OUT}' -H \"Authorization: Bearer $API_TOKEN\""
    gets = " --next ".join(f"{each} {url}/get{i}" for i in range(args.requests + 1))  # one connection
    cases = {
        f"{args.requests} kept-alive GETs, token in a header": f"{curl} {gets}",
        "20 POSTs of a 1 MB JSON body holding the token": (
            'sed "s/@TOKEN@/$API_TOKEN/" body.json > sent.json; for i in $(seq 21); do '
            f"{curl} -o /dev/null -w '{WRITE_OUT}' -H 'Content-Type: application/json' --data-binary @sent.json "
            f"{url}/post; done"
        ),
    }
    env = {**os.environ, "API_TOKEN": TOKEN, "NETJAIL_STATE_DIR": str(work / "state")}
    configs = {masked: settings(work, origin.port, ca_path, masked) for masked in (False, True)}
    for name, command in cases.items():
        medians: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.repeat):
            for masked, cfg in configs.items():  # interleaved: load hits both alike
                medians[masked].append(statistics.median(curl_times(cfg, command, env, work)))
        plain, masked = statistics.median(medians[False]), statistics.median(medians[True])
        print(f"{name:50} passed through {plain * 1000:7.2f} ms   masked {masked * 1000:7.2f} ms   "
              f"× {masked / plain:.2f}")  # fmt: skip
    origin.server.shutdown()


if __name__ == "__main__":
    main()
