"""Writes the jail refused: which rule made the path read-only, and the run's tally of them.

A platform's observer (on Linux `netjail/jail/linux/write_observer.py`) reports each write it saw refused; this
module says why (the rule that covers the path) and keeps a bounded count per path, so a command that tries a
million names costs a few hundred records. Pure: no system calls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from netjail.jail.spec import PathRules
from netjail.records.log import utc_timestamp
from netjail.records.schema import RefusalCause, RefusedWrite

MAX_PATHS = 200  # distinct paths recorded; the rest are counted in one record
MAX_PROGRAMS = 4
MAX_PATH_CHARS = 1024


@dataclass(frozen=True)
class WriteRules:
    """The rules a refused path is explained by, each as absolute paths (inside the jail they are the host's)."""

    deny_write: tuple[PurePosixPath, ...] = ()
    protected: tuple[PurePosixPath, ...] = ()
    hidden: tuple[PurePosixPath, ...] = ()
    private_state: tuple[PurePosixPath, ...] = ()

    @classmethod
    def of(cls, rules: PathRules, private_state: tuple[object, ...] = ()) -> WriteRules:
        user = {PurePosixPath(p) for p in rules.denied_writes}
        return cls(
            deny_write=tuple(PurePosixPath(p) for p in rules.read_only if PurePosixPath(p) in user),
            protected=tuple(PurePosixPath(p) for p in rules.read_only if PurePosixPath(p) not in user),
            hidden=tuple(PurePosixPath(p) for p in rules.hidden),
            private_state=tuple(PurePosixPath(str(p)) for p in private_state),
        )


def cause_of(path: PurePosixPath, rules: WriteRules) -> tuple[RefusalCause, str | None]:
    """Why `path` is read-only inside: the deepest rule that covers it (a denyWrite entry inside a denyRead region
    is the one that explains it), else it lies outside every allowWrite entry."""
    covering: list[tuple[int, RefusalCause, PurePosixPath]] = []
    for cause, entries in (
        ("netjail", rules.private_state),
        ("deny_read", rules.hidden),
        ("protected", rules.protected),
        ("deny_write", rules.deny_write),
    ):
        for entry in entries:
            if entry == path or entry in path.parents:
                covering.append((len(entry.parts), cause, entry))  # type: ignore[arg-type]
    if not covering:
        return "outside_allow_write", None
    _, cause, entry = max(covering, key=lambda c: c[0])
    return cause, str(entry)


@dataclass
class _Tally:
    first: str
    cause: RefusalCause
    entry: str | None
    ops: dict[str, int] = field(default_factory=dict)
    programs: list[str] = field(default_factory=list)
    count: int = 0


class Refusals:
    """The run's refused writes, per path, bounded."""

    def __init__(self, rules: WriteRules, limit: int = MAX_PATHS):
        self.rules = rules
        self.limit = limit
        self._paths: dict[str, _Tally] = {}
        self._more_paths: set[int] = set()  # hashes: counting what is past the limit stays bounded too
        self._more_count = 0
        self._more_first: str | None = None
        self.started = time.monotonic()

    def add(self, op: str, path: str, program: str) -> None:
        path = path[:MAX_PATH_CHARS]
        tally = self._paths.get(path)
        if tally is None:
            if len(self._paths) >= self.limit:
                self._more_count += 1
                self._more_first = self._more_first or utc_timestamp()
                if len(self._more_paths) < 1_000_000:
                    self._more_paths.add(hash(path))
                return
            cause, entry = cause_of(PurePosixPath(path), self.rules)
            tally = self._paths[path] = _Tally(utc_timestamp(), cause, entry)
        tally.count += 1
        tally.ops[op] = tally.ops.get(op, 0) + 1
        if program not in tally.programs and len(tally.programs) < MAX_PROGRAMS:
            tally.programs.append(program)

    def __bool__(self) -> bool:
        return bool(self._paths)

    def records(self) -> list[RefusedWrite]:
        out: list[RefusedWrite] = [
            {
                "event": "refused_write",
                "ts": t.first,
                "path": path,
                "cause": t.cause,
                "entry": t.entry,
                "ops": t.ops,
                "count": t.count,
                "programs": t.programs,
            }
            for path, t in self._paths.items()
        ]
        if self._more_count:
            out.append(
                {
                    "event": "refused_write",
                    "ts": self._more_first or utc_timestamp(),
                    "path": None,
                    "cause": None,
                    "entry": None,
                    "ops": {"paths": len(self._more_paths)},
                    "count": self._more_count,
                    "programs": [],
                }
            )
        return out
