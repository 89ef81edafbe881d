"""What a seatbelt profile is made from: the `SeatbeltPolicy` built from a `JailSpec` (the same resolved path rules
the bwrap backend applies, plus the macOS pieces), and the read decision it encodes for a path.

Every path is absolute and resolved as the kernel spells it (`/tmp` is `/private/tmp` on macOS).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from netjail.jail.paths import DANGEROUS_DIRECTORIES, DANGEROUS_FILES

if TYPE_CHECKING:
    from netjail.jail.spec import JailSpec
    from netjail.settings import NetworkSettings

# The host's shared temporary directories, hidden as the Linux jail hides /tmp (it gets a private one).
HOST_TEMP_DIRS = ("/private/tmp", "/private/var/tmp")


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


def is_under(path: str, root: str) -> bool:
    """path is root or lies below it."""
    return path == root or root == "/" or path.startswith(root.rstrip("/") + "/")


def is_strictly_under(path: str, root: str) -> bool:
    return path != root and is_under(path, root)


def path_depth(path: str) -> int:
    return len(PurePosixPath(path).parts)


def ancestors_of(path: str) -> list[str]:
    """Proper ancestors, nearest first, without "/"."""
    return [str(p) for p in PurePosixPath(path).parents if str(p) != "/"]


def read_visible(policy: SeatbeltPolicy, path: str) -> bool:
    """The read decision the profile encodes for `path`: the deepest denyRead/allowRead entry over it decides,
    allowRead winning a tie."""
    best: tuple[int, int] | None = None
    for kind, entries in ((0, policy.hidden), (1, policy.reallowed)):
        for entry in entries:
            if is_under(path, entry):
                key = (path_depth(entry), kind)
                best = key if best is None or key > best else best
    return best is None or best[1] == 1


def user_temp_dir(environ: Mapping[str, str] = os.environ) -> str | None:
    """macOS's per-user temporary directory (/private/var/folders/…/T), which other programs of the user share."""
    candidates = []
    try:
        candidates.append(os.confstr("CS_DARWIN_USER_TEMP_DIR"))
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
    temp_hidden = [t for t in host_temp_dirs if not any(is_under(t, str(w)) for w in rules.writable)]
    hidden = (
        strs(rules.hidden, "denyRead") + state + strs(temp_hidden, "the host's shared temporary directory")
    )
    reopen_in_temp = [
        used
        for used in [*map(str, rules.writable), str(spec.cwd)]
        if any(is_strictly_under(used, t) for t in temp_hidden)
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
