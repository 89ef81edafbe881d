"""Proxy policy and egress attacks (ATTACKS.md N5–N7, P2–P4, L2, L7), each beside a harmless control. The raw
requests are sent to the explicit proxy entrance inside the jail (127.0.0.1:3128)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from tests.support.dns import DnsServer
from tests.support.netjail import Netjail
from tests.support.servers import Origin
from tests.support.wait import stays_false, wait_until

pytestmark = pytest.mark.nonroot

RAW = """
import socket, sys
s = socket.create_connection(("127.0.0.1", 3128), timeout=10)
s.sendall(sys.argv[1].encode("latin-1").decode("unicode_escape").encode("latin-1"))
data = b""
try:
    while b"\\r\\n\\r\\n" not in data and (chunk := s.recv(65536)):
        data += chunk
except OSError:  # reset by the proxy: what arrived before it (if anything) is the answer
    pass
print(data.split(b"\\r\\n")[0].decode("latin-1") if data else "closed")
"""


def raw_requests(netjail: Netjail, cfg, *requests: str):
    script = "; ".join(f"{sys.executable} -c {_q(RAW)} {_q(r)}" for r in requests)
    return netjail.run("-s", str(cfg), "-c", script)


def _q(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def test_p2_every_plain_http_form_gets_the_same_decision(netjail: Netjail, http_origin: Origin) -> None:
    p = http_origin.port
    cfg = netjail.settings({"allowedDomains": ["allowed.test"], "deniedDomains": ["denied.test"]})
    result = raw_requests(
        netjail, cfg,
        f"GET http://denied.test:{p}/ HTTP/1.1\\r\\nHost: denied.test:{p}\\r\\nConnection: close\\r\\n\\r\\n",   # absolute form
        f"GET http://allowed.test:{p}/ HTTP/1.1\\r\\nHost: denied.test:{p}\\r\\nConnection: close\\r\\n\\r\\n",  # absolute, Host mismatch
        f"GET / HTTP/1.1\\r\\nHost: denied.test:{p}\\r\\nConnection: close\\r\\n\\r\\n",                        # origin form, Host only
        f"GET http://denied.test:{p}/ HTTP/1.0\\r\\n\\r\\n",                                                      # HTTP/1.0
        f"GET http://allowed.test:{p}/ HTTP/1.1\\r\\nHost: allowed.test:{p}\\r\\nConnection: close\\r\\n\\r\\n",  # control
    )  # fmt: skip
    statuses = [line.split()[1] for line in result.stdout.splitlines()]
    assert statuses == ["403", "403", "403", "403", "200"], result.explain()
    assert [f["reason"] for f in result.flows] == [
        "denied_by_rule",
        "host_mismatch",
        "denied_by_rule",
        "denied_by_rule",
        "allowed",
    ]
    assert all(h != f"denied.test:{p}" for _, _, h in http_origin.seen)


def test_p2_connect_relayed_through_a_forwarder_inside_the_jail(
    netjail: Netjail, https_origin: Origin
) -> None:
    p = https_origin.port
    cfg = netjail.settings({"allowedDomains": ["allowed.test"], "deniedDomains": ["denied.test"]})
    relay = "socat TCP-LISTEN:9000,bind=127.0.0.1,fork,reuseaddr TCP:127.0.0.1:3128 & sleep 0.5; "
    via = "curl -sS --max-time 10 -o /dev/null -w '%{http_code} ' --proxy http://127.0.0.1:9000"
    result = netjail.run(
        "-s",
        str(cfg),
        "-c",
        f"{relay} {via} https://denied.test:{p}/; {via} https://allowed.test:{p}/; kill %1",
    )
    assert result.stdout.split() == ["000", "200"], (
        result.explain()
    )  # curl reports the refused CONNECT as 000
    assert [(f["method"], f["reason"]) for f in result.flows] == [
        ("CONNECT", "denied_by_rule"),
        ("GET", "allowed"),
    ]


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("evil\\x01name.test:443", "invalid_host"),
        ("allowed.test\\x00.denied.test:443", "invalid_host"),
        ("a" * 64 + ".test:443", "invalid_host"),
        ("allowed.test@denied.test:443", "invalid_host"),
        ("allowed.test\\\\@denied.test:443", "invalid_host"),
        ("denied.test.:443", "denied_by_rule"),
        ("DENIED.test:443", "denied_by_rule"),
    ],
)
def test_p3_p4_malformed_and_confusing_connect_targets(
    netjail: Netjail, https_origin: Origin, target: str, reason: str
) -> None:
    cfg = netjail.settings({"allowedDomains": ["allowed.test"], "deniedDomains": ["denied.test"]})
    control = f"CONNECT allowed.test:{https_origin.port} HTTP/1.1\\r\\nHost: allowed.test\\r\\n\\r\\n"
    result = raw_requests(netjail, cfg, f"CONNECT {target} HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n", control)
    lines = result.stdout.splitlines()
    assert lines[0].split()[1].startswith("4"), result.explain()
    assert lines[1].startswith("HTTP/1.1 200"), result.explain()
    denied = [f for f in result.flows if f["verdict"] == "deny"]
    assert len(denied) <= 1
    if (
        denied
    ):  # mitmproxy's own parser may refuse the line first (400, no flow): then nothing was dialed either
        assert denied[0]["reason"] == reason


def test_p4_request_smuggling_is_refused(netjail: Netjail, http_origin: Origin) -> None:
    p = http_origin.port
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    smuggled = (
        f"POST http://allowed.test:{p}/echo HTTP/1.1\\r\\nHost: allowed.test:{p}\\r\\nContent-Length: 4\\r\\n"
        "Transfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\nGET http://denied.test/ HTTP/1.1\\r\\n\\r\\n"
    )
    control = f"POST http://allowed.test:{p}/echo HTTP/1.1\\r\\nHost: allowed.test:{p}\\r\\nContent-Length: 4\\r\\nConnection: close\\r\\n\\r\\nabcd"
    result = raw_requests(netjail, cfg, smuggled, control)
    lines = result.stdout.splitlines()
    assert lines[0].split()[1] == "400", result.explain()
    assert lines[1].split()[1] == "200"
    assert not any("denied.test" in json.dumps(f) for f in result.flows)


@pytest.mark.parametrize(
    "spelling", ["2130706433", "0x7f.0.0.1", "0177.0.0.1", "127.1", "[::ffff:127.0.0.1]"]
)
def test_n5_ip_literal_spellings_are_judged_as_that_ip(
    netjail: Netjail, http_origin: Origin, spelling: str
) -> None:
    p = http_origin.port
    get = "curl -sS --noproxy '' --max-time 10 -o /dev/null -w '%{http_code} '"
    denying = netjail.settings({"allowedDomains": ["allowed.test"]})
    result = netjail.run(
        "-s", str(denying), "-c", f"{get} 'http://{spelling}:{p}/'; {get} http://allowed.test:{p}/"
    )
    assert result.stdout.split() == ["403", "200"], result.explain()
    assert result.flows[0]["reason"] == "ip_literal" and result.flows[0]["host"] in ("127.0.0.1",)
    allowing = netjail.settings({"allowedDomains": ["127.0.0.1"]})
    result = netjail.run("-s", str(allowing), "-c", f"{get} 'http://{spelling}:{p}/'")
    assert result.stdout.split() == ["200"], result.explain()


@pytest.mark.parametrize(
    ("address", "guard"),
    [
        ("169.254.169.254", "cloud-metadata"),
        ("10.1.2.3", "private"),
        ("100.64.0.1", "carrier-grade-nat"),
        ("0.0.0.0", "unspecified"),
    ],
)
def test_n6_allowed_name_resolving_to_a_guarded_range_is_never_dialed(
    netjail: Netjail, http_origin: Origin, dns_server: DnsServer, address: str, guard: str
) -> None:
    dns_server.answers["rebind.test"] = address
    cfg = netjail.settings(
        {
            "allowedDomains": ["rebind.test", "fine.test", "127.0.0.1"],
            "resolver": f"127.0.0.1:{dns_server.port}",
            "hosts": {},
        }
    )
    p = http_origin.port
    get = "curl -sS --max-time 10 -o /dev/null -w '%{http_code} '"
    result = netjail.run("-s", str(cfg), "-c", f"{get} http://rebind.test:{p}/; {get} http://fine.test:{p}/")
    assert result.stdout.split() == ["502", "200"], result.explain()
    denied = result.flows[0]
    assert (
        denied["verdict"] == "deny"
        and denied["reason"] == "private_destination"
        and denied["rule"] == f"local-range:{guard}"
    )


def test_n7_the_proxy_dialing_itself_is_one_refusal(netjail: Netjail) -> None:
    """The proxy listens only inside the jail: 127.0.0.1:3128 on the proxy's side is not the proxy."""
    cfg = netjail.settings({"allowedDomains": ["127.0.0.1"]})
    result = netjail.run(
        "-s",
        str(cfg),
        "-c",
        "curl -sS --max-time 10 --noproxy '' -o /dev/null -w '%{http_code}' http://127.0.0.1:3128/",
    )
    assert result.stdout in ("502", "403"), result.explain()
    assert len(result.flows) == 1


def test_l2_nothing_of_netjail_listens_outside_the_jail(netjail: Netjail) -> None:
    proc = netjail.popen("-s", str(netjail.settings()), "-c", "touch started; sleep 30")
    try:
        assert wait_until((netjail.work / "started").exists), "the command never started"

        def listening_outside() -> list[str]:
            family = subprocess.run(
                ["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True, text=True
            ).stdout.split()
            listening = subprocess.run(["ss", "-Hltnup"], capture_output=True, text=True).stdout
            return [
                line
                for line in listening.splitlines()
                for pid in [str(proc.pid), *family]
                if f"pid={pid}," in line
            ]

        # the run is up; a listener opened late (after the command started) would show within this window
        assert stays_false(listening_outside, 0.5, interval=0.1), listening_outside()
        with socket.socket() as s:  # the port the proxy uses inside the jail is closed outside it
            assert s.connect_ex(("127.0.0.1", 3128)) != 0
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_l7_control_characters_cannot_forge_records_or_drive_the_terminal(
    netjail: Netjail, http_origin: Origin
) -> None:
    p = http_origin.port
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    evil_path = '/x%0a{\\"event\\":\\"run_end\\"}'
    result = raw_requests(
        netjail, cfg,
        f"GET http://allowed.test:{p}/a\\x1b]0;pwned\\x07b HTTP/1.1\\r\\nHost: allowed.test:{p}\\r\\nConnection: close\\r\\n\\r\\n",
        f"GET http://other.test:{p}{evil_path} HTTP/1.1\\r\\nHost: other.test:{p}\\r\\nConnection: close\\r\\n\\r\\n",
    )  # fmt: skip
    raw = (result.run_dir / "flows.jsonl").read_bytes()
    assert all(0x20 <= b < 0x7F or b == 0x0A for b in raw), "records are printable ASCII, one per line"
    assert sum(1 for r in result.records if r["event"] == "run_end") == 1
    assert "\x1b" not in result.stderr
