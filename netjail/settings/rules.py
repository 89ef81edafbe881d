"""`network.rules` (a netjail addition): per host pattern, an ordered list of allow/deny entries on method and
path, first match wins, with a per-host default. Rules only narrow what allowedDomains allows; the decision
itself is in netjail/policy/rules.py, which also turns these globs into matchers.

    "rules": [{"hosts": ["github.com"], "default": "deny", "requests": [
        {"allow": ["GET", "HEAD"], "path": "/**"},
        {"allow": "POST", "path": "/*/*/git-upload-pack"}]}]
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, PlainValidator, WithJsonSchema, model_validator

from netjail.net.domains import Pattern
from netjail.settings.errors import Problem
from netjail.settings.fields import AllowPattern, SettingsModel, require_str
from netjail.utils.text import quoted

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEX2 = re.compile(r"%[0-9A-Fa-f]{2}")
# Encoded bytes that change how a server splits or reads a path: never in a rule, denied in a request.
_AMBIGUOUS_ESCAPES = {"%2F": "'/'", "%5C": "'\\'", "%00": "NUL", "%3B": "';'"}
_DOUBLE_ESCAPE = re.compile(r"%25[0-9A-Fa-f]{2}")


def _methods(value: object) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise Problem("the method list is empty", 'name at least one method, e.g. ["GET", "HEAD"], or "*"')
    methods = []
    for item in items:
        text = require_str(item, '"GET"')
        if text != "*" and not _TOKEN.fullmatch(text):
            raise Problem(
                f"{quoted(text)} is not an HTTP method", 'write a method such as "GET", or "*" for any'
            )
        methods.append(text.upper())
    if "*" in methods and len(methods) > 1:
        raise Problem('"*" already means every method', 'write "*" alone or list the methods')
    return tuple(methods)


Methods = Annotated[
    tuple[str, ...],
    PlainValidator(_methods),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}],
            "description": 'A method ("GET"), a list of methods, or "*" for any.',
        }
    ),
]


def check_path_glob(value: object) -> str:
    """A path glob as written: "/", literal segments, "*" within a segment, "**" as a whole segment (any number
    of segments). It must name one unambiguous path, as a request must (docs/policy.md)."""
    text = require_str(value, '"/org/**"')
    fix = 'write a path that starts with "/", e.g. "/org/**" or "/v1/messages"'
    if not text.startswith("/"):
        raise Problem(f"{quoted(text)} does not start with '/'", fix)
    if not text.isascii() or any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in text):
        raise Problem(
            f"{quoted(text)} contains a space, control or non-ASCII character",
            "percent-encode it (UTF-8), e.g. '%C3%A9' for 'é'",
        )
    for bad, name in (
        ("?", "a query (use the rule's query field)"),
        ("#", "a fragment"),
        ("\\", "a backslash"),
    ):
        if bad in text:
            raise Problem(f"{quoted(text)} contains {name}", fix)
    if ";" in text:
        raise Problem(f"{quoted(text)} contains ';' (path parameters), which requests may not use", fix)
    for index, ch in enumerate(text):
        if ch == "%" and not _HEX2.match(text, index):
            raise Problem(
                f"{quoted(text)} has a '%' that is not followed by two hex digits",
                "write a literal '%' as '%25'",
            )
    if _DOUBLE_ESCAPE.search(text):
        raise Problem(
            f"{quoted(text)} is percent-encoded twice ('%25' before two hex digits), which servers decode "
            "once or twice; requests that do it are denied anyway",
            fix,
        )
    for escape in _HEX2.findall(text):
        if escape.upper() in _AMBIGUOUS_ESCAPES:
            raise Problem(
                f"{quoted(text)} contains {escape} ({_AMBIGUOUS_ESCAPES[escape.upper()]}), which servers read "
                "in different ways; requests that use it are denied anyway",
                fix,
            )
    for segment in text.split("/")[1:]:
        if "**" in segment and segment != "**":
            raise Problem(
                f"{quoted(text)} has '**' inside the segment {quoted(segment)}",
                "'**' stands for whole segments: write '/a/**/b', or '*' within one segment",
            )
        if re.sub(r"(?i)%2e", ".", segment) in (".", ".."):
            raise Problem(
                f"{quoted(text)} contains a dot segment ('.' or '..')", "write the path it stands for"
            )
    return text


PathGlob = Annotated[
    str,
    PlainValidator(check_path_glob),
    WithJsonSchema(
        {"type": "string", "description": 'Path glob: "*" within a segment, "**" for any segments.'}
    ),
]


class RequestRule(SettingsModel):
    allow: Methods | None = Field(default=None, description='Methods this entry allows ("*" = any).')
    deny: Methods | None = Field(default=None, description='Methods this entry denies ("*" = any).')
    path: PathGlob = Field(default="/**", description="Path glob, matched after normalisation.")
    query: str | None = Field(
        default=None,
        description='Glob ("*" = anything) the raw query string must match; absent: the query is not looked at.',
    )
    reason: str | None = Field(default=None, description="Shown to the client in the 403 of a deny entry.")

    @model_validator(mode="after")
    def _one_action(self) -> RequestRule:
        if (self.allow is None) == (self.deny is None):
            raise Problem(
                "an entry needs exactly one of allow or deny",
                'write e.g. {"allow": ["GET", "HEAD"], "path": "/**"} or {"deny": "*", "path": "/admin/**"}',
            )
        if self.query is not None and ("#" in self.query or not self.query.isascii()):
            raise Problem("the query glob contains '#' or a non-ASCII character", "percent-encode it")
        return self

    @property
    def action(self) -> Literal["allow", "deny"]:
        return "allow" if self.allow is not None else "deny"

    @property
    def methods(self) -> tuple[str, ...]:
        return self.allow if self.allow is not None else self.deny or ()

    def describe(self) -> str:
        query = "" if self.query is None else f"?{self.query}"
        return f"{self.action} {','.join(self.methods)} {self.path}{query}"


class HostRules(SettingsModel):
    hosts: Annotated[list[AllowPattern], Field(min_length=1)] = Field(
        description="Host patterns these rules cover (the allowedDomains wildcard table)."
    )
    requests: list[RequestRule] = Field(description="Entries in order; the first that matches decides.")
    default: Literal["allow", "deny"] = Field(description="What a request no entry matches gets.")
    case_sensitive_paths: bool = Field(
        default=False,
        description="Match paths case-sensitively (default: not, so a deny of /org/** also covers /ORG/...).",
    )
    allow_encoded_slash: bool = Field(
        default=False,
        description="Accept %2F inside a segment as data (npm's scoped packages: /@scope%2fname).",
    )

    @property
    def label(self) -> str:
        return ", ".join(p.source for p in self.hosts)


def patterns_overlap(a: Pattern, b: Pattern) -> bool:
    """True when some destination matches both patterns (ports included)."""
    if a.port is not None and b.port is not None and a.port != b.port:
        return False
    if "any" in (a.kind, b.kind):
        return True
    if a._network is not None or b._network is not None:  # a name never matches an address rule
        return a._network is not None and b._network is not None and a._network.overlaps(b._network)
    if a.kind == "wildcard" and b.kind == "wildcard":
        return a.host == b.host or a.host.endswith(b._suffix) or b.host.endswith(a._suffix)
    if a.kind == "wildcard":
        a, b = b, a
    return a.host == b.host if b.kind == "exact" else a.host.endswith(b._suffix)


def refuse_rules_on_excluded_hosts(rules: list[HostRules], excluded: list[Pattern]) -> None:
    """A host tunnelled without TLS termination shows no request to judge: its rules could never apply."""
    for index, block in enumerate(rules):
        for host_index, host in enumerate(block.hosts):
            for pattern in excluded:
                if patterns_overlap(host, pattern):
                    raise Problem(
                        f"{quoted(host.source)} overlaps tlsTerminate.excludeDomains entry {quoted(pattern.source)}: "
                        "netjail does not decrypt those connections, so it never sees a method or path to judge",
                        f"remove {quoted(pattern.source)} from tlsTerminate.excludeDomains, or these rules",
                        at=(index, "hosts", host_index),
                    )
