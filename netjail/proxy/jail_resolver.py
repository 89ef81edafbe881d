"""The resolver inside the jail: denied names get NXDOMAIN and are never resolved anywhere; allowed names get a
synthetic address the proxy maps back to the name. In ask mode (network.ask) a name no allowedDomains entry
covers gets one too (reason `asked`): the user is asked when the connection comes, with its port. Nothing here asks an upstream resolver: the real lookup
happens only when a connection to an allowed name is dialed (netjail/net/resolver.py)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

from mitmproxy import dns

from netjail.policy.decision import Policy, Verdict
from netjail.policy.synthetic import SyntheticAddresses
from netjail.records.log import utc_timestamp
from netjail.records.schema import AllowOrDeny, DnsRecord, PolicyReason

log = logging.getLogger("netjail.dns")

A, AAAA = 1, 28
NXDOMAIN, REFUSED, FORMERR = 3, 5, 1
TTL_SECONDS = 60


def answer(
    policy: Policy, synthetic: SyntheticAddresses | None, data: bytes
) -> tuple[bytes | None, DnsRecord | None]:
    """One query in, the response and its `dns` record out (None, None for datagrams that are not queries).
    Without transparent capture (`synthetic` None) an allowed name gets an empty answer: an address would lead
    nowhere, and a client that does not use the proxy should fail at once rather than hang."""
    try:
        query = dns.DNSMessage.unpack(data)
    except Exception:
        return None, None
    if not query.query:
        return None, None
    if len(query.questions) != 1:
        return query.fail(FORMERR).packed, _record("", 0, "deny", "malformed", "invalid_host", "FORMERR")
    question = query.questions[0]
    qtype = dns.types.to_str(question.type)
    parsed = policy.parse(question.name)
    if isinstance(parsed, Verdict):
        return query.fail(NXDOMAIN).packed, _record(
            question.name, qtype, parsed.verdict, parsed.rule, parsed.reason, "NXDOMAIN"
        )
    verdict = policy.judge_name(parsed)
    if not verdict.allowed and verdict.reason == "not_allowed" and policy.asks:
        # ask mode: the name resolves, so that the connection comes and netjail asks the user then (addons/ask.py)
        verdict = Verdict("allow", "asked", "ask", f"{parsed.name}: asked when connected to")
    if not verdict.allowed:
        return query.fail(NXDOMAIN).packed, _record(
            parsed.name, qtype, "deny", verdict.rule, verdict.reason, "NXDOMAIN"
        )
    records: list[dns.ResourceRecord] = []
    if synthetic is None:
        return query.succeed(records).packed, _record(
            parsed.name, qtype, "allow", verdict.rule, verdict.reason, []
        )
    v4, v6 = synthetic.addresses_for(parsed.name)
    if question.type == A:
        records.append(dns.ResourceRecord.A(question.name, v4, ttl=TTL_SECONDS))
    elif question.type == AAAA:
        records.append(dns.ResourceRecord.AAAA(question.name, v6, ttl=TTL_SECONDS))
    shown = [str(r.ipv4_address if r.type == A else r.ipv6_address) for r in records]
    return query.succeed(records).packed, _record(
        parsed.name, qtype, "allow", verdict.rule, verdict.reason, shown
    )


def _record(
    name: str,
    qtype: str | int,
    verdict: AllowOrDeny,
    rule: str,
    reason: PolicyReason,
    answer: list[str] | str,
) -> DnsRecord:
    return {
        "event": "dns",
        "id": str(uuid.uuid4()),
        "ts": utc_timestamp(),
        "name": name,
        "type": qtype,
        "verdict": verdict,
        "rule": rule,
        "reason": reason,
        "answer": answer,
    }


class JailResolverProtocol(asyncio.DatagramProtocol):
    """Serves the UDP socket bound to port 53 inside the jail's namespace."""

    def __init__(
        self,
        policy: Callable[[], Policy | None],
        synthetic: SyntheticAddresses | None,
        record: Callable[[DnsRecord], None],
    ):
        self.policy = policy
        self.synthetic = synthetic
        self.record = record
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        try:
            policy = self.policy()
            if policy is None:  # the settings are not loaded: nothing is judged, so nothing resolves
                raise LookupError("no policy loaded")
            response, record = answer(policy, self.synthetic, data)
        except Exception as e:
            log.exception("dns answer failed")
            try:
                response = dns.DNSMessage.unpack(data).fail(REFUSED).packed
            except Exception:
                response = None
            record = _record("", 0, "deny", "policy-error", "policy_error", f"REFUSED ({type(e).__name__})")
        if record is not None:
            log.info("dns %s %s %s (%s)", record["verdict"], record["name"], record["type"], record["rule"])
            self.record(record)
        if response is not None and self.transport is not None:
            self.transport.sendto(response, addr)
