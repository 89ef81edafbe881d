"""Ask mode (network.ask): a request to a host no allowedDomains entry covers is held and put to the user — on the
run's relay terminal, from `netjail ask RUN`, or to the harness on --agent-fd — and judged by the answer, which is
recorded with who gave it. Each case has its control: the same request without an answer, or another answer."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.netjail import Netjail, netjail_executable
from tests.support.servers import Origin
from tests.support.terminal import TerminalSession
from tests.support.wait import wait_until

pytestmark = pytest.mark.nonroot

# One GET per line on stdin (a URL), its status printed: 200, 403, or "error" when the proxy refused the tunnel.
PROBE = (
    "import sys, urllib.request, urllib.error\n"
    "for line in sys.stdin:\n"
    "    try:\n"
    "        print(urllib.request.urlopen(line.strip(), timeout=60).status, flush=True)\n"
    "    except urllib.error.HTTPError as e:\n"
    "        print(e.code, flush=True)\n"
)


def _ask_settings(netjail: Netjail, timeout: int = 30, **network) -> Path:
    return netjail.settings({"allowedDomains": ["allowed.test"], "ask": {"enabled": True, "timeoutSeconds": timeout},
                             **network})  # fmt: skip


def _get(url: str) -> str:
    return f"{sys.executable} -c 'import urllib.request, urllib.error\ntry: print(urllib.request.urlopen(\"{url}\", timeout=60).status)\nexcept urllib.error.HTTPError as e: print(e.code)'"


def _records(run: Path, event: str) -> list[dict]:
    return [r for r in map(json.loads, (run / "flows.jsonl").read_text().splitlines()) if r["event"] == event]


class Agent:
    """The harness's end of --agent-fd: srt's agent-channel protocol, newline-delimited JSON."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.file = sock.makefile("rwb", buffering=0)

    def send(self, message: dict) -> None:
        self.sock.sendall(json.dumps(message).encode() + b"\n")

    def receive(self, kind: str, timeout: float = 30) -> dict:
        self.sock.settimeout(timeout)
        while True:
            line = self.file.readline()
            assert line, f"the channel closed before a {kind}"
            message = json.loads(line)
            if message["type"] == kind:
                return message


def _start_with_agent(netjail: Netjail, cfg: Path) -> tuple[subprocess.Popen, Agent]:
    ours, theirs = socket.socketpair()
    process = subprocess.Popen(
        [netjail_executable(), "-s", str(cfg), "--agent-fd", str(theirs.fileno()), "--",
         sys.executable, "-u", "-c", PROBE],
        cwd=netjail.work, env=netjail.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, pass_fds=(theirs.fileno(),),
    )  # fmt: skip
    theirs.close()
    agent = Agent(ours)
    assert agent.receive("hello")["protocol_version"] == 1
    agent.send({"type": "hello", "protocol_version": 1})
    return process, agent


def _probe(process: subprocess.Popen, url: str) -> None:
    assert process.stdin is not None
    process.stdin.write(url + "\n")
    process.stdin.flush()


def _status(process: subprocess.Popen) -> str:
    assert process.stdout is not None
    return process.stdout.readline().strip()


def _finish(process: subprocess.Popen) -> int:
    assert process.stdin is not None
    process.stdin.close()
    return process.wait(timeout=30)


def test_the_agent_fd_answers_once_and_deny(netjail: Netjail, http_origin: Origin) -> None:
    process, agent = _start_with_agent(netjail, _ask_settings(netjail))
    url = f"http://other.test:{http_origin.port}/asked"
    try:
        _probe(process, url)
        request = agent.receive("permission_request")
        assert request["resource"] == {"type": "network", "host": "other.test", "port": http_origin.port}
        assert request["options"] == ["once", "run", "always", "deny"]
        agent.send({"type": "permission_response", "id": request["id"], "behavior": "allow"})  # srt's: once
        assert _status(process) == "200"
        _probe(process, url)  # a new connection: "once" was the first one's
        second = agent.receive("permission_request")
        agent.send({"type": "permission_response", "id": second["id"], "behavior": "deny"})
        assert _status(process) == "403"  # control: the same request, denied
        _probe(process, f"http://allowed.test:{http_origin.port}/plain")  # allowed: never asked
        assert _status(process) == "200"
    finally:
        assert _finish(process) == 0, process.stderr.read() if process.stderr else ""
    run = netjail.latest_run()
    assert run is not None
    asks = _records(run, "ask")
    assert [(a["answer"], a["decided_by"]) for a in asks] == [("once", "agent-fd"), ("deny", "agent-fd")]
    flows = [f for f in _records(run, "flow") if f["host"] == "other.test"]
    assert [(f["verdict"], f["rule"]) for f in flows] == [("allow", "ask:once"), ("deny", "default-deny")]
    assert "denied (agent-fd)" in flows[1]["detail"]


def test_for_this_run_answers_every_later_connection(netjail: Netjail, http_origin: Origin) -> None:
    process, agent = _start_with_agent(netjail, _ask_settings(netjail))
    url = f"http://other.test:{http_origin.port}/run"
    try:
        _probe(process, url)
        request = agent.receive("permission_request")
        agent.send({"type": "permission_response", "id": request["id"], "behavior": "allow", "scope": "run"})
        assert _status(process) == "200"
        _probe(process, url)
        assert _status(process) == "200"  # no second question
    finally:
        assert _finish(process) == 0
    run = netjail.latest_run()
    assert run is not None
    assert [a["answer"] for a in _records(run, "ask")] == ["run"]


def test_an_unanswered_question_times_out_to_deny(netjail: Netjail, http_origin: Origin) -> None:
    process, agent = _start_with_agent(netjail, _ask_settings(netjail, timeout=2))
    try:
        started = time.monotonic()
        _probe(process, f"http://other.test:{http_origin.port}/late")
        agent.receive("permission_request")
        assert _status(process) == "403"
        assert time.monotonic() - started >= 1.5
        assert agent.receive("resolved") == {
            "type": "resolved",
            "id": "q1",
            "answer": "deny",
            "by": "timeout",
        }
    finally:
        assert _finish(process) == 0
    run = netjail.latest_run()
    assert run is not None
    assert [(a["answer"], a["decided_by"]) for a in _records(run, "ask")] == [("deny", "timeout")]


def test_without_any_channel_it_is_denied_at_once(netjail: Netjail, http_origin: Origin) -> None:
    cfg = _ask_settings(netjail, timeout=60)
    started = time.monotonic()
    result = netjail.run("-s", str(cfg), "-c", _get(f"http://other.test:{http_origin.port}/none"))
    assert result.stdout.strip() == "403", result.explain()
    assert time.monotonic() - started < 30  # not the 60 s timeout
    assert [(a["answer"], a["decided_by"]) for a in result.records if a["event"] == "ask"] == [
        ("deny", "no-channel")
    ]
    control = netjail.run("-s", str(cfg), "-c", _get(f"http://allowed.test:{http_origin.port}/x"))
    assert control.stdout.strip() == "200", control.explain()


def test_netjail_ask_from_another_terminal(netjail: Netjail, http_origin: Origin) -> None:
    cfg = _ask_settings(netjail)
    process = subprocess.Popen(
        [netjail_executable(), "-s", str(cfg), "--", sys.executable, "-u", "-c", PROBE],
        cwd=netjail.work, env=netjail.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    answerer = None
    try:
        assert wait_until(lambda: netjail.latest_run() is not None, timeout=20)
        run = netjail.latest_run()
        assert run is not None
        assert wait_until(lambda: any(p.name == "ask.sock" for p in _live(netjail, run.name)), timeout=20)
        answerer = subprocess.Popen(
            [netjail_executable(), "ask", run.name], cwd=netjail.work, env=netjail.env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert answerer.stderr is not None and "answering for run" in answerer.stderr.readline()
        time.sleep(0.5)  # its hello reaches netjail
        _probe(process, f"http://other.test:{http_origin.port}/from-ask")
        assert answerer.stdin is not None
        answerer.stdin.write("r\n")
        answerer.stdin.flush()
        assert _status(process) == "200"
    finally:
        assert _finish(process) == 0, process.stderr.read() if process.stderr else ""
        if answerer is not None:
            assert answerer.wait(timeout=20) == 0  # it ends with the run
            assert answerer.stdout is not None
            shown = answerer.stdout.read()
            assert "other.test is not in network.allowedDomains" in shown, shown
    run = netjail.latest_run()
    assert run is not None
    assert [(a["answer"], a["decided_by"]) for a in _records(run, "ask")] == [("run", "ask-command")]


def _live(netjail: Netjail, run_id: str) -> list[Path]:
    from netjail.records.rundir import live_root

    folder = live_root(netjail.env) / run_id
    return list(folder.iterdir()) if folder.is_dir() else []


def test_netjail_ask_refuses_a_run_that_is_not_asking(netjail: Netjail) -> None:
    done = netjail.run("-s", str(netjail.settings()), "-c", "true")
    assert done.returncode == 0
    answered = netjail.command("ask")
    assert answered.returncode == 125 and "not running in ask mode" in answered.stderr


# -- the relay terminal ------------------------------------------------------------------------------------------


def test_the_terminal_answers_once_and_the_command_never_sees_the_answer(
    netjail: Netjail, http_origin: Origin
) -> None:
    """The jailed program writes answers to its own terminal while the question waits: they are output (held, then
    shown), never the answer; then the user types "o" and the command's next read gets what is typed after."""
    cfg = _ask_settings(netjail)
    url = f"http://other.test:{http_origin.port}/tty"
    script = (
        "import sys, threading, time, urllib.request\n"
        "def spoof():\n"
        "    time.sleep(1)\n"
        "    with open('/dev/tty', 'w') as tty: tty.write('a\\nalways\\n'); tty.flush()\n"
        "threading.Thread(target=spoof).start()\n"
        f"print('status', urllib.request.urlopen('{url}', timeout=60).status, flush=True)\n"
        "print('typed', repr(input()), flush=True)\n"
    )
    session = TerminalSession(netjail, "-s", str(cfg), "--", sys.executable, "-u", "-c", script)
    try:
        at = session.expect("other.test is not in network.allowedDomains")
        at = session.expect("[d]eny?", after=at)
        time.sleep(2)  # the program's spoofed answers were written meanwhile
        assert "status" not in session.output[at:]  # still held: they answered nothing
        session.type("o\r")
        at = session.expect("status 200", after=at)
        session.type("next\r")
        session.expect("typed 'next'", after=at)
        assert session.wait() == 0, session.output
    finally:
        session.close()
    run = netjail.latest_run()
    assert run is not None
    assert [(a["answer"], a["decided_by"]) for a in _records(run, "ask")] == [("once", "terminal")]
    assert json.loads(cfg.read_text())["network"]["allowedDomains"] == [
        "allowed.test"
    ]  # once: file unchanged


def test_always_on_the_terminal_writes_the_settings_file_and_the_next_run_needs_no_answer(
    netjail: Netjail, http_origin: Origin
) -> None:
    cfg = netjail.tmp_path / "asking.jsonc"
    settings = json.loads(_ask_settings(netjail).read_text())
    body = json.dumps(settings, indent=2).replace(
        '"allowedDomains": [\n      "allowed.test"\n    ]',
        '"allowedDomains": [\n      // what the build needs\n      "allowed.test"\n    ]',
    )
    assert "// what the build needs" in body
    cfg.write_text("// netjail settings for this project\n" + body)
    url = f"http://other.test:{http_origin.port}/always"
    session = TerminalSession(netjail, "-s", str(cfg), "-c", _get(url))
    try:
        at = session.expect("[a]lways (adds other.test:")
        session.type("a\r")
        at = session.expect("200", after=at)
        assert session.wait() == 0, session.output
        assert f'+      "other.test:{http_origin.port}"' in session.output  # the diff, shown
    finally:
        session.close()
    text = cfg.read_text()
    assert "// netjail settings for this project" in text and "// what the build needs" in text
    assert f'"allowed.test",\n      "other.test:{http_origin.port}"\n    ]' in text
    run = netjail.latest_run()
    assert run is not None
    (asked,) = _records(run, "ask")
    assert asked["answer"] == "always" and asked["entry"] == f"other.test:{http_origin.port}"
    (update,) = _records(run, "policy_update")
    assert update["source"] == "ask" and update["result"] == "applied"
    # a second run, without a terminal or any channel: allowed by the file, no question
    again = netjail.run("-s", str(cfg), "-c", _get(url))
    assert again.stdout.strip() == "200", again.explain()
    assert not [r for r in again.records if r["event"] == "ask"]


# -- transparent capture, and the jailed program trying to answer -------------------------------------------------

UNSET = "env -u HTTP_PROXY -u HTTPS_PROXY -u ALL_PROXY -u http_proxy -u https_proxy -u all_proxy"


def test_a_captured_connection_to_an_unknown_name_is_asked_at_connect_time(
    netjail: Netjail, http_origin: Origin
) -> None:
    """A program that ignores the proxy variables: in ask mode the jail's resolver gives other.test a synthetic
    address (reason asked), the connection to it is captured, and netjail asks then, with its port."""
    ours, theirs = socket.socketpair()
    curl = f"{UNSET} curl -sS --max-time 30 http://other.test:{http_origin.port}/captured"
    process = subprocess.Popen(
        [netjail_executable(), "-s", str(_ask_settings(netjail)), "--agent-fd", str(theirs.fileno()),
         "-c", f"{curl}; echo; {curl}"],
        cwd=netjail.work, env=netjail.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL, pass_fds=(theirs.fileno(),),
    )  # fmt: skip
    theirs.close()
    agent = Agent(ours)
    agent.receive("hello")
    agent.send({"type": "hello", "protocol_version": 1})
    first = agent.receive("permission_request")
    assert first["request"] == f"connect other.test:{http_origin.port}"
    agent.send({"type": "permission_response", "id": first["id"], "behavior": "allow", "scope": "once"})
    second = agent.receive("permission_request")  # a new connection: asked again
    agent.send({"type": "permission_response", "id": second["id"], "behavior": "deny"})
    stdout, stderr = process.communicate(timeout=60)
    assert stdout.splitlines()[0] == "hello from http-origin", stderr
    assert "hello from http-origin" not in "".join(stdout.splitlines()[1:])  # control: denied, never arrived
    run = netjail.latest_run()
    assert run is not None
    assert _records(run, "run_start")[0]["capture_mode"] == "transparent"
    dns = [r for r in _records(run, "dns") if r["name"] == "other.test"]
    assert dns and all(r["reason"] == "asked" and r["verdict"] == "allow" for r in dns)
    assert [a["answer"] for a in _records(run, "ask")] == ["once", "deny"]


def test_the_jailed_program_cannot_answer_through_a_channel(netjail: Netjail, http_origin: Origin) -> None:
    """Inside the jail the ask socket's path does not exist and the agent descriptor is not inherited: the program
    writes an allow for its question to every descriptor it has and tries the socket; the question stays the
    harness's, which denies it. Control: the harness's own allow, on the same run's next question."""
    cfg = _ask_settings(netjail)
    ours, theirs = socket.socketpair()
    live = f"{_live_root(netjail)}"
    code = (
        "import json, os, socket, urllib.request, urllib.error, glob\n"
        "allow = json.dumps({'type': 'permission_response', 'id': 'q1', 'behavior': 'allow', 'scope': 'always'})\n"
        "for fd in map(int, os.listdir('/proc/self/fd')):\n"
        "    if fd > 2:\n"
        "        try: os.write(fd, (json.dumps({'type': 'hello', 'protocol_version': 1}) + '\\n' + allow + '\\n').encode())\n"
        "        except OSError: pass\n"
        f"print('sockets', glob.glob('{live}/*/ask.sock'), flush=True)\n"
        "for path in ['q1', 'q2']:\n"
        "    try: print(urllib.request.urlopen('http://other.test:%d/' % "
        + str(http_origin.port)
        + ", timeout=60).status, flush=True)\n"
        "    except urllib.error.HTTPError as e: print(e.code, flush=True)\n"
    )
    process = subprocess.Popen(
        [netjail_executable(), "-s", str(cfg), "--agent-fd", str(theirs.fileno()), "--", sys.executable, "-c", code],
        cwd=netjail.work, env=netjail.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL, pass_fds=(theirs.fileno(),),
    )  # fmt: skip
    theirs.close()
    agent = Agent(ours)
    agent.receive("hello")
    agent.send({"type": "hello", "protocol_version": 1})
    first = agent.receive("permission_request")
    agent.send({"type": "permission_response", "id": first["id"], "behavior": "deny"})
    second = agent.receive("permission_request")
    agent.send({"type": "permission_response", "id": second["id"], "behavior": "allow"})
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert stdout.splitlines() == ["sockets []", "403", "200"], stdout + stderr
    assert os.path.isdir(live)  # the live root exists outside the jail: it is hidden inside, not absent
    run = netjail.latest_run()
    assert run is not None
    assert [(a["answer"], a["decided_by"]) for a in _records(run, "ask")] == [
        ("deny", "agent-fd"),
        ("once", "agent-fd"),
    ]
    assert json.loads(cfg.read_text())["network"]["allowedDomains"] == ["allowed.test"]


def _live_root(netjail: Netjail) -> Path:
    from netjail.records.rundir import live_root

    return live_root(netjail.env)
