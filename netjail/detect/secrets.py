"""Secrets (settings `audit.secretEnv`, `audit.secretFiles`): held as the byte strings a leak would contain — the
value and its URL, base64 and hex encodings — only in the memory of the process that looks for them; found in
bytes and text, and replaced by a placeholder. Records and reports carry a name and a 16-hex-digit SHA-256 prefix,
never a value. Standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

MIN_SECRET = 8  # shorter values would match by accident; they are skipped with a warning


def short_digest(value: bytes) -> str:
    return "sha256:" + hashlib.sha256(value).hexdigest()[:16]


def encoded_forms(value: bytes) -> list[tuple[str, bytes]]:
    """The byte strings that betray `value` in traffic: as is, URL-encoded, hex, and base64 at every alignment
    (the characters that depend only on `value`, so it is found inside a longer base64 text too)."""
    forms: dict[bytes, str] = {value: "plain"}
    for quoted in (
        urllib.parse.quote_from_bytes(value, safe=""),
        urllib.parse.quote_plus(value.decode("latin-1")),
    ):
        forms.setdefault(quoted.encode(), "url-encoded")
    forms.setdefault(value.hex().encode(), "hex")
    forms.setdefault(value.hex().upper().encode(), "hex")
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + value)
        start = math.ceil(8 * offset / 6)
        end = (8 * (offset + len(value))) // 6
        stable = encoded[start:end]
        if len(stable) >= MIN_SECRET:
            forms.setdefault(stable, "base64")
            forms.setdefault(stable.translate(bytes.maketrans(b"+/", b"-_")), "base64")
    return sorted(((how, form) for form, how in forms.items()), key=lambda f: -len(f[1]))


def values_from_file(data: bytes) -> list[bytes]:
    """A secret file's values: its whole (stripped) content; and, line by line, each `key = value` /
    `key: value` value and each token-like line (16+ characters without spaces, such as a key file's base64
    lines). Section headers, comments and short lines are not values: they would match innocent traffic."""
    values = [data.strip()]
    for line in data.splitlines():
        line = line.strip()
        if not line or line.startswith((b"#", b";", b"[", b"-----")):
            continue
        match = re.match(rb"[\w.\-\"']+\s*[=:]\s*(.+)", line)
        if match:
            values.append(match.group(1).strip().strip(b"\"'"))
        elif len(line) >= 16 and not re.search(rb"\s", line):
            values.append(line)
    seen: dict[bytes, None] = {}
    for value in values:
        if len(value) >= MIN_SECRET:
            seen.setdefault(value)
    return list(seen)


@dataclass(frozen=True)
class Secret:
    name: str  # "env:NAME" or "file:PATH"
    digest: str  # short_digest of the value: what records and reports show
    forms: tuple[tuple[str, bytes], ...] = field(repr=False)

    @property
    def placeholder(self) -> bytes:
        return f"[redacted secret {self.name}]".encode()

    @property
    def flag_kind(self) -> str:
        return "secret"  # a canary's is `canary` (netjail.detect.canaries)


@dataclass(frozen=True)
class SecretHit:
    secret: Secret
    encoding: str


class Secrets:
    """The configured secrets, matched in bytes and text, and replaced by a placeholder. `ignored`: values the
    credential-shape detectors (netjail.detect.tokens) skip — this run's canaries and placeholders, which are
    reported as what they are rather than as credentials nobody declared."""

    def __init__(self, secrets: Iterable[Secret] = (), ignored: Iterable[bytes] = ()):
        self.secrets = tuple(secrets)
        self.ignored = tuple(v for v in ignored if v)
        self.longest = max((len(f) for s in self.secrets for _, f in s.forms), default=0)

    def __bool__(self) -> bool:
        return bool(self.secrets or self.ignored)

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys(s.name for s in self.secrets))

    @classmethod
    def from_values(cls, named: Iterable[tuple[str, bytes]]) -> Secrets:
        return cls(
            Secret(name, short_digest(v), tuple(encoded_forms(v)))
            for name, v in named
            if len(v) >= MIN_SECRET
        )

    @classmethod
    def load(
        cls, env_names: Iterable[str], files: Iterable[str | Path], environ: Mapping[str, str]
    ) -> tuple[Secrets, list[str]]:
        """Read the secrets; returns them and one warning per secret that could not be used."""
        named: list[tuple[str, bytes]] = []
        problems: list[str] = []
        for name in env_names:
            value = environ.get(name)
            if value is None:
                problems.append(
                    f"audit.secretEnv: {name} is not set in netjail's environment; not looked for"
                )
            elif len(value.strip()) < MIN_SECRET:
                problems.append(
                    f"audit.secretEnv: {name} is shorter than {MIN_SECRET} characters; not looked for"
                )
            else:
                named.append((f"env:{name}", value.strip().encode("utf-8", "surrogateescape")))
        for path in files:
            path = Path(path).expanduser()
            try:
                data = path.read_bytes()
            except OSError as e:
                problems.append(f"audit.secretFiles: cannot read {path} ({e.strerror or e}); not looked for")
                continue
            values = values_from_file(data)
            if not values:
                problems.append(f"audit.secretFiles: {path} holds no value of {MIN_SECRET}+ characters")
            named += [(f"file:{path}", v) for v in values]
        return cls.from_values(named), problems

    def find(self, data: bytes) -> list[SecretHit]:
        hits: list[SecretHit] = []
        for secret in self.secrets:
            for how, form in secret.forms:
                if form in data:
                    hits.append(SecretHit(secret, how))
                    break
        return hits

    def find_text(self, text: str) -> list[SecretHit]:
        data = text.encode("utf-8", "surrogateescape")
        hits = self.find(data)
        unquoted = urllib.parse.unquote_to_bytes(data) if b"%" in data else b""
        if unquoted and unquoted != data:
            seen = {h.secret.name for h in hits}
            hits += [h for h in self.find(unquoted) if h.secret.name not in seen]
        return hits

    def redact(self, data: bytes) -> tuple[bytes, list[str]]:
        """`data` with every form of every secret replaced; and the names of the secrets replaced."""
        if not self.secrets or not data:
            return data, []
        names: list[str] = []
        for secret in self.secrets:
            for _, form in secret.forms:
                if form in data:
                    data = data.replace(form, secret.placeholder)
                    if secret.name not in names:
                        names.append(secret.name)
        return data, names

    def redact_text(self, text: str) -> tuple[str, list[str]]:
        data, names = self.redact(text.encode("utf-8", "surrogateescape"))
        if b"%" in data:  # a value percent-encoded in a way quote() would not produce
            unquoted = urllib.parse.unquote_to_bytes(data)
            redacted, more = self.redact(unquoted)
            if more:
                data, names = redacted, names + [n for n in more if n not in names]
        return data.decode("utf-8", "surrogateescape"), names

    def cut_partial(self, data: bytes) -> bytes:
        """A kept body prefix may end inside a secret: drop such a tail rather than keep part of a value."""
        for secret in self.secrets:
            for _, form in secret.forms:
                for size in range(min(len(form) - 1, len(data)), 5, -1):
                    if data.endswith(form[:size]):
                        return data[: len(data) - size]
        return data


URL_FIELDS = ("host", "authority", "sni", "path", "url", "detail", "error", "user_agent", "name")


def redact_record(record: dict, secrets: Secrets | None) -> list[str]:
    """Replace secret values in a record's text fields; returns 'field' entries of what was replaced."""
    if not secrets:
        return []
    where: list[str] = []
    for key in URL_FIELDS:
        value = record.get(key)
        if isinstance(value, str) and value:
            redacted, names = secrets.redact_text(value)
            if names:
                record[key] = redacted
                where += [f"{name} in {key}" for name in names]
    return where
