"""Tables for netjail.net.domains: patterns, host normalisation and decisions (the local-range guard is
tests/unit/net/test_addresses.py).

Every negative row has a positive control beside it (same shape, one thing changed), so a table cannot
pass because everything is refused. Attack-catalogue items: P3 (wildcard confusion), P4 (malformed
names), N5 (IP literal spellings), C1/C2 (invalid entries, empty allow list).
"""

import dataclasses
import ipaddress
import re
from pathlib import Path

import pytest

from netjail.net.domains import (
    Host,
    Match,
    Pattern,
    PatternError,
    address_explicitly_allowed,
    match_destination,
    normalize_host,
    parse_pattern,
)

A = ipaddress.ip_address
N = ipaddress.ip_network
DOCS = Path(__file__).resolve().parents[3] / "docs" / "domain-rules.md"


def _pattern(text: str) -> Pattern:
    """Docs and tables mark deny-only entries with a "(deny list)" suffix."""
    if text.endswith(" (deny list)"):
        return parse_pattern(text.removesuffix(" (deny list)"), allow_any=True)
    return parse_pattern(text)


# ----------------------------------------------------------------------------------------------------
# The documented matching table is itself a test: the docs cannot drift from the code.
# ----------------------------------------------------------------------------------------------------


def _docs_rows() -> list[tuple[str, str, int, bool]]:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Matching table", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[2].isdigit():
            continue  # header, separator, prose
        pattern, host = (re.sub(r"`([^`]*)`", r"\1", c) for c in cells[:2])
        rows.append((pattern, host, int(cells[2]), {"yes": True, "no": False}[cells[3]]))
    return rows


DOC_ROWS = _docs_rows()


def test_docs_table_is_present() -> None:
    assert len(DOC_ROWS) >= 40
    assert {expected for *_, expected in DOC_ROWS} == {True, False}


@pytest.mark.parametrize(
    ("pattern", "host", "port", "expected"), DOC_ROWS, ids=[f"{r[0]}~{r[1]}:{r[2]}" for r in DOC_ROWS]
)
def test_documented_matching_table(pattern: str, host: str, port: int, expected: bool) -> None:
    assert _pattern(pattern).matches(normalize_host(host), port) is expected


# ----------------------------------------------------------------------------------------------------
# Matching (more rows than the docs show)
# ----------------------------------------------------------------------------------------------------

MATCH_TABLE = [
    # exact names, P3
    ("example.test", "example.test", 443, True),
    ("Example.TEST", "example.test", 443, True),
    ("example.test.", "example.test", 443, True),
    ("example.test", "EXAMPLE.TEST.", 443, True),
    ("example.test", "www.example.test", 443, False),
    ("example.test", "evil-example.test", 443, False),
    ("example.test", "evilexample.test", 443, False),
    ("example.test", "example.test.evil.test", 443, False),
    ("example.test", "example.tes", 443, False),
    ("example.test", "xample.test", 443, False),
    # wildcards: any depth, never the apex, P3
    ("*.example.test", "www.example.test", 443, True),
    ("*.example.test", "a.b.c.example.test", 443, True),
    ("*.Example.Test.", "WWW.example.test.", 443, True),
    ("*.example.test", "example.test", 443, False),
    ("*.example.test", "example.test.", 443, False),
    ("*.example.test", "evil-example.test", 443, False),
    ("*.example.test", "wwwexample.test", 443, False),
    ("*.example.test", "www.example.test.evil.test", 443, False),
    ("*.example.test", "example.test.evil.test", 443, False),
    ("*.example.test", "_dmarc.example.test", 443, True),
    ("*.example.test", "xn--bcher-kva.example.test", 443, True),
    ("*.a.example.test", "x.a.example.test", 443, True),
    ("*.a.example.test", "x.b.example.test", 443, False),
    # IDN / punycode, P3
    ("bücher.example", "xn--bcher-kva.example", 443, True),
    ("xn--bcher-kva.example", "bücher.example", 443, True),
    ("XN--BCHER-KVA.example", "bücher.example", 443, True),
    ("bücher.example", "XN--BCHER-KVA.EXAMPLE.", 443, True),
    ("*.bücher.example", "www.xn--bcher-kva.example", 443, True),
    ("*.xn--bcher-kva.example", "www.bücher.example", 443, True),
    ("bücher.example", "bucher.example", 443, False),
    ("*.bücher.example", "xn--bcher-kva.example", 443, False),
    # ports
    ("example.test:443", "example.test", 443, True),
    ("example.test:443", "example.test", 8443, False),
    ("example.test:443", "example.test", 44, False),
    ("example.test", "example.test", 1, True),
    ("example.test", "example.test", 65535, True),
    ("*.example.test:8443", "api.example.test", 8443, True),
    ("*.example.test:8443", "api.example.test", 443, False),
    ("[::1]:443", "::1", 443, True),
    ("[::1]:443", "::1", 80, False),
    ("[2001:db8::1]", "2001:db8::1", 1, True),
    ("10.1.2.3:22", "10.1.2.3", 22, True),
    ("10.1.2.3:22", "10.1.2.3", 2222, False),
    # IPv4 literal in every spelling the client may use, N5
    ("10.1.2.3", "10.1.2.3", 443, True),
    ("10.1.2.3", "167838211", 443, True),
    ("10.1.2.3", "012.1.2.3", 443, True),
    ("10.1.2.3", "012.01.02.03", 443, True),
    ("10.1.2.3", "0xa.1.2.3", 443, True),
    ("10.1.2.3", "0XA.0X1.0x2.0x3", 443, True),
    ("10.1.2.3", "0xa010203", 443, True),
    ("10.1.2.3", "01200201003", 443, True),
    ("10.1.2.3", "10.1.515", 443, True),
    ("10.1.2.3", "10.66051", 443, True),
    ("10.1.2.3", "10.1.2.3.", 443, True),
    ("10.1.2.3", "::ffff:10.1.2.3", 443, True),
    ("10.1.2.3", "[::ffff:a01:203]", 443, True),
    ("10.1.2.3", "[0:0:0:0:0:ffff:10.1.2.3]", 443, True),
    ("10.1.2.3", "10.1.2.4", 443, False),
    ("10.1.2.3", "167838212", 443, False),
    ("10.1.2.3", "::10.1.2.3", 443, False),  # IPv4-compatible is another address: not the exact IP
    ("10.1.2.3", "64:ff9b::10.1.2.3", 443, False),
    ("127.0.0.1", "0x7f.1", 80, True),
    ("127.0.0.1", "127.1", 80, True),
    ("127.0.0.1", "2130706433", 80, True),
    ("127.0.0.1", "017700000001", 80, True),
    ("127.0.0.1", "0x7f000001", 80, True),
    ("127.0.0.1", "127.0.0.2", 80, False),
    # IPv6 literals
    ("[::1]", "[0:0:0:0:0:0:0:1]", 443, True),
    ("[::1]", "::1", 443, True),
    ("[::1]", "::2", 443, False),
    ("2001:db8::1", "[2001:DB8:0::1]", 443, True),
    ("[2001:db8::1]", "2001:db8::2", 443, False),
    ("::ffff:10.1.2.3", "10.1.2.3", 443, True),
    ("[::ffff:10.1.2.3]:443", "167838211", 443, True),
    # CIDR
    ("10.0.0.0/8", "10.255.1.2", 443, True),
    ("10.0.0.0/8", "012.1.1.1", 443, True),
    ("10.0.0.0/8", "::ffff:10.9.9.9", 443, True),
    ("10.0.0.0/8", "11.0.0.1", 443, False),
    ("10.0.0.0/8", "9.255.255.255", 443, False),
    ("10.0.0.0/8:22", "10.1.1.1", 22, True),
    ("10.0.0.0/8:22", "10.1.1.1", 443, False),
    ("::ffff:10.0.0.0/104", "10.2.3.4", 443, True),
    ("fc00::/7", "fd12::1", 443, True),
    ("[fc00::/7]:443", "fd12::1", 443, True),
    ("[fc00::/7]:443", "fd12::1", 80, False),
    ("fc00::/7", "fe80::1", 443, False),
    ("fc00::/7", "10.1.2.3", 443, False),
    ("10.0.0.0/8", "fd12::1", 443, False),
    # a name rule never matches an IP literal, an IP rule never a name, N5
    ("localhost", "127.0.0.1", 80, False),
    ("localhost", "localhost", 80, True),
    ("127.0.0.1", "localhost", 80, False),
    ("10.1.2.3", "10.1.2.3.nip.io", 443, False),
    ("10.0.0.0/8", "10.nip.io", 443, False),
    ("*.example.test", "[::1]", 443, False),
    ("*.example.test", "93.184.216.34", 443, False),
    # "*" (deny lists only)
    ("* (deny list)", "anything.test", 443, True),
    ("* (deny list)", "10.1.2.3", 443, True),
    ("*:25 (deny list)", "mail.example.test", 25, True),
    ("*:25 (deny list)", "mail.example.test", 587, False),
    ("0.0.0.0/0 (deny list)", "8.8.8.8", 53, True),
    ("0.0.0.0/0 (deny list)", "example.test", 53, False),
]


@pytest.mark.parametrize(("pattern", "host", "port", "expected"), MATCH_TABLE)
def test_matches(pattern: str, host: str, port: int, expected: bool) -> None:
    assert _pattern(pattern).matches(normalize_host(host), port) is expected


# ----------------------------------------------------------------------------------------------------
# Parsing: what each valid entry becomes, and why each invalid one is refused
# ----------------------------------------------------------------------------------------------------

VALID_PATTERNS = [
    ("example.com", "exact", "example.com", None),
    ("EXAMPLE.com.", "exact", "example.com", None),
    ("localhost", "exact", "localhost", None),
    ("registry", "exact", "registry", None),
    ("_dmarc.example.com", "exact", "_dmarc.example.com", None),
    ("a-b.example.com", "exact", "a-b.example.com", None),
    ("123.example.com", "exact", "123.example.com", None),
    ("bücher.example", "exact", "xn--bcher-kva.example", None),
    ("xn--strae-oqa.de", "exact", "xn--strae-oqa.de", None),
    ("x" * 63 + ".com", "exact", "x" * 63 + ".com", None),
    (".".join(["a" * 63] * 3 + ["b" * 61]), "exact", ".".join(["a" * 63] * 3 + ["b" * 61]), None),
    ("example.com:1", "exact", "example.com", 1),
    ("example.com:443", "exact", "example.com", 443),
    ("example.com:65535", "exact", "example.com", 65535),
    ("*.example.com", "wildcard", "example.com", None),
    ("*.Example.COM.", "wildcard", "example.com", None),
    ("*.example.com:8443", "wildcard", "example.com", 8443),
    ("*.bücher.example", "wildcard", "xn--bcher-kva.example", None),
    ("*.example.co.uk", "wildcard", "example.co.uk", None),
    ("*.github.io", "wildcard", "github.io", None),  # a hosting provider's suffix: the user may mean it
    ("*.githubusercontent.com", "wildcard", "githubusercontent.com", None),
    ("*.amazonaws.com", "wildcard", "amazonaws.com", None),
    (
        "*.net.example",
        "wildcard",
        "net.example",
        None,
    ),  # an unknown top-level domain has no suffixes below it
    ("*._tcp.example.com", "wildcard", "_tcp.example.com", None),
    ("10.1.2.3", "ip", "10.1.2.3", None),
    ("127.0.0.1:8080", "ip", "127.0.0.1", 8080),
    ("[::1]", "ip", "::1", None),
    ("[::1]:443", "ip", "::1", 443),
    ("2001:db8::1", "ip", "2001:db8::1", None),
    ("[2001:DB8:0:0::1]", "ip", "2001:db8::1", None),
    ("::ffff:10.1.2.3", "ip", "10.1.2.3", None),
    ("[::ffff:10.1.2.3]:443", "ip", "10.1.2.3", 443),
    ("10.0.0.0/8", "cidr", "10.0.0.0/8", None),
    ("10.0.0.0/8:443", "cidr", "10.0.0.0/8", 443),
    ("10.1.2.3/32", "cidr", "10.1.2.3/32", None),
    ("fc00::/7", "cidr", "fc00::/7", None),
    ("[fc00::/7]:443", "cidr", "fc00::/7", 443),
    ("::ffff:10.0.0.0/104", "cidr", "10.0.0.0/8", None),
]


@pytest.mark.parametrize(("text", "kind", "host", "port"), VALID_PATTERNS)
def test_parse_pattern(text: str, kind: str, host: str, port: int | None) -> None:
    pattern = parse_pattern(text)
    assert (pattern.source, pattern.kind, pattern.host, pattern.port) == (text, kind, host, port)


DENY_ONLY = [
    ("*", "any", "*", None),
    ("*:22", "any", "*", 22),
    ("0.0.0.0/0", "cidr", "0.0.0.0/0", None),
    ("::/0", "cidr", "::/0", None),
]


@pytest.mark.parametrize(("text", "kind", "host", "port"), DENY_ONLY)
def test_deny_only_patterns(text: str, kind: str, host: str, port: int | None) -> None:
    pattern = parse_pattern(text, allow_any=True)
    assert (pattern.kind, pattern.host, pattern.port) == (kind, host, port)
    with pytest.raises(PatternError, match="deny list"):
        parse_pattern(text)


INVALID_PATTERNS = [
    ("", "empty"),
    ("*", "every host"),
    ("*:443", "every host"),
    ("0.0.0.0/0", "every address"),
    ("::/0", "every address"),
    ("*.com", "top-level domain"),
    ("*.test", "top-level domain"),
    ("*.localhost", "top-level domain"),
    ("*.co.uk", "public suffix"),
    ("*.com.au", "public suffix"),
    ("*.ac.jp:443", "public suffix"),
    ("*.gov.uk", "public suffix"),
    (
        "*.kyoto.jp",
        "public suffix",
    ),  # the Public Suffix List's registry section, beyond `co.`/`com.` + two letters
    ("*.b.kobe.jp", "public suffix"),  # under a wildcard rule (*.kobe.jp)
    ("*.個人.香港", "public suffix"),  # IDN, compared in punycode
    ("a*b.com", "leading label"),
    ("*example.com", "followed by '.'"),
    ("**.x", "repeats"),
    ("*.*.example.com", "more than one"),
    ("www.*.example.com", "inside a name"),
    ("example.*", "inside a name"),
    ("*.", "nothing after"),
    ("*.10.0.0.1", "IP address"),
    ("a..b.com", "empty label"),
    ("example.com..", "empty label"),
    ("..", "empty"),
    (".example.com", "'*.example.com'"),
    ("-a.example.com", "'-'"),
    ("a-.example.com", "'-'"),
    ("x" * 64 + ".com", "63"),
    (".".join(["a" * 63] * 4), "253"),
    ("a b.com", "space"),
    (" example.com", "space"),
    ("a\tb.com", "control"),
    ("a\x00b.com", "control"),
    ("example.com\r\nX: y", "control"),
    ("ex\u202eample.com", "invisible"),
    ("exa\u00admple.com", "invisible"),
    ("ex\u200bample.com", "invisible"),
    ("exa!mple.com", "letters, digits"),
    ("https://example.com", "'example.com'"),
    ("http://user:pw@example.com:8080/x", "'example.com:8080'"),
    ("example.com/path", "path"),
    ("example.com:8080/path", "path"),
    ("example.com?x=1", "query"),
    ("example.com#frag", "fragment"),
    ("user@example.com", "userinfo"),
    ("user:pw@example.com", "userinfo"),
    ("example.com\\evil.com", "backslash"),
    ("example.com:0", "1 to 65535"),
    ("example.com:65536", "1 to 65535"),
    ("example.com:0443", "leading zeros"),
    ("example.com:", "1 to 65535"),
    ("example.com:http", "1 to 65535"),
    ("example.com:+443", "1 to 65535"),
    ("example.com:443.evil.com", "1 to 65535"),
    ("[::1]:0", "1 to 65535"),
    ("[fe80::1%eth0]", "zone id"),
    ("fe80::1%25eth0", "zone id"),
    ("[::1", "without ']'"),
    ("[::1]x", "after ']'"),
    ("[1.2.3.4]", "brackets an IPv4"),
    ("[example.com]", "IPv6"),
    ("1::2::3", "IPv6"),
    ("127.1", "'127.0.0.1'"),
    ("0x7f.0.0.1", "'127.0.0.1'"),
    ("2130706433", "'127.0.0.1'"),
    ("010.0.0.1", "'8.0.0.1'"),
    ("1.2.3.4.5", "not a valid IPv4"),
    ("example.123", "not a valid IPv4"),
    ("256.0.0.1", "not a valid IPv4"),
    ("10.0.0.1/8", "'10.0.0.0/8'"),
    ("10.0.0.0/33", "CIDR"),
    ("10.0.0.0/08", "CIDR"),
    ("10.0.0.0/255.0.0.0", "CIDR"),
    ("10.0.0.0/", "CIDR"),
    ("fc00::1/7", "'fc00::/7'"),
    ("straße.example", "punycode"),
    ("ex\uff41mple.com", "punycode"),
    ("BÜCHER.example", "punycode"),
    ("example\u3002com", "non-ASCII dot"),
]


@pytest.mark.parametrize(("text", "fragment"), INVALID_PATTERNS)
def test_invalid_pattern_message_says_how_to_fix(text: str, fragment: str) -> None:
    with pytest.raises(PatternError) as excinfo:
        parse_pattern(text)
    message = str(excinfo.value)
    assert fragment in message
    assert message[-1] in ".?" and message.isprintable()  # a sentence, safe to print (L7)
    assert isinstance(excinfo.value, ValueError)


def test_every_invalid_pattern_is_also_refused_in_deny_lists() -> None:
    deny_only = {"*", "*:443", "0.0.0.0/0", "::/0"}
    for text, _ in INVALID_PATTERNS:
        if text not in deny_only:
            with pytest.raises(PatternError):
                parse_pattern(text, allow_any=True)


# ----------------------------------------------------------------------------------------------------
# Host normalisation (what the proxy calls on every CONNECT target, Host header and SNI), P4 / N5
# ----------------------------------------------------------------------------------------------------

VALID_HOSTS = [
    ("example.com", "example.com", None),
    ("Example.COM", "example.com", None),
    ("example.com.", "example.com", None),
    ("bücher.example", "xn--bcher-kva.example", None),
    ("XN--BCHER-KVA.example", "xn--bcher-kva.example", None),
    ("_dmarc.example.com", "_dmarc.example.com", None),
    ("r3---sn-abc.googlevideo.com", "r3---sn-abc.googlevideo.com", None),
    ("localhost", "localhost", None),
    ("123.example.com", "123.example.com", None),
    ("0x7f.example.com", "0x7f.example.com", None),
    ("x" * 63 + ".com", "x" * 63 + ".com", None),
    ("10.1.2.3", "10.1.2.3", "10.1.2.3"),
    ("167838211", "10.1.2.3", "10.1.2.3"),
    ("012.1.2.3", "10.1.2.3", "10.1.2.3"),
    ("0xa.1.2.3", "10.1.2.3", "10.1.2.3"),
    ("0XA.1.2.3", "10.1.2.3", "10.1.2.3"),
    ("10.1.515", "10.1.2.3", "10.1.2.3"),
    ("10.66051", "10.1.2.3", "10.1.2.3"),
    ("127.1", "127.0.0.1", "127.0.0.1"),
    ("0x7f.1", "127.0.0.1", "127.0.0.1"),
    ("0x7f000001", "127.0.0.1", "127.0.0.1"),
    ("017700000001", "127.0.0.1", "127.0.0.1"),
    ("0", "0.0.0.0", "0.0.0.0"),
    ("00.0", "0.0.0.0", "0.0.0.0"),
    ("4294967295", "255.255.255.255", "255.255.255.255"),
    ("1.16777215", "1.255.255.255", "1.255.255.255"),
    ("127.0.0.1.", "127.0.0.1", "127.0.0.1"),
    ("[::1]", "::1", "::1"),
    ("::1", "::1", "::1"),
    ("[0:0:0:0:0:0:0:1]", "::1", "::1"),
    ("[::ffff:10.1.2.3]", "10.1.2.3", "10.1.2.3"),
    ("::ffff:a01:203", "10.1.2.3", "10.1.2.3"),
    ("[2001:DB8::1]", "2001:db8::1", "2001:db8::1"),
    ("::10.1.2.3", "::a01:203", "::a01:203"),
    ("64:ff9b::10.1.2.3", "64:ff9b::a01:203", "64:ff9b::a01:203"),
]


@pytest.mark.parametrize(("text", "name", "ip"), VALID_HOSTS)
def test_normalize_host(text: str, name: str, ip: str | None) -> None:
    assert normalize_host(text) == Host(name, A(ip) if ip else None)


INVALID_HOSTS = [
    ("", "empty"),
    ("a\x00b.com", "control"),
    ("allowed.test\x00.denied.test", "control"),
    ("a\r\nb.com", "control"),
    ("a\tb.com", "control"),
    ("a b.com", "space"),
    ("\u00a0example.com", "space"),
    ("\x7fexample.com", "control"),
    ("ex\u202eample.com", "invisible"),
    ("exam\u00adple.com", "invisible"),
    ("a\\b.com", "backslash"),
    ("allowed.test\\@denied.test", "userinfo"),
    ("user@example.com", "userinfo"),
    ("example.com%00", "'%'"),
    ("fe80::1%eth0", "'%'"),
    ("[fe80::1%25eth0]", "'%'"),
    ("::ffff:1.2.3.4%x.allowed.test", "'%'"),
    ("a..b", "empty label"),
    (".example.com", "starts with '.'"),
    (".", "empty"),
    ("..", "empty"),
    ("example.com..", "empty label"),
    ("x" * 64 + ".com", "63"),
    (".".join(["a" * 63] * 4), "253"),
    ("a" * 300, "253"),
    ("-a.com", "'-'"),
    ("a-.com", "'-'"),
    ("exa!mple.com", "letters, digits"),
    ("example.com:443", "':'"),
    ("[::1]:443", "bracketed"),
    ("[::1", "bracketed"),
    ("[example.com]", "bracketed"),
    ("[1.2.3.4]", "bracketed"),
    ("1::2::3", "':'"),
    ("example.com/path", "path"),
    ("example.com?x", "query"),
    ("example.com#f", "fragment"),
    ("1.2.3.4.5", "IPv4"),
    ("256.1.1.1", "IPv4"),
    ("1.256.1.1", "IPv4"),
    ("08.0.0.1", "IPv4"),
    ("0x.1", "IPv4"),
    ("0xg.1.1.1", "IPv4"),
    ("1.16777216", "IPv4"),
    ("4294967296", "IPv4"),
    ("1_0.0.0.1", "IPv4"),
    ("example.123", "IPv4"),
    ("allowed.test.0x1", "IPv4"),
    ("example\u3002com", "non-ASCII dot"),
    ("straße.de", "punycode"),
    ("ex\uff41mple.com", "punycode"),
    ("BÜCHER.example", "punycode"),
]


@pytest.mark.parametrize(("text", "fragment"), INVALID_HOSTS)
def test_invalid_host(text: str, fragment: str) -> None:
    with pytest.raises(PatternError) as excinfo:
        normalize_host(text)
    assert fragment in str(excinfo.value)
    assert str(excinfo.value).isprintable()  # safe to log (L7)


# ----------------------------------------------------------------------------------------------------
# Decisions: deny wins, default deny, and spelling never escapes a deny (P3, N5, C2)
# ----------------------------------------------------------------------------------------------------

ALLOWED = [parse_pattern(p) for p in ("*.example.test", "example.test", "10.1.2.3", "api.other.test:443")]
DENIED = [
    parse_pattern(p, allow_any=True)
    for p in ("secret.example.test", "*.internal.example.test", "10.1.2.3:22", "*:25", "[::1]")
]

DECISIONS = [
    ("www.example.test", 443, "allow", "*.example.test", "allowed"),
    ("example.test", 443, "allow", "example.test", "allowed"),
    ("secret.example.test", 443, "deny", "secret.example.test", "denied_by_rule"),
    ("SECRET.Example.Test.", 443, "deny", "secret.example.test", "denied_by_rule"),
    ("public.example.test", 443, "allow", "*.example.test", "allowed"),
    ("a.internal.example.test", 443, "deny", "*.internal.example.test", "denied_by_rule"),
    ("A.B.INTERNAL.example.test.", 443, "deny", "*.internal.example.test", "denied_by_rule"),
    ("internal.example.test", 443, "allow", "*.example.test", "allowed"),
    ("10.1.2.3", 443, "allow", "10.1.2.3", "allowed"),
    ("167838211", 443, "allow", "10.1.2.3", "allowed"),
    ("10.1.2.3", 22, "deny", "10.1.2.3:22", "denied_by_rule"),
    ("0xa.1.2.3", 22, "deny", "10.1.2.3:22", "denied_by_rule"),
    ("::ffff:10.1.2.3", 22, "deny", "10.1.2.3:22", "denied_by_rule"),
    ("www.example.test", 25, "deny", "*:25", "denied_by_rule"),
    ("www.example.test", 587, "allow", "*.example.test", "allowed"),
    ("0:0:0:0:0:0:0:1", 443, "deny", "[::1]", "denied_by_rule"),
    ("api.other.test", 443, "allow", "api.other.test:443", "allowed"),
    ("api.other.test", 80, "deny", "default-deny", "not_allowed"),
    ("evil-example.test", 443, "deny", "default-deny", "not_allowed"),
    ("example.test.evil.test", 443, "deny", "default-deny", "not_allowed"),
    ("10.1.2.4", 443, "deny", "default-deny", "not_allowed"),
    ("10.1.2.3.nip.io", 443, "deny", "default-deny", "not_allowed"),
]


@pytest.mark.parametrize(("host", "port", "verdict", "rule", "reason"), DECISIONS)
def test_match_destination(host: str, port: int, verdict: str, rule: str, reason: str) -> None:
    assert match_destination(normalize_host(host), port, ALLOWED, DENIED) == Match(verdict, rule, reason)  # type: ignore[arg-type]


@pytest.mark.parametrize("host", ["example.test", "10.1.2.3", "::1", "localhost"])
def test_empty_allow_list_denies_everything(host: str) -> None:
    assert match_destination(normalize_host(host), 443, [], []) == Match(
        "deny", "default-deny", "not_allowed"
    )
    assert match_destination(normalize_host(host), 443, [parse_pattern(host)], []).verdict == "allow"


@pytest.mark.parametrize("host", ["example.test", "10.1.2.3", "[::1]"])
def test_deny_star_beats_any_allow(host: str) -> None:
    denied = [parse_pattern("*", allow_any=True)]
    allowed = [parse_pattern(host)]
    assert match_destination(normalize_host(host), 443, allowed, denied) == Match(
        "deny", "*", "denied_by_rule"
    )
    assert match_destination(normalize_host(host), 443, allowed, []).verdict == "allow"


# ----------------------------------------------------------------------------------------------------
# Explicit carve-outs: an ip/cidr allow entry opens a guarded address for names resolving there
# ----------------------------------------------------------------------------------------------------

CARVE_OUT_ALLOWED = [
    parse_pattern(p) for p in ("10.1.2.3", "10.20.0.0/16:443", "[fd12::1]", "mirror.corp.test")
]

CARVE_OUTS = [
    ("10.1.2.3", 443, True),
    ("10.1.2.3", 22, True),
    ("10.1.2.4", 443, False),
    ("::ffff:10.1.2.3", 443, True),
    ("64:ff9b::10.1.2.3", 443, False),  # an embedded form never earns the carve-out
    ("2002:a01:203::1", 443, False),
    ("10.20.5.5", 443, True),
    ("10.20.5.5", 80, False),
    ("10.21.0.1", 443, False),
    ("fd12::1", 443, True),
    ("fd12::2", 443, False),
]


@pytest.mark.parametrize(("addr", "port", "expected"), CARVE_OUTS)
def test_address_explicitly_allowed(addr: str, port: int, expected: bool) -> None:
    assert address_explicitly_allowed(A(addr), port, CARVE_OUT_ALLOWED) is expected


def test_name_entries_never_open_an_address() -> None:
    names = [parse_pattern("mirror.corp.test"), parse_pattern("*.corp.test")]
    assert not address_explicitly_allowed(A("10.1.2.3"), 443, names)
    assert address_explicitly_allowed(A("10.1.2.3"), 443, [*names, parse_pattern("10.0.0.0/8")])


# ----------------------------------------------------------------------------------------------------
# Pattern as a value
# ----------------------------------------------------------------------------------------------------


def test_pattern_built_directly_precomputes_and_is_frozen() -> None:
    wildcard = Pattern("*.example.test", "wildcard", "example.test", None)
    assert wildcard.matches(Host("a.example.test", None), 443)
    assert not wildcard.matches(Host("example.test", None), 443)
    assert Pattern("10.0.0.0/8", "cidr", "10.0.0.0/8", None).matches(normalize_host("10.9.9.9"), 1)
    assert wildcard == parse_pattern("*.example.test")
    with pytest.raises(dataclasses.FrozenInstanceError):
        wildcard.port = 1  # type: ignore[misc]
