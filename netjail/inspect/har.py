"""`netjail export --har`: a run's flows.mitm as HAR 1.2, streamed entry by entry.

Entries are built by mitmproxy's own HAR exporter (`SaveHar.flow_entry`), so browser devtools and mitmproxy
read them back; netjail's verdict and flags ride along in the custom field `_netjail`. Credentials were
replaced by digests when the flow was recorded; they are replaced again here (headers named in the run's
`record.redactHeaders`, the run's configured secrets) in case the file came from elsewhere. Raw TCP flows
have no HAR form and are skipped (counted in the summary).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, TextIO

from netjail.inspect.stored import redact_headers, stored_flows
from netjail.records.rundir import RunDir
from netjail.records.runs import flow_records, run_secrets
from netjail.records.schema import FlowRecord


class _SeenServers:
    """SaveHar's `servers_seen`, holding ids rather than connection objects (bounded memory)."""

    def __init__(self) -> None:
        self.ids: set[str] = set()

    def __contains__(self, server: Any) -> bool:
        return server.id in self.ids

    def add(self, server: Any) -> None:
        self.ids.add(server.id)


class _Records:
    """The flow records, looked up by flow id. Both files are written in the same order, so this reads ahead
    only a little; files whose flow ids differ from the records' (netjail before 0.1's id fix) are matched by
    start time and method instead."""

    def __init__(self, records: Iterator[FlowRecord]):
        self.records = records
        self.pending: dict[object, FlowRecord] = {}

    def get(self, flow_id: str, ts: str, method: str | None) -> FlowRecord | None:
        for key in (flow_id, (ts, method)):
            if key in self.pending:
                record = self.pending.pop(key)
                self.pending.pop(record.get("id"), None)
                self.pending.pop((record.get("ts"), record.get("method")), None)
                return record
        for record in self.records:
            if record.get("id") == flow_id or (record.get("ts"), record.get("method")) == (ts, method):
                return record
            if len(self.pending) < 20_000:
                self.pending[str(record.get("id"))] = record
                self.pending[(record.get("ts"), record.get("method"))] = record
        return None


def _fix_shape(entry: dict[str, Any]) -> None:
    """What HAR 1.2 requires and mitmproxy leaves out for flows without a response."""
    response = entry["response"]
    content = response.setdefault("content", {})
    content.setdefault("size", 0)
    content.setdefault("mimeType", "x-unknown")
    timings = entry["timings"]
    for key in ("send", "wait", "receive"):
        if timings.get(key) is None or timings[key] < 0:
            timings[key] = 0
    entry["time"] = sum(v for v in timings.values() if isinstance(v, (int, float)) and v >= 0)


def _netjail_fields(flow_id: str, record: FlowRecord | None, redacted_on_export: list[str]) -> dict[str, Any]:
    """The HAR entry's `_netjail`: the flow record's verdict, sizes and flags (all None without a record)."""
    if record is None:
        return {"id": flow_id, "verdict": None, "reason": None, "rule": None, "detail": None,
                "error_kind": None, "bytes_out": None, "bytes_in": None, "flags": [], "redacted": [],
                "redacted_on_export": redacted_on_export}  # fmt: skip
    return {
        "id": flow_id,
        "verdict": record.get("verdict"),
        "reason": record.get("reason"),
        "rule": record.get("rule"),
        "detail": record.get("detail"),
        "error_kind": record.get("error_kind"),
        "bytes_out": record.get("bytes_out"),
        "bytes_in": record.get("bytes_in"),
        "flags": record.get("flags") or [],
        "redacted": sorted(set(record.get("redacted") or []) | set(record.get("redacted_secrets") or [])),
        "redacted_on_export": redacted_on_export,
    }


def write_har(run: RunDir, out: TextIO) -> dict[str, Any]:
    from mitmproxy import http, version
    from mitmproxy.addons.savehar import SaveHar

    from netjail import __version__
    from netjail.records.log import utc_timestamp

    secrets = run_secrets(run)
    redact = redact_headers(run)
    records = _Records(flow_records(run, secrets))
    saver = SaveHar()
    seen = _SeenServers()
    entries = skipped = 0
    redacted: dict[str, None] = {}
    creator = {
        "name": "netjail",
        "version": __version__,
        "comment": f"mitmproxy {version.VERSION}; run {run.run_id}",
    }
    out.write(
        '{"log": {"version": "1.2", "creator": ' + json.dumps(creator) + ', "pages": [], "entries": [\n'
    )
    for flow, where in stored_flows(run, secrets):
        if not isinstance(flow, http.HTTPFlow):
            skipped += 1
            continue
        entry = saver.flow_entry(flow, seen)  # type: ignore[arg-type]
        if "cookie" in redact and "cookie" in (k.lower() for k in flow.request.headers):
            entry["request"]["cookies"] = []  # a redacted Cookie header parses into nonsense
        _fix_shape(entry)
        record = records.get(flow.id, utc_timestamp(flow.timestamp_created), flow.request.method)
        entry["_netjail"] = _netjail_fields(flow.id, record, where)
        text = json.dumps(entry, ensure_ascii=True)
        if secrets:
            text, names = secrets.redact_text(text)
            where += [f"{n} in entry" for n in names]
        redacted.update(dict.fromkeys(where))
        out.write(("" if entries == 0 else ",\n") + text)
        entries += 1
    out.write("\n]}}\n")
    return {"entries": entries, "skipped_non_http": skipped, "redacted": list(redacted)}
