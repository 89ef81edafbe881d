"""`netjail learn`: run a command with network.mode "audit", then write the smallest settings file that would
have allowed exactly what it used, and show the diff against the base settings.

Learned entries are exact host names; several (WILDCARD_MIN) subdomains of one parent become `*.parent`,
unless the parent is a shared (multi-tenant) domain where a wildcard would admit anyone's site. Hosts that
stayed denied during learning (deniedDomains, IP literals, local ranges, fronting) are listed, never learned.
The filesystem is learned from the writes the jail refused: the allowWrite entries `netjail/inspect/fs_hints.py`
proposes (writes cannot be let through while learning, so a tool that stops at its first refusal needs a run
per missing path).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import json
import shlex
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from netjail.inspect.fs_hints import WriteHints, write_hints
from netjail.net.suffixes import is_shared_parent, registrable_domain
from netjail.records.schema import DnsRecord, FlowRecord, RefusedWrite, is_dns, is_flow
from netjail.utils.status import ExitStatus
from netjail.utils.text import safe_text

WILDCARD_MIN = 3


@dataclass
class Learned:
    new_entries: list[str] = field(default_factory=list)  # entries to add (exact hosts or *.parent)
    new_hosts: list[str] = field(default_factory=list)  # the hosts they cover
    base_rules_used: list[str] = field(default_factory=list)  # allowedDomains entries (expanded) that matched
    still_denied: list[dict[str, Any]] = field(default_factory=list)  # host, reason, rule, count
    shared_parents: list[str] = field(default_factory=list)  # where a wildcard was withheld


def learn_from_records(
    records: Iterable[FlowRecord | DnsRecord], *, wildcard_min: int = WILDCARD_MIN
) -> Learned:
    new_hosts: dict[str, None] = {}
    used_rules: dict[str, None] = {}
    denied: dict[tuple[str, str, str], int] = {}
    for record in records:
        if is_dns(record):  # the jail resolver's answer: a name the command needed
            if record.get("reason") == "would_deny" and record.get("name"):
                new_hosts.setdefault(str(record["name"]))
            continue
        if not is_flow(record):
            continue
        host = str(record.get("host") or "")
        if record.get("verdict") == "allow":
            if record.get("reason") == "would_deny" and record.get("rule") not in (None, "default-deny"):
                continue  # a request rule's (network.rules) on an allowed host: no domain to propose
            # would_deny; or, when the upstream then failed, the recorder's upstream_error with the
            # default-deny rule (an allowed flow has that rule only in audit mode)
            if record.get("reason") == "would_deny" or record.get("rule") == "default-deny":
                new_hosts.setdefault(host)
            elif record.get("rule"):
                used_rules.setdefault(str(record["rule"]))
        else:
            key = (host, str(record.get("reason")), str(record.get("rule")))
            denied[key] = denied.get(key, 0) + 1
    learned = Learned(new_hosts=list(new_hosts), base_rules_used=list(used_rules))
    by_parent: dict[str, list[str]] = {}
    for host in new_hosts:
        parent = registrable_domain(host, private=False)  # a hosting provider's customers, under its name
        if parent and host != parent:
            by_parent.setdefault(parent, []).append(host)
    wildcards: dict[str, str] = {}
    for parent, hosts in by_parent.items():
        if len(hosts) < wildcard_min:
            continue
        if is_shared_parent(parent):
            learned.shared_parents.append(parent)
            continue
        if _valid_wildcard(parent):
            for host in hosts:
                wildcards[host] = f"*.{parent}"
    entries: dict[str, None] = {}
    for host in new_hosts:
        entries.setdefault(wildcards.get(host) or (f"[{host}]" if ":" in host else host))
    learned.new_entries = sorted(entries, key=_by_domain)
    learned.still_denied = [
        {"host": h, "reason": r, "rule": rule, "count": n} for (h, r, rule), n in denied.items()
    ]
    return learned


def _by_domain(entry: str) -> tuple[tuple[str, ...], bool]:
    """Sorted as a reader groups them: by domain from the right, a wildcard after its apex."""
    return tuple(reversed(entry.removeprefix("*.").split("."))), entry.startswith("*.")


def _valid_wildcard(parent: str) -> bool:
    from netjail.net.domains import PatternError, parse_pattern

    try:
        parse_pattern(f"*.{parent}")
    except PatternError:
        return False
    return True


def learned_settings(
    base: dict[str, Any], learned: Learned, expansions: dict[str, list[str]], *, keep_unused: bool = False
) -> dict[str, Any]:
    """BASE as written, with network.allowedDomains = BASE's entries that were used (a preset counts as used
    when one of its hosts was) + the learned entries, and network.mode removed (enforce)."""
    data = json.loads(json.dumps(base))
    network = data.setdefault("network", {})
    used = set(learned.base_rules_used)
    kept: list[Any] = []
    for entry in network.get("allowedDomains") or []:
        if keep_unused:
            kept.append(entry)
        elif isinstance(entry, str) and entry.startswith("@"):
            if used & set(expansions.get(entry, [])):
                kept.append(entry)
        elif entry in used:
            kept.append(entry)
    network["allowedDomains"] = kept + [e for e in learned.new_entries if e not in kept]
    network.setdefault("deniedDomains", [])
    network.pop("mode", None)
    return data


def learned_writes(flows_jsonl: Path) -> WriteHints:
    """The run's refused writes, with the allowWrite entries that would let them through (inspect/fs_hints.py)."""
    from netjail.records.read import iter_records

    refused = [r for r in iter_records(flows_jsonl) if r.get("event") == "refused_write"]
    return write_hints(cast("list[RefusedWrite]", refused))


def with_allow_write(data: dict[str, Any], add: list[str]) -> dict[str, Any]:
    """DATA with filesystem.allowWrite extended by ADD (entries already there kept, in their order)."""
    if not add:
        return data
    fs = data.setdefault("filesystem", {})
    current = fs.get("allowWrite") if isinstance(fs.get("allowWrite"), list) else []
    fs["allowWrite"] = list(dict.fromkeys([*current, *add]))
    return data


def dump(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def diff(base: dict[str, Any], new: dict[str, Any], base_name: str, new_name: str) -> str:
    return "".join(
        difflib.unified_diff(dump(base).splitlines(True), dump(new).splitlines(True), base_name, new_name)
    )


# ---------------------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------------------


def run_learn(
    settings_path: Path | None,
    output: Path | None,
    command: str | None,
    argv: tuple[str, ...],
    *,
    debug: bool = False,
    keep_unused: bool = False,
    as_json: bool = False,
    rules: bool = False,
) -> int:
    import click

    from netjail.jail.spec import JailError
    from netjail.records.rundir import RunDir
    from netjail.records.runs import flow_records
    from netjail.run.runner import command_argv
    from netjail.run.runner import run as run_jailed
    from netjail.settings import SettingsError, find_settings_path, load_settings
    from netjail.utils import logs

    def fail(message: str) -> int:
        click.echo(f"netjail: {safe_text(message)}", err=True)
        return ExitStatus.NETJAIL_FAILED

    logs.configure(debug)
    try:
        path, origin = find_settings_path(settings_path)
        loaded = load_settings(path, origin=origin)
        base = json.loads(path.read_text(encoding="utf-8"))
    except SettingsError as e:
        return fail(str(e))
    except (OSError, ValueError) as e:
        return fail(f"cannot read {path}: {e}")
    for warning in loaded.warnings:
        click.echo(f"netjail: warning: {warning}", err=True)
    network = loaded.settings.network.model_copy(update={"mode": "audit"})
    audit_loaded = dataclasses.replace(
        loaded, settings=loaded.settings.model_copy(update={"network": network})
    )
    display = command if command is not None else " ".join(argv)
    kwargs: dict[str, Any] = {"debug": debug, "display_command": display}
    if "warn" in inspect.signature(run_jailed).parameters:
        kwargs["warn"] = lambda message: click.echo(f"netjail: warning: {message}", err=True)
    try:
        outcome = run_jailed(audit_loaded, command_argv(command, argv), **kwargs)
    except (JailError, OSError) as e:
        return fail(str(e))
    if outcome.message:
        click.echo(f"netjail: {outcome.message}", err=True)
    if outcome.run_dir is None or outcome.reason in ("proxy_failed", "log_failed", "setup_failed"):
        return fail("netjail itself failed during the learning run; nothing was learned")
    run = RunDir(outcome.run_dir)
    learned = learn_from_records(flow_records(run, events=("flow", "dns")))
    new = learned_settings(base, learned, loaded.expansions, keep_unused=keep_unused)
    writes = learned_writes(run.flows_jsonl)
    new = with_allow_write(new, writes.proposals)
    if rules:  # method and path rules too (netjail/inspect/learn_rules.py)
        from netjail.inspect.learn_rules import with_learned_rules

        new = with_learned_rules(new, flow_records(run, events=("flow",)))
    target = output or run.path / "learned-settings.json"
    try:
        target.write_text(dump(new), encoding="utf-8")
    except OSError as e:
        return fail(f"cannot write {target}: {e.strerror or e}")
    patch = diff(base, new, str(path), str(target))
    if as_json:
        sys.stdout.write(
            json.dumps(
                {
                    "run_id": run.run_id,
                    "exit_status": outcome.exit_status,
                    "base": str(path),
                    "output": str(target),
                    "added": learned.new_entries,
                    "hosts": learned.new_hosts,
                    "base_rules_used": learned.base_rules_used,
                    "still_denied": learned.still_denied,
                    "wildcard_withheld_for_shared_parents": learned.shared_parents,
                    "allow_write_added": writes.proposals,
                    "writes_not_proposed": [
                        {"path": h.path, "because": h.because} for h in writes.hints if not h.proposal
                    ],
                    "settings": new,
                    "diff": patch,
                },
                indent=2,
                ensure_ascii=True,
            )
            + "\n"
        )
        return outcome.exit_status
    echo = click.echo
    echo("")
    echo(f"netjail learn: the command exited {outcome.exit_status}; run {run.run_id}")
    if learned.new_hosts:
        echo(
            f"  used {len(learned.new_hosts)} host(s) not in the base allow list: {', '.join(safe_text(h) for h in learned.new_hosts)}"
        )
    else:
        echo("  used no host beyond the base allow list")
    if learned.shared_parents:
        echo(
            f"  no wildcard for shared hosting domains: {', '.join(learned.shared_parents)} (exact hosts listed)"
        )
    for d in learned.still_denied:
        echo(
            f"  still denied (not learned): {safe_text(d['host'])} {d['count']}x {d['reason']} (rule {safe_text(d['rule'])})"
        )
    for hint in writes.hints:
        if hint.proposal:
            first = " (create it first)" if hint.create_first else ""
            echo(
                f"  was refused writes to {safe_text(hint.path)}: allowWrite {safe_text(hint.proposal)}{first}"
            )
        else:
            echo(f"  was refused writes to {safe_text(hint.path)} (not learned: {safe_text(hint.because)})")
    if writes.proposals:
        echo("  a tool that stops at its first refused write may need another learn run for the next path")
    if outcome.exit_status != 0:
        echo(
            "  the command failed: what it used until then is learned; check `netjail why` before relying on it"
        )
    echo(f"  wrote {target}")
    echo("")
    echo("\n".join(safe_text(line) for line in patch.splitlines()) if patch else f"(no change from {path})")
    echo(f"\nUse it: netjail -s {shlex.quote(str(target))} -c {shlex.quote(display)}")
    return outcome.exit_status
