"""What one record may take (docs/records.md, "Caps"): a long value is stored cut, with its full length and a
SHA-256 digest, so that no request can make the log much larger than the traffic it describes.

Pure functions on plain values; `cap_stored_flow` works on a mitmproxy flow by duck typing (no import here).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, TypeVar, cast

from netjail.records.schema import FlowRecord, FlowStart

# the records whose strings can be as long as what the command sent
Capped = TypeVar("Capped", FlowRecord, FlowStart)

URL_CAP = 4096  # characters of `url` and `path` in a record; bytes of the target in flows.mitm
FIELD_CAP = 1024  # characters of any other string in a record (a header value such as `user_agent`, `detail`)
RECORD_CAP = 32_768  # bytes of one flows.jsonl line
HEADER_VALUE_CAP = 4096  # bytes of each header value kept in flows.mitm
HEADERS_CAP = 65_536  # bytes of the header fields kept of one message in flows.mitm
URL_FIELDS = ("url", "path")
# What a record keeps when it is still over RECORD_CAP with its fields cut.
CORE_FIELDS = (
    "event", "id", "ts", "duration_ms", "method", "scheme", "host", "port", "authority", "path", "url",
    "http_version", "status", "bytes_out", "bytes_in", "verdict", "rule", "reason", "error", "error_kind",
    "address", "tunnel", "sha256_out", "sha256_in",
)  # fmt: skip
INCOMPLETE_ERROR = "the proxy stopped before this flow completed"


def digest(value: str | bytes) -> str:
    data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    return hashlib.sha256(data).hexdigest()


def cut(value: str, cap: int) -> tuple[str, dict[str, Any] | None]:
    """`value` if it fits `cap` characters, else its first `cap` and what was cut (full length and digest)."""
    if len(value) <= cap:
        return value, None
    return value[:cap], {"length": len(value), "sha256": digest(value)}


def cap_record(record: Capped) -> Capped:
    """The record as written: each string field cut to its cap (noted under `truncated`), and the whole line
    reduced to CORE_FIELDS if it is still over RECORD_CAP."""
    truncated: dict[str, Any] = {}
    capped = dict(record)
    for key, value in record.items():
        if isinstance(value, str):
            capped[key], note = cut(value, URL_CAP if key in URL_FIELDS else FIELD_CAP)
            if note:
                truncated[key] = note
    if truncated:
        capped["truncated"] = truncated
    line = json.dumps(capped, ensure_ascii=True, separators=(",", ":"), default=str)
    if len(line) <= RECORD_CAP:
        return cast(Capped, capped)
    core = {key: capped[key] for key in CORE_FIELDS if key in capped}
    core["truncated"] = truncated | {"record": {"length": len(line), "sha256": digest(line)}}
    return cast(Capped, core)


def mark_incomplete(record: FlowRecord) -> FlowRecord:
    """A flow still open when the proxy stopped: recorded with what it had moved so far."""
    record["incomplete"] = True
    if record.get("verdict") == "allow":
        record["reason"] = "incomplete"
    record["error"] = record.get("error") or INCOMPLETE_ERROR
    record["error_kind"] = record.get("error_kind") or "incomplete"
    return record


def cap_header_fields(
    fields: tuple[tuple[bytes, bytes], ...],
) -> tuple[tuple[tuple[bytes, bytes], ...], dict | None]:
    """Header fields as kept in flows.mitm: each value cut to HEADER_VALUE_CAP, the fields to HEADERS_CAP."""
    kept: list[tuple[bytes, bytes]] = []
    total = cut_values = 0
    for name, value in fields:
        if len(value) > HEADER_VALUE_CAP:
            value, cut_values = value[:HEADER_VALUE_CAP], cut_values + 1
        total += len(name) + len(value) + 4
        if total > HEADERS_CAP:
            break
        kept.append((name, value))
    if not cut_values and len(kept) == len(fields):
        return fields, None
    whole = b"\r\n".join(b": ".join(field) for field in fields)
    note = {"fields": len(fields), "kept": len(kept), "values_cut": cut_values, "length": len(whole)}
    return tuple(kept), note | {"sha256": digest(whole)}


def cap_stored_flow(flow: Any) -> Any:
    """The copy written to flows.mitm with its URL and headers capped; what was cut is noted in its metadata
    (`netjail.truncated`). Bodies are already cut to `record.bodyCap` by the recorder."""
    truncated: dict[str, Any] = {}
    request = getattr(flow, "request", None)
    if request is not None and len(request.data.path) > URL_CAP:
        truncated["path"] = {"length": len(request.data.path), "sha256": digest(request.data.path)}
        request.data.path = request.data.path[:URL_CAP]
    for part in ("request", "response"):
        message = getattr(flow, part, None)
        if message is None:
            continue
        fields, note = cap_header_fields(message.headers.fields)
        if note:
            message.headers.fields = fields
            truncated[f"{part}_headers"] = note
    if truncated:
        flow.metadata["netjail.truncated"] = truncated
    return flow
