"""Writes that would make the host run code later (ATTACKS.md F3, F7, F8, F9; issue 10 section 1).

Each git attack runs twice: unconfined (the baseline: the host's git then runs the planted code) and under netjail
(refused; the host's git runs nothing). After each run the HOST's git runs its ordinary commands in the repository
(`status`, `commit`, `diff`, `log -p` with a pager, through a terminal) and no marker may appear. Markers live
outside every writable path, so only code run on the host can create them. Each attack has a harmless control
beside it that succeeds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.netjail import REPO, Netjail

pytestmark = pytest.mark.nonroot


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "protocol.file.allow=always", *args],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip


def host_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "host-home"
    home.mkdir(exist_ok=True)
    return {
        **os.environ, "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1", "PAGER": "cat", "TERM": "dumb",
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
    }  # fmt: skip


def host_git_everything(repo: Path, env: dict[str, str]) -> None:
    """What a user does next in the repository; exit statuses do not matter, only what ran."""
    for args in (["status"], ["commit", "-q", "--allow-empty", "-m", "x"], ["diff"], ["log", "-p", "-3"]):
        subprocess.run(["git", "-C", str(repo), *args], env=env, capture_output=True, timeout=60)
    if shutil.which("script"):  # a terminal, so that git starts its pager (core.pager wins over $PAGER)
        command = f"git -C {repo} log -p -3; git -C {repo} diff HEAD~1"
        subprocess.run(["script", "-qec", command, "/dev/null"], env=env, capture_output=True, timeout=60)


def unconfined(script: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=60)


def commit_something(repo: Path, env: dict[str, str]) -> None:
    (repo / "f.txt").write_text("one\n")
    git(repo, "add", "f.txt", env=env)
    git(repo, "commit", "-q", "-m", "one", env=env)
    (repo / "f.txt").write_text("two\n")


EVIL_REPO = 'git init -q evil && git -C evil config core.fsmonitor "touch {mark}; false"'
HOOK = "printf '#!/bin/sh\\ntouch {mark}\\n' > {hook} && chmod +x {hook}"


@dataclass(frozen=True)
class GitAttack:
    name: str
    setup: Callable[[Path, dict[str, str]], Path]  # work dir → the repository the host's git runs in
    attack: str  # bash, run in the work dir; {mark} is the marker path
    touched: str  # the file the attack writes, relative to the work dir


def _repo(work: Path, env: dict[str, str], where: str = "repo") -> Path:
    repo = work / where
    repo.mkdir(parents=True)
    git(repo, "init", "-q", env=env)
    commit_something(repo, env)
    return repo


def _worktree_config(work: Path, env: dict[str, str]) -> Path:
    repo = _repo(work, env)
    git(repo, "config", "extensions.worktreeConfig", "true", env=env)
    return repo


def _worktree(work: Path, env: dict[str, str]) -> Path:
    main = _repo(work, env, "main")
    git(main, "worktree", "add", "-q", str(work / "wt"), env=env)
    return work / "wt"


def _submodule(work: Path, env: dict[str, str]) -> Path:
    _repo(work, env, "sub")
    sup = _repo(work, env, "super")
    git(sup, "submodule", "add", "-q", str(work / "sub"), "x", env=env)
    git(sup, "commit", "-q", "-m", "sub", env=env)
    return sup / "x"


def _husky(work: Path, env: dict[str, str]) -> Path:
    repo = _repo(work, env)
    (repo / ".husky").mkdir()
    (repo / ".husky" / "pre-commit").write_text("#!/bin/sh\nexit 0\n")
    (repo / ".husky" / "pre-commit").chmod(0o755)
    git(repo, "config", "core.hooksPath", ".husky", env=env)
    return repo


DEEP = "a/b/c/d/e/f/repo"
GIT_ATTACKS = [
    GitAttack(
        "commondir",
        _repo,
        f"{EVIL_REPO} && printf '%s\\n' \"$PWD/evil/.git\" > repo/.git/commondir",
        "repo/.git/commondir",
    ),
    GitAttack(
        "config.worktree",
        _worktree_config,
        "printf '[core]\\n\\tfsmonitor = touch {mark}; false\\n' > repo/.git/config.worktree",
        "repo/.git/config.worktree",
    ),
    GitAttack(
        "info-attributes-filter",
        _worktree_config,
        "printf '[diff \"evil\"]\\n\\ttextconv = touch {mark}; cat\\n' > repo/.git/config.worktree; "
        "mkdir -p repo/.git/info && echo '* diff=evil' > repo/.git/info/attributes",
        "repo/.git/info/attributes",
    ),
    GitAttack(
        "worktree-git-file",
        _worktree,
        f'{EVIL_REPO} && echo "gitdir: $PWD/evil/.git" > wt/.git',
        "wt/.git",
    ),
    GitAttack(
        "submodule-config",
        _submodule,
        "printf '[core]\\n\\tfsmonitor = touch {mark}; false\\n' >> super/.git/modules/x/config",
        "super/.git/modules/x/config",
    ),
    GitAttack(
        "repository-at-depth-6",
        lambda work, env: _repo(work, env, DEEP),
        HOOK.replace("{hook}", f"{DEEP}/.git/hooks/pre-commit"),
        f"{DEEP}/.git/hooks/pre-commit",
    ),
    GitAttack(
        "husky-hooks-path", _husky, HOOK.replace("{hook}", "repo/.husky/pre-commit"), "repo/.husky/pre-commit"
    ),
]


def _snapshot(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


@pytest.mark.parametrize("case", GIT_ATTACKS, ids=lambda c: c.name)
def test_f7_baseline_unconfined_git_attack_runs_code_on_the_host(case: GitAttack, tmp_path: Path) -> None:
    env = host_env(tmp_path)
    work, markers = tmp_path / "work", tmp_path / "markers"
    work.mkdir()
    markers.mkdir()
    repo = case.setup(work, env)
    done = unconfined(case.attack.format(mark=markers / case.name), work)
    assert done.returncode == 0, done.stderr
    host_git_everything(repo, env)
    assert (markers / case.name).exists(), (
        "the attack must work without netjail, or the jailed test proves nothing"
    )


@pytest.mark.parametrize("case", GIT_ATTACKS, ids=lambda c: c.name)
def test_f7_git_attack_is_refused_and_the_host_git_runs_nothing(
    case: GitAttack, netjail: Netjail, tmp_path: Path
) -> None:
    env = host_env(tmp_path)
    markers = tmp_path / "markers"
    markers.mkdir()
    repo = case.setup(netjail.work, env)
    touched = netjail.work / case.touched
    before = _snapshot(touched)
    attack = case.attack.format(mark=markers / case.name)
    cfg = netjail.settings(filesystem={"allowWrite": ["."]})
    result = netjail.run(
        "-s", str(cfg), "-c", f"{{ {attack}; }}; echo attack-rc=$?; echo ok > {repo}/control.txt"
    )
    assert result.returncode == 0, result.explain()
    assert "attack-rc=0" not in result.stdout, result.explain()
    assert (repo / "control.txt").read_text() == "ok\n", "an ordinary file beside is writable"
    assert _snapshot(touched) == before
    host_git_everything(repo, env)
    assert list(markers.iterdir()) == []


def test_f7_placeholders_read_as_absent_and_are_removed(netjail: Netjail, tmp_path: Path) -> None:
    """Missing names inside .git get placeholders during the run: git inside behaves as without them, and none is
    left after the run (F4)."""
    env = host_env(tmp_path)
    repo = _repo(netjail.work, env)
    shutil.rmtree(repo / ".git" / "hooks")
    shutil.rmtree(repo / ".git" / "info")
    listing = sorted(p.name for p in (repo / ".git").iterdir())
    cfg = netjail.settings(filesystem={"allowWrite": ["."]})
    result = netjail.run(
        "-s", str(cfg), "-c",
        "cat repo/.git/commondir; git -C repo rev-parse --git-common-dir; git -C repo status --porcelain",
    )  # fmt: skip
    assert result.returncode == 0, result.explain()
    assert result.stdout.splitlines()[0] == "."  # the placeholder: the common directory is this one
    assert result.stdout.splitlines()[2:] == [" M f.txt"]
    assert sorted(p.name for p in (repo / ".git").iterdir()) == listing


def test_f7_git_still_works_inside_the_jail(netjail: Netjail, tmp_path: Path) -> None:
    env = host_env(tmp_path)
    repo = _repo(netjail.work, env)
    cfg = netjail.settings(filesystem={"allowWrite": ["."]})
    result = netjail.run(
        "-s", str(cfg), "-c",
        "cd repo && git add f.txt && git -c user.name=j -c user.email=j@j commit -q -m inside && "
        "git init -q ../fresh && git -C ../fresh status --porcelain && echo done",
    )  # fmt: skip
    assert result.stdout.strip().endswith("done"), result.explain()
    assert git(repo, "log", "-1", "--format=%s", env=env).stdout.strip() == "inside"
    assert (netjail.work / "fresh" / ".git").is_dir()


# -- agent, editor and CI configuration (F8) -------------------------------------------------------------------

EXISTING = [
    # (protected file, ordinary file beside it)
    (".claude/settings.json", ".claude/notes.md"),
    (".github/workflows/x.yml", ".github/README.md"),
    (".envrc", "README.md"),
    ("a/b/c/.vscode/tasks.json", "a/b/c/notes.txt"),
    (".pre-commit-config.yaml", "setup.cfg"),
]


@pytest.mark.parametrize(("target", "control"), EXISTING, ids=[t for t, _ in EXISTING])
def test_f8_existing_agent_editor_ci_config_is_read_only(netjail: Netjail, target: str, control: str) -> None:
    path = netjail.work / target
    path.parent.mkdir(parents=True, exist_ok=True)
    if not target.endswith("x.yml"):
        path.write_text("original\n")
    before = _snapshot(path)
    cfg = netjail.settings(filesystem={"allowWrite": ["."]})
    result = netjail.run("-s", str(cfg), "-c", f"echo pwned >> {target}; echo rc=$?; echo ok > {control}")
    assert "rc=1" in result.stdout, result.explain()
    assert _snapshot(path) == before
    assert (netjail.work / control).read_text() == "ok\n"


def test_f8_f9_missing_agent_and_ci_config_is_quarantined(netjail: Netjail) -> None:
    cfg = netjail.settings(filesystem={"allowWrite": ["."]})
    result = netjail.run(
        "-s", str(cfg), "-c",
        # `;`, not `&&`: the watcher may quarantine a directory between the mkdir and the write into it.
        "mkdir -p .claude .github/workflows; echo '{\"hooks\":{}}' > .claude/settings.json; "
        "echo 'on: push' > .github/workflows/x.yml; echo 'curl x | sh' > .envrc; echo ok > .claude/notes.md",
    )  # fmt: skip
    assert result.returncode == 0, result.explain()
    for name in (".claude/settings.json", ".github/workflows", ".envrc"):
        assert not (netjail.work / name).exists(), name
    assert (netjail.work / ".claude" / "notes.md").read_text() == "ok\n"
    quarantined = {r["path"] for r in result.records if r["event"] == "quarantine"}
    assert {
        str(netjail.work / n) for n in (".claude/settings.json", ".github/workflows", ".envrc")
    } <= quarantined


# -- home-level autoexec and netjail's own installation ----------------------------------------------------------


def _home_run(netjail: Netjail, tmp_path: Path, script: str):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {**netjail.env, "HOME": str(home)}
    env.pop("XDG_CONFIG_HOME", None)
    cfg = netjail.settings(filesystem={"allowWrite": [str(home)]})
    return home, netjail.run("-s", str(cfg), "-c", script, env=env)


def test_f7_path_shadowing_in_a_writable_home_is_refused(netjail: Netjail, tmp_path: Path) -> None:
    (tmp_path / "home" / ".local" / "bin").mkdir(parents=True)
    home, result = _home_run(
        netjail, tmp_path,
        "printf '#!/bin/sh\\ntouch /tmp/x\\n' > ~/.local/bin/git; echo rc=$?; mkdir -p ~/.local/share && echo ok > ~/.local/share/x",
    )  # fmt: skip
    assert "rc=1" in result.stdout, result.explain()
    assert not (home / ".local" / "bin" / "git").exists()
    assert (home / ".local" / "share" / "x").read_text() == "ok\n"


def test_f7_f9_missing_home_autoexec_is_quarantined(netjail: Netjail, tmp_path: Path) -> None:
    home, result = _home_run(
        netjail, tmp_path, "mkdir -p ~/.local/bin; echo evil > ~/.local/bin/git; echo ok > ~/control"
    )
    assert result.returncode == 0, result.explain()
    assert not (home / ".local" / "bin").exists()
    assert any(r["event"] == "quarantine" and r["path"].endswith("/.local/bin") for r in result.records)
    assert (home / "control").read_text() == "ok\n"


def test_f7_netjails_own_installation_is_never_writable(netjail: Netjail) -> None:
    """Even when allowWrite names it: the venv running netjail, and the checkout it runs from (cwd, ".")."""
    name = f"netjail-pwned-{uuid.uuid4().hex}"
    planted = [Path(sys.prefix) / name, REPO / name]
    cfg = netjail.settings(filesystem={"allowWrite": [".", sys.prefix, str(netjail.work)]})
    try:
        result = netjail.run(
            "-s", str(cfg), "-c",
            f"echo x > {planted[0]}; echo rc=$?; echo x > ./{name}; echo rc=$?; echo ok > {netjail.work}/control",
            cwd=REPO,
        )  # fmt: skip
        assert result.stdout.count("rc=1") == 2, result.explain()
        assert not any(p.exists() for p in planted)
        assert (netjail.work / "control").read_text() == "ok\n"
    finally:
        for p in planted:
            p.unlink(missing_ok=True)
