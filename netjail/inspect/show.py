"""`netjail flows --show ID`: one flow as it was recorded — its verdict and flags from the record, its request and
response (line, headers, the start of each body) from flows.mitm, every credential replaced as in a HAR export and
every well-known credential shape too (netjail.detect.tokens). So a flagged flow can be looked at without
mitmdump."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netjail.detect.secrets import Secrets
from netjail.detect.tokens import redact_tokens
from netjail.inspect.stored import stored_flows
from netjail.records.rundir import RunDir
from netjail.records.runs import flow_records
from netjail.records.schema import FlowRecord
from netjail.utils.text import safe_text

BODY_SHOWN = 2048  # bytes of each body shown by default


class FlowNotFound(LookupError):
    pass


@dataclass
class Shown:
    record: FlowRecord
    flow: (
        Any | None
    )  # a mitmproxy Flow; None when flows.mitm has none for this record (raw TCP, a DNS lookup)
    redacted_now: list[str]


def find_flow(run: RunDir, wanted: str, secrets: Secrets | None) -> Shown:
    """The record whose id is `wanted` or starts with it (unique), and its flow from flows.mitm."""
    matches = [r for r in flow_records(run, secrets) if str(r.get("id", "")).startswith(wanted)]
    ids = {str(r.get("id")) for r in matches}
    if not matches:
        raise FlowNotFound(
            f"no flow {wanted!r} in run {run.run_id}. Fix: netjail flows {run.run_id} --json lists the ids"
        )
    if len(ids) > 1:
        raise FlowNotFound(
            f"{wanted!r} is the start of {len(ids)} flow ids in run {run.run_id}; give more of it"
        )
    record = matches[-1]
    for flow, where in stored_flows(run, secrets):
        if flow.id == record.get("id"):
            return Shown(record, flow, where)
    return Shown(record, None, [])


def _body(content: bytes | None, limit: int) -> tuple[str, str]:
    """(how it is shown, the text): text as text with credential shapes replaced, binary as hex."""
    how, text = _raw_body(content, limit)
    return how, redact_tokens(text)[0]


def _headers(message: Any) -> list[tuple[str, str]]:
    return [(k, redact_tokens(v)[0]) for k, v in message.headers.items(multi=True)]


def _raw_body(content: bytes | None, limit: int) -> tuple[str, str]:
    if not content:
        return "empty", ""
    head = content[:limit]
    more = f", first {len(head)} shown" if len(content) > limit else ""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # not just a character cut at the limit
            return f"{len(content)} bytes, binary{more} as hex", head[:256].hex(" ", 2)
        text = head[: e.start].decode("utf-8")
    return f"{len(content)} bytes{more}", text


def render(shown: Shown, body_bytes: int = BODY_SHOWN) -> str:
    record, flow = shown.record, shown.flow
    lines = [
        f"flow {record.get('id')}  {record.get('ts')}",
        f"  verdict: {record.get('verdict')} ({record.get('reason')}; rule {safe_text(record.get('rule'))})"
        + (f"\n  {safe_text(record['detail'])}" if record.get("detail") else ""),
    ]
    for f in record.get("flags") or []:
        lines.append(f"  flag {f.get('kind')}: {safe_text(f.get('detail'))}")
    if flow is None or not hasattr(flow, "request"):
        lines.append("  (flows.mitm has no HTTP message for this flow)")
        return "\n".join(lines) + "\n"
    request = flow.request
    lines.append("")
    lines.append(safe_text(f"> {request.method} {request.url} {request.http_version}"))
    lines += [safe_text(f"> {k}: {v}") for k, v in _headers(request)]
    how, text = _body(request.raw_content, body_bytes)
    lines.append(f"> (body: {how})")
    lines += [safe_text(f">   {line}") for line in text.splitlines()]
    response = flow.response
    lines.append("")
    if response is None:
        error = flow.error.msg if flow.error else "none"
        lines.append(f"< (no response: {safe_text(error)})")
    else:
        lines.append(safe_text(f"< {response.http_version} {response.status_code} {response.reason}"))
        lines += [safe_text(f"< {k}: {v}") for k, v in _headers(response)]
        how, text = _body(response.raw_content, body_bytes)
        lines.append(f"< (body: {how})")
        lines += [safe_text(f"<   {line}") for line in text.splitlines()]
    truncated = flow.metadata.get("netjail.truncated")
    if truncated:
        lines.append(f"\n  cut when recorded: {safe_text(truncated)}")
    if shown.redacted_now:
        lines.append(f"  redacted now: {', '.join(shown.redacted_now)}")
    return "\n".join(lines) + "\n"


def as_json(shown: Shown, body_bytes: int = BODY_SHOWN) -> dict[str, Any]:
    out: dict[str, Any] = {"record": shown.record, "request": None, "response": None}
    flow = shown.flow
    if flow is None or not hasattr(flow, "request"):
        return out
    for part in ("request", "response"):
        message = getattr(flow, part)
        if message is None:
            continue
        how, text = _body(message.raw_content, body_bytes)
        out[part] = {
            "headers": [[k, v] for k, v in _headers(message)],
            "body": text,
            "body_shown_as": how,
        }
        if part == "request":
            out[part] |= {
                "method": message.method,
                "url": message.pretty_url,
                "http_version": message.http_version,
            }
        else:
            out[part] |= {"status": message.status_code, "http_version": message.http_version}
    out["redacted_now"] = shown.redacted_now
    return out
