"""The network policy as pure functions: names, ports and addresses in, a `Verdict` out.

The proxy addon asks these questions at every point a name appears (CONNECT target, Host / :authority, TLS
SNI, the address actually dialed); nothing here touches a socket, so the whole table is tested without a proxy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

from netjail.net.addresses import IPAddress, local_range_of
from netjail.net.domains import (
    Host,
    Pattern,
    PatternError,
    address_explicitly_allowed,
    match_destination,
    normalize_host,
)
from netjail.policy.rules import RuleSet, compile_rule_sets, judge_request, rule_set_for

if TYPE_CHECKING:
    from netjail.settings import NetworkSettings

Reason = Literal[
    "allowed",
    "not_allowed",
    "port_not_allowed",
    "denied_by_rule",
    "denied_by_request_rule",
    "ambiguous_path",
    "opaque_tunnel",
    "tunnel_limit",
    "host_mismatch",
    "sni_mismatch",
    "private_destination",
    "ip_literal",
    "invalid_host",
    "policy_error",
    "would_deny",
    "asked",
]


@dataclass(frozen=True, slots=True)
class Verdict:
    verdict: Literal["allow", "deny"]
    reason: Reason
    rule: str  # the pattern that decided, the guard's name, or "default-deny"
    detail: str = ""  # for a person: why, and how to allow it

    @property
    def allowed(self) -> bool:
        return self.verdict == "allow"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def allow(rule: str) -> Verdict:
    return Verdict("allow", "allowed", rule)


def deny(reason: Reason, rule: str, detail: str) -> Verdict:
    return Verdict("deny", reason, rule, detail)


def failed_closed(error: BaseException) -> Verdict:
    """What a hook answers when judging itself raised: never allow."""
    return deny(
        "policy_error",
        "policy-error",
        f"netjail could not judge this request ({type(error).__name__}); denied",
    )


@dataclass(frozen=True, slots=True)
class NetworkRules:
    """The network settings as the policy needs them: validated, compiled and frozen, with no pydantic in it, so
    that the proxy process receives it ready (pickled over its control socket) instead of loading the file."""

    allowed: tuple[Pattern, ...]
    denied: tuple[Pattern, ...]
    denied_reasons: Mapping[str, str]
    excluded_from_tls: tuple[Pattern, ...]
    pinned: Mapping[str, IPAddress]
    denied_ranges: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    audit_mode: bool
    resolver: tuple[str, int] | None
    request_rules: tuple[RuleSet, ...]
    stripped_response_headers: frozenset[str]
    refuse_opaque_tunnels: bool
    max_tunnels: int | None
    asks: bool = False  # network.ask: a host no allowedDomains entry covers is put to the user
    ask_timeout: float = 0.0

    @classmethod
    def of(cls, network: NetworkSettings) -> NetworkRules:
        return cls(
            allowed=tuple(network.allowed_domains),
            denied=tuple(network.denied_domains),
            denied_reasons=dict(network.denied_domain_reasons),
            excluded_from_tls=tuple(network.tls_terminate.exclude_domains),
            pinned={normalize_host(k).name: v for k, v in network.hosts.items()},
            denied_ranges=tuple(network.denied_resolved_addresses),
            audit_mode=network.mode == "audit",
            resolver=network.resolver_address,
            request_rules=compile_rule_sets(network.rules),
            stripped_response_headers=frozenset(fold_header(h) for h in network.strip_response_headers),
            refuse_opaque_tunnels=network.refuse_opaque_tunnels,
            max_tunnels=network.tls_terminate.max_tunnels,
            asks=network.asks,
            ask_timeout=float(network.ask.timeout_seconds),
        )


class Policy:
    """The compiled network settings, and the questions asked of them."""

    def __init__(self, rules: NetworkRules, host_addresses: Collection[IPAddress] = ()):
        self.rules = rules
        self.allowed = rules.allowed
        self.denied = rules.denied
        self.denied_reasons = rules.denied_reasons
        self.excluded_from_tls = rules.excluded_from_tls
        self.pinned = rules.pinned
        self.denied_ranges = rules.denied_ranges
        self.host_addresses = frozenset(host_addresses)
        self.audit_mode = rules.audit_mode
        self.resolver = rules.resolver
        self.request_rules = rules.request_rules
        self.stripped_response_headers = rules.stripped_response_headers
        self.refuse_opaque_tunnels = rules.refuse_opaque_tunnels
        self.max_tunnels = rules.max_tunnels
        self.asks = rules.asks  # ask mode: a host no allowedDomains entry covers is put to the user
        self.ask_timeout = rules.ask_timeout

    @classmethod
    def of(cls, network: NetworkSettings, host_addresses: Collection[IPAddress] = ()) -> Policy:
        """The policy of validated settings (the supervisor, `netjail check`, the stock-mitmdump addons)."""
        return cls(NetworkRules.of(network), host_addresses)

    # -- names ------------------------------------------------------------------------------------------------

    def parse(self, text: str) -> Host | Verdict:
        """A host as a client sent it: normalised, or a deny for a name no resolver should ever see."""
        try:
            return normalize_host(text)
        except PatternError as e:
            return deny("invalid_host", "invalid-host", f"{e}")

    def judge_destination(self, host: Host, port: int) -> Verdict:
        match = match_destination(host, port, self.allowed, self.denied)
        if match.verdict == "allow":
            return allow(match.rule)
        target = f"{host.name}:{port}"
        if match.reason == "denied_by_rule":
            why = self.denied_reasons.get(match.rule)
            detail = f"{target} is denied by deniedDomains entry {match.rule!r}" + (f": {why}" if why else "")
            return deny("denied_by_rule", match.rule, detail + ". Remove that entry to allow it.")
        if host.ip is None and self.audit_mode:
            # network.mode "audit" (netjail learn): only what the allow list alone would refuse goes through
            return Verdict(
                "allow",
                "would_deny",
                "default-deny",
                f'{host.name} is not in network.allowedDomains; allowed because network.mode is "audit"',
            )
        if (entry := self._entry_for_another_port(host, port)) is not None:
            return deny(
                "port_not_allowed",
                "default-deny",
                f"{target}: allowedDomains entry {entry.source!r} allows only port {entry.port}. "
                f"To allow this port too, add {entry.source.rsplit(':', 1)[0] + f':{port}'!r} to network.allowedDomains.",
            )
        if host.ip is not None:
            return deny(
                "ip_literal",
                "default-deny",
                f"{target} is an IP address, and domain rules never match addresses. "
                f"To allow it, add {self.suggested_entry(host)!r} to network.allowedDomains.",
            )
        return deny(
            "not_allowed",
            "default-deny",
            f"{host.name} is not in network.allowedDomains. "
            f"To allow it, add {self.suggested_entry(host)!r} to network.allowedDomains.",
        )

    def _entry_for_another_port(self, host: Host, port: int) -> Pattern | None:
        """An allowed entry that names this host with a different port: the denial is the port's, not the host's."""
        return next((p for p in self.allowed if p.port not in (None, port) and p.matches(host, p.port)), None)

    def judge_name(self, host: Host) -> Verdict:
        """A name on its own, as in a DNS query: the port is not known yet, so a rule with a port neither denies
        nor allows the name outright (the connection is judged again with its port)."""
        if host.ip is not None:
            return deny("ip_literal", "default-deny", f"{host.name} is an address, not a name")
        for pattern in self.denied:
            if pattern.port is None and pattern.matches(host, 0):
                return self.judge_destination(host, 0)
        for pattern in self.allowed:
            if pattern.matches(host, pattern.port or 0):
                return allow(pattern.source)
        return self.judge_destination(host, 0)

    def judge_named(self, target: Host, named: str | None, what: Literal["host", "sni"]) -> Verdict | None:
        """Domain fronting: inside a tunnel to `target`, the Host header / :authority and the TLS SNI must name
        the same host. Returns a deny, or None when they agree (or the name is absent)."""
        if not named:
            return None
        name = named
        if what == "host":
            name = _strip_port(named)
        parsed = self.parse(name)
        if isinstance(parsed, Verdict):
            return parsed
        if parsed.name == target.name:
            return None
        reason: Reason = "host_mismatch" if what == "host" else "sni_mismatch"
        label = "Host header" if what == "host" else "TLS SNI"
        return deny(
            reason,
            "fronting-guard",
            f"the {label} names {parsed.name} but the connection is to {target.name} (domain fronting); "
            "a client must name the host it connects to",
        )

    def has_request_rules(self, host: Host, port: int) -> bool:
        return rule_set_for(self.request_rules, host, port) is not None

    def judge_request(self, host: Host, port: int, method: str, target: str) -> Verdict | None:
        """network.rules on a request to a host the domain lists allowed: None when no rule set covers the
        host (the domain verdict stands), else the verdict of its rules. `target` is the origin-form target."""
        rules = rule_set_for(self.request_rules, host, port)
        if rules is None:
            return None
        decision = judge_request(rules, method, target, host.name)
        if decision.action == "allow":
            return allow(decision.rule)
        reason: Reason = "ambiguous_path" if decision.kind == "ambiguous" else "denied_by_request_rule"
        if self.audit_mode:
            return Verdict(
                "allow",
                "would_deny",
                decision.rule,
                f'{decision.detail} Allowed because network.mode is "audit".',
            )
        return deny(reason, decision.rule, decision.detail)

    def tls_excluded(self, host: Host, port: int) -> bool:
        return any(p.matches(host, port) for p in self.excluded_from_tls)

    # -- addresses --------------------------------------------------------------------------------------------

    def pinned_address(self, host: Host) -> IPAddress | None:
        return self.pinned.get(host.name)

    def judge_address(self, host: Host, address: IPAddress, port: int) -> Verdict:
        """The address actually dialed: local ranges are denied unless the settings name them explicitly (an IP
        or CIDR entry in allowedDomains), or the name is pinned in network.hosts (the operator's choice)."""
        if host.ip is None and self.pinned_address(host) == address:
            return allow(f"hosts:{host.name}")
        as_host = Host(str(address), address)
        if (denied := match_destination(as_host, port, (), self.denied)).reason == "denied_by_rule":
            return deny(
                "denied_by_rule",
                denied.rule,
                f"{subject_of(host)} resolves to {address}, which deniedDomains entry {denied.rule!r} denies",
            )
        if address_explicitly_allowed(address, port, self.allowed):
            return allow(str(address))
        guarded = local_range_of(address, extra_denied=self.denied_ranges, host_addresses=self.host_addresses)
        if guarded is None:
            return allow("public-address")
        subject = subject_of(host)
        return deny(
            "private_destination",
            f"local-range:{guarded}",
            f"{subject} resolves to {address} ({guarded}); netjail never dials local ranges unless allowed. "
            f"To allow it, add {_address_entry(address)!r} to network.allowedDomains"
            + (
                f" or pin it with network.hosts {{{host.name!r}: {str(address)!r}}}"
                if host.ip is None
                else ""
            ),
        )

    def suggested_entry(self, host: Host) -> str:
        if host.ip is not None:
            return _address_entry(host.ip)
        return host.name


def fold_header(name: str) -> str:
    """srt's stripResponseHeaders matching: case-insensitive, with '-', '_' and '.' the same."""
    return name.lower().replace("_", "-").replace(".", "-")


def subject_of(host: Host) -> str:
    return host.name if host.ip is None else "the address"


def _address_entry(address: IPAddress) -> str:
    return f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)


def _strip_port(authority: str) -> str:
    """`host`, `host:port`, `[v6]`, `[v6]:port` -> the host part (brackets kept for normalize_host)."""
    if authority.startswith("["):
        end = authority.find("]")
        return authority[: end + 1] if end != -1 else authority
    host, sep, port = authority.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host
    return authority
