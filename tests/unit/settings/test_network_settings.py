"""The network block: srt's rules on it, the refused proxy keys, and netjail's resolver and hosts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .settings_files import case, load, minimal, refused, with_

REFUSALS: list[tuple[str, dict[str, Any], str, str]] = [
    # (id, data, field, words in the message)
    (
        "CA pair",
        case("network.tlsTerminate", {"caCertPath": "/etc/ca.pem"}),
        "network.tlsTerminate",
        "Fix: add caKeyPath or remove both",
    ),
    (
        "reason key",
        {
            **minimal(),
            "network": {
                "allowedDomains": [],
                "deniedDomains": ["github.example.com:22"],
                "deniedDomainReasons": {"github.example.com": "no ssh"},
            },
        },
        'network.deniedDomainReasons["github.example.com"]',
        "did you mean 'github.example.com:22'?",
    ),
    (
        "reason newline",
        {
            **minimal(),
            "network": {
                "allowedDomains": [],
                "deniedDomains": ["x.example.com"],
                "deniedDomainReasons": {"x.example.com": "a\nb"},
            },
        },
        'network.deniedDomainReasons["x.example.com"]',
        "control or invisible character",
    ),
    (
        "reason empty",
        {
            **minimal(),
            "network": {
                "allowedDomains": [],
                "deniedDomains": ["x.example.com"],
                "deniedDomainReasons": {"x.example.com": ""},
            },
        },
        'network.deniedDomainReasons["x.example.com"]',
        "must not be empty",
    ),
    ("resolver name", case("network.resolver", "dns.example.com"), "network.resolver", "must not need DNS"),
    ("resolver port", case("network.resolver", "192.0.2.1:0"), "network.resolver", "invalid port"),
    (
        "resolver v4 bracket",
        case("network.resolver", "[192.0.2.1]:53"),
        "network.resolver",
        "not an IP address",
    ),
    ("resolver garbage", case("network.resolver", "[::1]x"), "network.resolver", "not a resolver address"),
    (
        "hosts key ip",
        case("network.hosts", {"192.0.2.1": "192.0.2.2"}),
        'network.hosts["192.0.2.1"]',
        "is an IP address; hosts pins names",
    ),
    ("hosts key bad", case("network.hosts", {"a b.test": "192.0.2.2"}), 'network.hosts["a b.test"]', "space"),
    (
        "hosts key twice",
        case("network.hosts", {"a.test": "192.0.2.2", "A.test.": "192.0.2.3"}),
        'network.hosts["A.test."]',
        "a second time",
    ),
    ("mach", case("network.allowMachLookup", ["com.*.x"]), "network.allowMachLookup[0]", "trailing"),
    ("mode", case("network.mode", "learn"), "network.mode", "Fix: use 'enforce' or 'audit'"),
    # refused srt keys
    ("http proxy", case("network.httpProxyPort", 3128), "network.httpProxyPort", "external HTTP proxy"),
    ("socks proxy", case("network.socksProxyPort", 1080), "network.socksProxyPort", "external SOCKS proxy"),
    (
        "mitm proxy",
        case("network.mitmProxy", {"socketPath": "/s", "domains": ["a.example.com"]}),
        "network.mitmProxy",
        "another proxy",
    ),
    (
        "parent proxy",
        case("network.parentProxy", {"https": "http://proxy.example.com:3128"}),
        "network.parentProxy.https",
        "parent proxy is not supported",
    ),
    ("filter", case("network.filterRequest", "allow"), "network.filterRequest", "JavaScript callback"),
]


@pytest.mark.parametrize(("data", "field", "words"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_refusals(tmp_path: Path, data: dict[str, Any], field: str, words: str) -> None:
    error = refused(tmp_path, data)
    assert error.field == field, str(error)
    assert words in str(error), str(error)


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("192.0.2.53", ("192.0.2.53", 53)),
        ("192.0.2.53:5353", ("192.0.2.53", 5353)),
        ("2001:db8::53", ("2001:db8::53", 53)),
        ("[2001:db8::53]", ("2001:db8::53", 53)),
        ("127.0.0.53", ("127.0.0.53", 53)),
    ],
)
def test_resolver_address(tmp_path: Path, text: str, address: tuple[str, int]) -> None:
    assert (
        load(tmp_path, with_(minimal(), "network.resolver", text)).settings.network.resolver_address
        == address
    )
