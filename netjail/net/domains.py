"""Destination rules: domain/IP patterns, host normalisation and the allow/deny decision.

Everything here is a pure function of its arguments, so the whole matching table in docs/domain-rules.md is
tested without a proxy. The proxy must judge and dial the same thing: it calls `normalize_host` on every name a client sends and dials `Host.name`.

Compatible with srt (sandbox-runtime 0.0.78) domain patterns; where netjail is stricter the docs say so.
"""

import ipaddress
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from encodings import idna as _idna
from typing import Literal

from netjail.net.addresses import IPAddress, IPNetwork, unmapped
from netjail.net.suffixes import is_public_suffix
from netjail.utils.text import quoted

_MAX_NAME = 253
_MAX_LABEL = 63
_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")
_HEX = frozenset("0123456789abcdef")
_DIGITS = {8: frozenset("01234567"), 10: frozenset("0123456789"), 16: _HEX}
# Python's idna codec splits on these, other resolvers do not: refuse rather than guess.
_UNICODE_DOTS = frozenset("\u3002\uff0e\uff61")


class PatternError(ValueError):
    """The message is a full sentence a user can act on: what is wrong and the fix."""


# --------------------------------------------------------------------------------------------------------
# Hosts
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Host:
    """A destination as the client named it, after normalisation."""

    name: str  # normalised hostname (lowercase, punycode, no trailing dot) or canonical IP text
    ip: IPAddress | None  # set for an IP literal in any spelling; IPv4-mapped IPv6 is unwrapped to IPv4


def _host_for_ip(addr: IPAddress) -> Host:
    addr = unmapped(addr)
    return Host(str(addr), addr)


def _check_chars(text: str, what: str) -> None:
    """Refuse characters no host may contain, naming each one so the message says what to remove."""
    for ch in text:
        if unicodedata.category(ch)[0] in "CZ":  # controls, NUL, format (bidi, ZWJ), every kind of space
            raise PatternError(
                f"{what} {quoted(text)} contains a control character, space or invisible character "
                f"({ch!r}); remove it."
            )
    if "@" in text:
        rest = text.rsplit("@", 1)[1]
        raise PatternError(
            f"{what} {quoted(text)} contains userinfo ('...@'); write only the host, e.g. {quoted(rest)}."
        )
    if "\\" in text:
        raise PatternError(f"{what} {quoted(text)} contains a backslash; host names cannot contain one.")
    if "%" in text:
        raise PatternError(
            f"{what} {quoted(text)} contains '%' (an IPv6 zone id or percent-encoding); "
            "write the plain address or name without it."
        )


def _to_ascii_label(label: str, what: str, text: str) -> str:
    """One label to lowercase ASCII; an IDN label only if every encoder would agree on its punycode."""
    if label.isascii():
        return label.lower()
    if _UNICODE_DOTS & set(label):
        raise PatternError(f"{what} {quoted(text)} uses a non-ASCII dot; separate labels with '.'.")
    try:
        encoded = _idna.ToASCII(label).decode("ascii")
        round_trip = _idna.ToUnicode(encoded)
    except UnicodeError:
        raise PatternError(
            f"{what} {quoted(text)} has a label that cannot be encoded as an IDN; "
            "write it in punycode (xn--...)."
        ) from None
    # IDNA 2003 (Python's codec) maps some characters away or to others (ß -> ss, fullwidth -> ASCII,
    # soft hyphen -> nothing) where IDNA 2008 clients do not; accept only labels that are already in
    # normal form, so a pattern means the same name the client will send.
    if round_trip != label:
        raise PatternError(
            f"{what} {quoted(text)} has the label {quoted(label)}, which IDNA encoders disagree on or rewrite "
            f"(Python reads it as {quoted(round_trip)}); write the exact punycode form you mean (xn--...)."
        )
    return encoded.lower()


def _normalize_name(text: str, what: str, shown: str | None = None) -> str:
    """A DNS name to lowercase ASCII/punycode without a trailing dot; raises PatternError.

    `shown` is the whole entry to quote in messages when `text` is only part of it.
    """
    name = text.removesuffix(".")
    text = text if shown is None else shown
    if not name.strip("."):
        raise PatternError(f"{what} {quoted(text)} is empty; write a host name such as 'example.com'.")
    if len(name) > _MAX_NAME:  # punycode is never shorter than the text it encodes
        raise PatternError(
            f"{what} {quoted(text)} is longer than {_MAX_NAME} characters; no such name exists."
        )
    if name.startswith("."):
        base = name.lstrip(".")
        raise PatternError(
            f"{what} {quoted(text)} starts with '.'; write {quoted(base)} for the name itself "
            f"or {quoted('*.' + base)} for its subdomains."
        )
    labels = []
    for label in name.split("."):
        if not label:
            raise PatternError(f"{what} {quoted(text)} has an empty label ('..'); remove the extra dot.")
        ascii_label = _to_ascii_label(label, what, text)
        if len(ascii_label) > _MAX_LABEL:
            raise PatternError(
                f"{what} {quoted(text)} has a label longer than {_MAX_LABEL} characters; no such name exists."
            )
        bad = sorted(set(ascii_label) - _LABEL_CHARS)
        if bad:
            raise PatternError(
                f"{what} {quoted(text)} contains {quoted(''.join(bad))}; host names may use only letters, "
                "digits, '-' and '_' between dots."
            )
        if ascii_label[0] == "-" or ascii_label[-1] == "-":
            raise PatternError(
                f"{what} {quoted(text)} has a label that starts or ends with '-'; "
                "that is not a valid host name."
            )
        labels.append(ascii_label)
    result = ".".join(labels)
    if len(result) > _MAX_NAME:
        raise PatternError(f"{what} {quoted(text)} is longer than {_MAX_NAME} characters once encoded.")
    return result


def _ends_in_number(name: str) -> bool:
    """WHATWG URL rule: a name whose last label is a number is an IPv4 address or nothing."""
    last = name.rsplit(".", 1)[-1]
    if last.startswith("0x"):
        return set(last[2:]) <= _HEX
    return last.isdigit()


def _inet_number(part: str) -> int | None:
    if part.startswith("0x"):
        digits, base = part[2:], 16
    elif len(part) > 1 and part.startswith("0"):
        digits, base = part[1:], 8
    else:
        digits, base = part, 10
    # "0x" alone is refused (glibc and WHATWG disagree on it); int() would also take "_" and "+".
    if not digits or not set(digits) <= _DIGITS[base]:
        return None
    return int(digits, base)


def _inet_aton(name: str) -> ipaddress.IPv4Address | None:
    """Every IPv4 spelling inet_aton(3) accepts: 1-4 parts, decimal/octal/hex, the last fills the rest."""
    parts = name.split(".")
    if len(parts) > 4:
        return None
    values = []
    for part in parts:
        value = _inet_number(part)
        if value is None:
            return None
        values.append(value)
    *head, last = values
    if any(v > 255 for v in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    number = last
    for i, value in enumerate(head):
        number |= value << (8 * (3 - i))
    return ipaddress.IPv4Address(number)


def _ipv6(text: str) -> ipaddress.IPv6Address | None:
    if not text.isascii() or "%" in text:  # Python accepts scope ids; a zone id is never dialed as written
        return None
    try:
        return ipaddress.IPv6Address(text)
    except ValueError:
        return None


def normalize_host(text: str) -> Host:
    """Normalise a host a client sent (CONNECT target, Host header, SNI) or raise PatternError.

    Accepts a host name (IDN allowed, underscores allowed) or an IP literal in any spelling; the
    caller strips the port first. `Host.name` is what must be dialed.
    """
    if not text:
        raise PatternError("The host is empty; the client must name a destination.")
    if len(text) > _MAX_NAME + 2:  # cheap bound before any parsing of hostile input
        raise PatternError(f"Host {quoted(text)} is longer than {_MAX_NAME} characters; no such name exists.")
    _check_chars(text, "Host")
    if text.startswith("["):
        addr = _ipv6(text[1:-1]) if text.endswith("]") else None
        if addr is None:
            raise PatternError(f"Host {quoted(text)} is bracketed but is not an IPv6 address.")
        return _host_for_ip(addr)
    if ":" in text:
        addr = _ipv6(text)
        if addr is None:
            raise PatternError(
                f"Host {quoted(text)} contains ':' but is not an IPv6 address; pass the port separately."
            )
        return _host_for_ip(addr)
    if "/" in text or "?" in text or "#" in text:
        raise PatternError(f"Host {quoted(text)} contains a path, query or fragment; send only the host.")
    name = _normalize_name(text, "Host")
    if _ends_in_number(name):
        addr4 = _inet_aton(name)
        if addr4 is None:
            raise PatternError(f"Host {quoted(text)} ends in a number but is not a valid IPv4 address.")
        return _host_for_ip(addr4)
    return Host(name, None)


# --------------------------------------------------------------------------------------------------------
# Patterns
# --------------------------------------------------------------------------------------------------------

PatternKind = Literal["exact", "wildcard", "ip", "cidr", "any"]


@dataclass(frozen=True, slots=True)
class Pattern:
    """One allow/deny entry. Build it with `parse_pattern`; the derived fields make `matches` cheap."""

    source: str  # the entry exactly as written in the settings, used as `rule` in records
    kind: PatternKind  # "any" = "*" (only legal in deny lists)
    host: str  # exact/wildcard: punycode, no "*."; ip/cidr: canonical address/network text; any: "*"
    port: int | None  # None = every port
    _suffix: str = field(init=False, repr=False, compare=False)
    _network: IPNetwork | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_suffix", "." + self.host)
        network = ipaddress.ip_network(self.host) if self.kind in ("ip", "cidr") else None
        object.__setattr__(self, "_network", network)

    def matches(self, host: Host, port: int) -> bool:
        if self.port is not None and port != self.port:
            return False
        if self.kind == "exact":
            return host.ip is None and host.name == self.host
        if self.kind == "wildcard":
            return host.ip is None and host.name.endswith(self._suffix)
        if self.kind == "any":
            return True
        # A name never matches an IP rule, even one that would resolve there: names are judged by name.
        return host.ip is not None and self._network is not None and host.ip in self._network


def _parse_port(text: str, source: str) -> int:
    # srt's rule: 1-65535, decimal, no leading zero, so "x:0443" cannot smuggle a second meaning.
    if text.isascii() and text.isdigit() and text[0] != "0" and len(text) <= 5 and int(text) <= 65535:
        return int(text)
    raise PatternError(
        f"Pattern {quoted(source)} has the port {quoted(text)}; a port must be a number from 1 to 65535 "
        "without leading zeros, e.g. 'example.com:443'."
    )


def _split_port(text: str) -> tuple[str, int | None, bool]:
    """Split `host[:port]` / `[v6][:port]`; returns (host, port, bracketed)."""
    if text.startswith("["):
        close = text.find("]")
        if close == -1:
            raise PatternError(
                f"Pattern {quoted(text)} opens '[' without ']'; write e.g. '[2001:db8::1]:443'."
            )
        rest = text[close + 1 :]
        if rest and not rest.startswith(":"):
            raise PatternError(
                f"Pattern {quoted(text)} has {quoted(rest)} after ']'; only ':port' may follow, "
                "e.g. '[2001:db8::1]:443'."
            )
        return text[1:close], (_parse_port(rest[1:], text) if rest else None), True
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, _parse_port(port, text), False
    # Two or more colons: an unbracketed IPv6 literal, never split (`::1:443` is itself an address).
    return text, None, False


def _ip_pattern(source: str, addr: IPAddress, port: int | None) -> Pattern:
    return Pattern(source, "ip", str(unmapped(addr)), port)


def _cidr_pattern(source: str, text: str, port: int | None, allow_any: bool) -> Pattern:
    address, _, prefix = text.partition("/")
    addr: IPAddress | None = _ipv6(address) if ":" in address else _strict_ipv4(address)
    if addr is None or not prefix.isascii() or not prefix.isdigit() or (prefix != "0" and prefix[0] == "0"):
        raise PatternError(
            f"Pattern {quoted(source)} is not a valid CIDR range; write a network such as '10.0.0.0/8' "
            "or 'fc00::/7'."
        )
    try:
        network = ipaddress.ip_network(f"{addr}/{prefix}")
    except ValueError:
        try:
            hint = f"; did you mean {quoted(str(ipaddress.ip_network(f'{addr}/{prefix}', strict=False)))}"
        except ValueError:
            hint = ""
        raise PatternError(
            f"Pattern {quoted(source)} is not a valid CIDR range (prefix too long or host bits set){hint}?"
        ) from None
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:  # `::ffff:10.0.0.0/104` is the IPv4 rule 10.0.0.0/8
            network = ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    if network.prefixlen == 0 and not allow_any:
        raise PatternError(
            f"Pattern {quoted(source)} covers every address; list the networks you need "
            "(a /0 range is accepted only in a deny list)."
        )
    return Pattern(source, "cidr", str(network), port)


def _strict_ipv4(text: str) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        return None


def _wildcard_pattern(source: str, host: str, port: int | None) -> Pattern:
    if host.startswith("**"):
        raise PatternError(
            f"Pattern {quoted(source)} repeats '*'; write a single leading '*.' as in '*.example.com'."
        )
    if not host.startswith("*."):
        where = (
            "a leading '*' must be followed by '.'" if host.startswith("*") else "'*' appears inside a name"
        )
        raise PatternError(
            f"Pattern {quoted(source)} is not supported ({where}); the only wildcard is a whole leading "
            "label, as in '*.example.com', which matches its subdomains "
            "(add 'example.com' for the name itself)."
        )
    base_text = host[2:]
    if "*" in base_text:
        raise PatternError(f"Pattern {quoted(source)} has more than one '*'; use one leading '*.' only.")
    if not base_text:
        raise PatternError(f"Pattern {quoted(source)} has nothing after '*.'; write e.g. '*.example.com'.")
    base = _normalize_name(base_text, "Pattern", source)
    labels = base.split(".")
    if _ends_in_number(base):
        raise PatternError(
            f"Pattern {quoted(source)} puts a wildcard over an IP address; "
            "write a CIDR range such as '10.0.0.0/8'."
        )
    if len(labels) < 2:
        raise PatternError(
            f"Pattern {quoted(source)} would match every name under a top-level domain; "
            f"use a registered domain as the base, e.g. '*.example.{labels[0]}'."
        )
    if is_public_suffix(base, private=False):  # a registry's (`co.uk`); a host's (`github.io`) may be meant
        raise PatternError(
            f"Pattern {quoted(source)} would match every name under the public suffix {quoted(base)}; "
            f"use a registered domain as the base, e.g. '*.example.{base}'."
        )
    return Pattern(source, "wildcard", base, port)


def parse_pattern(text: str, *, allow_any: bool = False) -> Pattern:
    """Parse one allow/deny entry; `allow_any` admits `*` / `*:port` / `/0` (deny lists only)."""
    if not text:
        raise PatternError(
            "A pattern is empty; write a host such as 'example.com', a wildcard such as '*.example.com', "
            "or an IP address."
        )
    if "://" in text:
        rest = text.split("://", 1)[1]
        host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[-1]
        raise PatternError(
            f"Pattern {quoted(text)} is a URL; write only the host{' (and :port)' if ':' in host else ''}, "
            f"e.g. {quoted(host or 'example.com')}."
        )
    _check_chars(text, "Pattern")
    if "?" in text or "#" in text:
        raise PatternError(f"Pattern {quoted(text)} contains a query or fragment; write only the host.")
    if "/" in text:
        head = text.partition("/")[0]
        address = head.removeprefix("[")
        if _strict_ipv4(address) is None and _ipv6(address) is None:
            raise PatternError(
                f"Pattern {quoted(text)} contains a path; write only the host, e.g. {quoted(head)}."
            )
    host, port, bracketed = _split_port(text)
    if host == "*":
        if not allow_any:
            raise PatternError(
                f"Pattern {quoted(text)} would allow every host; list the domains you need "
                "('*' is accepted only in a deny list)."
            )
        return Pattern(text, "any", "*", port)
    if bracketed or ":" in host:
        if "/" in host:
            return _cidr_pattern(text, host, port, allow_any)
        addr6 = _ipv6(host)
        if addr6 is None:
            if bracketed and _strict_ipv4(host) is not None:
                raise PatternError(
                    f"Pattern {quoted(text)} brackets an IPv4 address; write it without brackets."
                )
            raise PatternError(
                f"Pattern {quoted(text)} is not a valid IPv6 address; with a port, IPv6 must be bracketed, "
                "e.g. '[2001:db8::1]:443'."
            )
        return _ip_pattern(text, addr6, port)
    if "/" in host:
        return _cidr_pattern(text, host, port, allow_any)
    if "*" in host:
        return _wildcard_pattern(text, host, port)
    name = _normalize_name(host, "Pattern", text)
    if _ends_in_number(name):
        addr4 = _strict_ipv4(name)
        if addr4 is not None:
            return _ip_pattern(text, addr4, port)
        loose = _inet_aton(name)
        if loose is not None:
            raise PatternError(
                f"Pattern {quoted(text)} is an unusual IPv4 spelling; write it as {quoted(str(loose))}."
            )
        raise PatternError(
            f"Pattern {quoted(text)} ends in a number but is not a valid IPv4 address; "
            "write a dotted address such as '10.1.2.3' or a name whose last label is not numeric."
        )
    return Pattern(text, "exact", name, port)


# --------------------------------------------------------------------------------------------------------
# Decisions
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Match:
    verdict: Literal["allow", "deny"]
    rule: str  # Pattern.source that decided, or "default-deny"
    reason: Literal["allowed", "denied_by_rule", "not_allowed"]


_DEFAULT_DENY = Match("deny", "default-deny", "not_allowed")


def match_destination(host: Host, port: int, allowed: Sequence[Pattern], denied: Sequence[Pattern]) -> Match:
    """Deny wins over allow; a destination no rule names is denied."""
    for pattern in denied:
        if pattern.matches(host, port):
            return Match("deny", pattern.source, "denied_by_rule")
    for pattern in allowed:
        if pattern.matches(host, port):
            return Match("allow", pattern.source, "allowed")
    return _DEFAULT_DENY


def address_explicitly_allowed(addr: IPAddress, port: int, allowed: Sequence[Pattern]) -> bool:
    """True when an allowed IP/CIDR entry (port-compatible) names `addr` itself.

    This is how a user lets an intranet name resolve into a guarded range. Only the address as dialed
    counts: an address embedded in NAT64/6to4 form never earns the carve-out (srt's rule).
    """
    addr = unmapped(addr)
    return any(
        p._network is not None and (p.port is None or p.port == port) and addr in p._network for p in allowed
    )
