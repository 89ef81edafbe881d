"""IP addresses: the local-range guard (which addresses a jailed command may never dial, whatever name led there)
and this host's own interface addresses.

`local_range_of` is a pure function of its arguments; `host_interface_addresses` reads the machine (best effort).
"""

import fcntl
import ipaddress
import socket
import struct
from collections.abc import Collection, Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def unmapped(addr: IPAddress) -> IPAddress:
    # `::ffff:a.b.c.d` is dialed as a.b.c.d, so it is judged as a.b.c.d.
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Checked in order, so 169.254.169.254 reports "cloud-metadata" rather than "link-local".
# The metadata set is srt's CLOUD_METADATA_ADDRESSES plus the link-local AWS/ECS/EKS endpoints.
_GUARDED_V4: tuple[tuple[str, ipaddress.IPv4Network], ...] = (
    ("cloud-metadata", _V4("169.254.169.254/32")),  # AWS, GCP, Azure, OCI, DigitalOcean, ...
    ("cloud-metadata", _V4("169.254.170.2/32")),  # AWS ECS task metadata
    ("cloud-metadata", _V4("169.254.170.23/32")),  # AWS EKS Pod Identity
    ("cloud-metadata", _V4("100.100.100.200/32")),  # Alibaba Cloud
    ("cloud-metadata", _V4("168.63.129.16/32")),  # Azure WireServer
    ("cloud-metadata", _V4("192.0.0.192/32")),  # Oracle Cloud Classic
    ("loopback", _V4("127.0.0.0/8")),
    ("unspecified", _V4("0.0.0.0/8")),  # connects to the local host on common stacks
    ("link-local", _V4("169.254.0.0/16")),
    ("multicast", _V4("224.0.0.0/4")),
    ("broadcast", _V4("255.255.255.255/32")),
    ("private", _V4("10.0.0.0/8")),  # stricter than srt, which only denies these on request
    ("private", _V4("172.16.0.0/12")),
    ("private", _V4("192.168.0.0/16")),
    ("carrier-grade-nat", _V4("100.64.0.0/10")),
)
_GUARDED_V6: tuple[tuple[str, ipaddress.IPv6Network], ...] = (
    ("cloud-metadata", _V6("fd00:ec2::/32")),  # AWS: IMDS ::254, EKS Pod Identity ::23, DNS, NTP
    ("cloud-metadata", _V6("fd20:ce::254/128")),  # Google Cloud, IPv6-only instances
    ("cloud-metadata", _V6("fd00:c1::a9fe:a9fe/128")),  # Oracle Cloud
    ("cloud-metadata", _V6("fd00:42::42/128")),  # Scaleway
    ("cloud-metadata", _V6("fd00:a9fe:a9fe::1/128")),  # Akamai / Linode
    ("cloud-metadata", _V6("fd00:100::100:200/128")),  # Alibaba Cloud
    ("loopback", _V6("::1/128")),
    ("unspecified", _V6("::/128")),
    ("link-local", _V6("fe80::/10")),
    ("multicast", _V6("ff00::/8")),
    ("unique-local", _V6("fc00::/7")),
)

_NAT64_PREFIX = int(ipaddress.IPv6Address("64:ff9b::")) >> 32
_TRANSLATED_PREFIX = 0xFFFF_0000  # ::ffff:0:a.b.c.d (SIIT), top 96 bits


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address is delivered to, if it carries one (mapped, compatible,
    translated, NAT64 well-known prefix, 6to4, Teredo client)."""
    top = int(addr) >> 32
    if top in (0, 0xFFFF, _TRANSLATED_PREFIX, _NAT64_PREFIX):
        return ipaddress.IPv4Address(int(addr) & 0xFFFF_FFFF)
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]
    return None


def _guarded_name(addr: IPAddress) -> str | None:
    ranges = _GUARDED_V4 if isinstance(addr, ipaddress.IPv4Address) else _GUARDED_V6
    for name, network in ranges:
        if addr in network:
            return name
    return None


def local_range_of(
    addr: IPAddress,
    *,
    extra_denied: Sequence[IPNetwork] = (),
    host_addresses: Collection[IPAddress] = (),
) -> str | None:
    """The guarded range `addr` falls in (a short stable name), or None when it may be dialed.

    IPv4 ranges also bind the IPv6 forms that deliver to an IPv4 address: an embedded address can only
    add a denial, never remove one. Documentation and benchmark ranges are deliberately not guarded.
    """
    addr = unmapped(addr)
    v4 = _embedded_ipv4(addr) if isinstance(addr, ipaddress.IPv6Address) else None
    candidates = (addr,) if v4 is None else (addr, v4)
    for candidate in candidates:
        name = _guarded_name(candidate)
        if name is not None:
            return name
    if any(candidate in network for candidate in candidates for network in extra_denied):
        return "denied-resolved-address"
    if any(candidate in host_addresses for candidate in candidates):
        return "this-host"  # a service bound to 0.0.0.0 answers on these exactly as on loopback
    return None


def _ipv4_from_fib_trie(path: str = "/proc/net/fib_trie") -> set[IPAddress]:
    """Linux: every `/32 host LOCAL` leaf of the routing trie is an address of this host."""
    found: set[IPAddress] = set()
    with open(path, encoding="ascii") as f:
        last = ""
        for line in f:
            stripped = line.strip()
            if stripped.startswith("|--"):
                last = stripped[3:].strip()
            elif stripped == "/32 host LOCAL" and last:
                found.add(ipaddress.IPv4Address(last))
    return found


def _ipv4_from_ioctl() -> set[IPAddress]:
    """Fallback: the primary IPv4 address of each interface (SIOCGIFADDR)."""
    found: set[IPAddress] = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                ifreq = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))
            except OSError:  # interface without an IPv4 address
                continue
            found.add(ipaddress.IPv4Address(ifreq[20:24]))
    return found


def _ipv6_from_if_inet6(path: str = "/proc/net/if_inet6") -> set[IPAddress]:
    found: set[IPAddress] = set()
    with open(path, encoding="ascii") as f:
        for line in f:
            fields = line.split()
            if fields:
                found.add(ipaddress.IPv6Address(bytes.fromhex(fields[0])))
    return found


def host_interface_addresses() -> frozenset[IPAddress]:
    """This machine's own interface addresses, best effort: never raises, returns what it can read.

    A missing source only narrows the "this-host" check; the fixed ranges above still apply.
    """
    found: set[IPAddress] = set()
    for source in ((_ipv4_from_fib_trie, _ipv4_from_ioctl), (_ipv6_from_if_inet6,)):
        for reader in source:  # within a family, stop at the first source that yields addresses
            try:
                addresses = reader()
            except (OSError, ValueError, struct.error):
                continue
            if addresses:
                found |= addresses
                break
    return frozenset(found)
