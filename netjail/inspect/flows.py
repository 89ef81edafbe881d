"""`netjail flows`: the filters and the table row of one flow record."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from netjail.inspect.tables import Cell, Column
from netjail.records.derived import failed_upstream, is_failed, shown_destination
from netjail.records.schema import FlowRecord
from netjail.utils.text import human_bytes, safe_text

_SIZE = re.compile(r"(?i)\s*(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*")
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 10**6, "mb": 10**6, "mib": 1024**2,
          "g": 10**9, "gb": 10**9, "gib": 1024**3}  # fmt: skip


def parse_size(text: str) -> int:
    """'5000', '10k', '1.5MB', '2MiB' -> bytes. Raises ValueError with a message a person can act on."""
    match = _SIZE.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not a size; write bytes (5000) or with a unit (10k, 1.5MB, 2MiB)")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "").lower()])


def host_matches(pattern: str, host: str) -> bool:
    """A shell glob (`*.github.com`, `pypi.*`), or a plain name, which also matches its subdomains."""
    pattern, host = pattern.lower().rstrip("."), host.lower()
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(host, pattern)
    return host == pattern or host.endswith("." + pattern)


@dataclass
class FlowFilter:
    hosts: tuple[str, ...] = ()
    verdicts: frozenset[str] = frozenset()  # allow / deny; empty = both
    failed: bool = False
    methods: frozenset[str] = frozenset()
    min_bytes_out: int | None = None
    flagged: bool = False
    reasons: frozenset[str] = field(default_factory=frozenset)
    credentials: bool = False  # only flows that carried a masked credential's placeholder

    def __call__(self, record: FlowRecord) -> bool:
        if self.verdicts and record.get("verdict") not in self.verdicts:
            return False
        if self.failed and not (dns_failed(record) if is_dns(record) else is_failed(record)):
            return False
        method = "DNS" if is_dns(record) else str(record.get("method") or "").upper()
        if self.methods and method not in self.methods:
            return False
        if self.min_bytes_out is not None and int(record.get("bytes_out") or 0) < self.min_bytes_out:
            return False
        if self.flagged and not record.get("flags"):
            return False
        if self.credentials and not record.get("credentials"):
            return False
        if self.reasons and record.get("reason") not in self.reasons:
            return False
        if self.hosts:
            host = str(record.get("host") or record.get("name") or "")
            if not any(host_matches(p, host) for p in self.hosts):
                return False
        return True


COLUMNS = [
    Column("time (UTC)", width=12, optional=True),
    Column("verdict", width=7),
    Column("method", width=7),
    Column("host", width=28, max_width=40),
    Column("path", width=32, max_width=60),
    Column("status", justify="right", width=6),
    Column("out", justify="right", width=9),
    Column("in", justify="right", width=9),
    Column("reason", width=16, max_width=60),
]


def is_dns(record: Mapping[str, object]) -> bool:
    """A `dns` record among the flows (FlowRecord is the table's row type; a lookup shares its fields)."""
    return record.get("event") == "dns"


def dns_failed(record: Mapping[str, object]) -> bool:
    """An allowed lookup that found nothing (NXDOMAIN, a server failure)."""
    return record.get("verdict") == "allow" and isinstance(record.get("answer"), str)


def _dns_answer(record: Mapping[str, object]) -> str:
    answer = record.get("answer")
    shown = ", ".join(map(str, answer)) if isinstance(answer, list) else str(answer or "")
    return f"{record.get('type')} → {shown}" if shown else str(record.get("type") or "")


def _path(record: FlowRecord) -> str:
    if is_dns(record):
        return _dns_answer(record)
    if "packets" in record:  # a `dropped` record
        packets = record.get("packets")
        return f"({packets} packet{'s' if packets != 1 else ''} dropped)"
    if record.get("scheme") == "tcp":
        return "(raw tcp)"
    if record.get("method") == "CONNECT":
        return "(tunnel)"
    return str(record.get("path") or "")


def _reason(record: FlowRecord) -> str:
    reason = str(record.get("reason") or "")
    if record.get("incomplete"):
        reason += " (incomplete)"
    if record.get("error_kind") and failed_upstream(record):
        reason += f" ({record.get('error_kind')})"
    kinds = list(dict.fromkeys(str(f.get("kind")) for f in record.get("flags") or [] if isinstance(f, dict)))
    if kinds:
        reason += " !" + ",".join(kinds)
    return reason + credentials_note(record)


def credentials_note(record: Mapping[str, object]) -> str:
    """What happened to masked credentials on this flow, by name: ` [injected API_TOKEN; placeholder NPM_TOKEN]`."""
    carried = record.get("credentials")
    if not isinstance(carried, dict):
        return ""

    def names(key: str) -> list[str]:
        entries = carried.get(key) or []
        return list(dict.fromkeys(str(e.get("credential")) for e in entries if isinstance(e, dict)))

    parts = [
        f"{label} {','.join(found)}"
        for label, found in (("injected", names("injected")), ("placeholder", names("placeholder_left")))
        if found
    ]
    if carried.get("sigv4"):
        parts.append(f"sigv4 {carried['sigv4']}")
    return f" [{'; '.join(parts)}]" if parts else ""


def _size(value: int | None, human: bool) -> str:
    n = int(value or 0)
    return human_bytes(n) if human else str(n)


def dns_row(record: Mapping[str, object]) -> list[Cell]:
    """A lookup the jail's resolver answered, in the flows table: method DNS, the name as host."""
    verdict = str(record.get("verdict") or "")
    ts = str(record.get("ts") or "")
    style = "bold red" if verdict == "deny" else "magenta" if dns_failed(record) else "green"
    return [
        ts[11:23] if len(ts) >= 23 else ts,
        (verdict, style),
        "DNS",
        safe_text(str(record.get("name") or "?")),
        safe_text(_dns_answer(record)),
        "",
        "",
        "",
        str(record.get("reason") or ""),
    ]


def flow_row(record: FlowRecord, human: bool) -> list[Cell]:
    if is_dns(record):
        return dns_row(record)
    verdict = str(record.get("verdict") or "")
    reason = record.get("reason")
    style = "green" if verdict == "allow" else "bold red"
    if reason == "would_deny":
        style = "yellow"
    elif is_failed(record):
        style = "magenta"
    status = record.get("status")
    flags = record.get("flags")
    ts = str(record.get("ts") or "")
    return [
        ts[11:23] if len(ts) >= 23 else ts,
        (verdict, style),
        str(record.get("method") or str(record.get("protocol") or "").upper() or "-"),
        shown_destination(record),
        _path(record),
        ("" if status is None else str(status), "red" if isinstance(status, int) and status >= 400 else None),
        _size(record.get("bytes_out"), human)
        if record.get("bytes_out") is not None or not record.get("incomplete")
        else "?",
        _size(record.get("bytes_in"), human)
        if record.get("bytes_in") is not None or not record.get("incomplete")
        else "?",
        (_reason(record), "bold yellow" if flags else None),
    ]
