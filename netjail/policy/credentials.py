"""Masked credentials, pure: the placeholder the command sees for each secret, how a masked value or file is built
from the real one (`extract`, `decode: "jwt"`, `maskClaims`, `maskDuplicates`), and which credentials the proxy may
put back on a request to a given host.

A placeholder has the real value's shape — same length, the same character class at each position (hexadecimal
stays hexadecimal), the same well-known prefix (`ghp_`, `sk-ant-api03-`, `AKIA`…) — so tools that check a key's
format accept it; its other characters are random. When the real value is too short for 64 random bits, the
placeholder is srt's `fake_value_<uuid4>` instead (its length then differs). The real values live only in the memory
of the supervisor and the proxy: this module never writes anything.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from netjail.net.domains import Host, Pattern

MIN_RANDOM_BITS = 64
SRT_PREFIX = "fake_value_"
# Prefixes that name a key's kind, not its secret: kept in the placeholder so format checks still pass.
_KNOWN_PREFIX = re.compile(
    r"^(?:AKIA|ASIA|AGPA|AIDA|AROA|ghp_|gho_|ghu_|ghs_|ghr_|github_pat_|glpat-|xox[abposr]-|npm_|pypi-|"
    r"sk-ant-[a-z]+\d*-|sk-proj-|sk-|rk_live_|sk_live_|sk_test_|pk_live_|pk_test_|hf_|dop_v1_|SG\.)"
)
_LOWER, _UPPER, _DIGITS = "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789"
_HEX_LOWER, _HEX_UPPER = set("0123456789abcdef"), set("0123456789ABCDEF")
_KEPT = set("-_.=")  # separators and base64 padding stay where they are: they carry the shape
_ALNUM = _LOWER + _UPPER + _DIGITS
JWT_PATTERN = re.compile(r"(eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)")


def _random_from(alphabet: str) -> str:
    return alphabet[secrets.randbelow(len(alphabet))]


def _same_shape(real: str) -> tuple[str, float]:
    """A value shaped like `real`, and the random bits it carries."""
    prefix_match = _KNOWN_PREFIX.match(real)
    prefix = prefix_match.group(0) if prefix_match else ""
    body = real[len(prefix) :]
    significant = {c for c in body if c not in _KEPT}
    hex_alphabet = (
        "0123456789abcdef"
        if significant and significant <= _HEX_LOWER
        else "0123456789ABCDEF"
        if significant and significant <= _HEX_UPPER
        else None
    )
    out, bits = [], 0.0
    for char in body:
        if char in _KEPT:
            out.append(char)
            continue
        alphabet = hex_alphabet or (
            _LOWER if char in _LOWER else _UPPER if char in _UPPER else _DIGITS if char in _DIGITS else _ALNUM
        )
        out.append(_random_from(alphabet))
        bits += math.log2(len(alphabet))
    return prefix + "".join(out), bits


def mint_placeholder(real: str, taken: Iterable[str] = ()) -> str:
    """A fresh placeholder for `real` that nests with none of `taken` (so substitution is unambiguous)."""
    taken = list(taken)
    for _ in range(16):
        candidate, bits = _same_shape(real)
        if bits < MIN_RANDOM_BITS:
            candidate = SRT_PREFIX + str(uuid.uuid4())
        if candidate != real and not any(candidate in t or t in candidate for t in taken):
            return candidate
    raise RuntimeError("could not mint a distinct placeholder")  # pragma: no cover - 64+ random bits


# -- JWT -------------------------------------------------------------------------------------------------------


def _b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_parts(token: str) -> tuple[dict, dict] | None:
    """(header, payload) when `token` is a JWT (three segments, JSON header with `alg`, JSON object payload)."""
    pieces = token.split(".")
    if len(pieces) != 3:
        return None
    try:
        header, payload = (json.loads(_b64url_decode(p)) for p in pieces[:2])
    except (ValueError, binascii.Error):
        return None
    if not isinstance(header, dict) or "alg" not in header or not isinstance(payload, dict):
        return None
    return header, payload


def _filler_signature() -> str:
    return _b64url(secrets.token_bytes(32))


def fake_jwt() -> str:
    """srt's whole-token fake: parseable, far-future `exp`, `alg: HS256` (never `none`) and a garbage signature."""
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = {"exp": 4102444800, "iat": 1700000000, "jti": str(uuid.uuid4())}
    return f"{header}.{_b64url(json.dumps(payload, separators=(',', ':')).encode())}.{_filler_signature()}"


# -- masking a value -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Swap:
    """One placeholder and the real text it stands for."""

    placeholder: str
    real: str = field(repr=False)


@dataclass
class MaskResult:
    text: str  # what the command sees
    swaps: list[Swap]
    matched: bool  # False: extract / decode found nothing to mask (onExtractNoMatch decides)


def _mask_jwt(token: str, claims: Sequence[str] | None, taken: list[str]) -> tuple[str, list[Swap]] | None:
    parts = jwt_parts(token)
    if parts is None:
        return None
    if not claims:
        fake = fake_jwt()
        return fake, [Swap(fake, token)]
    _, payload = parts
    swaps: list[Swap] = []
    for claim in claims:
        value = payload.get(claim)
        if isinstance(value, str) and value:
            placeholder = mint_placeholder(value, taken + [s.placeholder for s in swaps])
            payload[claim] = placeholder
            swaps.append(Swap(placeholder, value))
    if not swaps:
        return None
    header_segment = token.split(".")[0]
    rebuilt = f"{header_segment}.{_b64url(json.dumps(payload, separators=(',', ':')).encode())}.{_filler_signature()}"
    return rebuilt, [Swap(rebuilt, token), *swaps]


def mask_text(
    real: str,
    *,
    extract: re.Pattern[str] | None = None,
    decode: str | None = None,
    mask_claims: Sequence[str] | None = None,
    mask_duplicates: bool = False,
    whole_value: bool = True,
    taken: Iterable[str] = (),
) -> MaskResult:
    """The masked form of `real`, srt's way. Without extract or decode the whole value is the secret (a masked file's
    whole content is, too, trailing newline aside); with `extract`, each distinct group-1 capture is; with
    `decode: "jwt"`, each candidate that verifies as a JWT is (srt's default candidates: anything shaped like one)."""
    taken = list(taken)
    if extract is None and decode is None:
        secret = real.rstrip("\r\n") if not whole_value else real
        if not secret.strip():
            return MaskResult(real, [], matched=False)
        placeholder = mint_placeholder(secret, taken)
        return MaskResult(placeholder + real[len(secret) :], [Swap(placeholder, secret)], matched=True)
    pattern = extract or JWT_PATTERN
    swaps: dict[str, Swap] = {}  # real capture -> its swap (one placeholder per distinct value)
    extra: list[Swap] = []
    pieces: list[str] = []
    position = 0
    for match in pattern.finditer(real):
        if match.lastindex is None or match.group(1) is None or not match.group(1):
            continue
        start, end = match.span(1)
        if start < position:
            continue
        value = match.group(1)
        if value not in swaps:
            used = taken + [s.placeholder for s in (*swaps.values(), *extra)]
            if decode == "jwt":
                masked = _mask_jwt(value, mask_claims, used)
                if masked is None:
                    continue  # not a JWT: left as it is (srt)
                _, jwt_swaps = masked
                swaps[value] = jwt_swaps[0]
                extra += jwt_swaps[1:]
            else:
                swaps[value] = Swap(mint_placeholder(value, used), value)
        pieces += [real[position:start], swaps[value].placeholder]
        position = end
    pieces.append(real[position:])
    text = "".join(pieces)
    if mask_duplicates and swaps:
        for value, swap in sorted(swaps.items(), key=lambda item: -len(item[0])):
            text = text.replace(value, swap.placeholder)
    return MaskResult(text, [*swaps.values(), *extra], matched=bool(swaps))


# -- where a credential may be injected ----------------------------------------------------------------------


@dataclass(frozen=True)
class Credential:
    """One masked secret as the proxy knows it: `name` says where it came from (`env:NAME`, `file:PATH#n`)."""

    name: str
    placeholder: str
    real: str = field(repr=False)
    inject_hosts: tuple[Pattern, ...]
    pin_headers: tuple[str, ...] = ()

    def injectable_at(self, host: Host) -> bool:
        return any(p.matches(host, 0) for p in self.inject_hosts)

    def as_config(self) -> dict:
        """The form the supervisor hands the proxy (over its control socket, never through a file)."""
        return {
            "name": self.name,
            "placeholder": self.placeholder,
            "real": self.real,
            "inject_hosts": [p.source for p in self.inject_hosts],
            "pin_headers": list(self.pin_headers),
        }

    @classmethod
    def from_config(cls, data: dict) -> Credential:
        from netjail.net.domains import parse_pattern

        hosts = tuple(parse_pattern(h) for h in data["inject_hosts"])
        return cls(
            data["name"], data["placeholder"], data["real"], hosts, tuple(data.get("pin_headers") or ())
        )


class StreamSwap:
    """A streaming byte substitution (placeholder → real on the way out, real → placeholder on the way back):
    holds back the last `longest - 1` bytes of each chunk so a needle split across chunks is still seen whole;
    b"" (the end of the stream, as mitmproxy calls it) flushes what is held."""

    def __init__(self, pairs: Sequence[tuple[bytes, bytes]]):
        self.pairs = [(a, b) for a, b in pairs if a]
        self.longest = max((len(a) for a, _ in self.pairs), default=1)
        self.carry = b""
        self.counts: dict[bytes, int] = {}

    def __call__(self, chunk: bytes) -> bytes:
        data = self.carry + chunk
        parts, position = [], 0
        while True:  # every complete needle, leftmost first (needles never nest)
            best: tuple[int, bytes, bytes] | None = None
            for needle, replacement in self.pairs:
                index = data.find(needle, position)
                if index != -1 and (best is None or index < best[0]):
                    best = (index, needle, replacement)
            if best is None:
                break
            index, needle, replacement = best
            parts += [data[position:index], replacement]
            self.counts[needle] = self.counts.get(needle, 0) + 1
            position = index + len(needle)
        # what is left may hold the start of a needle the next chunk completes; at the end (b"") nothing is held
        cut = len(data) if not chunk else max(position, len(data) - (self.longest - 1))
        parts.append(data[position:cut])
        self.carry = data[cut:]
        return b"".join(parts)


def replace_all(text: str, pairs: Sequence[tuple[str, str]]) -> tuple[str, dict[str, int]]:
    """Every occurrence of each needle replaced, leftmost first (needles never nest); and how many of each."""
    counts: dict[str, int] = {}
    for needle, replacement in pairs:
        if needle and needle in text:
            counts[needle] = text.count(needle)
            text = text.replace(needle, replacement)
    return text, counts
