"""`netjail why`, for a person: the diagnosis (netjail/inspect/why.py) as text, with the fixes to copy."""

from __future__ import annotations

import json
from typing import Any

from netjail.inspect.tables import Output
from netjail.inspect.why import DROPPED_MEANING
from netjail.utils.text import safe_text


def shorten(text: str, width: int = 240) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _snippet(value: Any) -> str:
    return safe_text(json.dumps(value))


def render(d: dict[str, Any], out: Output) -> None:
    run = d["run"]
    status = run.get("exit_status")
    out.line(
        f"Run {safe_text(run['run_id'])}"
        + (f": {safe_text(shorten(run['command']))}" if run.get("command") else ""),
        "bold",
    )
    out.line(
        f"  exit status {status if status is not None else '?'}; {run['flows']} requests; settings: "
        f"{safe_text(run['settings_file'])}"
    )
    problems = d["blocked"] or d["failures"] or d["http_errors"] or d.get("dropped")
    _render_refused_writes(out, d.get("refused_writes"))
    if not problems:
        out.line()
        if run["flows"] == 0:
            out.line(
                "No network request was made: if the command failed, its network was not the cause.", "green"
            )
        else:
            out.line(
                "Nothing was blocked and nothing failed upstream: the network was not the problem.", "green"
            )
    if d["blocked"]:
        out.line()
        hosts = len({b["host"] for b in d["blocked"]})
        out.line(f"Blocked by netjail ({hosts} host{'s' if hosts != 1 else ''}):", "bold red")
        for b in d["blocked"]:
            out.styled(
                [
                    ("  ✗ ", "red"),
                    (safe_text(b["host"]), "bold"),
                    (f"  {b['count']}× {b['reason']} (rule {safe_text(b['rule'])})", None),
                ]
            )
            out.line(f"      means: {b['meaning']}")
            if b.get("client"):
                out.line(f"      {safe_text(b['client'])}")
            for url in b["examples"]:
                out.line(f"      e.g. {safe_text(url)}", "dim")
            _render_fix(out, b.get("fix"))
            if b.get("not_proposed"):
                out.line(f"      not proposed: {safe_text(b['not_proposed'])}", "yellow")
    if d["failures"]:
        out.line()
        out.line("Failed upstream (allowed, but the connection did not work):", "bold magenta")
        for f in d["failures"]:
            out.styled(
                [("  ! ", "magenta"), (safe_text(f["host"]), "bold"), (f"  {f['count']}× {f['kind']}", None)]
            )
            out.line(f"      means: {f['meaning']}")
            if f.get("error"):
                out.line(f"      error: {safe_text(f['error'])}", "dim")
            if f.get("client"):
                out.line(f"      {safe_text(f['client'])}")
            _render_fix(out, f.get("fix"))
    if d["http_errors"]:
        out.line()
        out.line("HTTP errors from servers:", "bold")
        for h in d["http_errors"]:
            out.styled(
                [
                    ("  ", None),
                    (f"{h['status']} ", "red"),
                    (safe_text(h["host"]), "bold"),
                    (f"  {h['count']}×  {h['meaning']}", None),
                ]
            )
            if h.get("client"):
                out.line(f"      {safe_text(h['client'])}")
            for url in h["examples"]:
                out.line(f"      e.g. {safe_text(url)}", "dim")
    if d.get("dropped"):
        out.line()
        out.line("Dropped by the jail's network (not TCP or DNS):", "bold red")
        for p in d["dropped"]:
            if p.get("error"):
                out.line(f"  ? counting failed: {safe_text(p['error'])}", "red")
                continue
            shown = f" {p['packets']}× {p['protocol'] or 'packets'} to {safe_text(p['target'])}"
            out.styled([("  ✗", "red"), (shown, None)])
        out.line(f"      means: {DROPPED_MEANING}")
    if run.get("incomplete"):
        out.line()
        out.line(
            f"{run['incomplete']} flow{'s' if run['incomplete'] != 1 else ''} never ended: the proxy stopped while "
            "they were under way (see netjail flows; their bytes are unknown)",
            "bold yellow",
        )
    if d["would_deny"]:
        out.line()
        out.line('Would be blocked outside network.mode "audit":', "bold yellow")
        for w in d["would_deny"]:
            out.line(f"  {safe_text(w['host'])}  {w['count']}×")
    if d["clients"]:
        out.line()
        out.line("Clients recognised:", "bold")
        for c in d["clients"]:
            requests = f"{c['requests']} request{'s' if c['requests'] != 1 else ''}"
            out.line(f"  {c['tool']}: {requests} to {', '.join(safe_text(h) for h in c['hosts'])}")
            for what in c["fetched"]:
                out.line(f"      fetched {safe_text(what)}", "dim")
            for what in c["failed"]:
                out.line(f"      did not get {safe_text(what)}", "red")
    if d.get("fix"):
        fix = d["fix"]
        out.line()
        out.line(f"To allow everything that was blocked, set in {safe_text(fix['file'])}:", "bold green")
        out.line(f"  {_snippet(fix['snippet'])}", "green")
        if d.get("settings_note"):
            out.line(f"  ({d['settings_note']})")
        out.line(
            "  Review the hosts first; `netjail learn -c CMD` builds such a file from a whole run.", "dim"
        )
    if d.get("not_proposed"):
        names = ", ".join(safe_text(n["host"]) for n in d["not_proposed"][:5])
        more = f" and {len(d['not_proposed']) - 5} more" if len(d["not_proposed"]) > 5 else ""
        out.line(f"  Left out on purpose (the audit flags them as exfiltration): {names}{more}", "yellow")


def _render_refused_writes(out: Output, writes: dict[str, Any] | None) -> None:
    """The filesystem's part: the writes the jail refused, each with its rule and what would allow it."""
    if not writes:
        return
    out.line()
    paths = len(writes["paths"]) + writes["more_paths"]
    out.line(
        f"Writes refused by the jail ({writes['total']} to {paths} path{'s' if paths != 1 else ''}):",
        "bold red",
    )
    for p in writes["paths"][:20]:
        ops = ", ".join(f"{op} {n}×" for op, n in p["ops"].items())
        by = f" by {', '.join(safe_text(n) for n in p['programs'])}" if p["programs"] else ""
        out.styled([("  ✗ ", "red"), (safe_text(p["path"]), "bold"), (f"  {ops}{by}", None)])
        out.line(f"      means: {safe_text(p['because'])}")
        if p["allow_write"]:
            first = " (create it first: allowWrite names what exists)" if p["create_first"] else ""
            out.line(f"      fix: allowWrite {safe_text(p['allow_write'])}{first}", "green")
    if len(writes["paths"]) > 20 or writes["more_paths"]:
        out.line(f"  … and {paths - min(20, len(writes['paths']))} more paths (see --json)", "dim")
    out.line(f"  ({writes['not_observed']})", "dim")


def _render_fix(out: Output, fix: dict[str, Any] | None) -> None:
    if not fix:
        return
    where = f" in {safe_text(fix['file'])}" if fix.get("file") else ""
    out.line(f"      fix{where}: {safe_text(fix['change'])}", "green")
    if fix.get("snippet") is not None:
        out.line(f"        {_snippet(fix['snippet'])}", "green")
