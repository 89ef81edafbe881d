"""flows.mitm is built from the live flow's state, without copying the flow (addons/recorder.py, `_stored_state`).
A golden comparison: the same flows recorded by the copy-based writer it replaced (`copied_state` below, as it
was) and by the recorder, records and decoded flows compared field by field; and what each stored flow must
hold, so that a field lost by both ways is caught too."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import mitmproxy.log
import pytest
import trustme
from mitmproxy import certs, http, io, tcp
from mitmproxy.proxy import server_hooks
from mitmproxy.proxy.layers import http as http_layer
from mitmproxy.proxy.layers import tcp as tcp_layer
from mitmproxy.test import taddons, tflow, tutils

from netjail.addons.policy import NetjailPolicy
from netjail.addons.recorder import BodyTap, NetjailRecorder
from netjail.detect.mitm import redact_flow
from netjail.records.caps import URL_CAP, cap_stored_flow
from netjail.records.redaction import redact_value
from tests.support.mitm import connect_flow, established, fire, plain_request, tunnel_request, write_settings

PINNED = {"allowed.test": "127.0.0.1", "denied.test": "127.0.0.1"}
BODY_CAP = 1000
SECRET = "golden-secret-value-123456"


def copied_state(recorder: NetjailRecorder, flow: Any, taps: dict[str, BodyTap]) -> dict[str, Any]:
    """The flow file's entry as the recorder built it before: a Flow.copy() per flow, edited, then its state."""
    copy = flow.copy()
    copy.id = flow.id
    copy.metadata.pop("netjail.tcp", None)
    if isinstance(copy, http.HTTPFlow):
        for part in ("request", "response"):
            message = getattr(copy, part)
            if message is None:
                continue
            for name in list(message.headers):
                if name.lower() in recorder.redact:
                    message.headers[name] = redact_value(message.headers[name])
            if (tap := taps.get(part)) is not None:
                message.stream = False
                message.raw_content = bytes(tap.prefix)
            elif message.raw_content and len(message.raw_content) > recorder.body_cap:
                message.raw_content = message.raw_content[: recorder.body_cap]
    redact_flow(copy, recorder.secrets)
    return cap_stored_flow(copy).get_state()


@pytest.fixture(scope="module")
def chain() -> list[certs.Cert]:
    ca = trustme.CA()
    leaf = ca.issue_cert("allowed.test")
    return [certs.Cert.from_pem(leaf.cert_chain_pems[0].bytes()), certs.Cert.from_pem(ca.cert_pem.bytes())]


def record_scenario(
    tmp_path: Path, chain: list[certs.Cert], copy_based: bool
) -> tuple[list[dict], list[dict], list[Any]]:
    """HTTP with streamed bodies over the cap, HTTPS (certificates, two requests on one connection, Authorization
    and Cookie, a buffered body over the cap, a secret in the URL, a path over URL_CAP), a denied CONNECT, an
    upstream error and raw TCP. Returns the records, the decoded flows' states and the live flows."""
    tmp_path.mkdir()
    settings = write_settings(
        tmp_path / "settings.json",
        {"allowedDomains": ["allowed.test"], "deniedDomains": ["denied.test"], "hosts": PINNED},
        record={"bodyCap": BODY_CAP},
        audit={"secretEnv": ["GOLDEN_TOKEN"]},
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    policy, recorder = NetjailPolicy(), NetjailRecorder()
    if copy_based:
        recorder._stored_state = lambda flow, taps: copied_state(recorder, flow, taps)  # type: ignore[method-assign]
    live: list[Any] = []

    def fixed(flow: Any, n: int) -> Any:
        flow.id = f"flow-{n}"
        flow.timestamp_created = 1_700_000_000.0 + n
        flow.server_conn.id = f"server-{n}"
        live.append(flow)
        return flow

    with taddons.context(policy, recorder) as tctx:
        tctx.configure(policy, netjail_settings=settings)
        tctx.configure(recorder, netjail_settings=settings)
        tctx.configure(recorder, netjail_record_dir=str(run_dir))

        # plain HTTP, both bodies streamed through the taps, the response over the cap
        post = fixed(plain_request("allowed.test", path="/upload"), 1)
        post.client_conn.id = "client-plain"
        post.request.method = "POST"
        fire(tctx, http_layer.HttpRequestHeadersHook(post))
        post.request.stream(b"a" * 700)
        post.request.stream(b"b" * 700)
        post.response = tutils.tresp(content=None)
        fire(tctx, http_layer.HttpResponseHeadersHook(post))
        post.response.stream(b"r" * 2500)
        fire(tctx, http_layer.HttpResponseHook(post))

        # HTTPS: one client connection, its certificate and the upstream's chain, two requests
        connect = fixed(connect_flow("allowed.test"), 2)
        connect.client_conn.id = "client-tls"
        connect.client_conn.mitmcert = chain[0]
        fire(tctx, server_hooks.ClientConnectedHook(connect.client_conn))
        fire(tctx, http_layer.HttpConnectHook(connect))
        fire(tctx, http_layer.HttpConnectedHook(established(connect)))
        for n, path in ((3, f"/api?token={SECRET}"), (4, "/" + "p" * (URL_CAP + 100))):
            flow = fixed(tunnel_request(connect, path=path), n)
            flow.server_conn.certificate_list = chain
            flow.server_conn.id = "server-tls"
            flow.server_conn.alpn = b"http/1.1"
            flow.request.headers["Authorization"] = "Bearer hunter2-token"
            flow.request.headers.add("Cookie", "a=hunter2")
            flow.request.headers.add("Cookie", "b=hunter2")
            fire(tctx, http_layer.HttpRequestHeadersHook(flow))
            flow.response = tutils.tresp(content=b"z" * 1500)  # buffered: no tap, cut to the cap
            fire(tctx, http_layer.HttpResponseHeadersHook(flow))
            fire(tctx, http_layer.HttpResponseHook(flow))

        # a denied CONNECT
        denied = fixed(connect_flow("denied.test"), 5)
        denied.client_conn.id = "client-denied"
        fire(tctx, server_hooks.ClientConnectedHook(denied.client_conn))
        fire(tctx, http_layer.HttpConnectHook(denied))
        assert denied.response is not None
        denied.response.timestamp_start = denied.response.timestamp_end = 1_700_000_005.5  # made now: fixed
        fire(tctx, http_layer.HttpConnectErrorHook(denied))

        # an upstream error
        failing = fixed(plain_request("allowed.test", path="/fails"), 6)
        failing.client_conn.id = "client-error"
        fire(tctx, http_layer.HttpRequestHeadersHook(failing))
        failing.error = tflow.terr("Connection refused")
        failing.error.timestamp = 1_700_000_006.5
        fire(tctx, http_layer.HttpErrorHook(failing))

        # raw TCP (outside any judged tunnel: killed, and recorded)
        raw = fixed(tflow.ttcpflow(), 7)
        raw.client_conn.id = "client-tcp"
        fire(tctx, tcp_layer.TcpStartHook(raw))
        assert raw.error is not None
        raw.error.timestamp = 1_700_000_007.5  # killed now: fixed
        fire(tctx, tcp_layer.TcpMessageHook(raw))
        fire(tctx, tcp_layer.TcpEndHook(raw))

        for client in (connect.client_conn, denied.client_conn):
            fire(tctx, server_hooks.ClientDisconnectedHook(client))
    # two masters in one test: the one whose loop is now closed must stop receiving log records
    for handler in logging.getLogger().handlers:
        if isinstance(handler, mitmproxy.log.MitmLogHandler):
            handler.uninstall()

    records = [json.loads(line) for line in (run_dir / "flows.jsonl").read_text().splitlines()]
    for record in records:
        if record["event"] == "flow_start":
            record.pop("ts")  # when it was written; a `flow` record's ts is the flow's
    with open(run_dir / "flows.mitm", "rb") as f:
        stored = [flow.get_state() for flow in io.FlowReader(f).stream()]
    return records, stored, live


def test_the_flow_file_and_the_records_are_as_the_copy_based_writer_made_them(
    tmp_path: Path, chain: list[certs.Cert], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOLDEN_TOKEN", SECRET)
    before_records, before, _ = record_scenario(tmp_path / "before", chain, copy_based=True)
    after_records, after, _ = record_scenario(tmp_path / "after", chain, copy_based=False)
    assert [r["id"] for r in after_records if r["event"] == "flow"] == [
        f"flow-{n}" for n in (1, 3, 4, 5, 6, 7)
    ]
    assert after_records == before_records
    assert [s["id"] for s in after] == [s["id"] for s in before]
    for old, new in zip(before, after, strict=True):
        for key in sorted(old.keys() | new.keys()):
            assert new.get(key) == old.get(key), f"{old['id']}: field {key!r} differs"


def test_each_stored_flow_holds_what_it_must(
    tmp_path: Path, chain: list[certs.Cert], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOLDEN_TOKEN", SECRET)
    _, stored, live = record_scenario(tmp_path / "run", chain, copy_based=False)
    by_id = {s["id"]: s for s in stored}
    post = by_id["flow-1"]
    assert post["request"]["content"] == (b"a" * 700 + b"b" * 300)  # the tap's prefix, to the cap
    assert post["response"]["content"] == b"r" * BODY_CAP
    assert post["request"]["method"] == b"POST"
    for n in (3, 4):
        flow = by_id[f"flow-{n}"]
        headers = http.Headers.from_state(flow["request"]["headers"])
        assert headers["Authorization"] == redact_value("Bearer hunter2-token")
        assert headers.get_all("Cookie") == [redact_value("a=hunter2, b=hunter2")]
        assert flow["response"]["content"] == b"z" * BODY_CAP
        assert flow["server_conn"]["certificate_list"] == [c.to_pem() for c in chain]
        assert flow["client_conn"]["mitmcert"] == chain[0].to_pem()
        assert (flow["client_conn"]["id"], flow["server_conn"]["alpn"]) == ("client-tls", b"http/1.1")
        assert flow["metadata"]["netjail"]["verdict"] == "allow"
    assert SECRET.encode() not in by_id["flow-3"]["request"]["path"]
    assert by_id["flow-4"]["metadata"]["netjail.truncated"]["path"]["length"] == URL_CAP + 101
    assert len(by_id["flow-4"]["request"]["path"]) == URL_CAP
    assert (by_id["flow-5"]["request"]["method"], by_id["flow-5"]["response"]["status_code"]) == (
        b"CONNECT",
        403,
    )
    assert by_id["flow-6"]["error"]["msg"] == "Connection refused"
    assert by_id["flow-7"]["type"] == "tcp" and by_id["flow-7"]["messages"]
    assert "netjail.tcp" not in by_id["flow-7"]["metadata"]
    # the live flows are untouched: what went upstream keeps its credentials, bodies and certificates
    tls_flow = next(f for f in live if f.id == "flow-3")
    assert tls_flow.request.headers["Authorization"] == "Bearer hunter2-token"
    assert tls_flow.response.raw_content == b"z" * 1500
    assert list(tls_flow.server_conn.certificate_list) == chain
    assert tls_flow.client_conn.mitmcert is chain[0]
    assert isinstance(next(f for f in live if f.id == "flow-7"), tcp.TCPFlow)
