"""The audit's view of masked credentials (docs/credentials.md): where each was injected, and every sighting of its
placeholder toward a host it is not for — an attempt to move the credential, refused by the proxy and flagged here.
From the flow records' `credentials` field, which names credentials and places, never a value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Use:
    credential: str
    host: str
    kind: str  # injected | placeholder_left
    count: int = 0  # injections (for injected) or requests (for placeholder_left)
    requests: int = 0
    where: list[str] = field(default_factory=list)
    refused: int = 0


class CredentialUses:
    """Per credential, host and kind: how often and where, summed over a run's flow records."""

    def __init__(self) -> None:
        self._uses: dict[tuple[str, str, str], _Use] = {}

    def add(self, record: Mapping[str, Any]) -> None:
        carried = record.get("credentials")
        if not isinstance(carried, dict):
            return
        host = str(record.get("host") or "?")
        refused = record.get("verdict") == "deny"
        for kind in ("injected", "placeholder_left"):
            for entry in carried.get(kind) or []:
                if not isinstance(entry, dict):
                    continue
                name = str(entry.get("credential"))
                use = self._uses.setdefault((name, host, kind), _Use(name, host, kind))
                use.requests += 1
                use.count += int(entry.get("count") or 1) if kind == "injected" else 1
                use.refused += refused
                for place in entry.get("where") or []:
                    if str(place) not in use.where:
                        use.where.append(str(place))

    def as_json(self) -> list[dict[str, Any]]:
        return [
            {"credential": u.credential, "host": u.host, "kind": u.kind, "requests": u.requests, "count": u.count,
             "where": u.where, "refused": u.refused}
            for u in sorted(self._uses.values(), key=lambda u: (u.kind != "placeholder_left", u.credential, u.host))
        ]  # fmt: skip


def misdirected(report: Mapping[str, Any]) -> int:
    """Requests that carried a placeholder toward a host it is not for: flagged, and `audit --check` fails."""
    return sum(u["requests"] for u in report.get("credentials") or [] if u["kind"] == "placeholder_left")


def credential_lines(report: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """One line per credential and host, and whether it is a warning (a placeholder sent where it does not go)."""
    lines = []
    for u in report.get("credentials") or []:
        where = ", ".join(u["where"]) or "the request"
        if u["kind"] == "injected":
            times = f"{u['count']}× in {u['requests']} request{'s' if u['requests'] != 1 else ''}"
            lines.append((f"{u['credential']}: injected at {u['host']}, {times} ({where})", False))
        else:
            state = (
                "refused" if u["refused"] == u["requests"] else f"{u['refused']} of {u['requests']} refused"
            )
            lines.append(
                (f"{u['credential']}: its placeholder was sent toward {u['host']} ({where}), which it is not for: "
                 f"{state}", True)
            )  # fmt: skip
    return lines
