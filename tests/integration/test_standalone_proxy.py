"""`netjail proxy`: the same decisions and records as a run, for clients outside any jail; never an open proxy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.netjail import Netjail
from tests.support.servers import Origin

pytestmark = pytest.mark.nonroot


@dataclass
class Served:
    process: subprocess.Popen
    variables: dict[str, str]

    @property
    def port(self) -> int:
        return int(self.variables["HTTPS_PROXY"].rsplit(":", 1)[1])

    def curl(self, url: str, *extra: str, proxy: str | None = None) -> str:
        """`CONNECT status:response status` (000 for none)."""
        proxy = proxy or self.variables["HTTPS_PROXY"]
        return subprocess.run(
            ["curl", "-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_connect}:%{http_code}", "-x", proxy,
             "--cacert", self.variables["SSL_CERT_FILE"], *extra, url],
            capture_output=True, text=True, check=False,
        ).stdout  # fmt: skip

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGINT)
        _, stderr = self.process.communicate(timeout=30)
        return self.process.returncode, stderr


def _serve(netjail: Netjail, *args: str) -> Served:
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    process = netjail.popen("proxy", "-s", str(cfg), *args)
    assert process.stdout is not None
    variables = {}
    for line in process.stdout:  # the export lines come once it serves
        key, _, value = line.removeprefix("export ").strip().partition("=")
        variables[key] = value
        if key == "NODE_EXTRA_CA_CERTS":
            break
    assert "HTTPS_PROXY" in variables, process.communicate(timeout=30)
    return Served(process, variables)


@pytest.fixture
def served(netjail: Netjail) -> Iterator[Served]:
    server = _serve(netjail)
    yield server
    if server.process.poll() is None:
        server.process.kill()
        server.process.wait()


def test_a_client_outside_any_jail_gets_the_runs_decisions_and_records(
    netjail: Netjail, served: Served, https_origin: Origin
) -> None:
    assert served.curl(f"https://allowed.test:{https_origin.port}/standalone") == "200:200"
    assert served.curl(f"https://denied.test:{https_origin.port}/nope") == "403:000"
    code, stderr = served.stop()
    assert code == 0, stderr
    assert ("GET", "/standalone", f"allowed.test:{https_origin.port}") in https_origin.seen
    assert not any(path == "/nope" for _, path, _ in https_origin.seen)

    listed = netjail.command("flows", "--json")
    flows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {(f["host"], f["verdict"]) for f in flows} >= {("allowed.test", "allow"), ("denied.test", "deny")}
    run_dir = netjail.latest_run()
    assert run_dir is not None
    records = [json.loads(line) for line in (run_dir / "flows.jsonl").read_text().splitlines()]
    assert records[0]["platform"] == "standalone-proxy" and records[-1]["event"] == "run_end"
    secret = served.variables["HTTPS_PROXY"].split(":")[2].split("@")[0]
    assert secret not in (run_dir / "flows.jsonl").read_text()
    assert not Path(served.variables["SSL_CERT_FILE"]).parent.exists()  # the live material went with the run


def test_a_client_without_the_secret_is_refused_and_recorded(
    netjail: Netjail, served: Served, https_origin: Origin
) -> None:
    bare = f"http://127.0.0.1:{served.port}"
    wrong = f"http://netjail:not-the-secret@127.0.0.1:{served.port}"
    assert served.curl(f"http://allowed.test:{https_origin.port}/no-secret", proxy=bare) == "000:407"
    assert served.curl(f"https://allowed.test:{https_origin.port}/wrong", proxy=wrong) == "407:000"
    assert served.curl(f"https://allowed.test:{https_origin.port}/control") == "200:200"
    served.stop()
    assert {p for _, p, _ in https_origin.seen} & {"/no-secret", "/wrong"} == set()
    run_dir = netjail.latest_run()
    assert run_dir is not None
    reasons = [json.loads(line).get("reason") for line in (run_dir / "flows.jsonl").read_text().splitlines()]
    assert reasons.count("proxy_auth") == 2


def test_it_listens_on_loopback_only_unless_told(served: Served) -> None:
    listening = _listeners(served.port)
    assert listening == {"127.0.0.1"}, listening
    served.stop()


def test_a_listen_address_that_is_not_an_address_is_refused(netjail: Netjail) -> None:
    result = netjail.command("proxy", "--listen", "localhost:8080")
    assert result.returncode == 125
    assert "expected an IP address and a port" in result.stderr
    assert netjail.latest_run() is None


def test_the_client_variables_file_is_private(netjail: Netjail, tmp_path: Path) -> None:
    env_file, ca = tmp_path / "proxy.env", tmp_path / "ca.pem"
    server = _serve(netjail, "--env-file", str(env_file), "--ca-out", str(ca))
    try:
        assert env_file.stat().st_mode & 0o777 == 0o600
        lines = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        assert lines["HTTPS_PROXY"] == server.variables["HTTPS_PROXY"]
        assert lines["SSL_CERT_FILE"] == str(ca) and ca.read_text().startswith("-----BEGIN CERTIFICATE-----")
    finally:
        server.stop()


def _listeners(port: int) -> set[str]:
    """The local addresses on which something listens on `port` (IPv4 and IPv6), from /proc/net."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port and len(address) == width:
                found.add(_address(address))
    return found


def _address(hex_address: str) -> str:
    if len(hex_address) == 8:
        return ".".join(str(int(hex_address[i : i + 2], 16)) for i in (6, 4, 2, 0))
    return hex_address


@pytest.fixture
def agent_namespace() -> Iterator[tuple[str, str]]:
    """The container recipe's topology without Docker: a network namespace whose only link is a veth to this
    machine, no route beyond it and no resolver it can reach. Yields (namespace, this machine's address on it)."""
    if os.geteuid() != 0:
        pytest.skip("creating a network namespace needs root")
    n = os.getpid() % 200 + 1
    name, outer, inner = f"njp{n}", f"njp{n}a", f"njp{n}b"

    def sh(*args: str) -> None:
        done = subprocess.run(args, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{' '.join(args)}: {done.stderr}"

    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    subprocess.run(["ip", "link", "del", outer], capture_output=True, check=False)
    sh("ip", "netns", "add", name)
    try:
        sh("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
        sh("ip", "link", "set", inner, "netns", name)
        sh("ip", "addr", "add", f"10.234.{n}.1/30", "dev", outer)
        sh("ip", "link", "set", outer, "up")
        for cmd in (
            ["ip", "addr", "add", f"10.234.{n}.2/30", "dev", inner],
            ["ip", "link", "set", inner, "up"],
        ):
            sh("ip", "netns", "exec", name, *cmd)
        yield name, f"10.234.{n}.1"
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", outer], capture_output=True, check=False)


def test_a_workload_whose_only_route_is_the_proxy(
    netjail: Netjail, agent_namespace: tuple[str, str], https_origin: Origin, tmp_path: Path
) -> None:
    namespace, address = agent_namespace
    env_file = tmp_path / "proxy.env"
    server = _serve(netjail, "--listen", f"{address}:0", "--env-file", str(env_file))
    try:
        variables = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        assert f"@{address}:" in variables["HTTPS_PROXY"]

        def agent(*argv: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["ip", "netns", "exec", namespace, "env", *(f"{k}={v}" for k, v in variables.items()), *argv],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip

        curl = ["curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_connect}:%{http_code}"]
        assert agent(*curl, f"https://allowed.test:{https_origin.port}/from-ns").stdout == "200:200"
        assert agent(*curl, f"https://denied.test:{https_origin.port}/denied").stdout == "403:000"
        # around the proxy: no route to the origin, and no resolver for a name
        assert agent(*curl, "--noproxy", "*", f"https://127.0.0.1:{https_origin.port}/direct").returncode != 0
        assert agent("getent", "hosts", "denied.test").returncode != 0
    finally:
        code, stderr = server.stop()
    assert code == 0, stderr
    assert {p for _, p, _ in https_origin.seen} & {"/from-ns", "/denied", "/direct"} == {"/from-ns"}
