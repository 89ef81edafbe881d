"""netjail's credential addon for WebSocket messages: the message half of srt's `credentials` in `mode: "mask"`.

Once a WebSocket is open, its messages pass no request hook, so addons/credentials.py never sees them. Here:
- a message the command sends toward one of a credential's inject hosts (a TLS connection netjail terminated, or
  plain HTTP with `allowPlaintextInject`) has each placeholder replaced by the real value (JSON-escaped in a text
  message that is JSON);
- a message that carries the placeholder toward any other host is dropped and the WebSocket closed, as a request
  carrying it there is refused (`credential_misdirected`);
- a real value in a message from the server becomes the placeholder before the command sees it.
The messages flows.mitm keeps are put back in their placeholder form before the recorder writes them (this addon
comes before the recorder), and the record names the credential, never a value. Every hook fails closed: an error
drops the message and ends the WebSocket.
"""

from __future__ import annotations

import logging

from mitmproxy import http
from mitmproxy.websocket import WebSocketMessage

from netjail.addons.credentials import CredentialInjector, FlowState, body_form
from netjail.policy.credentials import StreamSwap
from netjail.records.schema import METADATA_KEY

log = logging.getLogger("netjail.credentials")
WHERE = "websocket message"


class CredentialMessages:
    def __init__(self, injector: CredentialInjector) -> None:
        self.injector = injector
        # per WebSocket: which credentials may be injected on it, and each message sent with real values in it
        # (with the content the command sent, put back before the flow is recorded)
        self.sockets: dict[str, tuple[FlowState, list[tuple[WebSocketMessage, bytes]]]] = {}

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        if not self.injector.credentials or flow.websocket is None or not flow.websocket.messages:
            return
        message = flow.websocket.messages[-1]
        if message.dropped:
            return
        try:
            self._message(flow, message)
        except Exception as e:
            log.error(
                "credential handling of a WebSocket message failed (%s); it was dropped", type(e).__name__
            )
            message.drop()
            flow.kill()

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        entry = self.sockets.pop(flow.id, None)
        if entry is None:
            return
        for message, sent in entry[1]:
            message.content = sent  # recorded as the command sent it

    def _message(self, flow: http.HTTPFlow, message: WebSocketMessage) -> None:
        if flow.id not in self.sockets:
            self.sockets[flow.id] = (self.injector.state_for(flow), [])
        state, swapped = self.sockets[flow.id]
        content = message.content
        if not message.from_client:
            back = StreamSwap(
                [
                    (c.real.encode("utf-8", "surrogateescape"), c.placeholder.encode())
                    for c in self.injector.credentials
                ]
            )
            scrubbed = back(content) + back(b"")
            if back.counts:
                message.content = scrubbed
            return
        leaving = [c for c in state.others if c.placeholder.encode() in content]
        if leaving:
            for credential in leaving:
                state.seen_elsewhere(credential, WHERE)
            flow.metadata[METADATA_KEY] = flow.metadata.get(METADATA_KEY, {}) | {
                "verdict": "deny",
                "reason": "credential_misdirected",
                "rule": "credentials.injectHosts",
            }
            self.injector.note(flow, state)
            message.content = b""  # nothing of it leaves, nor is kept
            message.drop()
            flow.kill()
            return
        form = "application/json" if message.is_text and content.lstrip()[:1] in (b"{", b"[") else ""
        out = StreamSwap([(c.placeholder.encode(), body_form(c, form)) for c in state.injectable])
        real = out(content) + out(b"")
        if not out.counts:
            return
        for credential in state.injectable:
            if times := out.counts.get(credential.placeholder.encode(), 0):
                state.count(credential, WHERE, times)
        swapped.append((message, content))
        message.content = real
        self.injector.note(flow, state)
