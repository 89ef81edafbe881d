"""mitmproxy's TLS configuration, with one change: an intercepted connection whose tunnel and SNI the policy
allows dials upstream before it answers the client's ClientHello, so that the ALPN offered to the client is the
one the upstream chose.

Without it (`connection_strategy="lazy"`) the proxy answers the client first and picks h2 blind; with an HTTP/1.1
upstream every h2 stream then needs its own upstream connection, a full TLS handshake per request. The dial
happens after the tunnel's verdict (`http_connect`, or the captured destination) and the SNI's, and goes through
the policy's `server_connect` like any other; Host is still judged on every request inside, before it is
forwarded. A tunnel or SNI that is not allowed, a TLS exclusion, or a flow log that failed keeps the lazy path:
nothing is dialed before a request is judged.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mitmproxy import tls
from mitmproxy.addons.tlsconfig import TlsConfig
from mitmproxy.proxy.mode_specs import TransparentMode

if TYPE_CHECKING:
    from netjail.addons.policy import NetjailPolicy
    from netjail.addons.recorder import NetjailRecorder

log = logging.getLogger("netjail.proxy")


class UpstreamFirstTlsConfig(TlsConfig):
    def __init__(self, policy: NetjailPolicy, recorder: NetjailRecorder) -> None:
        super().__init__()
        self.policy = policy
        self.recorder = recorder

    def tls_clienthello(self, tls_clienthello: tls.ClientHelloData) -> None:
        super().tls_clienthello(tls_clienthello)
        if tls_clienthello.ignore_connection or tls_clienthello.establish_server_tls_first:
            return
        try:
            tls_clienthello.establish_server_tls_first = self._dial_first(tls_clienthello)
        except Exception:  # stay lazy: the client is answered blind, nothing is dialed before a request
            log.exception("cannot decide whether to dial upstream before the client's TLS handshake")

    def _dial_first(self, data: tls.ClientHelloData) -> bool:
        context = data.context
        server = context.server
        if not server.tls or server.connected or server.address is None or server.error:
            return False
        if self.recorder.failed is not None or self.policy.policy is None:
            return False  # egress is stopping, or there is no policy to judge the dial
        tunnel = self.policy.tunnels.get(context.client.id)
        if tunnel is None:
            return False
        host, port = tunnel
        policy = self.policy.policy
        if not policy.judge_destination(host, port).allowed:
            return False
        if policy.judge_named(host, data.client_hello.sni, "sni") is not None:
            return False  # an SNI the tunnel does not allow: every request inside is denied, dial nothing
        # The upstream SNI the lazy path would have sent (mitmproxy's HTTP layer); server_connect judges it.
        if isinstance(context.client.proxy_mode, TransparentMode):
            server.sni = server.sni or context.client.sni or str(server.address[0])
        else:
            server.sni = server.sni or str(server.address[0])
        return True
