"""netjail's proxy-credential gate: when the proxy's listener is reachable from outside the jail (macOS, where
the command reaches the proxy on the host's loopback), only clients that send the run's secret may use it.

Usable on its own:  mitmdump -s addons/proxyauth.py --set netjail_proxy_secret_file=FILE

Runs before the policy addon, so a refused client never gets a verdict of the policy: it gets 407 and one record
with reason `proxy_auth`. Authenticated client connections are remembered (requests inside a CONNECT tunnel carry
no credentials), and the credentials are removed before anything goes upstream. On Linux nothing listens outside
the jail, and this gate is off.
"""

from __future__ import annotations

import base64
import hmac
import logging
from pathlib import Path

from mitmproxy import ctx, exceptions, http
from mitmproxy.connection import Client

from netjail.records.schema import METADATA_KEY

log = logging.getLogger("netjail.proxyauth")

PROXY_USER = "netjail"


class NetjailProxyAuth:
    def __init__(self) -> None:
        self.expected: bytes | None = None
        self.authenticated: set[str] = set()

    def load(self, loader) -> None:
        loader.add_option(
            "netjail_proxy_secret_file",
            str,
            "",
            "File holding the run's proxy secret; empty: no credential check.",
        )

    def configure(self, updated: set[str]) -> None:
        if "netjail_proxy_secret_file" not in updated:
            return
        path = ctx.options.netjail_proxy_secret_file
        if not path:
            self.expected = None
            return
        try:
            secret = Path(path).read_text().strip()
        except OSError as e:
            raise exceptions.OptionsError(f"cannot read the proxy secret: {e}") from e
        self.expected = b"Basic " + base64.b64encode(f"{PROXY_USER}:{secret}".encode())

    def http_connect(self, flow: http.HTTPFlow) -> None:
        self._check(flow)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.client_conn.id in self.authenticated and flow.request.method != "CONNECT":
            flow.request.headers.pop("Proxy-Authorization", None)
            return
        self._check(flow)

    def client_disconnected(self, client: Client) -> None:
        self.authenticated.discard(client.id)

    def _check(self, flow: http.HTTPFlow) -> None:
        if self.expected is None or flow.response:
            return
        sent = flow.request.headers.get("Proxy-Authorization", "").encode()
        flow.request.headers.pop("Proxy-Authorization", None)
        if hmac.compare_digest(sent, self.expected):
            self.authenticated.add(flow.client_conn.id)
            return
        log.warning("refused a client without the run's proxy secret")
        flow.metadata[METADATA_KEY] = {
            "verdict": "deny",
            "reason": "proxy_auth",
            "rule": "proxy-secret",
            "detail": "this proxy serves one netjail run; the client did not send the run's proxy credentials",
        }
        flow.response = http.Response.make(
            407,
            b"netjail: proxy credentials required\n",
            {
                "Proxy-Authenticate": 'Basic realm="netjail"',
                "Content-Type": "text/plain",
                "Connection": "close",
            },
        )


addons = [NetjailProxyAuth()]
