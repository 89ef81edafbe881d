"""srt's `network` block, and netjail's additions to it (hosts, resolver, mode, capture).

Field order follows srt's schema; netjail's additions come last.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, ValidationInfo, WithJsonSchema, field_validator, model_validator

from netjail.net.domains import PatternError, normalize_host
from netjail.settings.ask import AskSettings
from netjail.settings.errors import Problem, split_sentence
from netjail.settings.fields import (
    AllowPattern,
    CaFile,
    DenyPattern,
    HostPattern,
    IPAddr,
    IPAddress,
    IPNet,
    NonEmptyStr,
    Port,
    SettingsModel,
    refuse_present,
    require_str,
    unmap,
)
from netjail.settings.limits import NetworkLimits
from netjail.settings.rules import HostRules, refuse_rules_on_excluded_hosts
from netjail.utils.text import quoted

_EXTERNAL_PROXY = (
    "netjail's own proxy must see every connection so it can judge and record it; "
    "an external proxy would take over that role"
)


class MitmProxyConfig(SettingsModel):
    """srt: route some domains through an upstream proxy on a Unix socket. Refused."""

    socket_path: NonEmptyStr
    domains: Annotated[list[HostPattern], Field(min_length=1)]


class ParentProxyConfig(SettingsModel):
    """srt: upstream proxy for all outbound connections. Refused unless empty."""

    http: NonEmptyStr | None = None
    https: NonEmptyStr | None = None
    no_proxy: str | None = None


class TlsTerminate(SettingsModel):
    ca_cert_path: NonEmptyStr | None = None  # warned: netjail always mints a per-run CA
    ca_key_path: NonEmptyStr | None = None
    exclude_domains: list[HostPattern] = []
    extra_ca_cert_paths: list[CaFile] = []
    max_tunnels: Annotated[int, Field(ge=1, le=65536)] | None = None
    handshake_timeout_ms: Annotated[int, Field(ge=100, le=600_000)] | None = None  # warned: mitmproxy's own

    @model_validator(mode="after")
    def _ca_pair(self) -> TlsTerminate:
        if (self.ca_cert_path is None) != (self.ca_key_path is None):
            missing = "caKeyPath" if self.ca_key_path is None else "caCertPath"
            raise Problem(
                "caCertPath and caKeyPath must be given together (as in srt)", f"add {missing} or remove both"
            )
        return self


MachServiceName = Annotated[
    str,
    PlainValidator(lambda v: _check_mach(require_str(v, '"com.example.*"'))),
    WithJsonSchema({"type": "string"}),
]


def _check_mach(value: str) -> str:
    if "*" in value.removesuffix("*"):
        raise Problem(
            f"{quoted(value)} uses '*' other than at the end",
            'write a single trailing "*", e.g. "com.example.*" (or "*" for all services)',
        )
    return value


class NetworkSettings(SettingsModel):
    allowed_domains: list[AllowPattern]
    denied_domains: list[DenyPattern]
    denied_domain_reasons: dict[str, NonEmptyStr] = {}
    strict_allowlist: bool | None = None  # not written: true, unless network.ask asks (which true refuses)
    denied_resolved_addresses: list[IPNet] = []
    allow_unix_sockets: list[str] = []
    allow_all_unix_sockets: bool = False
    allow_local_binding: bool = False
    allow_mach_lookup: list[MachServiceName] = []
    http_proxy_port: Port | None = None
    socks_proxy_port: Port | None = None
    mitm_proxy: MitmProxyConfig | None = None
    filter_request: Any = Field(default=None, json_schema_extra={"not": {}})
    allow_plaintext_header_set: bool = False  # warned when true: netjail sets no request headers
    strip_response_headers: list[NonEmptyStr] = Field(
        default=[], description="Response headers never passed back to the client ('-', '_', '.' folded)."
    )
    refuse_opaque_tunnels: bool = False
    require_host_match: bool = False  # netjail always requires it
    ambiguous_request_target: Literal["refuse", "asSpelled", "normalize"] | None = None
    tls_terminate: TlsTerminate = Field(default_factory=TlsTerminate)
    parent_proxy: ParentProxyConfig | None = None
    # netjail additions
    ask: AskSettings = Field(default_factory=AskSettings)
    limits: NetworkLimits = Field(default_factory=NetworkLimits)
    rules: list[HostRules] = Field(
        default=[],
        description="Request rules on method and path per host pattern; they only narrow allowedDomains.",
    )
    hosts: dict[str, IPAddr] = Field(
        default={},
        description="Pin names to addresses (like curl --resolve); a pinned name may point anywhere.",
    )
    resolver: str | None = Field(
        default=None, description='Upstream DNS server for netjail itself: "IP", "IP:port" or "[IPv6]:port".'
    )
    mode: Literal["enforce", "audit"] = Field(
        default="enforce",
        description='"audit" records what would be denied and lets it through (learn mode).',
    )
    capture: Literal["auto", "transparent", "proxy-variables"] = Field(
        default="auto",
        description=(
            '"auto": capture every TCP connection and DNS query transparently where the kernel allows it, else '
            'fall back to proxy variables with a warning; "transparent": refuse to run without capture; '
            '"proxy-variables": only clients that honour HTTP_PROXY reach the network.'
        ),
    )

    _refuse_http_port = field_validator("http_proxy_port", mode="before")(
        refuse_present(f"an external HTTP proxy is not supported: {_EXTERNAL_PROXY}", "remove httpProxyPort")
    )
    _refuse_socks_port = field_validator("socks_proxy_port", mode="before")(
        refuse_present(
            f"an external SOCKS proxy is not supported: {_EXTERNAL_PROXY}", "remove socksProxyPort"
        )
    )
    _refuse_mitm = field_validator("mitm_proxy", mode="before")(
        refuse_present(
            f"routing domains to another proxy is not supported: {_EXTERNAL_PROXY}",
            "remove mitmProxy; netjail terminates TLS itself and records every request",
        )
    )
    _refuse_filter = field_validator("filter_request", mode="before")(
        refuse_present(
            "filterRequest is a JavaScript callback for srt's library API and cannot be given in a settings file",
            "remove filterRequest",
        )
    )

    @field_validator("parent_proxy", mode="before")
    @classmethod
    def _refuse_parent(cls, value: Any) -> Any:
        named = [key for key in ("http", "https") if isinstance(value, dict) and value.get(key) is not None]
        if named:
            raise Problem(
                "chaining to a parent proxy is not supported: netjail dials upstream itself, and ignoring the "
                "setting would send traffic around the proxy you named",
                "remove parentProxy, or run netjail where direct connections are allowed",
                at=(named[0],),
            )
        return value

    @field_validator("denied_domain_reasons")
    @classmethod
    def _reasons_name_entries(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        denied = info.data.get("denied_domains")
        if denied is None:  # deniedDomains itself is invalid: that error is reported instead
            return value
        entries = [p.source for p in denied]
        for key, reason in value.items():
            if key not in entries:
                import difflib  # only paid for when a file is refused (import time matters)

                close = difflib.get_close_matches(key, entries, n=1)
                hint = f" (did you mean {quoted(close[0])}?)" if close else ""
                raise Problem(
                    f"{quoted(key)} is not an entry of deniedDomains, so this reason could never be shown",
                    f"use the exact deniedDomains entry as the key{hint}, or add {quoted(key)} to deniedDomains",
                    at=(key,),
                )
            if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in reason):
                raise Problem(
                    "the reason contains a control or invisible character (newline, escape, bidi mark)",
                    "write the reason as one plain line",
                    at=(key,),
                )
        return value

    @model_validator(mode="after")
    def _rules_need_termination(self) -> NetworkSettings:
        try:
            refuse_rules_on_excluded_hosts(self.rules, self.tls_terminate.exclude_domains)
        except Problem as problem:
            problem.at = ("rules", *problem.at)
            raise
        return self

    @model_validator(mode="after")
    def _ask_needs_a_loose_allowlist(self) -> NetworkSettings:
        if self.ask.enabled and self.strict_allowlist:
            raise Problem(
                "ask.enabled asks about hosts no allowedDomains entry covers, and strictAllowlist: true says "
                "never to ask (srt's meaning)",
                "remove strictAllowlist (or set it false) to be asked, or remove ask to deny such hosts",
                at=("ask",),
            )
        return self

    @property
    def asks(self) -> bool:
        """Ask mode: network.ask.enabled, and strictAllowlist not written true."""
        return self.ask.enabled  # with strictAllowlist written true it was refused above

    @field_validator("hosts")
    @classmethod
    def _normalise_hosts(cls, value: dict[str, IPAddress]) -> dict[str, IPAddress]:
        pinned: dict[str, IPAddress] = {}
        for key, addr in value.items():
            try:
                host = normalize_host(key)
            except PatternError as exc:
                problem, fix = split_sentence(str(exc))
                raise Problem(problem, fix, at=(key,)) from None
            if host.ip is not None:
                raise Problem(
                    f"{quoted(key)} is an IP address; hosts pins names to addresses",
                    'use a host name as the key, e.g. "registry.internal.test"',
                    at=(key,),
                )
            if host.name in pinned:
                raise Problem(
                    f"{quoted(key)} names {quoted(host.name)} a second time", "keep one entry", at=(key,)
                )
            pinned[host.name] = addr
        return pinned

    @field_validator("resolver")
    @classmethod
    def _check_resolver(cls, value: str) -> str:
        parse_resolver(value)
        return value

    def pin_warnings(self) -> list[str]:
        """A name pinned into a local range whose allowedDomains entry has no port opens every TCP service on
        that address (a domain entry without a port allows every port: srt's meaning, kept). Worded as
        `netjail config check`'s lint of the same case (inspect/config.py), which prints it once."""
        import json

        from netjail.net.addresses import local_range_of
        from netjail.net.domains import Host

        found = []
        for name, address in self.hosts.items():
            local = local_range_of(address)
            if local is None:
                continue
            host = Host(name, None)
            for entry in self.allowed_domains:
                if entry.port is None and entry.matches(host, 0):
                    found.append(
                        f"network.hosts {json.dumps(name)}: {name} is pinned to {address} ({local}) and "
                        f"allowedDomains entry {entry.source!r} has no port, so every port of that local address "
                        f"is reachable. Fix: give the entry the port the service uses, e.g. {f'{name}:443'!r}"
                    )
                    break
        return found

    @property
    def resolver_address(self) -> tuple[str, int] | None:
        """(ip, port) of the upstream DNS server netjail uses; None = the system resolver."""
        return None if self.resolver is None else parse_resolver(self.resolver)


def parse_resolver(text: str) -> tuple[str, int]:
    """ "IP", "IP:port" or "[IPv6]:port" -> (ip, port); port 53 by default. Raises Problem."""
    fix = 'write an IP address with an optional port, e.g. "192.0.2.53", "192.0.2.53:5353" or "[2001:db8::53]:53"'
    host, port_text = text, ""
    if text.startswith("[") and "]" in text:
        host, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise Problem(f"{quoted(text)} is not a resolver address", fix)
        port_text = rest[1:] if rest else ""
        if not port_text and rest:
            raise Problem(f"{quoted(text)} has an empty port", fix)
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        addr = None
    if addr is None or "%" in host or (text.startswith("[") and addr.version != 6):
        raise Problem(
            f"{quoted(text)} is not an IP address; netjail must not need DNS to reach its DNS server", fix
        )
    if port_text and not (re.fullmatch(r"[1-9][0-9]{0,4}", port_text) and int(port_text) <= 65535):
        raise Problem(f"{quoted(text)} has an invalid port (1 to 65535)", fix)
    return str(unmap(addr)), int(port_text) if port_text else 53
