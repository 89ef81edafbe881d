"""netjail's recorder addon: exactly one record per request attempt, allowed, denied or failed.
(Over 500 lines: the hooks, and below them the builders of each kind of record, which read the same flow
metadata; the builders can move beside the schema in netjail/records once that may import mitmproxy.)

Usable on its own:
  mitmdump -s addons/policy.py -s addons/recorder.py --set netjail_settings=s.json --set netjail_record_dir=DIR

Writes `flows.jsonl` (one JSON object per line; the schema is in docs/records.md) and `flows.mitm` (mitmproxy's
flow file, denied flows included). mitmproxy's own `save_stream_file` drops CONNECT flows and exits the
process on a write error, so netjail writes both itself. Bodies are streamed through a tap that counts and
hashes them and keeps the first `record.bodyCap` bytes for the flow file; nothing is buffered whole.
Credentials in headers are replaced by a digest in both files.

When to write: an HTTP flow at `response` or `error` (a WebSocket at its end); a CONNECT when it was refused
(`http_connect_error`) or, when no request ever completed inside the tunnel, when its client disconnects
(TLS rejected by the client, client gone, or a tunnel passed through without interception); raw TCP at its end.

Before anything of an allowed flow goes upstream, a `flow_start` record (one write) says it is under way: at
`requestheaders` (a streamed body goes out right after it), `tcp_start`, and `tls_clienthello` for a tunnel
passed through. Its final record completes it; a proxy killed meanwhile leaves the start, which readers show as
an incomplete flow. Space for the log is reserved (netjail/records/reserve.py): once the disk is full, or a
record cannot be written, new egress is refused (and recorded while the reserve lasts), flows under way are
recorded as they end or, at shutdown, as incomplete, and the proxy stops with LOG_FAILED.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any, BinaryIO, cast

from mitmproxy import ctx, exceptions, http, tcp, tls, websocket
from mitmproxy.connection import Client, Server
from mitmproxy.flow import Error, Flow
from mitmproxy.io import tnetstring
from mitmproxy.proxy import mode_specs

from netjail import detect as audit
from netjail.addons.settings_file import add_settings_option, configured_settings
from netjail.detect.mitm import annotate, redact_flow
from netjail.policy.proxy_settings import ProxySettings
from netjail.records.caps import cap_record, cap_stored_flow, mark_incomplete
from netjail.records.derived import host_port
from netjail.records.flow_file import EncodedCertificates
from netjail.records.log import RecordLog, utc_timestamp
from netjail.records.redaction import DEFAULT_REDACT, note_credentials, redact_value
from netjail.records.reserve import LogReserve
from netjail.records.schema import METADATA_KEY, DnsRecord, ErrorKind, FlowRecord, FlowStart

log = logging.getLogger("netjail.recorder")

LOG_FAILED_DETAIL = "the flow log cannot be written (disk full?): netjail stops all egress and ends the run"


class BodyTap:
    """A `stream` callable: passes chunks through unchanged, counting and hashing them, keeping a prefix, and
    feeding them to the audit detector if it has one (netjail/detect/: secrets, encoded data, entropy)."""

    def __init__(self, keep: int, scanner: audit.BodyScanner | None = None):
        self.keep = keep
        self.size = 0
        self.digest = hashlib.sha256()
        self.prefix = bytearray()
        self.scanner = scanner

    def __call__(self, chunk: bytes) -> bytes:
        self.size += len(chunk)
        self.digest.update(chunk)
        if len(self.prefix) < self.keep:
            self.prefix += chunk[: self.keep - len(self.prefix)]
        if self.scanner is not None:
            self.scanner.feed(chunk)
        return chunk

    @property
    def truncated(self) -> bool:
        return self.size > len(self.prefix)


class FlowStateWriter:
    """flows.mitm as mitmproxy's FlowWriter writes it (a tnetstring of each flow's state, in one write), from a
    state built by the recorder rather than from a flow object."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file

    def add(self, state: dict[str, Any]) -> None:
        self.file.write(tnetstring.dumps(state))


def classify_error(message: str) -> ErrorKind:
    text = message.lower()
    if "name or service not known" in text or "could not resolve" in text or "nodename nor servname" in text:
        return "dns"
    if "certificate" in text or "verify" in text:
        return "tls_verify"
    if "refused" in text or "errno 111" in text or "connect call failed" in text:
        return "refused"
    if "timed out" in text or "timeout" in text:
        return "timeout"
    if "client disconnected" in text or "connection killed" in text:
        return "client_aborted"
    return "other"


class NetjailRecorder:
    def __init__(self, settings: ProxySettings | None = None) -> None:
        self.given = settings
        self.log: RecordLog | None = None
        self.flow_file: BinaryIO | None = None
        self.writer: FlowStateWriter | None = None
        self.certificates = EncodedCertificates()
        self.body_cap = 1_048_576
        self.redact: frozenset[str] = frozenset(DEFAULT_REDACT)
        self.secrets = audit.Secrets()  # settings audit.secretEnv / audit.secretFiles, held in memory only
        self.recorded: set[str] = set()
        self.open: dict[str, Flow] = {}  # started, not yet recorded: recorded as incomplete at `done`
        self.taps: dict[str, dict[str, BodyTap]] = {}  # flow id -> taps of its live bodies
        # client id -> (its CONNECT flow, or a placeholder for a captured connection that carried none; inner records)
        self.tunnels: dict[str, tuple[Flow, int]] = {}
        self.failed: Exception | None = None
        self.reserve: LogReserve | None = None
        self.own_reserve = (
            False  # created here (stock mitmdump), not by netjail's supervisor: removed at done
        )

    def load(self, loader) -> None:
        loader.add_option("netjail_record_dir", str, "", "Directory for flows.jsonl and flows.mitm.")
        add_settings_option(loader)

    def configure(self, updated: set[str]) -> None:
        settings = configured_settings(self.given) if "netjail_settings" in updated else None
        if settings is not None:
            self.body_cap = settings.body_cap
            self.redact = settings.redact_headers
            self.secrets, problems = audit.Secrets.load(
                settings.secret_env, settings.secret_files, os.environ
            )
            for problem in problems:
                log.warning("%s", problem)
        if "netjail_record_dir" in updated and ctx.options.netjail_record_dir:
            self._open(Path(ctx.options.netjail_record_dir))

    def _open(self, directory: Path) -> None:
        self._close()
        try:
            self._open_reserve(directory / "flows.reserve")
            self.log = RecordLog(directory / "flows.jsonl", self.reserve)
            fd = os.open(
                directory / "flows.mitm", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
            self.flow_file = os.fdopen(fd, "ab", buffering=0)
            self.writer = FlowStateWriter(self.flow_file)
        except OSError as e:
            raise exceptions.OptionsError(f"cannot open the flow log in {directory}: {e}") from e

    def _open_reserve(self, path: Path) -> None:
        self.own_reserve = not path.exists()
        self.reserve = LogReserve.create(path) if self.own_reserve else LogReserve.open(path)

    def _close(self) -> None:
        if self.reserve:
            self.reserve.remove() if self.own_reserve else self.reserve.close()
            self.reserve = None
        if self.log:
            self.log.close()
        if self.flow_file:
            self.flow_file.close()
        self.log = self.flow_file = self.writer = None

    # -- body taps --------------------------------------------------------------------------------------------

    def _taps(self, flow: Flow) -> dict[str, BodyTap]:
        return self.taps.setdefault(flow.id, {})

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        self.open[flow.id] = flow
        if flow.response or flow.error or flow.request.method == "CONNECT":
            return  # denied (or answered) already: nothing will be streamed upstream
        if not self._started(flow):
            self._refuse(flow)
            return
        tap = BodyTap(self.body_cap, audit.BodyScanner(self.secrets))
        self._taps(flow)["request"] = tap
        flow.request.stream = tap

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        assert flow.response
        if flow.response.raw_content is not None:
            return  # made here (a denial), not streamed from upstream: its body is already whole
        tap = BodyTap(self.body_cap)
        self._taps(flow)["response"] = tap
        flow.response.stream = tap

    # -- when to record ---------------------------------------------------------------------------------------

    def response(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is not None:
            return  # recorded at websocket_end, with its messages counted
        self._record(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._record(flow)

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        self._record(flow)

    def http_connect_error(self, flow: http.HTTPFlow) -> None:
        self._record(flow)

    def http_connected(self, flow: http.HTTPFlow) -> None:
        self.tunnels[flow.client_conn.id] = (flow, 0)

    def http_connect(self, flow: http.HTTPFlow) -> None:
        if self.failed is not None and not flow.response:
            self._refuse(flow)  # nothing is dialed for a CONNECT; what it would carry could not be recorded

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        """A tunnel passed through undecrypted carries bytes no later hook sees: it is started here."""
        tunnel = self.tunnels.get(data.context.client.id)
        if not data.ignore_connection or tunnel is None:
            return
        if not self._started(tunnel[0]):
            data.ignore_connection = False  # intercepted instead: its requests are refused in requestheaders

    def tcp_start(self, flow: tcp.TCPFlow) -> None:
        self.open[flow.id] = flow
        meta = flow.metadata.get(METADATA_KEY, {})
        if flow.error or meta.get("verdict") != "allow":
            return
        if not self._started(flow):
            flow.metadata[METADATA_KEY] = meta | _log_failed_verdict()
            flow.server_conn.error = f"netjail: {LOG_FAILED_DETAIL}"  # never dialed: kill() alone relays TCP
            flow.kill()

    def tls_failed_client(self, data: tls.TlsData) -> None:
        tunnel = self.tunnels.get(data.context.client.id)
        if tunnel is None:
            return
        connect_flow = tunnel[0]
        error = data.conn.error or "TLS handshake with the client failed"
        meta = connect_flow.metadata.get(METADATA_KEY, {})
        # a CONNECT flow, or the placeholder of a captured connection (no request: the judged name, or the SNI)
        host = (
            connect_flow.request.host
            if isinstance(connect_flow, http.HTTPFlow)
            else meta.get("judged_host") or data.conn.sni or "this host"
        )
        connect_flow.metadata[METADATA_KEY] = meta | {
            "client_error": error,
            "detail": (
                f"the client rejected netjail's certificate for {host} ({error}). If the "
                f"client pins certificates, add {host!r} to network.tlsTerminate.excludeDomains"
            ),
        }

    def client_connected(self, client: Client) -> None:
        """A transparently captured connection may carry no flow at all (nothing sent, or a server-first protocol
        that was never dialed): hold a placeholder so it still gets its one record."""
        if not isinstance(client.proxy_mode, mode_specs.TransparentMode) or client.error:
            return
        policy = ctx.master.addons.get("netjailpolicy")
        verdict = policy.connection_verdict(client) if policy is not None else None
        placeholder = tcp.TCPFlow(client, Server(address=client.sockname))
        placeholder.metadata[METADATA_KEY] = verdict or {
            "verdict": "deny",
            "reason": "policy_error",
            "rule": "policy-error",
        }
        self.tunnels[client.id] = (placeholder, 0)

    def record_event(self, record: DnsRecord) -> None:
        """A record that is not a flow (the jail resolver's `dns` records)."""
        if self.log is None:
            return
        try:
            if redacted := audit.redact_record(cast(dict, record), self.secrets):
                record["redacted_secrets"] = redacted
            self.log.write(record)
        except Exception as e:
            self._fail(e)

    def client_disconnected(self, client: Client) -> None:
        tunnel = self.tunnels.pop(client.id, None)
        if tunnel is not None and tunnel[1] == 0:
            self._record(tunnel[0])

    def tcp_message(self, flow: tcp.TCPFlow) -> None:
        # Count every byte, keep only the first messages: raw streams can be unbounded.
        message = flow.messages[-1]
        key = "tcp_out" if message.from_client else "tcp_in"
        counts = flow.metadata.setdefault("netjail.tcp", {"tcp_out": 0, "tcp_in": 0})
        counts[key] += len(message.content)
        if len(flow.messages) > 16:
            del flow.messages[8:-1]

    def tcp_end(self, flow: tcp.TCPFlow) -> None:
        self._record(flow)

    def tcp_error(self, flow: tcp.TCPFlow) -> None:
        self._record(flow)

    def done(self) -> None:
        for flow in list(self.open.values()):  # still under way when the proxy stopped
            self._record(flow, incomplete=True)
        for connect_flow, inner in list(self.tunnels.values()):
            if inner == 0:
                self._record(connect_flow)
        self.tunnels.clear()
        self._close()

    # -- writing ----------------------------------------------------------------------------------------------

    def _record(self, flow: Flow, incomplete: bool = False) -> None:
        self.open.pop(flow.id, None)
        if flow.id in self.recorded or self.log is None:
            return
        self.recorded.add(flow.id)
        tunnel = self.tunnels.get(flow.client_conn.id)
        if tunnel is not None and tunnel[0] is not flow:
            self.tunnels[flow.client_conn.id] = (tunnel[0], tunnel[1] + 1)
        taps = self.taps.pop(flow.id, {})
        try:
            record = flow_record(flow, taps, self.redact, self.secrets)
            if incomplete:
                mark_incomplete(record)
            self.log.write(cap_record(record))
            self._check_reserve()
            if self.writer is not None and not self.log.on_reserve:  # bodies do not come out of the reserve
                self.writer.add(self._stored_state(flow, taps))
        except Exception as e:
            self._fail(e)

    def _stored_state(self, flow: Flow, taps: dict[str, BodyTap]) -> dict[str, Any]:
        """The flow as kept in flows.mitm, as mitmproxy's serialisable state: built once from the live flow (which
        is neither copied nor changed), with the kept body prefixes spliced in, credentials redacted, and URL and
        headers capped."""
        # new dicts throughout (metadata deep-copied): edits to the state stay out of the live flow
        with self.certificates.standing_in(flow.client_conn, flow.server_conn):
            state = flow.get_state()
        state["metadata"].pop("netjail.tcp", None)
        view = _editable_view(flow, state)
        self._splice_bodies(view, taps)
        self._redact_stored(view)
        cap_stored_flow(view)
        return _state_of(view, state)

    def _splice_bodies(self, view: Flow, taps: dict[str, BodyTap]) -> None:
        """A streamed body is kept as the prefix its tap kept; a buffered one is cut to `record.bodyCap`."""
        for part in ("request", "response"):
            message = getattr(view, part, None)
            if message is None:
                continue
            if (tap := taps.get(part)) is not None:
                message.raw_content = bytes(tap.prefix)
            elif message.raw_content and len(message.raw_content) > self.body_cap:
                message.raw_content = message.raw_content[: self.body_cap]

    def _redact_stored(self, view: Flow) -> None:
        """Every redaction of what flows.mitm keeps, in one place: credential headers replaced by a digest, then
        the audit secrets' values replaced wherever they appear (URL, headers, kept bodies, error, metadata)."""
        for part in ("request", "response"):
            message = getattr(view, part, None)
            if message is None:
                continue
            for name in list(message.headers):  # not .keys(): that looks each name up again, O(n²)
                if name.lower() in self.redact:
                    message.headers[name] = redact_value(message.headers[name])
        redact_flow(view, self.secrets)

    # -- recording before forwarding ---------------------------------------------------------------------------

    def _started(self, flow: Flow) -> bool:
        """Write the flow's `flow_start` (one write(2)) before its first byte goes upstream. False when egress
        must not happen: the log cannot be written, or its reserve is being spent."""
        if self.log is None:
            return True  # no record directory configured: nothing is recorded at all
        if self.failed is not None:
            return False
        try:
            record = start_record(flow)
            if redacted := audit.redact_record(cast(dict, record), self.secrets):
                record["redacted_secrets"] = redacted
            self.log.write(cap_record(record))
        except Exception as e:
            self._fail(e)
            return False
        self.open[flow.id] = flow  # recorded as incomplete at `done` if it never ends
        self._check_reserve()
        return self.failed is None

    def _check_reserve(self) -> None:
        if self.log is not None and self.log.on_reserve and self.failed is None:
            self._fail(OSError("no space left for the flow log; its reserve is being spent"))

    def _refuse(self, flow: http.HTTPFlow) -> None:
        """Egress stopped: the client is told why; the refusal is recorded while the reserve lasts."""
        flow.metadata[METADATA_KEY] = flow.metadata.get(METADATA_KEY, {}) | _log_failed_verdict()
        flow.response = http.Response.make(
            503,
            f"netjail refused this request: {LOG_FAILED_DETAIL}\n".encode(),
            {
                "Content-Type": "text/plain; charset=utf-8",
                "X-Netjail-Denied": "log_failed",
                "Connection": "close",
            },
        )

    def _fail(self, error: Exception) -> None:
        """The log cannot be written: stop the proxy. The supervisor stops the sandbox and exits 125."""
        if self.failed is None:
            log.critical("cannot record a flow: %r; stopping", error, exc_info=error)
            self.failed = error
            ctx.master.shutdown()


def _editable_view(flow: Flow, state: dict[str, Any]) -> Flow:
    """A flow object over the parts of `state` that the stored flow may differ in (messages, error, metadata), so
    that the redactions and caps edit the state through mitmproxy's own message API. Not a copy: the messages are
    views of the state's dicts, the connections are the live ones and are only read."""
    view: Flow
    if isinstance(flow, http.HTTPFlow):
        view = http.HTTPFlow(flow.client_conn, flow.server_conn)
        view.request = http.Request.from_state(state["request"])
        view.response = http.Response.from_state(state["response"]) if state["response"] else None
    else:
        view = tcp.TCPFlow(flow.client_conn, flow.server_conn)
    view.error = Error.from_state(state["error"]) if state["error"] else None
    view.metadata = state["metadata"]
    return view


def _state_of(view: Flow, state: dict[str, Any]) -> dict[str, Any]:
    """`state` with the edited parts of its view written back."""
    if isinstance(view, http.HTTPFlow):
        state["request"] = view.request.get_state()
        state["response"] = view.response.get_state() if view.response else None
    state["error"] = view.error.get_state() if view.error else None
    state["metadata"] = view.metadata
    return state


def flow_record(
    flow: Flow,
    taps: dict[str, BodyTap] | None = None,
    redact: frozenset[str] = frozenset(DEFAULT_REDACT),
    secrets: audit.Secrets | None = None,
) -> FlowRecord:
    """The flows.jsonl record of one flow (schema: netjail/records/schema.py), with its audit `flags`."""
    record = _flow_record(flow, taps or {}, redact)
    tap = (taps or {}).get("request")
    # detect/ is below records and edits a plain dict: it adds `flags` (and `redacted_secrets`)
    annotate(cast(dict, record), flow, tap.scanner if tap is not None else None, secrets)
    note_credentials(cast(dict, record), flow.metadata)
    return record


def _log_failed_verdict() -> dict[str, str]:
    return {"verdict": "deny", "reason": "log_failed", "rule": "flow-log", "detail": LOG_FAILED_DETAIL}


def start_record(flow: Flow) -> FlowStart:
    """The `flow_start` record: what is about to go upstream, written before it does (docs/records.md). Its
    `flow` record, with the same id, completes it."""
    meta: dict[str, Any] = flow.metadata.get(METADATA_KEY, {})
    if isinstance(flow, tcp.TCPFlow):
        host, port = flow.server_conn.address or ("", 0)
        host = meta.get("judged_host") or host
        method, scheme, path, target = None, "tcp", None, None
    else:
        assert isinstance(flow, http.HTTPFlow)
        request = flow.request
        host, port = meta.get("judged_host") or request.host, request.port
        is_connect = request.method == "CONNECT"
        method, scheme = request.method, "https" if is_connect else request.scheme
        path = "" if is_connect else request.path
        target = _absolute_target(flow)
    record: FlowStart = {
        "event": "flow_start",
        "id": flow.id,
        "ts": utc_timestamp(),
        "method": method,
        "scheme": scheme,
        "host": host,
        "port": port,
        "url": f"{scheme}://{host_port(str(host), int(port), scheme)}{path or ''}",
        "verdict": meta.get("verdict", "deny"),
        "rule": meta.get("rule", "policy-error"),
        "reason": meta.get("reason", "policy_error"),
    }
    if target is not None:
        record["target"] = target
    return record


def _absolute_target(flow: http.HTTPFlow) -> str | None:
    """An HTTP/1 request inside a tunnel whose target is in absolute form is forwarded with that target: the
    record keeps it as sent (the path alone would hide the authority it names)."""
    request = flow.request
    if request.method == "CONNECT" or request.is_http2 or request.is_http3 or not request.authority:
        return None
    return f"{request.scheme}://{request.authority}{request.path}"


def _flow_record(flow: Flow, taps: dict[str, BodyTap], redact: frozenset[str]) -> FlowRecord:
    meta: dict[str, Any] = flow.metadata.get(METADATA_KEY, {})
    start = flow.timestamp_created
    if isinstance(flow, tcp.TCPFlow):
        return _tcp_record(flow, meta)
    assert isinstance(flow, http.HTTPFlow)
    request, response = flow.request, flow.response
    end = (response.timestamp_end if response and response.timestamp_end else None) or (
        flow.error.timestamp if flow.error else None
    )
    is_connect = request.method == "CONNECT"
    host = meta.get("judged_host") or request.host
    error = flow.error.msg if flow.error else meta.get("client_error")
    verdict = meta.get("verdict", "deny")
    reason = meta.get("reason", "policy_error")
    status: int | None = response.status_code if response else None
    if verdict == "allow":
        # what went wrong after the policy allowed it; `would_deny` (audit mode) is kept: learn needs it
        keep = reason == "would_deny"
        if meta.get("client_error"):
            reason = reason if keep else "client_tls_failed"
        elif flow.error:
            kind = classify_error(flow.error.msg)
            if not keep:
                reason = "client_aborted" if kind == "client_aborted" else "upstream_error"
            if status is None and kind != "client_aborted":
                status = 502
    elif status is None and flow.error:
        status = 502  # a dial refused in server_connect reaches the client as a 502
    scheme = "https" if is_connect else request.scheme
    path = "" if is_connect else request.path
    authority = request.authority if is_connect else request.host_header
    record: FlowRecord = {
        "event": "flow",
        "id": flow.id,
        "ts": utc_timestamp(start),
        "duration_ms": round(((end or start) - start) * 1000, 1) if end else None,
        "method": request.method,
        "scheme": scheme,
        "host": host,
        "port": request.port,
        "authority": authority,
        "sni": flow.client_conn.sni,
        "path": path,
        "url": f"{scheme}://{host_port(host, request.port, scheme)}{path}",
        "http_version": request.http_version,
        "status": status,
        "bytes_out": taps["request"].size if "request" in taps else len(request.raw_content or b""),
        "bytes_in": (
            taps["response"].size
            if "response" in taps
            else len((response.raw_content or b"") if response else b"")
        ),
        "verdict": verdict,
        "rule": meta.get("rule", "policy-error"),
        "reason": reason,
        "error": error,
        "error_kind": classify_error(error) if error else None,
        "detail": meta.get("detail") or None,
        "address": meta.get("address"),
        "tunnel": bool(is_connect),
        "user_agent": request.headers.get("user-agent"),
    }
    if (target := _absolute_target(flow)) is not None:
        record["target"] = target
    if "request" in taps:
        record["sha256_out"] = taps["request"].digest.hexdigest() if taps["request"].size else None
    if "response" in taps:
        record["sha256_in"] = taps["response"].digest.hexdigest() if taps["response"].size else None
    redacted = sorted({n.lower() for n in request.headers if n.lower() in redact})
    if redacted:
        record["redacted"] = redacted
    if flow.websocket is not None:
        ws: websocket.WebSocketData = flow.websocket
        record["websocket"] = {
            "messages_out": sum(1 for m in ws.messages if m.from_client),
            "messages_in": sum(1 for m in ws.messages if not m.from_client),
            "bytes_out": sum(len(m.content) for m in ws.messages if m.from_client),
            "bytes_in": sum(len(m.content) for m in ws.messages if not m.from_client),
        }
    return record


def _tcp_record(flow: tcp.TCPFlow, meta: dict[str, Any]) -> FlowRecord:
    counts = flow.metadata.get("netjail.tcp", {"tcp_out": 0, "tcp_in": 0})
    host, port = flow.server_conn.address or ("", 0)
    host = meta.get("judged_host") or host
    error = flow.error.msg if flow.error else None
    end = (
        flow.error.timestamp
        if flow.error
        else (flow.server_conn.timestamp_end or flow.client_conn.timestamp_end)
    )
    return {
        "event": "flow",
        "id": flow.id,
        "ts": utc_timestamp(flow.timestamp_created),
        "duration_ms": round((end - flow.timestamp_created) * 1000, 1) if end else None,
        "method": None,
        "scheme": "tcp",
        "host": host,
        "port": port,
        "authority": None,
        "sni": flow.client_conn.sni,
        "path": None,
        "url": f"tcp://{host_port(str(host), port, 'tcp')}",
        "http_version": None,
        "status": None,
        "bytes_out": counts["tcp_out"],
        "bytes_in": counts["tcp_in"],
        "verdict": meta.get("verdict", "allow"),
        "rule": meta.get("rule", "tunnel"),
        "reason": meta.get("reason", "allowed")
        if not error or meta.get("verdict") == "deny"
        else "upstream_error",
        "error": error,
        "error_kind": classify_error(error) if error else None,
        "detail": meta.get("detail") or None,
        "address": meta.get("address"),
        "tunnel": True,
    }


addons = [NetjailRecorder()]
