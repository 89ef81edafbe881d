"""`netjail explain`, the real command: the Linux argument list is exactly what a run shows under `-d`, the macOS
profile is a well-formed seatbelt profile, nothing is created, and the command stays cheap to load."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.netjail import Netjail
from tests.support.sbpl import check

pytestmark = pytest.mark.nonroot


def explain(netjail: Netjail, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return netjail.command("explain", *args, env=env)


def debug_args(stderr: str) -> list[str]:
    match = re.search(r"jail\.args\s+args=(\[.*?\]) platform=", stderr)
    assert match, stderr
    return ast.literal_eval(match.group(1))


def rich_settings(netjail: Netjail) -> Path:
    for d in ("secrets/public", "locked", "sub/.git/hooks"):
        (netjail.work / d).mkdir(parents=True, exist_ok=True)
    (netjail.work / "token").write_text("t")
    (netjail.work / ".bashrc").write_text("x")
    return netjail.settings(
        {"allowedDomains": ["allowed.test", "*.example.test"], "deniedDomains": ["denied.test"]},
        {
            "denyRead": ["secrets", "token", "~/.ssh"],
            "allowRead": ["secrets/public"],
            "allowWrite": ["."],
            "denyWrite": ["locked"],
        },
    )


def test_linux_arguments_are_what_a_run_shows_under_debug(netjail: Netjail) -> None:
    cfg = rich_settings(netjail)
    # a history of its own: other runs on this machine (other tests, benches) add state directories to hide
    env = {**netjail.env, "XDG_STATE_HOME": str(netjail.tmp_path / "xdg-state")}
    run = netjail.run("-d", "-s", str(cfg), "-c", "true", env=env)
    assert run.returncode == 0, run.explain()
    ran = debug_args(run.stderr)
    run_id = run.run_dir.name
    shown = explain(netjail, "-s", str(cfg), "--platform", "linux", "-c", "true", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["bwrap_args"] == [arg.replace(run_id, "<run-id>") for arg in ran]
    assert report["network"]["allowed"] == ["allowed.test", "*.example.test"]
    assert report["network"]["denied"] == ["denied.test"]
    assert str(netjail.work / "secrets") in report["filesystem"]["hidden"]
    assert str(netjail.work / "secrets" / "public") in report["filesystem"]["readable_again"]


def test_linux_text_shows_the_policy_in_words_and_the_arguments(netjail: Netjail) -> None:
    shown = explain(netjail, "-s", str(rich_settings(netjail)), "--platform", "linux")
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "netjail explain: Linux (bubblewrap)" in out
    assert "  allowed:\n    allowed.test\n    *.example.test\n" in out
    assert "  anything else: denied" in out
    assert f"  hidden (denyRead):\n    {netjail.work / 'secrets'}\n" in out
    assert "bwrap arguments (what `netjail -d` prints as jail.args):" in out
    assert f"    --bind-fd FD {netjail.work}" in out  # through the descriptor the symlink check opened
    # the jail has its own loopback: listening there works, and the text says so (not "no")
    assert "  listening on local ports: yes, on the jail's own loopback" in out
    assert "  live run material (CA key, proxy secret, trust files): " in out
    assert "-- /usr/bin/bash -c '<command>'" in out or "-c '<command>'" in out


def test_macos_profile_is_well_formed_and_auditable(netjail: Netjail) -> None:
    cfg = rich_settings(netjail)
    shown = explain(netjail, "-s", str(cfg), "--platform", "macos", "--json")
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    profile = report["profile"]
    check(profile)
    assert '(allow network-outbound (remote ip "localhost:3128"))' in profile
    assert f'(subpath "{netjail.work / "secrets"}")' in profile
    assert f'(subpath "{netjail.work}")' in profile
    assert "<secret>" not in profile and report["environment"]["HTTP_PROXY"].startswith(
        "http://netjail:<secret>@"
    )
    text = explain(netjail, "-s", str(cfg), "--platform", "macos")
    assert text.returncode == 0
    assert "netjail explain: macOS (seatbelt, sandbox-exec)" in text.stdout
    assert text.stdout.rstrip("\n").endswith(profile.rstrip("\n").splitlines()[-1])


def test_explain_creates_nothing(netjail: Netjail) -> None:
    cfg = netjail.settings()
    for platform in ("linux", "macos"):
        assert explain(netjail, "-s", str(cfg), "--platform", platform).returncode == 0
    assert not netjail.state.exists()


def test_refused_settings_exit_125(netjail: Netjail) -> None:
    bad = netjail.tmp_path / "bad.json"
    bad.write_text(json.dumps({"network": {"allowedDomains": ["*.com"], "deniedDomains": []}}))
    shown = explain(netjail, "-s", str(bad))
    assert shown.returncode == 125 and str(bad) in shown.stderr
    shown = explain(netjail, "-s", str(netjail.tmp_path / "missing.json"))
    assert shown.returncode == 125


def test_a_path_the_profile_cannot_hold_exits_125(netjail: Netjail) -> None:
    odd = netjail.work / "bad\x1bname"
    odd.mkdir()
    cfg = netjail.settings(filesystem={"allowWrite": [".", str(odd)]})
    shown = explain(netjail, "-s", str(cfg), "--platform", "macos")
    assert shown.returncode == 125
    assert "cannot write the seatbelt profile" in shown.stderr and "\x1b" not in shown.stderr


def test_the_explain_module_loads_only_click_and_the_standard_library() -> None:
    """What `import netjail.cli.explain` adds to what the package itself loads: click and the thin cli and utils
    modules, nothing heavier of netjail's."""
    code = (
        "import sys, netjail, click; before = set(sys.modules); import netjail.cli.explain; "
        "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in "
        "('netjail', 'pydantic', 'pydantic_core', 'structlog', 'mitmproxy', 'cryptography', 'rich') "
        "and not m.startswith(('netjail.cli', 'netjail.utils'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def _mounts_inside(
    netjail: Netjail, cfg: Path, env: dict[str, str], allow_write: list[str]
) -> dict[str, tuple[str, str, str]]:
    """The jail's own mount table: mount point -> (device, fstype, rw|ro) of the mount on top there."""
    result = netjail.run("-s", str(cfg), "-c", "cat /proc/self/mountinfo", env=env)
    shared_tmp = ("Permission denied", "Exceeded maximum number of arguments")
    if result.returncode == 125 and "/tmp" in allow_write and any(e in result.stderr for e in shared_tmp):
        # the protected-name scan of a writable /tmp found what other users and runs left there: repositories
        # root's user namespace cannot enter, or more protected names than bwrap takes arguments (a limit of
        # the scan on a shared machine, not of what explain says; the /run case covers the host's own directory)
        pytest.skip(f"the shared /tmp cannot be made writable here: {result.stderr.strip()}")
    assert result.returncode == 0, result.explain()
    mounts = {}
    for line in result.stdout.splitlines():
        before, _, after = line.partition(" - ")
        fields = before.split()
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        mounts[point] = (
            fields[2],
            after.split()[0],
            fields[5].split(",")[0],
        )  # a later mount covers an earlier one
    return mounts


def _device(path: str) -> str:
    st = Path(path).stat()
    return f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"


@pytest.mark.parametrize("case", ["default", "tmp writable", "dir in tmp writable", "cwd read-only"])
def test_what_explain_says_of_tmp_and_run_is_what_the_jail_mounts(netjail: Netjail, case: str) -> None:
    extra = netjail.tmp_path / "extra"
    extra.mkdir()
    allow_write = {
        "default": ["."],
        "tmp writable": [".", "/tmp"],
        "dir in tmp writable": [".", str(extra)],
        "cwd read-only": [],
    }[case]
    cfg = netjail.settings(filesystem={"allowWrite": allow_write})
    # a history of its own: state directories other test runs (other users') left under /tmp are not this test's
    env = {**netjail.env, "XDG_STATE_HOME": str(netjail.tmp_path / "xdg-state")}
    shown = explain(netjail, "-s", str(cfg), "--platform", "linux", env=env)
    described = json.loads(explain(netjail, "-s", str(cfg), "--platform", "linux", "--json", env=env).stdout)
    mounts = _mounts_inside(netjail, cfg, env, allow_write)
    for base, what in described["filesystem"]["base_directories"].items():
        device, fstype, mode = mounts[base]
        if what["host"]:
            assert f"{base}: the host's {base}, writable" in shown.stdout
            assert (device, mode) == (_device(base), "rw"), mounts[base]
        else:
            assert (f"{base}: private to the run" if base == "/tmp" else f"{base}: empty") in shown.stdout
            assert fstype == "tmpfs" and device != _device(base), mounts[base]
        for item in what["bound"]:
            path, _, kind = item.partition(" (")
            assert f"    {item}" in shown.stdout
            assert mounts[path][0] == _device(path), (item, mounts.get(path))
            assert mounts[path][2] == ("rw" if kind.startswith("writable") else "ro"), (item, mounts[path])
    bases = described["filesystem"]["base_directories"]
    if case == "tmp writable":  # control: the matrix has both kinds
        assert bases["/tmp"]["host"]
    if case == "dir in tmp writable":
        assert f"{extra} (writable)" in described["filesystem"]["base_directories"]["/tmp"]["bound"]


def test_the_hosts_run_is_never_bound_writable(netjail: Netjail) -> None:
    """netjail's own files inside the jail live in /run/netjail: they must never be written into the host's /run
    (other runs share it; a user who may not write there would get bwrap's error instead of a fix)."""
    result = netjail.run(
        "-s", str(netjail.settings(filesystem={"allowWrite": [".", "/run"]})), "-c", "echo ran"
    )
    assert result.returncode == 125 and "allowWrite names /run" in result.stderr, result.explain()
    assert "ran" not in result.stdout and not Path("/run/netjail/ca-bundle.pem").exists()
    control = netjail.run("-s", str(netjail.settings(filesystem={"allowWrite": ["."]})), "-c", "echo ran")
    assert control.stdout.strip() == "ran", control.explain()
