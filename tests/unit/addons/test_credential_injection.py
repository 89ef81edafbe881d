"""addons/credentials.py driven through mitmproxy's test helpers: which requests get the real value, and that the
request is back in its placeholder form (and the response scrubbed) before the recorder sees it."""

from __future__ import annotations

import base64
import gzip

import pytest
from mitmproxy import http
from mitmproxy.test import tflow

from netjail.addons.credentials import CredentialInjector, CredentialRestorer
from netjail.net.domains import parse_pattern
from netjail.policy.credentials import Credential
from netjail.records.redaction import CREDENTIALS_KEY
from netjail.records.schema import METADATA_KEY

REAL = "ghp_realrealrealrealrealrealrealrealreal"
FAKE = "ghp_fakefakefakefakefakefakefakefakefake"
CREDENTIAL = Credential("credentials.envVars[0] (GH)", FAKE, REAL, (parse_pattern("api.example.com"),))


def flow(host: str = "api.example.com", scheme: str = "https", **headers: str) -> http.HTTPFlow:
    f = tflow.tflow()
    f.request.scheme = scheme
    f.request.host = host
    f.request.path = f"/x?token={FAKE}"
    f.request.headers.update(headers)
    f.client_conn.timestamp_tls_setup = 1.0 if scheme == "https" else None
    f.metadata[METADATA_KEY] = {"verdict": "allow", "judged_host": host}
    return f


def addons(plaintext: bool = False) -> tuple[CredentialInjector, CredentialRestorer]:
    injector = CredentialInjector([CREDENTIAL], allow_plaintext=plaintext)
    return injector, CredentialRestorer(injector)


def test_headers_basic_auth_and_query_get_the_real_value_and_are_restored_before_recording() -> None:
    injector, restorer = addons()
    basic = base64.b64encode(f"x-access-token:{FAKE}".encode()).decode()
    f = flow(authorization=f"Basic {basic}", **{"x-api-key": FAKE})
    injector.requestheaders(f)
    assert f.request.headers["x-api-key"] == REAL and REAL in f.request.path
    assert base64.b64decode(f.request.headers["authorization"][6:]).decode() == f"x-access-token:{REAL}"
    f.response = http.Response.make(200, REAL.encode())
    restorer.response(f)
    assert REAL not in str(f.request.headers) and REAL not in f.request.path
    notes = f.metadata[CREDENTIALS_KEY]["injected"][0]
    assert notes["count"] == 3 and set(notes["where"]) == {
        "header x-api-key",
        "header authorization (basic)",
        "query",
    }


def test_another_host_is_refused_and_plain_http_keeps_the_placeholder() -> None:
    injector, _ = addons()
    moved = flow("other.example.com", **{"x-api-key": FAKE})
    injector.requestheaders(moved)  # the credential sent toward a host it is not for: refused
    assert moved.response is not None and moved.response.status_code == 403
    assert moved.metadata[METADATA_KEY]["reason"] == "credential_misdirected"
    assert moved.metadata[CREDENTIALS_KEY]["placeholder_left"][0]["where"] == ["header x-api-key", "url"]
    cleartext = flow(scheme="http", **{"x-api-key": FAKE})
    injector.requestheaders(cleartext)  # its inject host, but not over TLS: it stays a placeholder
    assert cleartext.request.headers["x-api-key"] == FAKE and cleartext.response is None
    assert cleartext.metadata[CREDENTIALS_KEY]["placeholder_left"][0]["where"] == ["header x-api-key", "url"]
    plain = flow(scheme="http", **{"x-api-key": FAKE})
    addons(plaintext=True)[0].requestheaders(plain)  # control: opted in
    assert plain.request.headers["x-api-key"] == REAL


def test_a_streamed_body_is_swapped_and_the_tap_sees_the_placeholder() -> None:
    injector, _ = addons()
    seen: list[bytes] = []
    f = flow()
    f.request.stream = lambda chunk: seen.append(chunk) or chunk  # the recorder's tap
    injector.requestheaders(f)
    body = f"aa{FAKE}bb".encode()
    out = b"".join(b"".join(f.request.stream(body[i : i + 5])) for i in range(0, len(body), 5))  # type: ignore[operator]
    out += b"".join(f.request.stream(b""))  # type: ignore[operator]
    assert out == f"aa{REAL}bb".encode() and b"".join(seen) == body


def test_a_gzip_body_is_decoded_swapped_and_re_encoded() -> None:
    injector, restorer = addons()
    f = flow(**{"content-encoding": "gzip"})
    f.request.stream = lambda chunk: chunk
    injector.requestheaders(f)
    assert f.request.stream is False
    f.request.raw_content = gzip.compress(f'{{"k": "{FAKE}"}}'.encode())
    injector.request(f)
    assert gzip.decompress(f.request.raw_content or b"") == f'{{"k": "{REAL}"}}'.encode()
    f.response = http.Response.make(200, b"ok")
    restorer.response(f)
    assert FAKE.encode() in gzip.decompress(f.request.raw_content or b"")


def test_an_unscannable_encoding_toward_an_inject_host_is_refused() -> None:
    injector, _ = addons()
    f = flow(**{"content-encoding": "compress"})
    injector.requestheaders(f)
    assert f.response is not None and f.response.status_code == 415


def test_a_real_value_with_a_line_break_is_never_put_in_a_header() -> None:
    multi = Credential(
        "credentials.files[0] (~/.key)", FAKE, "line1\r\nX-Injected: yes", CREDENTIAL.inject_hosts
    )
    injector = CredentialInjector([multi])
    f = flow(**{"x-api-key": FAKE})
    injector.requestheaders(f)
    assert f.request.headers["x-api-key"] == FAKE and "X-Injected" not in f.request.headers


PINNED = Credential(CREDENTIAL.name, FAKE, REAL, CREDENTIAL.inject_hosts, ("authorization", "x-api-key"))


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({"authorization": f"Bearer {FAKE}"}, False),  # the control: this run's placeholder
        ({"authorization": "Bearer ghp_attackersownkeyattackersownkey000000"}, True),
        ({"x-api-key": "someone-elses-key"}, True),
        ({"authorization": "Basic " + base64.b64encode(f"git:{FAKE}".encode()).decode()}, False),
        ({"authorization": "Basic " + base64.b64encode(b"git:their-own-token").decode()}, True),
        ({"accept": "*/*"}, False),  # no credential header at all
    ],
)
def test_a_pinned_header_must_carry_this_runs_placeholder_at_an_inject_host(
    headers: dict[str, str], refused: bool
) -> None:
    injector = CredentialInjector([PINNED])
    f = flow(**headers)
    injector.requestheaders(f)
    assert (f.response is not None and f.response.status_code == 403) is refused
    if refused:
        assert f.metadata[METADATA_KEY]["reason"] == "credential_pinned"
        assert REAL not in (f.response.text or "") if f.response else True


def test_pinning_applies_only_at_inject_hosts_and_can_be_turned_off() -> None:
    elsewhere = flow("other.example.com", authorization="Bearer their-own")
    elsewhere.request.path = "/x"  # no placeholder toward this host: only the pinning rule is in question
    CredentialInjector([PINNED]).requestheaders(elsewhere)
    assert elsewhere.response is None
    off = flow(authorization="Bearer their-own")
    CredentialInjector([CREDENTIAL]).requestheaders(off)  # pin_headers () : pinHeaders []
    assert off.response is None
