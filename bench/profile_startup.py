#!/usr/bin/env python3
"""Where netjail's start-up and tear-down time goes. The numbers behind bench/PROFILE.md.

    .venv/bin/python bench/profile_startup.py [--netjail-ref HEAD] [--runs 7]

Measures, without changing netjail (section 4 drives `netjail.proxy.process` directly and knows its interface up to
a66e9db; later versions skip it):
  1. import cost of the supervisor's and the proxy's module sets (fresh interpreter each, median of --runs);
  2. `-X importtime`: the heaviest imports of each set;
  3. the timeline of `netjail -d` runs (its own timestamps, plus the command's `date +%s%N`);
  4. the proxy process alone (`python -I -m netjail.proxy.process` with a listener made here): spawn → ready, and
     SIGTERM → exit; and a cProfile of it up to ready;
  5. a cProfile of the supervisor (`netjail -c true`): netjail's own functions by cumulative time.
Everything stays on loopback; the origin servers are bench/run.py's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import itertools
import json
import os
import pstats
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import run as bench  # noqa: E402  (bench/run.py: snapshots, origins)

CLI_SETS = {
    "interpreter only (`pass`)": "pass",
    "netjail.cli.group (click)": "import netjail.cli.group",
    "netjail.utils.logs (structlog → rich)": "import netjail.utils.logs",
    "netjail.settings (pydantic models)": "import netjail.settings",
    "netjail.proxy.ca (cryptography.x509)": "import netjail.proxy.ca",
    "netjail.run.runner": "import netjail.run.runner",
    "everything `netjail run` imports": "import netjail.cli.group, netjail.utils.logs, netjail.run.runner, netjail.inspect.summary, netjail.jail.linux.bwrap",
}
PROXY_SETS = {
    "mitmproxy.options + master": "import mitmproxy.options, mitmproxy.master",
    "mitmproxy.addons (default_addons)": "import mitmproxy.addons",
    "netjail.addons.policy + recorder": "import netjail.addons.policy, netjail.addons.recorder",
    "everything proxyd imports": "import netjail.proxy.process, mitmproxy.options, mitmproxy.addons, mitmproxy.master, "
    "mitmproxy.proxy.mode_servers, netjail.addons.policy, netjail.addons.recorder",
}
OWN_FUNCTIONS = (
    "group.py:.*\\(run\\)", "runner.py:.*\\(run\\)", "load.py:.*\\(load_settings\\)", "ca.py:.*\\(create_run_ca\\)",
    "paths.py:.*\\(path_rules\\)", "bwrap.py:.*\\(launch\\)", "runner.py:.*\\(_start_proxy\\)", "supervise.py:.*\\(wait\\)",
    "runner.py:.*\\(_stop_proxy\\)", "summary.py:.*\\(render\\)", "runner.py:.*\\(count_verdicts\\)",
    "rundir.py:.*\\(create\\)", "environment.py:.*\\(jail_environment\\)", "bwrap.py:.*\\(environment\\)",
)  # fmt: skip


GATE = bench.QuietGate(0.25, 10)  # wait (bounded) for a quiet machine before each measurement


def wall(argv: list[str], **kw) -> float:
    GATE.wait()
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, **kw)
    return time.perf_counter() - t0


def ms(x: float) -> str:
    return f"{x * 1000:.0f}"


def import_costs(python: str, runs: int) -> list[tuple[str, float, float]]:
    rows = []
    for sets in (CLI_SETS, PROXY_SETS):
        for label, code in sets.items():
            times = [wall([python, "-I", "-c", code]) for _ in range(runs)]
            rows.append((label, statistics.median(times), min(times)))
    return rows


def importtime(python: str, code: str, top: int = 14) -> tuple[float, list[tuple[int, int, str]]]:
    done = subprocess.run(
        [python, "-I", "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    )
    entries = []
    for line in done.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if m:
            entries.append((int(m[1]), int(m[2]), len(m[3]) // 2, m[4]))
    total = sum(cum for _, cum, depth, _ in entries if depth == 0)
    # the packages that cost most, as a whole (first or second level of the import tree)
    heavy = sorted(((cum, depth, name) for _, cum, depth, name in entries if depth <= 2), reverse=True)[:top]
    return total / 1e6, [(cum, depth, name) for cum, depth, name in heavy]


DEBUG_LINE = re.compile(r"^(\d\d:\d\d:\d\d\.\d{6}) \[debug\s*\] (\S+)")


def timeline(
    netjail: str, settings: Path, env: dict, cwd: Path, command: str, runs: int
) -> dict[str, list[float]]:
    phases: dict[str, list[float]] = {}
    today = dt.date.today()
    for _ in range(runs):
        GATE.wait()
        start = time.time()
        done = subprocess.run([netjail, "-d", "-s", str(settings), "-c", command], capture_output=True, text=True,
                              env=env, cwd=cwd, stdin=subprocess.DEVNULL, timeout=60)  # fmt: skip
        end = time.time()
        events: dict[str, float] = {}
        for line in done.stderr.splitlines():
            m = DEBUG_LINE.match(line)
            if m and m[2] not in events:
                t = dt.datetime.combine(today, dt.time.fromisoformat(m[1])).timestamp()
                events[m[2]] = t
                if m[2] == "proxy.ready":
                    events["proxy.ready"] = t
        stamps = [int(x) / 1e9 for x in done.stdout.split() if x.isdigit()]
        marks = {"spawn": start, **events}
        if stamps:
            marks["command starts"] = stamps[0]
            marks["command ends"] = stamps[-1]
        marks["netjail exits"] = end
        order = sorted(marks.items(), key=lambda kv: kv[1])
        for (a, ta), (b, tb) in itertools.pairwise(order):
            phases.setdefault(f"{a} → {b}", []).append(tb - ta)
        phases.setdefault("total", []).append(end - start)
    return phases


def proxy_alone(
    python: str,
    settings: Path,
    scratch: Path,
    runs: int,
    profile_to: Path | None = None,
    request: bytes | None = None,
) -> dict:
    from netjail.proxy.ca import create_run_ca

    ready, stop = [], []
    usage = subprocess.run(
        [python, "-I", "-m", "netjail.proxy.process", "--help"], capture_output=True, text=True
    ).stdout
    if "--control-fd" in usage:  # since the proxy starts first and is configured over a control socket
        return proxy_alone_configured(python, settings, scratch, runs, profile_to, request)
    fd_flag = (
        "--proxy-fds" if "--proxy-fds" in usage else "--listen-fds"
    )  # renamed when transparent capture came
    for i in range(runs):
        run_dir = scratch / f"proxy-{i}"
        (run_dir / "proxy").mkdir(parents=True)
        ca = create_run_ca(run_dir / "proxy")
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        status_r, status_w = os.pipe()
        prefix = [python, "-I"] + (["-m", "cProfile", "-o", str(profile_to)] if profile_to and i == 0 else [])
        argv = prefix + [
            "-m", "netjail.proxy.process", "--settings", str(settings), "--record-dir", str(run_dir),
            "--confdir", str(ca.confdir), "--upstream-trust", str(ca.host_bundle),
            fd_flag, str(listener.fileno()), "--status-fd", str(status_w), "--parent", str(os.getpid()),
            "--log-file", str(run_dir / "proxy.log"),
        ]  # fmt: skip
        GATE.wait()
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, pass_fds=[listener.fileno(), status_w], stdin=subprocess.DEVNULL)
        os.close(status_w)
        ok = select.select([status_r], [], [], 30)[0] and b"ready" in os.read(status_r, 64)
        t1 = time.perf_counter()
        if ok and request:  # one proxied request (as a jailed curl would make), then stop the proxy
            with socket.create_connection(listener.getsockname(), timeout=10) as client:
                client.sendall(request)
                client.recv(65536)
        # proxyd installs its SIGTERM handler just after it reports ready: a SIGTERM at once would kill it
        # with the default action (fast, and no `done` hooks), so let it settle first
        time.sleep(0.3)
        t1 = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        if proc.returncode < 0:
            print(f"  (proxyd died of signal {-proc.returncode} instead of shutting down)")
        t2 = time.perf_counter()
        os.close(status_r)
        listener.close()
        if not ok:
            log = run_dir / "proxy.log"
            raise RuntimeError(
                f"proxyd did not become ready: {log.read_text()[-500:] if log.exists() else 'no log'}"
            )
        if not (profile_to and i == 0):
            ready.append(t1 - t0)
            stop.append(t2 - t1)
    return {"ready": ready, "stop": stop}


def proxy_alone_configured(
    python: str, settings: Path, scratch: Path, runs: int, profile_to: Path | None, request: bytes | None
) -> dict:
    """proxy_alone for the proxy that is spawned first and then sent its configuration and sockets."""
    from netjail.proxy.ca import create_run_ca

    ready, stop = [], []
    for i in range(runs):
        run_dir = scratch / f"proxy-{i}"
        (run_dir / "proxy").mkdir(parents=True)
        ca = create_run_ca(run_dir / "proxy")
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        control, remote = socket.socketpair()
        prefix = [python, "-I"] + (["-m", "cProfile", "-o", str(profile_to)] if profile_to and i == 0 else [])
        argv = prefix + [
            "-m",
            "netjail.proxy.process",
            "--control-fd",
            str(remote.fileno()),
            "--parent",
            str(os.getpid()),
        ]
        config = {
            "settings": str(settings), "record_dir": str(run_dir), "confdir": str(ca.confdir),
            "upstream_trust": str(ca.host_bundle), "log_file": str(run_dir / "proxy.log"),
            "capture_mode": "proxy-variables", "roles": ["proxy"],
        }  # fmt: skip
        GATE.wait()
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, pass_fds=[remote.fileno()], stdin=subprocess.DEVNULL)
        remote.close()
        socket.send_fds(control, [json.dumps(config).encode()], [listener.fileno()])
        ok = select.select([control], [], [], 30)[0] and b"ready" in control.recv(64)
        t1 = time.perf_counter()
        if ok and request:
            with socket.create_connection(listener.getsockname(), timeout=10) as client:
                client.sendall(request)
                client.recv(65536)
        time.sleep(0.3)
        t1 = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        t2 = time.perf_counter()
        control.close()
        listener.close()
        if not ok:
            log = run_dir / "proxy.log"
            raise RuntimeError(
                f"proxyd did not become ready: {log.read_text()[-500:] if log.exists() else 'no log'}"
            )
        if not (profile_to and i == 0):
            ready.append(t1 - t0)
            stop.append(t2 - t1)
    return {"ready": ready, "stop": stop}


def top_profile(path: Path, patterns: tuple[str, ...] | None, limit: int = 25) -> str:
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.sort_stats("cumulative")
    if patterns:
        for pattern in patterns:
            stats.print_stats(pattern)
    else:
        stats.print_stats(limit)
    lines = [line for line in out.getvalue().splitlines() if re.match(r"\s*\d", line)]
    return "\n".join(dict.fromkeys(lines))


def inner(args: argparse.Namespace) -> None:
    python = sys.executable
    netjail = str(Path(python).parent / "netjail")
    scratch = Path(tempfile.mkdtemp(prefix="netjail-profile-"))
    origins = None
    try:
        print(f"# netjail start-up profile — {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}")
        print(f"netjail: {args.label}; python {sys.version.split()[0]}; {os.cpu_count()} CPUs; "
              f"load {os.getloadavg()[0]:.2f}\n")  # fmt: skip

        print(
            f"## 1. Import cost, fresh `python -I -c …` (median / min of {args.runs}, ms, interpreter included)"
        )
        for label, med, best in import_costs(python, args.runs):
            print(f"  {ms(med):>5} / {ms(best):>5}  {label}")

        for title, code in (("netjail run (supervisor)", CLI_SETS["everything `netjail run` imports"]),
                            ("proxyd", PROXY_SETS["everything proxyd imports"])):  # fmt: skip
            total, heavy = importtime(python, code)
            print(
                f"\n## 2. -X importtime, {title}: {total * 1000:.0f} ms of imports (importtime inflates it)"
            )
            for cum, depth, name in heavy:
                print(f"  {cum / 1000:>6.0f} ms  {'  ' * depth}{name}")

        origins = bench.start_origins(scratch)
        work = scratch / "work"
        work.mkdir()
        tools = bench.make_tools(origins, scratch, None, Path(netjail))
        nj = tools["netjail"]
        settings = Path(nj.prefix[2])
        url = nj.url(origins, "http")
        for label, command in (
            ("`-c 'date +%s%N'` (no network)", "date +%s%N"),
            ("`-c 'date; curl <origin>; date'` (first request waits for the proxy)",
             f"date +%s%N; curl -sS -m 10 -o /dev/null {url}; date +%s%N"),
        ):  # fmt: skip
            phases = timeline(netjail, settings, nj.env, work, command, args.runs)
            print(f"\n## 3. Timeline of `netjail -d` {label}, median of {args.runs} (ms)")
            for name, values in phases.items():
                print(f"  {ms(statistics.median(values)):>5}  {name}")

        print(f"\n## 4. The proxy process alone (median of {args.runs}, ms)")
        try:
            alone = proxy_alone(python, settings, scratch / "alone", args.runs)
        except RuntimeError as e:
            alone = None
            print(f"  skipped: {e}")
        if alone is not None:
            print(
                f"  {ms(statistics.median(alone['ready'])):>5}  spawn → ready (writes `ready` on the status fd)"
            )
            print(
                f"  {ms(statistics.median(alone['stop'])):>5}  SIGTERM → exit, idle proxy (0.3 s after ready)"
            )
            port = origins.http_port
            request = f"GET http://{bench.ORIGIN_NAME}:{port}/ HTTP/1.1\r\nHost: {bench.ORIGIN_NAME}:{port}\r\n\r\n".encode()
            served = proxy_alone(python, settings, scratch / "served", args.runs, request=request)
            print(f"  {ms(statistics.median(served['stop'])):>5}  SIGTERM → exit after serving one request")
            prof = scratch / "proxyd.prof"
            proxy_alone(python, settings, scratch / "alone-prof", 1, profile_to=prof)
            print("\n  cProfile of proxyd, spawn to exit (cumulative s; profiling slows it):")
            print(top_profile(prof, None, 30))

        print("\n## 5. cProfile of the supervisor, `netjail -c true` (cumulative s)")
        cli_prof = scratch / "cli.prof"
        subprocess.run([python, "-m", "cProfile", "-o", str(cli_prof), netjail, "-s", str(settings), "-c", "true"],
                       env=nj.env, cwd=work, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)  # fmt: skip
        print(top_profile(cli_prof, OWN_FUNCTIONS))
        print(
            f"\nquiet gate: {GATE.noisy_rounds} of {GATE.rounds} measurements ran with the CPUs more than "
            f"{GATE.threshold:.0%} busy; {GATE.waited_s:.0f} s waited"
        )
    finally:
        if origins is not None:
            origins.close()
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--netjail-ref", help="profile this git commit (a snapshot) instead of the working tree"
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--inner", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner is not None:
        args.label = args.inner
        inner(args)
        return 0
    if not args.netjail_ref:
        args.label = "working tree"
        inner(args)
        return 0
    scratch = Path(tempfile.mkdtemp(prefix="netjail-profile-snap-"))
    try:
        launcher, commit = bench.snapshot_netjail(args.netjail_ref, scratch)
        python = str(launcher.parent / "python")
        argv = [
            python,
            str(Path(__file__).resolve()),
            "--runs",
            str(args.runs),
            "--inner",
            f"snapshot of {commit}",
        ]
        return subprocess.run(argv, timeout=1800).returncode
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
