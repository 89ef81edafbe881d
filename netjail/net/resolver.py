"""How the proxy resolves the names it dials: the system resolver, or `network.resolver` when set.

mitmproxy_rs's resolver only takes name servers on port 53, so queries to a configured `IP:port` are sent
here with mitmproxy's own DNS message codec over UDP (and retried over nothing else: a resolver that does not
answer in time is a failed lookup, which the policy turns into a denial).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import random
import socket

from mitmproxy import dns

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
TIMEOUT_SECONDS = 3.0
A, AAAA = 1, 28


async def system_lookup(name: str, port: int) -> list[IPAddress]:
    # Not loop.getaddrinfo: the policy addon replaces that with its vetted-only lookup for mitmproxy's dials.
    loop = asyncio.get_running_loop()
    infos = await loop.run_in_executor(
        None, functools.partial(socket.getaddrinfo, name, port, type=socket.SOCK_STREAM)
    )
    return _unique(
        ipaddress.ip_address(sockaddr[0])
        for family, *_, sockaddr in infos
        if family in (socket.AF_INET, socket.AF_INET6)
    )


async def server_lookup(name: str, server: tuple[str, int]) -> list[IPAddress]:
    """A and AAAA from one DNS server; raises OSError when it gives neither."""
    answers = await asyncio.gather(
        *(_query(name, qtype, server) for qtype in (A, AAAA)), return_exceptions=True
    )
    found = [address for result in answers if isinstance(result, list) for address in result]
    if not found:
        errors = [r for r in answers if isinstance(r, BaseException)]
        raise OSError(
            f"{server[0]}:{server[1]} has no address for {name}" + (f" ({errors[0]})" if errors else "")
        )
    return _unique(found)


class _Exchange(asyncio.DatagramProtocol):
    def __init__(self, query_id: int) -> None:
        self.query_id = query_id
        self.answer: asyncio.Future[dns.DNSMessage] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr) -> None:
        try:
            message = dns.DNSMessage.unpack(data)
        except Exception:
            return
        if message.id == self.query_id and not message.query and not self.answer.done():
            self.answer.set_result(message)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


async def _query(name: str, qtype: int, server: tuple[str, int]) -> list[IPAddress]:
    query_id = random.getrandbits(16)
    question = dns.Question(name, qtype, 1)
    query = dns.DNSMessage(
        id=query_id, query=True, op_code=0, authoritative_answer=False, truncation=False,
        recursion_desired=True, recursion_available=False, reserved=0, response_code=0,
        questions=[question], answers=[], authorities=[], additionals=[], timestamp=None,
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(lambda: _Exchange(query_id), remote_addr=server)
    try:
        transport.sendto(query.packed)
        message = await asyncio.wait_for(protocol.answer, TIMEOUT_SECONDS)
    finally:
        transport.close()
    if message.response_code != 0:
        raise OSError(f"{name}: DNS response code {message.response_code}")
    return [ipaddress.ip_address(record.data) for record in message.answers if record.type in (A, AAAA)]


def _unique(addresses) -> list[IPAddress]:
    return list(dict.fromkeys(addresses))
