"""macOS seatbelt: the SBPL profile `sandbox-exec -p` applies, generated from the same resolved path rules as the
bwrap argument list (`netjail.jail.spec.path_rules`), and a small SBPL reader, checker and evaluator for the tests.

Generation is pure: `profile(policy)` turns a `SeatbeltPolicy` (absolute, already resolved paths, as strings) into
text, touching no file. `seatbelt_policy()` builds that policy from a `JailSpec` and the network settings.

How the profile is read (the rules a reviewer needs):
- `(deny default)`: anything not allowed below is denied.
- For one operation the **last** matching rule wins. The file rules are therefore emitted from the shallowest
  path to the deepest, so the most specific `denyRead` / `allowRead` entry decides (srt's precedence: `allowRead`
  re-opens inside `denyRead`, a `denyRead` inside that wins again, at any depth). netjail's own protections
  (denyWrite, the mandatory denies, its state) come after every allow and always win.
- A path filter compares the kernel's resolved path: `/tmp` is `/private/tmp` on macOS. Every path here is
  resolved; a name that is not ASCII is emitted in both Unicode normal forms (NFC and NFD).
- No rule ever uses a setting's spelling as a pattern: globs were expanded by `path_rules`, so a name holding
  `[`, `*` or `\\` is a literal here (srt once turned such a name into a regex and lost the deny).
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

from netjail.jail.spec import DANGEROUS_DIRECTORIES, DANGEROUS_FILES, GIT_DIR_DENIES

if TYPE_CHECKING:
    from netjail.jail.spec import JailSpec
    from netjail.settings import NetworkSettings

# sandbox-exec refuses a string literal longer than about 1025 bytes ("Error reading string"), and one bad
# string invalidates the whole profile. Longer paths are refused (allows) or widened to a prefix (denies).
MAX_STRING_BYTES = 1000

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
# The host's shared temporary directories, hidden as the Linux jail hides /tmp (it gets a private one).
HOST_TEMP_DIRS = ("/private/tmp", "/private/var/tmp")


class SbplError(ValueError):
    """A value that cannot be written into a profile without changing its meaning."""


# -- strings ----------------------------------------------------------------------------------------------------


def _control_chars(text: str) -> list[str]:
    return [ch for ch in text if unicodedata.category(ch) == "Cc"]


def sbpl_string(text: str) -> str:
    """`text` as an SBPL string literal: backslash and double quote escaped, everything else as is (non-ASCII as
    UTF-8). Control characters (NUL, newline, tab, escape, …) are refused: SBPL's reader has no escape for most of
    them and a raw one would change what the rule matches, or what a reviewer sees."""
    bad = _control_chars(text)
    if bad:
        raise SbplError(f"{text!r} contains a control character ({bad[0]!r}), which a profile cannot hold")
    if len(text.encode()) > MAX_STRING_BYTES:
        raise SbplError(
            f"{text[:60]!r}… is longer than {MAX_STRING_BYTES} bytes, which sandbox-exec cannot read"
        )
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _comment(text: str) -> str:
    """Text safe to put after `;`: a control character (a newline would end the comment) is shown escaped."""
    return "".join(
        ch.encode("unicode_escape").decode() if unicodedata.category(ch) == "Cc" else ch for ch in text
    )


_REGEX_SPECIAL = re.compile(r"([.^$*+?()\[\]{}|\\])")


def regex_literal(text: str) -> str:
    """`text` as a regular expression matching exactly itself."""
    return _REGEX_SPECIAL.sub(r"\\\1", text)


def regex_any_case(text: str) -> str:
    """`text` as a regular expression matching itself in any ASCII case: macOS volumes are case-insensitive by
    default, so a file created as `.BASHRC` is the `.bashrc` bash reads, and a name that does not exist yet is
    compared as the command spells it."""
    return "".join(
        f"[{c.lower()}{c.upper()}]" if c.isascii() and c.isalpha() else regex_literal(c) for c in text
    )


def _fits(text: str) -> bool:
    return not _control_chars(text) and len(text.encode()) <= MAX_STRING_BYTES


def _spellings(path: str) -> list[str]:
    """The path, and its other Unicode normal form if it has one: a name may be stored on disk in either."""
    return list(dict.fromkeys([path, unicodedata.normalize("NFC", path), unicodedata.normalize("NFD", path)]))


def _widened_regex(pattern_path: str, tail: str) -> str:
    """A regex for `pattern_path` + `tail` that can only match more: control characters become `.`, and a path
    too long for one string is cut to a prefix followed by `.*`."""
    return _widened_regex_with(pattern_path, regex_literal, tail)


def _widened_regex_with(pattern_path: str, literal: Any, tail: str) -> str:
    pieces = ["." if unicodedata.category(ch) == "Cc" else literal(ch) for ch in pattern_path]
    regex = f"^{''.join(pieces)}{tail}"
    if len(regex.encode()) <= MAX_STRING_BYTES:
        return regex
    room, kept = MAX_STRING_BYTES - len(tail.encode()) - 8, []
    for piece in pieces:  # whole characters only: a cut escape or class would change the regex
        room -= len(piece.encode())
        if room < 0:
            break
        kept.append(piece)
    return f"^{''.join(kept)}.*{tail}"


def allow_filters(kind: Literal["subpath", "literal"], path: str) -> list[str]:
    """Filters for an allow rule: exact, or an error (an allow is never widened)."""
    return [f"({kind} {sbpl_string(p)})" for p in _spellings(path)]


def deny_filters(kind: Literal["subpath", "literal"], path: str) -> list[str]:
    """Filters for a deny rule: exact when the path can be written as a string, else a regex that matches it and
    possibly more (a deny may widen, never narrow)."""
    filters = []
    for p in _spellings(path):
        if _fits(p):
            filters.append(f"({kind} {sbpl_string(p)})")
        else:
            tail = "(/.*)?$" if kind == "subpath" else "$"
            filters.append(f"(regex {sbpl_string(_widened_regex(p, tail))})")
    return filters


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
        candidate = _widened_regex(anchor, f"/(.*/)?({'|'.join([*chunk, alternative])}){tail}")
        if chunk and len(candidate.encode()) > MAX_STRING_BYTES - 100:
            regexes.append(_widened_regex(anchor, f"/(.*/)?({'|'.join(chunk)}){tail}"))
            chunk = []
        chunk.append(alternative)
    regexes.append(_widened_regex(anchor, f"/(.*/)?({'|'.join(chunk)}){tail}"))
    return regexes


# -- the policy -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeatbeltPolicy:
    """Everything a profile is made from. Paths are absolute and resolved (as the kernel spells them)."""

    proxy_port: int
    writable: tuple[str, ...] = ()  # allowWrite, and the run's own TMPDIR
    read_only: tuple[str, ...] = ()  # denyWrite, dangerous files found on disk, the settings file
    hidden: tuple[str, ...] = ()  # denyRead, netjail's state, the host's temp directories
    reallowed: tuple[str, ...] = ()  # allowRead inside denyRead, the run's directory, the cwd under /tmp
    never_writable: tuple[str, ...] = ()  # netjail's state and config, whether they exist or not
    dangerous_roots: tuple[str, ...] = ()  # mandatory-deny names are denied at any depth below these
    allow_git_config: bool = False
    unix_sockets: tuple[str, ...] = ()
    all_unix_sockets: bool = False
    local_binding: bool = False
    mach_services: tuple[str, ...] = ()
    allow_pty: bool = False
    log_tag: str = "netjail"
    labels: Mapping[str, str] = field(
        default_factory=dict, compare=False, hash=False
    )  # path -> why, for comments


def _under(path: str, root: str) -> bool:
    """path is root or lies below it."""
    return path == root or root == "/" or path.startswith(root.rstrip("/") + "/")


def _strictly_under(path: str, root: str) -> bool:
    return path != root and _under(path, root)


def _depth(path: str) -> int:
    return len(PurePosixPath(path).parts)


def _ancestors(path: str) -> list[str]:
    """Proper ancestors, nearest first, without "/"."""
    return [str(p) for p in PurePosixPath(path).parents if str(p) != "/"]


def read_visible(policy: SeatbeltPolicy, path: str) -> bool:
    """The read decision the profile encodes for `path`: the deepest denyRead/allowRead entry over it decides,
    allowRead winning a tie."""
    best: tuple[int, int] | None = None
    for kind, entries in ((0, policy.hidden), (1, policy.reallowed)):
        for entry in entries:
            if _under(path, entry):
                key = (_depth(entry), kind)
                best = key if best is None or key > best else best
    return best is None or best[1] == 1


# -- rendering --------------------------------------------------------------------------------------------------


class _Lines:
    def __init__(self, policy: SeatbeltPolicy) -> None:
        self.policy = policy
        self.lines: list[str] = []

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def section(self, title: str, *notes: str) -> None:
        self.lines += ["", f"; == {_comment(title)}"] + [f"; {_comment(note)}" for note in notes]

    def rule(self, action: str, operations: str, groups: Sequence[tuple[str, Sequence[str]]]) -> None:
        """One rule; `groups` are (comment, filters). Nothing is emitted without a filter: a rule without one
        would match everything."""
        groups = [(why, list(dict.fromkeys(fs))) for why, fs in groups if fs]
        if not groups:
            return
        body: list[str] = []
        for why, filters in groups:
            if why:
                body.append(f"  ; {_comment(why)}")
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
    entries = sorted({(_depth(p), 0, p) for p in hidden} | {(_depth(p), 1, p) for p in reallowed})
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
        {a for r in policy.reallowed for a in _ancestors(r) if not read_visible(policy, a)},
        key=lambda p: (_depth(p), p),
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
        return any(_under(path, w) or _under(w, path) for w in writable)

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
            if any(_under(r, w) for w in writable):
                reopened.append(r)
            reopened += [w for w in writable if _strictly_under(w, r)]
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
        lambda p: [*deny_filters("subpath", p), _any_case(p)],
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
        {a for p in protected for a in _ancestors(p) if any(_under(a, w) for w in writable)},
        key=lambda p: (_depth(p), p),
    )
    # netjail's state may not exist yet: its missing parents must not be creatable under another case either
    state_ancestors = sorted({a for p in policy.never_writable for a in _ancestors(p) if a in ancestors})
    out.rule(
        "deny",
        "file-write-unlink file-write-create",
        [("the directories holding a protected path cannot be renamed, removed or replaced",
          [f for a in ancestors for f in deny_filters("literal", a)]),
         ("", [_any_case(a, subtree=False) for a in state_ancestors])],
    )  # fmt: skip


def _any_case(path: str, subtree: bool = True) -> str:
    """A deny filter for `path` spelt in any case (see regex_any_case), for paths that may not exist yet."""
    tail = "(/.*)?$" if subtree else "$"
    return f"(regex {sbpl_string(_widened_regex_with(path, regex_any_case, tail))})"


# -- building the policy from a JailSpec --------------------------------------------------------------------------


def user_temp_dir(environ: Mapping[str, str] = os.environ) -> str | None:
    """macOS's per-user temporary directory (/private/var/folders/…/T), which other programs of the user share."""
    candidates = []
    try:
        candidates.append(os.confstr("CS_DARWIN_USER_TEMP_DIR"))  # type: ignore[arg-type]
    except (ValueError, OSError, AttributeError):
        pass
    candidates.append(environ.get("TMPDIR"))
    for candidate in candidates:
        if candidate:
            real = os.path.realpath(candidate)
            if real.startswith("/private/var/folders/"):
                return real
    return None


def seatbelt_policy(
    spec: JailSpec,
    network: NetworkSettings,
    *,
    allow_git_config: bool,
    proxy_port: int,
    run_dir: str,
    run_tmp: str,
    host_temp_dirs: Sequence[str] = HOST_TEMP_DIRS,
    log_tag: str = "netjail",
) -> SeatbeltPolicy:
    """The seatbelt policy for `spec`: the same path rules the bwrap backend applies, plus the macOS pieces
    (the run's directory for TMPDIR and the trust files, the host's temp directories hidden like Linux's /tmp)."""
    rules = spec.rules
    labels: dict[str, str] = {}

    def strs(paths: Iterable[Path | str], label: str) -> list[str]:
        out = []
        for p in paths:
            s = str(p)
            labels.setdefault(s, label)
            out.append(s)
        return out

    writable = strs(rules.writable, "allowWrite") + strs([run_tmp], "the run's TMPDIR (removed afterwards)")
    read_only = []
    for p in rules.read_only:
        s = str(p)
        mandatory = any(s.endswith("/" + n) for n in (*DANGEROUS_FILES, *DANGEROUS_DIRECTORIES)) or re.search(
            r"/\.git/(hooks|config)$", s
        )
        read_only += strs(
            [s], "mandatory deny (found on disk)" if mandatory else "denyWrite, or the settings file"
        )
    # protected names that do not exist yet (Linux watches them): the profile denies the literal paths
    read_only += strs(rules.missing, "protected name, not created yet")
    state = strs(spec.private_state, "netjail's own state and settings")
    temp_hidden = [t for t in host_temp_dirs if not any(_under(t, str(w)) for w in rules.writable)]
    hidden = (
        strs(rules.hidden, "denyRead") + state + strs(temp_hidden, "the host's shared temporary directory")
    )
    reopen_in_temp = [
        used
        for used in [*map(str, rules.writable), str(spec.cwd)]
        if any(_strictly_under(used, t) for t in temp_hidden)
    ]
    for used in reopen_in_temp:
        labels.setdefault(used, "inside a hidden temporary directory, but used by this run")
    labels[run_dir] = "the run's directory: TMPDIR and the trust files"
    reallowed = strs(rules.reallowed, "allowRead") + reopen_in_temp + [run_dir]  # whatever else is hidden
    sockets = []
    for entry in network.allow_unix_sockets:
        expanded = os.path.expanduser(entry)
        absolute = os.path.normpath(os.path.join(spec.cwd, expanded))
        sockets += [absolute, os.path.realpath(absolute)]
    return SeatbeltPolicy(
        proxy_port=proxy_port,
        writable=tuple(dict.fromkeys(writable)),
        read_only=tuple(dict.fromkeys(read_only)),
        hidden=tuple(dict.fromkeys(hidden)),
        reallowed=tuple(dict.fromkeys(reallowed)),
        never_writable=tuple(dict.fromkeys(state)),
        dangerous_roots=tuple(dict.fromkeys(map(str, rules.writable))),
        allow_git_config=allow_git_config,
        unix_sockets=tuple(dict.fromkeys(sockets)),
        all_unix_sockets=network.allow_all_unix_sockets,
        local_binding=network.allow_local_binding,
        mach_services=tuple(network.allow_mach_lookup),
        allow_pty=spec.allow_pty,
        log_tag=log_tag,
        labels=labels,
    )


# -- reading and checking profiles (used by the tests and by nothing at run time) ----------------------------------


@dataclass(frozen=True)
class Symbol:
    name: str


@dataclass(frozen=True)
class String:
    value: str
    raw: bool = False  # written #"…"


Node = Any  # Symbol | String | int | list[Node]

_TOKEN = re.compile(
    r"""\s+|;[^\n]*|(?P<open>\()|(?P<close>\))|(?P<raw>\#"(?:[^"\\]|\\.)*")|(?P<str>"(?:[^"\\]|\\.)*")"""
    r"""|(?P<atom>[^\s()";]+)""",
    re.DOTALL,
)


def parse(text: str) -> list[Node]:
    """SBPL's s-expressions: lists, symbols, integers, "strings" (with \\\\ and \\" escapes) and #"regex strings".
    Raises SbplError when the text is not balanced or holds something else."""
    stack: list[list[Node]] = [[]]
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise SbplError(f"cannot read the profile at offset {pos}: {text[pos : pos + 20]!r}")
        pos = match.end()
        if match["open"]:
            stack.append([])
        elif match["close"]:
            if len(stack) == 1:
                raise SbplError(f"unbalanced ')' at offset {match.start()}")
            done = stack.pop()
            stack[-1].append(done)
        elif match["str"] or match["raw"]:
            raw = bool(match["raw"])
            body = (match["raw"] or match["str"])[2 if raw else 1 : -1]
            if _control_chars(body):
                raise SbplError(f"a string holds a raw control character: {body!r}")
            value = body if raw else re.sub(r"\\(.)", r"\1", body)
            if len(value.encode()) > MAX_STRING_BYTES + 25:
                raise SbplError(f"a string is longer than sandbox-exec reads: {value[:40]!r}…")
            stack[-1].append(String(value, raw))
        elif match["atom"]:
            atom = match["atom"]
            stack[-1].append(int(atom) if re.fullmatch(r"-?\d+", atom) else Symbol(atom))
    if len(stack) != 1:
        raise SbplError("unbalanced '(': the profile ends inside a list")
    return stack[0]


OPERATIONS = frozenset(
    {
        "default", "process-exec", "process-exec*", "process-fork", "process-info*", "signal",
        "mach-priv-task-port", "user-preference-read", "mach-lookup", "ipc-posix-shm", "ipc-posix-sem",
        "iokit-open", "iokit-get-properties", "system-socket", "sysctl-read", "sysctl-write",
        "distributed-notification-post", "file-ioctl", "file-read*", "file-read-data", "file-read-metadata",
        "file-write*", "file-write-data", "file-write-create", "file-write-unlink", "network*",
        "network-outbound", "network-inbound", "network-bind", "pseudo-tty", "appleevent-send", "lsopen",
    }
)  # fmt: skip
PATH_FILTERS = frozenset({"literal", "subpath", "regex"})
STRING_FILTERS = frozenset(
    {"global-name", "global-name-prefix", "iokit-registry-entry-class", "iokit-user-client-class", "sysctl-name",
     "sysctl-name-prefix"}
)  # fmt: skip
_IP = re.compile(r"(localhost|\*):(\d{1,5}|\*)")


def check(text: str) -> list[list[Node]]:
    """Parse and check a profile: `(version 1)` first, then only `(allow …)` / `(deny …)` rules naming known
    operations and well-formed filters. Returns the rules (without the version form)."""
    forms = parse(text)
    if not forms or forms[0] != [Symbol("version"), 1]:
        raise SbplError("a profile must start with (version 1)")
    rules = []
    for form in forms[1:]:
        if not (isinstance(form, list) and form and form[0] in (Symbol("allow"), Symbol("deny"))):
            raise SbplError(f"not a rule: {form!r}")
        operations = [n for n in form[1:] if isinstance(n, Symbol)]
        filters = [n for n in form[1:] if not isinstance(n, Symbol)]
        if not operations or form[1 : 1 + len(operations)] != operations:
            raise SbplError(f"a rule must name its operations first: {form!r}")
        for op in operations:
            if op.name not in OPERATIONS:
                raise SbplError(f"unknown operation {op.name!r}")
        for node in filters:
            _check_filter(node)
        rules.append(form)
    return rules


def _check_filter(node: Node) -> None:
    if not (isinstance(node, list) and node and isinstance(node[0], Symbol)):
        raise SbplError(f"not a filter: {node!r}")
    head, args = node[0].name, node[1:]

    def one_string() -> str:
        if len(args) != 1 or not isinstance(args[0], String):
            raise SbplError(f"({head} …) takes one string: {node!r}")
        return args[0].value

    if head in PATH_FILTERS:
        value = one_string()
        if head == "regex":
            try:
                re.compile(value)
            except re.error as e:
                raise SbplError(f"bad regex {value!r}: {e}") from None
        elif not value.startswith("/"):
            raise SbplError(f"({head} …) needs an absolute path: {value!r}")
    elif head in STRING_FILTERS:
        one_string()
    elif head in ("require-all", "require-any"):
        for sub in args:
            _check_filter(sub)
    elif head == "require-not":
        if len(args) != 1:
            raise SbplError(f"require-not takes one filter: {node!r}")
        _check_filter(args[0])
    elif head == "with":
        if not (args and args[0] in (Symbol("message"), Symbol("report"))):
            raise SbplError(f"unknown modifier: {node!r}")
    elif head in ("target", "vnode-type", "socket-domain"):
        if len(args) != 1 or not isinstance(args[0], Symbol):
            raise SbplError(f"({head} …) takes one symbol: {node!r}")
    elif head == "socket-protocol":
        if len(args) != 1 or not isinstance(args[0], int):
            raise SbplError(f"socket-protocol takes a number: {node!r}")
    elif head in ("remote", "local"):
        if len(args) != 2 or not isinstance(args[0], Symbol):
            raise SbplError(f"({head} …) takes a kind and an address: {node!r}")
        kind = args[0].name
        if kind == "ip":
            if not (isinstance(args[1], String) and _IP.fullmatch(args[1].value)):
                raise SbplError(f'({head} ip …) takes "localhost:PORT" or "*:PORT": {node!r}')
        elif kind == "unix-socket":
            sub = args[1]
            if not (
                isinstance(sub, list)
                and sub
                and sub[0] in (Symbol("path-literal"), Symbol("subpath"), Symbol("path-regex"))
            ):
                raise SbplError(f"(… unix-socket …) takes a path filter: {node!r}")
        else:
            raise SbplError(f"unknown address kind {kind!r}")
    else:
        raise SbplError(f"unknown filter {head!r}")


@dataclass(frozen=True)
class Query:
    """One operation to decide. Only the fields the operation has are set."""

    operation: str
    path: str | None = None
    is_dir: bool = False
    remote: tuple[str, int] | None = None  # (address, port) for ip
    local: tuple[str, int] | None = None
    socket_path: str | None = None  # unix socket connected to / bound
    name: str | None = None  # mach service, sysctl
    socket_domain: str | None = None
    target: str | None = None


def _operation_covers(rule_op: str, op: str) -> bool:
    return rule_op == op or rule_op == "default" or (rule_op.endswith("*") and op.startswith(rule_op[:-1]))


def _path_match(kind: str, value: str, path: str | None) -> bool:
    if path is None:
        return False
    if kind in ("literal", "path-literal"):
        return path == value
    if kind == "subpath":
        return _under(path, value)
    return re.search(value, path, re.DOTALL) is not None  # POSIX: `.` matches a newline too


def _address_match(spec: str, address: tuple[str, int] | None) -> bool:
    if address is None:
        return False
    host, port = spec.rsplit(":", 1)
    host_ok = host == "*" or (host == "localhost" and address[0] in ("127.0.0.1", "::1", "localhost"))
    return host_ok and (port == "*" or int(port) == address[1])


def _filter_match(node: Node, q: Query) -> bool:
    head, args = node[0].name, node[1:]
    if head in PATH_FILTERS:
        return _path_match(head, args[0].value, q.path)
    if head in ("global-name", "sysctl-name"):
        return q.name == args[0].value
    if head in ("global-name-prefix", "sysctl-name-prefix"):
        return q.name is not None and q.name.startswith(args[0].value)
    if head == "require-all":
        return all(_filter_match(a, q) for a in args)
    if head == "require-any":
        return any(_filter_match(a, q) for a in args)
    if head == "require-not":
        return not _filter_match(args[0], q)
    if head == "vnode-type":
        return q.is_dir if args[0].name == "DIRECTORY" else False
    if head == "socket-domain":
        return q.socket_domain == args[0].name
    if head == "target":
        return q.target == args[0].name
    if head in ("remote", "local"):
        kind, address = args[0].name, args[1]
        if kind == "ip":
            return _address_match(address.value, q.remote if head == "remote" else q.local)
        sub = address
        return _path_match(sub[0].name, sub[1].value, q.socket_path)
    return False  # socket-protocol, iokit classes: never probed


def decide(rules: Sequence[list[Node]], q: Query, *, specific_wins: bool = False) -> Literal["allow", "deny"]:
    """What the profile decides for `q`: the last matching rule wins (SBPL's documented order). With
    `specific_wins`, a rule naming the operation exactly outranks one naming a wildcard (file-write*), as some
    reports of sandbox behaviour say; the tests require both readings to agree on netjail's profiles."""
    best: tuple[int, int] = (-1, -1)
    verdict: Literal["allow", "deny"] = "deny"
    for index, rule in enumerate(rules):
        action = rule[0].name
        ops = [n.name for n in rule[1:] if isinstance(n, Symbol)]
        matching = [op for op in ops if _operation_covers(op, q.operation)]
        if not matching:
            continue
        filters = [n for n in rule[1:] if isinstance(n, list) and n[0] != Symbol("with")]
        if filters and not any(_filter_match(f, q) for f in filters):
            continue
        if "default" in matching and len(matching) == len(ops) and ops == ["default"]:
            rank = 0
        elif specific_wins and q.operation in matching:
            rank = 2
        else:
            rank = 1
        if not specific_wins:
            rank = min(rank, 1)
        if (rank, index) > best:
            best, verdict = (rank, index), action
    return verdict
