"""netjail's parser limits: a request past `network.limits` is refused before mitmproxy parses it, and recorded.

Usable on its own:
  mitmdump -s addons/limits.py [--set netjail_settings=s.json]

mitmproxy reads an HTTP/1 head whole, however large (its `_http1.py` says "FIXME: protect against header size
DoS"), and hooks see the request only once it is parsed. So the HTTP/1 server layer is wrapped: its head is
scanned as bytes arrive (a check per line, no copy), and a head past a limit becomes a small placeholder request
(request line and Host only) marked with the limit, answered here with 431 or 414 and recorded like any denial;
the rest of the head is dropped unread. HTTP/2 heads are bounded by h2 (64 KiB decoded header list, 64
CONTINUATION frames, 100 concurrent streams); their count and sizes are checked in `requestheaders`. Chunk-size
lines and WebSocket messages are bounded in the same wrapped layers. The limits and their reasons:
docs/security.md ("Parser limits").
"""

from __future__ import annotations

import logging
import re
import time
from typing import ClassVar, NamedTuple

import wsproto.events
from h11._readers import ChunkedReader
from h11._receivebuffer import ReceiveBuffer
from mitmproxy import http
from mitmproxy.net.http import http1
from mitmproxy.proxy import commands, events, layer
from mitmproxy.proxy.layers import http as http_layers
from mitmproxy.proxy.layers import websocket as websocket_layers
from mitmproxy.proxy.layers.http import _http1
from mitmproxy.proxy.layers.http._base import ReceiveHttp
from mitmproxy.proxy.layers.http._events import ErrorCode, RequestEndOfMessage, RequestHeaders

from netjail.addons.settings_file import add_settings_option, configured_settings
from netjail.policy.proxy_settings import ParserLimits, ProxySettings
from netjail.records.schema import METADATA_KEY

log = logging.getLogger("netjail.limits")

MARK = "_netjail_limit"  # attribute of a placeholder Request: the limit its head went past
UNKNOWN_HOST = "unknown.invalid"  # a refused head whose Host was never read (RFC 2606 reserves .invalid)
VERSION_ROOM = 16  # " HTTP/1.1\r" may still be on its way when a partial request line is measured
WS_MESSAGE_TOO_BIG = 1009


class Exceeded(NamedTuple):
    """Which limit a request went past: `limit` names the setting (or the rule), `status` is the answer."""

    limit: str
    status: int
    detail: str

    @property
    def rule(self) -> str:
        return f"network.limits.{self.limit}" if self.limit.startswith("max") else self.limit


def _over(limit: str, status: int, what: str, value: int) -> Exceeded:
    return Exceeded(limit, status, f"{what} over {value} bytes (network.limits.{limit})")


class HeadScan:
    """Measures an HTTP/1 request head as it arrives, one `feed` per read; O(bytes) in all, no copies kept.

    Sizes: the request line without its line end; each header line without its line end; the header block as
    the sum of its header lines with their line ends (not the request line, not the final empty line)."""

    def __init__(self, limits: ParserLimits):
        self.limits = limits
        self.complete = False
        self.in_request_line = True
        self.line = 0  # bytes of the current line so far, line end included once it is complete
        self.first_space = -1  # in the request line
        self.line_start: int | None = None  # first byte of the current line
        self.previous = 0  # last byte seen (a CR before a LF may end the previous read)
        self.headers = 0
        self.block = 0

    def feed(self, data: bytes) -> Exceeded | None:
        start, end = 0, len(data)
        while start < end and not self.complete:
            if self.line == 0:
                self.line_start = data[start]
            newline = data.find(b"\n", start)
            stop = end if newline < 0 else newline + 1
            if self.in_request_line and self.first_space < 0:
                space = data.find(b" ", start, stop)
                if space >= 0:
                    self.first_space = self.line + space - start
            self.line += stop - start
            if not self.in_request_line:
                self.block += stop - start
            if newline < 0:
                self.previous = data[end - 1]
                return self._partial()
            before = data[newline - 1] if newline > start else self.previous
            length = self.line - 1 - (before == 0x0D)
            if exceeded := self._line_done(length):
                return exceeded
            self.line, self.previous, start = 0, 0x0A, stop
        return None

    def _partial(self) -> Exceeded | None:
        limits = self.limits
        if self.in_request_line:
            if (
                self.first_space >= 0
                and self.line - self.first_space - 1 > limits.max_url_bytes + VERSION_ROOM
            ):
                return _over("maxUrlBytes", 414, "URL", limits.max_url_bytes)
            if self.line > limits.max_request_line_bytes + 1:
                return _over("maxRequestLineBytes", 414, "request line", limits.max_request_line_bytes)
            return None
        if self.line_start in (0x20, 0x09):
            return Exceeded("obs-fold", 400, "a folded header line (obs-fold, refused by RFC 9112)")
        if self.line > limits.max_header_bytes + 1:  # + 1: its CR may have arrived without its LF
            return _over("maxHeaderBytes", 431, "a header field", limits.max_header_bytes)
        if self.block - (self.line == 1) > limits.max_header_block_bytes:  # a lone CR may end the head
            return _over("maxHeaderBlockBytes", 431, "the header block", limits.max_header_block_bytes)
        return None

    def _line_done(self, length: int) -> Exceeded | None:
        limits = self.limits
        if self.in_request_line:
            if length == 0:
                return None  # an empty line before the request line is tolerated (RFC 9112 2.2)
            self.in_request_line = False
            if length > limits.max_request_line_bytes:
                return _over("maxRequestLineBytes", 414, "request line", limits.max_request_line_bytes)
            return None  # the URL is measured exactly once parsed, in `requestheaders`
        if length == 0:
            self.complete = True
            return None
        if self.line_start in (0x20, 0x09):
            return Exceeded("obs-fold", 400, "a folded header line (obs-fold, refused by RFC 9112)")
        self.headers += 1
        if self.headers > limits.max_header_count:
            return Exceeded(
                "maxHeaderCount",
                431,
                f"over {limits.max_header_count} header fields (network.limits.maxHeaderCount)",
            )
        if length > limits.max_header_bytes:
            return _over("maxHeaderBytes", 431, "a header field", limits.max_header_bytes)
        if self.block > limits.max_header_block_bytes:
            return _over("maxHeaderBlockBytes", 431, "the header block", limits.max_header_block_bytes)
        return None


_HOST_LINE = re.compile(rb"\nhost:[ \t]*([^\r\n]{0,1024})", re.IGNORECASE)


def placeholder_request(head: bytes, exceeded: Exceeded, limits: ParserLimits) -> http.Request:
    """What a refused head is recorded as: its request line (the target cut where the limit stopped reading) and
    its Host header if one was read; nothing else of it is parsed."""
    first = head.find(b"\n", 0, limits.max_request_line_bytes + 2)
    line = (head[:first] if first >= 0 else head[: limits.max_request_line_bytes + 1]).strip(b"\r\n")
    method, _, rest = line.partition(b" ")
    target, _, version = rest.partition(b" ")
    target = target[: limits.max_url_bytes + VERSION_ROOM]
    if not version.startswith(b"HTTP/1"):
        version = b"HTTP/1.1"
    lines = [b" ".join((method, target, version))]
    window = head[: limits.max_request_line_bytes + limits.max_header_block_bytes + 4]
    if host := _HOST_LINE.search(window):
        lines.append(b"Host: " + host.group(1))
    try:
        request = http1.read_request_head(lines)
    except ValueError:
        request = http.Request(
            UNKNOWN_HOST,
            80,
            method[:32] or b"?",
            b"http",
            b"",
            b"/",
            b"HTTP/1.1",
            (),
            None,
            None,
            time.time(),
            None,
        )
    if not request.host and not request.host_header:
        request.data.host, request.data.port = UNKNOWN_HOST, 80
    request.timestamp_start = request.timestamp_end = time.time()
    setattr(request, MARK, exceeded)
    return request


def check_request(request: http.Request, limits: ParserLimits) -> Exceeded | None:
    """The limits as seen on a parsed request (HTTP/2 and 3, and the URL of HTTP/1): one pass over the fields."""
    if len(request.data.path) > limits.max_url_bytes or len(request.url) > limits.max_url_bytes:
        return _over("maxUrlBytes", 414, "URL", limits.max_url_bytes)
    fields = request.headers.fields
    if len(fields) > limits.max_header_count:
        return Exceeded(
            "maxHeaderCount",
            431,
            f"over {limits.max_header_count} header fields (network.limits.maxHeaderCount)",
        )
    block = 0
    for name, value in fields:
        size = len(name) + len(value) + 2
        if size > limits.max_header_bytes:
            return _over("maxHeaderBytes", 431, "a header field", limits.max_header_bytes)
        block += size + 2
    if block > limits.max_header_block_bytes:
        return _over("maxHeaderBlockBytes", 431, "the header block", limits.max_header_block_bytes)
    return None


def refusal_response(exceeded: Exceeded) -> http.Response:
    body = f"netjail refused this request: {exceeded.detail}\n".encode()
    return http.Response.make(
        exceeded.status, body, {"Content-Type": "text/plain; charset=utf-8", "Connection": "close"}
    )


# -- the wrapped layers ---------------------------------------------------------------------------------------


class BoundedHttp1Server(_http1.Http1Server):
    """mitmproxy's HTTP/1 server layer with its head and chunk-size lines bounded."""

    limits: ClassVar[ParserLimits] = ParserLimits()
    head: HeadScan | None = None
    refused = False

    def _handle_event(self, event: events.Event) -> layer.CommandGenerator[None]:
        if self.refused and isinstance(event, events.DataReceived):
            return  # the rest of a refused head is neither parsed nor kept
        yield from super()._handle_event(event)

    def read_headers(self, event: events.ConnectionEvent) -> layer.CommandGenerator[None]:
        if isinstance(event, events.DataReceived):
            if self.head is None:  # a new head: what is buffered already belongs to it
                self.head = HeadScan(self.limits)
                exceeded = self.head.feed(bytes(self.buf))
            else:
                exceeded = self.head.feed(event.data)
            if exceeded is not None:
                yield from self._refuse(exceeded)
                return
        yield from super().read_headers(event)
        if self.state != self.read_headers:
            self.head = None

    def _refuse(self, exceeded: Exceeded) -> layer.CommandGenerator[None]:
        request = placeholder_request(bytes(self.buf), exceeded, self.limits)
        self.buf = ReceiveBuffer()
        self.refused = True
        self.head = None
        self.request = request
        yield ReceiveHttp(RequestHeaders(self.stream_id, request, True))
        yield ReceiveHttp(RequestEndOfMessage(self.stream_id))
        yield from self.mark_done(request=True)

    def read_body(self, event: events.Event) -> layer.CommandGenerator[None]:
        yield from super().read_body(event)
        reader = getattr(self, "body_reader", None)
        if self.state != self.read_body or not isinstance(reader, ChunkedReader):
            return
        # The reader has taken every byte it could: what is left is a line it is still waiting for.
        trailer = getattr(reader, "_reading_trailer", False)
        limit = self.limits.max_header_block_bytes if trailer else self.limits.max_chunk_line_bytes
        if len(self.buf) > limit:
            name = "maxHeaderBlockBytes" if trailer else "maxChunkLineBytes"
            what = "the trailer block" if trailer else "a chunk-size line"
            self.refused = True
            self.buf = ReceiveBuffer()
            yield commands.CloseConnection(self.conn)
            yield ReceiveHttp(
                self.ReceiveProtocolError(
                    self.stream_id,
                    f"HTTP/1 protocol error: {what} over {limit} bytes (network.limits.{name})",
                    code=ErrorCode.GENERIC_CLIENT_ERROR,
                )
            )


class BoundedWebsocketLayer(websocket_layers.WebsocketLayer):
    """mitmproxy's WebSocket layer with the message it assembles bounded (count of fragments, bytes)."""

    limits: ClassVar[ParserLimits] = ParserLimits()

    def relay_messages(self, event: events.Event) -> layer.CommandGenerator[None]:
        yield from super().relay_messages(event)
        if not isinstance(event, events.DataReceived) or self._handle_event != self.relay_messages:
            return
        for ws in (self.client_ws, self.server_ws):
            buffered = ws.frame_buf
            if len(buffered) <= 1 and len(buffered[0]) <= self.limits.max_websocket_message_bytes:
                continue
            fragments = len(buffered) > self.limits.max_websocket_fragments
            if fragments or sum(map(len, buffered)) > self.limits.max_websocket_message_bytes:
                yield from self._close_too_big(fragments)
                return

    def _close_too_big(self, fragments: bool) -> layer.CommandGenerator[None]:
        name = "maxWebsocketFragments" if fragments else "maxWebsocketMessageBytes"
        reason = f"message over network.limits.{name}"
        assert self.flow.websocket is not None
        self.flow.websocket.close_code = WS_MESSAGE_TOO_BIG
        self.flow.websocket.close_reason = reason
        self.flow.metadata.setdefault(METADATA_KEY, {})["detail"] = f"WebSocket closed: {reason}"
        for ws in (self.client_ws, self.server_ws):
            ws.frame_buf = [b""]
            yield ws.send2(wsproto.events.CloseConnection(code=WS_MESSAGE_TOO_BIG, reason=reason))
            yield commands.CloseConnection(ws.conn)
        yield websocket_layers.WebsocketEndHook(self.flow)
        self._handle_event = self.done


# -- the addon ------------------------------------------------------------------------------------------------


def configured_limits(given: ProxySettings | None) -> ParserLimits:
    """`network.limits` of the settings (the defaults without any)."""
    settings = configured_settings(given)
    return ParserLimits() if settings is None else settings.limits


class NetjailLimits:
    def __init__(self, settings: ProxySettings | None = None) -> None:
        self.given = settings
        self.limits = ParserLimits()
        self.replaced: list[tuple[object, str, object]] = []

    def load(self, loader) -> None:
        add_settings_option(loader)
        self._install(http_layers, "Http1Server", BoundedHttp1Server)
        self._install(websocket_layers, "WebsocketLayer", BoundedWebsocketLayer)

    def configure(self, updated: set[str]) -> None:
        if "netjail_settings" not in updated:
            return
        self.limits = BoundedHttp1Server.limits = BoundedWebsocketLayer.limits = configured_limits(self.given)

    def done(self) -> None:
        for module, name, original in reversed(self.replaced):
            setattr(module, name, original)
        self.replaced.clear()

    def _install(self, module: object, name: str, replacement: type) -> None:
        original = getattr(module, name)
        if original is not replacement:
            self.replaced.append((module, name, original))
            setattr(module, name, replacement)

    def http_connect(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error:
            return
        if exceeded := getattr(flow.request, MARK, None):
            self._refuse(flow, exceeded)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error:
            return
        exceeded = getattr(flow.request, MARK, None) or check_request(flow.request, self.limits)
        if exceeded:
            self._refuse(flow, exceeded)

    def _refuse(self, flow: http.HTTPFlow, exceeded: Exceeded) -> None:
        flow.metadata[METADATA_KEY] = {
            "verdict": "deny",
            "reason": "limit_exceeded",
            "rule": exceeded.rule,
            "detail": exceeded.detail,
        }
        flow.response = refusal_response(exceeded)
        log.warning("refused %s:%s: %s", flow.request.host, flow.request.port, exceeded.detail)


addons = [NetjailLimits()]
