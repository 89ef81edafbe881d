"""F7 (new repositories), F9 and R9, with the real netjail binary: what a run plants while it lasts, a repository
it creates, a missing denyWrite entry, and an end of run that meets a FIFO, another filesystem or a full disk.

Markers are written by the host's git (hooks, fsmonitor, aliases, pagers) into a folder outside everything the
jail may write, so a marker can only come from the host. Each git attack has its baseline without netjail: the
same script and the same host git command write the marker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.netjail import Netjail
from tests.support.wait import wait_until


def git(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@t"
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=check, timeout=30
    )


def planting_script(markers: Path) -> str:
    """Plants a pre-commit hook in the repository's hooks path (`.husky`, named by its config, husky-style), which
    did not exist, signals, waits for the go. (A missing `.git/hooks` gets a read-only placeholder instead: there
    the planting itself fails, tests/security/test_persistence.py.)"""
    return (
        "mkdir -p .husky; "
        f"printf '#!/bin/sh\\ntouch {markers}/hook\\n' > .husky/pre-commit; chmod +x .husky/pre-commit; "
        "echo kept > control.txt; echo planted > ready; read line < go; echo done"
    )


def _repository_without_hooks(path: Path) -> None:
    git("init", "-q", str(path), cwd=path.parent)
    subprocess.run(["rm", "-rf", str(path / ".git" / "hooks")], check=True)
    (path / "tracked").write_text("x\n")
    git("add", "tracked", cwd=path)
    git("config", "core.hooksPath", ".husky", cwd=path)
    for fifo in ("ready", "go"):
        os.mkfifo(path / fifo)
    (path / ".git" / "info").mkdir(exist_ok=True)
    (path / ".git" / "info" / "exclude").write_text("ready\ngo\ntest-ca.pem\ncontrol.txt\n")


def test_baseline_a_hook_planted_without_netjail_fires_on_the_host_commit(tmp_path: Path) -> None:
    work, markers = tmp_path / "work", tmp_path / "markers"
    work.mkdir()
    markers.mkdir()
    _repository_without_hooks(work)
    script = planting_script(markers)
    proc = subprocess.Popen(["bash", "-c", script], cwd=work, stdout=subprocess.PIPE, text=True)
    assert (work / "ready").read_text() == "planted\n"
    git("commit", "-qm", "meanwhile", cwd=work)
    (work / "go").write_text("go\n")
    proc.wait(timeout=30)
    assert (markers / "hook").exists()


def test_f3_a_hook_planted_during_the_run_is_gone_before_a_host_commit_meanwhile(netjail: Netjail) -> None:
    markers = netjail.tmp_path / "markers"
    markers.mkdir()
    _repository_without_hooks(netjail.work)
    cfg = netjail.settings(filesystem={"allowWrite": ["."]})
    proc = netjail.popen("-s", str(cfg), "-c", planting_script(markers))
    try:
        assert (netjail.work / "ready").read_text() == "planted\n"  # the jailed command is alive, waiting
        assert wait_until(lambda: not (netjail.work / ".husky").exists())
        git("commit", "-qm", "meanwhile", cwd=netjail.work)
        assert not (markers / "hook").exists()
        (netjail.work / "go").write_text("go\n")
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "done" in out
    assert (netjail.work / "control.txt").read_text() == "kept\n"  # the harmless write beside it stays
    git("commit", "-q", "--allow-empty", "-m", "after", cwd=netjail.work)
    assert not (markers / "hook").exists()
    records = [json.loads(line) for line in (netjail.latest_run() / "flows.jsonl").read_text().splitlines()]
    quarantined = [r for r in records if r["event"] == "quarantine"]
    assert any(r["during_run"] and r["path"].endswith("/.husky") for r in quarantined), quarantined


def new_repository_script(markers: Path) -> str:
    """A repository made and used in the jail, then given every kind of executing configuration."""
    return (
        "set -e; git init -q proj; cd proj; git config user.name jailed; git config user.email j@j; "
        "echo hello > a.txt; git add a.txt; git commit -qm 'made in the jail'; "
        f"git config core.fsmonitor 'touch {markers}/fsmonitor; false'; "
        f"git config alias.st '!touch {markers}/alias; git status'; "
        f"printf '[alias]\\n\\tlg = !touch {markers}/include\\n' > \"$PWD/inc.cfg\"; "
        'git config include.path "$PWD/inc.cfg"; '
        # each hook appears whole (a rename), as a hook manager writes it: the watcher may take it at once
        f"printf '#!/bin/sh\\ntouch {markers}/hook\\n' > .git/hook.tmp; chmod +x .git/hook.tmp; "
        "mv .git/hook.tmp .git/hooks/pre-commit; "
        f"mkdir stage; printf '#!/bin/sh\\ntouch {markers}/hookspath\\n' > stage/pre-commit; "
        "chmod +x stage/pre-commit; mv stage .githooks; git config core.hooksPath .githooks; echo built"
    )


def host_git_commands(proj: Path) -> None:
    git("status", cwd=proj, check=False)
    git("st", cwd=proj, check=False)
    git("lg", cwd=proj, check=False)
    git("commit", "-q", "--allow-empty", "-m", "host", cwd=proj, check=False)


def test_baseline_a_repository_made_without_netjail_runs_its_config_on_the_host(tmp_path: Path) -> None:
    work, markers = tmp_path / "work", tmp_path / "markers"
    work.mkdir()
    markers.mkdir()
    subprocess.run(["bash", "-c", new_repository_script(markers)], cwd=work, check=True, capture_output=True)
    host_git_commands(work / "proj")
    assert {p.name for p in markers.iterdir()} >= {"fsmonitor", "alias", "include", "hookspath"}


def test_f7_a_repository_created_in_the_jail_keeps_working_and_runs_nothing_on_the_host(
    netjail: Netjail,
) -> None:
    markers = netjail.tmp_path / "markers"
    markers.mkdir()
    cfg = netjail.settings(filesystem={"allowWrite": ["."]})
    result = netjail.run("-s", str(cfg), "-c", new_repository_script(markers))
    assert result.returncode == 0, result.explain()
    assert "built" in result.stdout
    proj = netjail.work / "proj"
    host_git_commands(proj)
    assert list(markers.iterdir()) == []
    assert "made in the jail" in git("log", "--format=%s", cwd=proj).stdout  # the work survived
    assert git("config", "user.name", cwd=proj).stdout.strip() == "jailed"
    assert (proj / "a.txt").read_text() == "hello\n"
    run_end = result.records[-1]
    assert run_end["event"] == "run_end" and run_end["cleanup_errors"] == []


def test_f7_a_repository_created_during_the_run_is_sanitised_while_the_command_waits(
    netjail: Netjail,
) -> None:
    markers = netjail.tmp_path / "markers"
    markers.mkdir()
    os.mkfifo(netjail.work / "ready")
    os.mkfifo(netjail.work / "go")
    script = new_repository_script(markers) + "; cd ..; echo made > ready; read line < go"
    proc = netjail.popen("-s", str(netjail.settings(filesystem={"allowWrite": ["."]})), "-c", script)
    try:
        assert (netjail.work / "ready").read_text() == "made\n"
        config = netjail.work / "proj" / ".git" / "config"
        assert wait_until(lambda: "fsmonitor" not in config.read_text() and "alias" not in config.read_text())
        assert wait_until(lambda: not (netjail.work / "proj" / ".git" / "hooks" / "pre-commit").exists())
        host_git_commands(netjail.work / "proj")
        assert list(markers.iterdir()) == []
        (netjail.work / "go").write_text("go\n")
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err


def test_f9_a_missing_deny_write_entry_is_refused_inside_and_leaves_nothing(netjail: Netjail) -> None:
    git("init", "-q", str(netjail.work), cwd=netjail.tmp_path)
    (netjail.work / ".gitignore").write_text("test-ca.pem\n")
    before = git("status", "--porcelain", "--ignored", cwd=netjail.work).stdout
    cfg = netjail.settings(filesystem={"allowWrite": ["."], "denyWrite": ["./.env", "./conf/.secrets"]})
    result = netjail.run(
        "-s", str(cfg), "-c",
        "echo TOKEN > .env; echo env=$?; rm -f .env; echo rm=$?; echo x > conf/.secrets; echo sec=$?; "
        "echo ok > control.txt",
    )  # fmt: skip
    assert result.returncode == 0, result.explain()
    assert "env=1" in result.stdout and "sec=1" in result.stdout and "rm=1" in result.stdout
    assert (netjail.work / "control.txt").read_text() == "ok\n"
    assert not os.path.lexists(netjail.work / ".env") and not os.path.lexists(netjail.work / "conf")
    after = git("status", "--porcelain", "--ignored", cwd=netjail.work).stdout
    assert set(after.splitlines()) - set(before.splitlines()) == {"?? control.txt"}


def test_f9_the_stub_of_a_killed_run_is_removed_by_the_next_run(netjail: Netjail) -> None:
    os.mkfifo(netjail.work / "ready")
    cfg = netjail.settings(filesystem={"allowWrite": ["."], "denyWrite": ["./.env"]})
    proc = netjail.popen("-s", str(cfg), "-c", "echo up > ready; sleep 60")
    try:
        assert (netjail.work / "ready").read_text() == "up\n"
        assert (netjail.work / ".env").exists()  # the transient stub the bind needs
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert (netjail.work / ".env").exists()
    (netjail.work / "ready").unlink()
    result = netjail.run("-s", str(netjail.settings()), "-c", "true")
    assert result.returncode == 0, result.explain()
    assert not os.path.lexists(netjail.work / ".env")


@pytest.fixture
def small_state_dir(tmp_path: Path):
    """A tmpfs mounted for NETJAIL_STATE_DIR: another filesystem than the tree, and one that can be filled."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        path = tmp_path / f"state-{len(mounted)}"
        path.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_r9_a_fifo_in_a_protected_name_with_the_state_dir_on_another_filesystem(
    netjail: Netjail, small_state_dir
) -> None:
    state = small_state_dir("64m")
    env = {**netjail.env, "NETJAIL_STATE_DIR": str(state)}
    cfg = netjail.settings(filesystem={"allowWrite": ["."]})
    result = netjail.run(
        "-s", str(cfg), "-c",
        "mkdir made; mkfifo made/pipe; echo '{}' > made/tasks.json; mv made .vscode; echo ok > control.txt",
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.explain()
    assert "Traceback" not in result.stderr
    assert not os.path.lexists(netjail.work / ".vscode")
    assert (netjail.work / "control.txt").read_text() == "ok\n"
    run = (state / "runs" / "latest").resolve()
    records = [json.loads(line) for line in (run / "flows.jsonl").read_text().splitlines()]
    assert records[-1]["event"] == "run_end" and records[-1]["cleanup_errors"] == []
    (moved,) = [r for r in records if r["event"] == "quarantine"]
    assert moved["action"] == "moved"
    assert (Path(moved["moved_to"]) / "tasks.json").read_text() == "{}\n"
    assert (run / "journal-complete.jsonl").exists()


def test_r9_no_space_for_the_quarantine_still_leaves_the_tree_safe_and_the_next_run_completes(
    netjail: Netjail, small_state_dir
) -> None:
    state = small_state_dir("10m")  # the log's 8 MiB reserve, and too little beside it for the 8 MB below
    env = {**netjail.env, "NETJAIL_STATE_DIR": str(state)}
    cfg = netjail.settings(filesystem={"allowWrite": ["."]})
    result = netjail.run(
        "-s", str(cfg), "-c",
        "mkdir made; head -c 8000000 /dev/zero > made/big; mv made .vscode; echo ok > control.txt",
        env=env,
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.explain()
    assert result.returncode == 0, result.explain()
    assert result.stderr.count("the end of the run met") == 1
    assert not os.path.lexists(netjail.work / ".vscode")  # deleted in place: nothing may stay
    assert (netjail.work / "control.txt").read_text() == "ok\n"
    run = (state / "runs" / "latest").resolve()
    records = [json.loads(line) for line in (run / "flows.jsonl").read_text().splitlines()]
    assert records[-1]["event"] == "run_end" and records[-1]["cleanup_errors"]
    (deleted,) = [r for r in records if r["event"] == "quarantine"]
    assert deleted["action"] == "deleted" and ".vscode/big" in deleted["sha256"]
    assert (run / "journal.jsonl").exists()  # left for the next run
    again = netjail.run("-s", str(cfg), "-c", "true", env=env)
    assert again.returncode == 0, again.explain()
    assert (run / "journal-complete.jsonl").exists() and not (run / "journal.jsonl").exists()


def allow_git_config_script(markers: Path) -> str:
    """What a run allowed to write the repository's config (allowGitConfig) adds: a harmless key and an
    executing one."""
    return f"git config user.name changed-in-jail && git config core.fsmonitor 'touch {markers}/fsmonitor; false'"


def _repository_with_a_users_own_alias(path: Path, markers: Path) -> None:
    path.mkdir(exist_ok=True)
    git("init", "-q", cwd=path)
    git("config", "alias.mine", f"!touch {markers}/mine", cwd=path)  # the user's own: it must stay


def test_baseline_a_config_change_without_netjail_runs_on_the_host(tmp_path: Path) -> None:
    work, markers = tmp_path / "work", tmp_path / "markers"
    markers.mkdir()
    _repository_with_a_users_own_alias(work, markers)
    subprocess.run(
        ["bash", "-c", allow_git_config_script(markers)], cwd=work, check=True, capture_output=True
    )
    git("status", cwd=work)
    assert (markers / "fsmonitor").exists()


def test_f7_allow_git_config_keeps_the_users_config_and_drops_what_the_run_added_that_executes(
    netjail: Netjail,
) -> None:
    markers = netjail.tmp_path / "markers"
    markers.mkdir()
    _repository_with_a_users_own_alias(netjail.work, markers)
    cfg = netjail.settings(filesystem={"allowWrite": ["."], "allowGitConfig": True})
    result = netjail.run("-s", str(cfg), "-c", allow_git_config_script(markers))
    assert result.returncode == 0, result.explain()
    git("status", cwd=netjail.work)
    assert not (markers / "fsmonitor").exists()
    assert git("config", "user.name", cwd=netjail.work).stdout.strip() == "changed-in-jail"  # allowed, kept
    git("mine", cwd=netjail.work)
    assert (markers / "mine").exists()  # the user's own alias still works
    (sanitised,) = [r for r in result.records if r["event"] == "quarantine"]
    assert sanitised["action"] == "sanitised" and sanitised["dropped"] == ["core.fsmonitor"]
