"""addons/proxyauth.py: the run's secret passes, anything else gets 407 and one `proxy_auth` record."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from mitmproxy import exceptions
from mitmproxy.proxy import server_hooks
from mitmproxy.proxy.layers import http as http_layer
from mitmproxy.test import taddons

from netjail.addons.policy import NetjailPolicy
from netjail.addons.proxyauth import NetjailProxyAuth
from netjail.addons.recorder import NetjailRecorder
from tests.support.mitm import connect_flow, established, fire, plain_request, tunnel_request, write_settings

SECRET = "the-run-secret"


def credentials(secret: str, user: str = "netjail") -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


@pytest.fixture
def gate(tmp_path: Path):
    secret_file = tmp_path / "proxy-secret"
    secret_file.write_text(SECRET + "\n")
    addon = NetjailProxyAuth()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, netjail_proxy_secret_file=str(secret_file))
        yield addon


def assert_refused(flow) -> None:
    assert flow.response is not None and flow.response.status_code == 407
    assert flow.response.headers["Proxy-Authenticate"] == 'Basic realm="netjail"'
    assert (
        flow.metadata["netjail"]["verdict"] == "deny" and flow.metadata["netjail"]["reason"] == "proxy_auth"
    )


def test_the_right_secret_passes_and_is_not_sent_upstream(gate: NetjailProxyAuth) -> None:
    flow = plain_request("allowed.test")
    flow.request.headers["Proxy-Authorization"] = credentials(SECRET)
    gate.requestheaders(flow)
    assert flow.response is None and "netjail" not in flow.metadata
    assert "Proxy-Authorization" not in flow.request.headers


@pytest.mark.parametrize(
    "sent",
    [
        None,
        credentials("wrong"),
        credentials(SECRET, user="someone"),
        "Bearer " + SECRET,
        credentials(SECRET)[:-2],
    ],
)
def test_a_wrong_or_missing_secret_gets_407(gate: NetjailProxyAuth, sent: str | None) -> None:
    for flow, hook in (
        (connect_flow("allowed.test"), gate.http_connect),
        (plain_request("allowed.test"), gate.requestheaders),
    ):
        if sent is not None:
            flow.request.headers["Proxy-Authorization"] = sent
        hook(flow)
        assert_refused(flow)
        assert "Proxy-Authorization" not in flow.request.headers
        assert flow.client_conn.id not in gate.authenticated


def test_requests_inside_an_authenticated_tunnel_need_no_credentials(gate: NetjailProxyAuth) -> None:
    connect = connect_flow("allowed.test")
    connect.request.headers["Proxy-Authorization"] = credentials(SECRET)
    gate.http_connect(connect)
    assert connect.response is None
    inner = tunnel_request(connect)
    inner.request.headers["Proxy-Authorization"] = credentials("whatever")  # removed, never judged
    gate.requestheaders(inner)
    assert inner.response is None and "Proxy-Authorization" not in inner.request.headers
    gate.client_disconnected(connect.client_conn)
    again = tunnel_request(connect)
    gate.requestheaders(again)
    assert_refused(again)  # a connection is forgotten when it closes


def test_without_a_secret_file_the_gate_is_open() -> None:
    addon = NetjailProxyAuth()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, netjail_proxy_secret_file="")
        flow = connect_flow("allowed.test")
        addon.http_connect(flow)
    assert flow.response is None


def test_an_unreadable_secret_file_is_an_options_error(tmp_path: Path) -> None:
    addon = NetjailProxyAuth()
    with taddons.context(addon) as tctx:
        with pytest.raises(exceptions.OptionsError, match="cannot read the proxy secret"):
            tctx.configure(addon, netjail_proxy_secret_file=str(tmp_path / "missing"))


def test_a_refused_client_gets_one_proxy_auth_record_and_no_policy_verdict(tmp_path: Path) -> None:
    secret_file = tmp_path / "proxy-secret"
    secret_file.write_text(SECRET)
    settings = write_settings(tmp_path / "settings.json", {"allowedDomains": ["allowed.test"]})
    gate, policy, recorder = NetjailProxyAuth(), NetjailPolicy(), NetjailRecorder()
    with taddons.context(gate, policy, recorder) as tctx:  # the order of netjail's proxy: the gate first
        tctx.configure(gate, netjail_proxy_secret_file=str(secret_file))
        tctx.configure(policy, netjail_settings=settings)
        tctx.configure(recorder, netjail_record_dir=str(tmp_path))
        refused = connect_flow("allowed.test")
        fire(tctx, http_layer.HttpConnectHook(refused))
        assert refused.response.status_code == 407
        fire(tctx, http_layer.HttpConnectErrorHook(refused))
        fire(tctx, server_hooks.ClientDisconnectedHook(refused.client_conn))

        allowed = connect_flow("allowed.test")
        allowed.request.headers["Proxy-Authorization"] = credentials(SECRET)
        fire(tctx, http_layer.HttpConnectHook(allowed))
        assert allowed.response is None
        fire(tctx, http_layer.HttpConnectedHook(established(allowed)))
        fire(tctx, server_hooks.ClientDisconnectedHook(allowed.client_conn))
    records = [json.loads(line) for line in (tmp_path / "flows.jsonl").read_text().splitlines()]
    assert [(r["id"], r["verdict"], r["reason"], r["rule"], r["status"]) for r in records] == [
        (refused.id, "deny", "proxy_auth", "proxy-secret", 407),
        (allowed.id, "allow", "allowed", "allowed.test", 200),
    ]
    assert SECRET not in (tmp_path / "flows.jsonl").read_text()
