"""The audit detectors applied to mitmproxy flows: used by the recorder (flags into the record, secrets out
of both files) and by `netjail export` (secrets out of the HAR, again)."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

from mitmproxy import http
from mitmproxy.flow import Flow

from netjail.detect.canaries import CANARY_KEY, describe_where
from netjail.detect.flags import (
    BodyScanner,
    header_flags,
    host_flags,
    size_flags,
    url_flags,
    url_secret_flags,
)
from netjail.detect.secrets import Secrets, redact_record
from netjail.detect.tokens import header_token_flags, url_token_flags


def annotate(
    record: dict[str, Any], flow: Flow, scanner: BodyScanner | None, secrets: Secrets | None
) -> None:
    """Add `flags` to a flow record (and `redacted_secrets` when a secret value had to be replaced, `canaries` when
    addons/canaries.py saw one)."""
    flags: list[dict[str, str]] = [*host_flags(record.get("host"))]
    ignored = secrets.ignored if secrets is not None else ()
    if isinstance(flow, http.HTTPFlow):
        request = flow.request
        texts = [request.path, request.host, request.host_header or "", flow.client_conn.sni or ""]
        flags += url_secret_flags(texts, secrets)
        flags += header_flags(request.headers.items(multi=True), secrets)
        flags += url_token_flags([request.path], ignored)
        flags += header_token_flags(request.headers.items(multi=True), ignored)
        if request.method != "CONNECT":
            flags += url_flags(request.path)
        if scanner is not None:
            flags += scanner.flags()
        ws = record.get("websocket") or {}
        flags += size_flags(int(record.get("bytes_out") or 0) + int(ws.get("bytes_out") or 0))
    else:
        flags += size_flags(int(record.get("bytes_out") or 0))
    if sightings := flow.metadata.get(CANARY_KEY):  # names and places only
        record["canaries"] = sightings
        flags += [
            {"kind": "canary", "detail": f"canary {s['canary']} is {describe_where(w)}"}
            for s in sightings
            for w in s.get("where", [])
        ]
    record["flags"] = _unique(flags)
    where = redact_record(record, secrets)
    if where:
        record["redacted_secrets"] = where


def _unique(flags: list[dict[str, str]]) -> list[dict[str, str]]:
    seen: set[tuple[str, str]] = set()
    out = []
    for f in flags:
        key = (f["kind"], f["detail"])
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


_PLACEHOLDER = re.compile(r"\[redacted secret [^\]]*\]")


def url_safe(path: str) -> str:
    """A URL's placeholders percent-encoded (`%5Bredacted%20secret%20NAME%5D`), so the URL stays a URI: HAR
    validators and URL parsers refuse brackets and spaces."""
    return _PLACEHOLDER.sub(lambda m: urllib.parse.quote(m.group(), safe=""), path)


def redact_flow(flow: Flow, secrets: Secrets | None) -> list[str]:
    """Replace every secret value in a (copied) flow: URL, headers, kept bodies. Returns what was replaced."""
    if not secrets or not isinstance(flow, http.HTTPFlow):
        return []
    where: list[str] = []

    def text(value: str, label: str) -> str:
        redacted, names = secrets.redact_text(value)
        where.extend(f"{n} in {label}" for n in names)
        return redacted

    request = flow.request
    request.path = url_safe(text(request.path, "path"))
    request.data.host = text(request.data.host, "host")
    if request.data.authority:
        request.data.authority = text(
            request.data.authority.decode("utf-8", "surrogateescape"), "authority"
        ).encode("utf-8", "surrogateescape")
    for part in ("request", "response"):
        message = getattr(flow, part)
        if message is None:
            continue
        for name in list(message.headers.keys()):
            values = message.headers.get_all(name)
            redacted = [text(v, f"{part} header {name.lower()}") for v in values]
            if redacted != values:
                message.headers.set_all(name, redacted)
        if message.raw_content:
            body, names = secrets.redact(message.raw_content)
            body = secrets.cut_partial(body)
            if names or body != message.raw_content:
                where.extend(f"{n} in {part} body" for n in names)
                message.raw_content = body
    if flow.error and flow.error.msg:
        flow.error.msg = text(flow.error.msg, "error")
    meta = flow.metadata.get("netjail")
    if isinstance(meta, dict):
        for key in ("detail", "client_error", "judged_host"):
            if isinstance(meta.get(key), str):
                meta[key] = text(meta[key], f"metadata {key}")
    return list(dict.fromkeys(where))
