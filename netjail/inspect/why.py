"""`netjail why`: a failed run's network problems, grouped, each with its meaning and the settings change
that fixes it (a JSON snippet and the file it goes in). Recognises pip, npm and git from their requests
(netjail/inspect/clients.py) and says what they were fetching. This is the diagnosis, as data (`--json`);
netjail/inspect/why_render.py writes it for a person."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from netjail.detect.flags import BurstCounter, host_flags
from netjail.inspect.clients import tool_of, what_of
from netjail.inspect.fs_hints import NOT_OBSERVABLE, WriteHints, write_hints
from netjail.net.suffixes import registrable_domain
from netjail.records.derived import bracketed, failed_upstream, http_error, is_failed
from netjail.records.read import first_run_start
from netjail.records.rundir import RunDir
from netjail.records.runs import flow_records, run_info, run_secrets
from netjail.records.schema import DnsRecord, DroppedRecord, FlowRecord, RefusedWrite, RunStart

EXAMPLES = 3
WHAT_KEPT = 8

# ---------------------------------------------------------------------------------------------------------
# Meanings and fixes
# ---------------------------------------------------------------------------------------------------------

BLOCK_MEANING = {
    "not_allowed": "the host is not in network.allowedDomains, and netjail denies whatever is not allowed",
    "port_not_allowed": "network.allowedDomains names this host only with another port",
    "log_failed": "the flow log could not be written (disk full?), so netjail stopped all egress",
    "denied_by_rule": "a network.deniedDomains entry denies it (deny wins over allow)",
    "denied_by_request_rule": "the host is allowed, but a network.rules entry (or its rule set's default) denies this method and path",
    "ambiguous_path": "the path is ambiguous (encoded slash, dot segment, ';' ...), so network.rules cannot judge it",
    "opaque_tunnel": "the connection is not HTTP, and only HTTP may pass here (request rules, or refuseOpaqueTunnels)",
    "tunnel_limit": "network.tlsTerminate.maxTunnels tunnels were already open",
    "ip_literal": "the client asked for an IP address; name rules never match addresses",
    "private_destination": "the name resolves to a local or private address, which netjail never dials unless told",
    "host_mismatch": "domain fronting: the Host header named another host than the one connected to",
    "sni_mismatch": "domain fronting: the TLS SNI named another host than the one connected to",
    "invalid_host": "the host name is malformed (netjail refuses names no resolver should see)",
    "policy_error": "netjail could not judge the request and denied it (a netjail bug: please report it)",
}
FAILURE_MEANING = {
    "dns": "the name did not resolve from netjail's host: a typo, a name that only exists on another network, "
    "or DNS unreachable",
    "tls_verify": "the server's certificate did not verify against the host's CA roots (plus extraCaCertPaths): "
    "a corporate or self-signed CA",
    "client_tls": "the client inside the jail rejected netjail's certificate: it uses its own CA bundle or pins "
    "certificates",
    "refused": "the server refused the connection: nothing listens on that port (not a netjail rule)",
    "timeout": "the server did not answer in time (not a netjail rule)",
    "client_aborted": "the client gave up on the request",
    "other": "the upstream connection failed",
}
HTTP_MEANING = {
    401: "the server wants credentials; netjail passes no environment variable the settings do not list in "
    "envPassthrough, and hides denyRead files",
    403: "the server (not netjail) refused: credentials or permissions",
    404: "not found on that server: a wrong index URL, package name or version",
    407: "a proxy wants credentials",
    429: "rate limited by the server",
}


@dataclass
class Group:
    key: tuple[str, ...]
    host: str
    count: int = 0
    examples: list[str] = field(default_factory=list)
    tools: Counter[str] = field(default_factory=Counter)
    fetching: list[str] = field(default_factory=list)
    tunnels: int = 0
    after: str | None = None  # for a refused tunnel: what the same client had fetched just before
    detail: str | None = None
    rule: str | None = None
    error: str | None = None
    port: int | None = None

    def add(self, record: FlowRecord, tool: str | None, what: str | None, after: str | None = None) -> None:
        self._add(
            str(record.get("url") or ""),
            record.get("method") == "CONNECT",
            record.get("detail"),
            record.get("rule"),
            record.get("error"),
            tool,
            what,
            after,
        )
        port = record.get("port")
        self.port = self.port or (port if isinstance(port, int) else None)

    def add_dns(self, record: DnsRecord, tool: str | None, after: str | None) -> None:
        """A name the jail's resolver refused: the client never got as far as connecting (counted as a tunnel)."""
        self._add(f"dns:{record.get('name') or '?'}", True, None, record.get("rule"), None, tool, None, after)

    def _add(
        self,
        url: str,
        tunnel: bool,
        detail: str | None,
        rule: str | None,
        error: str | None,
        tool: str | None,
        what: str | None,
        after: str | None,
    ) -> None:
        self.count += 1
        self.after = self.after or after
        self.tunnels += tunnel
        if url and url not in self.examples and len(self.examples) < EXAMPLES:
            self.examples.append(url)
        if tool:
            self.tools[tool] += 1
        if what and what not in self.fetching and len(self.fetching) < WHAT_KEPT:
            self.fetching.append(what)
        self.detail = self.detail or detail
        self.rule = self.rule or rule
        self.error = self.error or error


def _settings_file(run: RunDir, start: RunStart | None) -> tuple[str, dict[str, Any] | None, str | None]:
    """The settings file the run used, its JSON (as the user wrote it), and a note when it is the bundled one."""
    path = start.get("settings_file") if start else None
    note = None
    if (start and start.get("settings_origin") == "bundled") or not path:
        note = (
            "the run used netjail's bundled default settings: put the change in ~/.config/netjail/settings.json "
            "(used by default) or a file you pass with -s"
        )
    data = None
    if path:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
    if data is None:
        try:
            data = json.loads(run.settings_json.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
    return str(path or run.settings_json), data if isinstance(data, dict) else None, note


def _allowed_after(data: dict[str, Any] | None, add: list[str]) -> list[str]:
    current = list(((data or {}).get("network") or {}).get("allowedDomains") or [])
    return current + [h for h in add if h not in current]


def diagnose(run: RunDir) -> dict[str, Any]:
    info = run_info(run.path, with_size=False)
    start = first_run_start(run.flows_jsonl)
    blocked: dict[tuple[str, ...], Group] = {}
    failures: dict[tuple[str, ...], Group] = {}
    http_errors: dict[tuple[str, ...], Group] = {}
    would_deny: dict[str, Group] = {}
    tools: dict[str, dict[str, Any]] = {}
    last_tool: str | None = None
    last_fetched: dict[str, str] = {}
    totals: Counter[str] = Counter()
    dropped: list[DroppedRecord] = []
    refused: list[RefusedWrite] = []
    incomplete = 0
    for record in flow_records(run, run_secrets(run), events=("flow", "dns", "dropped", "refused_write")):
        if record["event"] == "dropped":
            dropped.append(record)
            continue
        if cast(dict, record).get("event") == "refused_write":
            refused.append(cast(RefusedWrite, record))
            continue
        incomplete += 1 if record.get("incomplete") else 0
        if record["event"] == "dns":
            # the jail's resolver refused the name: the client never got as far as connecting
            if record.get("verdict") == "deny":
                name = str(record.get("name") or "?")
                key = (name, str(record.get("reason")), str(record.get("rule")))
                blocked.setdefault(key, Group(key, name)).add_dns(
                    record, last_tool, last_fetched.get(last_tool or "")
                )
            continue
        totals["flows"] += 1
        host = str(record.get("host") or "?")
        tool = tool_of(record)
        inferred = False
        if tool is None and record.get("method") == "CONNECT":
            tool, inferred = last_tool, True  # a refused tunnel shows no request: the client seen just before
        what = what_of(tool, record)
        after = (
            last_fetched.get(tool) if tool and what is None and record.get("method") == "CONNECT" else None
        )
        if tool and what and not inferred:
            last_fetched[tool] = what
        if tool and not inferred:
            last_tool = tool
            seen = tools.setdefault(
                tool, {"tool": tool, "requests": 0, "hosts": [], "fetched": [], "failed": []}
            )
            seen["requests"] += 1
            if host not in seen["hosts"]:
                seen["hosts"].append(host)
        reason = record.get("reason")
        if tool and what and not inferred:
            bucket = "fetched" if record.get("verdict") == "allow" and not is_failed(record) else "failed"
            if what not in tools[tool][bucket] and len(tools[tool][bucket]) < WHAT_KEPT:
                tools[tool][bucket].append(what)
        if record.get("verdict") == "deny":
            key = (host, str(reason), str(record.get("rule")))
            blocked.setdefault(key, Group(key, host)).add(record, tool, what, after)
        elif failed_upstream(record):
            kind = "client_tls" if reason == "client_tls_failed" else str(record.get("error_kind") or "other")
            failure_key = (kind, host)
            failures.setdefault(failure_key, Group(failure_key, host)).add(record, tool, what, after)
        elif reason == "would_deny":
            would_deny.setdefault(host, Group((host,), host)).add(record, tool, what)
        if http_error(record) and reason != "upstream_error":
            error_key = (host, str(record.get("status")))
            http_errors.setdefault(error_key, Group(error_key, host)).add(record, tool, what)

    file, data, note = _settings_file(run, start)
    blocked_out = [_blocked_entry(g, file) for g in blocked.values()]
    left_out = _leave_out_flagged(blocked_out, list(blocked.values()))
    to_allow = _name_presets(blocked_out, start)
    combined: dict[str, Any] | None = None
    if to_allow:
        combined = {
            "file": file,
            "snippet": {"network": {"allowedDomains": _allowed_after(data, to_allow)}},
            "adds": to_allow,
        }
    writes = write_hints(refused)
    if writes.proposals:
        combined = combined or {"file": file, "snippet": {}, "adds": []}
        combined["snippet"]["filesystem"] = {"allowWrite": _writable_after(data, writes.proposals)}
        combined["adds"] += writes.proposals
    return {
        "run": {
            "run_id": info.run_id,
            "path": str(run.path),
            "command": start.get("command") if start else None,
            "exit_status": info.exit_status,
            "end_reason": info.end_reason,
            "network_mode": info.network_mode,
            "settings_file": file,
            "flows": totals["flows"],
            "incomplete": incomplete,
        },
        "dropped": [_dropped_entry(r) for r in dropped],
        "settings_note": note,
        "blocked": blocked_out,
        "failures": [_failure_entry(g, file) for g in failures.values()],
        "http_errors": [_http_entry(g) for g in http_errors.values()],
        "would_deny": [
            {"host": g.host, "count": g.count, "examples": g.examples, "fetching": g.fetching}
            for g in would_deny.values()
        ],
        "clients": list(tools.values()),
        "fix": combined,
        "not_proposed": left_out,
        "refused_writes": _refused_writes_entry(writes),
    }


def _writable_after(data: dict[str, Any] | None, add: list[str]) -> list[str]:
    fs = (data or {}).get("filesystem")
    current = fs.get("allowWrite") if isinstance(fs, dict) else None
    entries = [e for e in current if isinstance(e, str)] if isinstance(current, list) else []
    return list(dict.fromkeys([*entries, *add]))


def _refused_writes_entry(writes: WriteHints) -> dict[str, Any] | None:
    if not writes:
        return None
    return {
        "total": writes.total,
        "paths": [
            {
                "path": h.path,
                "count": h.count,
                "ops": h.ops,
                "programs": h.programs,
                "cause": h.cause,
                "entry": h.entry,
                "allow_write": h.proposal,
                "create_first": h.create_first,
                "because": h.because,
            }
            for h in writes.hints
        ],
        "more_paths": writes.more_paths,
        "allow_write": writes.proposals,
        "not_observed": NOT_OBSERVABLE,
    }


def _leave_out_flagged(blocked_out: list[dict[str, Any]], groups: list[Group]) -> list[dict[str, str]]:
    """Names the audit would flag as exfiltration (a long encoded label, one of a burst of names under one
    domain) are never proposed: allowing them would open the tunnel. Returns what was left out, and why."""
    bursts = BurstCounter()
    for group in groups:
        bursts.add(group.host)
    burst_domains = {f["domain"] for f in bursts.findings()}
    left: list[dict[str, str]] = []
    for entry in blocked_out:
        host = entry["host"]
        why = None
        if flags := host_flags(host):
            why = flags[0]["detail"]
        elif (domain := registrable_domain(host)) in burst_domains:
            why = f"one of many distinct names under {domain} in this run: a DNS-tunnel pattern"
        if why and entry.pop("allow_entry", None) is not None:
            entry["fix"] = None
            entry["not_proposed"] = why
            left.append({"host": host, "why": why})
    return left


def _name_presets(blocked_out: list[dict[str, Any]], start: RunStart | None) -> list[str]:
    """The entries to add, with a preset named where its hosts were blocked (`@pip` brings the index and the
    file host in one change), grouped by registrable domain."""
    from netjail.settings.presets import presets_covering

    entries = [b["allow_entry"] for b in blocked_out if b.get("allow_entry")]
    if not entries:
        return []
    cwd = Path(str(start.get("cwd"))) if start and start.get("cwd") else None
    covering = presets_covering(entries, cwd=cwd if cwd and cwd.is_dir() else None)
    out: list[str] = []
    for entry in sorted(entries, key=lambda e: (registrable_domain(e.split(":")[0].strip("[]")) or e, e)):
        named = covering.get(entry.lower(), entry)
        if named not in out:
            out.append(named)
    for b in blocked_out:
        if (preset := covering.get(str(b.get("allow_entry", "")).lower())) is not None:
            b["preset"] = preset
            b["fix"] = {
                "file": b["fix"]["file"] if b.get("fix") else None,
                "change": f"add {preset!r} to network.allowedDomains (its hosts: this one and the rest the tool needs)",
                "snippet": {"network": {"allowedDomains": [preset]}},
            }
    return out


DROPPED_MEANING = (
    "netjail carries TCP (HTTP, HTTPS, other TCP) and DNS; the jail's network drops every other packet "
    "(UDP such as QUIC, ICMP such as ping) and counts it here. Clients fall back to TCP; nothing in the settings "
    "lets these through"
)


def _dropped_entry(record: DroppedRecord) -> dict[str, Any]:
    host, port = record.get("host"), record.get("port")
    target = (
        "destinations beyond the counted ones"
        if host is None
        else (
            f"[{host}]:{port}"
            if ":" in str(host) and port is not None
            else f"{host}:{port}"
            if port is not None
            else str(host)
        )
    )
    return {
        "protocol": record.get("protocol"),
        "target": target,
        "packets": record.get("packets"),
        "meaning": DROPPED_MEANING,
        "error": record.get("error"),
    }


def _tool_sentence(group: Group) -> str | None:
    if not group.tools:
        return None
    tool = group.tools.most_common(1)[0][0]
    if group.fetching:
        return f"{tool} was fetching " + "; ".join(group.fetching)
    if group.tunnels == group.count and group.tunnels and group.after:
        return (
            f"{tool} was connecting to {group.host} right after it fetched {group.after} (refused before any "
            "request was sent, so the URL is not known; a package index links its files on such a host)"
            if tool in ("pip", "uv", "poetry", "npm", "yarn", "pnpm")
            else f"{tool} was connecting to {group.host} right after it fetched {group.after}"
        )
    if group.tunnels == group.count and group.tunnels:
        return (
            f"{tool} was connecting to {group.host} (refused before any request was sent, so the URL is not "
            "known)"
        )
    return None


def _blocked_entry(group: Group, file: str) -> dict[str, Any]:
    host, reason, rule = group.key
    entry: dict[str, Any] = {
        "host": host,
        "reason": reason,
        "rule": rule,
        "count": group.count,
        "examples": group.examples,
        "meaning": BLOCK_MEANING.get(reason, reason),
        "client": _tool_sentence(group),
        "detail": group.detail,
    }
    fix: dict[str, Any] | None = None
    if reason == "port_not_allowed" and group.port is not None:
        entry["allow_entry"] = f"{bracketed(host)}:{group.port}"
        fix = {
            "file": file,
            "change": f"add {entry['allow_entry']!r} to network.allowedDomains",
            "snippet": {"network": {"allowedDomains": [entry["allow_entry"]]}},
        }
    elif reason in ("not_allowed", "ip_literal"):
        entry["allow_entry"] = bracketed(host)
        fix = {
            "file": file,
            "change": f"add {bracketed(host)!r} to network.allowedDomains",
            "snippet": {"network": {"allowedDomains": [bracketed(host)]}},
        }
    elif reason == "denied_by_rule":
        fix = {
            "file": file,
            "change": f"remove {rule!r} from network.deniedDomains (and allow {host} in network.allowedDomains)",
            "snippet": None,
        }
    elif reason == "private_destination":
        fix = {
            "file": file,
            "change": f"only if {host} is meant to be local: pin it in network.hosts (it may then point anywhere)",
            "snippet": {"network": {"hosts": {host: "ADDRESS"}}},
        }
    elif reason in ("host_mismatch", "sni_mismatch"):
        fix = {
            "file": None,
            "change": "none in the settings: the client must name the host it connects to",
            "snippet": None,
        }
    entry["fix"] = fix
    return entry


def _failure_entry(group: Group, file: str) -> dict[str, Any]:
    kind, host = group.key
    fix: dict[str, Any] | None = None
    if kind == "dns":
        fix = {
            "file": file,
            "change": f"netjail allowed {host}, and this machine could not resolve it: check its network and DNS "
            f"first (is it offline? `netjail doctor`), and the name's spelling; only if {host} is internal, pin it "
            "(network.hosts) or name your DNS server (network.resolver)",
            "snippet": {"network": {"hosts": {host: "ADDRESS"}}},
        }
    elif kind == "tls_verify":
        fix = {
            "file": file,
            "change": "add the PEM file of the CA that signed the server's certificate",
            "snippet": {"network": {"tlsTerminate": {"extraCaCertPaths": ["/path/to/ca.pem"]}}},
        }
    elif kind == "client_tls":
        fix = {
            "file": file,
            "change": "point the client at /run/netjail/ca-bundle.pem (NODE_EXTRA_CA_CERTS, PIP_CERT, "
            f"REQUESTS_CA_BUNDLE, GIT_SSL_CAINFO are set to it); if it pins certificates, exclude {host} from "
            "TLS interception",
            "snippet": {"network": {"tlsTerminate": {"excludeDomains": [host]}}},
        }
    return {
        "kind": kind,
        "host": host,
        "count": group.count,
        "examples": group.examples,
        "error": group.error,
        "meaning": FAILURE_MEANING.get(kind, FAILURE_MEANING["other"]),
        "client": _tool_sentence(group),
        "fix": fix,
    }


def _http_entry(group: Group) -> dict[str, Any]:
    host, status = group.key
    code = int(status)
    meaning = HTTP_MEANING.get(code) or (
        "a server error" if code >= 500 else "the server refused the request"
    )
    return {
        "host": host,
        "status": code,
        "count": group.count,
        "examples": group.examples,
        "meaning": meaning + " (the request passed netjail)",
        "client": _tool_sentence(group),
    }
