"""addons/policy.py, hook by hook, on flows built in memory: no proxy, no sockets, no DNS.

Every name here is pinned to 127.0.0.1 with `network.hosts` or answered by the fake resolver below; a lookup of
any other name fails the test rather than reaching a real resolver."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from pathlib import Path

import pytest
from mitmproxy import exceptions
from mitmproxy.proxy import server_hooks
from mitmproxy.proxy.layers import http as http_layer
from mitmproxy.proxy.layers import tcp as tcp_layer
from mitmproxy.proxy.layers import tls as tls_layer
from mitmproxy.test import taddons, tflow, tutils

import netjail.addons.policy
from netjail.addons.policy import DENIED_HEADER, NetjailPolicy
from netjail.policy.synthetic import SyntheticAddresses
from tests.support.mitm import (
    captured_client,
    clienthello_data,
    connect_flow,
    fire,
    plain_request,
    server_dial,
    tunnel_request,
    write_settings,
)

PINNED = {"allowed.test": "127.0.0.1", "denied.test": "127.0.0.1", "other.test": "127.0.0.1"}
# What the fake resolver answers for names that are allowed but not pinned.
RESOLVED = {"rebind.test": "127.0.0.1", "public.test": "192.0.2.10"}


@pytest.fixture(autouse=True)
def no_real_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """server_connect resolves names it does not find pinned: answer from RESOLVED, refuse anything else."""

    async def lookup(name: str, *_: object) -> list[ipaddress.IPv4Address]:
        if name not in RESOLVED:
            raise socket.gaierror(socket.EAI_NONAME, f"{name} is not in the test's resolver")
        return [ipaddress.IPv4Address(RESOLVED[name])]

    monkeypatch.setattr(netjail.addons.policy, "system_lookup", lookup)
    monkeypatch.setattr(netjail.addons.policy, "server_lookup", lookup)


@pytest.fixture
def settings(tmp_path: Path):
    """settings(**network) -> the path of a settings file allowing allowed.test and denying denied.test."""

    def make(**network: object) -> str:
        network = {"allowedDomains": ["allowed.test"], "deniedDomains": ["denied.test"], **network}
        network.setdefault("hosts", PINNED)
        return write_settings(tmp_path / f"settings-{len(list(tmp_path.iterdir()))}.json", network)

    return make


@contextlib.contextmanager
def configured(settings_path: str, synthetic: SyntheticAddresses | None = None):
    """A NetjailPolicy configured with a settings file, inside a taddons context: (addon, tctx)."""
    addon = NetjailPolicy(synthetic)
    with taddons.context(addon) as tctx:
        tctx.configure(addon, netjail_settings=settings_path)
        yield addon, tctx


@pytest.fixture
def policy(settings):
    """The policy of the default test settings: (addon, tctx)."""
    with configured(settings()) as configured_policy:
        yield configured_policy


def verdict(flow) -> dict:
    return flow.metadata["netjail"]


def assert_denied(flow, reason: str) -> None:
    assert flow.response is not None and flow.response.status_code == 403, flow.response
    assert flow.response.headers[DENIED_HEADER] == reason
    assert verdict(flow)["verdict"] == "deny" and verdict(flow)["reason"] == reason, verdict(flow)


# -- configure ------------------------------------------------------------------------------------------------


def test_a_bad_settings_file_is_an_options_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"network": {"allowedDomains": "not a list"}}')
    addon = NetjailPolicy()
    with taddons.context(addon) as tctx, pytest.raises(exceptions.OptionsError, match="allowedDomains"):
        tctx.configure(addon, netjail_settings=str(bad))


def test_without_settings_every_flow_is_denied_as_policy_error() -> None:
    with configured("") as (_addon, tctx):
        flow = connect_flow("allowed.test")
        fire(tctx, http_layer.HttpConnectHook(flow))
    assert_denied(flow, "policy_error")


# -- http_connect ---------------------------------------------------------------------------------------------


def test_http_connect_allows_an_allowed_host_and_remembers_the_tunnel(policy) -> None:
    addon, _ = policy
    flow = connect_flow("Allowed.Test.", 443)
    addon.http_connect(flow)
    assert flow.response is None
    assert verdict(flow) == {
        "verdict": "allow",
        "reason": "allowed",
        "rule": "allowed.test",
        "detail": "",
        "judged_host": "allowed.test",
    }
    assert addon.tunnels[flow.client_conn.id][0].name == "allowed.test"


@pytest.mark.parametrize(
    "host, port, reason, rule",
    [
        ("denied.test", 443, "denied_by_rule", "denied.test"),
        ("other.test", 443, "not_allowed", "default-deny"),
        ("10.1.2.3", 443, "ip_literal", "default-deny"),
        ("[fd00::1]", 443, "ip_literal", "default-deny"),
        ("bad_name..test", 443, "invalid_host", "invalid-host"),
    ],
)
def test_http_connect_denies(policy, host: str, port: int, reason: str, rule: str) -> None:
    addon, _ = policy
    flow = connect_flow(host, port)
    addon.http_connect(flow)
    assert_denied(flow, reason)
    assert verdict(flow)["rule"] == rule
    assert flow.client_conn.id not in addon.tunnels


def test_http_connect_leaves_an_answered_flow_alone(policy) -> None:
    addon, _ = policy
    flow = connect_flow("other.test")
    flow.response = tutils.tresp(status_code=407)
    addon.http_connect(flow)
    assert flow.response.status_code == 407 and "netjail" not in flow.metadata


def test_audit_mode_lets_what_the_allow_list_refuses_through_as_would_deny(settings) -> None:
    with configured(settings(mode="audit")) as (addon, _tctx):
        unlisted, denied, literal = (
            connect_flow("other.test"),
            connect_flow("denied.test"),
            connect_flow("10.1.2.3"),
        )
        for flow in (unlisted, denied, literal):
            addon.http_connect(flow)
    assert unlisted.response is None
    assert verdict(unlisted)["verdict"] == "allow" and verdict(unlisted)["reason"] == "would_deny"
    assert_denied(denied, "denied_by_rule")  # deniedDomains still deny in audit mode
    assert_denied(literal, "ip_literal")  # and so do addresses the rules cannot name


def test_http_connect_fails_closed(policy, monkeypatch: pytest.MonkeyPatch) -> None:
    addon, tctx = policy
    monkeypatch.setattr(addon.policy, "judge_destination", explode)
    flow = connect_flow("allowed.test")
    fire(tctx, http_layer.HttpConnectHook(flow))
    assert_denied(flow, "policy_error")
    assert verdict(flow)["rule"] == "policy-error"


# -- requestheaders -------------------------------------------------------------------------------------------


def test_plain_http_to_an_allowed_host_passes(policy) -> None:
    addon, _ = policy
    flow = plain_request("allowed.test", 8080)
    addon.requestheaders(flow)
    assert flow.response is None
    assert verdict(flow)["verdict"] == "allow" and verdict(flow)["judged_host"] == "allowed.test"


@pytest.mark.parametrize(
    "host, host_header, reason",
    [
        ("other.test", None, "not_allowed"),
        ("denied.test", None, "denied_by_rule"),
        ("127.0.0.1", None, "ip_literal"),
        (
            "allowed.test",
            "other.test",
            "host_mismatch",
        ),  # absolute form to one host, Host header naming another
        ("allowed.test", "bad_name..test", "invalid_host"),
    ],
)
def test_plain_http_denies(policy, host: str, host_header: str | None, reason: str) -> None:
    addon, _ = policy
    flow = plain_request(host, 80, host_header=host_header)
    addon.requestheaders(flow)
    assert_denied(flow, reason)


def test_requests_inside_an_allowed_tunnel_pass_when_host_and_sni_name_the_tunnel(policy) -> None:
    addon, _ = policy
    connect = connect_flow("allowed.test", 8443)
    addon.http_connect(connect)
    for host_header in ("allowed.test:8443", "ALLOWED.test"):
        flow = tunnel_request(connect, host_header=host_header)
        addon.requestheaders(flow)
        assert flow.response is None, verdict(flow)
        assert verdict(flow)["reason"] == "allowed" and verdict(flow)["judged_host"] == "allowed.test"


@pytest.mark.parametrize(
    "host_header, sni, reason",
    [
        ("other.test", None, "host_mismatch"),
        ("other.test:443", None, "host_mismatch"),
        ("allowed.test", "other.test", "sni_mismatch"),
    ],
)
def test_domain_fronting_inside_a_tunnel_is_denied(
    policy, host_header: str, sni: str | None, reason: str
) -> None:
    addon, _ = policy
    connect = connect_flow("allowed.test")
    addon.http_connect(connect)
    flow = tunnel_request(connect, host_header=host_header, sni=sni)
    addon.requestheaders(flow)
    assert_denied(flow, reason)
    assert verdict(flow)["rule"] == "fronting-guard" and verdict(flow)["judged_host"] == "allowed.test"


def test_requestheaders_leaves_a_denied_flow_alone(policy) -> None:
    addon, _ = policy
    flow = plain_request("allowed.test")
    flow.response = tutils.tresp(status_code=407)
    addon.requestheaders(flow)
    assert flow.response.status_code == 407 and "netjail" not in flow.metadata


def test_requestheaders_fails_closed(policy, monkeypatch: pytest.MonkeyPatch) -> None:
    addon, tctx = policy
    monkeypatch.setattr(addon.policy, "judge_destination", explode)
    flow = plain_request("allowed.test")
    fire(tctx, http_layer.HttpRequestHeadersHook(flow))
    assert_denied(flow, "policy_error")


# -- tls_clienthello ------------------------------------------------------------------------------------------


@pytest.fixture
def excluding(settings):
    """A policy whose tlsTerminate.excludeDomains names allowed.test."""
    with configured(settings(tlsTerminate={"excludeDomains": ["allowed.test"]})) as (addon, tctx):
        yield addon, tctx


@pytest.mark.parametrize(
    "tunnel_host, sni, passed_through",
    [
        ("allowed.test", "allowed.test", True),  # excluded and named honestly: not intercepted
        ("allowed.test", None, True),
        ("allowed.test", "other.test", False),  # an SNI naming another host: intercepted, so it is judged
        ("denied.test", "denied.test", False),  # not excluded
    ],
)
def test_tls_clienthello_passes_through_only_excluded_domains(
    excluding, tunnel_host: str, sni: str | None, passed_through: bool
) -> None:
    addon, tctx = excluding
    connect = connect_flow(tunnel_host)
    addon.http_connect(connect)
    data = clienthello_data(tctx, connect.client_conn, sni)
    addon.tls_clienthello(data)
    assert data.ignore_connection is passed_through


def test_tls_clienthello_outside_a_tunnel_changes_nothing(excluding) -> None:
    addon, tctx = excluding
    data = clienthello_data(tctx, tflow.tclient_conn(), "allowed.test")
    addon.tls_clienthello(data)
    assert data.ignore_connection is False


def test_tls_clienthello_fails_closed_by_intercepting(excluding, monkeypatch: pytest.MonkeyPatch) -> None:
    addon, tctx = excluding
    connect = connect_flow("allowed.test")
    addon.http_connect(connect)
    monkeypatch.setattr(addon.policy, "tls_excluded", explode)
    data = clienthello_data(tctx, connect.client_conn, "allowed.test")
    data.ignore_connection = True  # as if another addon had chosen to pass it through
    fire(tctx, tls_layer.TlsClienthelloHook(data))
    assert data.ignore_connection is False  # intercepted: the request inside is judged (and denied) normally
    flow = tunnel_request(connect)
    addon.requestheaders(flow)
    assert verdict(flow)["judged_host"] == "allowed.test"


# -- server_connect -------------------------------------------------------------------------------------------


def dial(tctx, addon: NetjailPolicy, data: server_hooks.ServerConnectionHookData) -> None:
    tctx.master.event_loop.run_until_complete(addon.server_connect(data))


def test_server_connect_dials_the_pinned_address_of_an_allowed_name(policy) -> None:
    addon, tctx = policy
    connect = connect_flow("allowed.test")
    addon.http_connect(connect)
    data = server_dial(connect.client_conn, "allowed.test", 443)
    dial(tctx, addon, data)
    assert data.server.error is None
    assert data.server.address == ("allowed.test", 443) and data.server.sni == "allowed.test"
    assert addon.vetted[("allowed.test", 443)] == ipaddress.IPv4Address("127.0.0.1")
    flow = tunnel_request(connect)
    flow.server_conn.peername = ("127.0.0.1", 443)
    addon.response(flow)
    assert verdict(flow)["address"] == "127.0.0.1"  # carried over from the dial


def test_server_connect_refuses_a_private_address_an_allowed_name_resolves_to(settings) -> None:
    with configured(settings(allowedDomains=["rebind.test", "public.test"], hosts={})) as (addon, tctx):
        flow = plain_request("rebind.test")
        addon.requestheaders(flow)
        assert flow.response is None  # the name is allowed; only its address is not
        data = server_dial(flow.client_conn, "rebind.test", 80)
        dial(tctx, addon, data)
        assert data.server.error and "127.0.0.1" in data.server.error
        assert ("rebind.test", 80) not in addon.vetted
        flow.error = tflow.terr(data.server.error)
        addon.error(flow)
        assert verdict(flow)["verdict"] == "deny" and verdict(flow)["reason"] == "private_destination"
        assert verdict(flow)["rule"] == "local-range:loopback"

        public = server_dial(flow.client_conn, "public.test", 80)
        dial(tctx, addon, public)
        assert public.server.error is None
        assert addon.vetted[("public.test", 80)] == ipaddress.IPv4Address("192.0.2.10")


def test_server_connect_lets_an_explicitly_allowed_local_address_through(settings) -> None:
    with configured(settings(allowedDomains=["127.0.0.1:8080"])) as (addon, tctx):
        data = server_dial(tflow.tclient_conn(), "127.0.0.1", 8080)
        dial(tctx, addon, data)
        assert data.server.error is None and data.server.sni is None  # no SNI for an address
        assert addon.vetted[("127.0.0.1", 8080)] == ipaddress.IPv4Address("127.0.0.1")


@pytest.mark.parametrize(
    "dialed, sni, reason",
    [
        ("other.test", None, "host_mismatch"),  # a dial to another (allowed) host than the tunnel's
        ("allowed.test", "other.test", "sni_mismatch"),  # the upstream SNI naming another host
        ("denied.test", None, "denied_by_rule"),
    ],
)
def test_server_connect_refuses_a_dial_the_tunnel_does_not_name(
    settings, dialed: str, sni: str | None, reason: str
) -> None:
    with configured(settings(allowedDomains=["allowed.test", "other.test"])) as (addon, tctx):
        connect = connect_flow("allowed.test")
        addon.http_connect(connect)
        data = server_dial(connect.client_conn, dialed, 443, sni=sni)
        dial(tctx, addon, data)
    assert data.server.error and data.server.error.startswith("netjail: ")
    flow = tunnel_request(connect)
    flow.request.host = dialed
    flow.error = tflow.terr(data.server.error)
    addon.error(flow)
    assert verdict(flow)["verdict"] == "deny" and verdict(flow)["reason"] == reason


def test_server_connect_of_an_allowed_name_that_does_not_resolve_is_an_upstream_error(settings) -> None:
    with configured(settings(allowedDomains=["nowhere.test"], hosts={})) as (addon, tctx):
        data = server_dial(tflow.tclient_conn(), "nowhere.test", 443)
        dial(tctx, addon, data)
        assert data.server.error.startswith("could not resolve nowhere.test")
        assert not addon.dial_verdicts  # not a policy decision: nothing to carry over


def test_server_connect_leaves_a_failed_dial_alone(policy) -> None:
    addon, tctx = policy
    data = server_dial(tflow.tclient_conn(), "other.test", 443)
    data.server.error = "already failed"
    dial(tctx, addon, data)
    assert data.server.error == "already failed" and not addon.dial_verdicts


def test_server_connect_fails_closed(policy, monkeypatch: pytest.MonkeyPatch) -> None:
    addon, tctx = policy
    connect = connect_flow("allowed.test")
    addon.http_connect(connect)
    monkeypatch.setattr(addon.policy, "judge_destination", explode)
    data = server_dial(connect.client_conn, "allowed.test", 443)
    fire(tctx, server_hooks.ServerConnectHook(data))
    assert data.server.error and data.server.error.startswith("netjail: ")
    assert ("allowed.test", 443) not in addon.vetted
    flow = tunnel_request(connect)
    flow.error = tflow.terr(data.server.error)
    fire(tctx, http_layer.HttpErrorHook(flow))
    assert verdict(flow)["verdict"] == "deny" and verdict(flow)["reason"] == "policy_error"


# -- the vetted resolver (running) ----------------------------------------------------------------------------


def test_mitmproxy_resolves_only_what_server_connect_judged(policy) -> None:
    addon, tctx = policy
    loop = tctx.master.event_loop

    async def start_and_resolve(name: str) -> list:
        addon.running()
        return await loop.getaddrinfo(name, 443)

    dial(tctx, addon, server_dial(tflow.tclient_conn(), "allowed.test", 443))
    [(family, _, _, _, sockaddr)] = loop.run_until_complete(start_and_resolve("allowed.test"))
    assert family == socket.AF_INET and sockaddr == ("127.0.0.1", 443)
    with pytest.raises(socket.gaierror, match="was not judged"):
        loop.run_until_complete(start_and_resolve("other.test"))


# -- transparent capture: client_connected, server_connect of a synthetic address, tcp_start ------------------


@pytest.fixture
def capturing(settings):
    """A policy with the jail resolver's synthetic addresses (transparent capture): (addon, tctx, synthetic)."""
    synthetic = SyntheticAddresses()
    with configured(settings(), synthetic) as (addon, tctx):
        yield addon, tctx, synthetic


def test_a_captured_connection_to_a_synthetic_address_is_judged_as_its_name_and_dials_the_real_one(
    capturing,
) -> None:
    addon, tctx, synthetic = capturing
    v4, _ = synthetic.addresses_for("allowed.test")
    client = captured_client(str(v4), 443)
    addon.client_connected(client)
    assert addon.tunnels[client.id][0].name == "allowed.test"
    assert addon.connection_verdict(client)["verdict"] == "allow"
    data = server_dial(client, str(v4), 443)
    dial(tctx, addon, data)
    assert data.server.error is None
    assert data.server.address == ("127.0.0.1", 443) and data.server.sni == "allowed.test"


def test_a_captured_connection_to_an_unparseable_destination_is_refused(capturing) -> None:
    addon, _, _ = capturing
    client = captured_client("bad_name..test", 443)
    addon.client_connected(client)
    assert client.error and client.id not in addon.tunnels


def test_client_connected_ignores_regular_proxy_clients(capturing) -> None:
    addon, _, _ = capturing
    client = tflow.tclient_conn()
    addon.client_connected(client)
    assert client.error is None and client.id not in addon.tunnels


def test_client_connected_fails_closed(capturing, monkeypatch: pytest.MonkeyPatch) -> None:
    addon, tctx, synthetic = capturing
    monkeypatch.setattr(addon.policy, "parse", explode)
    v4, _ = synthetic.addresses_for("allowed.test")
    client = captured_client(str(v4), 443)
    fire(tctx, server_hooks.ClientConnectedHook(client))
    assert client.error == "netjail: cannot judge this connection" and client.id not in addon.tunnels


@pytest.mark.parametrize("host, allowed", [("allowed.test", True), ("other.test", False)])
def test_tcp_start_judges_raw_tcp_as_its_tunnel(capturing, host: str, allowed: bool) -> None:
    addon, _, synthetic = capturing
    v4, _ = synthetic.addresses_for(host)
    client = captured_client(str(v4), 5432)
    addon.client_connected(client)
    flow = tflow.ttcpflow(client_conn=client)
    addon.tcp_start(flow)
    assert verdict(flow)["judged_host"] == host
    assert (verdict(flow)["verdict"] == "allow") is allowed
    assert flow.live is allowed  # a denied one is killed


def test_tcp_start_outside_any_tunnel_is_killed(policy) -> None:
    addon, _ = policy
    flow = tflow.ttcpflow()
    addon.tcp_start(flow)
    assert not flow.live and verdict(flow)["reason"] == "policy_error"


def test_tcp_start_fails_closed(policy, monkeypatch: pytest.MonkeyPatch) -> None:
    addon, tctx = policy
    connect = connect_flow("allowed.test", 5432)
    addon.http_connect(connect)
    monkeypatch.setattr(addon.policy, "judge_destination", explode)
    flow = tflow.ttcpflow(client_conn=connect.client_conn)
    fire(tctx, tcp_layer.TcpStartHook(flow))
    assert not flow.live and flow.error is not None
    assert verdict(flow)["verdict"] == "deny" and verdict(flow)["reason"] == "policy_error"


# -- client_disconnected --------------------------------------------------------------------------------------


def test_client_disconnected_forgets_the_tunnel(policy) -> None:
    addon, tctx = policy
    connect = connect_flow("allowed.test")
    addon.http_connect(connect)
    dial(tctx, addon, server_dial(connect.client_conn, "other.test", 443))
    addon.client_disconnected(connect.client_conn)
    assert connect.client_conn.id not in addon.tunnels and connect.client_conn.id not in addon.dial_verdicts


def explode(*args: object, **kwargs: object):
    raise RuntimeError("judging failed")
