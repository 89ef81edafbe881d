"""Tables for netjail.net.addresses: the local-range guard (N6: every guarded range, its IPv6-embedded forms, and
unguarded controls beside them) and this host's interface addresses."""

import ipaddress
from pathlib import Path

import pytest

from netjail.net import addresses
from netjail.net.addresses import host_interface_addresses, local_range_of

A = ipaddress.ip_address
N = ipaddress.ip_network

# ----------------------------------------------------------------------------------------------------
# Local-range guard, N6: every guarded range, its IPv6-embedded forms, and unguarded controls
# ----------------------------------------------------------------------------------------------------

LOCAL_RANGES = [
    # cloud metadata first, so it is not reported as link-local / unique-local / CGNAT
    ("169.254.169.254", "cloud-metadata"),
    ("169.254.170.2", "cloud-metadata"),
    ("169.254.170.23", "cloud-metadata"),
    ("100.100.100.200", "cloud-metadata"),
    ("168.63.129.16", "cloud-metadata"),
    ("192.0.0.192", "cloud-metadata"),
    ("fd00:ec2::254", "cloud-metadata"),
    ("fd00:ec2::23", "cloud-metadata"),
    ("fd20:ce::254", "cloud-metadata"),
    ("fd00:c1::a9fe:a9fe", "cloud-metadata"),
    ("fd00:42::42", "cloud-metadata"),
    ("fd00:a9fe:a9fe::1", "cloud-metadata"),
    ("fd00:100::100:200", "cloud-metadata"),
    ("::ffff:169.254.169.254", "cloud-metadata"),
    ("64:ff9b::169.254.169.254", "cloud-metadata"),
    ("2002:a9fe:a9fe::1", "cloud-metadata"),
    ("168.63.129.17", None),
    ("192.0.0.193", None),
    ("169.254.169.253", "link-local"),
    ("100.100.100.201", "carrier-grade-nat"),
    ("fd20:ce::255", "unique-local"),
    # loopback
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::127.0.0.1", "loopback"),
    ("::ffff:0:127.0.0.1", "loopback"),
    ("64:ff9b::7f00:1", "loopback"),
    ("2002:7f00:1::1", "loopback"),
    ("126.255.255.255", None),
    ("128.0.0.0", None),
    # unspecified
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("::", "unspecified"),
    ("::ffff:0.0.0.0", "unspecified"),
    ("1.0.0.0", None),
    # link-local
    ("169.254.0.1", "link-local"),
    ("169.254.255.255", "link-local"),
    ("fe80::1", "link-local"),
    ("febf::1", "link-local"),
    ("::ffff:169.254.1.1", "link-local"),
    ("169.253.255.255", None),
    ("169.255.0.0", None),
    ("fec0::1", None),
    # multicast and broadcast
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("ff05::1:3", "multicast"),
    ("255.255.255.255", "broadcast"),
    ("::ffff:255.255.255.255", "broadcast"),
    ("223.255.255.255", None),
    ("255.255.255.254", None),
    # private (stricter than srt)
    ("10.0.0.1", "private"),
    ("10.255.255.255", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:0:10.0.0.1", "private"),
    ("64:ff9b::10.0.0.1", "private"),
    ("2002:c0a8:101::1", "private"),
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "private"),  # Teredo client 10.0.0.1
    ("11.0.0.1", None),
    ("172.15.255.255", None),
    ("172.32.0.0", None),
    ("192.169.0.1", None),
    ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", None),  # Teredo client 8.8.8.8
    # carrier-grade NAT
    ("100.64.0.1", "carrier-grade-nat"),
    ("100.127.255.255", "carrier-grade-nat"),
    ("64:ff9b::100.64.0.1", "carrier-grade-nat"),
    ("100.63.255.255", None),
    ("100.128.0.0", None),
    # unique-local
    ("fc00::1", "unique-local"),
    ("fd12:3456::1", "unique-local"),
    ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "unique-local"),
    ("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
    ("fe00::1", None),
    # not guarded on purpose: documentation, benchmark, public, undecodable NAT64 prefixes
    ("192.0.2.1", None),
    ("198.51.100.1", None),
    ("203.0.113.1", None),
    ("2001:db8::1", None),
    ("198.18.0.1", None),
    ("198.19.255.255", None),
    ("8.8.8.8", None),
    ("::ffff:8.8.8.8", None),
    ("64:ff9b::8.8.8.8", None),
    ("2002:808:808::1", None),
    ("2606:4700:4700::1111", None),
    ("64:ff9b:1::a00:1", None),
]


@pytest.mark.parametrize(("addr", "expected"), LOCAL_RANGES)
def test_local_range_of(addr: str, expected: str | None) -> None:
    assert local_range_of(A(addr)) == expected


EXTRA = [N("203.0.113.0/24"), N("2001:db8:dead::/48")]
HOSTS = frozenset({A("198.51.100.7"), A("2001:db8:1::7"), A("127.0.0.1"), A("192.0.2.2")})

GUARD_WITH_CONTEXT = [
    ("203.0.113.7", "denied-resolved-address"),
    ("::ffff:203.0.113.7", "denied-resolved-address"),
    ("64:ff9b::203.0.113.7", "denied-resolved-address"),
    ("2001:db8:dead::1", "denied-resolved-address"),
    ("203.0.114.7", None),
    ("2001:db8:beef::1", None),
    ("198.51.100.7", "this-host"),
    ("::ffff:198.51.100.7", "this-host"),
    ("2002:c633:6407::1", "this-host"),
    ("2001:db8:1::7", "this-host"),
    ("198.51.100.8", None),
    ("2001:db8:1::8", None),
    ("127.0.0.1", "loopback"),  # a fixed range names it before this-host
    ("192.0.2.2", "this-host"),
]


@pytest.mark.parametrize(("addr", "expected"), GUARD_WITH_CONTEXT)
def test_local_range_of_extra_and_host_addresses(addr: str, expected: str | None) -> None:
    assert local_range_of(A(addr), extra_denied=EXTRA, host_addresses=HOSTS) == expected
    assert local_range_of(A(addr)) == (expected if expected == "loopback" else None)


def test_fixed_ranges_win_over_extra_denied() -> None:
    assert local_range_of(A("10.0.0.5"), extra_denied=[N("10.0.0.0/24")]) == "private"


# ----------------------------------------------------------------------------------------------------
# This host's interface addresses
# ----------------------------------------------------------------------------------------------------


def test_host_interface_addresses_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> set[ipaddress.IPv4Address]:
        raise OSError("no /proc")

    for reader in ("_ipv4_from_fib_trie", "_ipv4_from_ioctl", "_ipv6_from_if_inet6"):
        monkeypatch.setattr(addresses, reader, broken)
    assert addresses.host_interface_addresses() == frozenset()


def test_host_interface_addresses_reads_this_machine() -> None:
    found = host_interface_addresses()
    assert isinstance(found, frozenset)
    assert all(isinstance(a, ipaddress.IPv4Address | ipaddress.IPv6Address) for a in found)
    if Path("/proc/net/fib_trie").exists():
        assert A("127.0.0.1") in found


FIB_TRIE = """\
Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- 192.0.2.0/24 2 0 2
           |-- 192.0.2.2
              /32 host LOCAL
"""
IF_INET6 = """\
fd000000000000000000000000000002 04 40 00 82     eth0
00000000000000000000000000000001 01 80 10 80       lo
"""


def test_proc_parsers(tmp_path: Path) -> None:
    (tmp_path / "fib_trie").write_text(FIB_TRIE)
    (tmp_path / "if_inet6").write_text(IF_INET6)
    assert addresses._ipv4_from_fib_trie(str(tmp_path / "fib_trie")) == {A("127.0.0.1"), A("192.0.2.2")}
    assert addresses._ipv6_from_if_inet6(str(tmp_path / "if_inet6")) == {A("fd00::2"), A("::1")}
