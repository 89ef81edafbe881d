#!/usr/bin/env python3
"""netjail benchmark: the same workloads with no sandbox (bare), under srt, and under netjail.

Run with the project's interpreter:  .venv/bin/python bench/run.py [--quick] [--registry] [--only CASE,…]

Every network target is an origin server this script starts on 127.0.0.1 (HTTP, and HTTPS with a trustme CA),
except in the opt-in `--registry` case, which runs `pip download` against the index pip is configured for (its
hosts are derived from pip's configuration at run time; none is written here). See bench/README.md.

Each sample is one sandboxed process, timed from spawn to exit (wall) and, where the workload reports it, from
inside (curl's own `time_total`). Tools run round-robin within a case so that drift hits them alike. Every run has
a timeout; the script is a child subreaper, so anything a sandbox leaves behind is found, reported and killed.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import importlib.util
import json
import math
import os
import platform
import select
import shlex
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SRT_DEFAULT = Path("/tmp/srt/node_modules/.bin/srt")
ORIGIN_NAME = "origin.test"  # pinned to 127.0.0.1 for netjail with network.hosts
DENIED_NAME = "denied.test"  # allowed by nobody
DOWNLOAD_BYTES = 100 * 1024 * 1024
REGISTRY_PACKAGES = ("six", "idna", "iniconfig", "pluggy", "pyparsing")  # small pure-Python wheels
NPM_PACKAGES = ("ms@2.1.3", "is-number@7.0.0", "isexe@2.0.0", "inherits@2.0.4", "escape-string-regexp@4.0.0")
CONCURRENT_RUNS, CONCURRENT_GETS = 10, 50
PR_SET_CHILD_SUBREAPER = 36
SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
)

# --------------------------------------------------------------------------------------------------------------
# Origins: the test suite's own origin server (tests/support/servers.py), imported rather than copied.


def _load_test_servers() -> Any:
    spec = importlib.util.spec_from_file_location(
        "netjail_test_servers", REPO / "tests" / "support" / "servers.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@dataclass
class Origins:
    http_port: int
    https_port: int
    ca_path: Path
    process: subprocess.Popen

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()  # type: ignore[union-attr]  # EOF on stdin: the server exits
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def serve_origins(workdir: Path) -> None:
    """The origin process (`run.py --serve-origins DIR`): HTTP and HTTPS servers on 127.0.0.1 until stdin closes.

    A process of its own, so that the bench process stays small (a child's peak RSS includes its parent's at
    fork time) and serving 100 MiB bodies competes with nothing in the process that keeps time."""
    import trustme

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: never outlive the bench
    servers = _load_test_servers()
    # The suite's handler leaves Nagle on: a TLS response then stalls ~40 ms on the client's delayed ACK, which
    # would swamp every HTTPS number here. This module is a private copy, so the tests are not affected.
    servers.OriginHandler.disable_nagle_algorithm = True
    ca = trustme.CA()
    ca_path = workdir / "origin-ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    http = servers.start_origin("http-origin", None)
    cert = ca.issue_cert(ORIGIN_NAME, "127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    https = servers.start_origin("https-origin", context)
    print(json.dumps({"http": http.port, "https": https.port, "ca": str(ca_path)}), flush=True)
    sys.stdin.read()  # until the bench closes the pipe or dies


def start_origins(workdir: Path, timeout: float = 30) -> Origins:
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve-origins", str(workdir)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""  # type: ignore[union-attr]
    if not line:
        proc.kill()
        proc.wait()
        raise RuntimeError("the origin servers did not start")
    info = json.loads(line)
    return Origins(info["http"], info["https"], Path(info["ca"]), proc)


# --------------------------------------------------------------------------------------------------------------
# Running one sample: bounded in time, with the resource usage of the whole tree, and no process left behind.


@dataclass
class Sample:
    wall_s: float
    returncode: int
    stdout: str
    stderr: str
    maxrss_kib: int
    cpu_s: float  # user + system CPU of the sandbox's process and every descendant it waited for
    start_ns: int  # CLOCK_REALTIME at spawn, comparable with `date +%s%N` inside the sandbox
    end_ns: int
    timed_out: bool = False


class Runner:
    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.current_pid: int | None = None
        self.known: set[int] = set()  # long-lived children of the bench itself (the origin servers)
        self.leaks: list[dict[str, Any]] = []
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            print(
                "bench: warning: cannot become a child subreaper; leftover processes go undetected",
                file=sys.stderr,
            )

    def run(self, argv: list[str], env: dict[str, str], cwd: Path, timeout: float, label: str) -> Sample:
        out_path, err_path = self.scratch / "stdout", self.scratch / "stderr"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            start_ns = time.time_ns()
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
            self.current_pid = proc.pid
            pidfd = os.pidfd_open(proc.pid)
            try:
                ready, _, _ = select.select([pidfd], [], [], timeout)
                t1 = time.perf_counter()
                end_ns = time.time_ns()
                timed_out = not ready
                if timed_out:
                    self._stop_group(proc.pid, pidfd)
                _, status, usage = os.wait4(proc.pid, 0)
            finally:
                os.close(pidfd)
                self.current_pid = None
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so that rusage is ours to read
        self.reap_orphans(label)
        return Sample(
            wall_s=t1 - t0,
            returncode=proc.returncode,
            stdout=out_path.read_text(errors="replace"),
            stderr=err_path.read_text(errors="replace"),
            maxrss_kib=usage.ru_maxrss,
            cpu_s=usage.ru_utime + usage.ru_stime,
            start_ns=start_ns,
            end_ns=end_ns,
            timed_out=timed_out,
        )

    def outside_cpu(self) -> float:
        """CPU seconds (own + reaped children's) of netjail processes outside the sample's process tree: a proxy
        forked by a per-user warm-proxy process is not a descendant of the sandbox, so wait4 would miss it. Counted
        as the change, over the sample, of utime+stime+cutime+cstime of every process running this bench's netjail
        (its venv in the command line) whose parent is not the bench; today there is none (the proxy is netjail's
        child, and its CPU is already in netjail's wait4 usage), so this adds 0."""
        venv = str(Path(sys.executable).parent.parent)
        total = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
                if venv.encode() not in cmdline or b"netjail" not in cmdline:
                    continue
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid() or int(entry.name) == self.current_pid:
                continue  # the sample's own tree is counted by wait4
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        return total / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _stop_group(pid: int, pidfd: int) -> None:
        """SIGTERM the sandbox's process group (netjail forwards it and stops its proxy), SIGKILL after 5 s."""
        for signum, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pid, signum)
            except ProcessLookupError:
                return
            if select.select([pidfd], [], [], grace)[0]:
                return

    def _children(self) -> list[int]:
        me = os.getpid()
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[1]) == me and int(entry) != self.current_pid and int(entry) not in self.known:
                found.append(int(entry))
        return found

    def reap_orphans(self, label: str, grace: float = 1.0) -> None:
        """Processes reparented to this subreaper outlived the sandbox that started them: give them `grace`
        seconds to exit, then record and kill them."""
        deadline = time.monotonic() + grace
        while True:
            live = []
            for pid in self._children():
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    continue
                if done == 0:
                    live.append(pid)
            if not live or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        for pid in live:
            try:
                cmdline = (
                    Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
            except OSError:
                cmdline = "?"
            self.leaks.append({"after": label, "pid": pid, "cmdline": cmdline.strip()[:200]})
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass

    def kill_current(self) -> None:
        if self.current_pid is not None:
            try:
                os.killpg(self.current_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# --------------------------------------------------------------------------------------------------------------
# A fixed netjail: `--netjail-ref REF` benchmarks a commit instead of the working tree, so that numbers belong to
# a known version (and two commits can be compared). The snapshot is `git archive REF`, installed editable into a
# venv whose other path entry is the project venv's site-packages (whose own editable hook is not run); editable,
# as the project's own install is, so that addons/ and configs/ map into the package as pyproject.toml says.


def snapshot_netjail(ref: str, scratch: Path, name: str = "netjail") -> tuple[Path, str]:
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", f"{ref}^{{commit}}"],
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    src = scratch / f"{name}-src"
    src.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    venv = scratch / f"{name}-venv"
    base = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True)
    site_dirs = [p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix)]
    target = next((venv / "lib").glob("python3*/site-packages"))
    (target / "netjail_bench_snapshot.pth").write_text("\n".join(site_dirs) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--disable-pip-version-check", "--no-deps", "--no-index", "--no-build-isolation", "-e", str(src)],
                   check=True)  # fmt: skip
    # byte-compile now: the supervisor honours PYTHONDONTWRITEBYTECODE and would otherwise compile on every run
    subprocess.run([str(venv / "bin" / "python"), "-m", "compileall", "-q", str(src)], check=True)
    launcher = venv / "bin" / "netjail"
    launcher.write_text(f"#!{venv}/bin/python\nimport sys\nfrom netjail.cli import main\nsys.exit(main())\n")
    launcher.chmod(0o755)
    check = subprocess.run([str(venv / "bin" / "python"), "-I", "-c", "import netjail; print(netjail.__file__)"],
                           capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    if not check.startswith(str(src)):
        raise RuntimeError(f"the snapshot imports netjail from {check}, not from {src}")
    return launcher, commit[:10]


# --------------------------------------------------------------------------------------------------------------
# Tools: how each one runs a command line, and how a client inside reaches the origins.


@dataclass
class Tool:
    name: str
    prefix: list[str]  # argv before the command string
    env: dict[str, str]
    host: str  # how the origins are named from inside
    curl: str  # curl options (shell words) for this tool
    proxied: bool = True

    def argv(self, command: str) -> list[str]:
        return [*self.prefix, command]

    def url(self, origins: Origins, scheme: str, path: str = "/") -> str:
        port = origins.http_port if scheme == "http" else origins.https_port
        return f"{scheme}://{self.host}:{port}{path}"


def base_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.setdefault("HOME", str(Path.home()))
    return env


def make_tools(origins: Origins, work: Path, srt: Path | None, netjail: Path) -> dict[str, Tool]:
    env = base_environment()
    # Clients outside netjail trust the host's roots plus the origin CA, as a real client does: OpenSSL 3 spends
    # ~45 ms loading a ~145-certificate bundle per process, and netjail's (and srt-tls's) clients pay it too.
    bundle = work / "client-bundle.pem"
    system = next((Path(p) for p in SYSTEM_BUNDLES if Path(p).is_file()), None)
    bundle.write_bytes((system.read_bytes() if system else b"") + origins.ca_path.read_bytes())
    ca = shlex.quote(str(bundle))
    tools = {
        "bare": Tool("bare", ["bash", "-c"], env, "127.0.0.1", f"--noproxy '*' --cacert {ca}", proxied=False),
    }
    if srt is not None:
        # srt denies names that resolve to loopback and cannot pin names, but an IP literal in allowedDomains is
        # "an explicit choice" it honours. Its NO_PROXY lists 127.0.0.1, so curl is told to use the proxy anyway.
        allowed = [f"127.0.0.1:{origins.http_port}", f"127.0.0.1:{origins.https_port}"]
        fs = {"denyRead": [], "allowWrite": ["."], "denyWrite": []}
        plain = work / "srt.json"
        plain.write_text(
            json.dumps({"network": {"allowedDomains": allowed, "deniedDomains": []}, "filesystem": fs})
        )
        tools["srt"] = Tool(
            "srt", [str(srt), "-s", str(plain), "-c"], env, "127.0.0.1", f"--noproxy '' --cacert {ca}"
        )
        # srt with its (experimental) TLS termination: the like-for-like comparison for intercepted HTTPS. Its
        # proxy verifies upstreams with Node's roots, so the origin CA reaches it through NODE_EXTRA_CA_CERTS; the
        # client inside trusts srt's bundle, which has extraCaCertPaths appended.
        tls = work / "srt-tls.json"
        network = {
            "allowedDomains": allowed,
            "deniedDomains": [],
            "tlsTerminate": {"extraCaCertPaths": [str(origins.ca_path)]},
        }
        tls.write_text(json.dumps({"network": network, "filesystem": fs}))
        tools["srt-tls"] = Tool(
            "srt-tls", [str(srt), "-s", str(tls), "-c"], {**env, "NODE_EXTRA_CA_CERTS": str(origins.ca_path)},
            "127.0.0.1", "--noproxy ''",
        )  # fmt: skip
    settings = work / "netjail.json"
    settings.write_text(
        json.dumps(
            {
                "network": {
                    "allowedDomains": [ORIGIN_NAME],
                    "deniedDomains": [],
                    "hosts": {ORIGIN_NAME: "127.0.0.1", DENIED_NAME: "127.0.0.1"},
                    "tlsTerminate": {"extraCaCertPaths": [str(origins.ca_path)]},
                },
                "filesystem": {"denyRead": [], "allowWrite": ["."], "denyWrite": []},
            }
        )
    )
    nj_env = {**env, "NETJAIL_STATE_DIR": str(work / "netjail-state")}
    tools["netjail"] = Tool("netjail", [str(netjail), "-s", str(settings), "-c"], nj_env, ORIGIN_NAME, "")
    return tools


# --------------------------------------------------------------------------------------------------------------
# A quiet machine: before each round, wait (bounded) until other processes leave the CPUs mostly idle.


def cpu_busy(interval: float = 0.25) -> float:
    """Fraction of all CPUs busy over `interval` (everything on the machine, the bench itself is idle here)."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields), idle

    total0, idle0 = sample()
    time.sleep(interval)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


@dataclass
class QuietGate:
    threshold: float  # busy fraction above which a round waits
    max_wait: float  # seconds; then the round runs anyway and is counted as noisy
    waited_s: float = 0.0
    noisy_rounds: int = 0
    rounds: int = 0
    busy: list[float] = field(default_factory=list)

    def wait(self) -> None:
        if self.threshold >= 1:
            return
        self.rounds += 1
        deadline = time.monotonic() + self.max_wait
        start = time.monotonic()
        while (busy := cpu_busy()) > self.threshold and time.monotonic() < deadline:
            time.sleep(0.5)
        self.busy.append(busy)
        self.waited_s += time.monotonic() - start
        if busy > self.threshold:
            self.noisy_rounds += 1


# --------------------------------------------------------------------------------------------------------------
# Cases


class CaseError(Exception):
    pass


@dataclass
class Metric:
    key: str
    label: str
    unit: str  # "s" (shown in ms), "MiB/s", "MiB"
    better: str = "lower"  # or "higher"


@dataclass
class Case:
    name: str
    title: str
    tools: tuple[str, ...]
    command: Callable[[Tool, Origins], str]
    parse: Callable[[Sample, Tool], dict[str, float]]
    metrics: list[Metric]
    repeat: int = 10
    warmup: int = 2
    timeout: float = 60.0
    note: str = ""
    setup: Callable[[Tool, Path], None] | None = None
    host_shell: bool = False  # the command is a host shell line that starts the tool itself (concurrent runs)


CURL_W = "%{http_code} %{http_connect} %{num_connects} %{time_total} %{size_download}\\n"
CURL_MAX_TIME = 10  # seconds per transfer: a stalled request shows up as code 000 instead of hanging the case


def curl(tool: Tool, url: str, *, warm: bool = False) -> str:
    """One curl transfer printing `code connect_code num_connects time_total size` (nothing when `warm`)."""
    w = "" if warm else f"-w '{CURL_W}'"
    return f"curl -sS -m {CURL_MAX_TIME} {tool.curl} -o /dev/null {w} {shlex.quote(url)}".replace("  ", " ")


def ready(tool: Tool, url: str) -> str:
    """Wait until a request through the tool's network path succeeds (at most ~10 s), then go on. srt can start
    the command before its in-sandbox proxy bridge listens (the first connections are refused): a loop case
    measures the warm path, and that race is counted by the single-request cases instead."""
    return f"for i in $(seq 100); do {curl(tool, url, warm=True)} 2>/dev/null && break; sleep 0.1; done"


def curl_lines(sample: Sample) -> list[tuple[str, str, int, float, int]]:
    rows = []
    for line in sample.stdout.splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[0].isdigit():
            rows.append((parts[0], parts[1], int(parts[2]), float(parts[3]), int(parts[4])))
    return rows


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CaseError(message)


def parse_wall(sample: Sample, tool: Tool) -> dict[str, float]:
    return {"wall": sample.wall_s}


def parse_split(sample: Sample, tool: Tool) -> dict[str, float]:
    stamps = [int(x) for x in sample.stdout.split()]
    expect(len(stamps) == 1, f"expected one timestamp, got {sample.stdout!r}")
    return {
        "wall": sample.wall_s,
        "to_command": (stamps[0] - sample.start_ns) / 1e9,
        "after_command": (sample.end_ns - stamps[0]) / 1e9,
    }


def parse_single(code: str) -> Callable[[Sample, Tool], dict[str, float]]:
    def parse(sample: Sample, tool: Tool) -> dict[str, float]:
        rows = curl_lines(sample)
        expect(len(rows) == 1, f"expected one curl result, got {sample.stdout!r}")
        got = rows[0][0] if rows[0][0] != "000" else rows[0][1]
        expect(got == code, f"expected HTTP {code}, got {rows[0]}")
        return {"wall": sample.wall_s, "inner": rows[0][3], "cpu": sample.cpu_s}

    return parse


def parse_loop(code: str, count: int, key: str = "per_request", connect_code: bool = False):
    def parse(sample: Sample, tool: Tool) -> dict[str, float]:
        rows = curl_lines(sample)
        expect(
            len(rows) == count, f"expected {count} curl results, got {len(rows)}: {sample.stdout[-300:]!r}"
        )
        codes = {r[1] if connect_code else r[0] for r in rows}
        expect(codes == {code}, f"expected HTTP {code} everywhere, got {codes}")
        return {key: statistics.median(r[3] for r in rows)}

    return parse


def parse_keepalive(count: int) -> Callable[[Sample, Tool], dict[str, float]]:
    def parse(sample: Sample, tool: Tool) -> dict[str, float]:
        rows = curl_lines(sample)
        stalled = sum(1 for r in rows if r[0] != "200")
        expect(
            len(rows) == count + 1 and not stalled,
            f"{len(rows)} of {count + 1} transfers finished, {stalled} of them without a 200 "
            f"(curl gives up on a transfer after {CURL_MAX_TIME} s)",
        )
        measured = rows[
            1:
        ]  # the first transfer opens the connection (and, in netjail, may wait for the proxy)
        reconnects = sum(r[2] for r in measured)
        expect(reconnects == 0, f"curl opened {reconnects} new connections: keep-alive did not hold")
        total = sum(r[3] for r in measured)
        return {"wall": sample.wall_s, "total": total, "per_request": total / count, "cpu": sample.cpu_s}

    return parse


def parse_first(sample: Sample, tool: Tool) -> dict[str, float]:
    stamps = [int(x) for x in sample.stdout.split()]
    expect(len(stamps) == 1, f"expected one timestamp, got {sample.stdout!r}")
    return {"first_response": (stamps[0] - sample.start_ns) / 1e9, "wall": sample.wall_s}


def parse_concurrent(sample: Sample, tool: Tool) -> dict[str, float]:
    rows = curl_lines(sample)
    ok = sum(1 for r in rows if r[0] == "200")
    want = CONCURRENT_RUNS * CONCURRENT_GETS
    expect(ok == want == len(rows), f"{ok} of {want} transfers got a 200 ({len(rows)} reported)")
    expect(sample.returncode == 0, f"a run failed (exit {sample.returncode})")
    return {"wall": sample.wall_s, "cpu": sample.cpu_s}


def concurrent_command(tool: Tool, origins: Origins) -> str:
    """A host shell line: CONCURRENT_RUNS sandboxes at once, each with one curl of CONCURRENT_GETS kept-alive
    HTTPS GETs (after the path is ready); wall is the first spawn to the last exit."""
    url = shlex.quote(tool.url(origins, "https"))
    inner = (
        f"{ready(tool, tool.url(origins, 'https'))}; curl -sS -m {CURL_MAX_TIME} {tool.curl} -w '{CURL_W}' "
        + " ".join(f"-o /dev/null {url}" for _ in range(CONCURRENT_GETS))
    )
    one = shlex.join(tool.argv(inner))
    return f"rc=0; for i in $(seq {CONCURRENT_RUNS}); do {one} & done; for j in $(jobs -p); do wait $j || rc=1; done; exit $rc"


def parse_download(sample: Sample, tool: Tool) -> dict[str, float]:
    rows = curl_lines(sample)
    expect(len(rows) == 1 and rows[0][0] == "200", f"download failed: {sample.stdout!r}")
    expect(rows[0][4] == DOWNLOAD_BYTES, f"downloaded {rows[0][4]} bytes, expected {DOWNLOAD_BYTES}")
    seconds = rows[0][3]
    return {
        "wall": sample.wall_s,
        "inner": seconds,
        "throughput": DOWNLOAD_BYTES / seconds / 2**20,
        "maxrss": sample.maxrss_kib / 1024,
        "cpu": sample.cpu_s,
    }


def build_cases(repeat: int, loop_repeat: int, warmup: int) -> list[Case]:
    wall = Metric("wall", "wall, spawn to exit", "s")
    inner = Metric("inner", "curl time_total", "s")
    cpu = Metric("cpu", "CPU (user+sys) of the whole run", "s")
    all3 = ("bare", "srt", "netjail")
    all4 = ("bare", "srt", "srt-tls", "netjail")

    def loop(n: int, body: str) -> str:
        return f"for i in $(seq {n}); do {body}; done"

    cases = [
        Case("startup", "`-c true`", all3, lambda t, o: "true", parse_wall, [wall], repeat, warmup, 30),
        Case(
            "startup_split",
            "`-c 'date +%s%N'`: spawn → command start, command end → exit",
            all3,
            lambda t, o: "date +%s%N",
            parse_split,
            [
                Metric("to_command", "spawn → command starts", "s"),
                Metric("after_command", "command ends → exit", "s"),
            ],
            repeat,
            warmup,
            30,
        ),
        Case(
            "http_get",
            "one HTTP GET, new sandbox per request",
            all3,
            lambda t, o: curl(t, t.url(o, "http")),
            parse_single("200"),
            [wall, inner],
            repeat,
            warmup,
        ),
        Case(
            "https_get",
            "one HTTPS GET, new sandbox per request",
            all4,
            lambda t, o: curl(t, t.url(o, "https")),
            parse_single("200"),
            [wall, inner, cpu],
            repeat,
            warmup,
        ),
        Case(
            "http_newconn",
            "HTTP GET, new curl process and connection each, warm proxy (median of 20)",
            all3,
            lambda t, o: f"{ready(t, t.url(o, 'http'))}; {loop(20, curl(t, t.url(o, 'http')))}",
            parse_loop("200", 20),
            [Metric("per_request", "per request (curl time_total)", "s")],
            loop_repeat,
            1,
        ),
        Case(
            "https_newconn",
            "HTTPS GET, new curl process and TLS connection each, warm proxy (median of 20)",
            all4,
            lambda t, o: f"{ready(t, t.url(o, 'https'))}; {loop(20, curl(t, t.url(o, 'https')))}",
            parse_loop("200", 20),
            [Metric("per_request", "per request (curl time_total)", "s")],
            loop_repeat,
            1,
        ),
    ]
    cases += [
        Case(
            "https_first",
            "spawn → first HTTPS response, new sandbox (refused connections retried every 0.1 s)",
            all4,
            lambda t, o: f"{ready(t, t.url(o, 'https'))}; date +%s%N",
            parse_first,
            [Metric("first_response", "spawn → first HTTPS response", "s")],
            repeat,
            warmup,
        ),
        Case(
            "concurrent_https",
            f"{CONCURRENT_RUNS} concurrent runs × {CONCURRENT_GETS} kept-alive HTTPS GETs each",
            all4,
            concurrent_command,
            parse_concurrent,
            [Metric("wall", "wall, first spawn to last exit", "s"), cpu],
            loop_repeat,
            1,
            120,
            host_shell=True,
        ),
    ]
    for scheme, tools in (("http", all3), ("https", all4)):
        cases.append(
            Case(
                f"keepalive_{scheme}",
                f"200 sequential keep-alive {scheme.upper()} GETs in one curl process (after the path is ready, + 1 warm-up)",
                tools,
                lambda t, o, s=scheme: (
                    f"{ready(t, t.url(o, s))}; curl -sS -m {CURL_MAX_TIME} {t.curl} -w '{CURL_W}' "
                    + " ".join(f"-o /dev/null {shlex.quote(t.url(o, s))}" for _ in range(201))
                ),
                parse_keepalive(200),
                [
                    Metric("total", "200 requests, in-process", "s"),
                    Metric("per_request", "per request", "s"),
                    cpu,
                ],
                loop_repeat,
                1,
                45,
            )
        )
    for scheme, tools in (("https", all4), ("http", all3)):
        cases.append(
            Case(
                f"download_{scheme}",
                f"100 MiB {scheme.upper()} download (after a small request succeeded)",
                tools,
                lambda t, o, s=scheme: (
                    f"{ready(t, t.url(o, s))}; " + curl(t, t.url(o, s, f"/bytes/{DOWNLOAD_BYTES}"))
                ),
                parse_download,
                [
                    Metric("throughput", "throughput", "MiB/s", "higher"),
                    Metric("inner", "curl time_total", "s"),
                    Metric("maxrss", "peak RSS, largest process of the tree", "MiB"),
                    cpu,
                ],
                loop_repeat,
                1,
                120,
            )
        )
    deny_tools = ("srt", "netjail")
    cases += [
        Case(
            "denied", "time to the 403 for a host nobody allows, new sandbox (cold proxy)", deny_tools,
            lambda t, o: curl(t, f"http://{DENIED_NAME}:{o.http_port}/"), parse_single("403"), [wall, inner],
            repeat, warmup, note="bare has no policy to deny with",
        ),
        Case(
            "denied_warm", "denied plain HTTP request, warm proxy (median of 10)", deny_tools,
            lambda t, o: f"{ready(t, t.url(o, 'http'))}; "
            + loop(10, curl(t, f"http://{DENIED_NAME}:{o.http_port}/")),
            parse_loop("403", 10), [Metric("per_request", "time to 403", "s")], loop_repeat, 1,
        ),
        Case(
            "denied_connect_warm", "denied HTTPS CONNECT, warm proxy (median of 10)", deny_tools,
            lambda t, o: f"{ready(t, t.url(o, 'http'))}; "
            + loop(10, curl(t, f"https://{DENIED_NAME}:{o.https_port}/") + " || true"),
            parse_loop("403", 10, connect_code=True), [Metric("per_request", "time to CONNECT 403", "s")],
            loop_repeat, 1,
        ),
    ]  # fmt: skip
    return cases


# --------------------------------------------------------------------------------------------------------------
# The opt-in registry case: pip download through each tool. Hosts come from pip's configuration, at run time.


def pip_environment() -> dict[str, str]:
    """pip with no configuration file and no local wheel sources, so every package comes from its index."""
    env = {k: v for k, v in base_environment().items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def registry_case(tools: dict[str, Tool], work: Path, repeat: int) -> Case:
    sys.path.insert(0, str(REPO))
    from netjail.settings.presets import expand_preset

    pip_env = pip_environment()
    hosts = expand_preset("@pip", pip_env)
    fs = {"denyRead": [], "allowWrite": ["."], "denyWrite": []}
    if "srt" in tools:
        path = work / "srt-pip.json"
        path.write_text(
            json.dumps({"network": {"allowedDomains": hosts, "deniedDomains": []}, "filesystem": fs})
        )
        tools["srt-pip"] = Tool(
            "srt-pip", [str(tools["srt"].prefix[0]), "-s", str(path), "-c"], pip_env, "", ""
        )
    path = work / "netjail-pip.json"
    path.write_text(
        json.dumps({"network": {"allowedDomains": ["@pip"], "deniedDomains": []}, "filesystem": fs})
    )
    nj = tools["netjail"]
    tools["netjail-pip"] = Tool(
        "netjail-pip",
        [nj.prefix[0], "-s", str(path), "-c"],
        {**pip_env, "NETJAIL_STATE_DIR": nj.env["NETJAIL_STATE_DIR"]},
        "",
        "",
    )
    tools["bare-pip"] = Tool("bare-pip", ["bash", "-c"], pip_env, "", "", proxied=False)
    python = shlex.quote(sys.executable)
    packages = " ".join(REGISTRY_PACKAGES)

    def command(tool: Tool, origins: Origins) -> str:
        return (
            f"rm -rf pipdl && {python} -m pip download -q --no-cache-dir --no-deps --only-binary=:all: "
            f"-d pipdl {packages} && ls pipdl | wc -l"
        )

    def parse(sample: Sample, tool: Tool) -> dict[str, float]:
        expect(
            sample.stdout.strip().splitlines()[-1:] == [str(len(REGISTRY_PACKAGES))],
            f"pip: {sample.stderr[-400:]!r}",
        )
        return {"wall": sample.wall_s}

    return Case(
        "registry_pip",
        f"`pip download --no-cache-dir` of {len(REGISTRY_PACKAGES)} small wheels from the configured index",
        tuple(t for t in ("bare-pip", "srt-pip", "netjail-pip") if t in tools),
        command, parse, [Metric("wall", "wall, spawn to exit", "s")], repeat, 1, 180,
        note=f"{len(hosts)} host(s) from pip's configuration",
    )  # fmt: skip


def npm_case(tools: dict[str, Tool], work: Path, repeat: int) -> Case:
    """`npm install` of NPM_PACKAGES into a fresh directory with a fresh cache, from the registry npm is configured
    for (srt's allowedDomains from `expand_preset("@npm")`, netjail gets `["@npm"]`; no host is written here)."""
    sys.path.insert(0, str(REPO))
    from netjail.settings.presets import expand_preset

    env = base_environment()
    hosts = expand_preset("@npm", env)
    fs = {"denyRead": [], "allowWrite": ["."], "denyWrite": []}
    if "srt" in tools:
        path = work / "srt-npm.json"
        path.write_text(
            json.dumps({"network": {"allowedDomains": hosts, "deniedDomains": []}, "filesystem": fs})
        )
        tools["srt-npm"] = Tool("srt-npm", [str(tools["srt"].prefix[0]), "-s", str(path), "-c"], env, "", "")
    path = work / "netjail-npm.json"
    path.write_text(
        json.dumps({"network": {"allowedDomains": ["@npm"], "deniedDomains": []}, "filesystem": fs})
    )
    nj = tools["netjail"]
    tools["netjail-npm"] = Tool(
        "netjail-npm", [nj.prefix[0], "-s", str(path), "-c"],
        {**env, "NETJAIL_STATE_DIR": nj.env["NETJAIL_STATE_DIR"]}, "", "",
    )  # fmt: skip
    tools["bare-npm"] = Tool("bare-npm", ["bash", "-c"], env, "", "", proxied=False)
    packages = " ".join(NPM_PACKAGES)

    def command(tool: Tool, origins: Origins) -> str:
        return (
            "rm -rf npmdl npmcache && mkdir npmdl && cd npmdl && npm install -s --no-audit --no-fund "
            f"--no-package-lock --prefer-online --cache ../npmcache {packages} && ls node_modules | wc -l"
        )

    def parse(sample: Sample, tool: Tool) -> dict[str, float]:
        expect(
            sample.stdout.strip().splitlines()[-1:] == [str(len(NPM_PACKAGES))],
            f"npm: {sample.stderr[-400:]!r}",
        )
        return {"wall": sample.wall_s}

    return Case(
        "registry_npm",
        f"`npm install` with a fresh cache of {len(NPM_PACKAGES)} small dependency-free packages from the configured registry",
        tuple(t for t in ("bare-npm", "srt-npm", "netjail-npm") if t in tools),
        command, parse, [Metric("wall", "wall, spawn to exit", "s")], repeat, 1, 180,
        note=f"{len(hosts)} host(s) from npm's configuration",
    )  # fmt: skip


# --------------------------------------------------------------------------------------------------------------
# Statistics and reports


def summarize(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    n = len(ordered)
    return {
        "n": n,
        "median": statistics.median(ordered),
        "p90": ordered[max(0, math.ceil(0.9 * n) - 1)],
        "min": ordered[0],
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
        "stdev": statistics.stdev(ordered) if n > 1 else 0.0,
    }


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "s":
        ms = value * 1000
        return f"{ms:.0f} ms" if ms >= 100 else f"{ms:.1f} ms" if ms >= 1 else f"{ms:.2f} ms"
    return f"{value:.0f} {unit}" if value >= 100 else f"{value:.1f} {unit}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "—"
    r = a / b
    return f"{r:.2f}×" if r < 10 else f"{r:.1f}×" if r < 100 else f"{r:.0f}×"


COLUMNS = ("bare", "srt", "srt-tls", "netjail")
BASELINE = (
    "netjail-base"  # --baseline-ref: another commit of netjail, interleaved with it (not a table column)
)


def baseline_rows(results: dict[str, Any]) -> list[str]:
    """netjail against the --baseline-ref snapshot, metric by metric: medians and their ratio."""
    lines = []
    for case in results["cases"]:
        tools = case["tools"]
        if BASELINE not in tools or "netjail" not in tools:
            continue
        for metric in case["metrics"]:
            new = tools["netjail"]["metrics"].get(metric["key"])
            old = tools[BASELINE]["metrics"].get(metric["key"])
            if new and old:
                lines.append(
                    f"{case['name']}: {metric['label']}: netjail {fmt(new['median'], metric['unit'])}, "
                    f"base {fmt(old['median'], metric['unit'])}, ratio {ratio(new['median'], old['median'])}"
                )
    return lines


def column_of(tool: str) -> str:
    return tool.removesuffix("-pip").removesuffix("-npm")


def table_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for case in results["cases"]:
        for metric in case["metrics"]:
            med: dict[str, float | None] = {c: None for c in COLUMNS}
            p90: dict[str, float | None] = {c: None for c in COLUMNS}
            errors = {}
            fails: dict[str, int] = {}
            for tool, data in case["tools"].items():
                col = column_of(tool)
                fails[col] = len(data["failures"])
                stats = data["metrics"].get(metric["key"])
                if stats:
                    med[col], p90[col] = stats["median"], stats["p90"]
                elif data.get("error"):
                    errors[col] = "error"
            cells = []
            for col in COLUMNS:
                if med[col] is not None:
                    failed = f" [{fails[col]} failed]" if fails.get(col) else ""
                    cells.append(
                        f"{fmt(med[col], metric['unit'])} (p90 {fmt(p90[col], metric['unit'])}){failed}"
                    )
                else:
                    cells.append(errors.get(col, "—"))
            arrow = "↑" if metric["better"] == "higher" else "↓"
            rows.append(
                [f"{case['name']}: {metric['label']} {arrow}", *cells,
                 ratio(med["netjail"], med["bare"]), ratio(med["netjail"], med["srt"]), ratio(med["netjail"], med["srt-tls"])]
            )  # fmt: skip
    return rows


HEADER = [
    "case: metric",
    "bare",
    "srt",
    "srt-tls",
    "netjail",
    "netjail/bare",
    "netjail/srt",
    "netjail/srt-tls",
]


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]

    def line(r):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    return "\n".join([line(HEADER), "  ".join("-" * w for w in widths), *map(line, rows)])


def markdown_table(rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(HEADER) + " |", "|" + "|".join(["---"] + ["---:"] * (len(HEADER) - 1)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def _version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
        return (done.stdout or done.stderr).strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "unavailable"


def machine_info(srt: Path | None, netjail: Path, snapshot: str | None) -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import mitmproxy.version

    commit = _version(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "netjail", "addons"],
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "os": _version(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "loadavg_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "netjail": f"{_version([str(netjail), '--version'])} @ "
        + (
            f"{snapshot} (snapshot of a commit)"
            if snapshot
            else f"{commit}{' + uncommitted changes' if dirty else ''}"
        ),
        "mitmproxy": mitmproxy.version.VERSION,
        "srt": _version([str(srt), "--version"]) if srt else "not found",
        "node": _version(["node", "--version"]),
        "bwrap": _version(["bwrap", "--version"]),
        "curl": _version(["curl", "--version"]),
    }


def write_markdown(results: dict[str, Any], rows: list[list[str]], path: Path) -> None:
    m = results["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Latest run: {results['started']} (took {results['duration_s']:.0f} s); raw numbers in "
        f"`bench/results/{results['json_name']}`. How to read this: `bench/README.md`. Startup profile: `bench/PROFILE.md`.",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, kernel {m['kernel']}, {m['os']}; "
        f"load average at start {', '.join(f'{x:.2f}' for x in m['loadavg_at_start'])}.",
        f"Versions: netjail {m['netjail'].removeprefix('netjail, version ')}, mitmproxy {m['mitmproxy']}, Python "
        f"{m['python']}; srt {m['srt']} on Node {m['node']}; {m['bwrap']}; {m['curl'].split(' (')[0]}.",
        "",
        f"The machine is shared: before each round the bench waited up to {results['quiet_gate']['max_wait_s']:.0f} s "
        f"for the CPUs to be at most {results['quiet_gate']['threshold']:.0%} busy "
        f"({results['quiet_gate']['waited_s']:.0f} s waited in all); {results['quiet_gate']['noisy_rounds']} of "
        f"{results['quiet_gate']['rounds']} rounds ran busier than that anyway.",
        "",
        "Medians (p90 in brackets). ↓ lower is better, ↑ higher is better; a ratio is netjail's median divided by the "
        "other column's. `srt` tunnels HTTPS (no interception); `srt-tls` is srt with its experimental "
        "`tlsTerminate`, the like-for-like comparison for netjail's interception.",
        "",
        markdown_table(rows),
        "",
        "## Cases",
        "",
    ]
    for case in results["cases"]:
        reps = ", ".join(
            f"{t}: {d['samples']} samples"
            + (f", **{len(d['failures'])} failed run(s)**" if d["failures"] else "")
            + (", **not measured** (see Failed runs)" if d.get("error") else "")
            for t, d in case["tools"].items()
        )
        note = f" {case['note']}." if case.get("note") else ""
        lines.append(f"- **{case['name']}** — {case['title']}.{note} ({reps})")
    lines.append("")
    failed = [
        (c["name"], t, d["failures"])
        for c in results["cases"]
        for t, d in c["tools"].items()
        if d["failures"]
    ]
    if failed:
        lines += [
            "## Failed runs",
            "",
            "A failed run is left out of the statistics; `[k failed]` in the table counts them.",
            "",
        ]
        for case_name, tool, messages in failed:
            lines.append(f"- {case_name} / {tool}, {len(messages)}×; first: `{messages[0][:400]}`")
        lines.append("")
    if results["leaks"]:
        lines.append("## Processes left behind (found by the subreaper and killed)")
        lines.append("")
        lines += [f"- after {x['after']}: pid {x['pid']} `{x['cmdline']}`" for x in results["leaks"]]
    else:
        lines.append("No process outlived its sandbox in this run (the bench process is a child subreaper and checks "
                     "after every sample).")  # fmt: skip
    lines.append("")
    # Hand-written observations about a run live beside its numbers and survive `--render`.
    notes = BENCH / "results" / results.get("json_name", "").replace(".json", ".notes.md")
    if results.get("json_name") and notes.is_file():
        lines += [notes.read_text().rstrip(), ""]
    path.write_text("\n".join(lines))


# --------------------------------------------------------------------------------------------------------------


def run_case(
    case: Case,
    tools: dict[str, Tool],
    origins: Origins,
    runner: Runner,
    cwd: Path,
    verbose: bool,
    gate: QuietGate,
) -> dict:
    present = [t for t in case.tools if t in tools]
    if "netjail" in present and BASELINE in tools:
        present.append(BASELINE)  # --baseline-ref: sampled in the same rounds, right after netjail
    samples: dict[str, list[dict[str, float]]] = {t: [] for t in present}
    errors: dict[str, str] = {}  # a tool that failed too often to be measured
    failures: dict[str, list[str]] = {t: [] for t in present}  # every failed sample, counted and reported
    commands = {t: case.command(tools[t], origins) for t in present}
    print(
        f"== {case.name}: {case.title} ({case.warmup} warm-up + {case.repeat} × {', '.join(present)})",
        flush=True,
    )
    load_before = os.getloadavg()[0]
    noisy_before, busy_before = gate.noisy_rounds, len(gate.busy)
    for i in range(case.warmup + case.repeat):
        gate.wait()
        for name in present:
            if name in errors:
                continue
            tool = tools[name]
            argv = ["bash", "-c", commands[name]] if case.host_shell else tool.argv(commands[name])
            before = runner.outside_cpu()
            sample = runner.run(argv, tool.env, cwd, case.timeout, f"{case.name}/{name}")
            sample.cpu_s += max(0.0, runner.outside_cpu() - before)
            try:
                if sample.timed_out:
                    rows = curl_lines(sample)
                    stalled = sum(1 for r in rows if r[0] != "200")
                    detail = (
                        f"; {len(rows)} transfers reported, {stalled} without a 200"
                        if rows
                        else "; curl reported nothing (its buffered output is lost when it is killed)"
                    )
                    raise CaseError(f"timed out after {case.timeout:.0f} s{detail}")
                parsed = case.parse(sample, tool)
            except (CaseError, ValueError) as e:
                message = f"{e} (exit {sample.returncode}; stderr: {sample.stderr.strip()[-300:]!r})"
                failures[name].append(message)
                print(f"   {name}: FAILED {message}", file=sys.stderr, flush=True)
                if len(failures[name]) >= max(2, (case.warmup + case.repeat) // 2) or sample.timed_out:
                    errors[name] = message  # not measurable: stop running it
                continue
            if i >= case.warmup:
                samples[name].append(parsed)
            if verbose:
                shown = ", ".join(f"{k}={v:.4g}" for k, v in parsed.items())
                print(
                    f"   {'warm-up' if i < case.warmup else f'#{i - case.warmup + 1}'} {name}: {shown}",
                    flush=True,
                )
    out = {"name": case.name, "title": case.title, "note": case.note, "tools": {},
           "loadavg_1m": [load_before, os.getloadavg()[0]],
           "cpu_busy_before_rounds": [round(b, 3) for b in gate.busy[busy_before:]],
           "noisy_rounds": gate.noisy_rounds - noisy_before,
           "metrics": [vars(m) for m in case.metrics], "commands": commands}  # fmt: skip
    for name in present:
        data: dict[str, Any] = {"samples": len(samples[name]), "failures": failures[name], "metrics": {}}
        if name in errors:
            data["error"] = errors[name]
        keys = samples[name][0].keys() if samples[name] else ()
        for key in keys:
            values = [s[key] for s in samples[name]]
            data["metrics"][key] = summarize(values) | {"values": values}
        out["tools"][name] = data
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="measured runs per tool for single-shot cases")
    parser.add_argument(
        "--loop-repeat", type=int, default=5, help="measured runs per tool for loop/download cases"
    )
    parser.add_argument("--warmup", type=int, default=2, help="warm-up runs per tool for single-shot cases")
    parser.add_argument(
        "--quick", action="store_true", help="3 runs, 1 warm-up: a smoke test, not a measurement"
    )
    parser.add_argument("--only", help="comma-separated case names (prefix match)")
    parser.add_argument(
        "--registry", action="store_true", help="also run pip download against the configured index"
    )
    parser.add_argument(
        "--srt", type=Path, default=Path(os.environ.get("SRT", SRT_DEFAULT)), help="srt executable"
    )
    parser.add_argument(
        "--quiet",
        type=float,
        default=0.25,
        help="before each round wait until the CPUs are at most this busy (1 = never wait)",
    )
    parser.add_argument(
        "--quiet-max-wait", type=float, default=10, help="seconds a round waits for quiet at most"
    )
    parser.add_argument(
        "--netjail-ref", help="benchmark this git commit of netjail (a snapshot) instead of the working tree"
    )
    parser.add_argument(
        "--baseline-ref",
        help="also benchmark this git commit of netjail (a snapshot), interleaved round by round with netjail, "
        "and print the ratios (A/B on a busy machine)",
    )
    parser.add_argument("--serve-origins", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--render", type=Path, metavar="JSON", help="rewrite RESULTS.md from a results file; run nothing"
    )
    parser.add_argument(
        "--no-write", action="store_true", help="print the table only; keep RESULTS.md and results/"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print every sample")
    args = parser.parse_args()
    if args.serve_origins:
        serve_origins(args.serve_origins)
        return 0
    if args.render:
        results = json.loads(args.render.read_text())
        rows = table_rows(results)
        print(text_table(rows))
        write_markdown(results, rows, BENCH / "RESULTS.md")
        return 0
    if args.quick:
        args.repeat, args.loop_repeat, args.warmup = 3, 3, 1

    netjail = Path(sys.executable).parent / "netjail"
    if not netjail.exists():
        print(f"bench: {netjail} not found; run with the project's .venv/bin/python", file=sys.stderr)
        return 2
    srt: Path | None = args.srt if args.srt.exists() else None
    if srt is None:
        print(
            f"bench: srt not found at {args.srt} (set --srt or $SRT); its columns stay empty", file=sys.stderr
        )
    for program in ("bwrap", "curl", "bash"):
        if shutil.which(program) is None:
            print(f"bench: {program} is required", file=sys.stderr)
            return 2

    started = dt.datetime.now(dt.UTC)
    t_begin = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="netjail-bench-"))
    runner = Runner(scratch)
    origins: Origins | None = None

    def on_signal(signum: int, _frame: Any) -> None:
        runner.kill_current()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        work = scratch / "work"
        work.mkdir()
        snapshot = None
        if args.netjail_ref:
            netjail, snapshot = snapshot_netjail(args.netjail_ref, scratch)
            print(
                f"bench: netjail {args.netjail_ref} = {snapshot}, snapshot at {netjail.parent.parent}",
                flush=True,
            )
        origins = start_origins(scratch)
        runner.known.add(origins.process.pid)
        tools = make_tools(origins, scratch, srt, netjail)
        if args.baseline_ref:
            base, base_commit = snapshot_netjail(args.baseline_ref, scratch, BASELINE)
            print(f"bench: baseline netjail {args.baseline_ref} = {base_commit}", flush=True)
            own = tools["netjail"]
            tools[BASELINE] = Tool(
                BASELINE, [str(base), *own.prefix[1:]],
                {**own.env, "NETJAIL_STATE_DIR": str(scratch / "work" / "netjail-base-state")}, own.host, own.curl,
            )  # fmt: skip
        machine = machine_info(srt, netjail, snapshot)
        cases = build_cases(args.repeat, args.loop_repeat, args.warmup)
        if args.registry:
            cases.append(
                registry_case(tools, scratch, max(3, args.loop_repeat // 2 + 1) if not args.quick else 2)
            )
            cases.append(npm_case(tools, scratch, max(3, args.loop_repeat // 2 + 1) if not args.quick else 2))
        if args.only:
            wanted = args.only.split(",")
            cases = [c for c in cases if any(c.name.startswith(w) for w in wanted)]
        results: dict[str, Any] = {
            "started": started.isoformat(timespec="seconds"),
            "machine": machine,
            "cases": [],
        }
        gate = QuietGate(args.quiet, args.quiet_max_wait)
        for case in cases:
            results["cases"].append(run_case(case, tools, origins, runner, work, args.verbose, gate))
        results["quiet_gate"] = {"threshold": gate.threshold, "max_wait_s": gate.max_wait, "rounds": gate.rounds,
                                 "noisy_rounds": gate.noisy_rounds, "waited_s": round(gate.waited_s, 1)}  # fmt: skip
        runner.reap_orphans("end of run")
        results["leaks"] = runner.leaks
        results["duration_s"] = time.monotonic() - t_begin
        rows = table_rows(results)
        print()
        print(text_table(rows))
        if args.baseline_ref:
            results["baseline"] = args.baseline_ref
            print(f"\nnetjail / baseline {args.baseline_ref}:", *baseline_rows(results), sep="\n  ")
        if runner.leaks:
            print(
                f"\nbench: {len(runner.leaks)} process(es) outlived their sandbox: {runner.leaks}",
                file=sys.stderr,
            )
        if not args.no_write:
            stamp = started.strftime("%Y-%m-%dT%H%M%SZ")
            results["json_name"] = f"{stamp}.json"
            (BENCH / "results").mkdir(exist_ok=True)
            (BENCH / "results" / results["json_name"]).write_text(json.dumps(results, indent=1) + "\n")
            write_markdown(results, rows, BENCH / "RESULTS.md")
            print(f"\nwrote bench/results/{results['json_name']} and bench/RESULTS.md")
        failed = any(d.get("error") for c in results["cases"] for d in c["tools"].values())
        return 1 if failed else 0
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        runner.kill_current()
        if origins is not None:
            origins.close()
            runner.known.discard(origins.process.pid)
        runner.reap_orphans("cleanup", grace=0.5)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
