"""addons/policy.py with network.rules, hook by hook on flows built in memory: the rules narrow requests inside
a tunnel and plain HTTP, a raw TCP stream to a ruled host is killed, hosts without rules keep their verdict."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from mitmproxy.proxy.layers import http as http_layer
from mitmproxy.test import taddons, tflow

from netjail.addons.policy import DENIED_HEADER, NetjailPolicy
from tests.support.mitm import connect_flow, established, fire, plain_request, tunnel_request, write_settings

RULES = [
    {
        "hosts": ["allowed.test"],
        "default": "deny",
        "requests": [
            {"deny": "*", "path": "/**/git-receive-pack", "reason": "no pushing"},
            {"allow": ["GET", "HEAD"], "path": "/**"},
        ],
    }
]


@contextlib.contextmanager
def configured(tmp_path: Path) -> Iterator[tuple[NetjailPolicy, taddons.context]]:
    path = write_settings(
        tmp_path / "settings.json",
        {
            "allowedDomains": ["allowed.test", "other.test"],
            "hosts": {"allowed.test": "127.0.0.1", "other.test": "127.0.0.1"},
            "rules": RULES,
        },
    )
    addon = NetjailPolicy()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, netjail_settings=path)
        yield addon, tctx


def test_requests_in_a_tunnel_are_judged_by_the_rules(tmp_path: Path) -> None:
    with configured(tmp_path) as (addon, tctx):
        _requests_in_a_tunnel(addon, tctx)


def _requests_in_a_tunnel(addon: NetjailPolicy, tctx: taddons.context) -> None:
    connect = connect_flow("allowed.test")
    addon.http_connect(connect)
    established(connect)
    read, push, ambiguous = (tunnel_request(connect, p) for p in ("/o/r", "/o/r/git-receive-pack", "/o%2fr"))
    push.request.method = "POST"
    for flow in (read, push, ambiguous):
        fire(tctx, http_layer.HttpRequestHeadersHook(flow))
    assert read.response is None and read.metadata["netjail"]["rule"] == "allowed.test: allow GET,HEAD /**"
    assert push.response is not None and push.response.status_code == 403
    assert push.response.headers[DENIED_HEADER] == "denied_by_request_rule"
    body = push.response.get_text()
    assert "POST /o/r/git-receive-pack to allowed.test is denied by network.rules[0].requests[0]" in body
    assert "rule: allowed.test: deny * /**/git-receive-pack" in body
    assert push.metadata["netjail"]["rule"] == "allowed.test: deny * /**/git-receive-pack"
    assert ambiguous.response is not None and ambiguous.metadata["netjail"]["reason"] == "ambiguous_path"


def test_plain_http_is_judged_by_the_rules_and_other_hosts_are_not(tmp_path: Path) -> None:
    with configured(tmp_path) as (addon, tctx):
        _plain(addon, tctx)


def _plain(addon: NetjailPolicy, tctx: taddons.context) -> None:
    denied, control, other = (
        plain_request("allowed.test"),
        plain_request("allowed.test"),
        plain_request("other.test"),
    )
    denied.request.method = other.request.method = "DELETE"
    for flow in (denied, control, other):
        fire(tctx, http_layer.HttpRequestHeadersHook(flow))
    assert denied.metadata["netjail"]["rule"] == "allowed.test: default deny" and denied.response is not None
    assert control.response is None and other.response is None
    assert other.metadata["netjail"]["rule"] == "other.test"


def test_raw_tcp_to_a_host_with_rules_is_killed(tmp_path: Path) -> None:
    with configured(tmp_path) as (addon, _):
        _raw_tcp(addon)


def _raw_tcp(addon: NetjailPolicy) -> None:
    flows = []
    for host in ("allowed.test", "other.test"):
        connect = connect_flow(host)
        addon.http_connect(connect)
        flow = tflow.ttcpflow(client_conn=connect.client_conn)
        addon.tcp_start(flow)
        flows.append(flow)
    ruled, control = flows
    assert not ruled.live and ruled.metadata["netjail"]["rule"] == "request-rules-need-http"
    assert ruled.metadata["netjail"]["reason"] == "opaque_tunnel"
    assert control.live and control.metadata["netjail"]["verdict"] == "allow"
