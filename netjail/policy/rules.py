"""Request rules (`network.rules`) as pure functions: a request target is read into the path a server routes, or
refused as ambiguous; the first rule set whose host pattern matches judges method and path, first entry wins.

A path is read twice: literally (percent-encoding made canonical, nothing else) and resolved (dot segments
removed, duplicate slashes merged), because servers differ on the second step. A request passes only when both
readings get the same answer, so a path cannot mean one thing to netjail and another to the origin. The table of
what is decoded and what is denied is in docs/policy.md; tests/unit/policy/test_rules.py tests every row.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from netjail.net.domains import Host, Pattern

if TYPE_CHECKING:  # the proxy receives compiled rule sets and never imports pydantic
    from netjail.settings.rules import HostRules, RequestRule

_HEX = frozenset("0123456789abcdefABCDEF")
# Decoded wherever they are percent-encoded: the unreserved characters, and the others a segment may hold raw
# (RFC 3986 pchar), which servers decode before routing. Everything else stays encoded, with uppercase hex.
_DECODED = frozenset(string.ascii_letters + string.digits + "-._~" + "!$&'()*+,=:@")
_AMBIGUOUS_BYTES = {
    0x2F: "an encoded '/' (%2F)",
    0x5C: "an encoded backslash (%5C)",
    0x00: "an encoded NUL (%00)",
    0x3B: "an encoded ';' (%3B)",
}
_RAW_AMBIGUOUS = {
    "\\": "a backslash",
    ";": "a ';' (path parameters)",
    "#": "a '#' (fragment)",
}
_FIX = (
    "Send the path in plain form: no %2F, %5C, %00, %3B, encoded dot segments, ';' parameters, backslashes, "
    "double or invalid percent-encoding"
)


class AmbiguousPath(ValueError):
    """The message says what made the path ambiguous, as a phrase ("contains an encoded '/' (%2F)")."""


@dataclass(frozen=True, slots=True)
class Target:
    literal: str  # canonical percent-encoding, dot segments and duplicate slashes kept
    resolved: str  # as a server that resolves dot segments and merges slashes routes it
    query: str | None  # raw, None when the target has no '?'


# A segment of these characters alone is already canonical (the common case: no '%', nothing ambiguous).
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,=:@\[\]{}|^`\"<>]*")


def _canonical_segment(raw: str, encoded_slash: bool) -> str:
    if _PLAIN_SEGMENT.fullmatch(raw):
        return raw
    out: list[str] = []
    encoded_dot = False
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "%":
            pair = raw[i + 1 : i + 3]
            if len(pair) != 2 or not set(pair) <= _HEX:
                raise AmbiguousPath("contains a '%' not followed by two hex digits")
            byte = int(pair, 16)
            if byte == 0x25 and set(raw[i + 3 : i + 5]) <= _HEX and len(raw[i + 3 : i + 5]) == 2:
                raise AmbiguousPath("is percent-encoded twice (%25 before two hex digits)")
            if byte in _AMBIGUOUS_BYTES and not (byte == 0x2F and encoded_slash):
                raise AmbiguousPath(f"contains {_AMBIGUOUS_BYTES[byte]}")
            if chr(byte) in _DECODED:
                out.append(chr(byte))
                encoded_dot = encoded_dot or byte == 0x2E
            else:
                out.append(f"%{byte:02X}")
            i += 3
            continue
        if ch in _RAW_AMBIGUOUS:
            raise AmbiguousPath(f"contains {_RAW_AMBIGUOUS[ch]}")
        if not ch.isascii() or ord(ch) <= 0x20 or ord(ch) == 0x7F:
            raise AmbiguousPath("contains a raw space, control or non-ASCII byte")
        out.append(ch)
        i += 1
    segment = "".join(out)
    if encoded_dot and segment in (".", ".."):
        raise AmbiguousPath("has an encoded dot segment (%2E)")
    return segment


def _utf8_ok(path: str) -> bool:
    data = bytearray()
    i = 0
    while i < len(path):
        if path[i] == "%":
            data.append(int(path[i + 1 : i + 3], 16))
            i += 3
        else:
            data.append(ord(path[i]))
            i += 1
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _resolve(segments: list[str]) -> str:
    """RFC 3986 remove_dot_segments after merging duplicate slashes; '..' never climbs above the root."""
    out: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment in (".", ".."):
            if segment == ".." and out:
                out.pop()
            if last:
                out.append("")
        elif segment or last:
            out.append(segment)
    return "/" + "/".join(out)


def read_target(target: str, *, encoded_slash: bool = False) -> Target:
    """An origin-form request target (`/path?query`, as mitmproxy holds it for every HTTP version) -> its
    readings. Raises AmbiguousPath."""
    path, mark, query = target.partition("?")
    if path == "":
        path = "/"  # absolute-form without a path
    if not path.startswith("/"):
        raise AmbiguousPath("does not start with '/' (asterisk-form or a relative target)")
    segments = [_canonical_segment(raw, encoded_slash) for raw in path.split("/")[1:]]
    literal = "/" + "/".join(segments)
    if "%" in literal and not _utf8_ok(literal):
        raise AmbiguousPath("percent-encodes bytes that are not UTF-8")
    return Target(literal, _resolve(segments), query if mark else None)


# -- globs --------------------------------------------------------------------------------------------------


def _segment_regex(segment: str) -> str:
    if segment == "**":
        return "(?:/[^/]*)*"
    pieces = segment.split("*")
    literal = [re.escape(_canonical_segment(piece, True)) for piece in pieces]
    return "/" + "[^/]*".join(literal)


def compile_path_glob(glob: str, *, case_sensitive: bool) -> re.Pattern[str]:
    """A glob already checked by settings.rules.check_path_glob -> a regex matched against a reading."""
    body = "".join(_segment_regex(segment) for segment in glob.split("/")[1:])
    return re.compile(body or "/", 0 if case_sensitive else re.IGNORECASE | re.ASCII)


def compile_query_glob(glob: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(piece) for piece in glob.split("*")), re.DOTALL)


# -- decisions ----------------------------------------------------------------------------------------------

Action = Literal["allow", "deny"]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    where: str  # "network.rules[0].requests[2]"
    text: str  # "deny POST /**/git-receive-pack"
    action: Action
    methods: frozenset[str] | None  # None = any method
    path: re.Pattern[str]
    query: re.Pattern[str] | None
    reason: str | None

    def matches(self, method: str, path: str, query: str | None) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        if self.query is not None and not self.query.fullmatch(query or ""):
            return False
        return self.path.fullmatch(path) is not None


@dataclass(frozen=True, slots=True)
class RuleSet:
    where: str  # "network.rules[0]"
    label: str  # its host patterns as written
    hosts: tuple[Pattern, ...]
    entries: tuple[CompiledRule, ...]
    default: Action
    encoded_slash: bool

    def covers(self, host: Host, port: int) -> bool:
        return any(pattern.matches(host, port) for pattern in self.hosts)

    def first_match(self, method: str, path: str, query: str | None) -> CompiledRule | None:
        return next((rule for rule in self.entries if rule.matches(method, path, query)), None)


def _compile_entry(where: str, rule: RequestRule, case_sensitive: bool) -> CompiledRule:
    methods = None if rule.methods == ("*",) else frozenset(rule.methods)
    query = None if rule.query is None else compile_query_glob(rule.query)
    path = compile_path_glob(rule.path, case_sensitive=case_sensitive)
    return CompiledRule(where, rule.describe(), rule.action, methods, path, query, rule.reason)


def compile_rule_sets(blocks: Sequence[HostRules]) -> tuple[RuleSet, ...]:
    return tuple(
        RuleSet(
            f"network.rules[{i}]",
            block.label,
            tuple(block.hosts),
            tuple(
                _compile_entry(f"network.rules[{i}].requests[{j}]", rule, block.case_sensitive_paths)
                for j, rule in enumerate(block.requests)
            ),
            block.default,
            block.allow_encoded_slash,
        )
        for i, block in enumerate(blocks)
    )


@dataclass(frozen=True, slots=True)
class RequestDecision:
    action: Action
    kind: Literal["entry", "default", "ambiguous"]
    rule: str  # for the record: what decided, in the settings' own words
    detail: (
        str  # for the client (often an AI agent): what was decided, by which rule, and what would change it
    )


def _judge_reading(
    rules: RuleSet, method: str, path: str, query: str | None
) -> tuple[Action, str, CompiledRule | None]:
    entry = rules.first_match(method, path, query)
    if entry is None:
        return rules.default, f"{rules.label}: default {rules.default}", None
    return entry.action, f"{rules.label}: {entry.text}", entry


def rule_set_for(rule_sets: Sequence[RuleSet], host: Host, port: int) -> RuleSet | None:
    """The first rule set whose host patterns match: it alone judges the host's requests."""
    return next((rules for rules in rule_sets if rules.covers(host, port)), None)


def judge_request(rules: RuleSet, method: str, target: str, host: str) -> RequestDecision:
    method = method.upper()
    shown = f"{method} {target[:200]} to {host}"
    try:
        reading = read_target(target, encoded_slash=rules.encoded_slash)
    except AmbiguousPath as ambiguous:
        return RequestDecision(
            "deny",
            "ambiguous",
            "path-guard",
            f"{shown}: the path {ambiguous}, which servers read in different ways, so the request rules of "
            f"{rules.where} ({rules.label}) cannot be applied to it. {_FIX}.",
        )
    resolved = _judge_reading(rules, method, reading.resolved, reading.query)
    literal = (
        resolved
        if reading.literal == reading.resolved
        else _judge_reading(rules, method, reading.literal, reading.query)
    )
    if literal[0] != resolved[0]:
        return RequestDecision(
            "deny",
            "ambiguous",
            "path-guard",
            f"{shown}: the path reads as {reading.resolved} to servers that resolve dot segments and merge "
            f"slashes, and as {reading.literal} to those that do not, and {rules.where} ({rules.label}) "
            f"judges the two differently. Send the path {reading.resolved} itself.",
        )
    action, rule, entry = resolved
    if action == "allow":
        return RequestDecision("allow", "entry" if entry else "default", rule, "")
    suggestion = f'{{"allow": "{method}", "path": "{reading.resolved}"}}'
    if entry is not None:
        why = f": {entry.reason}" if entry.reason else ""
        detail = (
            f"{shown} is denied by {entry.where} ({entry.text}){why}. The host is allowed, but its request rules "
            f"do not allow this method and path; retrying will not help. To allow it, the user would add "
            f"{suggestion} before that entry in {rules.where}.requests."
        )
        return RequestDecision("deny", "entry", rule, detail)
    detail = (
        f"{shown} matches no entry of {rules.where} ({rules.label}), whose default is deny. The host is "
        f"allowed, but only the requests its rules list; retrying will not help. To allow it, the user would "
        f"add {suggestion} to {rules.where}.requests."
    )
    return RequestDecision("deny", "default", rule, detail)
