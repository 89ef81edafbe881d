"""`netjail audit`: what left the machine, per destination, and the flows worth a second look.

One pass over the run's records in bounded memory: per-host totals, the flagged flows (at most
MAX_FLAGGED kept in full, all counted), the distinct-name counter for DNS-tunnel bursts, and per-host
timeline bins for the HTML report.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from netjail.detect.canaries import describe_where
from netjail.detect.flags import (
    BurstCounter,
    flags_for_record,
    host_flags,
    record_bytes_out,
    size_flags,
)
from netjail.inspect.audit_credentials import CredentialUses, credential_lines, misdirected
from netjail.inspect.tables import Column, Output
from netjail.records.derived import failed_upstream
from netjail.records.read import first_run_start
from netjail.records.rundir import RunDir
from netjail.records.runs import configured_secrets, flow_records, run_info, run_secrets
from netjail.utils.text import human_bytes, safe_text

MAX_FLAGGED = 1000
TIMELINE_BINS = 120
PATH_SHOWN = 200


@dataclass
class HostStats:
    host: str
    requests: int = 0
    bytes_out: int = 0
    bytes_in: int = 0
    denied: int = 0
    failed: int = 0
    flagged: int = 0
    dns: int = 0  # lookups of this name the jail's resolver answered
    dns_denied: int = 0
    bins: Counter[int] = field(default_factory=Counter)
    denied_bins: Counter[int] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "requests": self.requests,
            "bytes_out": self.bytes_out,
            "bytes_in": self.bytes_in,
            "denied": self.denied,
            "failed": self.failed,
            "flagged": self.flagged,
            "dns": self.dns,
            "dns_denied": self.dns_denied,
        }


def _parse_ts(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _short_path(path: str | None) -> str:
    text = str(path or "")
    return text if len(text) <= PATH_SHOWN else text[: PATH_SHOWN - 3] + "..."


def build_report(run: RunDir, *, large_upload: int | None = None) -> dict[str, Any]:
    info = run_info(run.path, with_size=False)
    start_record = first_run_start(run.flows_jsonl)
    t0 = _parse_ts(start_record.get("ts") if start_record else None) or (
        info.started.timestamp() if info.started else None
    )
    end_ts = info.ended.timestamp() if info.ended else None
    if end_ts is None:  # still running, or ended without run_end
        try:
            end_ts = run.flows_jsonl.stat().st_mtime
        except OSError:
            pass
    span = max((end_ts or 0) - (t0 or 0), 0.001) if t0 else 1.0
    secrets = run_secrets(run)
    hosts: dict[str, HostStats] = {}
    flagged: list[dict[str, Any]] = []
    flagged_total = 0
    kinds: Counter[str] = Counter()
    bursts = BurstCounter()
    totals: Counter[str] = Counter()
    computed_flags = 0
    canaries: list[dict[str, Any]] = []  # audit.canaries: each canary seen leaving, where it went
    credentials = CredentialUses()  # masked credentials: injected where, and placeholders sent elsewhere
    for record in flow_records(run, secrets, events=("flow", "dns")):
        canaries += _canary_sightings(record)
        if record["event"] == "dns":
            name = str(record.get("name") or "")
            totals["dns_queries"] += 1
            bursts.add(name)
            named = hosts.get(name) or hosts.setdefault(name, HostStats(name))
            named.dns += 1
            refused = record.get("verdict") == "deny"
            if refused:
                named.dns_denied += 1
                totals["dns_denied"] += 1
            if (
                t0 is not None and (ts := _parse_ts(record.get("ts"))) is not None
            ):  # lookups are on the timeline
                index = min(max(int((ts - t0) / span * TIMELINE_BINS), 0), TIMELINE_BINS - 1)
                (named.denied_bins if refused else named.bins)[index] += 1
            label_flags = [*host_flags(name), *_dns_canary_flags(record)]
            if label_flags and len(flagged) < MAX_FLAGGED:
                flagged_total += 1
                kinds.update(f["kind"] for f in label_flags)
                flagged.append(
                    {"id": record.get("id"), "ts": record.get("ts"), "method": "DNS", "host": name, "port": None,
                     "path": "", "verdict": record.get("verdict"), "reason": record.get("reason"), "status": None,
                     "bytes_out": 0, "flags": label_flags}
                )  # fmt: skip
            continue
        credentials.add(record)
        host = str(record.get("host") or "?")
        stats = hosts.get(host)
        if stats is None:
            stats = hosts[host] = HostStats(host)
        sent = record_bytes_out(record)
        ws = record.get("websocket")
        received = int(record.get("bytes_in") or 0) + int((ws.get("bytes_in") if ws else None) or 0)
        denied = record.get("verdict") == "deny"
        stats.requests += 1
        totals["requests"] += 1
        if denied:
            stats.denied += 1
            totals["denied"] += 1
        else:
            stats.bytes_out += sent
            stats.bytes_in += received
            totals["bytes_out"] += sent
            totals["bytes_in"] += received
        if failed_upstream(record):
            stats.failed += 1
            totals["failed"] += 1
        bursts.add(host)
        if t0 is not None and (ts := _parse_ts(record.get("ts"))) is not None:
            index = min(max(int((ts - t0) / span * TIMELINE_BINS), 0), TIMELINE_BINS - 1)
            (stats.denied_bins if denied else stats.bins)[index] += 1
        flags: Sequence[Mapping[str, object]]
        if "flags" in record and isinstance(record["flags"], list):
            flags = [f for f in record["flags"] if isinstance(f, dict)]
        else:
            flags = flags_for_record(record)
            computed_flags += 1
        if large_upload is not None:
            flags = [*(f for f in flags if f.get("kind") != "large_upload"), *size_flags(sent, large_upload)]
        if flags:
            stats.flagged += 1
            flagged_total += 1
            kinds.update(str(f.get("kind")) for f in flags)
            if len(flagged) < MAX_FLAGGED:
                flagged.append(
                    {
                        "id": record.get("id"),
                        "ts": record.get("ts"),
                        "method": record.get("method"),
                        "host": host,
                        "port": record.get("port"),
                        "path": _short_path(record.get("path")),
                        "verdict": record.get("verdict"),
                        "reason": record.get("reason"),
                        "status": record.get("status"),
                        "bytes_out": sent,
                        "flags": flags,
                    }
                )
    findings = list(bursts.findings())
    kinds.update(f["kind"] for f in findings)
    ordered = sorted(hosts.values(), key=lambda h: (-h.bytes_out, -h.requests, h.host))
    return {
        "run": {
            "run_id": info.run_id,
            "path": str(run.path),
            "start": start_record.get("ts") if start_record else None,
            "command": start_record.get("command") if start_record else None,
            "exit_status": info.exit_status,
            "network_mode": info.network_mode,
        },
        "secrets_checked": configured_secrets(run),
        "secrets_not_checked": _secret_problems(run),
        "totals": {
            "requests": totals["requests"],
            "hosts": len(hosts),
            "bytes_out": totals["bytes_out"],
            "bytes_in": totals["bytes_in"],
            "denied": totals["denied"],
            "failed": totals["failed"],
            "dns_queries": totals["dns_queries"],
            "dns_denied": totals["dns_denied"],
            "flagged_flows": flagged_total,
            "findings": len(findings),
        },
        "hosts": [h.as_json() for h in ordered],
        "flagged": flagged,
        "flagged_omitted": flagged_total - len(flagged),
        "canaries": canaries,
        "credentials": credentials.as_json(),
        "findings": findings,
        "flag_kinds": dict(kinds),
        "records_without_flags": computed_flags,
        "_timeline": {
            "span_seconds": span,
            "bins": TIMELINE_BINS,
            "hosts": {h.host: (dict(h.bins), dict(h.denied_bins)) for h in ordered},
        },
    }


def _canary_sightings(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A record's canaries (addons/canaries.py names them, never their values), one entry per canary."""
    sightings = record.get("canaries")
    if not isinstance(sightings, list):
        return []
    host = str(record.get("name") if record.get("event") == "dns" else record.get("host") or "?")
    return [
        {
            "canary": str(s.get("canary")),
            "host": host,
            "where": [str(w) for w in s.get("where") or []],
            "encoding": s.get("encoding"),
            "ts": record.get("ts"),
            "id": record.get("id"),
            "verdict": record.get("verdict"),
        }
        for s in sightings
        if isinstance(s, dict)
    ]


def _dns_canary_flags(record: Mapping[str, Any]) -> list[dict[str, str]]:
    return [
        {"kind": "canary", "detail": f"canary {c['canary']} is {describe_where('dns')}"}
        for c in _canary_sightings(record)
    ]


def canary_lines(report: dict[str, Any]) -> list[str]:
    """`canary LEGACY_GH_TOKEN went to host X in the query string (refused)`, one per canary and place."""
    lines = []
    for c in report.get("canaries") or []:
        places = " and ".join(describe_where(w) for w in c["where"]) or "in a request"
        state = "refused" if c.get("verdict") == "deny" else "allowed"
        how = f", {c['encoding']}" if c.get("encoding") not in (None, "plain") else ""
        lines.append(f"canary {c['canary']} went to host {c['host']} {places} ({state}{how})")
    return lines


def _secret_problems(run: RunDir) -> list[str]:
    """The proxy's warnings about configured secrets it could not read (it logs them to proxy.log)."""
    try:
        with (run.path / "proxy.log").open(encoding="utf-8", errors="replace") as f:
            text = f.read(1_000_000)
    except OSError:
        return []
    return [line.split(": ", 1)[1] for line in text.splitlines() if ": audit.secret" in line and ": " in line]


def flagged_target(flagged: dict[str, Any]) -> tuple[str, str]:
    """A flagged entry's host (with a port other than 80 and 443) and path (none for a tunnel or a DNS query)."""
    port = flagged.get("port")
    where = f"{flagged['host']}" + (f":{port}" if port not in (None, 80, 443) else "")
    path = "" if flagged.get("method") in ("CONNECT", "DNS") else flagged.get("path") or ""
    return where, path


def public(report: dict[str, Any]) -> dict[str, Any]:
    """The report as `--json` prints it (without the HTML-only timeline bins)."""
    return {k: v for k, v in report.items() if not k.startswith("_")}


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def what_left(report: dict[str, Any]) -> str:
    totals = report["totals"]
    hosts = sum(1 for h in report["hosts"] if h["requests"] > h["denied"])
    denied = totals["denied"]
    lookups = totals.get("dns_denied", 0)
    attempts = plural(denied + lookups, "denied attempt")
    if lookups:
        attempts += (
            f" ({plural(lookups, 'DNS lookup')})" if denied else f" (all {plural(lookups, 'DNS lookup')})"
        )
    return (
        f"What left: {human_bytes(totals['bytes_out'])} sent and {human_bytes(totals['bytes_in'])} received in "
        f"{plural(totals['requests'] - denied, 'allowed request')} to {plural(hosts, 'host')}; "
        f"{attempts}" + (" (nothing of those was sent)." if denied or lookups else ".")
    )


def flagged_summary(report: dict[str, Any]) -> str:
    """One sentence, one vocabulary, for the text and the HTML report: what was flagged, flows and patterns."""
    flows, patterns = report["totals"]["flagged_flows"], report["findings"]
    if not flows and not patterns:
        return "Nothing flagged."
    parts = []
    if flows:
        kinds = Counter(
            str(f.get("kind")) for entry in report["flagged"] for f in entry["flags"] if isinstance(f, dict)
        )
        by_kind = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
        parts.append(f"{plural(flows, 'flow')}" + (f" ({by_kind})" if by_kind else ""))
    if patterns:
        kinds_of = ", ".join(sorted({p["kind"] for p in patterns}))
        parts.append(f"{plural(len(patterns), 'pattern')} across the run ({kinds_of})")
    return "Flagged: " + " and ".join(parts) + "."


KIND_MEANING = {
    "secret": "a configured secret's value was in the request",
    "credential": "a well-known credential shape (cloud, forge, registry or API key, private key, JWT) was in the request",
    "large_upload": "a large amount of data was sent in one request",
    "encoded_body": "the request body carries a long run of base64 or hex text",
    "high_entropy_body": "the request body is compressed or encrypted binary",
    "encoded_url": "the URL carries encoded data in a query value or path segment",
    "encoded_header": "a request header carries encoded data",
    "long_dns_label": "the host name has an unusually long label, as DNS tunnels use",
    "subdomain_burst": "many distinct names under one domain: a DNS tunnelling pattern",
    "canary": "a canary credential (a decoy netjail planted, audit.canaries) was in the request: the run was stopped",
}


def _dns_cell(host: Mapping[str, Any]) -> str:
    """Lookups of the name, with the denied ones: `3 (3)`; empty when the jail's resolver never saw it."""
    if not host.get("dns"):
        return ""
    return f"{host['dns']} ({host['dns_denied']})" if host.get("dns_denied") else str(host["dns"])


def render(report: dict[str, Any], out: Output, *, top_hosts: int = 50) -> None:
    run = report["run"]
    out.line(f"Audit of run {safe_text(run['run_id'])}", "bold")
    if run.get("command") is not None:
        command = str(run["command"])
        out.line(f"  command: {safe_text(command if len(command) <= 240 else command[:239] + '…')}")
    status = run.get("exit_status")
    out.line(
        f"  exit status: {status if status is not None else 'unknown (no run_end)'}"
        + (
            f"   network mode: {run['network_mode']}"
            if run.get("network_mode") not in (None, "enforce")
            else ""
        )
    )
    out.line()
    out.line(what_left(report), "bold")
    rows = []
    for h in report["hosts"][:top_hosts]:
        rows.append(
            [
                h["host"],
                str(h["requests"]),
                human_bytes(h["bytes_out"]) if out.terminal else str(h["bytes_out"]),
                human_bytes(h["bytes_in"]) if out.terminal else str(h["bytes_in"]),
                (str(h["denied"]), "bold red" if h["denied"] else None),
                (_dns_cell(h), "bold red" if h["dns_denied"] else None),
                (str(h["flagged"]), "bold yellow" if h["flagged"] else None),
            ]
        )
    out.line()
    out.table(
        [
            Column("host", max_width=50),
            Column("requests", justify="right"),
            Column("bytes out", justify="right"),
            Column("bytes in", justify="right"),
            Column("denied", justify="right"),
            Column("DNS (denied)", justify="right"),
            Column("flagged", justify="right"),
        ],
        rows,
        title="Per destination host (most bytes sent first)",
    )
    if len(report["hosts"]) > top_hosts:
        out.line(f"  ... and {len(report['hosts']) - top_hosts} more hosts (--json lists them all)")
    out.line()
    flagged, findings = report["flagged"], report["findings"]
    if lines := canary_lines(report):
        out.line(
            "Canaries: the command sent decoy credentials out (audit.canaries); the run was stopped:",
            "bold red",
        )
        for line in lines:
            out.line(f"  {safe_text(line)}", "bold red")
        out.line()
    if uses := credential_lines(report):
        out.line("Masked credentials (docs/credentials.md):", "bold")
        for line, warning in uses:
            out.line(f"  {safe_text(line)}", "bold red" if warning else None)
        out.line()
    if flagged or findings:
        out.line(flagged_summary(report), "bold red")
    elif not misdirected(report):  # a misdirected placeholder is flagged above, with the credentials
        out.line(
            "Flagged: nothing. No large upload, encoded data, DNS-tunnel pattern or secret was seen.", "green"
        )
    for finding in findings:
        examples = ", ".join(safe_text(e) for e in finding["examples"])
        out.line(f"Pattern across the run, {finding['kind']}: {safe_text(finding['detail'])}", "bold red")
        out.line(f"  e.g. {examples}")
    if flagged:
        out.line(f"Flagged flows ({report['totals']['flagged_flows']}):", "bold")
        for f in flagged:
            where, path = flagged_target(f)
            out.styled(
                [
                    (f"  {str(f.get('ts') or '')[11:23]}  ", None),
                    (f"{f.get('method') or '-'} {safe_text(where)}{safe_text(path)}", "bold"),
                    (f"  [{f.get('verdict')}, {human_bytes(int(f.get('bytes_out') or 0))} out]", None),
                ]
            )
            for fl in f["flags"]:
                out.styled(
                    [
                        ("      ", None),
                        (f"{safe_text(fl.get('kind'))}: ", "yellow"),
                        (safe_text(fl.get("detail")), None),
                    ]
                )
        if report["flagged_omitted"]:
            out.line(
                f"  ... {report['flagged_omitted']} more flagged flows (netjail flows --flagged lists them)"
            )
    if report["secrets_checked"]:
        out.line()
        out.line(
            "Secrets looked for (values never shown): "
            + ", ".join(safe_text(n) for n in report["secrets_checked"])
        )
    for problem in report.get("secrets_not_checked") or []:
        out.line(f"Not looked for during the run: {safe_text(problem)}", "bold red")
    if report["records_without_flags"]:
        out.line(
            f"Note: {report['records_without_flags']} records carry no proxy flags (written without netjail's "
            "detectors); for those only the URL and the size were checked, not bodies or headers."
        )
    if flagged or findings:
        out.line()
        out.line("What the flags mean:", "bold")
        for kind in sorted(report["flag_kinds"]):
            out.line(f"  {kind}: {KIND_MEANING.get(kind, '')}")


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(public(report), indent=2, ensure_ascii=True)
