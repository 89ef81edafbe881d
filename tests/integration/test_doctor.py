"""`netjail doctor`, the real command on this machine: everything a run needs is here (the suite runs netjail),
and each missing piece is named with its fix."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest

from tests.support.netjail import Netjail

pytestmark = pytest.mark.nonroot

CHECKS = [
    "bwrap",
    "user namespaces",
    "netfilter",
    "seccomp",
    "python",
    "mitmproxy",
    "state directory",
    "settings",
]


def doctor(netjail: Netjail, *args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()):
    return netjail.command("doctor", *args, env=env, prefix=prefix)


def test_this_machine_can_run_netjail(netjail: Netjail) -> None:
    done = doctor(netjail)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines[:-1] if not line.startswith(" ")] == ["ok"] * len(CHECKS)
    assert lines[-1] == "netjail can run here."
    for name in CHECKS:
        assert any(line.startswith(f"ok    {name}") for line in lines), name


def test_the_json_report_has_one_entry_per_check(netjail: Netjail) -> None:
    done = doctor(netjail, "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert set(document) == {"platform", "can_run", "checks", "probes"}
    assert document["can_run"] is True and document["platform"] == "linux"
    assert [c["name"] for c in document["checks"]] == CHECKS
    assert all(
        set(c) == {"name", "status", "summary", "fix"} and c["status"] == "ok" for c in document["checks"]
    )
    assert document["probes"]["state_dir"] == str(netjail.state)
    assert document["probes"]["bwrap_version"]


def test_without_bwrap_on_path_it_fails_and_names_the_fix(netjail: Netjail, tmp_path: Path) -> None:
    # PATH keeps every tool but bwrap: a directory of links to what /usr/bin and /bin hold
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in ("/usr/bin", "/bin"):
        for entry in Path(directory).iterdir():
            if entry.name != "bwrap" and not (bin_dir / entry.name).exists():
                (bin_dir / entry.name).symlink_to(entry)
    done = doctor(netjail, env={**netjail.env, "PATH": str(bin_dir)})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL  bwrap" in done.stdout and "fix: apt-get install bubblewrap" in done.stdout
    assert done.stdout.splitlines()[-1] == "netjail cannot run here: 1 problem (marked FAIL)."
    document = json.loads(doctor(netjail, "--json", env={**netjail.env, "PATH": str(bin_dir)}).stdout)
    assert document["can_run"] is False
    assert [c["name"] for c in document["checks"] if c["status"] == "fail"] == ["bwrap"]


def test_a_read_only_state_directory_fails(netjail: Netjail) -> None:
    netjail.state.mkdir()
    if os.geteuid() == 0:  # root writes through permissions: make the directory a read-only mount instead
        state = shlex.quote(str(netjail.state))
        script = f'mount --bind {state} {state} && mount -o remount,ro,bind {state} {state} && exec "$@"'
        prefix: tuple[str, ...] = ("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh")
    else:
        netjail.state.chmod(0o500)
        prefix = ()
    try:
        done = doctor(netjail, prefix=prefix)
    finally:
        netjail.state.chmod(0o700)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"FAIL  state directory  cannot create a file in {netjail.state}" in done.stdout
    assert "fix: export NETJAIL_STATE_DIR=" in done.stdout
