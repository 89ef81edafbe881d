"""The synthetic addresses the jail's resolver hands out for allowed names, and the way back to the name.

The block is one no real host uses — 240.0.0.0/4 (reserved, "future use") and 100::/64 (RFC 6666 discard-only) —
so a captured connection to one of them names its host by construction: the policy judges the name, never an IP
that only looks like one.
"""

from __future__ import annotations

import ipaddress
import threading

SYNTHETIC_V4 = ipaddress.IPv4Network("240.0.0.0/4")
SYNTHETIC_V6 = ipaddress.IPv6Network("100::/64")


class SyntheticAddressesExhausted(Exception):
    """A run asked for more names than the block holds."""


class SyntheticAddresses:
    """Name <-> synthetic address, both ways, for the run. Allocation is sequential and never reuses an address,
    so a connection always maps to the name its address was handed out for."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_name: dict[str, tuple[ipaddress.IPv4Address, ipaddress.IPv6Address]] = {}
        self._by_address: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, str] = {}
        self._next = 2  # .0 is the network, .1 is the namespace's own source address

    def addresses_for(self, name: str) -> tuple[ipaddress.IPv4Address, ipaddress.IPv6Address]:
        with self._lock:
            if name in self._by_name:
                return self._by_name[name]
            if self._next >= SYNTHETIC_V4.num_addresses - 1:
                raise SyntheticAddressesExhausted("the run used every synthetic address")
            pair = (SYNTHETIC_V4[self._next], SYNTHETIC_V6[self._next])
            self._next += 1
            self._by_name[name] = pair
            for address in pair:
                self._by_address[address] = name
            return pair

    def name_for(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return self._by_address.get(address)

    @staticmethod
    def is_synthetic(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return address in SYNTHETIC_V4 or address in SYNTHETIC_V6
