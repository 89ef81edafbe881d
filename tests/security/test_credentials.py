"""Masked credentials (settings `credentials`, mode "mask"): the command holds placeholders, the real value reaches
only its inject hosts over a TLS connection netjail terminated, and no record, flow file, HAR or log holds it.

Real parts: the netjail binary, curl and Python inside the jail, and a loopback origin that echoes what it received
(headers, query, decoded body). Each blocked attempt beside its control."""

from __future__ import annotations

import base64
import gzip
import json
import secrets
import ssl
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme
from mitmproxy import io as mitm_io

from tests.support.netjail import TEST_NAMES, Netjail, Result
from tests.support.servers import tls_server_context

CURL = "curl -sS --max-time 10"
REAL_TOKEN = "sk-test-" + secrets.token_urlsafe(30)  # what the host holds; the command must never see it
NPM_TOKEN = "npm_" + secrets.token_hex(18)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class EchoOrigin:
    """Records each request (path, headers, body decoded from gzip/chunked) and echoes it as JSON; `/echo-secret`
    answers with the real token in its body, as a token-refresh endpoint would."""

    port: int
    server: ThreadingHTTPServer
    seen: list[Seen] = field(default_factory=list)

    def everything(self) -> bytes:
        return b"\n".join(s.path.encode() + json.dumps(s.headers).encode() + s.body for s in self.seen)


def _echo_handler(origin_seen: list[Seen]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = b""
                while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                    data += self.rfile.read(size)
                    self.rfile.readline()
                self.rfile.readline()
            else:
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            return gzip.decompress(data) if self.headers.get("Content-Encoding") == "gzip" else data

        def _handle(self) -> None:
            seen = Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, self._body())
            origin_seen.append(seen)
            reply = (
                REAL_TOKEN.encode()
                if self.path.startswith("/echo-secret")
                else json.dumps(
                    {"path": seen.path, "headers": seen.headers, "body": seen.body.decode("latin-1")}
                ).encode()
            )
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_GET = do_POST = do_PUT = _handle

    return Handler


def _start(context: ssl.SSLContext | None) -> EchoOrigin:
    seen: list[Seen] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _echo_handler(seen))
    server.daemon_threads = True
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return EchoOrigin(server.server_address[1], server, seen)


@pytest.fixture
def echo_https(test_ca: tuple[trustme.CA, Path]) -> Iterator[EchoOrigin]:
    origin = _start(tls_server_context(test_ca[0], *TEST_NAMES, "127.0.0.1"))
    yield origin
    origin.server.shutdown()


@pytest.fixture
def echo_http() -> Iterator[EchoOrigin]:
    origin = _start(None)
    yield origin
    origin.server.shutdown()


def masked_settings(netjail: Netjail, credentials: dict, allowed: list[str] | None = None) -> Path:
    return netjail.settings(
        network={"allowedDomains": allowed or ["allowed.test", "other.test"]},
        credentials=credentials,
    )


TOKEN_ENTRY = {"envVars": [{"name": "API_TOKEN", "mode": "mask", "injectHosts": ["allowed.test"]}]}


def run_with_token(netjail: Netjail, settings: Path, command: str, *extra: str) -> Result:
    before = netjail.latest_run()
    proc = netjail.command(
        *extra, "-s", str(settings), "-c", command, env={**netjail.env, "API_TOKEN": REAL_TOKEN}
    )
    after = netjail.latest_run()
    return Result(proc.returncode, proc.stdout, proc.stderr, after if after != before else None)


def forms(value: str) -> list[bytes]:
    """The value as a leak could carry it: raw, URL-encoded, base64 (at each alignment), JSON-escaped."""
    raw = value.encode()
    found = [raw, urllib.parse.quote(value, safe="").encode(), json.dumps(value).encode()[1:-1]]
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + raw)
        found.append(encoded[4 : len(encoded) - 4])
    return found


def assert_nowhere(netjail: Netjail, result: Result, value: str) -> None:
    """No file of the run directory (flows.mitm raw and decoded too), no HAR export, no output holds `value`."""
    assert result.run_dir is not None
    texts: list[tuple[str, bytes]] = [
        (p.name, p.read_bytes()) for p in result.run_dir.rglob("*") if p.is_file()
    ]
    with (result.run_dir / "flows.mitm").open("rb") as f:
        for flow in mitm_io.FlowReader(f).stream():
            for part in ("request", "response"):
                message = getattr(flow, part, None)
                if message is not None:
                    texts.append((f"flows.mitm {part} headers", bytes(message.headers)))
                    texts.append((f"flows.mitm {part} body", message.get_content(strict=False) or b""))
            if hasattr(flow, "request"):
                texts.append(("flows.mitm url", flow.request.url.encode()))
            for message in (
                getattr(flow, "websocket", None).messages if getattr(flow, "websocket", None) else []
            ):
                texts.append(("flows.mitm websocket message", message.content))
    har = netjail.command("export", "--har", "-", str(result.run_dir))
    assert har.returncode == 0, har.stderr
    texts.append(("HAR export", har.stdout.encode()))
    texts.append(("stdout/stderr", (result.stdout + result.stderr).encode()))
    for name, data in texts:
        for form in forms(value):
            assert form not in data, f"{name} holds the real value ({form[:12]!r}...)"


def test_the_command_sees_a_same_shape_placeholder_and_the_inject_host_gets_the_real_value(
    netjail: Netjail, echo_https: EchoOrigin
) -> None:
    settings = masked_settings(netjail, TOKEN_ENTRY)
    url = f"https://allowed.test:{echo_https.port}"
    result = run_with_token(
        netjail,
        settings,
        f'printf "%s" "$API_TOKEN" > seen-token; {CURL} -H "Authorization: Bearer $API_TOKEN" "{url}/h?key=$API_TOKEN"',
        "-d",  # the debug log goes to stderr, which assert_nowhere scans
    )
    assert result.returncode == 0, result.explain()
    placeholder = (netjail.work / "seen-token").read_text()
    # control: the command holds a placeholder of the token's shape, not the token
    assert placeholder != REAL_TOKEN and len(placeholder) == len(REAL_TOKEN) and placeholder.startswith("sk-")
    seen = echo_https.seen[-1]
    assert seen.headers["authorization"] == f"Bearer {REAL_TOKEN}"
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(seen.path).query)["key"] == [REAL_TOKEN]
    # what the command got back echoes the real value: it arrives as the placeholder
    assert REAL_TOKEN not in result.stdout and placeholder in result.stdout
    flow = next(f for f in result.flows if f.get("credentials"))
    injected = flow["credentials"]["injected"][0]
    assert injected["credential"].startswith("credentials.envVars[0]") and injected["count"] == 2
    assert set(injected["where"]) == {"header authorization", "query"}
    assert_nowhere(netjail, result, REAL_TOKEN)


def test_a_placeholder_sent_toward_another_allowed_host_is_refused(
    netjail: Netjail, echo_https: EchoOrigin
) -> None:
    """Beyond srt: moving the credential to a host it is not for is an attempt, refused and recorded."""
    settings = masked_settings(netjail, TOKEN_ENTRY)
    result = run_with_token(
        netjail,
        settings,
        f'{CURL} -o /dev/null -w "%{{http_code}} " -H "X-Api-Key: $API_TOKEN" https://other.test:{echo_https.port}/a;'
        f' {CURL} -H "X-Api-Key: $API_TOKEN" https://allowed.test:{echo_https.port}/b',
    )
    assert result.returncode == 0, result.explain()
    assert result.stdout.startswith("403 "), result.explain()
    by_path = {s.path: s for s in echo_https.seen}
    assert "/a" not in by_path  # the attempt never left
    assert by_path["/b"].headers["x-api-key"] == REAL_TOKEN  # the control: its inject host
    moved = next(f for f in result.flows if f["host"] == "other.test")
    assert (moved["verdict"], moved["reason"]) == ("deny", "credential_misdirected")
    assert moved["credentials"]["placeholder_left"][0]["where"] == ["header x-api-key"]
    assert_nowhere(netjail, result, REAL_TOKEN)


def test_flows_and_audit_show_where_each_credential_was_injected_or_refused(
    netjail: Netjail, echo_https: EchoOrigin
) -> None:
    settings = masked_settings(netjail, TOKEN_ENTRY)
    result = run_with_token(
        netjail,
        settings,
        f'{CURL} -o /dev/null -H "X-Api-Key: $API_TOKEN" https://other.test:{echo_https.port}/a;'
        f' {CURL} -o /dev/null -H "X-Api-Key: $API_TOKEN" https://allowed.test:{echo_https.port}/b;'
        f" {CURL} -o /dev/null https://allowed.test:{echo_https.port}/plain",
    )
    assert result.returncode == 0, result.explain()
    listed = netjail.command("flows", "--credentials", str(result.run_dir))
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[4]: line for line in listed.stdout.splitlines() if line.strip()}
    assert "/plain" not in rows  # the control: a flow with no credential is not listed
    assert "credential_misdirected [placeholder credentials.envVars[0]" in rows["/a"]
    assert "allowed [injected credentials.envVars[0]" in rows["/b"]
    assert REAL_TOKEN not in listed.stdout
    every = netjail.command("flows", str(result.run_dir))
    assert "/plain" in every.stdout and "[injected" in every.stdout
    # the audit: where it was injected, and the attempt to move it, flagged (audit --check fails)
    audit = netjail.command("audit", "--check", str(result.run_dir))
    assert audit.returncode == 3, audit.stdout + audit.stderr
    name = "credentials.envVars[0] (API_TOKEN)"
    assert f"{name}: injected at allowed.test, 1× in 1 request (header x-api-key)" in audit.stdout
    assert (
        f"{name}: its placeholder was sent toward other.test (header x-api-key), which it is not for: refused"
        in (audit.stdout)
    )
    report = json.loads(netjail.command("audit", "--json", str(result.run_dir)).stdout)
    assert {(u["host"], u["kind"]) for u in report["credentials"]} == {
        ("allowed.test", "injected"),
        ("other.test", "placeholder_left"),
    }
    assert REAL_TOKEN not in audit.stdout


def test_audit_check_passes_a_run_whose_credentials_went_only_where_they_are_for(
    netjail: Netjail, echo_https: EchoOrigin
) -> None:
    settings = masked_settings(netjail, TOKEN_ENTRY)
    command = f'{CURL} -o /dev/null -H "X-Api-Key: $API_TOKEN" https://allowed.test:{echo_https.port}/b'
    result = run_with_token(netjail, settings, command)
    assert result.returncode == 0, result.explain()
    audit = netjail.command("audit", "--check", str(result.run_dir))
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "injected at allowed.test" in audit.stdout and "Flagged: nothing" in audit.stdout


def test_plain_http_gets_no_real_value_unless_allow_plaintext_inject(
    netjail: Netjail, echo_http: EchoOrigin
) -> None:
    command = f'{CURL} -H "Authorization: Bearer $API_TOKEN" http://allowed.test:{echo_http.port}/plain'
    result = run_with_token(netjail, masked_settings(netjail, TOKEN_ENTRY), command)
    assert result.returncode == 0, result.explain()
    assert REAL_TOKEN not in echo_http.seen[-1].headers["authorization"]  # the attempt: cleartext
    opted_in = masked_settings(netjail, {**TOKEN_ENTRY, "allowPlaintextInject": True})
    control = run_with_token(netjail, opted_in, command)
    assert control.returncode == 0, control.explain()
    assert echo_http.seen[-1].headers["authorization"] == f"Bearer {REAL_TOKEN}"  # the control: opted in
    assert_nowhere(netjail, result, REAL_TOKEN)
    assert_nowhere(netjail, control, REAL_TOKEN)


WEBSOCKET_CLIENT = r"""
import json, os, socket, sys
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Message, Request
host, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", 3128), timeout=5)
s.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
assert s.recv(4096).startswith(b"HTTP/1.1 200")
ws = WSConnection(ConnectionType.CLIENT)
s.sendall(ws.send(Request(host=f"{host}:{port}", target="/chat")))
def events():
    try:
        data = s.recv(65536)
    except OSError:
        data = b""
    if not data:
        return None
    ws.receive_data(data)
    return list(ws.events())
assert any(isinstance(e, AcceptConnection) for e in events())
s.sendall(ws.send(Message(data=json.dumps({"type": "auth", "key": os.environ["API_TOKEN"]}))))
got = events()
echoed = [e.data for e in got or [] if isinstance(e, Message)]
print("echo " + (echoed[0] if echoed else "none"))
"""


def test_a_websocket_message_gets_the_real_value_at_the_inject_host_only(netjail: Netjail, ws_origin) -> None:
    script = netjail.work / "ws_client.py"
    script.write_text(WEBSOCKET_CLIENT)
    settings = masked_settings(netjail, {**TOKEN_ENTRY, "allowPlaintextInject": True})
    result = run_with_token(
        netjail,
        settings,
        f'printf "%s" "$API_TOKEN" > seen-token; {sys.executable} {script} allowed.test {ws_origin.port};'
        f" {sys.executable} {script} other.test {ws_origin.port}",
    )
    assert result.returncode == 0, result.explain()
    placeholder = (netjail.work / "seen-token").read_text()
    # the inject host got the real value; its echo came back to the command as the placeholder
    assert ws_origin.received == [json.dumps({"type": "auth", "key": REAL_TOKEN})]
    lines = result.stdout.splitlines()
    assert lines[0] == "echo " + json.dumps({"type": "auth", "key": placeholder})
    assert lines[1] == "echo none"  # toward other.test: the message never left (the origin got one message)
    by_host = {f["host"]: f for f in result.flows if f.get("websocket")}
    assert by_host["allowed.test"]["credentials"]["injected"][0]["where"] == ["websocket message"]
    moved = by_host["other.test"]
    assert (moved["verdict"], moved["reason"]) == ("deny", "credential_misdirected")
    assert moved["credentials"]["placeholder_left"][0]["where"] == ["websocket message"]
    assert_nowhere(netjail, result, REAL_TOKEN)


PYTHON_BODIES = r"""
import gzip, http.client, json, os, ssl, sys
token, port = os.environ["API_TOKEN"], int(sys.argv[1])
context = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
def post(path, body, headers, host="allowed.test"):
    conn = http.client.HTTPSConnection("127.0.0.1", 3128, context=context)
    conn.set_tunnel(f"{host}:{port}")
    if callable(body):
        conn.putrequest("POST", path)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for piece in body():
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        conn.send(b"0\r\n\r\n")
    else:
        conn.request("POST", path, body, headers)
    print(path, conn.getresponse().status)
post("/json", json.dumps({"key": token}).encode(), {"Content-Type": "application/json"})
post("/gzip", gzip.compress(json.dumps({"key": token}).encode()), {"Content-Encoding": "gzip"})
data = ("x" * 50 + token + "y" * 50).encode()
post("/chunked", lambda: [data[i:i + 7] for i in range(0, len(data), 7)], {})
post("/elsewhere", json.dumps({"key": token}).encode(), {}, host="other.test")
post("/harmless", json.dumps({"key": "nothing secret"}).encode(), {}, host="other.test")
try:
    post("/elsewhere-chunked", lambda: [data[i:i + 7] for i in range(0, len(data), 7)], {}, host="other.test")
except (OSError, http.client.HTTPException) as e:
    print("/elsewhere-chunked cut", type(e).__name__)
"""


@pytest.mark.parametrize("caps", [False, True], ids=["no caps", "with upload caps"])
def test_bodies_json_gzip_and_chunked_get_the_real_value_only_at_the_inject_host(
    netjail: Netjail, echo_https: EchoOrigin, caps: bool
) -> None:
    """With upload caps the bodies are counted too: the caps must not stream a body the injector reads whole."""
    (netjail.work / "bodies.py").write_text(PYTHON_BODIES)
    network: dict = {"allowedDomains": ["allowed.test", "other.test"]}
    if caps:
        network["limits"] = {"maxRequestUploadBytes": 1_000_000, "maxRunUploadBytes": 10_000_000}
    settings = netjail.settings(network=network, credentials=TOKEN_ENTRY)
    result = run_with_token(netjail, settings, f"{sys.executable} bodies.py {echo_https.port}")
    assert result.returncode == 0, result.explain()
    by_path = {s.path: s for s in echo_https.seen}
    assert json.loads(by_path["/json"].body) == {"key": REAL_TOKEN}
    assert json.loads(by_path["/gzip"].body) == {"key": REAL_TOKEN}
    assert by_path["/chunked"].body == ("x" * 50 + REAL_TOKEN + "y" * 50).encode()
    # the attempts (a buffered body, refused before anything is sent; a chunked one, cut before the placeholder)
    assert "/elsewhere 403" in result.stdout and "/elsewhere" not in by_path, result.explain()
    assert "/elsewhere-chunked" not in by_path and "/elsewhere-chunked 200" not in result.stdout
    assert json.loads(by_path["/harmless"].body) == {"key": "nothing secret"}  # the control toward that host
    refused = [f for f in result.flows if f.get("path", "").startswith("/elsewhere")]
    assert len(refused) == 2 and {f["reason"] for f in refused} == {"credential_misdirected"}, refused
    assert all(f["credentials"]["placeholder_left"][0]["where"] == ["body"] for f in refused)
    assert_nowhere(netjail, result, REAL_TOKEN)


def test_a_masked_npmrc_reads_with_the_placeholder_and_authenticates_at_its_host(
    netjail: Netjail, echo_https: EchoOrigin
) -> None:
    npmrc = netjail.tmp_path / "home-npmrc"
    npmrc.write_text(
        f"registry=https://allowed.test:{echo_https.port}/\n//allowed.test/:_authToken={NPM_TOKEN}\n"
    )
    credentials = {
        "files": [
            {
                "path": str(npmrc),
                "mode": "mask",
                "extract": r"_authToken=(\S+)",
                "injectHosts": ["allowed.test"],
            }
        ]
    }
    settings = masked_settings(netjail, credentials)
    command = (
        f"cat {npmrc} > seen-npmrc; token=$(sed -n 's/.*_authToken=//p' {npmrc});"
        f' {CURL} -H "Authorization: Bearer $token" https://allowed.test:{echo_https.port}/npm'
    )
    result = run_with_token(netjail, settings, command)
    assert result.returncode == 0, result.explain()
    seen_file = (netjail.work / "seen-npmrc").read_text()
    assert NPM_TOKEN not in seen_file and seen_file.startswith("registry=https://allowed.test")
    assert "_authToken=npm_" in seen_file and len(seen_file) == len(npmrc.read_text())
    assert echo_https.seen[-1].headers["authorization"] == f"Bearer {NPM_TOKEN}"
    assert_nowhere(netjail, result, NPM_TOKEN)


def test_an_extract_that_matches_nothing_refuses_the_run_by_default(netjail: Netjail) -> None:
    credentials = {"envVars": [{"name": "API_TOKEN", "mode": "mask", "extract": r"^ghp_(\w+)$"}]}
    result = run_with_token(netjail, masked_settings(netjail, credentials), "echo ran")
    assert result.returncode == 125 and "ran" not in result.stdout
    assert "matches nothing" in result.stderr or "nothing could be masked" in result.stderr
    assert REAL_TOKEN not in result.stderr
    denied = {"envVars": [{**credentials["envVars"][0], "onExtractNoMatch": "deny"}]}
    control = run_with_token(netjail, masked_settings(netjail, denied), 'echo "ran:${API_TOKEN:-unset}"')
    assert control.returncode == 0 and "ran:unset" in control.stdout, control.explain()


AWS_ID = "AKIA" + secrets.token_hex(8).upper()
AWS_SECRET = secrets.token_urlsafe(30)[:40]
AWS_TOKEN = "IQoJb3JpZ2luX2VjE" + secrets.token_urlsafe(60)


def _s3_handler(results: list[tuple[str, bool, bytes]]) -> type[BaseHTTPRequestHandler]:
    """An S3-style origin that verifies each request's SigV4 signature with the real keys (tests/support/sigv4.py,
    independent of botocore) and answers 200 or 403."""
    from tests.support.sigv4 import verify

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_PUT(self) -> None:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body = b""
                while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                    body += self.rfile.read(size)
                    self.rfile.readline()
                self.rfile.readline()
            else:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            ok = verify(AWS_SECRET, AWS_ID, "PUT", self.path, headers, body)
            ok = ok and headers.get("x-amz-security-token") == AWS_TOKEN
            results.append((self.path, ok, body))
            self.send_response(200 if ok else 403)
            self.send_header("Content-Length", "0")
            self.send_header("ETag", '"0"')
            self.end_headers()

        do_POST = do_PUT

    return Handler


@pytest.fixture
def s3_origin(test_ca: tuple[trustme.CA, Path]) -> Iterator[tuple[int, list[tuple[str, bool, bytes]]]]:
    results: list[tuple[str, bool, bytes]] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _s3_handler(results))
    server.daemon_threads = True
    server.socket = tls_server_context(test_ca[0], *TEST_NAMES, "127.0.0.1").wrap_socket(
        server.socket, server_side=True
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], results
    server.shutdown()


BOTO3_PUT = r"""
import os, sys, boto3, botocore.auth, botocore.awsrequest, botocore.credentials, hashlib
from botocore.config import Config
port = sys.argv[1]
s3 = boto3.client("s3", endpoint_url=f"https://allowed.test:{port}", region_name="eu-west-1",
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                read_timeout=15, connect_timeout=10))
try:
    s3.put_object(Bucket="bucket", Key="dir/key one.txt", Body=b"hello from the jail")  # the SDK's defaults
    print("put_object ok")
except Exception as e:
    print("put_object failed", type(e).__name__)
# a literal payload hash over a body that holds a masked token: swapped, hashed again and re-signed
body = ("token=" + os.environ["API_TOKEN"]).encode()
request = botocore.awsrequest.AWSRequest("PUT", f"https://allowed.test:{port}/bucket/literal", data=body,
                                         headers={"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()})
creds = botocore.credentials.Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"],
                                         os.environ["AWS_SESSION_TOKEN"])
botocore.auth.S3SigV4Auth(creds, "s3", "eu-west-1").add_auth(request)
import urllib3
http = urllib3.ProxyManager(os.environ["HTTPS_PROXY"], ca_certs=os.environ["SSL_CERT_FILE"])
print("literal", http.request("PUT", request.url, body=body, headers=dict(request.headers)).status)
"""

AWS_TRIO = [
    {"name": "AWS_ACCESS_KEY_ID", "mode": "mask"},
    {"name": "AWS_SECRET_ACCESS_KEY", "mode": "mask"},
    {"name": "AWS_SESSION_TOKEN", "mode": "mask"},
]


def test_sigv4_requests_signed_with_placeholder_keys_are_re_signed_with_the_real_ones(
    netjail: Netjail, s3_origin: tuple[int, list[tuple[str, bool, bytes]]]
) -> None:
    port, results = s3_origin
    (netjail.work / "put.py").write_text(BOTO3_PUT)
    env = {
        **netjail.env,
        "AWS_ACCESS_KEY_ID": AWS_ID,
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "AWS_SESSION_TOKEN": AWS_TOKEN,
        "API_TOKEN": REAL_TOKEN,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    command = f"{sys.executable} put.py {port}"

    def run(inject_hosts: list[str]) -> Result:
        entries = [{**e, "injectHosts": inject_hosts} for e in AWS_TRIO]
        entries.append({"name": "API_TOKEN", "mode": "mask", "injectHosts": inject_hosts})
        settings = masked_settings(netjail, {"envVars": entries})
        before = netjail.latest_run()
        proc = netjail.command("-s", str(settings), "-c", command, env=env)
        return Result(
            proc.returncode,
            proc.stdout,
            proc.stderr,
            netjail.latest_run() if netjail.latest_run() != before else None,
        )

    # the keys are for another host: placeholder keys toward this one are an attempt to move them, refused
    control = run(["other.test"])
    assert "put_object failed" in control.stdout and "literal 403" in control.stdout, control.explain()
    assert results == []  # nothing reached the origin
    assert {f["reason"] for f in control.flows if f.get("path", "").startswith("/bucket")} == {
        "credential_misdirected"
    }
    result = run(["allowed.test"])
    assert "put_object ok" in result.stdout and "literal 200" in result.stdout, result.explain()
    assert [ok for _, ok, _ in results] == [True, True]
    assert results[1][2] == f"token={REAL_TOKEN}".encode()  # the body swap, covered by the new hash
    flow = next(f for f in result.flows if f.get("path", "").startswith("/bucket/dir"))
    assert flow["credentials"]["sigv4"] == "re-signed"
    for secret in (AWS_ID, AWS_SECRET, AWS_TOKEN, REAL_TOKEN):
        assert_nowhere(netjail, result, secret)


def _jwt(payload: dict) -> str:
    def segment(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{segment({'alg': 'RS256', 'typ': 'JWT'})}.{segment(payload)}.{secrets.token_urlsafe(32)}"


JWT_DECODE = r"""
import base64, json, os, sys
token = os.environ["API_TOKEN"]
payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
print(payload["sub"])
open("claim", "w").write(payload["secret"])
"""


def test_a_jwt_with_mask_claims_keeps_its_other_claims_and_both_forms_reach_the_inject_host(
    netjail: Netjail, echo_https: EchoOrigin
) -> None:
    claim = "claim-" + secrets.token_hex(20)
    real_jwt = _jwt({"sub": "user-42", "secret": claim, "exp": 4102444800})
    (netjail.work / "decode.py").write_text(JWT_DECODE)
    entry = {
        "name": "API_TOKEN",
        "mode": "mask",
        "decode": "jwt",
        "maskClaims": ["secret"],
        "injectHosts": ["allowed.test"],
    }
    settings = masked_settings(netjail, {"envVars": [entry]})
    url = f"https://allowed.test:{echo_https.port}"
    command = (
        f'{sys.executable} decode.py; {CURL} -o /dev/null -H "Authorization: Bearer $API_TOKEN" {url}/whole;'
        f' {CURL} -o /dev/null -H "X-Claim: $(cat claim)" {url}/claim'
    )
    before = netjail.latest_run()
    proc = netjail.command("-s", str(settings), "-c", command, env={**netjail.env, "API_TOKEN": real_jwt})
    result = Result(
        proc.returncode,
        proc.stdout,
        proc.stderr,
        netjail.latest_run() if netjail.latest_run() != before else None,
    )
    assert result.returncode == 0 and "user-42" in result.stdout, (
        result.explain()
    )  # the other claims stay real
    assert claim not in (netjail.work / "claim").read_text()  # the masked claim is a placeholder inside
    by_path = {s.path: s for s in echo_https.seen}
    assert by_path["/whole"].headers["authorization"] == f"Bearer {real_jwt}"
    assert by_path["/claim"].headers["x-claim"] == claim
    for value in (real_jwt, claim):
        assert_nowhere(netjail, result, value)


def test_explain_lists_each_credential_what_the_command_sees_and_where_it_is_injected(
    netjail: Netjail,
) -> None:
    settings = masked_settings(netjail, {**TOKEN_ENTRY, "files": [{"path": "~/.netrc", "mode": "deny"}]})
    proc = netjail.command("explain", "-s", str(settings), env={**netjail.env, "API_TOKEN": REAL_TOKEN})
    assert proc.returncode == 0, proc.stderr
    assert "variable API_TOKEN (mask): the command sees a placeholder" in proc.stdout
    assert "injected toward: allowed.test" in proc.stdout and "file ~/.netrc (deny)" in proc.stdout
    assert REAL_TOKEN not in proc.stdout + proc.stderr


def test_the_command_cannot_bring_its_own_key_to_an_inject_host(
    netjail: Netjail, echo_https: EchoOrigin
) -> None:
    settings = masked_settings(netjail, TOKEN_ENTRY)
    url = f"https://allowed.test:{echo_https.port}"
    own = "sk-test-" + secrets.token_urlsafe(30)  # an attacker's key for another account on the same host
    command = (
        f'{CURL} -o /dev/null -w "own %{{http_code}}\\n" -H "Authorization: Bearer {own}" {url}/own;'
        f' {CURL} -o /dev/null -w "basic %{{http_code}}\\n" -u "git:{own}" {url}/basic;'
        f' {CURL} -o /dev/null -w "ours %{{http_code}}\\n" -H "Authorization: Bearer $API_TOKEN" {url}/ours;'
        f' {CURL} -o /dev/null -w "git %{{http_code}}\\n" -u "git:$API_TOKEN" {url}/git'
    )
    result = run_with_token(netjail, settings, command)
    assert "own 403" in result.stdout and "basic 403" in result.stdout, result.explain()  # the attempts
    assert "ours 200" in result.stdout and "git 200" in result.stdout, result.explain()  # the controls
    assert [s.path for s in echo_https.seen] == ["/ours", "/git"]  # nothing of the refused ones arrived
    git = base64.b64decode(echo_https.seen[1].headers["authorization"].split()[1]).decode()
    assert git == f"git:{REAL_TOKEN}"  # Basic auth (as git over HTTPS sends a token) gets the real value
    pinned = [f for f in result.flows if f["reason"] == "credential_pinned"]
    assert len(pinned) == 2 and all(f["verdict"] == "deny" for f in pinned)
    assert_nowhere(netjail, result, REAL_TOKEN)


def test_git_clone_and_push_authenticate_with_an_injected_token(netjail: Netjail, tmp_path: Path) -> None:
    """git sends its token base64-encoded in Basic auth: decoded, swapped, re-encoded, so push keeps working."""
    from tests.support.git_server import start_git_server

    git_server, server = start_git_server(tmp_path, token=REAL_TOKEN)
    try:
        url = f"http://x-access-token:$API_TOKEN@allowed.test:{git_server.port}/org/repo.git"
        script = (
            f'git clone -q "{url}" repo && cat repo/README && cd repo && echo more > new && git add new && '
            "git -c user.name=t -c user.email=t@t commit -qm second && git push -q origin HEAD:main; echo push=$?"
        )
        before = git_server.head()
        plaintext = {**TOKEN_ENTRY, "allowPlaintextInject": True}  # the git origin here speaks plain HTTP
        result = run_with_token(netjail, masked_settings(netjail, plaintext), script)
        assert "hello from the git origin\n" in result.stdout and "push=0" in result.stdout, result.explain()
        assert git_server.head() != before  # the push landed
        pushed = [f for f in result.flows if f.get("path", "").endswith("/git-receive-pack")]
        assert pushed and pushed[0]["credentials"]["injected"][0]["where"] == ["header authorization (basic)"]
        assert_nowhere(netjail, result, REAL_TOKEN)
        # the control: without injection the origin sees the placeholder and refuses git
        refused_before = git_server.refused
        control = run_with_token(
            netjail, masked_settings(netjail, TOKEN_ENTRY), script.replace("repo", "control")
        )
        assert "hello from the git origin" not in control.stdout, control.explain()
        assert git_server.refused > refused_before
    finally:
        server.shutdown()
