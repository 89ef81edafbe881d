"""mitmproxy flows and hook data for driving netjail's addons without a proxy: what mitmproxy's own
`mitmproxy.test.tflow` does not build (CONNECT tunnels, requests inside them, a ClientHello with a given SNI,
server dials, transparently captured clients), and `fire`, which dispatches a hook the way mitmproxy does."""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

from mitmproxy import connection, hooks, http, tls
from mitmproxy.proxy import context, mode_specs, server_hooks
from mitmproxy.proxy.layers.tls import parse_client_hello
from mitmproxy.test import taddons, tflow, tutils

FILESYSTEM: dict[str, list[str]] = {"denyRead": [], "allowWrite": [], "denyWrite": []}


def write_settings(path: Path, network: dict[str, Any], **top: Any) -> str:
    """A settings file at `path` with these network settings (srt's required keys default to empty lists); its
    path, as the `netjail_settings` option takes it."""
    network = {"allowedDomains": [], "deniedDomains": [], **network}
    path.write_text(json.dumps({"network": network, "filesystem": FILESYSTEM, **top}))
    return str(path)


def fire(tctx: taddons.context, event: hooks.Hook) -> None:
    """Dispatch `event` to every addon in order, as the proxy does: an exception an addon raises is logged and
    swallowed by mitmproxy (`safecall`), never seen here; only the addon's own handling decides the flow."""
    tctx.master.event_loop.run_until_complete(tctx.master.addons.trigger_event(event))


def connect_flow(host: str, port: int = 443, client: connection.Client | None = None) -> http.HTTPFlow:
    """A `CONNECT host:port` from a proxy client (regular mode)."""
    request = tutils.treq(
        method=b"CONNECT",
        scheme=b"",
        host=host,
        port=port,
        authority=f"{host}:{port}".encode(),
        path=b"",
        headers=http.Headers(),
        content=b"",
    )
    return tflow.tflow(client_conn=client or tflow.tclient_conn(), req=request)


def established(connect: http.HTTPFlow) -> http.HTTPFlow:
    """The CONNECT answered the way mitmproxy answers an allowed one (`200 Connection established`)."""
    connect.response = http.Response(
        connect.request.http_version.encode(), 200, b"Connection established", http.Headers(), b"", None, 1, 1
    )
    return connect


def tunnel_request(
    connect: http.HTTPFlow, path: str = "/", host_header: str | None = None, sni: str | None = None
) -> http.HTTPFlow:
    """A request inside `connect`'s tunnel: same client connection, https to the tunnel's host, with this Host
    header (the tunnel's host by default) and TLS SNI (the tunnel's host by default)."""
    host, port = connect.request.host, connect.request.port
    client = connect.client_conn
    client.sni = host if sni is None else sni
    return tflow.tflow(client_conn=client, req=request(host, port, path, "https", host_header))


def plain_request(
    host: str, port: int = 80, path: str = "/", host_header: str | None = None
) -> http.HTTPFlow:
    """A plain-HTTP proxy request (absolute form) from a client without a tunnel."""
    client = tflow.tclient_conn()
    client.sni = None
    return tflow.tflow(client_conn=client, req=request(host, port, path, "http", host_header))


def request(host: str, port: int, path: str, scheme: str, host_header: str | None = None) -> http.Request:
    default_port = {"http": 80, "https": 443}[scheme]
    shown = host if port == default_port else f"{host}:{port}"
    return tutils.treq(
        host=host,
        port=port,
        scheme=scheme.encode(),
        path=path.encode(),
        headers=http.Headers([(b"Host", (host_header or shown).encode()), (b"User-Agent", b"test")]),
        content=b"",
    )


def client_hello(sni: str | None) -> tls.ClientHello:
    """A real ClientHello, as Python's TLS client writes it, for `sni` (none when None)."""
    client = ssl.create_default_context()
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    outgoing = ssl.MemoryBIO()
    tls_object = client.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname=sni)
    try:
        tls_object.do_handshake()
    except ssl.SSLWantReadError:
        pass  # the ClientHello is written; the server's answer never comes
    hello = parse_client_hello(outgoing.read())
    assert hello is not None
    return hello


def clienthello_data(
    tctx: taddons.context, client: connection.Client, sni: str | None
) -> tls.ClientHelloData:
    return tls.ClientHelloData(context.Context(client, tctx.options), client_hello(sni))


def server_dial(
    client: connection.Client, host: str, port: int, sni: str | None = None
) -> server_hooks.ServerConnectionHookData:
    """What `server_connect` sees when mitmproxy is about to dial `host:port` for `client`."""
    server = connection.Server(address=(host, port))
    server.sni = sni
    return server_hooks.ServerConnectionHookData(server=server, client=client)


def captured_client(address: str, port: int) -> connection.Client:
    """A connection the jail captured transparently: its original destination is its sockname."""
    client = tflow.tclient_conn()
    client.proxy_mode = mode_specs.ProxyMode.parse("transparent")
    client.sockname = (address, port)
    client.sni = None
    return client
