"""Ask mode in the supervisor (network.ask): the proxy holds a request to a host that no allowedDomains entry covers
(addons/ask.py) and sends the question here; it is put to whoever can answer, and the first answer wins.

Channels, all outside the jail:
- the run's relay terminal (netjail/run/terminal.py): the command's output is held, the question shown, the line
  typed is the answer (never the command's input), then the command's output resumes and it is told to redraw;
- `netjail ask RUN` from another terminal: a Unix socket in the run's live directory, which every jail masks;
- `--agent-fd N`: a descriptor the harness outside the jail holds;
and one inside, when network.ask.agentChannel opts in (srt's `--agent-channel`): the command inherits one end of
a socketpair, its number in SANDBOX_AGENT_CHANNEL_FD (netjail/run/agent_channel.py). Its answers are the jailed
program's own (decided_by "jailed-agent"); "always" is never offered to it, and denied when it sends it.
The descriptor channels speak one line protocol, srt's agent channel (`src/sandbox/agent-channel.ts`),
version 1, newline-delimited JSON, extended with a scope and a notice of the outcome (docs/policy.md#ask-mode):

  netjail → peer  {"type":"hello","protocol_version":1}
                  {"type":"permission_request","id":"q1","resource":{"type":"network","host":H,"port":P},
                   "operation":"connect","description":…,"request":…,"options":["once","run","always","deny"],
                   "timeout_seconds":60}
                  {"type":"resolved","id":"q1","answer":"run","by":"terminal"}   (+ "diff" for always)
  peer → netjail  {"type":"hello","protocol_version":1}
                  {"type":"permission_response","id":"q1","behavior":"allow"|"deny","scope":"once"|"run"|"always"}

Until a peer's hello arrives it is asked nothing. With no channel at all a question is denied at once, as without
ask mode; one nobody answers is denied after network.ask.timeoutSeconds. "always" adds `host:port` to the settings
file's network.allowedDomains, keeping its comments and layout (JSONC), shows the diff, and applies it through the
live-update path (a policy_update record with source `ask`); it is not offered when the file is netjail's bundled
default or not writable. Each decision is an `ask` record: the answer and who gave it.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import selectors
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import structlog

from netjail.records.log import RecordLog, utc_timestamp
from netjail.records.rundir import RunDir
from netjail.records.schema import AskAnswer, AskDecider, AskRecord
from netjail.run.agent_channel import JailChannel
from netjail.run.terminal import TerminalRelay
from netjail.run.updates import PolicyUpdates
from netjail.settings import LoadedSettings

log = structlog.get_logger("netjail")

PROTOCOL_VERSION = 1
MAX_LINE = 1 << 20
SOCKET_NAME = "ask.sock"
ANSWERS: tuple[AskAnswer, ...] = ("once", "run", "always", "deny")
TYPED = {"o": "once", "once": "once", "r": "run", "run": "run", "a": "always", "always": "always",
         "d": "deny", "deny": "deny", "": "deny"}  # fmt: skip


@dataclass
class Question:
    id: str
    host: str
    port: int
    request: str
    asked_at: float
    deadline: float

    @property
    def entry(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass
class Peer:
    """One end of the line protocol: the harness's --agent-fd, one `netjail ask` connection, or the command's
    channel (network.ask.agentChannel)."""

    fd: int
    kind: AskDecider  # "agent-fd", "ask-command" or "jailed-agent"
    sock: socket.socket | None = None
    ready: bool = False
    buffer: bytearray = field(default_factory=bytearray)

    def send(self, message: dict[str, Any]) -> bool:
        data = json.dumps(message, separators=(",", ":")).encode() + b"\n"  # as srt's JSON.stringify
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view) :]
        except BlockingIOError:
            return True  # a peer that does not read: it misses this line, netjail does not wait for it
        except OSError:
            return False
        return True


def socket_path(runs: RunDir) -> Path:
    return runs.proxy_dir / SOCKET_NAME


def short_socket_address(path: Path) -> tuple[str, int | None]:
    """A Unix socket address for `path` within the kernel's 107 bytes: through /proc/self/fd when it is longer."""
    if len(os.fsencode(path)) < 100 or not sys.platform.startswith("linux"):
        return str(path), None
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    return f"/proc/self/fd/{fd}/{path.name}", fd


class Asking:
    def __init__(
        self,
        loaded: LoadedSettings,
        runs: RunDir,
        records: RecordLog,
        send_to_proxy: Callable[[bytes], Any],
        updates: PolicyUpdates,
        relay: TerminalRelay | None,
        agent_fd: int | None,
        notice: Callable[[str], None],
        jailed: JailChannel | None = None,
    ):
        self.loaded, self.runs, self.records = loaded, runs, records
        self.send_to_proxy, self.updates, self.relay, self.notice = send_to_proxy, updates, relay, notice
        self.timeout = float(loaded.settings.network.ask.timeout_seconds)
        self.pending: dict[str, Question] = {}
        self.peers: dict[int, Peer] = {}
        self.shown: Question | None = None  # on the relay terminal now
        self.typed = ""
        self.listener: socket.socket | None = None
        self._selector: selectors.BaseSelector | None = None
        if agent_fd is not None:
            os.set_blocking(agent_fd, False)
            self.peers[agent_fd] = Peer(agent_fd, "agent-fd")
        if jailed is not None:
            jailed.ours.setblocking(False)  # a command that does not read cannot hold netjail up
            self.peers[jailed.ours.fileno()] = Peer(jailed.ours.fileno(), "jailed-agent", sock=jailed.ours)

    @property
    def enabled(self) -> bool:
        return self.updates.current.settings.network.asks

    # -- set-up ---------------------------------------------------------------------------------------------

    def register(self, selector: selectors.BaseSelector) -> None:
        self._selector = selector
        for peer in self.peers.values():
            self._watch(selector, peer)
            peer.send({"type": "hello", "protocol_version": PROTOCOL_VERSION})
        if not self.enabled:
            return
        path = socket_path(self.runs)
        address, dir_fd = short_socket_address(path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(address)  # in the run's live directory (0700), which every jail masks
            os.chmod(path, 0o600)
            listener.listen(8)
        except OSError as e:
            listener.close()
            log.warning("ask.socket_failed", path=str(path), error=str(e))
            return
        finally:
            if dir_fd is not None:
                os.close(dir_fd)
        listener.setblocking(False)
        self.listener = listener
        selector.register(listener, selectors.EVENT_READ, ("ask", self._on_connect))

    def close(self) -> None:
        """The run ends: what is still waiting is denied (the proxy is stopping anyway)."""
        for question in list(self.pending.values()):
            self._decide(question, "deny", "ended")
        for peer in list(self.peers.values()):
            self._drop(peer)
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    # -- questions from the proxy -----------------------------------------------------------------------------

    def on_proxy_line(self, line: str) -> bool:
        """`ask {json}` from the proxy; False for other lines."""
        if not line.startswith("ask "):
            return False
        try:
            message = json.loads(line[4:])
            now = time.monotonic()
            question = Question(
                str(message["id"]), str(message["host"]), int(message["port"]), str(message["request"]),
                now, now + self.timeout,
            )  # fmt: skip
        except (ValueError, KeyError, TypeError):
            log.warning("ask.bad_question", line=line[:200])
            return True
        self.pending[question.id] = question
        if not self._channels():
            self._decide(question, "deny", "no-channel")
            return True
        for peer in self.peers.values():
            if peer.ready:
                peer.send(self._request(question, peer))
        self._show_next()
        return True

    def _channels(self) -> bool:
        return self.relay is not None or any(p.ready for p in self.peers.values())

    def next_deadline(self) -> float | None:
        return min((q.deadline for q in self.pending.values()), default=None)

    def expire(self) -> None:
        now = time.monotonic()
        for question in [q for q in self.pending.values() if q.deadline <= now]:
            self._decide(question, "deny", "timeout")

    @property
    def always_offered(self) -> bool:
        path = self.updates.current.path
        return self.loaded.origin != "bundled" and os.access(path, os.W_OK)

    def _options(self, peer: Peer | None = None) -> list[str]:
        """The answers offered; never "always" to the jailed program, which cannot widen the settings file."""
        jailed = peer is not None and peer.kind == "jailed-agent"
        return [a for a in ANSWERS if a != "always" or (self.always_offered and not jailed)]

    def _request(self, question: Question, peer: Peer) -> dict[str, Any]:
        return {
            "type": "permission_request",
            "id": question.id,
            "resource": {"type": "network", "host": question.host, "port": question.port},
            "operation": "connect",
            "description": f"{question.request}: {question.host} is not in network.allowedDomains",
            "request": question.request,
            "options": self._options(peer),
            "timeout_seconds": max(0, round(question.deadline - time.monotonic())),
        }

    # -- deciding ---------------------------------------------------------------------------------------------

    def _decide(self, question: Question, answer: AskAnswer, by: AskDecider) -> None:
        if self.pending.pop(question.id, None) is None:
            return
        diff = ""
        if answer == "always":
            try:
                diff = self._write_always(question) if self.always_offered else ""
            except (OSError, ValueError) as e:  # the run's answer stands; the file stays as it was
                self.notice(
                    f"cannot add {question.entry} to {self.updates.current.path}: {e}; allowed for this run"
                )
                diff = ""
            if not diff:
                answer = "run"
        self.send_to_proxy(
            json.dumps({"answer": {"id": question.id, "answer": answer, "by": by}}).encode() + b"\n"
        )
        record: AskRecord = {
            "event": "ask",
            "ts": utc_timestamp(),
            "id": question.id,
            "host": question.host,
            "port": question.port,
            "request": question.request,
            "answer": answer,
            "decided_by": by,
            "waited_ms": round((time.monotonic() - question.asked_at) * 1000),
        }
        if answer == "always":
            record["entry"] = question.entry
        self.records.write(record)
        log.debug("ask.decided", id=question.id, host=question.host, port=question.port, answer=answer, by=by)
        resolved: dict[str, Any] = {"type": "resolved", "id": question.id, "answer": answer, "by": by}
        if diff:
            resolved["diff"] = diff
        for peer in list(self.peers.values()):
            if peer.ready:  # the settings file's diff is for the user, not for the jailed program
                peer.send({k: v for k, v in resolved.items() if k != "diff" or peer.kind != "jailed-agent"})
        if self.shown is question and self.relay is not None:
            self.shown = None
            self.relay.show(f"{answer} ({by})\n" + (diff if by == "terminal" else ""))
            self.relay.close_prompt()
        elif diff and by != "terminal":
            self.notice(f"{question.entry} added to network.allowedDomains:\n{diff.rstrip()}")
        self._show_next()

    def _write_always(self, question: Question) -> str:
        """`host:port` into the settings file's network.allowedDomains (comments kept), then applied live."""
        path = self.updates.current.path
        before = path.read_text()
        after = with_allowed_domain(before, question.entry)
        if after == before:
            raise ValueError("the entry is there already")
        tmp = path.with_name(f".{path.name}.netjail-ask")
        tmp.write_text(after)
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
        self.updates.reread("ask")  # validated and recorded as any live update; the proxy reloads first
        return "".join(
            difflib.unified_diff(before.splitlines(True), after.splitlines(True), str(path), str(path))
        )

    # -- the relay terminal -------------------------------------------------------------------------------------

    def _show_next(self) -> None:
        if self.relay is None or self.shown is not None or not self.pending:
            return
        question = min(self.pending.values(), key=lambda q: q.asked_at)
        self.shown, self.typed = question, ""
        choices = "allow [o]nce, for this [r]un, " + (
            f"[a]lways (adds {question.entry} to {self.updates.current.path.name}), "
            if self.always_offered
            else ""
        )
        self.relay.open_prompt(
            f"\nnetjail: {question.request}: {question.host} is not in network.allowedDomains.\n"
            f"  {choices}or [d]eny? (deny in {self.timeout:.0f} s) ",
            self._on_typed,
        )

    def _on_typed(self, text: str) -> None:
        self.typed += text
        while "\n" in self.typed and self.shown is not None:
            line, self.typed = self.typed.split("\n", 1)
            answer = TYPED.get(line.strip().lower())
            if answer == "always" and not self.always_offered:
                answer = None
            if answer is None:
                assert self.relay is not None
                self.relay.show("  type o, r, " + ("a, " if self.always_offered else "") + "or d: ")
                continue
            self._decide(self.shown, cast(AskAnswer, answer), "terminal")

    # -- the descriptor channels ---------------------------------------------------------------------------

    def _on_connect(self, selector: selectors.BaseSelector, events: int) -> None:
        assert self.listener is not None
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        peer = Peer(conn.fileno(), "ask-command", sock=conn)
        self.peers[peer.fd] = peer
        self._watch(selector, peer)
        peer.send({"type": "hello", "protocol_version": PROTOCOL_VERSION})

    def _watch(self, selector: selectors.BaseSelector, peer: Peer) -> None:
        selector.register(peer.fd, selectors.EVENT_READ, ("ask", lambda _s, _e: self._on_peer(peer)))

    def _on_peer(self, peer: Peer) -> None:
        try:
            data = os.read(peer.fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(peer)
            return
        peer.buffer += data
        while b"\n" in peer.buffer:
            line, _, rest = bytes(peer.buffer).partition(b"\n")
            peer.buffer = bytearray(rest)
            self._on_message(peer, line)
        if len(peer.buffer) > MAX_LINE:
            self._drop(peer)

    def _on_message(self, peer: Peer, line: bytes) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        if message.get("type") == "hello":
            if message.get("protocol_version") == PROTOCOL_VERSION and not peer.ready:
                peer.ready = True
                for waiting in sorted(self.pending.values(), key=lambda q: q.asked_at):
                    peer.send(self._request(waiting, peer))
            return
        if message.get("type") != "permission_response" or not peer.ready:
            return
        question = self.pending.get(str(message.get("id")))
        if question is None:
            return
        answer: AskAnswer = "deny"
        if message.get("behavior") == "allow":  # anything else is a deny, as in srt
            scope = message.get("scope", "once")
            answer = scope if scope in ("once", "run", "always") else "once"
            if answer == "always" and peer.kind == "jailed-agent":
                answer = "deny"  # not offered to it: the jailed program cannot write the settings file
                self.notice(
                    f"the jailed program answered always for {question.entry} on its agent channel: refused, "
                    "denied (only once and run are offered to it)"
                )
            elif answer == "always" and not self.always_offered:
                answer = "run"
        self._decide(question, answer, peer.kind)

    def _drop(self, peer: Peer) -> None:
        self.peers.pop(peer.fd, None)
        if self._selector is not None:
            try:
                self._selector.unregister(peer.fd)
            except (KeyError, ValueError):
                pass
        if peer.sock is not None:
            peer.sock.close()


# -- the settings file ------------------------------------------------------------------------------------------

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|//[^\n]*|/\*.*?\*/|[{}\[\]:,]|[^\s{}\[\]:,"/]+|\s+', re.DOTALL)


class NoAllowedDomains(ValueError):
    """The file has no network.allowedDomains array to add to."""


def with_allowed_domain(text: str, entry: str) -> str:
    """`text` (JSON with comments) with `entry` appended to network.allowedDomains; every other byte is kept."""
    found = _allowed_domains_array(text)
    if found is None:
        raise NoAllowedDomains("the settings file has no network.allowedDomains array")
    start, end, last_end, items = found
    if entry in items:
        return text
    quoted = json.dumps(entry)
    if last_end is None:
        return text[: start + 1] + quoted + text[end:]
    inside = text[start + 1 : last_end]
    if "\n" in inside:  # one entry per line: the new one on a line of its own, indented as the last
        line_start = text.rfind("\n", 0, last_end) + 1
        indent = re.match(r"[ \t]*", text[line_start:]).group()  # type: ignore[union-attr]
        return text[:last_end] + ",\n" + indent + quoted + text[last_end:]
    return text[:last_end] + ", " + quoted + text[last_end:]


def _allowed_domains_array(text: str) -> tuple[int, int, int | None, list[str]] | None:
    """(offset of `[`, offset of `]`, end of the last entry or None, the entries) of network.allowedDomains."""
    stack: list[dict[str, Any]] = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token.isspace() or token.startswith(("//", "/*")):
            continue
        top = stack[-1] if stack else None
        if token in "{[":
            path: tuple[str, ...] = ()
            if top is not None:
                path = (*top["path"], top["key"] if top["kind"] == "{" else "[]")
            stack.append({"kind": token, "path": path, "start": match.start(), "key": None,
                          "expect_key": True, "last_end": None, "items": []})  # fmt: skip
        elif token in "}]":
            frame = stack.pop()
            if frame["kind"] == "[" and frame["path"] == ("network", "allowedDomains"):
                return frame["start"], match.start(), frame["last_end"], frame["items"]
            _value_done(stack, match.end(), None)
        elif token == ":" and top is not None:
            top["expect_key"] = False
        elif token == "," and top is not None:
            top["expect_key"] = top["kind"] == "{"
        elif top is not None and top["kind"] == "{" and top["expect_key"]:
            top["key"] = json.loads(token) if token.startswith('"') else token
        else:
            _value_done(stack, match.end(), json.loads(token) if token.startswith('"') else None)
    return None


def _value_done(stack: list[dict[str, Any]], end: int, value: str | None) -> None:
    if stack and stack[-1]["kind"] == "[":
        stack[-1]["last_end"] = end
        if value is not None:
            stack[-1]["items"].append(value)
