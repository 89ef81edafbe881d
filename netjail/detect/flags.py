"""Exfiltration flags: pure functions and small streaming classes, standard library only.

They run in two places. In the proxy, while a request body passes (`BodyScanner` is fed every chunk by the
recorder's body tap, so nothing is buffered whole) and on each request's URL and headers, producing the
`flags` of the flow record. In `netjail audit`, over a whole run's records, for what only the run as a whole
shows (`BurstCounter`: subdomain bursts) and for records written without flags. The secrets they look for are
netjail.detect.secrets.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from netjail.detect.tokens import TokenScanner, url_token_flags
from netjail.net.suffixes import registrable_domain
from netjail.utils.text import human_bytes

if TYPE_CHECKING:
    from netjail.detect.secrets import SecretHit, Secrets

LARGE_UPLOAD = 1024 * 1024  # bytes out of one request that make it a "large upload"
SAMPLE_BYTES = 64 * 1024  # the entropy of a body is measured on its first SAMPLE_BYTES
BINARY_ENTROPY = 7.5  # bits per byte: compressed or encrypted data
MIN_BINARY_BODY = 1024
B64_RUN = 96  # base64 characters in a row (longer than a base64 SHA-512, 88) that make "encoded data"
HEX_RUN = 130  # hex digits in a row (longer than a hex SHA-512, 128)
B64_RUN_ENTROPY = 4.5  # bits per character; random base64 has about 6, English-like identifiers about 4
URL_TOKEN = 32  # a query value or path segment this long is examined
URL_TOKEN_ENTROPY = 4.2
URL_HEX = 64
LONG_LABEL = 40  # DNS labels longer than this are unusual outside tunnels (the limit is 63)
BURST_NAMES = 20  # distinct names under one domain in one run
BURST_ENCODED_NAMES = 5  # ... or this many whose first label looks encoded
CARRY_CAP = 4096

# Query parameters of presigned URLs (S3, GCS, Azure, CloudFront): server-issued signatures, not payloads.
SIGNING_PARAMS = frozenset(
    {
        "x-amz-signature", "x-amz-credential", "x-amz-security-token", "x-goog-signature", "x-goog-credential",
        "signature", "sig", "se", "sp", "sv", "sr", "st", "skoid", "sktid", "skt", "ske", "sks", "skv",
        "key-pair-id", "policy", "expires", "token",
    }
)  # fmt: skip
# Headers whose values are credentials or caches by design: high entropy there is expected.
EXPECTED_OPAQUE_HEADERS = frozenset(
    {
        "authorization", "proxy-authorization", "cookie", "if-none-match", "if-match", "etag",
        "sec-websocket-key", "x-request-id", "traceparent", "tracestate", "x-amz-content-sha256",
        "x-amz-security-token", "x-goog-api-client", "user-agent", "accept", "npm-session", "x-csrf-token",
        "x-xsrf-token", "content-md5", "digest",
    }
)  # fmt: skip

_B64_CHARS = rb"A-Za-z0-9+/_\-"
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-"
# Only at the start of a run (the look-behind), so the scan is linear in the body's length.
_RUN = re.compile(rb"(?<![" + _B64_CHARS + rb"])[" + _B64_CHARS + rb"]{%d,}={0,2}" % min(B64_RUN, HEX_RUN))
_HEX_ONLY = re.compile(rb"[0-9a-fA-F]+")
_TOKEN_SPLIT = re.compile(r"[/?&=;,:+ ]")


def flag(kind: str, detail: str) -> dict[str, str]:
    return {"kind": kind, "detail": detail}


def entropy(data: bytes | str) -> float:
    """Shannon entropy in bits per symbol (byte or character)."""
    if not data:
        return 0.0
    total = len(data)
    return -sum(n / total * math.log2(n / total) for n in Counter(data).values())


# ---------------------------------------------------------------------------------------------------------
# Request bodies, streamed
# ---------------------------------------------------------------------------------------------------------


def _looks_encoded(run: bytes) -> str | None:
    """'base64' or 'hex' when a run of base64-alphabet characters looks like encoded data, else None."""
    core = run.rstrip(b"=")
    if _HEX_ONLY.fullmatch(core):
        return "hex" if len(core) >= HEX_RUN and entropy(core[:CARRY_CAP]) >= 3.0 else None
    if len(core) < B64_RUN:
        return None
    classes = sum(bool(re.search(p, core)) for p in (rb"[a-z]", rb"[A-Z]", rb"[0-9]"))
    return "base64" if classes == 3 and entropy(core[:CARRY_CAP]) >= B64_RUN_ENTROPY else None


class BodyScanner:
    """Fed a request body chunk by chunk: finds secrets and well-known credential shapes (across chunk
    boundaries), long runs of base64 or hex, and measures the entropy of the first SAMPLE_BYTES. Memory: the
    sample plus a few kilobytes."""

    def __init__(self, secrets: Secrets | None = None):
        self.secrets = secrets if secrets else None
        self.size = 0
        self.sample = bytearray()
        self.found: dict[str, SecretHit] = {}
        self.encoded: tuple[str, int] | None = None  # (kind, length) of the first encoded run
        self._tail = b""  # the last bytes, for a secret split between two chunks
        self._carry = b""  # a run of base64-alphabet characters still open at the end of the last chunk
        # well-known credential shapes nobody declared (not this run's canaries and placeholders)
        self.tokens = TokenScanner(secrets.ignored if secrets else ())

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        if len(self.sample) < SAMPLE_BYTES:
            self.sample += chunk[: SAMPLE_BYTES - len(self.sample)]
        if self.secrets is not None:
            window = self._tail + chunk
            for hit in self.secrets.find(window):
                self.found.setdefault(hit.secret.name, hit)
            self._tail = window[-(self.secrets.longest - 1) :] if self.secrets.longest > 1 else b""
        self.tokens.feed(chunk)
        if self.encoded is None:
            self._scan_runs(chunk)

    def _scan_runs(self, chunk: bytes) -> None:
        buffer = self._carry + chunk
        cut = len(buffer.rstrip(_B64_ALPHABET))
        for match in _RUN.finditer(buffer, 0, cut):
            self._judge_run(match.group())
            if self.encoded is not None:
                return
        self._carry = buffer[cut:]
        if len(self._carry) > CARRY_CAP:  # long enough to judge already; keep judging the rest as it comes
            self._judge_run(self._carry)
            self._carry = b""

    def _judge_run(self, run: bytes) -> None:
        kind = _looks_encoded(run)
        if kind is not None:
            self.encoded = (kind, len(run))

    def finish(self) -> None:
        if self.encoded is None and self._carry:
            self._judge_run(self._carry)
        self._carry = b""

    def flags(self) -> list[dict[str, str]]:
        self.finish()
        found: list[dict[str, str]] = [
            flag(
                h.secret.flag_kind,
                f"the value of {h.secret.name} ({h.secret.digest}) is in the request body ({h.encoding})",
            )
            for h in self.found.values()
        ]
        found += self.tokens.flags()
        sample = bytes(self.sample)
        binary = (
            sample
            and sum(1 for b in sample[:4096] if b < 9 or 13 < b < 32 or b > 126) > len(sample[:4096]) // 10
        )
        if binary and self.size >= MIN_BINARY_BODY and (bits := entropy(sample)) >= BINARY_ENTROPY:
            found.append(
                flag(
                    "high_entropy_body",
                    f"the request body ({human_bytes(self.size)}) is binary with {bits:.2f} bits/byte: "
                    "compressed or encrypted data",
                )
            )
        elif self.encoded is not None:
            kind, length = self.encoded
            more = "+" if length > CARRY_CAP else ""
            found.append(
                flag(
                    "encoded_body",
                    f"the request body carries {length}{more} characters of {kind}-encoded data",
                )
            )
        return found


# ---------------------------------------------------------------------------------------------------------
# URLs, hosts and headers
# ---------------------------------------------------------------------------------------------------------


def _token_kind(token: str, *, in_query: bool) -> str | None:
    if len(token) < URL_TOKEN:
        return None
    core = token.rstrip("=")
    if re.fullmatch(r"[0-9a-fA-F]+", core):
        return "hex" if in_query and len(core) >= URL_HEX else None  # content hashes live in paths
    if not re.fullmatch(r"[A-Za-z0-9+/_\-.~]+", core):
        return None
    classes = sum(bool(re.search(p, core)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]"))
    if classes == 3 and entropy(core) >= URL_TOKEN_ENTROPY:
        return "base64"
    return None


def host_flags(host: str | None) -> list[dict[str, str]]:
    if not host or ":" in host or re.fullmatch(r"[\d.]+", host):
        return []
    long = [label for label in host.split(".") if len(label) > LONG_LABEL]
    if not long:
        return []
    return [
        flag(
            "long_dns_label",
            f"the host name has a {len(long[0])}-character label (DNS tunnelling carries data so)",
        )
    ]


def url_flags(path: str | None) -> list[dict[str, str]]:
    """Query values and path segments that carry encoded data."""
    if not path:
        return []
    target, _, query = path.partition("?")
    for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if name.lower() in SIGNING_PARAMS:
            continue
        for token in (value, name):
            if (kind := _token_kind(token, in_query=True)) is not None:
                shown = name if len(name) <= 40 else name[:37] + "..."
                return [
                    flag(
                        "encoded_url",
                        f"query parameter {shown!r} carries {len(token)} characters of {kind}-encoded data "
                        f"({entropy(token):.1f} bits/char)",
                    )
                ]
    for segment in urllib.parse.unquote(target).split("/"):
        if (kind := _token_kind(segment, in_query=False)) is not None:
            return [
                flag(
                    "encoded_url",
                    f"a path segment carries {len(segment)} characters of {kind}-encoded data "
                    f"({entropy(segment):.1f} bits/char)",
                )
            ]
    return []


def header_flags(headers: Iterable[tuple[str, str]], secrets: Secrets | None) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    encoded_reported = False
    for name, value in headers:
        lname = name.lower()
        if secrets:
            for hit in secrets.find_text(value):
                found.append(
                    flag(
                        hit.secret.flag_kind,
                        f"the value of {hit.secret.name} ({hit.secret.digest}) is in the {lname} header ({hit.encoding})",
                    )
                )
        if not encoded_reported and lname not in EXPECTED_OPAQUE_HEADERS:
            for match in _RUN.finditer(value.encode("utf-8", "surrogateescape")):
                if (kind := _looks_encoded(match.group())) is not None:
                    found.append(
                        flag(
                            "encoded_header",
                            f"the {lname} header carries {len(match.group())} characters of {kind}-encoded data",
                        )
                    )
                    encoded_reported = True
                    break
    return found


def url_secret_flags(texts: Iterable[str], secrets: Secrets | None) -> list[dict[str, str]]:
    if not secrets:
        return []
    found: dict[str, dict[str, str]] = {}
    for text in texts:
        for hit in secrets.find_text(text):
            found.setdefault(
                hit.secret.name,
                flag(
                    hit.secret.flag_kind,
                    f"the value of {hit.secret.name} ({hit.secret.digest}) is in the URL ({hit.encoding})",
                ),
            )
    return list(found.values())


def size_flags(bytes_out: int, threshold: int = LARGE_UPLOAD) -> list[dict[str, str]]:
    if bytes_out >= threshold:
        return [
            flag(
                "large_upload",
                f"{human_bytes(bytes_out)} sent in one request (threshold {human_bytes(threshold)})",
            )
        ]
    return []


def record_bytes_out(record: Mapping) -> int:
    sent = record.get("bytes_out") or 0
    ws = record.get("websocket") or {}
    return int(sent) + int(ws.get("bytes_out") or 0)


def flags_for_record(record: Mapping, *, large_upload: int = LARGE_UPLOAD) -> list[dict[str, str]]:
    """What a record alone shows (no body, no headers): for records written without `flags`."""
    return [
        *host_flags(record.get("host")),
        *url_flags(record.get("path")),
        *url_token_flags([str(record.get("path") or "")]),
        *size_flags(record_bytes_out(record), large_upload),
    ]


# ---------------------------------------------------------------------------------------------------------
# A whole run
# ---------------------------------------------------------------------------------------------------------


def _label_looks_encoded(label: str) -> bool:
    return len(label) >= 16 and entropy(label) >= 3.2


class BurstCounter:
    """Distinct names per registrable domain (a DNS tunnel needs a zone its owner controls), over a run; bounded: at most `keep` example names per domain, and
    distinct names are counted through a set capped at `cap` per domain."""

    def __init__(self, cap: int = 10_000, keep: int = 5):
        self.cap, self.keep = cap, keep
        self.names: dict[str, set[str]] = {}
        self.encoded: Counter[str] = Counter()
        self._seen: set[str] = set()  # hosts already counted (most records repeat a host)

    def add(self, host: str | None) -> None:
        if not host or host in self._seen:
            return
        if len(self._seen) < 100 * self.cap:
            self._seen.add(host)
        parent = registrable_domain(host)
        if parent is None or host == parent:
            return
        names = self.names.setdefault(parent, set())
        if host in names or len(names) >= self.cap:
            return
        names.add(host)
        if _label_looks_encoded(host[: -len(parent) - 1].split(".")[0]):
            self.encoded[parent] += 1

    def findings(self) -> Iterator[dict]:
        for parent, names in sorted(self.names.items()):
            encoded = self.encoded[parent]
            if len(names) >= BURST_NAMES or encoded >= BURST_ENCODED_NAMES:
                examples = sorted(names)[: self.keep]
                why = f"{encoded} of them look encoded" if encoded else "more than any normal client uses"
                yield {
                    "kind": "subdomain_burst",
                    "domain": parent,
                    "names": len(names),
                    "examples": examples,
                    "detail": f"{len(names)} distinct names under {parent} ({why}): DNS tunnelling pattern",
                }
