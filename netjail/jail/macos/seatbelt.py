"""macOS seatbelt: the SBPL profile `sandbox-exec -p` applies, generated from the same resolved path rules as the
bwrap argument list (`netjail.jail.paths.path_rules`).

Generation is pure: `profile(policy)` turns a `SeatbeltPolicy` (absolute, already resolved paths, as strings) into
text, touching no file. `seatbelt_policy()` (netjail.jail.macos.policy) builds that policy from a `JailSpec` and
the network settings; netjail.jail.macos.sbpl writes the strings, regexes and filters. The tests read generated
profiles back with tests/support/sbpl.py.

How the profile is read (the rules a reviewer needs):
- `(deny default)`: anything not allowed below is denied.
- For one operation the **last** matching rule wins. The file rules are therefore emitted from the shallowest
  path to the deepest, so the most specific `denyRead` / `allowRead` entry decides (srt's precedence: `allowRead`
  re-opens inside `denyRead`, a `denyRead` inside that wins again, at any depth). netjail's own protections
  (denyWrite, the mandatory denies, its state) come after every allow and always win.
- A path filter compares the kernel's resolved path: `/tmp` is `/private/tmp` on macOS. Every path here is
  resolved; a name that is not ASCII is emitted in both Unicode normal forms (NFC and NFD).
- Every deny rule, and `(deny default)`, ends with `(with message "<the run's log tag>")`: the sandbox's reports
  in the unified log carry it, which is how netjail/jail/macos/violations.py finds this run's refused writes.
- No rule ever uses a setting's spelling as a pattern: globs were expanded by `path_rules`, so a name holding
  `[`, `*` or `\\` is a literal here (srt once turned such a name into a regex and lost the deny).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from netjail.jail.macos.policy import (
    SeatbeltPolicy,
    ancestors_of,
    is_strictly_under,
    is_under,
    path_depth,
    read_visible,
)
from netjail.jail.macos.sbpl import (
    MAX_STRING_BYTES,
    allow_filters,
    any_case_filter,
    deny_filters,
    regex_any_case,
    sbpl_comment,
    sbpl_string,
    widened_regex,
)
from netjail.jail.paths import DANGEROUS_DIRECTORIES, DANGEROUS_FILES, GIT_DIR_DENIES

# Mach services a shell and common tools need: srt 0.0.78's list, without the keychain (com.apple.SecurityServer,
# com.apple.securityd.xpc), which would hand the command the user's stored credentials.
MACH_SERVICES = (
    "com.apple.audio.systemsoundserver",
    "com.apple.distributed_notifications@Uv3",
    "com.apple.FontObjectsServer",
    "com.apple.fonts",
    "com.apple.logd",
    "com.apple.lsd.mapdb",
    "com.apple.PowerManagement.control",
    "com.apple.system.logger",
    "com.apple.system.notification_center",
    "com.apple.system.opendirectoryd.libinfo",
    "com.apple.system.opendirectoryd.membership",
    "com.apple.bsd.dirhelper",
    "com.apple.coreservices.launchservicesd",
)
KEYCHAIN_SERVICES = ("com.apple.SecurityServer", "com.apple.securityd.xpc")
# Services that reach the network on a client's behalf: DNS (mDNSResponder), certificate fetching (trustd's
# OCSP/CRL/AIA requests), background downloads. Denied even under a wildcard allowMachLookup; only an entry that
# names one exactly opens it.
EGRESS_SERVICES = (
    "com.apple.dnssd.service",
    "com.apple.trustd",
    "com.apple.trustd.agent",
    "com.apple.nsurlsessiond",
)
MDNS_SOCKETS = ("/private/var/run/mDNSResponder", "/var/run/mDNSResponder")

SYSCTLS = (
    "hw.activecpu", "hw.busfrequency_compat", "hw.byteorder", "hw.cacheconfig", "hw.cachelinesize_compat",
    "hw.cpufamily", "hw.cpufrequency", "hw.cpufrequency_compat", "hw.cputype", "hw.l1dcachesize_compat",
    "hw.l1icachesize_compat", "hw.l2cachesize_compat", "hw.l3cachesize_compat", "hw.logicalcpu",
    "hw.logicalcpu_max", "hw.machine", "hw.memsize", "hw.ncpu", "hw.nperflevels", "hw.packages",
    "hw.pagesize_compat", "hw.pagesize", "hw.physicalcpu", "hw.physicalcpu_max", "hw.tbfrequency_compat",
    "hw.vectorunit", "kern.argmax", "kern.bootargs", "kern.hostname", "kern.maxfiles", "kern.maxfilesperproc",
    "kern.maxproc", "kern.ngroups", "kern.osproductversion", "kern.osrelease", "kern.ostype",
    "kern.osvariant_status", "kern.osversion", "kern.secure_kernel", "kern.tcsm_available", "kern.tcsm_enable",
    "kern.usrstack64", "kern.version", "kern.willshutdown", "machdep.cpu.brand_string", "machdep.ptrauth_enabled",
    "security.mac.lockdown_mode_state", "sysctl.proc_cputype", "vm.loadavg",
)  # fmt: skip
SYSCTL_PREFIXES = (
    "hw.optional.arm", "hw.optional.arm.", "hw.optional.armv8_", "hw.perflevel", "kern.proc.all",
    "kern.proc.pgrp.", "kern.proc.pid.", "machdep.cpu.", "net.routetable.",
)  # fmt: skip
IOCTL_DEVICES = ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom", "/dev/dtracehelper", "/dev/tty")
WRITABLE_DEVICES = (
    "/dev/stdout",
    "/dev/stderr",
    "/dev/null",
    "/dev/tty",
    "/dev/dtracehelper",
    "/dev/autofs_nowait",
)


def dangerous_names(allow_git_config: bool) -> list[str]:
    names = [*DANGEROUS_FILES, *DANGEROUS_DIRECTORIES]
    return names + [f".git/{d}" for d in GIT_DIR_DENIES if not (allow_git_config and d == "config")]


def dangerous_parents() -> list[str]:
    """The directories that hold a two-part dangerous name (`.git` for `.git/hooks`): their entry itself may not
    be created, removed or replaced, or a link in its place would send `.git/hooks` somewhere unprotected."""
    return list(dict.fromkeys(name.split("/")[0] for name in dangerous_names(False) if "/" in name))


def dangerous_name_regexes(root: str, allow_git_config: bool) -> list[str]:
    """Regexes matching every mandatory-deny name at any depth under `root`, existing or not, the name itself
    included (so that it cannot be created as a link to somewhere writable either), and the parent entries of
    two-part names alone. One alternation per kind, split when it would not fit in one string."""
    anchor = "" if root == "/" else root
    names = [regex_any_case(name) for name in dangerous_names(allow_git_config)]
    parents = [regex_any_case(name) for name in dangerous_parents()]
    return _alternations(anchor, names, "(/.*)?$") + _alternations(anchor, parents, "$")


def _alternations(anchor: str, alternatives: list[str], tail: str) -> list[str]:
    regexes: list[str] = []
    chunk: list[str] = []
    for alternative in alternatives:
        candidate = widened_regex(anchor, f"/(.*/)?({'|'.join([*chunk, alternative])}){tail}")
        if chunk and len(candidate.encode()) > MAX_STRING_BYTES - 100:
            regexes.append(widened_regex(anchor, f"/(.*/)?({'|'.join(chunk)}){tail}"))
            chunk = []
        chunk.append(alternative)
    regexes.append(widened_regex(anchor, f"/(.*/)?({'|'.join(chunk)}){tail}"))
    return regexes


# -- rendering --------------------------------------------------------------------------------------------------


class _Lines:
    def __init__(self, policy: SeatbeltPolicy) -> None:
        self.policy = policy
        self.lines: list[str] = []

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def section(self, title: str, *notes: str) -> None:
        self.lines += ["", f"; == {sbpl_comment(title)}"] + [f"; {sbpl_comment(note)}" for note in notes]

    def rule(self, action: str, operations: str, groups: Sequence[tuple[str, Sequence[str]]]) -> None:
        """One rule; `groups` are (comment, filters). Nothing is emitted without a filter: a rule without one
        would match everything."""
        groups = [(why, list(dict.fromkeys(fs))) for why, fs in groups if fs]
        if not groups:
            return
        body: list[str] = []
        for why, filters in groups:
            if why:
                body.append(f"  ; {sbpl_comment(why)}")
            body += [f"  {f}" for f in filters]
        if action == "deny":
            body.append(f"  (with message {sbpl_string(self.policy.log_tag)})")
        body[-1] += ")"
        self.lines += [f"({action} {operations}", *body]

    def why(self, path: str, default: str) -> str:
        return self.policy.labels.get(path, default)


def _layers(
    hidden: Iterable[str], reallowed: Iterable[str]
) -> list[tuple[Literal["deny", "allow"], list[str]]]:
    """denyRead and allowRead entries from the shallowest to the deepest (deny before allow at equal depth), with
    neighbours of the same action merged: emitted in this order, the deepest match decides."""
    entries = sorted({(path_depth(p), 0, p) for p in hidden} | {(path_depth(p), 1, p) for p in reallowed})
    layers: list[tuple[Literal["deny", "allow"], list[str]]] = []
    for _, kind, path in entries:
        action: Literal["deny", "allow"] = "allow" if kind else "deny"
        if layers and layers[-1][0] == action:
            layers[-1][1].append(path)
        else:
            layers.append((action, [path]))
    return layers


def profile(policy: SeatbeltPolicy) -> str:
    """The whole profile, in a fixed order: header → processes and system services → network → file reads →
    file writes → netjail's write protections → terminal."""
    out = _Lines(policy)
    out.add(
        "(version 1)",
        f"(deny default (with message {sbpl_string(policy.log_tag)}))",
        "; netjail seatbelt profile. Anything not allowed below is denied; for one operation the last matching",
        "; rule wins. Paths are as the kernel resolves them (/tmp is /private/tmp).",
    )
    _system(out)
    _network(out, policy)
    _reads(out, policy)
    _writes(out, policy)
    if policy.allow_pty:
        out.section("pseudo-terminal (allowPty)")
        out.add(
            "(allow pseudo-tty)",
            '(allow file-ioctl (literal "/dev/ptmx") (regex "^/dev/ttys"))',
            '(allow file-read* file-write* (literal "/dev/ptmx") (regex "^/dev/ttys"))',
        )
    return "\n".join(out.lines) + "\n"


def _system(out: _Lines) -> None:
    out.section("processes (only within this sandbox)")
    out.add(
        "(allow process-exec)",
        "(allow process-fork)",
        "(allow process-info* (target same-sandbox))",
        "(allow signal (target same-sandbox))",
        "(allow mach-priv-task-port (target same-sandbox))",
    )
    out.section("system services a shell and common tools need (srt's list, without the keychain)")
    out.add("(allow user-preference-read)")
    out.rule("allow", "mach-lookup", [("", [f"(global-name {sbpl_string(n)})" for n in MACH_SERVICES])])
    out.add(
        "(allow ipc-posix-shm)",
        "(allow ipc-posix-sem)",
        "(allow iokit-open",
        '  (iokit-registry-entry-class "IOSurfaceRootUserClient")',
        '  (iokit-registry-entry-class "RootDomainUserClient")',
        '  (iokit-user-client-class "IOSurfaceSendRight"))',
        "(allow iokit-get-properties)",
        "; AF_SYSTEM control sockets (system information; no network)",
        "(allow system-socket (require-all (socket-domain AF_SYSTEM) (socket-protocol 2)))",
        "; creating a Unix socket (socketpair, asyncio's self-pipe); binding or connecting one is ruled below",
        "(allow system-socket (socket-domain AF_UNIX))",
    )
    out.rule(
        "allow",
        "sysctl-read",
        [
            ("", [f"(sysctl-name {sbpl_string(n)})" for n in SYSCTLS]),
            ("", [f"(sysctl-name-prefix {sbpl_string(n)})" for n in SYSCTL_PREFIXES]),
        ],
    )
    out.add(
        '(allow sysctl-write (sysctl-name "kern.tcsm_enable"))',
        "(allow distributed-notification-post)",
    )
    out.rule("allow", "file-ioctl", [("", [f"(literal {sbpl_string(d)})" for d in IOCTL_DEVICES])])
    out.add(
        "(allow file-ioctl file-read-data file-write-data",
        '  (require-all (literal "/dev/null") (vnode-type CHARACTER-DEVICE)))',
    )


def _network(out: _Lines, policy: SeatbeltPolicy) -> None:
    out.section(
        "network: only netjail's proxy, by its remote address (a local-address rule would admit every",
        "connection: an unbound socket's local address is the any-address, which matches)",
    )
    out.add(f'(allow network-outbound (remote ip "localhost:{int(policy.proxy_port)}"))')
    if policy.local_binding:
        out.section(
            "allowLocalBinding: listen on any local address and connect to any loopback port (macOS has no",
            "private loopback: the host's own loopback services are reachable too)",
        )
        out.add(
            '(allow network-bind (local ip "*:*"))',
            '(allow network-inbound (local ip "*:*"))',
            '(allow network-outbound (remote ip "localhost:*"))',
        )
    if policy.all_unix_sockets:
        out.section("allowAllUnixSockets")
        out.add(
            '(allow network-bind (local unix-socket (path-regex "^/")))',
            '(allow network-outbound (remote unix-socket (path-regex "^/")))',
        )
    elif policy.unix_sockets:
        out.section("allowUnixSockets")
        paths = [p for path in policy.unix_sockets for p in allow_filters("subpath", path)]
        out.rule("allow", "network-bind", [("", [f"(local unix-socket {f})" for f in paths])])
        out.rule("allow", "network-outbound", [("", [f"(remote unix-socket {f})" for f in paths])])
    if not any(s in MDNS_SOCKETS for s in policy.unix_sockets):
        out.section("no DNS through the system resolver: it would carry data past the proxy")
        out.rule(
            "deny",
            "network-outbound",
            [("", [f"(remote unix-socket (path-literal {sbpl_string(s)}))" for s in MDNS_SOCKETS])],
        )
    if policy.mach_services:
        out.section("allowMachLookup")
        filters = [
            f"(global-name-prefix {sbpl_string(name[:-1])})"
            if name.endswith("*")
            else f"(global-name {sbpl_string(name)})"
            for name in policy.mach_services
        ]
        out.rule("allow", "mach-lookup", [("", filters)])
    egress = [s for s in EGRESS_SERVICES if s not in policy.mach_services]
    if egress:
        out.section("services that reach the network for a client (DNS, certificate fetching, downloads)")
        out.rule("deny", "mach-lookup", [("", [f"(global-name {sbpl_string(s)})" for s in egress])])


def _reads(out: _Lines, policy: SeatbeltPolicy) -> None:
    out.section(
        "file reads: everything, except denyRead (hidden); allowRead re-opens inside it; the deepest entry decides"
    )
    out.add("(allow file-read*)")
    for action, paths in _layers(policy.hidden, policy.reallowed):
        filters = allow_filters if action == "allow" else deny_filters
        default = "allowRead" if action == "allow" else "denyRead"
        out.rule(action, "file-read*", _grouped(out, paths, default, lambda p, f=filters: f("subpath", p)))
    if "/" in policy.hidden and not read_visible(policy, "/"):
        out.add('(allow file-read* (literal "/"))  ; the root directory itself, or nothing could start')
    stat_only = sorted(
        {a for r in policy.reallowed for a in ancestors_of(r) if not read_visible(policy, a)},
        key=lambda p: (path_depth(p), p),
    )
    out.rule(
        "allow",
        "file-read-metadata",
        [("stat() on the directories above an allowRead path, so realpath() can reach it",
          [f for a in stat_only for f in allow_filters("literal", a)])],
    )  # fmt: skip


def _grouped(out: _Lines, paths: Sequence[str], default: str, make: Any) -> list[tuple[str, list[str]]]:
    groups: dict[str, list[str]] = {}
    for path in paths:
        groups.setdefault(out.why(path, default), []).extend(make(path))
    return list(groups.items())


def _writes(out: _Lines, policy: SeatbeltPolicy) -> None:
    out.section(
        "file writes: only allowWrite (and the run's own TMPDIR); never inside a path the command cannot read"
    )
    out.rule("allow", "file-write*", [("devices", [f"(subpath {sbpl_string(d)})" for d in WRITABLE_DEVICES])])
    writable = policy.writable
    out.rule(
        "allow", "file-write*", _grouped(out, writable, "allowWrite", lambda p: allow_filters("subpath", p))
    )

    def touches_writable(path: str) -> bool:
        return any(is_under(path, w) or is_under(w, path) for w in writable)

    hidden = [h for h in policy.hidden if touches_writable(h)]
    reallowed = [r for r in policy.reallowed if touches_writable(r)]
    for action, paths in _layers(hidden, reallowed):
        if action == "deny":
            out.rule(
                "deny", "file-write*", _grouped(out, paths, "denyRead", lambda p: deny_filters("subpath", p))
            )
            continue
        reopened: list[str] = []
        for r in paths:
            if any(is_under(r, w) for w in writable):
                reopened.append(r)
            reopened += [w for w in writable if is_strictly_under(w, r)]
        out.rule(
            "allow",
            "file-write*",
            _grouped(out, list(dict.fromkeys(reopened)), "allowWrite", lambda p: allow_filters("subpath", p)),
        )

    out.section("netjail's write protections: after every allow, so they always win")
    groups = _grouped(out, policy.read_only, "denyWrite", lambda p: deny_filters("subpath", p))
    groups += _grouped(
        out,
        policy.never_writable,
        "netjail's own state",
        lambda p: [*deny_filters("subpath", p), any_case_filter(p)],
    )
    for root in policy.dangerous_roots:
        regexes = [
            f"(regex {sbpl_string(rx)})" for rx in dangerous_name_regexes(root, policy.allow_git_config)
        ]
        why = f"files that run code or redirect tools later (mandatory denies), at any depth below {root}"
        groups.append((why, regexes))
    out.rule("deny", "file-write*", groups)

    protected = [*policy.read_only, *policy.hidden, *policy.never_writable]
    ancestors = sorted(
        {a for p in protected for a in ancestors_of(p) if any(is_under(a, w) for w in writable)},
        key=lambda p: (path_depth(p), p),
    )
    # netjail's state may not exist yet: its missing parents must not be creatable under another case either
    state_ancestors = sorted({a for p in policy.never_writable for a in ancestors_of(p) if a in ancestors})
    out.rule(
        "deny",
        "file-write-unlink file-write-create",
        [("the directories holding a protected path cannot be renamed, removed or replaced",
          [f for a in ancestors for f in deny_filters("literal", a)]),
         ("", [any_case_filter(a, subtree=False) for a in state_ancestors])],
    )  # fmt: skip
