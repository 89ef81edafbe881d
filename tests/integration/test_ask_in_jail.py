"""Ask mode's in-jail agent channel (network.ask.agentChannel, srt's --agent-channel): the command inherits one end
of a socketpair, its number in SANDBOX_AGENT_CHANNEL_FD, and answers the questions its own requests raise over
srt's agent-channel protocol. Its answers are recorded as the jailed agent's; "always" is never offered to it and is
denied when it sends it; without the opt-in there is neither variable nor descriptor. Real netjail, bwrap,
mitmproxy, a loopback origin and a Python client inside the jail."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_ask import Agent, _records
from tests.support.netjail import Netjail, netjail_executable
from tests.support.servers import Origin
from tests.support.terminal import TerminalSession

pytestmark = pytest.mark.nonroot

# The jailed agent: takes the channel srt's way, says hello, then GETs each URL of argv[1] (comma-separated) while a
# thread answers each permission_request with the next of argv[2:] (a permission_response body, JSON). Prints
# "hello …", "message …" (each line netjail sent) and "status N".
JAILED_AGENT = r"""
import json, os, socket, sys, threading, time, urllib.error, urllib.request

fd = int(os.environ["SANDBOX_AGENT_CHANNEL_FD"])
os.set_inheritable(fd, False)  # the agent's alone: what it starts does not inherit it
channel = socket.socket(fileno=fd)
lines = channel.makefile("rb")


def out(*args):
    print(*args, flush=True)


def send(message):
    channel.sendall(json.dumps(message).encode() + b"\n")


out("hello", lines.readline().decode().strip())
send({"type": "hello", "protocol_version": 1})
time.sleep(1)  # netjail reads the hello before the first question: until then it asks nothing (srt's rule)
answers = [json.loads(a) for a in sys.argv[2:]]
asked, resolved = [], []


def agent():
    for line in lines:
        out("message", line.decode().strip())
        message = json.loads(line)
        if message["type"] == "permission_request":
            asked.append(message["id"])
            send({"type": "permission_response", "id": message["id"], **answers.pop(0)})
        elif message["type"] == "resolved":
            resolved.append(message["id"])


threading.Thread(target=agent, daemon=True).start()
for url in sys.argv[1].split(","):
    try:
        out("status", urllib.request.urlopen(url, timeout=60).status)
    except urllib.error.HTTPError as e:
        out("status", e.code)
deadline = time.monotonic() + 30
while len(resolved) < len(asked) and time.monotonic() < deadline:  # the last "resolved" line
    time.sleep(0.05)
"""


def _channel_settings(netjail: Netjail, agent_channel: bool = True) -> Path:
    ask = {"enabled": True, "timeoutSeconds": 30, **({"agentChannel": True} if agent_channel else {})}
    return netjail.settings({"allowedDomains": ["allowed.test"], "ask": ask})


def _agent_script(netjail: Netjail) -> Path:
    script = netjail.work / "jailed_agent.py"
    script.write_text(JAILED_AGENT)
    return script


def _lines(stdout: str, kind: str) -> list[str]:
    return [line.split(" ", 1)[1] for line in stdout.splitlines() if line.startswith(kind + " ")]


def _messages(stdout: str, kind: str) -> list[dict]:
    return [m for m in map(json.loads, _lines(stdout, "message")) if m["type"] == kind]


def _paths(origin: Origin) -> list[str]:
    return [path for _method, path, _host in origin.seen]


def test_the_jailed_agent_answers_its_own_question(netjail: Netjail, http_origin: Origin) -> None:
    """srt's hello, then a question for a host no allowedDomains entry covers: allow reaches the origin, recorded as
    the jailed agent's; control: the same request answered deny never arrives. The harness on --agent-fd, asked too,
    is offered always and sees who decided."""
    cfg = _channel_settings(netjail)
    before = cfg.read_bytes()
    base = f"http://other.test:{http_origin.port}"
    urls = f"{base}/jailed-allow,{base}/jailed-deny"
    ours, theirs = socket.socketpair()
    process = subprocess.Popen(
        [netjail_executable(), "-s", str(cfg), "--agent-fd", str(theirs.fileno()), "--",
         sys.executable, "-u", str(_agent_script(netjail)), urls, '{"behavior": "allow"}', '{"behavior": "deny"}'],
        cwd=netjail.work, env=netjail.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL, pass_fds=(theirs.fileno(),),
    )  # fmt: skip
    theirs.close()
    harness = Agent(ours)
    harness.receive("hello")
    harness.send({"type": "hello", "protocol_version": 1})
    offered = harness.receive("permission_request")
    assert offered["options"] == ["once", "run", "always", "deny"]  # the harness outside may say always
    assert harness.receive("resolved") == {"type": "resolved", "id": offered["id"], "answer": "once",
                                           "by": "jailed-agent"}  # fmt: skip
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stdout + stderr

    assert json.loads(_lines(stdout, "hello")[0]) == {"type": "hello", "protocol_version": 1}
    assert _lines(stdout, "status") == ["200", "403"], stdout + stderr
    first, second = _messages(stdout, "permission_request")
    # srt's shape
    assert first["resource"] == {"type": "network", "host": "other.test", "port": http_origin.port}
    assert first["operation"] == "connect" and "other.test" in first["description"]
    assert first["options"] == second["options"] == ["once", "run", "deny"]  # never always, inside
    assert [(m["answer"], m["by"]) for m in _messages(stdout, "resolved")] == [
        ("once", "jailed-agent"),
        ("deny", "jailed-agent"),
    ]
    assert "/jailed-allow" in _paths(http_origin)
    assert "/jailed-deny" not in _paths(http_origin)  # control: denied, it never arrived

    run = netjail.latest_run()
    assert run is not None
    assert [(a["answer"], a["decided_by"]) for a in _records(run, "ask")] == [
        ("once", "jailed-agent"),
        ("deny", "jailed-agent"),
    ]
    flows = [f for f in _records(run, "flow") if f["host"] == "other.test"]
    assert [(f["verdict"], f["rule"]) for f in flows] == [("allow", "ask:once"), ("deny", "default-deny")]
    assert "denied (jailed-agent)" in flows[1]["detail"]
    assert cfg.read_bytes() == before


def test_always_from_the_jailed_agent_is_denied_and_the_file_unchanged(
    netjail: Netjail, http_origin: Origin
) -> None:
    """The jailed agent sends the answer it was not offered: "always" is refused — denied, recorded, the settings
    file byte for byte as it was. Control: its "run" answer on the same run's next question is honoured."""
    cfg = _channel_settings(netjail)
    before = cfg.read_bytes()
    base = f"http://other.test:{http_origin.port}"
    urls = f"{base}/jailed-always,{base}/jailed-run,{base}/jailed-run-again"
    result = netjail.run("-s", str(cfg), "--", sys.executable, "-u", str(_agent_script(netjail)), urls,
                         '{"behavior": "allow", "scope": "always"}', '{"behavior": "allow", "scope": "run"}')  # fmt: skip
    assert result.returncode == 0, result.explain()
    assert _lines(result.stdout, "status") == ["403", "200", "200"], result.explain()  # "run": asked once
    assert [(m["answer"], m["by"]) for m in _messages(result.stdout, "resolved")] == [
        ("deny", "jailed-agent"),
        ("run", "jailed-agent"),
    ]
    assert "answered always for other.test" in result.stderr and "refused" in result.stderr
    assert cfg.read_bytes() == before
    assert "/jailed-always" not in _paths(http_origin)
    assert "/jailed-run" in _paths(http_origin)
    assert [(a["answer"], a["decided_by"]) for a in result.records if a["event"] == "ask"] == [
        ("deny", "jailed-agent"),
        ("run", "jailed-agent"),
    ]
    assert not [r for r in result.records if r["event"] == "policy_update"]  # nothing was written or reloaded


# What the command holds beyond 0-2, and the variable: printed as JSON.
DESCRIPTORS = (
    "import json, os, stat\n"
    "def held(fd):\n"
    "    try: return os.fstat(fd)\n"
    "    except OSError: return None\n"
    "fds = [int(n) for n in os.listdir('/proc/self/fd')]\n"
    "open_fds = {fd: s for fd in fds if fd > 2 and (s := held(fd)) is not None}\n"
    "print(json.dumps({'variable': os.environ.get('SANDBOX_AGENT_CHANNEL_FD'),\n"
    "                  'fds': {fd: stat.S_ISSOCK(s.st_mode) for fd, s in open_fds.items()}}))\n"
)


def test_without_the_opt_in_there_is_no_variable_and_no_descriptor(netjail: Netjail) -> None:
    without = netjail.run("-s", str(_channel_settings(netjail, agent_channel=False)), "--",
                          sys.executable, "-c", DESCRIPTORS)  # fmt: skip
    assert without.returncode == 0, without.explain()
    assert json.loads(without.stdout) == {"variable": None, "fds": {}}
    # control: with it, exactly one descriptor more, a socket, the one the variable names
    with_channel = netjail.run("-s", str(_channel_settings(netjail)), "--", sys.executable, "-c", DESCRIPTORS)
    assert with_channel.returncode == 0, with_channel.explain()
    seen = json.loads(with_channel.stdout)
    assert seen["fds"] == {seen["variable"]: True}


def test_on_a_relay_terminal_the_command_has_its_channel_too(netjail: Netjail) -> None:
    """An interactive run starts the command after `setsid --ctty` on the relay's terminal: the descriptor passes."""
    session = TerminalSession(netjail, "-s", str(_channel_settings(netjail)), "--", sys.executable, "-c",
                              DESCRIPTORS.replace("print(json.dumps(", "print('seen', json.dumps("))  # fmt: skip
    try:
        session.expect("seen {")
        assert session.wait() == 0, session.output
    finally:
        session.close()
    line = session.output[session.output.index("seen {") + len("seen ") :].splitlines()[0]
    seen = json.loads(line)
    assert seen["fds"] == {seen["variable"]: True}


def test_the_descriptor_reaches_the_command_and_no_other_process(netjail: Netjail) -> None:
    """The command is the only process that holds the jail's end of the pair: not netjail, its proxy, nor bwrap."""
    code = (
        "import os, sys\n"
        "fd = int(os.environ['SANDBOX_AGENT_CHANNEL_FD'])\n"
        "print(os.fstat(fd).st_ino, flush=True)\n"
        "sys.stdin.readline()\n"
    )
    process = subprocess.Popen(
        [netjail_executable(), "-s", str(_channel_settings(netjail)), "--", sys.executable, "-u", "-c", code],
        cwd=netjail.work, env=netjail.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        inode = process.stdout.readline().strip()
        assert inode.isdigit(), process.stderr.read() if process.stderr else ""
        holders = _holders(f"socket:[{inode}]")
        ours = os.stat("/proc/self/ns/pid").st_ino
        (holder,) = holders  # one process: not netjail, its proxy, nor bwrap's own
        assert os.stat(f"/proc/{holder}/ns/pid").st_ino != ours, _cmdline(holder)  # inside the jail
        assert "-u -c" in _cmdline(holder)  # the command itself
    finally:
        assert process.stdin is not None
        process.stdin.close()
        assert process.wait(timeout=30) == 0


def _holders(target: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{name}/fd")
        except OSError:
            continue  # gone meanwhile
        for fd in fds:
            try:
                if os.readlink(f"/proc/{name}/fd/{fd}") == target:
                    found.append(int(name))
                    break
            except OSError:
                continue
    return found


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def test_a_channel_the_command_closed_is_asked_nothing_more(netjail: Netjail, http_origin: Origin) -> None:
    """No other process keeps the jail's end: once the command closes it, a question has nowhere to go and is denied
    at once (no-channel), not after the timeout."""
    code = (
        "import os, socket, time, urllib.request, urllib.error\n"
        "channel = socket.socket(fileno=int(os.environ['SANDBOX_AGENT_CHANNEL_FD']))\n"
        'channel.sendall(b\'{"type":"hello","protocol_version":1}\\n\')\n'
        "time.sleep(0.5)\n"
        "channel.close()\n"
        "time.sleep(0.5)\n"
        "try: print(urllib.request.urlopen('http://other.test:%d/closed' % "
        + str(http_origin.port)
        + ", timeout=60).status)\n"
        "except urllib.error.HTTPError as e: print(e.code)\n"
    )
    result = netjail.run("-s", str(_channel_settings(netjail)), "--", sys.executable, "-c", code)
    assert result.stdout.strip() == "403", result.explain()
    assert [(a["answer"], a["decided_by"]) for a in result.records if a["event"] == "ask"] == [
        ("deny", "no-channel")
    ]
    assert "/closed" not in _paths(http_origin)


def test_the_channel_without_ask_mode_is_refused(netjail: Netjail) -> None:
    cfg = netjail.settings({"ask": {"agentChannel": True}})
    result = netjail.run("-s", str(cfg), "-c", "true")
    assert result.returncode == 125
    assert f"{cfg}: network.ask.agentChannel:" in result.stderr and "Fix: set enabled: true" in result.stderr
    control = netjail.run("-s", str(_channel_settings(netjail)), "-c", "true")
    assert control.returncode == 0, control.explain()
