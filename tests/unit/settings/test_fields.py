"""Value types: domain patterns, IP addresses and ranges, paths, names and CA files."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from .settings_files import SYSTEM_BUNDLE, case, load, minimal, refused, with_

CA_MISSING = "/nonexistent/netjail-test/ca.pem"


REFUSALS: list[tuple[str, dict[str, Any], str, str]] = [
    # (id, data, field, words in the message)
    (
        "*.com",
        case("network.allowedDomains", ["example.com", "*.com"]),
        "network.allowedDomains[1]",
        "top-level domain. Fix: use a registered domain",
    ),
    (
        "a*b.com",
        case("network.allowedDomains", ["a*b.com"]),
        "network.allowedDomains[0]",
        "'*' appears inside a name",
    ),
    ("empty pattern", case("network.allowedDomains", [""]), "network.allowedDomains[0]", "pattern is empty"),
    (
        "star allowed",
        case("network.allowedDomains", ["*"]),
        "network.allowedDomains[0]",
        "only in a deny list",
    ),
    (
        "number pattern",
        case("network.deniedDomains", [42]),
        "network.deniedDomains[0]",
        "must be a string, not a number",
    ),
    (
        "preset in deny list",
        case("network.deniedDomains", ["@pip"]),
        "network.deniedDomains[0]",
        "presets are expanded only in network.allowedDomains",
    ),
    (
        "exclude with port",
        case("network.tlsTerminate", {"excludeDomains": ["a.example.com:443"]}),
        "network.tlsTerminate.excludeDomains[0]",
        "has a port",
    ),
    (
        "missing CA file",
        case("network.tlsTerminate", {"extraCaCertPaths": [CA_MISSING]}),
        "network.tlsTerminate.extraCaCertPaths[0]",
        "cannot read the CA certificate file",
    ),
    (
        "hosts value",
        case("network.hosts", {"a.example.test": "not-an-ip"}),
        'network.hosts["a.example.test"]',
        "'not-an-ip' is not an IP address",
    ),
    (
        "hosts octal",
        case("network.hosts", {"a.example.test": "010.0.0.1"}),
        'network.hosts["a.example.test"]',
        "is not an IP address",
    ),
    (
        "resolved range",
        case("network.deniedResolvedAddresses", ["10.0.0.0/33"]),
        "network.deniedResolvedAddresses[0]",
        "invalid prefix length",
    ),
    (
        "resolved mapped",
        case("network.deniedResolvedAddresses", ["::ffff:0:0/95"]),
        "network.deniedResolvedAddresses[0]",
        "IPv4-mapped",
    ),
    (
        "resolved name",
        case("network.deniedResolvedAddresses", ["example.com"]),
        "network.deniedResolvedAddresses[0]",
        "not an IP address or CIDR range",
    ),
    (
        "empty path",
        case("filesystem.denyRead", ["~/.ssh", ""]),
        "filesystem.denyRead[1]",
        "the path is empty",
    ),
    ("NUL path", case("filesystem.allowWrite", ["a\x00b"]), "filesystem.allowWrite[0]", "NUL"),
    ("newline path", case("filesystem.denyWrite", ["a\nb"]), "filesystem.denyWrite[0]", "a newline"),
    ("relative bwrap", case("bwrapPath", "bin/bwrap"), "bwrapPath", "not an absolute path"),
    (
        "env name",
        case("envPassthrough", ["OK", "1BAD"]),
        "envPassthrough[1]",
        "not an environment variable name",
    ),
    ("header", case("record.redactHeaders", ["x api"]), "record.redactHeaders[0]", "not an HTTP header name"),
    ("guid", case("windows", {"sublayerGuid": "nope"}), "windows.sublayerGuid", "'nope' is not a GUID"),
]


@pytest.mark.parametrize(("data", "field", "words"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_refusals(tmp_path: Path, data: dict[str, Any], field: str, words: str) -> None:
    error = refused(tmp_path, data)
    assert error.field == field, str(error)
    assert words in str(error), str(error)


def test_patterns_and_ports(tmp_path: Path) -> None:
    data = with_(
        minimal(), "network.allowedDomains", ["Example.COM.", "*.example.org:8443", "[2001:db8::1]:443"]
    )
    data = with_(data, "network.deniedDomains", ["*:22", "bad.example.org"])
    net = load(tmp_path, data).settings.network
    assert [(p.kind, p.host, p.port) for p in net.allowed_domains] == [
        ("exact", "example.com", None),
        ("wildcard", "example.org", 8443),
        ("ip", "2001:db8::1", 443),
    ]
    assert [p.kind for p in net.denied_domains] == ["any", "exact"]


@pytest.mark.parametrize(
    ("entry", "network"),
    [
        ("10.1.2.3/8", "10.0.0.0/8"),  # host bits set: srt masks them too
        ("192.0.2.7", "192.0.2.7/32"),
        ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
        ("fe80::1%eth0", "fe80::1/128"),
        ("fc00::/7", "fc00::/7"),
    ],
)
def test_denied_resolved_addresses(tmp_path: Path, entry: str, network: str) -> None:
    data = with_(minimal(), "network.deniedResolvedAddresses", [entry])
    assert load(tmp_path, data).settings.network.denied_resolved_addresses == [ipaddress.ip_network(network)]


def test_pem_file_without_certificate(tmp_path: Path) -> None:
    not_pem = tmp_path / "key.pem"
    not_pem.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    error = refused(tmp_path, case("network.tlsTerminate", {"extraCaCertPaths": [str(not_pem)]}))
    assert (
        error.field == "network.tlsTerminate.extraCaCertPaths[0]"
        and "holds no PEM certificate" in error.problem
    )


@pytest.mark.skipif(not SYSTEM_BUNDLE.is_file(), reason="no system CA bundle at the Debian path")
def test_pem_bundle_accepted(tmp_path: Path) -> None:
    data = case("network.tlsTerminate", {"extraCaCertPaths": [str(SYSTEM_BUNDLE)]})
    assert load(tmp_path, data).settings.network.tls_terminate.extra_ca_cert_paths == [SYSTEM_BUNDLE]
