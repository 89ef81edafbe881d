"""The settings reference (docs/settings.md), generated from the JSON Schema and the key tables: every key with its
type, its default, where it comes from (srt, with netjail's verdict, or netjail) and what it does.
`python -m netjail.settings --reference` prints it; tests/unit/settings/test_reference.py keeps the docs current."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from netjail.settings.schema import json_schema
from netjail.settings.srt_keys import NETJAIL_KEYS, SRT_KEYS

HEADER = """# Settings reference

Generated from the JSON Schema ([settings.schema.json](settings.schema.json)) and the tables of srt's keys and
netjail's own (`netjail/settings/srt_keys.py`) by `python -m netjail.settings --reference`; a test keeps this page
equal to what it prints. A key marked *srt* is one of Anthropic's sandbox-runtime 0.0.81, with netjail's verdict
(honoured, warned: accepted and ignored with a warning, refused); *netjail* keys are additions (srt drops keys it
does not know, so a file that relies on them is looser under srt). Settings files may hold comments (JSONC).
Explanations: [srt-compat.md](srt-compat.md), [domain-rules.md](domain-rules.md), [policy.md](policy.md),
[credentials.md](credentials.md).
"""


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _type(schema: dict[str, Any], node: dict[str, Any]) -> str:
    node = _resolve(schema, node)
    if "anyOf" in node:
        kinds = [_type(schema, n) for n in node["anyOf"] if n.get("type") != "null"]
        return " or ".join(dict.fromkeys(kinds)) or "null"
    if "enum" in node:
        return " \\| ".join(json.dumps(v) for v in node["enum"])
    if "const" in node:
        return json.dumps(node["const"])
    kind = node.get("type")
    if kind == "array":
        return f"array of {_type(schema, node.get('items', {}))}"
    if kind == "object" and "properties" not in node:
        values = node.get("additionalProperties")
        return f"object of {_type(schema, values)}" if isinstance(values, dict) else "object"
    return str(kind or "any")


def _walk(schema: dict[str, Any], node: dict[str, Any], prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
    node = _resolve(schema, node)
    for key, child in node.get("properties", {}).items():
        path = f"{prefix}.{key}" if prefix else key
        yield path, child
        target = _resolve(schema, child)
        options = [_resolve(schema, n) for n in target.get("anyOf", [])] or [target]
        for option in options:
            if "properties" in option:
                yield from _walk(schema, option, path)
            elif option.get("type") == "array" and "properties" in _resolve(schema, option.get("items", {})):
                yield from _walk(schema, option["items"], f"{path}[]")


def _meaning(path: str) -> tuple[str, str]:
    """(from, what it does) for a key path."""
    for verdict in SRT_KEYS:
        if verdict.path == path:
            return f"srt, {verdict.verdict}", verdict.why
    for key, meaning in NETJAIL_KEYS:
        names = [k.strip() for k in key.split(",")]
        if any(path == name or path == name.split(" ")[0] for name in names):
            return "netjail", meaning
    parent = path.rsplit(".", 1)[0].removesuffix("[]") if "." in path else ""
    if parent and (found := _meaning(parent))[0]:
        return found[0], f"part of `{parent}`"
    return "", ""


def render_reference() -> str:
    schema = json_schema()
    lines = [HEADER]
    sections: dict[str, list[str]] = {}
    for path, node in _walk(schema, schema, ""):
        top = path.split(".")[0].split("[")[0]
        default = node.get("default", _resolve(schema, node).get("default"))
        shown = "" if default is None else f"`{json.dumps(default)}`"
        origin, what = _meaning(path)
        described = node.get("description") or _resolve(schema, node).get("description")
        if described and (not what or what.startswith("part of")):
            what = f"{described.rstrip('.')}" + (f" ({what})" if what else "")
        cell = what.replace("|", "\\|")
        sections.setdefault(top, []).append(
            f"| `{path}` | {_type(schema, node)} | {shown} | {origin} | {cell} |"
        )
    for top, rows in sections.items():
        lines += [
            f"\n## `{top}`\n",
            "| key | type | default | from | what it does |",
            "|---|---|---|---|---|",
            *rows,
        ]
    return "\n".join(lines) + "\n"
