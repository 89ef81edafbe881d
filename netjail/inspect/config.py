"""`netjail config check` lints and `netjail config diff`: what a settings file allows that its author may not
mean, and what a change allows or denies, in words. Both are computed with the policy matcher
(netjail/policy/decision.py) over the files' own hosts, ports and paths — never by comparing text."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

from netjail.net.addresses import IPAddress, local_range_of
from netjail.net.domains import Host, Pattern, normalize_host
from netjail.net.suffixes import is_shared_parent
from netjail.policy.decision import Policy
from netjail.settings import LoadedSettings, Settings

# Storage and hosting names shared by many tenants that the Public Suffix List does not name (yet).
UNLISTED_SHARED_PARENTS = ("storage.googleapis.com", "blob.core.windows.net", "r2.dev")

# Hosts through which a command can carry anything: a rule allowing one turns the allow list into "anything".
# Public DNS-over-HTTPS resolvers (DNS answers for every name, and a DNS tunnel), paste and file-drop sites,
# request catchers and public tunnels (a reverse channel).
TUNNEL_HOSTS: dict[str, str] = {
    "dns.google": "a public DNS-over-HTTPS resolver",
    "dns.google.com": "a public DNS-over-HTTPS resolver",
    "cloudflare-dns.com": "a public DNS-over-HTTPS resolver",
    "mozilla.cloudflare-dns.com": "a public DNS-over-HTTPS resolver",
    "dns.quad9.net": "a public DNS-over-HTTPS resolver",
    "doh.opendns.com": "a public DNS-over-HTTPS resolver",
    "dns.adguard-dns.com": "a public DNS-over-HTTPS resolver",
    "dns.nextdns.io": "a public DNS-over-HTTPS resolver",
    "pastebin.com": "a paste site",
    "paste.ee": "a paste site",
    "hastebin.com": "a paste site",
    "termbin.com": "a paste site",
    "dpaste.org": "a paste site",
    "gist.github.com": "a paste site",
    "gist.githubusercontent.com": "a paste site",
    "transfer.sh": "a file-drop site",
    "0x0.st": "a file-drop site",
    "file.io": "a file-drop site",
    "webhook.site": "a request catcher",
    "requestbin.com": "a request catcher",
    "ngrok.io": "a public tunnel",
    "ngrok-free.app": "a public tunnel",
}
PROBE_LABEL = "any-name"  # the name below a wildcard that the diff asks the matcher about
DEFAULT_PORTS = (443, 80)


@dataclass(frozen=True)
class Lint:
    field: str  # the entry: network.allowedDomains "*.githubusercontent.com"
    problem: str
    fix: str
    entry: str = ""  # the allowedDomains entry it is about, if any

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}. Fix: {self.fix}"


# -- lints ----------------------------------------------------------------------------------------------------


def lints(settings: Settings, expanded: dict[str, list[str]] | None = None) -> list[Lint]:
    """One lint per entry that allows more than it seems to. Entries are named by their text (a preset's hosts
    with the preset they came from: `expanded` is LoadedSettings.expansions)."""
    origin = {host: preset for preset, hosts in (expanded or {}).items() for host in hosts}
    found = [*_shared_wildcards(settings), *_tunnel_hosts(settings), *_local_pins_without_port(settings)]
    return [
        Lint(f"{lint.field} (from {origin[lint.entry]})", lint.problem, lint.fix, lint.entry)
        if lint.entry in origin
        else lint
        for lint in found
    ]


def _allowed_entry(source: str) -> str:
    return f"network.allowedDomains {json.dumps(source)}"


def _is_shared(parent: str) -> bool:
    return is_shared_parent(parent) or parent in UNLISTED_SHARED_PARENTS


def _shared_wildcards(settings: Settings) -> list[Lint]:
    found = []
    for pattern in settings.network.allowed_domains:
        if pattern.kind == "wildcard" and _is_shared(pattern.host):
            found.append(
                Lint(
                    _allowed_entry(pattern.source),
                    f"{pattern.source!r} admits every tenant's host below {pattern.host}, which is shared "
                    "(anyone can get a name there and receive what the command sends)",
                    f"list the exact hosts you need instead, e.g. {_example_below(pattern.host)!r}",
                    pattern.source,
                )
            )
    return found


def _example_below(parent: str) -> str:
    known = {
        "githubusercontent.com": "raw.githubusercontent.com",
        "s3.amazonaws.com": "my-bucket.s3.amazonaws.com",
        "cloudfront.net": "d1234abcd.cloudfront.net",
    }
    return known.get(parent, f"my-app.{parent}")


def _tunnel_hosts(settings: Settings) -> list[Lint]:
    policy = Policy.of(settings.network)
    found = []
    for name, what in TUNNEL_HOSTS.items():
        verdict = policy.judge_destination(normalize_host(name), 443)
        if not verdict.allowed or verdict.reason == "would_deny":
            continue
        found.append(
            Lint(
                _allowed_entry(verdict.rule),
                f"{verdict.rule!r} allows {name}, {what}: a command can carry anything through it",
                f"add {name!r} to network.deniedDomains"
                + (f", or remove {verdict.rule!r}" if verdict.rule == name else ""),
                verdict.rule,
            )
        )
    return found


def _local_pins_without_port(settings: Settings) -> list[Lint]:
    """A pin into a local range lets the name reach that address; a rule without a port opens all its ports."""
    found = []
    for name, address in settings.network.hosts.items():
        guarded = local_range_of(address)
        if guarded is None:
            continue
        host = normalize_host(name)
        for pattern in settings.network.allowed_domains:
            if pattern.port is None and pattern.matches(host, 0):
                found.append(
                    Lint(
                        f"network.hosts {json.dumps(name)}",
                        f"{name} is pinned to {address} ({guarded}) and allowedDomains entry {pattern.source!r} "
                        "has no port, so every port of that local address is reachable",
                        f"give the entry the port the service uses, e.g. {f'{name}:443'!r}",
                        pattern.source,
                    )
                )
                break
    return found


def expansions(loaded: LoadedSettings) -> list[str]:
    """`@pip -> pypi-mirror.corp.example`: what each preset stood for on this machine."""
    return [f"{preset} -> {', '.join(hosts) or '(no host)'}" for preset, hosts in loaded.expansions.items()]


# -- diff -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    shown: str  # in words, "port{port}" standing for the port(s): "any name below example.com, port{port}"
    host: Host
    port: int


def _probes_for(pattern: Pattern) -> list[Probe]:
    ports = (pattern.port,) if pattern.port is not None else DEFAULT_PORTS
    if pattern.kind == "any":
        return []
    if pattern.kind == "wildcard":
        host = normalize_host(f"{PROBE_LABEL}.{pattern.host}")
        return [Probe(f"any name below {pattern.host}, port{{port}}", host, port) for port in ports]
    if pattern.kind == "cidr":
        network = ipaddress.ip_network(pattern.host)
        address = next(network.hosts(), network.network_address)
        host = Host(str(address), address)
        return [Probe(f"{pattern.host} (e.g. {address}), port{{port}}", host, port) for port in ports]
    host = normalize_host(pattern.host)
    return [Probe(f"{host.name}, port{{port}}", host, port) for port in ports]


def _words(policy: Policy, probe: Probe) -> tuple[bool, str]:
    verdict = policy.judge_destination(probe.host, probe.port)
    if verdict.allowed:
        return True, f"by {verdict.rule!r}" if verdict.rule != "default-deny" else 'by network.mode "audit"'
    if verdict.reason == "denied_by_rule":
        return False, f"deniedDomains {verdict.rule!r}"
    return False, "not in allowedDomains"


def diff(before: Settings, after: Settings) -> list[str]:
    """What changes from `before` to `after`, one sentence each: destinations now allowed or denied (every host,
    port and wildcard either file names, judged by both policies), pins, modes and filesystem rules."""
    old, new = Policy.of(before.network), Policy.of(after.network)
    patterns = [
        *before.network.allowed_domains,
        *before.network.denied_domains,
        *after.network.allowed_domains,
        *after.network.denied_domains,
    ]
    seen: set[tuple[str, int]] = set()
    changes: list[str] = []
    for pattern in patterns:
        changed: dict[
            str, list[str]
        ] = {}  # sentence without the port -> ports, so 443 and 80 read as one line
        for probe in _probes_for(pattern):
            if (probe.host.name, probe.port) in seen:
                continue
            seen.add((probe.host.name, probe.port))
            (was, why_was), (now, why_now) = _words(old, probe), _words(new, probe)
            if was != now:
                verb = "now allowed" if now else "now denied"
                changed.setdefault(f"{verb}: {probe.shown} ({why_now}; was {why_was})", []).append(
                    str(probe.port)
                )
        for sentence, ports in changed.items():
            changes.append(
                sentence.replace(
                    "port{port}", ("ports " if len(ports) > 1 else "port ") + " and ".join(ports)
                )
            )
    changes += _pin_changes(before, after)
    for label, a, b in (
        ("network.mode", before.network.mode, after.network.mode),
        ("network.capture", before.network.capture, after.network.capture),
        ("network.allowLocalBinding", before.network.allow_local_binding, after.network.allow_local_binding),
        (
            "network.allowAllUnixSockets",
            before.network.allow_all_unix_sockets,
            after.network.allow_all_unix_sockets,
        ),
    ):
        if a != b:
            changes.append(f"{label}: {a!r} -> {b!r}")
    changes += _filesystem_changes(before, after)
    return changes


def _pin_changes(before: Settings, after: Settings) -> list[str]:
    old, new = before.network.hosts, after.network.hosts
    changes = []
    for name in sorted(old.keys() | new.keys()):
        if name not in new:
            changes.append(f"no longer pinned: {name} (was {old[name]}); it resolves through DNS again")
        elif name not in old:
            changes.append(f"now pinned: {name} -> {new[name]}" + _local_note(new[name]))
        elif old[name] != new[name]:
            changes.append(f"pin changed: {name} {old[name]} -> {new[name]}" + _local_note(new[name]))
    return changes


def _local_note(address: IPAddress) -> str:
    guarded = local_range_of(address)
    return f" ({guarded}: reachable only because it is pinned)" if guarded else ""


FILESYSTEM_WORDS = {
    "deny_read": ("now hidden", "no longer hidden"),
    "allow_read": ("readable again inside a hidden region", "no longer readable inside a hidden region"),
    "allow_write": ("now writable", "no longer writable"),
    "deny_write": ("now read-only", "no longer read-only"),
}


def _filesystem_changes(before: Settings, after: Settings) -> list[str]:
    changes = []
    for name, (added_words, removed_words) in FILESYSTEM_WORDS.items():
        old = [str(p) for p in getattr(before.filesystem, name)]
        new = [str(p) for p in getattr(after.filesystem, name)]
        changes += [f"{added_words}: {path}" for path in new if path not in old]
        changes += [f"{removed_words}: {path}" for path in old if path not in new]
    return changes
