"""The macOS backend's mechanics, run here with a stand-in for sandbox-exec (it checks and keeps the profile, then
runs the command unsandboxed): the proxy's entrance and secret, the environment, the held start, exit statuses,
signals and clean-up. What the profile itself enforces is tests/unit/jail/macos/test_seatbelt.py (and tests/macos on a Mac).
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import stat
import sys
import time
from pathlib import Path

import pytest

from netjail.jail.macos.sandbox_exec import PROXY_USER, SeatbeltJail
from netjail.jail.paths import path_rules
from netjail.jail.spec import JailError, JailSpec, Launched
from netjail.run.backends import current_jail
from netjail.settings import Settings
from tests.support.sbpl import check
from tests.unit.jail.macos.test_seatbelt import ca_at

FAKE_SANDBOX_EXEC = """#!/bin/sh
# stands in for /usr/bin/sandbox-exec -p PROFILE CMD...: keeps the profile, then runs CMD without a sandbox
[ "$1" = "-p" ] || exit 64
printf '%s' "$2" > "$NETJAIL_TEST_PROFILE"
[ -z "$NETJAIL_TEST_REFUSE" ] || { echo "sandbox-exec: refused" >&2; exit 65; }
shift 2
exec "$@"
"""


def settings(**fs: object) -> Settings:
    return Settings.model_validate(
        {
            "network": {"allowedDomains": [], "deniedDomains": []},
            "filesystem": {"denyRead": [], "allowWrite": ["."], "denyWrite": [], **fs},
        }
    )


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    path = tmp_path / "sandbox-exec"
    path.write_text(FAKE_SANDBOX_EXEC)
    path.chmod(0o755)
    return path


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = (tmp_path / "work").resolve()
    path.mkdir()
    return path


def make_spec(
    jail: SeatbeltJail, work: Path, argv: tuple[str, ...], s: Settings, **extra: object
) -> JailSpec:
    proxy_dir = work.parent / "state" / "runs" / "r" / "proxy"
    proxy_dir.mkdir(parents=True, exist_ok=True)
    ca = ca_at(proxy_dir)
    ca.cert_path.write_text("-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n")
    ca.jail_bundle.write_text("ROOTS\n")
    env = jail.environment({"PATH": os.environ["PATH"], "HOME": str(work)}, ca)
    env["NETJAIL_TEST_PROFILE"] = str(work.parent / "profile.sb")
    env.update({k: str(v) for k, v in extra.pop("env", {}).items()})  # type: ignore[attr-defined]
    return JailSpec(
        argv=argv,
        cwd=work,
        env=env,
        rules=path_rules(s, work),
        ca=ca,
        allow_pty=bool(extra.pop("allow_pty", s.allow_pty)),
        private_state=(work.parent / "state",),
        files_dir=proxy_dir,
    )


def run(jail: SeatbeltJail, spec: JailSpec, before_start=None) -> tuple[Launched, int | None]:  # type: ignore[no-untyped-def]
    launched = jail.launch(spec)
    try:
        if before_start:
            before_start(launched)
        jail.start(launched)
        _, status = os.waitpid(launched.pid, 0)
        launched.reaped = True
        return launched, jail.child_exit_status(launched, status)
    finally:
        jail.cleanup(launched)


def test_environment_routes_through_the_authenticated_proxy(fake: Path, work: Path) -> None:
    jail = SeatbeltJail(settings(), sandbox_exec=str(fake))
    spec = make_spec(jail, work, ("true",), settings())
    port = jail.proxy_port
    url = f"http://{PROXY_USER}:{jail.secret}@127.0.0.1:{port}"
    env = spec.env
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "GRPC_PROXY", "http_proxy", "https_proxy"):
        assert env[name] == url
    assert len(jail.secret) >= 32 and jail.secret != SeatbeltJail(settings()).secret
    assert env["NO_PROXY"] == "localhost,127.0.0.1,::1"
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT", "GIT_SSL_CAINFO"):
        assert env[name] == str(jail.run_dir / "trust" / "ca-bundle.pem")
    assert env["NODE_EXTRA_CA_CERTS"] == str(jail.run_dir / "trust" / "ca.pem")
    assert env["TMPDIR"] == str(jail.run_dir / "tmp") + "/"
    assert "-Djava.net.preferIPv4Stack=true" in env["JAVA_TOOL_OPTIONS"]
    assert f"-Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort={port}" in env["JAVA_TOOL_OPTIONS"]
    assert f"proxyport={port},proxyauth={PROXY_USER}:{jail.secret}'" in env["GIT_SSH_COMMAND"]
    for address in ["127.0.0.1", "::1"][: 2 if IPV6_LOOPBACK else 1]:
        with socket.create_connection((address, port), timeout=2):
            pass  # the listeners exist before the command does, on both addresses "localhost" means to seatbelt
    jail.cleanup(Launched(pid=0, reaped=True))
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


IPV6_LOOPBACK = _ipv6_loopback()


def test_the_port_is_held_on_both_loopback_addresses_even_when_one_is_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not IPV6_LOOPBACK:
        pytest.skip("no IPv6 loopback here")
    from netjail.jail.macos import sandbox_exec as macos

    taken = []
    real_socket = socket.socket
    calls = {"v4": 0}

    class Busy(real_socket):  # the first port found free on 127.0.0.1 is taken on [::1] by someone else
        def bind(self, address):  # type: ignore[no-untyped-def]
            if self.family == socket.AF_INET:
                calls["v4"] += 1
            elif calls["v4"] == 1:
                raise OSError(errno.EADDRINUSE, "in use")
            return super().bind(address)

    monkeypatch.setattr(macos.socket, "socket", Busy)
    listeners = macos._bind_loopback_pair()
    taken += listeners
    try:
        assert calls["v4"] == 2
        assert [s.family for s in listeners] == [socket.AF_INET, socket.AF_INET6]
        assert listeners[0].getsockname()[1] == listeners[1].getsockname()[1]
    finally:
        for s in taken:
            s.close()


def test_launch_holds_the_command_until_start_then_reports_its_status(fake: Path, work: Path) -> None:
    s = settings()
    jail = SeatbeltJail(s, sandbox_exec=str(fake))
    script = 'echo "$TMPDIR" > ran; cat "$SSL_CERT_FILE" >> ran; exit 7'
    spec = make_spec(jail, work, ("/bin/sh", "-c", script), s)
    seen: dict[str, object] = {}

    def before_start(launched: Launched) -> None:
        time.sleep(0.2)
        seen["ran_early"] = (work / "ran").exists()
        seen["listeners"] = [sock.getsockname()[:2] for sock in launched.sockets["proxy"]]
        seen["trust_mode"] = stat.S_IMODE(os.stat(jail.run_dir / "trust" / "ca.pem").st_mode)
        seen["run_dir_mode"] = stat.S_IMODE(os.stat(jail.run_dir).st_mode)

    launched, status = run(jail, spec, before_start)
    assert status == 7
    assert seen == {
        "ran_early": False,
        "listeners": [("127.0.0.1", jail.proxy_port), ("::1", jail.proxy_port)][: 2 if IPV6_LOOPBACK else 1],
        "trust_mode": 0o444,
        "run_dir_mode": 0o700,
    }
    assert (work / "ran").read_text() == f"{jail.run_dir}/tmp/\nROOTS\n"
    check((work.parent / "profile.sb").read_text())  # what sandbox-exec was given is a well-formed profile
    assert not jail.run_dir.exists() and launched.sockets == {} and launched.status_fd == -1


def test_a_missing_program_is_127(fake: Path, work: Path) -> None:
    jail = SeatbeltJail(settings(), sandbox_exec=str(fake))
    spec = make_spec(
        jail, work, ("/bin/sh", "-c", 'exec "$@"', "netjail", "/nonexistent/program"), settings()
    )
    assert run(jail, spec)[1] == 127


def test_a_refused_profile_is_a_setup_failure_not_an_exit_status(fake: Path, work: Path) -> None:
    jail = SeatbeltJail(settings(), sandbox_exec=str(fake))
    spec = make_spec(jail, work, ("/bin/sh", "-c", "touch ran"), settings(), env={"NETJAIL_TEST_REFUSE": "1"})
    assert run(jail, spec)[1] is None
    assert not (work / "ran").exists()


def test_death_by_signal_is_128_plus_n(fake: Path, work: Path) -> None:
    jail = SeatbeltJail(settings(), sandbox_exec=str(fake))
    spec = make_spec(jail, work, ("/bin/sh", "-c", "kill -9 $$"), settings())
    assert run(jail, spec)[1] == 128 + 9


def test_signals_reach_the_command_and_its_group_and_cleanup_kills_what_is_left(
    fake: Path, work: Path
) -> None:
    jail = SeatbeltJail(settings(), sandbox_exec=str(fake))
    script = "sleep 30 & echo $! > bg; trap 'exit 42' TERM; echo ready > ready; while :; do sleep 0.05; done"
    spec = make_spec(jail, work, ("/bin/sh", "-c", script), settings())
    launched = jail.launch(spec)
    try:
        jail.start(launched)
        deadline = time.monotonic() + 5
        while not (work / "ready").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        jail.signal(launched, signal.SIGTERM)
        _, status = os.waitpid(launched.pid, 0)
        launched.reaped = True
        assert jail.child_exit_status(launched, status) == 42
        background = int((work / "bg").read_text())
    finally:
        jail.cleanup(launched)
    time.sleep(0.1)
    assert not alive(background)  # the whole process group went


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for an init that may never reap it (containers)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state != "Z"


@pytest.mark.parametrize(("allow_pty", "leader"), [(False, "True"), (True, "False")])
def test_a_new_session_unless_allow_pty(fake: Path, work: Path, allow_pty: bool, leader: str) -> None:
    jail = SeatbeltJail(settings(), sandbox_exec=str(fake))
    code = "import os; open('sid', 'w').write(str(os.getsid(0) == os.getpid()))"
    spec = make_spec(jail, work, (sys.executable, "-c", code), settings(), allow_pty=allow_pty)
    assert run(jail, spec)[1] == 0
    assert (work / "sid").read_text() == leader


def test_a_profile_that_cannot_be_written_fails_before_anything_runs(fake: Path, work: Path) -> None:
    odd = work / "new\nline"
    odd.mkdir()
    s = settings(allowWrite=[".", "new*"])  # the settings refuse a newline; a glob can still match one
    jail = SeatbeltJail(s, sandbox_exec=str(fake))
    spec = make_spec(jail, work, ("/bin/sh", "-c", "touch ran"), s)
    port = jail.proxy_port
    with pytest.raises(JailError, match="cannot write the seatbelt profile"):
        jail.launch(spec)
    assert not jail.run_dir.exists() and not (work / "ran").exists()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_check(fake: Path, tmp_path: Path) -> None:
    SeatbeltJail(settings(), sandbox_exec=str(fake)).check()
    with pytest.raises(JailError, match="sandbox-exec"):
        SeatbeltJail(settings(), sandbox_exec=str(tmp_path / "missing")).check()
    s = Settings.model_validate(
        {
            "network": {"allowedDomains": [], "deniedDomains": [], "capture": "transparent"},
            "filesystem": {"denyRead": [], "allowWrite": [], "denyWrite": []},
        }
    )
    with pytest.raises(JailError, match="not available on macOS"):
        SeatbeltJail(s, sandbox_exec=str(fake)).check()


def test_describe_is_the_profile(fake: Path, work: Path) -> None:
    jail = SeatbeltJail(settings(), sandbox_exec=str(fake), proxy_port=3128, secret="s")
    spec = make_spec(jail, work, ("true",), settings())
    lines = jail.describe(spec)
    check("\n".join(lines))
    assert '(allow network-outbound (remote ip "localhost:3128"))' in lines
    assert f'  (subpath "{work}")' in lines


def test_current_jail_on_macos_is_seatbelt_with_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings()
    monkeypatch.setattr(sys, "platform", "darwin")
    jail = current_jail(s)
    assert isinstance(jail, SeatbeltJail) and jail.settings is s and jail.name == "macos-seatbelt"
