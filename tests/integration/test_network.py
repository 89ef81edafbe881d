"""The network path end to end: real netjail, real bwrap, real mitmproxy, real origins on 127.0.0.1, real clients.

Every denial has a harmless control beside it: the same client, the same origin, an allowed name."""

from __future__ import annotations

import json

import pytest

from tests.support.netjail import Netjail
from tests.support.servers import Origin

pytestmark = pytest.mark.nonroot

CURL = "curl -sS --max-time 20"


def only_flow(result) -> dict:
    flows = result.flows
    assert len(flows) == 1, result.explain() + json.dumps(flows, indent=1)
    return flows[0]


def test_http_allowed_and_recorded_field_by_field(netjail: Netjail, http_origin: Origin) -> None:
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    result = netjail.run("-s", str(cfg), "-c", f"{CURL} http://allowed.test:{http_origin.port}/hello?q=1")
    assert result.returncode == 0, result.explain()
    assert result.stdout == "hello from http-origin\n"
    flow = only_flow(result)
    assert flow["verdict"] == "allow" and flow["reason"] == "allowed" and flow["rule"] == "allowed.test"
    assert flow["method"] == "GET" and flow["scheme"] == "http"
    assert flow["host"] == "allowed.test" and flow["port"] == http_origin.port
    assert flow["authority"] == f"allowed.test:{http_origin.port}"
    assert flow["path"] == "/hello?q=1"
    assert flow["url"] == f"http://allowed.test:{http_origin.port}/hello?q=1"
    assert flow["status"] == 200 and flow["http_version"] == "HTTP/1.1"
    assert flow["bytes_out"] == 0 and flow["bytes_in"] == len("hello from http-origin\n")
    assert flow["error"] is None and flow["sni"] is None
    assert flow["address"] == "127.0.0.1"
    assert flow["ts"].endswith("Z") and len(flow["ts"]) == len("2026-01-01T00:00:00.000Z")
    assert isinstance(flow["duration_ms"], float)
    records = result.records
    assert [r["event"] for r in records] == ["run_start", "flow_start", "flow", "run_end"]
    assert records[-1]["counts"]["allowed"] == 1 and records[-1]["exit_status"] == 0


def test_https_intercepted_with_test_ca_via_extra_ca_cert_paths(
    netjail: Netjail, https_origin: Origin
) -> None:
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    result = netjail.run("-s", str(cfg), "-c", f"{CURL} https://allowed.test:{https_origin.port}/x")
    assert result.returncode == 0, result.explain()
    assert result.stdout == "hello from https-origin\n"
    flow = only_flow(result)
    assert flow["scheme"] == "https" and flow["sni"] == "allowed.test" and flow["status"] == 200
    assert flow["verdict"] == "allow" and flow["bytes_in"] == len(result.stdout)


def test_https_works_with_every_ca_variable_unset(netjail: Netjail, https_origin: Origin) -> None:
    """The bound system bundle alone makes the run's CA trusted."""
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    unset = " ".join(
        f"-u {v}"
        for v in (
            "SSL_CERT_FILE",
            "REQUESTS_CA_BUNDLE",
            "CURL_CA_BUNDLE",
            "PIP_CERT",
            "GIT_SSL_CAINFO",
            "SSL_CERT_DIR",
        )
    )
    url = f"https://allowed.test:{https_origin.port}/"
    script = f"env {unset} {CURL} {url} && env {unset} python3 -c 'import urllib.request as u; print(u.urlopen(\"{url}\").status)'"
    result = netjail.run("-s", str(cfg), "-c", script)
    assert result.returncode == 0, result.explain()
    assert result.stdout == "hello from https-origin\n200\n"
    assert len(result.flows) == 2


def test_python_clients_urllib_and_requests(
    netjail: Netjail, https_origin: Origin, http_origin: Origin
) -> None:
    cfg = netjail.settings({"allowedDomains": ["allowed.test"], "deniedDomains": ["denied.test"]})
    import sys

    code = f"""
import urllib.request, urllib.error, requests
print(urllib.request.urlopen("https://allowed.test:{https_origin.port}/u").read().decode().strip())
print(requests.get("http://allowed.test:{http_origin.port}/r").text.strip())
r = requests.post("https://allowed.test:{https_origin.port}/echo", data=b"a" * 5000)
print(r.text.split()[0])
try:
    urllib.request.urlopen("http://denied.test:{http_origin.port}/")
except urllib.error.HTTPError as e:
    print(e.code, e.headers["X-Netjail-Denied"])
"""
    result = netjail.run("-s", str(cfg), "--", sys.executable, "-c", code)
    assert result.returncode == 0, result.explain()
    assert result.stdout.split("\n")[:4] == [
        "hello from https-origin",
        "hello from http-origin",
        "5000",
        "403 denied_by_rule",
    ]
    flows = result.flows
    assert [f["verdict"] for f in flows] == ["allow", "allow", "allow", "deny"]
    post = flows[2]
    assert post["method"] == "POST" and post["bytes_out"] == 5000 and post["sha256_out"]


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_denied_by_rule_with_reason_text(
    netjail: Netjail, http_origin: Origin, https_origin: Origin, scheme: str
) -> None:
    port = http_origin.port if scheme == "http" else https_origin.port
    cfg = netjail.settings(
        {
            "allowedDomains": ["allowed.test", "denied.test"],
            "deniedDomains": ["denied.test"],
            "deniedDomainReasons": {"denied.test": "uploads go elsewhere"},
        }
    )
    result = netjail.run(
        "-s", str(cfg), "-c",
        f"{CURL} -o /dev/null -w '%{{http_code}}\\n' {scheme}://denied.test:{port}/; "
        f"{CURL} -o /dev/null -w '%{{http_code}}\\n' {scheme}://allowed.test:{port}/",
    )  # fmt: skip
    flows = result.flows
    assert len(flows) == 2, result.explain()
    denied, control = flows
    assert (
        denied["verdict"] == "deny"
        and denied["reason"] == "denied_by_rule"
        and denied["rule"] == "denied.test"
    )
    assert denied["status"] == 403 and "uploads go elsewhere" in denied["detail"] and denied["bytes_in"] > 0
    assert denied["method"] == ("CONNECT" if scheme == "https" else "GET")
    assert control["verdict"] == "allow" and control["status"] == 200
    assert result.stdout.splitlines()[-1] == "200"
    assert "blocked 1 request" in result.stderr
    # the origin never saw the denied request
    assert all(host != f"denied.test:{port}" for _, _, host in (http_origin.seen + https_origin.seen))


def test_not_allowed_is_default_deny_and_summary_suggests_the_fix(
    netjail: Netjail, http_origin: Origin
) -> None:
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    result = netjail.run(
        "-s",
        str(cfg),
        "-c",
        f"{CURL} http://other.test:{http_origin.port}/; {CURL} http://allowed.test:{http_origin.port}/",
    )
    denied, control = result.flows
    assert denied["reason"] == "not_allowed" and denied["rule"] == "default-deny" and denied["status"] == 403
    assert "add 'other.test' to network.allowedDomains" in denied["detail"]
    assert control["verdict"] == "allow"
    assert '{"network": {"allowedDomains": ["other.test"]}}' in result.stderr
    assert str(result.run_dir) in result.stderr


def test_wildcard_matches_subdomains_not_the_apex(netjail: Netjail, http_origin: Origin) -> None:
    cfg = netjail.settings({"allowedDomains": ["*.example.test"]})
    p = http_origin.port
    result = netjail.run(
        "-s", str(cfg), "-c",
        f"for h in a.example.test b.a.example.test example.test; do {CURL} -o /dev/null -w '%{{http_code}} ' http://$h:{p}/; done",
    )  # fmt: skip
    assert result.stdout.split() == ["200", "200", "403"], result.explain()
    assert [f["verdict"] for f in result.flows] == ["allow", "allow", "deny"]
    assert result.flows[2]["reason"] == "not_allowed"


def test_ip_literal_needs_an_ip_rule(netjail: Netjail, http_origin: Origin) -> None:
    p = http_origin.port
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    # NO_PROXY names loopback inside the jail, so the client is told explicitly to use the proxy for it
    get = f"{CURL} --noproxy '' -o /dev/null -w '%{{http_code}} '"
    result = netjail.run("-s", str(cfg), "-c", f"{get} http://127.0.0.1:{p}/; {get} http://allowed.test:{p}/")
    assert result.stdout.split() == ["403", "200"], result.explain()
    assert result.flows[0]["reason"] == "ip_literal" and result.flows[0]["verdict"] == "deny"

    allowed = netjail.settings({"allowedDomains": ["127.0.0.1"]})
    result = netjail.run("-s", str(allowed), "-c", f"{get} http://127.0.0.1:{p}/")
    assert result.stdout.split() == ["200"], result.explain()
    assert result.flows[0]["verdict"] == "allow"


def test_allowed_name_resolving_to_a_private_address_is_denied(netjail: Netjail, http_origin: Origin) -> None:
    """`localhost` is allowed by name but resolves to 127.0.0.1: decided on the address dialed."""
    p = http_origin.port
    cfg = netjail.settings({"allowedDomains": ["localhost", "allowed.test"]})
    get = f"{CURL} --noproxy '' -o /dev/null -w '%{{http_code}} '"
    result = netjail.run("-s", str(cfg), "-c", f"{get} http://localhost:{p}/; {get} http://allowed.test:{p}/")
    assert result.stdout.split() == ["502", "200"], result.explain()
    denied = result.flows[0]
    assert denied["verdict"] == "deny" and denied["reason"] == "private_destination"
    assert denied["rule"] == "local-range:loopback"
    assert not any(path == "/" and host == f"localhost:{p}" for _, path, host in http_origin.seen)


def test_host_header_fronting_is_denied(netjail: Netjail, https_origin: Origin) -> None:
    p = https_origin.port
    cfg = netjail.settings({"allowedDomains": ["allowed.test"], "deniedDomains": ["denied.test"]})
    result = netjail.run(
        "-s", str(cfg), "-c",
        f"{CURL} -o /dev/null -w '%{{http_code}} ' -H 'Host: denied.test' https://allowed.test:{p}/; "
        f"{CURL} -o /dev/null -w '%{{http_code}}' https://allowed.test:{p}/",
    )  # fmt: skip
    assert result.stdout.split() == ["403", "200"], result.explain()
    fronted = result.flows[0]
    assert fronted["reason"] == "host_mismatch" and fronted["host"] == "allowed.test"
    assert fronted["authority"] == "denied.test"


def test_sni_fronting_is_denied(netjail: Netjail, https_origin: Origin) -> None:
    """CONNECT to an allowed host, then a TLS ClientHello naming a denied one."""
    import sys

    p = https_origin.port
    cfg = netjail.settings({"allowedDomains": ["allowed.test"], "deniedDomains": ["denied.test"]})
    code = f"""
import socket, ssl
def fetch(sni, host_header):
    s = socket.create_connection(("127.0.0.1", 3128))
    s.sendall(b"CONNECT allowed.test:{p} HTTP/1.1\\r\\nHost: allowed.test:{p}\\r\\n\\r\\n")
    assert s.recv(4096).startswith(b"HTTP/1.1 200")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    t = ctx.wrap_socket(s, server_hostname=sni)
    t.sendall(f"GET / HTTP/1.1\\r\\nHost: {{host_header}}\\r\\nConnection: close\\r\\n\\r\\n".encode())
    data = b""
    while chunk := t.recv(4096):
        data += chunk
    return data.split(b" ")[1].decode()
print(fetch("denied.test", "allowed.test:{p}"), fetch("allowed.test", "allowed.test:{p}"))
"""
    result = netjail.run("-s", str(cfg), "--", sys.executable, "-c", code)
    assert result.stdout.split() == ["403", "200"], result.explain()
    fronted, control = result.flows
    assert (
        fronted["reason"] == "sni_mismatch"
        and fronted["sni"] == "denied.test"
        and fronted["host"] == "allowed.test"
    )
    assert control["verdict"] == "allow"


def test_flow_file_reads_back_with_mitmproxy_including_denied_flows(
    netjail: Netjail, https_origin: Origin
) -> None:
    from mitmproxy import io

    p = https_origin.port
    cfg = netjail.settings({"allowedDomains": ["allowed.test"], "deniedDomains": ["denied.test"]})
    result = netjail.run(
        "-s", str(cfg), "-c",
        f"{CURL} -H 'Authorization: Bearer s3cret-token' https://allowed.test:{p}/a; {CURL} https://denied.test:{p}/b",
    )  # fmt: skip
    with open(result.run_dir / "flows.mitm", "rb") as f:
        flows = list(io.FlowReader(f).stream())
    assert [(fl.request.method, fl.request.host) for fl in flows] == [
        ("GET", "allowed.test"),
        ("CONNECT", "denied.test"),
    ]
    assert flows[0].response.status_code == 200 and flows[0].response.content == b"hello from https-origin\n"
    assert flows[1].response.status_code == 403
    assert flows[1].metadata["netjail"]["reason"] == "denied_by_rule"
    stored_auth = flows[0].request.headers["Authorization"]
    assert "s3cret-token" not in stored_auth and stored_auth.startswith("[redacted sha256:")
    assert "s3cret-token" not in json.dumps(result.flows)
    assert result.flows[0]["redacted"] == ["authorization"]


def test_large_body_is_streamed_counted_and_capped_in_the_flow_file(
    netjail: Netjail, https_origin: Origin
) -> None:
    from mitmproxy import io

    p = https_origin.port
    size = 5 * 1024 * 1024
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]}, record={"bodyCap": 1000})
    result = netjail.run("-s", str(cfg), "-c", f"{CURL} https://allowed.test:{p}/bytes/{size} | wc -c")
    assert result.stdout.strip() == str(size), result.explain()
    flow = only_flow(result)
    assert flow["bytes_in"] == size
    with open(result.run_dir / "flows.mitm", "rb") as f:
        stored = next(io.FlowReader(f).stream())
    assert len(stored.response.raw_content) == 1000


def test_one_record_per_request_in_a_keep_alive_tunnel(netjail: Netjail, https_origin: Origin) -> None:
    p = https_origin.port
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    urls = " ".join(f"https://allowed.test:{p}/{i}" for i in range(3))
    result = netjail.run(
        "-s", str(cfg), "-c", f"{CURL} --http1.1 -o /dev/null -o /dev/null -o /dev/null {urls}"
    )
    assert result.returncode == 0, result.explain()
    assert [f["path"] for f in result.flows] == ["/0", "/1", "/2"]


def test_tunnel_without_a_completed_request_gives_one_record(netjail: Netjail, https_origin: Origin) -> None:
    """The client refuses the proxy's certificate (it trusts only its own bundle): one record, client_tls_failed."""
    p = https_origin.port
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    result = netjail.run(
        "-s", str(cfg), "-c",
        f"{CURL} --cacert {netjail.jail_test_ca} https://allowed.test:{p}/; echo rc=$?; {CURL} https://allowed.test:{p}/",
    )  # fmt: skip
    assert "rc=60" in result.stdout, result.explain()
    failed, control = result.flows
    assert (
        failed["method"] == "CONNECT"
        and failed["reason"] == "client_tls_failed"
        and failed["verdict"] == "allow"
    )
    assert "excludeDomains" in failed["detail"]
    assert control["status"] == 200


def test_upstream_failure_is_recorded_as_such(netjail: Netjail) -> None:
    import socket

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    result = netjail.run(
        "-s", str(cfg), "-c", f"{CURL} -o /dev/null -w '%{{http_code}}' http://allowed.test:{port}/"
    )
    assert result.stdout == "502", result.explain()
    flow = only_flow(result)
    assert (
        flow["verdict"] == "allow" and flow["reason"] == "upstream_error" and flow["error_kind"] == "refused"
    )
    assert flow["status"] == 502
    assert "failed upstream" in result.stderr


def test_tls_exclude_domains_tunnels_without_interception(netjail: Netjail, https_origin: Origin) -> None:
    """The client verifies the origin's own certificate (only the test CA is given): no interception happened."""
    p = https_origin.port
    cfg = netjail.settings(
        {
            "allowedDomains": ["allowed.test"],
            "tlsTerminate": {
                "excludeDomains": ["allowed.test"],
                "extraCaCertPaths": [str(netjail.test_ca_path)],
            },
        }
    )
    result = netjail.run(
        "-s", str(cfg), "-c", f"{CURL} --cacert {netjail.jail_test_ca} https://allowed.test:{p}/"
    )
    assert result.stdout == "hello from https-origin\n", result.explain()
    flow = only_flow(result)
    assert flow["method"] == "CONNECT" and flow["verdict"] == "allow"


def test_no_network_outside_the_proxy(netjail: Netjail, http_origin: Origin) -> None:
    """N1 in proxy-variables mode: a client that ignores the proxy has no route at all; the control goes through."""
    p = http_origin.port
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    result = netjail.run(
        "-s", str(cfg), "-c",
        f"{CURL} --noproxy '*' http://127.0.0.1:{p}/; echo direct=$?; {CURL} -o /dev/null -w '%{{http_code}}' http://allowed.test:{p}/",
    )  # fmt: skip
    assert "direct=7" in result.stdout and result.stdout.endswith("200"), result.explain()
    assert len(http_origin.seen) >= 1
    assert len(result.flows) == 1


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_many_keep_alive_requests_through_the_proxy(
    netjail: Netjail, http_origin: Origin, https_origin: Origin, scheme: str
) -> None:
    """Upstream connections are pooled by name: 30 requests on one client connection all succeed."""
    port = http_origin.port if scheme == "http" else https_origin.port
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    urls = " ".join(f"-o /dev/null {scheme}://allowed.test:{port}/{i}" for i in range(30))
    result = netjail.run("-s", str(cfg), "-c", f"{CURL} -w '%{{http_code}} ' {urls}")
    assert result.stdout.split() == ["200"] * 30, result.explain()
    assert len(result.flows) == 30 and all(f["status"] == 200 for f in result.flows)
