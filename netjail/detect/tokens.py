"""Well-known credential shapes in what a request sends: AWS, GitHub, GitLab, npm, PyPI, Slack, Stripe… keys,
private key blocks, JSON Web Tokens (detect-secrets' maintained rule set, netjail/detect/token_rules.py), and the
LLM providers' API keys. Found in a request body, URL or header, they make a `credential` flag that names the
shape and a digest prefix, never the value.

The match is of the shape alone: a credential the user declared (`audit.secretEnv`) is found by its value
(netjail.detect.secrets) whatever it looks like; these find the ones nobody declared, such as a `.env` file
posted somewhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from netjail.detect.secrets import short_digest
from netjail.detect.token_rules import RULES

# LLM providers' keys, which detect-secrets 1.5 does not know (its OpenAI rule is the legacy `T3BlbkFJ` form).
LLM_RULES: tuple[tuple[str, str, str], ...] = (
    ("netjail", "Anthropic API key", r"sk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_\-]{80,120}"),
    ("netjail", "OpenAI API key", r"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{40,200}"),
    ("netjail", "Google API key", r"AIza[0-9A-Za-z_\-]{35}"),
    ("netjail", "Hugging Face token", r"hf_[A-Za-z]{34}"),
)

TOKEN_TAIL = 1024  # bytes kept between chunks, so a token split across two is still found
# The first bytes of a body that are scanned: Python's regular expressions cost ~25 ms per MiB for these rules,
# on the proxy's event loop. A body past 1 MiB is flagged `large_upload` in any case (detect/flags.py).
TOKEN_SCAN_BYTES = 256 * 1024
# Headers that carry credentials by design: a token there is the request's own authentication, not a payload.
AUTH_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"})
# A literal a rule cannot match without, for rules the regex engine cannot anchor (npm's `//…/:_authToken=`
# backtracks over whole lines: 0.8 s per MiB of base64 without this).
REQUIRED_LITERAL = {"NpmDetector": b"_authToken"}

_RULES = [
    (label, re.compile(pattern.encode()), REQUIRED_LITERAL.get(source))
    for source, label, pattern in (*RULES, *LLM_RULES)
]


def without(data: bytes, ignored: Iterable[bytes]) -> bytes:
    """`data` with each ignored value (this run's canaries and placeholders) cut out, by a space."""
    for value in ignored:
        if value in data:
            data = data.replace(value, b" ")
    return data


def find_tokens(data: bytes, ignored: Iterable[bytes] = ()) -> dict[str, str]:
    """Each shape found in `data` (less the `ignored` values) -> the digest prefix of its first match."""
    found: dict[str, str] = {}
    data = without(data, ignored)
    for label, pattern, required in _RULES:
        if label in found or (required is not None and required not in data):
            continue
        if (match := pattern.search(data)) is not None:
            found[label] = short_digest(match.group())
    return found


def redact_tokens(text: str) -> tuple[str, list[str]]:
    """`text` with every credential shape replaced by `[redacted <label> <digest>]`, and the labels replaced."""
    labels: list[str] = []
    data = text.encode("utf-8", "surrogateescape")
    for label, pattern, required in _RULES:
        if required is not None and required not in data:
            continue

        def replace(match: re.Match[bytes], label: str = label) -> bytes:
            labels.append(label)
            return f"[redacted {label} {short_digest(match.group())}]".encode()

        data = pattern.sub(replace, data)
    return data.decode("utf-8", "surrogateescape"), list(dict.fromkeys(labels))


class TokenScanner:
    """Fed a body chunk by chunk, with TOKEN_TAIL bytes of overlap, up to TOKEN_SCAN_BYTES."""

    def __init__(self, ignored: Iterable[bytes] = ()) -> None:
        self.found: dict[str, str] = {}
        self.scanned = 0
        self._tail = b""
        self.ignored = tuple(ignored)

    def feed(self, chunk: bytes) -> None:
        if self.scanned >= TOKEN_SCAN_BYTES:
            return
        chunk = chunk[: TOKEN_SCAN_BYTES - self.scanned]
        self.scanned += len(chunk)
        window = self._tail + chunk
        for label, digest in find_tokens(window, self.ignored).items():
            self.found.setdefault(label, digest)
        self._tail = window[-TOKEN_TAIL:]

    def flags(self, where: str = "the request body") -> list[dict[str, str]]:
        return [_flag(label, digest, where) for label, digest in self.found.items()]


def _flag(label: str, digest: str, where: str) -> dict[str, str]:
    article = "an" if label[0] in "AEIOU" else "a"
    return {"kind": "credential", "detail": f"{article} {label} ({digest}) is in {where}"}


def url_token_flags(texts: Iterable[str], ignored: Iterable[bytes] = ()) -> list[dict[str, str]]:
    found: dict[str, str] = {}
    ignored = tuple(ignored)
    for text in texts:
        for label, digest in find_tokens(text.encode("utf-8", "surrogateescape"), ignored).items():
            found.setdefault(label, digest)
    return [_flag(label, digest, "the URL") for label, digest in found.items()]


def header_token_flags(
    headers: Iterable[tuple[str, str]], ignored: Iterable[bytes] = ()
) -> list[dict[str, str]]:
    scanned = [(name.lower(), value) for name, value in headers if name.lower() not in AUTH_HEADERS]
    ignored = tuple(ignored)
    # One pass over all the values (on every request); only a hit is looked for header by header.
    if not find_tokens("\n".join(value for _, value in scanned).encode("utf-8", "surrogateescape"), ignored):
        return []
    flags = []
    for lname, value in scanned:
        for label, digest in find_tokens(value.encode("utf-8", "surrogateescape"), ignored).items():
            flags.append(_flag(label, digest, f"the {lname} header"))
    return flags
