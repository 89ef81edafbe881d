"""netjail/proxy/upstream_first.py: when an intercepted connection dials upstream before answering the client's
ClientHello (to offer the client the upstream's ALPN), and when it stays lazy (nothing dialed before a request is
judged). The end-to-end behaviour (handshakes counted at the origin) is in tests/integration/test_protocols.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from mitmproxy import connection, tls
from mitmproxy.addons import proxyserver
from mitmproxy.proxy import server_hooks
from mitmproxy.proxy.layers import http as http_layer
from mitmproxy.test import taddons

from netjail.addons.policy import NetjailPolicy
from netjail.addons.recorder import NetjailRecorder
from netjail.proxy.upstream_first import UpstreamFirstTlsConfig
from tests.support.mitm import clienthello_data, connect_flow, established, fire, write_settings


@pytest.fixture
def addons(tmp_path: Path):
    settings = write_settings(
        tmp_path / "settings.json",
        {
            "allowedDomains": ["allowed.test"],
            "deniedDomains": ["denied.test"],
            "hosts": {"allowed.test": "127.0.0.1"},
        },
    )
    policy, recorder = NetjailPolicy(), NetjailRecorder()
    tlsconfig = UpstreamFirstTlsConfig(policy, recorder)
    # proxyserver owns connection_strategy (lazy in netjail), which tlsconfig reads
    with taddons.context(policy, recorder, proxyserver.Proxyserver(), tlsconfig) as tctx:
        tctx.configure(policy, netjail_settings=settings)
        tctx.options.connection_strategy = "lazy"
        yield tctx, policy, recorder, tlsconfig


def hello_in_tunnel(tctx: taddons.context, host: str, sni: str | None) -> tls.ClientHelloData:
    flow = connect_flow(host)
    fire(tctx, server_hooks.ClientConnectedHook(flow.client_conn))
    fire(tctx, http_layer.HttpConnectHook(flow))
    if flow.response is None:
        fire(tctx, http_layer.HttpConnectedHook(established(flow)))
    data = clienthello_data(tctx, flow.client_conn, sni)
    data.context.server = connection.Server(
        address=(host, 443), tls=True
    )  # what the tunnel's TLS layer holds
    return data


def test_an_allowed_tunnel_with_its_own_sni_dials_first_with_the_tunnels_name(addons) -> None:
    tctx, *_, tlsconfig = addons
    data = hello_in_tunnel(tctx, "allowed.test", "allowed.test")
    tlsconfig.tls_clienthello(data)
    assert data.establish_server_tls_first
    assert data.context.server.sni == "allowed.test"


@pytest.mark.parametrize("sni", ["denied.test", "other.test"])
def test_an_sni_naming_another_host_stays_lazy(addons, sni: str) -> None:
    tctx, *_, tlsconfig = addons
    data = hello_in_tunnel(tctx, "allowed.test", sni)
    tlsconfig.tls_clienthello(data)
    assert not data.establish_server_tls_first


def test_a_denied_tunnel_stays_lazy(addons) -> None:
    tctx, *_, tlsconfig = addons
    data = hello_in_tunnel(tctx, "denied.test", "denied.test")
    tlsconfig.tls_clienthello(data)
    assert not data.establish_server_tls_first


def test_a_failed_flow_log_stays_lazy(addons) -> None:
    tctx, _, recorder, tlsconfig = addons
    data = hello_in_tunnel(tctx, "allowed.test", "allowed.test")
    recorder.failed = OSError("disk full")
    tlsconfig.tls_clienthello(data)
    assert not data.establish_server_tls_first


def test_a_connection_passed_through_is_not_dialed_early(addons) -> None:
    tctx, *_, tlsconfig = addons
    data = hello_in_tunnel(tctx, "allowed.test", "allowed.test")
    data.ignore_connection = True
    tlsconfig.tls_clienthello(data)
    assert not data.establish_server_tls_first
