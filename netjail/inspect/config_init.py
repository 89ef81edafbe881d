"""`netjail config init`: a commented starting point, or a copy of an srt file with netjail's verdict on each key
as a `//` comment above it (JSONC, which netjail loads: netjail/settings/load.py). The copy holds the same JSON
values as the file it came from."""

from __future__ import annotations

import json
from typing import Any

from netjail.settings import NETJAIL_KEYS, SRT_KEYS

STARTING_POINT = """\
// netjail settings (JSONC: comments are allowed). Check with: netjail config check FILE
// Every key and its verdict: docs/srt-compat.md; the schema: netjail config schema
{
  "network": {
    // Hosts the command may reach: exact names, "*.example.com" (below it, not itself), IPs, optional ":port",
    // and presets: "@pip" / "@npm" expand to the index hosts this machine's pip / npm use.
    "allowedDomains": ["@pip", "github.com"],
    // Checked first; "*" denies everything.
    "deniedDomains": [],
    // "audit" lets everything through and records what would be denied (netjail learn uses it).
    "mode": "enforce"
  },
  "filesystem": {
    // Hidden inside the jail.
    "denyRead": ["~/.ssh", "~/.aws", "~/.config/gh"],
    // The only writable paths, besides a private /tmp.
    "allowWrite": ["."],
    // Read-only even inside allowWrite (.git/hooks and shell start-up files always are).
    "denyWrite": []
  }
}
"""

_VERDICTS = {v.path: v for v in SRT_KEYS}
_NETJAIL = {key.split()[0]: meaning for key, meaning in NETJAIL_KEYS}
MAPS = ("network.deniedDomainReasons", "network.hosts", "ignoreViolations")  # keys below these are the user's


def verdict_comment(path: str) -> str:
    """netjail's word on one key, `credentials.files[].path` style."""
    if (verdict := _VERDICTS.get(path)) is not None:
        word = {"honoured": "honoured", "warned": "ignored (warned)", "refused": "REFUSED"}[verdict.verdict]
        extra = "; netjail will not run with it set: remove it" if verdict.verdict == "refused" else ""
        return f"netjail: {word}: {verdict.why}{extra}"
    if path in _NETJAIL:
        return f"netjail addition: {_NETJAIL[path]}"
    return "netjail: unknown key, REFUSED: neither srt nor netjail knows it (a typo?)"


def annotate(data: Any) -> str:
    """`data` (a parsed srt file) as indented JSON, each object key preceded by netjail's verdict on it."""
    lines = ["// netjail's verdict on each key of this srt file (netjail config init --from-srt)."]
    lines.append("// Values are unchanged; `netjail config check` on this file shows what a run would use.")
    lines += _render(data, "", 0)
    return "\n".join(lines) + "\n"


def _render(value: Any, path: str, depth: int) -> list[str]:
    pad = "  " * depth
    if isinstance(value, dict) and value:
        out = ["{"]
        for i, (key, item) in enumerate(value.items()):
            child = f"{path}.{key}" if path else key
            if path not in MAPS:
                out.append(f"{pad}  // {verdict_comment(child)}")
            rendered = _render(item, child, depth + 1)
            rendered[0] = f"{pad}  {json.dumps(key)}: {rendered[0]}"
            if i < len(value) - 1:
                rendered[-1] += ","
            out += rendered
        return [*out, f"{pad}}}"]
    if isinstance(value, list) and any(isinstance(item, dict) and item for item in value):
        out = ["["]
        for i, item in enumerate(value):
            rendered = _render(item, f"{path}[]", depth + 1)
            rendered[0] = f"{pad}  {rendered[0]}"
            if i < len(value) - 1:
                rendered[-1] += ","
            out += rendered
        return [*out, f"{pad}]"]
    return [json.dumps(value, ensure_ascii=False)]
