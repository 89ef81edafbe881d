"""`netjail check URL`: the decision the proxy would make for one request, and the rule that made it, from the
settings file alone (no proxy, no jail, no DNS lookup). Also meant for an agent inside or outside a jail that
wants to know before it tries: nothing here talks to a running proxy.

The same `Policy` the proxy addon builds judges, in the addon's order: the host (deny list, allow list, port),
the address when `network.hosts` pins one, then the request rules on method and path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from netjail.policy.decision import Policy, Verdict
from netjail.settings import LoadedSettings

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


class BadURL(ValueError):
    """The message says what is wrong with the URL and how to write it."""


@dataclass(frozen=True)
class Request:
    scheme: str
    host: str
    port: int
    target: str  # origin-form: path and query, as a client sends them


def parse_url(url: str) -> Request:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise BadURL(f"{url!r} is not a URL ({e}); write e.g. https://github.com/org/repo") from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise BadURL(f"{url!r} is not an http(s) URL with a host; write e.g. https://github.com/org/repo")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    target = (parts.path or "/") + (f"?{parts.query}" if "?" in url.split("#", 1)[0] else "")
    return Request(parts.scheme, host, port or DEFAULT_PORTS[parts.scheme], target)


def check(loaded: LoadedSettings, url: str, method: str = "GET") -> dict[str, Any]:
    """The verdict for `method url`, with the steps that led to it (each a verdict of its own)."""
    request = parse_url(url)
    method = method.upper()
    policy = Policy.of(loaded.settings.network)
    steps: list[dict[str, str]] = []
    verdict = _judge(policy, request, method, steps)
    notes = []
    parsed = policy.parse(request.host)
    if not isinstance(parsed, Verdict):
        if verdict.allowed and policy.pinned_address(parsed) is None and parsed.ip is None:
            notes.append(
                f"{parsed.name} is judged again by the address it resolves to when netjail dials it: "
                "a local or private address is denied unless allowed explicitly"
            )
        if request.scheme in ("https", "wss") and policy.tls_excluded(parsed, request.port):
            notes.append(
                f"{parsed.name} is in tlsTerminate.excludeDomains: its connections are tunnelled undecrypted, "
                "judged by name only"
            )
    return {
        "url": url,
        "method": method,
        "host": request.host,
        "port": request.port,
        "target": request.target,
        "settings_file": str(loaded.path),
        **verdict.as_dict(),
        "steps": steps,
        "notes": notes,
        "warnings": list(loaded.warnings),
    }


def _judge(policy: Policy, request: Request, method: str, steps: list[dict[str, str]]) -> Verdict:
    parsed = policy.parse(request.host)
    if isinstance(parsed, Verdict):
        steps.append({"step": "host"} | parsed.as_dict())
        return parsed
    verdict = policy.judge_destination(parsed, request.port)
    steps.append({"step": "host"} | verdict.as_dict())
    if not verdict.allowed:
        return verdict
    if (pinned := policy.pinned_address(parsed)) is not None:
        address = policy.judge_address(parsed, pinned, request.port)
        steps.append({"step": "address"} | address.as_dict())
        if not address.allowed:
            return address
    if request.scheme in ("https", "wss") and policy.tls_excluded(parsed, request.port):
        return verdict  # never decrypted: no request is seen, rules cannot exist (refused at load)
    judged = policy.judge_request(parsed, request.port, method, request.target)
    if judged is None:
        return verdict
    steps.append({"step": "request rules"} | judged.as_dict())
    if verdict.reason == "would_deny" and judged.allowed:
        return verdict  # audit mode let the host through: the host's would_deny is the news
    return judged


def render(report: dict[str, Any]) -> str:
    lines = [f"{report['verdict']}  {report['method']} {report['url']}"]
    lines.append(f"  reason: {report['reason']}")
    lines.append(f"  rule:   {report['rule']}")
    if report["detail"]:
        lines.append(f"  {report['detail']}")
    if len(report["steps"]) > 1:
        lines.append("  steps:")
        for step in report["steps"]:
            lines.append(f"    {step['step']}: {step['verdict']} ({step['reason']}, {step['rule']})")
    for note in report["notes"]:
        lines.append(f"  note: {note}")
    for warning in report["warnings"]:
        lines.append(f"  warning: {warning}")
    return "\n".join(lines) + "\n"
