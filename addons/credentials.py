"""netjail's credential addons: the proxy half of srt's `credentials` in `mode: "mask"`.
(Over 500 lines: two hook objects sharing one per-flow state and its refusals; what can be pure already is —
the swap and the placeholders in netjail/policy/credentials.py, SigV4 signing in netjail/policy/sigv4.py.)

The command holds placeholders (netjail/jail/credentials.py); on a request to one of a credential's inject hosts —
over a TLS connection netjail terminated, or plain HTTP only with `allowPlaintextInject` — the placeholder is
replaced by the real value in the request headers (Basic auth decoded), the path and query, and the body (streamed;
gzip, deflate, br and zstd bodies are decoded, swapped and re-encoded; any other encoding is refused with a 415). A
placeholder on its way anywhere else is left as it is — it is worth nothing there — and flagged in the record. A real
value in a response from an inject host is replaced by the placeholder before the command or any record sees it.

Two objects, because of mitmproxy's hook order (the order addons were added): `CredentialInjector` comes after the
recorder, so it wraps the recorder's body taps (the tap sees the placeholder form, upstream gets the real one);
`CredentialRestorer` comes before the recorder, so the request is back in its placeholder form when it is recorded.
Records name the credential, where it was put and how often (`credentials` in flows.jsonl, flows.mitm's metadata);
never a value. Every hook fails closed: an error refuses the request rather than sending it half-swapped.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mitmproxy import http
from mitmproxy.net import encoding

from netjail.net.domains import normalize_host
from netjail.policy.credentials import Credential, StreamSwap, replace_all
from netjail.records.redaction import CREDENTIALS_KEY
from netjail.records.schema import BUFFERED_KEY, METADATA_KEY

log = logging.getLogger("netjail.credentials")
MAX_SCANNED_BODY = (
    16 * 1024 * 1024
)  # a body that must be buffered to be swapped (compressed, or a new length)
DECODABLE = ("gzip", "deflate", "br", "zstd")
# headers by which a body proves its own integrity: a placeholder swapped inside it would make the host refuse it
DIGEST_HEADERS = frozenset({"content-md5", "digest", "content-digest", "repr-digest", "x-amz-trailer"})
_UNSAFE_IN_HEADER = re.compile(r"[\r\n\0]")


@dataclass
class FlowState:
    injectable: list[Credential]
    others: list[Credential]
    headers: http.Headers | None = None  # the request's own headers and path, put back before it is recorded
    path: str | None = None
    raw_body: bytes | None = None
    buffered_request: bool = False
    buffered_response: bool = False
    tap_request: Callable[[bytes], Any] | None = None
    tap_response: Callable[[bytes], Any] | None = None
    out: StreamSwap | None = None
    keep_body: StreamSwap | None = None  # watches a body whose own digest a swap would break
    watch: StreamSwap | None = None
    back: StreamSwap | None = None
    injected: dict[str, dict[str, Any]] = field(default_factory=dict)
    elsewhere: dict[str, list[str]] = field(default_factory=dict)
    sigv4: tuple[Any, tuple[Credential, Credential, Credential | None]] | None = None
    resigned: bool = False

    def count(self, credential: Credential, where: str, times: int) -> None:
        entry = self.injected.setdefault(credential.name, {"where": [], "count": 0})
        if where not in entry["where"]:
            entry["where"].append(where)
        entry["count"] += times

    def seen_elsewhere(self, credential: Credential, where: str) -> None:
        places = self.elsewhere.setdefault(credential.name, [])
        if where not in places:
            places.append(where)


def _refuse(flow: http.HTTPFlow, status: int, why: str) -> None:
    # The recorder's body tap streams the request: with it, mitmproxy would wait on a body it never sends and the
    # client on an answer (it hung boto3's PUT). Unstreamed, the body is read and dropped, the answer goes out.
    flow.request.stream = False
    flow.metadata[METADATA_KEY] = flow.metadata.get(METADATA_KEY, {}) | {"detail": f"netjail: {why}"}
    flow.response = http.Response.make(
        status,
        f"netjail refused this request: {why}\n".encode(),
        {
            "Content-Type": "text/plain; charset=utf-8",
            "X-Netjail-Denied": "credentials",
            "Connection": "close",
        },
    )


def body_form(credential: Credential, content_type: str) -> bytes:
    """The real value as it must appear in a body of this type (JSON-escaped, form-encoded, or as it is)."""
    if "json" in content_type:
        return json.dumps(credential.real)[1:-1].encode("utf-8", "surrogateescape")
    if "x-www-form-urlencoded" in content_type:
        return urllib.parse.quote_plus(credential.real).encode()
    return credential.real.encode("utf-8", "surrogateescape")


def _url_forms(placeholder: str) -> list[str]:
    return list(dict.fromkeys([placeholder, urllib.parse.quote(placeholder, safe="")]))


class CredentialInjector:
    """Placeholder -> real value on requests to inject hosts; wraps the recorder's taps (added after it)."""

    def __init__(
        self,
        credentials: list[Credential],
        allow_plaintext: bool = False,
        aws_pairs: list[dict[str, str | None]] | None = None,
        sigv4: dict[str, str] | None = None,
    ) -> None:
        self.credentials = credentials
        self.allow_plaintext = allow_plaintext
        self.flows: dict[str, FlowState] = {}
        by_name = {c.name: c for c in credentials}
        # placeholder access key id -> (key id, secret, session token) credentials
        self.pairs: dict[str, tuple[Credential, Credential, Credential | None]] = {}
        for pair in aws_pairs or []:
            key, secret = by_name[str(pair["access_key_id"])], by_name[str(pair["secret"])]
            token = by_name[str(pair["token"])] if pair.get("token") else None
            self.pairs[key.placeholder] = (key, secret, token)
        self.sigv4 = sigv4 or {}

    def state_for(self, flow: http.HTTPFlow) -> FlowState | None:
        meta = flow.metadata.get(METADATA_KEY) or {}
        judged = meta.get("judged_host")
        injectable: list[Credential] = []
        if judged and meta.get("verdict") == "allow":
            secure = flow.request.scheme == "https" and flow.client_conn.tls_established
            if secure or self.allow_plaintext:
                host = normalize_host(judged)
                injectable = [c for c in self.credentials if c.injectable_at(host)]
        others = [c for c in self.credentials if c not in injectable]
        return FlowState(injectable, others)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if not self.credentials or flow.response or flow.error or flow.request.method == "CONNECT":
            return
        try:
            self._requestheaders(flow)
        except Exception as e:
            self._fail(flow, e)

    def _fail(self, flow: http.HTTPFlow, error: Exception) -> None:
        """Refuse the request, back in its placeholder form. The log names the error's type only: its message or
        traceback could quote a value."""
        log.error("credential injection failed (%s); the request was refused", type(error).__name__)
        state = self.flows.pop(flow.id, None)
        if state is not None and state.headers is not None and state.path is not None:
            flow.request.headers, flow.request.path = state.headers, state.path
            if state.raw_body is not None:
                flow.request.raw_content = state.raw_body
        _refuse(flow, 502, "credential injection failed; the request was not sent")

    def _requestheaders(self, flow: http.HTTPFlow) -> None:
        state = self.state_for(flow)
        assert state is not None
        request = flow.request
        state.headers, state.path = request.headers.copy(), request.path
        self.flows[flow.id] = state
        if (pinned := self._unpinned_header(state, request)) is not None:
            header, names = pinned
            self.flows.pop(flow.id, None)
            flow.metadata[METADATA_KEY] = flow.metadata.get(METADATA_KEY, {}) | {
                "verdict": "deny",
                "reason": "credential_pinned",
                "rule": "credentials.pinHeaders",
            }
            _refuse(
                flow,
                403,
                f"the {header} header carries a value that is not this run's placeholder for {names}, toward a host "
                "that credential is injected at: the command cannot bring its own key there (pinHeaders: [] allows it)",
            )
            return
        if self.pairs and not self._plan_sigv4(flow, state):
            return
        self._swap_headers(state, request)
        self._swap_url(state, request)
        if misdirected := self._misdirected(flow, state):
            self.flows.pop(flow.id, None)
            request.headers, request.path = state.headers, state.path  # recorded as the command sent it
            flow.metadata[METADATA_KEY] = flow.metadata.get(METADATA_KEY, {}) | {
                "verdict": "deny",
                "reason": "credential_misdirected",
                "rule": "credentials.injectHosts",
            }
            flow.metadata[CREDENTIALS_KEY] = {
                "placeholder_left": [{"credential": n, "where": w} for n, w in misdirected.items()]
            }
            _refuse(
                flow,
                403,
                f"the placeholder of {', '.join(misdirected)} was sent toward a host it is not injected at: a "
                "credential only goes to its inject hosts (credentials.injectHosts)",
            )
            return
        self._plan_request_body(flow, state)
        if state.buffered_request and flow.response is None:
            flow.metadata[BUFFERED_KEY] = (
                True  # the upload caps count it whole at `request`, never re-stream it
            )
        if state.sigv4 is not None and not state.sigv4[0].needs_body and flow.response is None:
            self._resign(flow, state, None)
        self.note(flow, state)

    def _misdirected(self, flow: http.HTTPFlow, state: FlowState) -> dict[str, list[str]]:
        """The credentials whose placeholder the request's headers or URL carry toward a host that is not one of
        their inject hosts (an attempt to move the credential): the request is refused. A placeholder toward an
        inject host over plain HTTP without allowPlaintextInject only stays a placeholder."""
        judged = (flow.metadata.get(METADATA_KEY) or {}).get("judged_host") or flow.request.host
        host = normalize_host(judged)
        by_name = {c.name: c for c in state.others}
        return {
            name: places
            for name, places in state.elsewhere.items()
            if name in by_name and not by_name[name].injectable_at(host)
        }

    @staticmethod
    def _unpinned_header(state: FlowState, request: http.Request) -> tuple[str, str] | None:
        """A pinned header (settings pinHeaders) whose value holds none of the placeholders of the credentials that
        pin it at this host, and those credentials' names; None when every pinned header is the run's."""
        for header in {h for c in state.injectable for h in c.pin_headers}:
            pinning = [c for c in state.injectable if header in c.pin_headers]
            for value in request.headers.get_all(header):
                texts = [value]
                scheme, _, token = value.partition(" ")
                if scheme.lower() == "basic" and token:
                    try:
                        texts.append(
                            base64.b64decode(token, validate=True).decode("utf-8", "surrogateescape")
                        )
                    except (binascii.Error, ValueError):
                        pass
                if not any(c.placeholder in text for c in pinning for text in texts):
                    return header, ", ".join(c.name for c in pinning)
        return None

    # -- AWS Signature V4 ------------------------------------------------------------------------------------

    def _plan_sigv4(self, flow: http.HTTPFlow, state: FlowState) -> bool:
        """Find a signature by a masked AWS pair; False when the request was refused (settings credentials.sigv4)."""
        from netjail.policy.sigv4 import classify

        request = flow.request
        signed = classify(
            request.headers.get("authorization"),
            list(request.query.items(multi=True)),
            request.headers.get("x-amz-content-sha256"),
        )
        if signed is None or signed.access_key_id not in self.pairs:
            return True
        pair = self.pairs[signed.access_key_id]
        if pair[0] not in state.injectable:
            return True  # not this pair's host (or not over terminated TLS): the placeholder signature fails there
        if signed.shape != "header":
            if self.sigv4.get(signed.shape, "deny") == "deny":
                what = {
                    "streaming": "a signed aws-chunked upload (each chunk's signature chains off the first)",
                    "presigned": "a presigned URL signed with the placeholder keys",
                    "sigv4a": "a SigV4A (ECDSA) signature",
                }[signed.shape]
                _refuse(
                    flow,
                    403,
                    f"{what} cannot be re-signed with the real keys (credentials.sigv4.{signed.shape})",
                )
                self.flows.pop(flow.id, None)
                return False
            return True  # passthrough: forwarded as signed, with the usual substitution
        state.sigv4 = (signed, pair)
        if signed.needs_body:
            state.buffered_request = True  # the signature covers the body's hash: re-signed once it is whole
        return True

    def _resign(self, flow: http.HTTPFlow, state: FlowState, body: bytes | None) -> None:
        import hashlib

        from netjail.policy.sigv4 import payload_is_literal_hash, resign

        assert state.sigv4 is not None
        signed, (key, secret, token) = state.sigv4
        request = flow.request
        if body is not None and payload_is_literal_hash(request.headers.get("x-amz-content-sha256")):
            request.headers["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
        url = f"{request.scheme}://{request.host_header or request.host}{request.path}"
        new = resign(
            signed,
            request.method,
            url,
            list(request.headers.items(multi=True)),
            body,
            key.real,
            secret.real,
            token.real if token else None,
        )
        for name, value in new.items():
            request.headers[name] = value
        state.resigned = True

    def _swap_headers(self, state: FlowState, request: http.Request) -> None:
        for name in list(request.headers.keys()):
            values = request.headers.get_all(name)
            new = [self._swap_header(state, name.lower(), v) for v in values]
            if new != values:
                request.headers.set_all(name, new)

    def _swap_header(self, state: FlowState, name: str, value: str) -> str:
        where = f"header {name}"
        for c in state.others:
            if c.placeholder in value:
                state.seen_elsewhere(c, where)
        # a value with a line break or NUL would split the header (injection toward the host): never put in one
        pairs = [(c.placeholder, c.real) for c in state.injectable if not _UNSAFE_IN_HEADER.search(c.real)]
        swapped, counts = replace_all(value, pairs)
        self._count(state, counts, where)
        scheme, _, token = swapped.partition(" ")
        if name in ("authorization", "proxy-authorization") and scheme.lower() == "basic" and token:
            try:
                decoded = base64.b64decode(token, validate=True).decode("utf-8", "surrogateescape")
            except (binascii.Error, ValueError):
                return swapped
            for c in state.others:
                if c.placeholder in decoded:
                    state.seen_elsewhere(c, f"{where} (basic)")
            inner, counts = replace_all(decoded, pairs)
            if counts:
                self._count(state, counts, f"{where} (basic)")
                swapped = f"{scheme} {base64.b64encode(inner.encode('utf-8', 'surrogateescape')).decode()}"
        return swapped

    def _count(self, state: FlowState, counts: dict[str, int], where: str) -> None:
        for placeholder, times in counts.items():
            for c in state.injectable:
                if placeholder in (c.placeholder, urllib.parse.quote(c.placeholder, safe="")):
                    state.count(c, where, times)

    def _swap_url(self, state: FlowState, request: http.Request) -> None:
        path = request.path
        for c in state.others:
            if any(form in path for form in _url_forms(c.placeholder)):
                state.seen_elsewhere(c, "url")
        pairs = [
            (form, urllib.parse.quote(c.real, safe=""))
            for c in state.injectable
            for form in _url_forms(c.placeholder)
        ]
        swapped, counts = replace_all(path, pairs)
        if counts:
            self._count(state, counts, "query" if "?" in path else "path")
            request.path = swapped

    def _plan_request_body(self, flow: http.HTTPFlow, state: FlowState) -> None:
        request = flow.request
        tap = request.stream if callable(request.stream) else None
        state.tap_request = tap
        if not state.injectable:
            if state.others:  # placeholders must not leave toward a host they are not for
                self._plan_watched_body(flow, state, tap)
            return
        content_type = request.headers.get("content-type", "").lower()
        codings = [c.strip() for c in request.headers.get("content-encoding", "").lower().split(",")]
        codings = [c for c in codings if c and c != "identity"]
        framed = "aws-chunked" in codings  # S3's chunk framing: plain bytes, with chunk sizes and trailers
        codings = [c for c in codings if c != "aws-chunked"]
        if len(codings) > 1 or (codings and codings[0] not in DECODABLE):
            what = ", ".join(codings)
            _refuse(flow, 415, f"a body encoded as {what!r} cannot be scanned for credential placeholders")
            return
        pairs = [(c.placeholder.encode(), body_form(c, content_type)) for c in state.injectable]
        same_length = all(len(a) == len(b) for a, b in pairs)
        if framed or any(
            n.lower() in DIGEST_HEADERS or n.lower().startswith("x-amz-checksum-") for n in request.headers
        ):
            # the body carries its own digest (or framing) that a swap would break: its placeholders stay, noted
            state.keep_body = StreamSwap(
                [(c.placeholder.encode(), c.placeholder.encode()) for c in state.injectable]
            )
            if state.buffered_request:
                request.stream = False
            else:
                request.stream = self._chain(tap, state.keep_body)
            return
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_SCANNED_BODY and not same_length:
            _refuse(
                flow,
                413,
                f"a body over {MAX_SCANNED_BODY} bytes cannot be scanned for credential placeholders",
            )
            return
        if state.buffered_request or codings or (length is not None and not same_length):
            state.buffered_request = True  # swapped whole at `request`, where its tap is fed by hand
            request.stream = False
            return
        state.out = StreamSwap(pairs)
        request.stream = self._chain(tap, state.out)

    def _plan_watched_body(
        self, flow: http.HTTPFlow, state: FlowState, tap: Callable[[bytes], Any] | None
    ) -> None:
        """A body toward a host where no credential is injected. With a Content-Length up to MAX_SCANNED_BODY it
        is buffered and scanned before anything is sent (a placeholder inside: a recorded 403, nothing reaches the
        host); a chunked or larger body streams, and a placeholder found in it cuts the stream: the upstream
        connection is closed before the placeholder's bytes (held back by StreamSwap), the host never sees the
        request end."""
        request = flow.request
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) <= MAX_SCANNED_BODY:
            state.buffered_request = True  # scanned at `request`, where its tap is fed by hand
            request.stream = False
            return
        watch = StreamSwap([(c.placeholder.encode(), c.placeholder.encode()) for c in state.others])
        state.watch = watch
        cut = False

        def stream(chunk: bytes) -> list[bytes]:
            nonlocal cut
            if cut:
                return []
            if tap is not None:
                tap(chunk)
            out = watch(chunk)
            if watch.counts:
                cut = True
                self._misdirect_body(
                    flow, state, [c for c in state.others if watch.counts.get(c.placeholder.encode())]
                )
                from netjail.addons.uploads import close_upstream

                close_upstream(flow)  # mitmproxy would still end the message upstream: the origin sees no end
                flow.kill()
                return []
            return [out] if out else []

        request.stream = stream

    @staticmethod
    def _misdirect_body(flow: http.HTTPFlow, state: FlowState, found: list[Credential]) -> None:
        for c in found:
            state.seen_elsewhere(c, "body")
        flow.metadata[METADATA_KEY] = flow.metadata.get(METADATA_KEY, {}) | {
            "verdict": "deny",
            "reason": "credential_misdirected",
            "rule": "credentials.injectHosts",
            "detail": f"netjail: the placeholder of {', '.join(c.name for c in found)} was in a body sent toward a "
            "host it is not injected at: a credential only goes to its inject hosts (credentials.injectHosts)",
        }

    def _scan_watched_body(self, flow: http.HTTPFlow, state: FlowState, raw: bytes) -> None:
        """A buffered body toward a non-inject host, decoded when it is compressed: a placeholder refuses it."""
        coding = flow.request.headers.get("content-encoding", "").strip().lower()
        content = raw
        if coding and coding != "identity":
            try:
                decoded = encoding.decode(raw, coding)
                content = decoded if isinstance(decoded, bytes) else raw
            except ValueError:
                content = raw
        found = [c for c in state.others if any(f.encode() in content for f in _url_forms(c.placeholder))]
        found += [
            c for c in state.others if c not in found and json.dumps(c.placeholder)[1:-1].encode() in content
        ]
        if not found:
            return
        self._misdirect_body(flow, state, found)
        _refuse(
            flow,
            403,
            f"the placeholder of {', '.join(c.name for c in found)} was in a body sent toward a host it is not "
            "injected at: a credential only goes to its inject hosts (credentials.injectHosts)",
        )

    @staticmethod
    def _chain(tap: Callable[[bytes], Any] | None, swap: StreamSwap) -> Callable[[bytes], list[bytes]]:
        def stream(chunk: bytes) -> list[bytes]:
            if tap is not None:
                tap(chunk)  # the recorder counts and keeps the placeholder form
            out = swap(chunk)
            return [out] if out else []  # an empty chunk would end a chunked body (mitmproxy sends it as one)

        return stream

    def request(self, flow: http.HTTPFlow) -> None:
        state = self.flows.get(flow.id)
        if state is None or not state.buffered_request or flow.response:
            return
        try:
            self._swap_buffered_request(flow, state)
        except Exception as e:
            self._fail(flow, e)

    def _swap_buffered_request(self, flow: http.HTTPFlow, state: FlowState) -> None:
        request = flow.request
        raw = request.raw_content or b""
        state.raw_body = raw
        if state.tap_request is not None:
            state.tap_request(raw)
        if len(raw) > MAX_SCANNED_BODY:
            _refuse(
                flow,
                413,
                f"a body over {MAX_SCANNED_BODY} bytes cannot be scanned for credential placeholders",
            )
            return
        if not state.injectable:
            self._scan_watched_body(flow, state, raw)
        elif state.keep_body is not None:
            state.keep_body(raw)
            state.keep_body(b"")
        else:
            self._swap_buffered_body(flow, state, raw)
        if flow.response is None and state.sigv4 is not None:
            self._resign(flow, state, request.raw_content or b"")
        self.note(flow, state)

    def _swap_buffered_body(self, flow: http.HTTPFlow, state: FlowState, raw: bytes) -> None:
        request = flow.request
        coding = request.headers.get("content-encoding", "").strip().lower()
        coding = "" if coding == "identity" else coding
        try:
            content = encoding.decode(raw, coding) if coding else raw
        except ValueError:
            _refuse(
                flow, 400, f"the body does not decode as {coding}, so it cannot be scanned for placeholders"
            )
            return
        assert isinstance(content, bytes)
        content_type = request.headers.get("content-type", "").lower()
        swap = StreamSwap([(c.placeholder.encode(), body_form(c, content_type)) for c in state.injectable])
        swapped = swap(content) + swap(b"")
        self._count_body(state, swap)
        if swap.counts:
            request.set_content(swapped)  # re-encoded as declared; Content-Length follows

    @staticmethod
    def note(flow: http.HTTPFlow, state: FlowState) -> None:
        if notes := _notes(state):
            flow.metadata[CREDENTIALS_KEY] = notes

    def _count_body(self, state: FlowState, swap: StreamSwap) -> None:
        for c in state.injectable:
            times = swap.counts.get(c.placeholder.encode(), 0)
            if times:
                state.count(c, "body", times)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        state = self.flows.get(flow.id)
        if state is None or not state.injectable or flow.response is None:
            return
        response = flow.response
        if response.raw_content is not None:
            return  # made here, not streamed
        tap = response.stream if callable(response.stream) else None
        state.tap_response = tap
        pairs = [
            (c.real.encode("utf-8", "surrogateescape"), c.placeholder.encode()) for c in state.injectable
        ]
        coding = response.headers.get("content-encoding", "").strip().lower()
        same_length = all(len(a) == len(b) for a, b in pairs)
        if (coding and coding != "identity") or ("content-length" in response.headers and not same_length):
            state.buffered_response = True  # swapped back whole by the restorer, before the recorder
            response.stream = False
            return
        state.back = StreamSwap(pairs)
        back = state.back

        def stream(chunk: bytes) -> list[bytes]:
            out = back(chunk)  # the command and the recorder's tap both get the placeholder form
            if tap is not None:
                tap(out)
            return [out] if out else []

        response.stream = stream


class CredentialRestorer:
    """Puts the request back in its placeholder form before the recorder sees it, and swaps real values back in
    buffered responses (added before the recorder)."""

    def __init__(self, injector: CredentialInjector) -> None:
        self.injector = injector

    def response(self, flow: http.HTTPFlow) -> None:
        self._finish(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._finish(flow)

    def _finish(self, flow: http.HTTPFlow) -> None:
        state = self.injector.flows.pop(flow.id, None)
        if state is None:
            return
        try:
            if state.out is not None:
                self.injector._count_body(state, state.out)
            if state.watch is not None:
                for c in state.others:
                    if state.watch.counts.get(c.placeholder.encode()):
                        state.seen_elsewhere(c, "body")
            if state.keep_body is not None:
                for c in state.injectable:
                    if state.keep_body.counts.get(c.placeholder.encode()):
                        state.seen_elsewhere(c, "body (it carries its own digest: not swapped)")
            if state.headers is not None:
                flow.request.headers = state.headers
            if state.path is not None:
                flow.request.path = state.path
            if state.raw_body is not None:
                flow.request.raw_content = state.raw_body
            if flow.response is not None and state.buffered_response:
                self._swap_back_buffered(flow.response, state)
        except Exception as e:
            log.error("restoring a request's placeholders failed (%s)", type(e).__name__)
            if flow.response is not None:  # fail closed: the command gets no body that may hold a real value
                flow.response = http.Response.make(502, b"netjail: credential scrub failed\n")
        self.injector.note(flow, state)

    @staticmethod
    def _swap_back_buffered(response: http.Response, state: FlowState) -> None:
        raw = response.raw_content or b""
        coding = response.headers.get("content-encoding", "").strip().lower()
        content = response.get_content(strict=False) or b""
        swap = StreamSwap(
            [(c.real.encode("utf-8", "surrogateescape"), c.placeholder.encode()) for c in state.injectable]
        )
        swapped = swap(content) + swap(b"")
        if swap.counts:
            if coding and coding != "identity" and content is raw:  # could not decode: nothing of it may pass
                response.set_content(b"netjail: a response that may echo a credential could not be decoded\n")
            else:
                response.set_content(swapped)
        if state.tap_response is not None:
            state.tap_response(response.raw_content or b"")


def _notes(state: FlowState) -> dict[str, Any]:
    notes: dict[str, Any] = {}
    if state.injected:
        notes["injected"] = [{"credential": name} | v for name, v in state.injected.items()]
    if state.elsewhere:
        notes["placeholder_left"] = [{"credential": name, "where": w} for name, w in state.elsewhere.items()]
    if state.resigned:
        notes["sigv4"] = "re-signed"
    return notes
