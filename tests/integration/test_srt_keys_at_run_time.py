"""What srt 0.0.81's honoured keys do in a real run (real netjail, bwrap, mitmproxy, loopback origins), each
beside a control run or request without the key: stripResponseHeaders, refuseOpaqueTunnels,
tlsTerminate.maxTunnels and literal path entries. Their load-time verdicts: tests/unit/settings/test_srt_081_keys.py."""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.netjail import Netjail
from tests.support.servers import Origin, RawEcho

pytestmark = pytest.mark.nonroot

CURL = "curl -sS --max-time 20"


class _CookieHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = b"cookies\n"
        self.send_response(200)
        self.send_header("Set-Cookie", "session=secret")
        self.send_header("X_Trace.Id", "abc")
        self.send_header("X-Kept", "yes")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_strip_response_headers_never_reach_the_client(netjail: Netjail) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CookieHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://allowed.test:{server.server_address[1]}/"
        stripped = netjail.settings(
            {"allowedDomains": ["allowed.test"], "stripResponseHeaders": ["set-cookie", "x-trace-id"]}
        )
        result = netjail.run("-s", str(stripped), "-c", f"{CURL} -D - -o /dev/null {url}")
        assert result.returncode == 0, result.explain()
        headers = result.stdout.lower()
        assert "x-kept: yes" in headers  # the control: other headers pass
        assert "set-cookie" not in headers and "x_trace.id" not in headers, result.stdout
        control = netjail.run(
            "-s",
            str(netjail.settings({"allowedDomains": ["allowed.test"]})),
            "-c",
            f"{CURL} -D - -o /dev/null {url}",
        )
        assert "set-cookie: session=secret" in control.stdout.lower(), control.explain()
    finally:
        server.shutdown()


def test_refuse_opaque_tunnels_refuses_raw_tcp_and_the_control_passes(
    netjail: Netjail, raw_echo: RawEcho
) -> None:
    command = raw_echo.command()
    control = netjail.run("-s", str(netjail.settings({"allowedDomains": ["allowed.test"]})), "-c", command)
    assert control.stdout.split()[-1] == "ping", control.explain()
    assert raw_echo.received == [b"ping\n"]
    raw_echo.received.clear()
    cfg = netjail.settings({"allowedDomains": ["allowed.test"], "refuseOpaqueTunnels": True})
    result = netjail.run("-s", str(cfg), "-c", command)
    assert "ping" not in result.stdout and raw_echo.received == [], result.explain()
    tcp = [f for f in result.flows if f["scheme"] == "tcp"]
    assert [(f["verdict"], f["reason"], f["rule"]) for f in tcp] == [
        ("deny", "opaque_tunnel", "refuseOpaqueTunnels")
    ]


TWO_TUNNELS = r"""
import socket, sys
def connect():
    s = socket.create_connection(("127.0.0.1", 3128), timeout=10)
    s.sendall(f"CONNECT allowed.test:{sys.argv[1]} HTTP/1.1\r\nHost: allowed.test:{sys.argv[1]}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head and (chunk := s.recv(4096)):
        head += chunk
    return s, head.split(b"\r\n")[0].decode()
first, first_status = connect()
second, second_status = connect()
print(first_status, "|", second_status)
"""


def test_max_tunnels_answers_503_past_the_cap(netjail: Netjail, https_origin: Origin) -> None:
    command = f"{sys.executable} -c '{TWO_TUNNELS}' {https_origin.port}"
    cfg = netjail.settings(
        {
            "allowedDomains": ["allowed.test"],
            "tlsTerminate": {"extraCaCertPaths": [str(netjail.test_ca_path)], "maxTunnels": 1},
        }
    )
    result = netjail.run("-s", str(cfg), "-c", command)
    first, second = result.stdout.strip().split(" | ")
    assert first.split()[1] == "200" and second.split()[1] == "503", result.explain()
    denied = [f for f in result.flows if f["verdict"] == "deny"]
    assert [(f["reason"], f["rule"]) for f in denied] == [("tunnel_limit", "tlsTerminate.maxTunnels")]
    control = netjail.run("-s", str(netjail.settings({"allowedDomains": ["allowed.test"]})), "-c", command)
    assert control.stdout.strip().split(" | ")[1].split()[1] == "200", control.explain()


def test_a_literal_path_entry_names_that_path_and_is_no_pattern(netjail: Netjail) -> None:
    (netjail.work / "secret*").write_text("STAR")
    (netjail.work / "secret-other").write_text("OTHER")
    command = "cat 'secret*'; echo; cat secret-other"
    literal = netjail.settings(
        filesystem={"allowWrite": [], "denyRead": [{"path": "secret*", "literal": True}]}
    )
    result = netjail.run("-s", str(literal), "-c", command)
    assert "STAR" not in result.stdout and "OTHER" in result.stdout, result.explain()
    pattern = netjail.settings(
        filesystem={"allowWrite": [], "denyRead": ["secret*"]}
    )  # the control: a pattern
    spelled = netjail.run("-s", str(pattern), "-c", command)
    assert "STAR" not in spelled.stdout and "OTHER" not in spelled.stdout, spelled.explain()
