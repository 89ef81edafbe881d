"""What to allow for the writes the jail refused: the `filesystem.allowWrite` entries that would have let them
through, as narrowly as is useful, and what is never proposed and why.

The paths come from `refused_write` records, which the jailed program chose: a hint is checked here against the
rules, never taken as it is. Never proposed: a system path, the home directory or anything above it, a name
netjail protects (home-level autoexec files, its own installation and state) or a directory that holds one, and
anything wider than what the write needs — a file that exists is proposed itself, a new name its directory, a
tool's cache its cache directory (`~/.npm`, `~/.cache/pip`), the one a user would allow.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from netjail.jail import protected
from netjail.records.rundir import default_state_dir, live_root, state_dir
from netjail.records.schema import RefusedWrite

# Under the home directory: the cache and store directories of package tools, proposed whole.
CACHE_DIRECTORIES = (
    ".npm", ".yarn", ".pnpm-store", ".local/share/pnpm/store", ".bun/install/cache", ".deno",
    ".cargo/registry", ".cargo/git", ".m2/repository", ".gradle/caches", ".gradle/wrapper", "go/pkg/mod",
    ".nuget/packages", ".ivy2/cache", ".sbt", ".cache/*", ".cache",
)  # fmt: skip
SYSTEM_ROOTS = (
    "/usr",
    "/etc",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/boot",
    "/opt",
    "/var/lib",
    # macOS
    "/System",
    "/Library",
    "/Applications",
    "/private/var",
    "/private/etc",
)
NOT_OBSERVABLE = (
    "Reads of denyRead paths are not observed: they succeed on an empty mask. "
    "Writes through a symbolic link are judged by the path named."
)


@dataclass(frozen=True)
class WriteHint:
    path: str
    count: int
    ops: dict[str, int]
    programs: list[str]
    cause: str
    entry: str | None
    proposal: str | None  # an allowWrite entry, `~` for the home directory
    because: str  # why it was refused, and why nothing is proposed when nothing is
    create_first: bool = False  # the proposal does not exist yet: allowWrite needs it to


@dataclass
class WriteHints:
    hints: list[WriteHint] = field(default_factory=list)
    more_paths: int = 0  # refused paths past the recorded ones
    more_count: int = 0

    @property
    def total(self) -> int:
        return sum(h.count for h in self.hints) + self.more_count

    @property
    def proposals(self) -> list[str]:
        return list(dict.fromkeys(h.proposal for h in self.hints if h.proposal))

    def __bool__(self) -> bool:
        return bool(self.hints or self.more_count)


def write_hints(records: Iterable[RefusedWrite], home: Path | None = None) -> WriteHints:
    home = Path(os.path.realpath(home or Path.home()))
    never = _never_proposed(home)
    out = WriteHints()
    for record in records:
        path = record.get("path")
        if not isinstance(path, str):
            out.more_paths += int(record.get("ops", {}).get("paths", 0))
            out.more_count += int(record.get("count") or 0)
            continue
        cause, entry = str(record.get("cause")), record.get("entry")
        proposal, because, create_first = None, _refused_because(cause, entry), False
        if cause == "outside_allow_write":
            proposal, reason, create_first = _proposal(Path(path), home, never)
            because = because if proposal else f"{because}; {reason}"
        out.hints.append(
            WriteHint(
                path=path,
                count=int(record.get("count") or 0),
                ops=dict(record.get("ops") or {}),
                programs=list(record.get("programs") or []),
                cause=cause,
                entry=entry,
                proposal=_tilde(proposal, home) if proposal else None,
                because=because,
                create_first=create_first,
            )
        )
    out.hints.sort(key=lambda h: -h.count)
    return out


def _refused_because(cause: str, entry: str | None) -> str:
    return {
        "outside_allow_write": "outside every allowWrite entry",
        "deny_write": f"under your denyWrite entry {entry}",
        "protected": f"{entry} is protected by netjail (it could make the host run code later)",
        "deny_read": f"inside the denyRead entry {entry}",
        "netjail": "netjail's own state",
    }.get(cause, cause)


def _proposal(path: Path, home: Path, never: list[Path]) -> tuple[Path | None, str, bool]:
    """(entry, why nothing when None, whether the entry must be created first)."""
    if any(path == Path(r) or Path(r) in path.parents for r in SYSTEM_ROOTS):
        return None, "a system path: not proposed (install into the project or a virtual environment)", False
    cache = _cache_directory(path, home)
    candidate = cache or _existing_target(path)
    if candidate is None:
        return None, "nothing on the host to allow", False
    if candidate == Path("/") or candidate == home or candidate in home.parents:
        where = "the home directory" if candidate == home else str(candidate)
        return None, f"it would need {where} writable, which holds files netjail protects", False
    if (name := _protected_name(path)) is not None:
        return None, f"{name} is a name netjail protects wherever it is", False
    for guarded in never:
        if candidate == guarded or guarded in candidate.parents or candidate in guarded.parents:
            return None, f"it would make {_tilde(guarded, home)} writable, which netjail protects", False
    return candidate, "", not candidate.exists()


def _protected_name(path: Path) -> str | None:
    """A name of netjail's inventory (`.bashrc`, `.github/workflows`, `.git`…) that the path is or lies in."""
    parts = path.parts
    for name in [*protected.tree_names(), ".git"]:
        names = tuple(name.rstrip("/").split("/"))
        if any(parts[i : i + len(names)] == names for i in range(len(parts) - len(names) + 1)):
            return name.rstrip("/")
    return None


def _cache_directory(path: Path, home: Path) -> Path | None:
    try:
        inside = path.relative_to(home)
    except ValueError:
        return None
    parts = inside.parts
    for pattern in CACHE_DIRECTORIES:
        names = pattern.split("/")
        if len(parts) >= len(names) and all(n == "*" or n == p for n, p in zip(names, parts, strict=False)):
            return home.joinpath(*parts[: len(names)])
    return None


def _existing_target(path: Path) -> Path | None:
    """A file that exists is allowed itself; a new name needs its nearest existing directory."""
    if path.is_file() and not path.is_symlink():
        return path
    for parent in path.parents:
        if parent.is_dir():
            return parent
    return None


def _never_proposed(home: Path) -> list[Path]:
    config = os.environ.get("XDG_CONFIG_HOME")
    paths = protected.home_paths(home, Path(config) if config else None) + protected.installation_paths()
    paths += [state_dir(), default_state_dir(), live_root(), home / ".config" / "netjail"]
    return [Path(os.path.realpath(p)) for p in paths]


def _tilde(path: Path, home: Path) -> str:
    try:
        return "~/" + str(path.relative_to(home))
    except ValueError:
        return str(path)


def describe(hint: WriteHint, home: Path | None = None) -> str:
    home = Path(os.path.realpath(home or Path.home()))
    ops = ", ".join(f"{op} {n}" for op, n in hint.ops.items())
    return f"{_tilde(Path(hint.path), home)} ({ops})"
