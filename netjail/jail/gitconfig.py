"""What may stay in a git configuration that a run created or changed: only keys known not to execute anything.

git runs programs named in its configuration on ordinary commands (`core.fsmonitor` on every `git status`,
`core.pager`, `diff.<driver>.textconv`, `filter.<driver>.smudge`, `!` aliases, `include.path` of a file the run
wrote, …). A deny list of those keys would go stale with the next git release, so this is an allow list: a config
the run touched keeps the keys below, re-emitted in canonical form, and loses everything else. The parser is
git's syntax (git-config(1) "CONFIGURATION FILE"); whatever it cannot read with certainty is dropped, never kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# `section.key`, no subsection. Booleans, names, numbers and formats: nothing here names a program, a script,
# a file git would execute or include, or a directory of hooks.
SAFE_KEYS = frozenset(
    {
        "core.repositoryformatversion", "core.filemode", "core.bare", "core.logallrefupdates", "core.ignorecase",
        "core.precomposeunicode", "core.symlinks", "core.autocrlf", "core.eol", "core.safecrlf", "core.quotepath",
        "core.compression", "core.sparsecheckout", "core.sparsecheckoutcone", "core.untrackedcache",
        "core.checkstat", "core.trustctime", "core.abbrev", "core.commentchar", "core.splitindex",
        "extensions.objectformat", "extensions.worktreeconfig", "extensions.refstorage",
        "user.name", "user.email", "author.name", "author.email", "committer.name", "committer.email",
        "init.defaultbranch", "pull.rebase", "pull.ff", "push.default", "push.autosetupremote",
        "fetch.prune", "fetch.prunetags", "merge.ff", "merge.conflictstyle", "rebase.autostash",
        "rebase.autosquash", "status.showuntrackedfiles", "status.short", "status.branch",
        "diff.renames", "diff.algorithm", "diff.mnemonicprefix", "diff.noprefix", "diff.colormoved",
        "log.date", "log.decorate", "log.follow", "color.ui", "column.ui", "help.autocorrect",
        "gc.auto", "gc.autodetach", "index.version", "pack.threads", "advice.detachedhead",
        "i18n.commitencoding", "i18n.logoutputencoding", "commit.verbose", "tag.sort", "branch.sort",
        "branch.autosetupmerge", "branch.autosetuprebase", "lfs.repositoryformatversion",
    }
)  # fmt: skip
# `section.<subsection>.key`: per-remote, per-branch and per-submodule facts. Not remote.*.uploadpack,
# .receivepack or .vcs (each names a program), not submodule.*.update (`!command` runs it).
SAFE_SUBSECTION_KEYS = {
    "remote": frozenset({"url", "pushurl", "fetch", "push", "tagopt", "prune", "prunetags", "mirror"}),
    "branch": frozenset({"remote", "pushremote", "merge", "rebase", "description"}),
    "submodule": frozenset({"url", "path", "branch", "active", "shallow", "fetchrecursesubmodules"}),
}

# Forms of a remote URL git could hand to a program of the run's choosing: `ext::cmd` (the ext transport) and
# `<vcs>::address` (git-remote-<vcs>). Ordinary URLs, scp-like `host:path` and local paths stay.
_TRANSPORT_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")
_SECTION = re.compile(r"[A-Za-z0-9.-]+")
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9-]*")


@dataclass(frozen=True)
class Entry:
    section: str  # lower case
    subsection: str | None  # case kept (git compares it case-sensitively)
    key: str  # lower case
    value: str | None  # None: the key alone, which git reads as boolean true

    @property
    def name(self) -> str:
        middle = f".{self.subsection}" if self.subsection is not None else ""
        return f"{self.section}{middle}.{self.key}"


class Unreadable(ValueError):
    """The text is not a config git would read the same way this parser does."""


def is_safe(entry: Entry) -> bool:
    if entry.subsection is None:
        return f"{entry.section}.{entry.key}" in SAFE_KEYS
    if entry.key not in SAFE_SUBSECTION_KEYS.get(entry.section, frozenset()):
        return False
    return not (entry.key in ("url", "pushurl") and entry.value and _TRANSPORT_PREFIX.match(entry.value))


def sanitize(text: str) -> tuple[str, list[str]]:
    """(the config with only safe keys, in canonical form; the names of the entries dropped). A text that
    cannot be read with certainty keeps nothing: every entry is dropped, named "<unreadable>"."""
    try:
        entries = parse(text)
    except Unreadable as e:
        return "", [f"<unreadable: {e}>"]
    kept = [e for e in entries if is_safe(e)]
    return render(kept), [e.name for e in entries if not is_safe(e)]


def executing_pairs(text: str) -> list[tuple[str, str | None]]:
    """(name, value) of every entry that is not on the allow list: what a config already held before a run."""
    try:
        return [(e.name, e.value) for e in parse(text) if not is_safe(e)]
    except Unreadable:
        return []


def sanitize_against(text: str, before: set[tuple[str, str | None]]) -> tuple[str, list[str]]:
    """A config the user let the run write (`allowGitConfig`): the entries that execute and were not there
    before the run are dropped, everything else kept (re-emitted in canonical form when something is dropped).
    A text that cannot be read with certainty keeps only the safe keys."""
    try:
        entries = parse(text)
    except Unreadable:
        return sanitize(text)
    added = [e for e in entries if not is_safe(e) and (e.name, e.value) not in before]
    if not added:
        return text, []
    return render([e for e in entries if e not in added]), [e.name for e in added]


def executing_entries(text: str) -> list[str]:
    """The names of the entries sanitize() would drop."""
    return sanitize(text)[1]


# -- rendering ----------------------------------------------------------------------------------------------------


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def render(entries: list[Entry]) -> str:
    lines: list[str] = []
    current: tuple[str, str | None] | None = None
    for entry in entries:
        if (entry.section, entry.subsection) != current:
            current = (entry.section, entry.subsection)
            if entry.subsection is None:
                lines.append(f"[{entry.section}]")
            else:
                sub = entry.subsection.replace("\\", "\\\\").replace('"', '\\"')
                lines.append(f'[{entry.section} "{sub}"]')
        lines.append(f"\t{entry.key}" if entry.value is None else f"\t{entry.key} = {_quote(entry.value)}")
    return "\n".join(lines) + "\n" if lines else ""


# -- parsing (git-config(1), "Syntax") ----------------------------------------------------------------------------

_VALUE_ESCAPES = {"n": "\n", "t": "\t", "b": "\b", '"': '"', "\\": "\\"}


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text.removeprefix("\ufeff")
        self.at = 0

    def peek(self) -> str:
        return self.text[self.at] if self.at < len(self.text) else ""

    def take(self) -> str:
        ch = self.peek()
        self.at += 1
        return ch

    def skip_blanks(self) -> None:
        while self.peek() in (" ", "\t"):
            self.at += 1

    def skip_line(self) -> None:
        end = self.text.find("\n", self.at)
        self.at = len(self.text) if end < 0 else end + 1


def parse(text: str) -> list[Entry]:
    if "\0" in text:
        raise Unreadable("a NUL byte")
    reader = _Reader(text)
    entries: list[Entry] = []
    section: tuple[str, str | None] | None = None
    while reader.peek():
        reader.skip_blanks()
        ch = reader.peek()
        if ch in ("\n", "\r"):
            reader.take()
        elif ch in ("#", ";"):
            reader.skip_line()
        elif ch == "[":
            section = _section_header(reader)
            # git reads a key on the same line as its section header
        elif ch == "":
            break
        else:
            if section is None:
                raise Unreadable("a key before any section")
            entries.append(_entry(reader, section))
    return entries


def _section_header(reader: _Reader) -> tuple[str, str | None]:
    reader.take()  # [
    name = ""
    while reader.peek() and reader.peek() not in ('"', "]", " ", "\t", "\n"):
        name += reader.take()
    reader.skip_blanks()
    subsection: str | None = None
    if reader.peek() == '"':
        reader.take()
        subsection = ""
        while True:
            ch = reader.take()
            if ch in ("", "\n"):
                raise Unreadable("an unterminated subsection name")
            if ch == '"':
                break
            if ch == "\\":
                ch = reader.take()
                if ch in ("", "\n"):
                    raise Unreadable("a subsection name ending in a backslash")
            subsection += ch
        if reader.take() != "]":
            raise Unreadable("a section header that does not end after its subsection")
    elif reader.take() != "]":
        raise Unreadable("an unterminated section header")
    if not _SECTION.fullmatch(name):
        raise Unreadable(f"a section name git would refuse: {name!r}")
    if subsection is None and "." in name:  # the deprecated [section.subsection] form
        name, _, subsection = name.partition(".")
        subsection = subsection.lower()
        if not name or not subsection:
            raise Unreadable(f"an empty part in the section name {name!r}")
    elif "." in name:
        raise Unreadable(f"a dotted section name with a quoted subsection: {name!r}")
    return name.lower(), subsection


def _entry(reader: _Reader, section: tuple[str, str | None]) -> Entry:
    key = ""
    while reader.peek().isalnum() or reader.peek() == "-":
        key += reader.take()
    if not _KEY.fullmatch(key):
        raise Unreadable(f"a key name git would refuse near {reader.text[reader.at : reader.at + 20]!r}")
    reader.skip_blanks()
    ch = reader.peek()
    if ch in ("", "\n", "\r", "#", ";"):
        if ch in ("#", ";"):
            reader.skip_line()
        return Entry(section[0], section[1], key.lower(), None)
    if ch != "=":
        raise Unreadable(f"the key {key!r} is followed by neither '=' nor the end of the line")
    reader.take()
    return Entry(section[0], section[1], key.lower(), _value(reader))


def _value(reader: _Reader) -> str:
    value, pending_blanks, quoted = "", "", False
    reader.skip_blanks()
    while True:
        ch = reader.take()
        if ch == "" or (ch == "\n" and not quoted):
            break
        if ch == "\n":
            raise Unreadable("a quoted value that runs past the end of its line")
        if ch == "\r" and reader.peek() == "\n":
            continue
        if not quoted and ch in ("#", ";"):
            reader.skip_line()
            break
        if not quoted and ch in (" ", "\t"):
            pending_blanks += ch
            continue
        value += pending_blanks if value or quoted else ""
        pending_blanks = ""
        if ch == '"':
            quoted = not quoted
        elif ch == "\\":
            escaped = reader.take()
            if escaped == "\n":
                continue  # a continuation line
            if escaped == "\r" and reader.peek() == "\n":
                reader.take()
                continue
            if escaped not in _VALUE_ESCAPES:
                raise Unreadable(f"an unknown escape \\{escaped}")
            value += _VALUE_ESCAPES[escaped]
        else:
            value += ch
    if quoted:
        raise Unreadable("an unterminated quoted value")
    return value
