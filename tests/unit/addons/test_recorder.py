"""addons/recorder.py with the policy addon in front of it, as in the proxy: hooks fired in mitmproxy's order on
flows built in memory, and the records read back from the flows.jsonl (and flows.mitm) it writes.

The contract under test: exactly one record per attempt, whatever became of it."""

from __future__ import annotations

import asyncio
import errno
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from mitmproxy import exceptions, hooks, http, io, tcp, tls
from mitmproxy.proxy import context, server_hooks
from mitmproxy.proxy.layers import http as http_layer
from mitmproxy.proxy.layers import tcp as tcp_layer
from mitmproxy.proxy.layers import tls as tls_layer
from mitmproxy.proxy.layers import websocket as websocket_layer
from mitmproxy.test import taddons, tflow, tutils

from netjail.addons.policy import NetjailPolicy
from netjail.addons.recorder import NetjailRecorder
from netjail.policy.synthetic import SyntheticAddresses
from tests.support.mitm import (
    captured_client,
    connect_flow,
    established,
    fire,
    plain_request,
    tunnel_request,
    write_settings,
)

PINNED = {"allowed.test": "127.0.0.1", "denied.test": "127.0.0.1", "other.test": "127.0.0.1"}


@dataclass
class Proxy:
    """The policy and the recorder in one taddons context, recording into `run_dir`."""

    tctx: taddons.context
    policy: NetjailPolicy
    recorder: NetjailRecorder
    run_dir: Path

    def all_records(self) -> list[dict]:
        return [json.loads(line) for line in (self.run_dir / "flows.jsonl").read_text().splitlines()]

    def records(self) -> list[dict]:
        """The records that describe attempts: `flow_start` only announces one (tests/unit/addons/test_recording.py)."""
        return [r for r in self.all_records() if r["event"] != "flow_start"]

    def stored_flows(self) -> list:
        with open(self.run_dir / "flows.mitm", "rb") as f:
            return list(io.FlowReader(f).stream())

    # -- what mitmproxy does, hook by hook ---------------------------------------------------------------------

    def fire(self, event) -> None:
        fire(self.tctx, event)

    def connect(self, host: str, port: int = 443) -> http.HTTPFlow:
        """A CONNECT, answered 200 if the addons let it through (then `http_connected`), else `http_connect_error`."""
        flow = connect_flow(host, port)
        self.fire(server_hooks.ClientConnectedHook(flow.client_conn))
        self.fire(http_layer.HttpConnectHook(flow))
        if flow.response is None:
            self.fire(http_layer.HttpConnectedHook(established(flow)))
        else:
            self.fire(http_layer.HttpConnectErrorHook(flow))
        return flow

    def exchange(self, flow: http.HTTPFlow, response: http.Response | None = None) -> http.HTTPFlow:
        """The request's headers, then (unless an addon answered it) the origin's response."""
        self.fire(http_layer.HttpRequestHeadersHook(flow))
        if flow.response is None:
            flow.response = response or tutils.tresp()
            self.fire(http_layer.HttpResponseHeadersHook(flow))
        self.fire(http_layer.HttpResponseHook(flow))
        return flow

    def fail_upstream(self, flow: http.HTTPFlow, message: str) -> http.HTTPFlow:
        self.fire(http_layer.HttpRequestHeadersHook(flow))
        flow.error = tflow.terr(message)
        self.fire(http_layer.HttpErrorHook(flow))
        return flow

    def disconnect(self, flow: http.HTTPFlow) -> None:
        self.fire(server_hooks.ClientDisconnectedHook(flow.client_conn))


@pytest.fixture
def proxy(tmp_path: Path):
    settings = write_settings(
        tmp_path / "settings.json",
        {"allowedDomains": ["allowed.test"], "deniedDomains": ["denied.test"], "hosts": PINNED},
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    policy, recorder = NetjailPolicy(), NetjailRecorder()
    with taddons.context(policy, recorder) as tctx:
        tctx.configure(policy, netjail_settings=settings)
        tctx.configure(recorder, netjail_record_dir=str(run_dir))
        yield Proxy(tctx, policy, recorder, run_dir)


# -- one record per attempt -----------------------------------------------------------------------------------


def test_a_denied_connect_is_one_record(proxy: Proxy) -> None:
    flow = proxy.connect("other.test")
    proxy.disconnect(flow)
    [record] = proxy.records()
    assert record["id"] == flow.id
    assert (record["method"], record["host"], record["port"], record["tunnel"]) == (
        "CONNECT",
        "other.test",
        443,
        True,
    )
    assert (record["verdict"], record["reason"], record["rule"], record["status"]) == (
        "deny",
        "not_allowed",
        "default-deny",
        403,
    )
    assert "network.allowedDomains" in record["detail"]
    assert [f.id for f in proxy.stored_flows()] == [flow.id]  # the denied CONNECT is in flows.mitm too


@pytest.mark.parametrize("requests", [1, 3])
def test_a_tunnel_with_n_requests_is_n_records(proxy: Proxy, requests: int) -> None:
    connect = proxy.connect("allowed.test")
    inner = [proxy.exchange(tunnel_request(connect, path=f"/{n}")) for n in range(requests)]
    proxy.disconnect(connect)
    proxy.fire(server_hooks.ClientDisconnectedHook(connect.client_conn))  # a second disconnect adds nothing
    records = proxy.records()
    assert [r["id"] for r in records] == [f.id for f in inner]
    assert [r["url"] for r in records] == [f"https://allowed.test/{n}" for n in range(requests)]
    assert {(r["verdict"], r["reason"], r["status"]) for r in records} == {("allow", "allowed", 200)}


def test_a_tunnel_on_which_no_request_completed_is_one_record(proxy: Proxy) -> None:
    connect = proxy.connect("allowed.test")
    proxy.disconnect(connect)
    [record] = proxy.records()
    assert record["id"] == connect.id and record["method"] == "CONNECT"
    assert (record["verdict"], record["reason"], record["status"]) == ("allow", "allowed", 200)


def test_a_tunnel_whose_client_rejected_the_certificate_is_one_record_saying_so(proxy: Proxy) -> None:
    connect = proxy.connect("allowed.test")
    client = connect.client_conn
    client.error = "certificate unknown"
    proxy.fire(
        tls_layer.TlsFailedClientHook(tls.TlsData(client, context.Context(client, proxy.tctx.options)))
    )
    proxy.disconnect(connect)
    [record] = proxy.records()
    assert record["reason"] == "client_tls_failed" and record["error"] == "certificate unknown"
    assert "excludeDomains" in record["detail"]


def test_a_tunnel_still_open_when_the_proxy_stops_is_recorded_once(proxy: Proxy) -> None:
    connect = proxy.connect("allowed.test")
    proxy.fire(hooks.DoneHook())
    [record] = proxy.records()
    assert record["id"] == connect.id


def test_an_upstream_error_is_one_record_with_reason_upstream_error(proxy: Proxy) -> None:
    connect = proxy.connect("allowed.test")
    failed = proxy.fail_upstream(tunnel_request(connect), "[Errno 111] Connection refused")
    proxy.disconnect(connect)
    [record] = proxy.records()
    assert record["id"] == failed.id
    assert (record["verdict"], record["reason"], record["status"], record["error_kind"]) == (
        "allow",
        "upstream_error",
        502,
        "refused",
    )


def test_a_plain_request_denied_by_the_policy_is_one_record(proxy: Proxy) -> None:
    flow = proxy.exchange(plain_request("denied.test"))
    [record] = proxy.records()
    assert record["id"] == flow.id and record["url"] == "http://denied.test/"
    assert (record["verdict"], record["reason"], record["status"]) == ("deny", "denied_by_rule", 403)


def test_a_flow_that_ends_twice_is_recorded_once(proxy: Proxy) -> None:
    flow = proxy.exchange(plain_request("allowed.test"))
    flow.error = tflow.terr("client disconnected")
    proxy.fire(http_layer.HttpErrorHook(flow))
    assert len(proxy.records()) == 1


def test_a_websocket_is_one_record_at_its_end_with_its_messages_counted(proxy: Proxy) -> None:
    connect = proxy.connect("allowed.test")
    flow = tunnel_request(connect, path="/ws")
    proxy.fire(http_layer.HttpRequestHeadersHook(flow))
    upgraded = tflow.twebsocketflow()
    flow.response, flow.websocket = upgraded.response, upgraded.websocket
    proxy.fire(http_layer.HttpResponseHook(flow))
    assert proxy.records() == []  # not at its response: its messages are still to come
    proxy.fire(websocket_layer.WebsocketEndHook(flow))
    proxy.disconnect(connect)
    [record] = proxy.records()
    assert record["id"] == flow.id and record["status"] == 101
    assert record["websocket"]["messages_out"] + record["websocket"]["messages_in"] == len(
        flow.websocket.messages
    )


def test_raw_tcp_in_a_tunnel_is_one_record_with_its_bytes_counted(proxy: Proxy) -> None:
    connect = proxy.connect("allowed.test", 5432)
    flow = tflow.ttcpflow(client_conn=connect.client_conn, messages=[])
    proxy.fire(tcp_layer.TcpStartHook(flow))
    for from_client, content in ((True, b"hello"), (False, b"it's me"), (True, b"bye")):
        flow.messages.append(tcp.TCPMessage(from_client, content))
        proxy.fire(tcp_layer.TcpMessageHook(flow))
    proxy.fire(tcp_layer.TcpEndHook(flow))
    proxy.disconnect(connect)
    [record] = proxy.records()
    assert record["id"] == flow.id and record["scheme"] == "tcp" and record["host"] == "allowed.test"
    assert (record["bytes_out"], record["bytes_in"], record["verdict"]) == (8, 7, "allow")


def test_a_captured_connection_that_carried_no_flow_is_one_record(tmp_path: Path) -> None:
    settings = write_settings(tmp_path / "s.json", {"allowedDomains": ["allowed.test"], "hosts": PINNED})
    synthetic = SyntheticAddresses()
    policy, recorder = NetjailPolicy(synthetic), NetjailRecorder()
    with taddons.context(policy, recorder) as tctx:
        tctx.configure(policy, netjail_settings=settings)
        tctx.configure(recorder, netjail_record_dir=str(tmp_path))
        v4, _ = synthetic.addresses_for("other.test")
        client = captured_client(str(v4), 25)
        fire(tctx, server_hooks.ClientConnectedHook(client))
        fire(tctx, server_hooks.ClientDisconnectedHook(client))
    [record] = [json.loads(line) for line in (tmp_path / "flows.jsonl").read_text().splitlines()]
    assert (record["scheme"], record["host"], record["port"]) == ("tcp", "other.test", 25)
    assert (record["verdict"], record["reason"]) == ("deny", "not_allowed")


# -- what a record holds --------------------------------------------------------------------------------------


def test_credentials_are_redacted_in_both_files(proxy: Proxy) -> None:
    connect = proxy.connect("allowed.test")
    flow = tunnel_request(connect)
    flow.request.headers["Authorization"] = "Bearer hunter2-token"
    flow.request.headers["Cookie"] = "session=hunter2-cookie"
    proxy.exchange(flow)
    proxy.disconnect(connect)
    [record] = proxy.records()
    assert record["redacted"] == ["authorization", "cookie"]
    assert "hunter2" not in (proxy.run_dir / "flows.jsonl").read_text()
    [stored] = proxy.stored_flows()
    assert stored.id == record["id"]
    for name in ("Authorization", "Cookie"):
        assert stored.request.headers[name].startswith("[redacted sha256:"), stored.request.headers[name]
    assert b"hunter2" not in (proxy.run_dir / "flows.mitm").read_bytes()
    assert flow.request.headers["Authorization"] == "Bearer hunter2-token"  # what went upstream is untouched


def test_streamed_bodies_are_counted_and_hashed(proxy: Proxy) -> None:
    flow = plain_request("allowed.test")
    flow.request.method = "POST"
    proxy.fire(http_layer.HttpRequestHeadersHook(flow))
    for chunk in (b"abc", b"def"):
        assert flow.request.stream(chunk) == chunk  # passed through unchanged
    flow.response = tutils.tresp(content=None)
    proxy.fire(http_layer.HttpResponseHeadersHook(flow))
    flow.response.stream(b"x" * 10)
    proxy.fire(http_layer.HttpResponseHook(flow))
    [record] = proxy.records()
    assert (record["bytes_out"], record["bytes_in"]) == (6, 10)
    assert record["sha256_out"] == "bef57ec7f53a6d40beb640a780a639c83bc29ac8a9816f1fc6c5c6dcd93c4721"


# -- failure --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["log", "writer"])  # flows.jsonl, flows.mitm
def test_a_flow_that_cannot_be_written_stops_the_proxy(
    proxy: Proxy, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    def disk_full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(getattr(proxy.recorder, where), "write" if where == "log" else "add", disk_full)
    proxy.exchange(plain_request("allowed.test"))
    assert isinstance(proxy.recorder.failed, OSError)
    master = proxy.tctx.master
    # shutdown() sets should_exit from the event loop: run the loop until it does
    master.event_loop.run_until_complete(asyncio.wait_for(master.should_exit.wait(), timeout=5))


def test_an_unwritable_record_directory_is_an_options_error(tmp_path: Path) -> None:
    recorder = NetjailRecorder()
    with taddons.context(recorder) as tctx:
        with pytest.raises(exceptions.OptionsError, match="cannot open the flow log"):
            tctx.configure(recorder, netjail_record_dir=str(tmp_path / "missing"))


def test_dns_records_are_written_as_given(proxy: Proxy) -> None:
    proxy.recorder.record_event({"event": "dns", "name": "allowed.test", "verdict": "allow"})
    assert proxy.records() == [{"event": "dns", "name": "allowed.test", "verdict": "allow"}]
