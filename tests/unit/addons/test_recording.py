"""Recording before forwarding and truthful verdicts (addons/recorder.py, addons/policy.py; ATTACKS.md R10, R12):
hooks fired in mitmproxy's order on flows built in memory, the records read back."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from mitmproxy import http, tcp
from mitmproxy.proxy import server_hooks
from mitmproxy.proxy.layers import http as http_layer
from mitmproxy.proxy.layers import tcp as tcp_layer
from mitmproxy.test import taddons, tflow, tutils

from netjail.addons.policy import NetjailPolicy
from netjail.addons.recorder import NetjailRecorder
from netjail.policy.synthetic import SyntheticAddresses
from netjail.records import reserve as reserve_module
from netjail.records.log import RecordLog
from netjail.records.rundir import RunDir
from netjail.records.runs import flow_records
from tests.support.mitm import captured_client, fire, plain_request, server_dial, write_settings

PINNED = {"allowed.test": "127.0.0.1"}


@pytest.fixture
def addons_in(tmp_path: Path):
    settings = write_settings(
        tmp_path / "s.json",
        {"allowedDomains": ["allowed.test", "localhost", "ported.test:1"], "hosts": PINNED},
    )
    synthetic = SyntheticAddresses()
    policy, recorder = NetjailPolicy(synthetic), NetjailRecorder()
    with taddons.context(policy, recorder) as tctx:
        tctx.configure(policy, netjail_settings=settings)
        tctx.configure(recorder, netjail_record_dir=str(tmp_path))
        yield tctx, policy, recorder, synthetic, tmp_path


def lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "flows.jsonl").read_text().splitlines()]


def test_a_flow_start_is_written_before_the_body_streams(addons_in) -> None:
    tctx, _, _, _, run_dir = addons_in
    flow = plain_request("allowed.test")
    flow.request.method = "POST"
    fire(tctx, http_layer.HttpRequestHeadersHook(flow))
    [start] = lines(run_dir)  # written at requestheaders: mitmproxy streams the body right after it
    assert (start["event"], start["id"], start["method"], start["verdict"]) == (
        "flow_start",
        flow.id,
        "POST",
        "allow",
    )
    flow.request.stream(b"abc")
    flow.response = tutils.tresp(content=b"ok")
    fire(tctx, http_layer.HttpResponseHook(flow))
    start, end = lines(run_dir)
    assert (end["event"], end["id"], end["bytes_out"]) == ("flow", flow.id, 3)


def test_a_denied_request_has_no_start(addons_in) -> None:
    tctx, _, _, _, run_dir = addons_in
    flow = plain_request("other.test")
    fire(tctx, http_layer.HttpRequestHeadersHook(flow))
    fire(tctx, http_layer.HttpResponseHook(flow))
    assert [r["event"] for r in lines(run_dir)] == ["flow"]


def test_flows_still_open_at_shutdown_are_recorded_incomplete(addons_in) -> None:
    tctx, _, recorder, _, run_dir = addons_in
    flow = plain_request("allowed.test")
    fire(tctx, http_layer.HttpRequestHeadersHook(flow))
    flow.request.stream(b"12345")
    recorder.done()
    start, end = lines(run_dir)
    assert end["id"] == start["id"] and end["incomplete"] is True and end["bytes_out"] == 5


def test_a_start_without_its_end_reads_as_an_incomplete_flow(tmp_path: Path) -> None:
    log = RecordLog(tmp_path / "flows.jsonl")
    log.write(
        {"event": "flow_start", "id": "a", "method": "POST", "host": "allowed.test", "verdict": "allow"}
    )
    log.write({"event": "flow_start", "id": "b", "method": "GET", "host": "allowed.test", "verdict": "allow"})
    log.write({"event": "flow", "id": "b", "method": "GET", "bytes_out": 0, "verdict": "allow"})
    flows = list(flow_records(RunDir(tmp_path)))
    assert [(f["id"], f.get("incomplete"), f["bytes_out"]) for f in flows] == [
        ("b", None, 0),
        ("a", True, None),
    ]


def test_when_the_log_needs_the_reserve_egress_stops(addons_in, monkeypatch) -> None:
    tctx, _, recorder, _, run_dir = addons_in
    assert (run_dir / "flows.reserve").stat().st_size == reserve_module.RESERVE_BYTES
    real_write, calls = os.write, []

    def disk_full_once(fd: int, data: bytes) -> int:
        calls.append(fd)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", disk_full_once)
    shutdowns = []
    monkeypatch.setattr(tctx.master, "shutdown", lambda: shutdowns.append(1))
    flow = plain_request("allowed.test")
    fire(tctx, http_layer.HttpRequestHeadersHook(flow))
    monkeypatch.setattr(os, "write", real_write)
    assert flow.response is not None and flow.response.status_code == 503  # refused: nothing goes upstream
    assert recorder.failed is not None and shutdowns == [1]
    assert (run_dir / "flows.reserve").stat().st_size < reserve_module.RESERVE_BYTES
    fire(tctx, http_layer.HttpResponseHook(flow))
    _start, end = lines(run_dir)
    assert (end["verdict"], end["reason"], end["status"]) == ("deny", "log_failed", 503)
    later = plain_request("allowed.test")
    fire(tctx, http_layer.HttpRequestHeadersHook(later))
    assert later.response is not None and later.response.status_code == 503


def test_a_log_that_cannot_be_written_at_all_refuses_the_request(addons_in, monkeypatch) -> None:
    tctx, _, recorder, _, run_dir = addons_in
    (run_dir / "flows.reserve").write_bytes(b"")  # the reserve is spent
    monkeypatch.setattr(tctx.master, "shutdown", lambda: None)

    def disk_full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    flow = plain_request("allowed.test")
    fire(tctx, http_layer.HttpRequestHeadersHook(flow))
    assert flow.response is not None and flow.response.status_code == 503 and recorder.failed is not None


def test_a_captured_dial_refused_by_the_local_range_guard_reads_deny(addons_in) -> None:
    """`localhost` is allowed by name and resolves to loopback: the dial is refused, and the record says so."""
    tctx, _, _, synthetic, run_dir = addons_in
    v4, _ = synthetic.addresses_for("localhost")
    client = captured_client(str(v4), 80)
    fire(tctx, server_hooks.ClientConnectedHook(client))
    request = tutils.treq(host=str(v4), port=80, headers=http.Headers(Host="localhost"))
    flow = tflow.tflow(client_conn=client, req=request)
    fire(tctx, http_layer.HttpRequestHeadersHook(flow))
    dial = server_dial(client, str(v4), 80)
    fire(tctx, server_hooks.ServerConnectHook(dial))
    assert dial.server.error
    flow.error = tflow.terr(f"Connection killed: {dial.server.error}")
    fire(tctx, http_layer.HttpErrorHook(flow))
    start, end = lines(run_dir)
    assert (start["event"], start["verdict"]) == ("flow_start", "allow")  # what was known before the dial
    assert (end["host"], end["verdict"], end["reason"]) == ("localhost", "deny", "private_destination")


def test_a_port_rule_denial_of_raw_tcp_keeps_its_reason(addons_in) -> None:
    tctx, _, _, synthetic, run_dir = addons_in
    v4, _ = synthetic.addresses_for("ported.test")
    client = captured_client(str(v4), 5432)
    fire(tctx, server_hooks.ClientConnectedHook(client))
    flow = tflow.ttcpflow(client_conn=client, messages=[])
    flow.server_conn.address = (str(v4), 5432)
    fire(tctx, tcp_layer.TcpStartHook(flow))
    fire(tctx, tcp_layer.TcpErrorHook(flow))  # killed: the error is the denial's, not the upstream's
    end = lines(run_dir)[-1]
    assert (end["verdict"], end["reason"]) == ("deny", "port_not_allowed")
    assert [r["event"] for r in lines(run_dir)] == ["flow"]  # denied: never started


def test_raw_tcp_is_started_before_it_is_dialed(addons_in) -> None:
    tctx, _, _, synthetic, run_dir = addons_in
    v4, _ = synthetic.addresses_for("allowed.test")
    client = captured_client(str(v4), 5432)
    fire(tctx, server_hooks.ClientConnectedHook(client))
    flow = tflow.ttcpflow(client_conn=client, messages=[])
    flow.server_conn.address = (str(v4), 5432)
    fire(tctx, tcp_layer.TcpStartHook(flow))
    [start] = lines(run_dir)
    assert (start["event"], start["scheme"], start["host"], start["port"]) == (
        "flow_start",
        "tcp",
        "allowed.test",
        5432,
    )
    flow.messages.append(tcp.TCPMessage(True, b"hello"))
    fire(tctx, tcp_layer.TcpMessageHook(flow))
    fire(tctx, tcp_layer.TcpEndHook(flow))
    assert lines(run_dir)[-1]["bytes_out"] == 5
