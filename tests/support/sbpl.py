"""A small SBPL reader, checker and evaluator, for the tests: it reads the profiles netjail generates back and
answers "allow or deny?" for one operation, the way SBPL documents it (and, with `specific_wins`, the other reading
some reports describe). Nothing at run time uses it; tests/macos checks the real sandbox-exec agrees on a Mac.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from netjail.jail.macos.sbpl import MAX_STRING_BYTES, SbplError


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
            if any(unicodedata.category(ch) == "Cc" for ch in body):
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
        return path == value or value == "/" or path.startswith(value.rstrip("/") + "/")
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
