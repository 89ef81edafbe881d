"""The short report printed after a run in which something was blocked or failed upstream."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import cast

from netjail.detect.flags import host_flags
from netjail.inspect.fs_hints import WriteHints, describe, write_hints
from netjail.records.derived import bracketed, failed_upstream
from netjail.records.read import iter_records
from netjail.records.schema import Record, RefusedWrite, is_flow
from netjail.utils.text import safe_text

TOP_HOSTS = 5


def _blocked(records: Iterator[Record]) -> tuple[Counter[str], Counter[str], Counter[str], dict[str, str]]:
    denied: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    denied_lookups: Counter[str] = Counter()
    suggestions: dict[str, str] = {}
    for record in records:
        if record.get("event") == "dns" and record.get("verdict") == "deny":
            name = str(record.get("name") or "?")
            denied_lookups[name] += 1
            if record.get("reason") == "not_allowed" and not host_flags(
                name
            ):  # never propose a tunnel's name
                suggestions.setdefault(name, bracketed(name))
            continue
        if not is_flow(record):
            continue
        host = str(record.get("host") or "?")
        if record.get("verdict") == "deny":
            denied[host] += 1
            if record.get("reason") in ("not_allowed", "ip_literal"):
                suggestions.setdefault(host, bracketed(host))
        elif failed_upstream(record):
            failed[host] += 1
    return denied, failed, denied_lookups, suggestions


def render(flows_jsonl: Path, run_dir: Path) -> str | None:
    refused: list[RefusedWrite] = []

    def network_records() -> Iterator[Record]:
        for record in iter_records(flows_jsonl):
            if record.get("event") == "refused_write":
                refused.append(cast(RefusedWrite, record))
            else:
                yield record

    denied, failed, denied_lookups, suggestions = _blocked(network_records())
    writes = write_hints(refused)
    if not denied and not failed and not denied_lookups and not writes:
        return None
    lines: list[str] = _refused_writes(writes)
    if denied:
        total = sum(denied.values())
        top = ", ".join(f"{safe_text(h)} ({n})" for h, n in denied.most_common(TOP_HOSTS))
        lines.append(
            f"netjail: blocked {total} request{'s' if total != 1 else ''} to {len(denied)} host(s): {top}"
        )
    if denied_lookups:
        total = sum(denied_lookups.values())
        top = ", ".join(f"{safe_text(h)} ({n})" for h, n in denied_lookups.most_common(TOP_HOSTS))
        lines.append(
            f"netjail: refused {total} DNS lookup{'s' if total != 1 else ''} of {len(denied_lookups)} name(s): {top}"
        )
    if denied or denied_lookups:
        if suggestions:
            from netjail.settings.presets import presets_covering  # only when something was blocked

            covering = presets_covering(list(suggestions.values()))
            entries = dict.fromkeys(covering.get(e.lower(), e) for e in sorted(suggestions.values()))
            snippet = json.dumps({"network": {"allowedDomains": list(entries)}})
            lines.append(f"netjail: to allow them, add to your settings: {safe_text(snippet)}")
    if failed:
        total = sum(failed.values())
        top = ", ".join(f"{safe_text(h)} ({n})" for h, n in failed.most_common(TOP_HOSTS))
        lines.append(f"netjail: {total} allowed request{'s' if total != 1 else ''} failed upstream: {top}")
    lines.append(f"netjail: flows recorded in {safe_text(str(run_dir))}  (netjail flows, netjail why)")
    return "\n".join(lines)


def _refused_writes(writes: WriteHints) -> list[str]:
    """The filesystem's part: what was refused, the allowWrite entries that would let it through, what is not
    proposed and why."""
    if not writes:
        return []
    paths = len(writes.hints) + writes.more_paths
    top = ", ".join(safe_text(describe(h)) for h in writes.hints[:TOP_HOSTS])
    more = f" and {paths - TOP_HOSTS} more" if paths > TOP_HOSTS else ""
    total = writes.total
    lines = [f"netjail: refused {total} write{'s' if total != 1 else ''} to {paths} path(s): {top}{more}"]
    if writes.proposals:
        snippet = json.dumps({"filesystem": {"allowWrite": writes.proposals}})
        lines.append(f"netjail: to allow them, add to your settings: {safe_text(snippet)}")
        missing = [h.proposal for h in writes.hints if h.proposal and h.create_first]
        if missing:
            lines.append(
                f"netjail: create {', '.join(dict.fromkeys(missing))} first (allowWrite names what exists)"
            )
    for hint in [h for h in writes.hints if not h.proposal][:TOP_HOSTS]:
        lines.append(f"netjail: {safe_text(describe(hint))}: {safe_text(hint.because)}")
    return lines
