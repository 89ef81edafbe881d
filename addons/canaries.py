"""netjail's canary addons (settings `audit.canaries`, docs/credentials.md "Canaries"): a canary credential seen in a
request — a header (Basic auth's base64 included), the host name, the path or query, the body, a WebSocket message
the command sends — or in a name the jail's resolver is asked is denied, recorded by its name (`canaries` in the record, flag `canary`) and reported to
the supervisor, which stops the run (exit 122, `run_end` reason `canary_tripped`).

The forms looked for are the canary as it is, URL-encoded, hex, base64 and base32 (at every alignment, so inside
a longer encoded text too), and JSON's `\\/`; a buffered JSON body is also parsed (`\\u` escapes). Host names are
matched whatever their case and however the value is cut into labels. The matching is netjail/detect/canaries.py;
the streaming is the credential addon's (`StreamSwap` holds back a needle split across chunks, and a stream that
carries one is cut before its bytes leave: addons/credentials.py), with the same limits (MAX_SCANNED_BODY, the
decodable encodings).

Three objects, for mitmproxy's hook order: `CanaryGuard` comes before ask mode and the policy (it sees the request
as the command sent it, before any placeholder is swapped, and refuses it before the user is asked anything; it
judges CONNECT targets, request heads and the server name dialed upstream); `CanaryBodyWatch` comes after the credential injector (it wraps the body stream last, so it
watches the bytes that really go upstream); `CanaryDns` wraps the jail resolver. Every hook fails closed: an error
refuses what it was judging.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

from mitmproxy import dns, http
from mitmproxy.net import encoding
from mitmproxy.proxy import server_hooks

from netjail.addons.credentials import DECODABLE, MAX_SCANNED_BODY
from netjail.detect.canaries import (
    CANARY_KEY,
    NAME_PREFIX,
    Canary,
    CanaryMatcher,
    Sighting,
    describe_where,
)
from netjail.policy.credentials import StreamSwap
from netjail.records.log import utc_timestamp
from netjail.records.schema import BUFFERED_KEY, METADATA_KEY, DnsRecord

log = logging.getLogger("netjail.canaries")
RULE = "audit.canaries"
NXDOMAIN, REFUSED = 3, 5
# How long the answer to a request or lookup that carried a canary is held: the supervisor stops the sandbox as
# soon as it is told (milliseconds), so the command never gets to act on the refusal.
HOLD_SECONDS = 3.0


class Tripwire:
    """What the addons share: the matcher, and the line to the supervisor (`canary {json}` on the control socket,
    netjail/run/supervise.py), said once per canary."""

    def __init__(self, canaries: Iterable[Canary], tell: Callable[[bytes], None] | None = None) -> None:
        self.matcher = CanaryMatcher(canaries)
        self.tell = tell
        self.told: set[str] = set()

    def trip(self, sightings: list[Sighting], host: str, where: str) -> None:
        for s in sightings:
            log.warning("canary %s sent toward %s %s: denied, the run is stopped", s.canary, host, where)
            if self.tell is not None and s.canary not in self.told:
                self.told.add(s.canary)
                line = json.dumps({"canary": s.canary, "host": host, "where": where, "encoding": s.how})
                self.tell(b"canary " + line.encode("ascii", "backslashreplace") + b"\n")

    def shown_host(self, host: str) -> str:
        """A host name as records and messages may show it: a canary in it replaced by its name."""
        return self.matcher.redact_name(host) if self.matcher.in_name(host) else host


def _note(flow: http.HTTPFlow, sightings: list[Sighting], where: str) -> None:
    notes: list[dict[str, Any]] = flow.metadata.setdefault(CANARY_KEY, [])
    for s in sightings:
        entry = next((n for n in notes if n["canary"] == s.canary), None)
        if entry is None:
            notes.append({"canary": s.canary, "where": [where], "encoding": s.how})
        elif where not in entry["where"]:
            entry["where"].append(where)


def _deny(flow: http.HTTPFlow, wire: Tripwire, sightings: list[Sighting], where: str) -> None:
    """Refuse the request (a recorded 403, nothing sent), name the canaries, and stop the run."""
    _note(flow, sightings, where)
    names = ", ".join(s.canary for s in sightings)
    host = wire.shown_host(_host(flow))
    detail = (
        f"netjail: canary {names} was sent toward {host} {describe_where(where)}: a decoy credential "
        f"({RULE}); the request was refused and the run is stopped"
    )
    flow.metadata[METADATA_KEY] = flow.metadata.get(METADATA_KEY, {}) | {
        "verdict": "deny",
        "reason": "canary_tripped",
        "rule": RULE,
        "detail": detail,
    }
    flow.request.stream = False
    # the command is told nothing of canaries: the record and the user are (a decoy that announces itself is none)
    flow.response = http.Response.make(
        403,
        b"netjail refused this request\n",
        {"Content-Type": "text/plain; charset=utf-8", "Connection": "close"},
    )
    wire.trip(sightings, host, where)


def _host(flow: http.HTTPFlow) -> str:
    return str((flow.metadata.get(METADATA_KEY) or {}).get("judged_host") or flow.request.host)


def _failed(flow: http.HTTPFlow, error: Exception) -> None:
    """Fail closed: the request is refused. The log names the error's type only."""
    log.error("the canary check failed (%s); the request was refused", type(error).__name__)
    flow.metadata[METADATA_KEY] = flow.metadata.get(METADATA_KEY, {}) | {
        "verdict": "deny",
        "reason": "policy_error",
        "rule": RULE,
        "detail": "netjail: the canary check failed; the request was refused",
    }
    flow.request.stream = False
    flow.response = http.Response.make(502, b"netjail: a check failed; the request was not sent\n")


class CanaryGuard:
    """Request heads, CONNECT targets and the server names dialed: added before ask mode and the policy (which
    leave a request that has its answer alone)."""

    def __init__(self, wire: Tripwire) -> None:
        self.wire = wire

    def http_connect(self, flow: http.HTTPFlow) -> None:
        if not self.wire.matcher or flow.error:
            return
        try:
            texts = [flow.request.host, flow.request.host_header or ""]
            if found := [s for t in texts if t for s in self.wire.matcher.in_name(t)]:
                _deny(flow, self.wire, _unique(found), "connect")
        except Exception as e:
            _failed(flow, e)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if not self.wire.matcher or flow.error or flow.request.method == "CONNECT":
            return
        try:
            self._check_head(flow)
        except Exception as e:
            _failed(flow, e)

    def _check_head(self, flow: http.HTTPFlow) -> None:
        matcher, request = self.wire.matcher, flow.request
        for where, name in (
            ("host", request.host),
            ("host", request.host_header),
            ("sni", flow.client_conn.sni),
        ):
            if name and (found := matcher.in_name(name)):
                _deny(flow, self.wire, found, where)
                return
        for name, value in request.headers.items(multi=True):
            if found := matcher.in_text(value):  # Basic auth: base64 is one of the forms, at every alignment
                _deny(flow, self.wire, found, f"header {name.lower()}")
                return
        path, _, query = request.path.partition("?")
        for where, text in (("path", path), ("query", query)):
            if text and (found := matcher.in_text(text)):
                _deny(flow, self.wire, found, where)
                return

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        """A message the command sends on an open WebSocket (no request hook sees it): a canary in it (raw, in any
        form, or in its JSON) drops it, empty, and closes the WebSocket."""
        if not self.wire.matcher or flow.websocket is None or not flow.websocket.messages:
            return
        message = flow.websocket.messages[-1]
        if message.dropped or not message.from_client:
            return
        try:
            content = message.content
            found = self.wire.matcher.in_bytes(content)
            if not found and message.is_text and content.lstrip()[:1] in (b"{", b"["):
                found = self.wire.matcher.in_json(content)
        except Exception as e:
            log.error("the canary check of a WebSocket message failed (%s); it was dropped", type(e).__name__)
            found = None
        if found == []:
            return
        if found:
            _note(flow, found, "websocket message")
            host = self.wire.shown_host(_host(flow))
            flow.metadata[METADATA_KEY] = flow.metadata.get(METADATA_KEY, {}) | {
                "verdict": "deny",
                "reason": "canary_tripped",
                "rule": RULE,
                "detail": f"netjail: canary {', '.join(s.canary for s in found)} was in a WebSocket message toward "
                f"{host}: the message was dropped, the WebSocket closed and the run is stopped ({RULE})",
            }
            self.wire.trip(found, host, "websocket message")
        message.content = b""  # nothing of it leaves, nor is kept
        message.drop()
        flow.kill()

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        """The name that leaves when netjail dials: the TLS server name (the host itself was judged before)."""
        if not self.wire.matcher or data.server.error:
            return
        try:
            sni = data.server.sni
            if sni and (found := self.wire.matcher.in_name(sni)):
                data.server.error = "netjail: refused"  # the command is told nothing of canaries
                self.wire.trip(found, self.wire.shown_host(sni), "sni")
        except Exception as e:
            log.error("the canary check failed (%s); the connection was refused", type(e).__name__)
            data.server.error = "netjail: a check failed"


def _unique(sightings: list[Sighting]) -> list[Sighting]:
    return list({s.canary: s for s in reversed(sightings)}.values())[::-1]


def _as_bytes(out: Any) -> bytes:
    if out is None:
        return b""
    return out if isinstance(out, bytes) else b"".join(out)


class CanaryBodyWatch:
    """Request bodies, as they go upstream: added after the credential injector (and before the upload caps). A
    body with a Content-Length up to MAX_SCANNED_BODY that is compressed (gzip, deflate, br, zstd) or JSON, or one
    another addon buffers anyway, is scanned whole before anything is sent (a recorded 403); any other body is
    watched as it streams and cut before a canary's bytes leave."""

    def __init__(self, wire: Tripwire) -> None:
        self.wire = wire
        self.inner: dict[
            str, Any
        ] = {}  # flow id -> the stream this addon buffered (fed by hand at `request`)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if not self.wire.matcher or flow.response or flow.error or flow.request.method == "CONNECT":
            return
        try:
            self._plan(flow)
        except Exception as e:
            _failed(flow, e)

    def _plan(self, flow: http.HTTPFlow) -> None:
        request = flow.request
        stream = request.stream
        if not callable(stream):
            self.inner[flow.id] = None  # buffered by an addon before this one: scanned whole at `request`
            return
        coding = request.headers.get("content-encoding", "").strip().lower()
        coded = bool(coding) and coding != "identity"
        json_body = "json" in request.headers.get("content-type", "").lower()
        length = request.headers.get("content-length", "")
        if (coded or json_body) and length.isdigit() and int(length) <= MAX_SCANNED_BODY:
            self.inner[flow.id] = stream
            request.stream = False
            flow.metadata[BUFFERED_KEY] = True  # the upload caps count it whole at `request`
            return
        forms = {form: (s.name, how) for s in self.wire.matcher.secrets.secrets for how, form in s.forms}
        watch = StreamSwap([(form, form) for form in forms])
        cut = False

        def watched(chunk: bytes) -> list[bytes]:
            nonlocal cut
            if cut:
                return []
            passed = _as_bytes(stream(chunk))
            out = watch(passed) if passed else b""
            if not chunk:
                out += watch(b"")
            if watch.counts:
                cut = True
                seen = [Sighting(forms[f][0].removeprefix(NAME_PREFIX), forms[f][1]) for f in watch.counts]
                self._cut(flow, _unique(seen))
                return []
            return [out] if out else []

        request.stream = watched

    def _cut(self, flow: http.HTTPFlow, seen: list[Sighting]) -> None:
        """A canary in a streamed body: the upstream connection is closed before its bytes (held back), the host
        never sees the request end."""
        from netjail.addons.uploads import close_upstream

        _note(flow, seen, "body")
        names = ", ".join(s.canary for s in seen)
        host = self.wire.shown_host(_host(flow))
        flow.metadata[METADATA_KEY] = flow.metadata.get(METADATA_KEY, {}) | {
            "verdict": "deny",
            "reason": "canary_tripped",
            "rule": RULE,
            "detail": f"netjail: canary {names} was in a body sent toward {host}: the stream was cut before it "
            f"and the run is stopped ({RULE})",
        }
        self.wire.trip(seen, host, "body")
        close_upstream(flow)
        flow.kill()

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.id not in self.inner:
            return
        inner = self.inner.pop(flow.id)
        if flow.response or flow.error:
            return
        try:
            request = flow.request
            raw = request.raw_content or b""
            if (
                inner is not None
            ):  # the recorder's tap and the injector's swap see the body as they would stream
                out = _as_bytes(inner(raw)) + _as_bytes(inner(b""))
                if out != raw:
                    request.raw_content = out
                raw = out
            content = raw
            coding = request.headers.get("content-encoding", "").strip().lower()
            if coding and coding != "identity" and coding in DECODABLE:
                try:
                    decoded = encoding.decode(raw, coding)
                    content = decoded if isinstance(decoded, bytes) else raw
                except ValueError:
                    content = raw  # scanned as it is: it leaves as it is
            found = self.wire.matcher.in_bytes(content) + self.wire.matcher.in_bytes(raw)
            if not found and (
                content[:1] in (b"{", b"[") or "json" in request.headers.get("content-type", "")
            ):
                found += self.wire.matcher.in_json(content)
            if found:
                _deny(flow, self.wire, _unique(found), "body")
        except Exception as e:
            _failed(flow, e)

    def error(self, flow: http.HTTPFlow) -> None:
        self.inner.pop(flow.id, None)

    def response(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        """A refusal for a canary is recorded (the recorder came before) and then held back HOLD_SECONDS: the
        supervisor stops the sandbox meanwhile, so the command never acts on the answer. (mitmproxy awaits only
        that: every other response goes on at once.)"""
        self.inner.pop(flow.id, None)
        meta = flow.metadata.get(METADATA_KEY) or {}
        if self.wire.tell is not None and meta.get("reason") == "canary_tripped":
            return asyncio.sleep(HOLD_SECONDS)
        return None


class CanaryDns(asyncio.DatagramProtocol):
    """Wraps the jail resolver's protocol (netjail/proxy/jail_resolver.py): a name that carries a canary gets
    NXDOMAIN and a `dns` record of its own (reason `canary_tripped`, the canary's labels replaced by its name);
    every other datagram goes to the resolver as before."""

    def __init__(
        self, inner: asyncio.DatagramProtocol, wire: Tripwire, record: Callable[[DnsRecord], None]
    ) -> None:
        self.inner = inner
        self.wire = wire
        self.record = record
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.inner.connection_made(self.transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            query = dns.DNSMessage.unpack(data)
        except Exception:
            query = None
        try:
            found: list[Sighting] = []
            if query is not None and query.query:
                found = _unique([s for q in query.questions for s in self.wire.matcher.in_name(q.name)])
            if not found or query is None:
                self.inner.datagram_received(data, addr)
                return
            name = self.wire.matcher.redact_name(query.questions[0].name)
            self.record(_dns_record(name, query, found))
            self.wire.trip(found, name, "dns")
            refusal = query.fail(NXDOMAIN).packed
            if self.wire.tell is None:
                self._answer(refusal, addr)
            else:  # held, as a refused request is (HOLD_SECONDS)
                asyncio.get_running_loop().call_later(HOLD_SECONDS, self._answer, refusal, addr)
        except Exception as e:  # fail closed: nothing resolves
            log.error("the canary check of a DNS query failed (%s)", type(e).__name__)
            if query is not None:
                self._answer(query.fail(REFUSED).packed, addr)

    def _answer(self, packed: bytes, addr: Any) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(packed, addr)


def _dns_record(name: str, query: dns.DNSMessage, found: list[Sighting]) -> DnsRecord:
    return {
        "event": "dns",
        "id": str(uuid.uuid4()),
        "ts": utc_timestamp(),
        "name": name,
        "type": dns.types.to_str(query.questions[0].type),
        "verdict": "deny",
        "rule": RULE,
        "reason": "canary_tripped",
        "answer": "NXDOMAIN",
        "canaries": [{"canary": s.canary, "where": ["dns"], "encoding": s.how} for s in found],
    }
