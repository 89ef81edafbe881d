"""The seatbelt jail end to end, with the real sandbox-exec: for a macOS CI runner (`pytest -m macos`), skipped
everywhere else. Not yet run on a Mac (docs/macos.md): the tests marked (?) there state what netjail expects of
behaviour nobody has observed yet; a failure is an answer, to be written into docs/macos.md and fixed.

Before any of these can pass, the runner needs the two changes listed under "Still to do" in docs/macos.md (it
waits with os.pidfd_open, the proxy uses prctl: both Linux-only).

Every network target is loopback (names pinned with `network.hosts`, as in the Linux suite). Nothing is written
outside pytest's temporary directories and /private/tmp.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import threading
import unicodedata
from pathlib import Path

import pytest

from tests.support.netjail import Netjail
from tests.support.sbpl import check
from tests.support.servers import Origin

pytestmark = [
    pytest.mark.macos,
    pytest.mark.skipif(sys.platform != "darwin", reason="needs macOS and sandbox-exec"),
]


def ok(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode == 0, result.explain()
    return result.stdout


# -- the command runs, and its status comes back -------------------------------------------------------------------


@pytest.mark.parametrize(("command", "status"), [("true", 0), ("exit 42", 42), ("kill -TERM $$", 143)])
def test_exit_status_passes_through(netjail: Netjail, command: str, status: int) -> None:
    assert netjail.run("-s", str(netjail.settings()), "-c", command).returncode == status


def test_a_missing_program_is_127(netjail: Netjail) -> None:
    assert netjail.run("-s", str(netjail.settings()), "--", "/nonexistent/program").returncode == 127


def test_debug_prints_the_profile_and_it_is_well_formed(netjail: Netjail) -> None:
    result = netjail.run("-d", "-s", str(netjail.settings()), "-c", "true")
    assert result.returncode == 0, result.explain()
    assert "(deny default" in result.stderr and "macos-seatbelt" in result.stderr
    shown = netjail.run("explain", "--platform", "macos", "--json", "-s", str(netjail.settings()))
    check(json.loads(shown.stdout)["profile"])


@pytest.mark.parametrize(
    "command", ["git --version", "/usr/bin/python3 -c pass", "curl --version", "ls ~ >/dev/null", "whoami"]
)
def test_common_tools_start(netjail: Netjail, command: str) -> None:
    """(?) srt's Mach, sysctl and IOKit lists, less the keychain, are enough for the usual tools (xcrun's shims too)."""
    ok(netjail.run("-s", str(netjail.settings()), "-c", command))


def test_a_new_session_and_no_terminal(netjail: Netjail) -> None:
    code = "import os; print(os.getsid(0) == os.getpid())"
    assert ok(netjail.run("-s", str(netjail.settings()), "--", sys.executable, "-c", code)).strip() == "True"


# -- files ----------------------------------------------------------------------------------------------------------


def test_writes_only_where_allowed(netjail: Netjail) -> None:
    outside = netjail.tmp_path / "outside"
    outside.mkdir()
    script = f'echo in > inside.txt; echo x > "{outside}/x" 2>/dev/null; echo rc=$?; echo t > "$TMPDIR/t"; echo tmp=$?'
    out = ok(netjail.run("-s", str(netjail.settings()), "-c", script))
    assert (netjail.work / "inside.txt").read_text() == "in\n"
    assert not (outside / "x").exists() and "rc=1" in out and "tmp=0" in out


def test_deny_read_allow_read_and_nesting(netjail: Netjail) -> None:
    w = netjail.work
    (w / "secrets/public/inner").mkdir(parents=True)
    (w / "secrets/key").write_text("TOPSECRET")
    (w / "secrets/public/readme").write_text("fine")
    (w / "secrets/public/inner/key").write_text("INNER")
    cfg = netjail.settings(
        filesystem={
            "denyRead": ["secrets", "secrets/public/inner"],
            "allowRead": ["secrets/public"],
            "allowWrite": [],
        }
    )
    out = netjail.run(
        "-s", str(cfg), "-c", "cat secrets/key; cat secrets/public/readme; cat secrets/public/inner/key"
    ).stdout
    assert "fine" in out and "TOPSECRET" not in out and "INNER" not in out


def test_deny_read_case_and_normal_form(netjail: Netjail) -> None:
    """(?) Seatbelt compares names: another case on a case-insensitive volume, or the other Unicode normal form,
    must not reach a denied file."""
    nfc = unicodedata.normalize("NFC", "sécret")
    (netjail.work / nfc).mkdir()
    (netjail.work / nfc / "key").write_text("TOPSECRET")
    cfg = netjail.settings(filesystem={"denyRead": [nfc], "allowWrite": []})
    spellings = [nfc, unicodedata.normalize("NFD", nfc), nfc.upper()]
    script = "; ".join(f'cat "{s}/key"' for s in spellings)
    assert "TOPSECRET" not in netjail.run("-s", str(cfg), "-c", script).stdout


@pytest.mark.parametrize("name", ['we[ir]d "q" \\ dir', "a*b?c", "new\nline", "café"])
def test_hostile_names_stay_denied(netjail: Netjail, name: str) -> None:
    (netjail.work / name).mkdir()
    (netjail.work / name / "key").write_text("TOPSECRET")
    (netjail.work / "weid").mkdir()
    (netjail.work / "weid" / "key").write_text("LOOKALIKE")
    pattern = "new*" if "\n" in name else name  # the settings refuse a newline: a glob reaches it
    cfg = netjail.settings(filesystem={"denyRead": [pattern], "allowWrite": []})
    result = netjail.run(
        "-s", str(cfg), "--", "/bin/cat", str(netjail.work / name / "key"), str(netjail.work / "weid" / "key")
    )
    assert "TOPSECRET" not in result.stdout and "LOOKALIKE" in result.stdout, result.explain()


@pytest.mark.parametrize(
    "target",
    [".bashrc", ".BASHRC", "sub/deeper/.zshrc", ".git/hooks/pre-commit", ".git/config", ".vscode/tasks.json"],
)
def test_mandatory_denies_existing_or_not(netjail: Netjail, target: str) -> None:
    (netjail.work / ".git").mkdir(exist_ok=True)
    result = netjail.run(
        "-s",
        str(netjail.settings()),
        "-c",
        f'mkdir -p "$(dirname {target})"; echo pwned >> {target}; echo rc=$?',
    )
    assert not (netjail.work / target).exists() or "pwned" not in (netjail.work / target).read_text()
    assert "rc=1" in result.stdout, result.explain()


def test_a_git_link_cannot_be_planted(netjail: Netjail) -> None:
    result = netjail.run(
        "-s", str(netjail.settings()), "-c",
        'mkdir -p "$TMPDIR/x/hooks" && ln -s "$TMPDIR/x" .git; echo rc=$?',
    )  # fmt: skip
    assert "rc=1" in result.stdout and not (netjail.work / ".git").is_symlink(), result.explain()


def test_the_hosts_temp_directories_and_netjails_state_are_hidden(netjail: Netjail) -> None:
    mine = Path("/private/tmp") / f"netjail-e2e-{os.getpid()}"
    mine.write_text("HOSTTMP")
    try:
        result = netjail.run(
            "-s", str(netjail.settings()), "-c", f'cat "{mine}"; ls "{netjail.state}"; echo end'
        )
    finally:
        mine.unlink()
    assert "HOSTTMP" not in result.stdout and result.stdout.strip().endswith("end"), result.explain()
    assert "runs" not in result.stdout


def test_the_settings_file_cannot_be_changed(netjail: Netjail) -> None:
    cfg = netjail.work / "netjail.json"
    cfg.write_text(netjail.settings().read_text())
    before = cfg.read_text()
    netjail.run("-s", str(cfg), "-c", "echo '{}' > netjail.json")
    assert cfg.read_text() == before


# -- network --------------------------------------------------------------------------------------------------------


def test_only_the_proxy_is_reachable(netjail: Netjail, http_origin: Origin) -> None:
    port = http_origin.port
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    out = netjail.run(
        "-s", str(cfg), "-c",
        f"curl -sS http://allowed.test:{port}/; "
        f"curl -sS --noproxy '*' --max-time 5 http://127.0.0.1:{port}/ >/dev/null 2>&1; echo direct=$?",
    ).stdout  # fmt: skip
    assert "hello from http-origin" in out and "direct=0" not in out


def test_no_dns_inside(netjail: Netjail) -> None:
    """(?) Neither the resolver's socket, its Mach service, nor opendirectoryd's libinfo resolves a name inside."""
    code = (
        "import socket\n"
        "try:\n    socket.getaddrinfo('example.com', 443)\n    print('resolved')\n"
        "except OSError as e:\n    print('failed', e)\n"
    )
    out = ok(netjail.run("-s", str(netjail.settings()), "--", sys.executable, "-c", code))
    assert out.startswith("failed"), out
    out = netjail.run("-s", str(netjail.settings()), "-c", "dscacheutil -q host -a name example.com").stdout
    assert "ip_address" not in out


def test_udp_is_blocked(netjail: Netjail) -> None:
    code = (
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "try:\n    s.sendto(b'x', ('127.0.0.1', 53)); print('sent')\nexcept OSError as e:\n    print('blocked', e)\n"
    )
    assert ok(netjail.run("-s", str(netjail.settings()), "--", sys.executable, "-c", code)).startswith(
        "blocked"
    )


def test_socketpair_works_and_unix_sockets_are_gated(netjail: Netjail) -> None:
    """(?) socketpair() needs only socket creation, which the profile allows; connecting needs allowUnixSockets,
    which works with the path as written (/tmp/…, a link to /private/tmp/…)."""
    written = f"/tmp/nj-e2e-{os.getpid()}.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(written)
    server.listen()
    threading.Thread(target=lambda: server.accept(), daemon=True).start()
    code = (
        "import socket, sys\nsocket.socketpair(); print('pair')\n"
        "try:\n    socket.socket(socket.AF_UNIX).connect(sys.argv[1]); print('connected')\n"
        "except OSError as e:\n    print('refused', e)\n"
    )
    try:
        closed = ok(netjail.run("-s", str(netjail.settings()), "--", sys.executable, "-c", code, written))
        cfg = netjail.settings({"allowUnixSockets": [written]})
        opened = ok(netjail.run("-s", str(cfg), "--", sys.executable, "-c", code, written))
    finally:
        server.close()
        os.unlink(written)
    assert closed.split()[:2] == ["pair", "refused"], closed
    assert opened.split() == ["pair", "connected"], opened


@pytest.mark.xfail(strict=True, reason="the proxy does not check the per-run secret yet (docs/macos.md)")
def test_another_local_program_cannot_use_the_proxy(netjail: Netjail, http_origin: Origin) -> None:
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    script = (
        "port=${HTTP_PROXY##*:}; "
        f'curl -sS -o /dev/null -w "%{{http_code}}" -x "http://127.0.0.1:$port" http://allowed.test:{http_origin.port}/'
    )
    assert ok(netjail.run("-s", str(cfg), "-c", script)) == "407"


def test_violations_reach_the_debug_log(netjail: Netjail) -> None:
    (netjail.work / "secret").write_text("x")
    cfg = netjail.settings(filesystem={"denyRead": ["secret"]})
    result = netjail.run("-d", "-s", str(cfg), "-c", "sleep 1; cat secret; sleep 1")
    assert "sandbox.denied" in result.stderr, result.explain()


def test_sandbox_exec_is_present() -> None:
    assert shutil.which("sandbox-exec") == "/usr/bin/sandbox-exec"
