"""netjail's upload caps: `network.limits` maxRequestUploadBytes, maxHostUploadBytes and maxRunUploadBytes.

Usable on its own:  mitmdump -s addons/uploads.py --set netjail_settings=settings.json

Bytes the command sends are counted as they go out: an HTTP request's line (method and target), headers and body;
a WebSocket's messages; a raw TCP connection's bytes. A request whose declared size (head and Content-Length)
is already over a cap is answered 413 and nothing of it is forwarded. One that goes over while its body streams
is cut: the bytes past the cap are never sent, and the flow is killed (mitmproxy closes the connection when the
body ends). WebSocket messages and raw TCP past a cap are dropped. The record says which cap fired: reason
`limit_exceeded`, rule `network.limits.<cap>`. Added after the recorder: its body tap sees what is forwarded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from mitmproxy import ctx, http, tcp

from netjail.addons.limits import configured_limits
from netjail.addons.settings_file import add_settings_option
from netjail.policy.proxy_settings import ParserLimits, ProxySettings
from netjail.records.schema import BUFFERED_KEY, METADATA_KEY

log = logging.getLogger("netjail.uploads")

CAPS = ("maxRequestUploadBytes", "maxHostUploadBytes", "maxRunUploadBytes")


def head_bytes(request: http.Request) -> int:
    """The request line and headers as HTTP/1 spells them (`METHOD target HTTP/1.1`, `name: value`, CRLFs)."""
    line = len(request.data.method) + 1 + len(request.data.path or request.data.authority) + 11
    return line + sum(len(name) + len(value) + 4 for name, value in request.data.headers.fields) + 2


def _declared_body(request: http.Request) -> int:
    value = request.headers.get("content-length", "")
    return int(value) if value.isdigit() else 0


class UploadCaps:
    def __init__(self, settings: ProxySettings | None = None) -> None:
        self.given = settings
        self.limits = ParserLimits()
        self.host_sent: dict[str, int] = {}
        self.run_sent = 0

    def load(self, loader) -> None:
        add_settings_option(loader)

    def configure(self, updated: set[str]) -> None:
        if "netjail_settings" not in updated:
            return
        self.limits = configured_limits(self.given)

    @property
    def active(self) -> bool:
        lim = self.limits
        return any(
            c is not None
            for c in (lim.max_request_upload_bytes, lim.max_host_upload_bytes, lim.max_run_upload_bytes)
        )

    # -- accounting -------------------------------------------------------------------------------------------

    def room(self, host: str, sent_by_flow: int) -> tuple[int | None, str]:
        """How many more bytes may leave for this flow, and the cap that sets it (None: no cap)."""
        lim = self.limits
        candidates = [
            (lim.max_request_upload_bytes, sent_by_flow, "maxRequestUploadBytes"),
            (lim.max_host_upload_bytes, self.host_sent.get(host, 0), "maxHostUploadBytes"),
            (lim.max_run_upload_bytes, self.run_sent, "maxRunUploadBytes"),
        ]
        left = [(cap - used, name) for cap, used, name in candidates if cap is not None]
        if not left:
            return None, ""
        amount, name = min(left)
        return max(amount, 0), name

    def count(self, host: str, amount: int) -> None:
        self.host_sent[host] = self.host_sent.get(host, 0) + amount
        self.run_sent += amount

    def _cap_value(self, name: str) -> int:
        field = {
            "maxRequestUploadBytes": "max_request_upload_bytes",
            "maxHostUploadBytes": "max_host_upload_bytes",
        }
        return getattr(self.limits, field.get(name, "max_run_upload_bytes"))

    def verdict(self, name: str, host: str, what: str) -> dict[str, str]:
        scope = {"maxRequestUploadBytes": "one request", "maxHostUploadBytes": f"all requests to {host}"}.get(
            name, "the whole run"
        )
        return {
            "verdict": "deny",
            "reason": "limit_exceeded",
            "rule": f"network.limits.{name}",
            "detail": f"{what} would send more than {self._cap_value(name)} bytes, the cap network.limits.{name} "
            f"sets for {scope}. Send less, or the user raises that cap.",
        }

    def _mark(self, flow: http.HTTPFlow | tcp.TCPFlow, verdict: dict[str, str]) -> None:
        flow.metadata[METADATA_KEY] = flow.metadata.get(METADATA_KEY, {}) | verdict
        log.warning("upload cap %s: %s", verdict["rule"], verdict["detail"])

    # -- HTTP -------------------------------------------------------------------------------------------------

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or flow.request.method == "CONNECT" or not self.active:
            return
        try:
            host = _host_of(flow)
            head = head_bytes(flow.request)
            room, name = self.room(host, 0)
            if room is not None and head + _declared_body(flow.request) > room:
                verdict = self.verdict(name, host, f"{flow.request.method} {flow.request.path[:200]}")
                self._mark(flow, verdict)
                flow.request.stream = False  # mitmproxy cannot stream a request it answers itself
                flow.response = _too_large(verdict)
                return
            if flow.metadata.get(BUFFERED_KEY):
                # the credential injector reads this body whole first: streaming it would send it unscanned
                flow.metadata["netjail.upload_head"] = head
                return
            self.count(host, head)
            flow.request.stream = CappedBody(self, flow, host, head, flow.request.stream)
        except Exception:
            log.exception("cannot apply the upload caps; refusing the request")
            flow.request.stream = False
            flow.response = http.Response.make(413, b"netjail could not count this upload; refused\n")

    def request(self, flow: http.HTTPFlow) -> None:
        stream = flow.request.stream
        if isinstance(stream, CappedBody) and stream.cut:
            close_upstream(flow)  # before mitmproxy ends the message upstream
        head = flow.metadata.pop("netjail.upload_head", None)
        if head is None or flow.response or flow.error:
            return
        try:  # a buffered body, whole (and swapped) now, before any of it is sent
            host = _host_of(flow)
            size = head + len(flow.request.raw_content or b"")
            room, name = self.room(host, 0)
            if room is not None and size > room:
                verdict = self.verdict(name, host, f"{flow.request.method} {flow.request.path[:200]}")
                self._mark(flow, verdict)
                flow.response = _too_large(verdict)
                return
            self.count(host, size)
        except Exception:
            log.exception("cannot apply the upload caps; refusing the request")
            flow.response = http.Response.make(413, b"netjail could not count this upload; refused\n")

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        if not self.active or flow.websocket is None:
            return
        message = flow.websocket.messages[-1]
        if not message.from_client:
            return
        host = _host_of(flow)
        sent = flow.metadata.setdefault("netjail.upload", head_bytes(flow.request))
        room, name = self.room(host, sent)
        if room is not None and len(message.content) > room:
            self._mark(flow, self.verdict(name, host, "this WebSocket"))
            message.content = b""
            message.drop()
            flow.kill()
            return
        flow.metadata["netjail.upload"] = sent + len(message.content)
        self.count(host, len(message.content))

    # -- raw TCP ----------------------------------------------------------------------------------------------

    def tcp_message(self, flow: tcp.TCPFlow) -> None:
        if not self.active:
            return
        message = flow.messages[-1]
        if not message.from_client:
            return
        host = str(
            flow.metadata.get(METADATA_KEY, {}).get("judged_host") or (flow.server_conn.address or ("",))[0]
        )
        sent = flow.metadata.get("netjail.upload", 0)
        room, name = self.room(host, sent)
        if flow.metadata.get(METADATA_KEY, {}).get("reason") == "limit_exceeded":
            room = 0
        size = len(message.content)
        if room is not None and size > room:
            if flow.metadata.get(METADATA_KEY, {}).get("reason") != "limit_exceeded":
                self._mark(flow, self.verdict(name, host, "this connection"))
            counts = flow.metadata.get("netjail.tcp")
            if counts is not None:  # the recorder counted the whole message before it was cut
                counts["tcp_out"] -= size - room
            message.content = message.content[:room]
            flow.kill()
            size = room
        flow.metadata["netjail.upload"] = sent + size
        self.count(host, size)


class CappedBody:
    """A request body `stream` callable: forwards chunks while the caps leave room, the rest never."""

    def __init__(
        self,
        caps: UploadCaps,
        flow: http.HTTPFlow,
        host: str,
        sent: int,
        inner: Callable[[bytes], bytes | Iterable[bytes]] | bool,
    ) -> None:
        self.caps, self.flow, self.host, self.sent, self.inner, self.cut = (
            caps,
            flow,
            host,
            sent,
            inner,
            False,
        )

    def __call__(self, chunk: bytes) -> Any:
        # Never return b"" for a cut body: mitmproxy writes an empty chunk upstream, which in a chunked body is
        # its last chunk ("0\r\n\r\n"): the origin would read the upload as complete, cut short.
        if self.cut:
            return []
        else:
            room, name = self.caps.room(self.host, self.sent)
            if room is not None and len(chunk) > room:
                self.cut = True
                what = f"{self.flow.request.method} {self.flow.request.path[:200]}"
                self.caps._mark(self.flow, self.caps.verdict(name, self.host, what))
                chunk = chunk[:room]
                # mitmproxy would still end the message upstream (a chunked body would read as complete, cut
                # short): close the upstream connection now, so the origin sees an upload that never finished
                close_upstream(self.flow)
                self.flow.kill()
            self.sent += len(chunk)
            self.caps.count(self.host, len(chunk))
            if self.cut and not chunk:
                return []
        return self.inner(chunk) if callable(self.inner) else chunk


def close_upstream(flow: http.HTTPFlow) -> None:
    """Close the flow's server connection at once (mitmproxy's connection handler: an internal API, covered by
    tests/security/test_upload_caps.py). Without a live handler (stock tests), killing the flow is all there is."""
    proxyserver = ctx.master.addons.get("proxyserver") if ctx.master else None
    handler = getattr(proxyserver, "connections", {}).get(flow.client_conn.id)
    if handler is not None and flow.server_conn in handler.transports:
        writer = handler.transports[flow.server_conn].writer
        if writer is not None:
            writer.transport.abort()  # at once: close() would still send what the layer writes this turn
        handler.close_connection(flow.server_conn)


def _host_of(flow: http.HTTPFlow) -> str:
    return str(flow.metadata.get(METADATA_KEY, {}).get("judged_host") or flow.request.host)


def _too_large(verdict: dict[str, str]) -> http.Response:
    body = (
        f"netjail refused this upload: {verdict['detail']}\nreason: limit_exceeded  rule: {verdict['rule']}\n"
    )
    return http.Response.make(
        413,
        body.encode(),
        {
            "Content-Type": "text/plain; charset=utf-8",
            "X-Netjail-Denied": "limit_exceeded",
            "Connection": "close",
        },
    )


addons = [UploadCaps()]
