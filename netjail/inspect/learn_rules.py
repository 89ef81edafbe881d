"""`netjail learn --rules`: besides the hosts, propose request rules (network.rules) from what the learning run
sent — per host, the methods it used and the narrowest path glob that covers their paths, then deny the rest.

Per host and method, the paths' longest common leading segments become the glob: one path is kept exact, several
become `/common/**` (`/**` when they share nothing). Methods whose globs are equal share an entry. No rule is
proposed for a host the base settings already give rules, for one that carried raw TCP (rules would refuse it)
or one whose requests were never seen (TLS not terminated). A glob netjail would refuse (an encoded slash, a `*`
in a path) is shortened to the segments before it. The result is what was used, not what is safe: a `POST` the
run made is allowed afterwards too, so read the diff.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from netjail.records.schema import FlowRecord, is_flow


def propose_rules(
    records: Iterable[FlowRecord], already: set[str] | frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """network.rules entries for the hosts the flows reached, in the order first seen."""
    paths: dict[str, dict[str, set[str]]] = {}  # host -> method -> paths
    opaque: set[str] = set()
    for record in records:
        if not is_flow(record) or record.get("verdict") != "allow":
            continue
        host = str(record.get("host") or "")
        method, path = record.get("method"), record.get("path")
        if not host or host in already:
            continue
        if record.get("scheme") == "tcp" or method is None:
            opaque.add(host)
            continue
        if method == "CONNECT" or not path:
            continue
        paths.setdefault(host, {}).setdefault(method.upper(), set()).add(path.split("?", 1)[0] or "/")
    proposed = []
    for host, by_method in paths.items():
        if host in opaque:
            continue
        globs: dict[str, list[str]] = {}
        for method, seen in sorted(by_method.items()):
            globs.setdefault(path_glob(sorted(seen)), []).append(method)
        requests = [{"allow": methods, "path": glob} for glob, methods in sorted(globs.items())]
        proposed.append({"hosts": [host], "requests": requests, "default": "deny"})
    return proposed


def path_glob(paths: list[str]) -> str:
    """The narrowest glob netjail accepts that covers every one of `paths`."""
    from netjail.settings.errors import Problem
    from netjail.settings.rules import check_path_glob

    split = [p.strip("/").split("/") if p.strip("/") else [] for p in paths]
    common: list[str] = []
    for parts in zip(*split, strict=False):
        if len(set(parts)) != 1 or "*" in parts[0]:  # a '*' in a path would be a wildcard in the glob
            break
        common.append(parts[0])
    exact = len(set(paths)) == 1 and len(common) == len(split[0])
    while True:
        glob = "/" + "/".join(common) if exact else "/" + "/".join([*common, "**"])
        try:
            check_path_glob(glob)
            return glob
        except (Problem, ValueError):
            if not common:
                return "/**"
            common.pop()
            exact = False


def with_learned_rules(data: dict[str, Any], records: Iterable[FlowRecord]) -> dict[str, Any]:
    """The learned settings with the proposed rules appended to network.rules (existing rule sets kept)."""
    network = data.setdefault("network", {})
    existing = list(network.get("rules") or [])
    covered = {h for block in existing if isinstance(block, dict) for h in block.get("hosts") or []}
    proposed = propose_rules(records, covered)
    if proposed:
        network["rules"] = existing + proposed
    return data
