"""Canary credentials (settings `audit.canaries`, docs/credentials.md "Canaries"): decoy values of well-known
shapes, minted per run, planted in the jail under names no tool reads by default, and the byte strings that betray
each one in egress. Pure and standard library only: the proxy's addon (addons/canaries.py) applies it.

A canary is worth nothing anywhere: it is a decoy. Its only use is to be noticed when it leaves, which means the
command (or something it ran) went looking for credentials and tried to send one out. Records still name a canary
rather than echo it, so that a report or a flow file shared with someone shows which decoy was taken, not the
decoy itself.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from netjail.detect.secrets import MIN_SECRET, Secret, Secrets, encoded_forms, short_digest

# flow.metadata key (and the record field `canaries`): which canary a flow carried, where; never a value
CANARY_KEY = "netjail.canaries"
NAME_PREFIX = "canary:"  # how a canary's Secret is named: records show `[redacted secret canary:NAME]`

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BASE64URL = _BASE62 + "-_"
_AWS_ID = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_AWS_SECRET = _BASE62 + "+/"


def _random(alphabet: str, n: int) -> str:
    return "".join(alphabet[secrets.randbelow(len(alphabet))] for _ in range(n))


def _base62(number: int, width: int) -> str:
    digits = ""
    while number:
        number, rest = divmod(number, 62)
        digits = _BASE62[rest] + digits
    return digits.rjust(width, "0")


def _checksummed(prefix: str) -> str:
    """GitHub's and npm's token format: 30 random base62 characters and the CRC32 of them, base62, in 6."""
    body = _random(_BASE62, 30)
    return f"{prefix}{body}{_base62(binascii.crc32(body.encode()), 6)}"


# kind -> (what a flag calls it, how a value is minted)
SHAPES: dict[str, tuple[str, Any]] = {
    "aws_access_key_id": ("AWS access key id", lambda: "AKIA" + _random(_AWS_ID, 16)),
    "aws_secret_access_key": ("AWS secret access key", lambda: _random(_AWS_SECRET, 40)),
    "github": ("GitHub token", lambda: _checksummed("ghp_")),
    "npm": ("npm token", lambda: _checksummed("npm_")),
    # a PyPI API token is a macaroon: its base64 starts with the location, the index's own host name
    "pypi": ("PyPI token", lambda: "pypi-AgEIcHlwaS5vcmc" + _random(_BASE64URL, 160)),
    "anthropic": ("Anthropic API key", lambda: "sk-ant-api03-" + _random(_BASE64URL, 93) + "AA"),
    "openai": ("OpenAI API key", lambda: "sk-proj-" + _random(_BASE64URL, 156)),
}

# The variables planted in the jail's environment. None is a name a tool reads by default (AWS_ACCESS_KEY_ID,
# GITHUB_TOKEN, GH_TOKEN, NPM_TOKEN, TWINE_PASSWORD, ANTHROPIC_API_KEY, OPENAI_API_KEY…) or starts with a prefix a
# tool reads its settings from (AWS_, GH_, GITHUB_, npm_config_, PIP_, TWINE_, UV_, POETRY_, ANTHROPIC_, OPENAI_,
# HF_): `gh`, `aws` or `npm` would otherwise send a canary to a host you allowed, and stop an innocent run.
ENV_CANARIES: tuple[tuple[str, str], ...] = (
    ("DEPLOY_AWS_KEY_ID", "aws_access_key_id"),
    ("DEPLOY_AWS_SECRET", "aws_secret_access_key"),
    ("LEGACY_GH_TOKEN", "github"),
    ("BACKUP_NPM_TOKEN", "npm"),
    ("BACKUP_PYPI_TOKEN", "pypi"),
    ("LLM_FALLBACK_KEY", "anthropic"),
    ("LEGACY_OPENAI_KEY", "openai"),
)
# The decoy credentials file, inside the jail only (Linux): the jail's /run is an empty tmpfs, so the file's mount
# point is made there and never on the host; /run/secrets is where container platforms put secrets (a place a
# credential hunter looks), and no tool reads this file unless told to.
DECOY_FILE = "/run/secrets/deploy/credentials"
FILE_CANARIES: tuple[tuple[str, str], ...] = (
    ("aws_access_key_id", "aws_access_key_id"),
    ("aws_secret_access_key", "aws_secret_access_key"),
    ("github_token", "github"),
)
# names a canary must never take: tools read them by default (tests/unit/detect/test_canaries.py checks them)
READ_BY_DEFAULT = frozenset(
    {
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "GITHUB_TOKEN", "GH_TOKEN",
        "GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN", "NPM_TOKEN", "NODE_AUTH_TOKEN", "TWINE_PASSWORD",
        "TWINE_USERNAME", "PYPI_TOKEN", "UV_PUBLISH_TOKEN", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN",
        "OPENAI_API_KEY", "HF_TOKEN", "GITLAB_TOKEN", "CI_JOB_TOKEN",
    }
)  # fmt: skip
READ_PREFIXES = ("AWS_", "GH_", "GITHUB_", "NPM_CONFIG_", "PIP_", "TWINE_", "UV_", "POETRY_", "ANTHROPIC_", "OPENAI_", "HF_")  # fmt: skip


@dataclass(frozen=True)
class Canary:
    name: str  # the variable (LEGACY_GH_TOKEN) or the decoy file's key (DECOY_FILE aws_secret_access_key)
    kind: str  # a key of SHAPES
    value: str = field(repr=False)

    @property
    def label(self) -> str:
        return SHAPES[self.kind][0]

    def as_config(self) -> dict[str, str]:
        """For the proxy's control socket (never a file)."""
        return {"name": self.name, "kind": self.kind, "value": self.value}

    @classmethod
    def from_config(cls, config: dict[str, str]) -> Canary:
        return cls(str(config["name"]), str(config["kind"]), str(config["value"]))


@dataclass
class CanaryPlan:
    """What one run plants: variables for the jail's environment, the decoy file's text, every canary."""

    env: dict[str, str]
    file_text: str
    canaries: list[Canary]


def mint(existing: Iterable[str] = (), with_file: bool = True) -> CanaryPlan:
    """This run's canaries. A variable already set in the command's environment (`existing`: envPassthrough)
    keeps its own value: a canary never replaces something the user passed in."""
    taken = set(existing)
    canaries = [Canary(name, kind, SHAPES[kind][1]()) for name, kind in ENV_CANARIES if name not in taken]
    env = {c.name: c.value for c in canaries}
    lines = ["# deploy credentials: rotate with the release pipeline", "[deploy]"]
    if with_file:
        for key, kind in FILE_CANARIES:
            canary = Canary(f"{DECOY_FILE} {key}", kind, SHAPES[kind][1]())
            canaries.append(canary)
            lines.append(f"{key} = {canary.value}")
    return CanaryPlan(env, "\n".join(lines) + "\n" if with_file else "", canaries)


# -- matching ----------------------------------------------------------------------------------------------------


def canary_forms(value: bytes) -> list[tuple[str, bytes]]:
    """The byte strings that betray a canary: detect/'s (as is, URL-encoded, hex, base64 at every alignment), base32
    at every alignment (the characters that depend only on the value), and JSON's optional `\\/`."""
    forms = dict((form, how) for how, form in encoded_forms(value))
    for offset in range(5):
        encoded = base64.b32encode(b"\0" * offset + value)
        start = math.ceil(8 * offset / 5)
        end = (8 * (offset + len(value))) // 5
        stable = encoded[start:end]
        if len(stable) >= MIN_SECRET:
            forms.setdefault(stable, "base32")
            forms.setdefault(stable.lower(), "base32")
    if b"/" in value:
        forms.setdefault(value.replace(b"/", b"\\/"), "json-escaped")
    return sorted(((how, form) for form, how in forms.items()), key=lambda f: -len(f[1]))


@dataclass(frozen=True)
class CanarySecret(Secret):
    """A canary as detect/ matches and redacts it: its flags are of kind `canary`."""

    canary_name: str = ""

    @property
    def flag_kind(self) -> str:
        return "canary"


def canary_secrets(canaries: Iterable[Canary]) -> list[CanarySecret]:
    return [
        CanarySecret(NAME_PREFIX + c.name, short_digest(c.value.encode()), tuple(canary_forms(c.value.encode())), c.name)
        for c in canaries
    ]  # fmt: skip


def with_canaries(secrets: Secrets, canaries: Iterable[Canary], placeholders: Iterable[str] = ()) -> Secrets:
    """`secrets` plus each canary (flagged as `canary`, replaced in records by its name), and the values the
    credential-shape detectors skip: the canaries and this run's credential placeholders (issue 12)."""
    canaries = list(canaries)
    ignored = [*secrets.ignored, *(c.value.encode() for c in canaries), *(p.encode() for p in placeholders)]
    return Secrets((*secrets.secrets, *canary_secrets(canaries)), ignored=ignored)


@dataclass(frozen=True)
class Sighting:
    canary: str  # its name
    how: str  # plain, url-encoded, hex, base64, base32, json-escaped, json


class CanaryMatcher:
    """Finds this run's canaries in request text, bytes, JSON and DNS names."""

    def __init__(self, canaries: Iterable[Canary]):
        self.canaries = list(canaries)
        self.secrets = Secrets(canary_secrets(self.canaries))
        # DNS is case-insensitive and a name may be cut into labels anywhere: the forms a name can carry, lowered
        self._name_forms = [
            (c.name, how, form.decode("ascii").lower())
            for c, secret in zip(self.canaries, self.secrets.secrets, strict=True)
            for how, form in secret.forms
            if all(chr(b).isalnum() or chr(b) in "-_" for b in form)
        ]
        self.longest = self.secrets.longest

    def __bool__(self) -> bool:
        return bool(self.canaries)

    @staticmethod
    def _sightings(hits: Iterable[Any]) -> list[Sighting]:
        found: dict[str, Sighting] = {}
        for hit in hits:
            name = hit.secret.name.removeprefix(NAME_PREFIX)
            found.setdefault(name, Sighting(name, hit.encoding))
        return list(found.values())

    def in_text(self, text: str) -> list[Sighting]:
        """In a header value or URL: every form, also once percent-decoded."""
        return self._sightings(self.secrets.find_text(text))

    def in_bytes(self, data: bytes) -> list[Sighting]:
        return self._sightings(self.secrets.find(data))

    def in_json(self, data: bytes) -> list[Sighting]:
        """In a JSON document's strings and keys, decoded (`\\u` escapes): nothing when it is not JSON."""
        try:
            document = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return []
        found: dict[str, Sighting] = {}
        for text in _strings(document):
            for s in self.in_text(text):
                found.setdefault(s.canary, Sighting(s.canary, "json"))
        return list(found.values())

    def in_name(self, name: str) -> list[Sighting]:
        """In a host name, whatever its case and wherever it is cut into labels."""
        joined = name.replace(".", "").lower()
        found: dict[str, Sighting] = {}
        for canary, how, form in self._name_forms:
            if canary not in found and form in joined:
                found[canary] = Sighting(canary, how)
        return list(found.values())

    def redact_name(self, name: str) -> str:
        """A name with the labels that carry a canary replaced by `canary-NAME`, so the record keeps the domain it
        went toward and never the canary's labels."""
        labels = name.rstrip(".").split(".")
        for canary, _, form in self._name_forms:
            joined = "".join(labels).lower()
            at = joined.find(form)
            if at == -1:
                continue
            start, end, position, first, last = at, at + len(form), 0, None, None
            for index, label in enumerate(labels):
                if first is None and position + len(label) > start:
                    first = index
                position += len(label)
                if last is None and position >= end:
                    last = index
                    break
            assert first is not None and last is not None
            tag = "canary-" + "".join(ch if ch.isalnum() else "-" for ch in canary).strip("-")
            labels[first : last + 1] = [tag]
        return ".".join(labels)


def _strings(value: Any) -> Iterator[str]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            for key, inner in item.items():
                yield str(key)
                stack.append(inner)
        elif isinstance(item, list):
            stack.extend(item)


def describe_where(where: str) -> str:
    """A sighting's place as a sentence says it: `query` -> `in the query string`."""
    if where.startswith("header "):
        return f"in the {where.removeprefix('header ')} header"
    return {
        "query": "in the query string",
        "path": "in the URL path",
        "host": "in the host name",
        "sni": "in the TLS server name",
        "connect": "in the CONNECT target",
        "body": "in the request body",
        "dns": "in a DNS lookup",
        "websocket message": "in a WebSocket message",
    }.get(where, f"in the {where}")
