"""A repository the run created keeps what git needs and loses what would execute."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from netjail.jail.newrepos import find_git_dirs, new_git_dirs, sanitise_git_dir


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def test_new_repository_is_found_and_sanitised_and_keeps_working(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    git("init", "-q", cwd=old)
    before = find_git_dirs([tmp_path])
    since = time.time() - 1
    new = tmp_path / "deep" / "er" / "new"
    new.mkdir(parents=True)
    git("init", "-q", cwd=new)
    git("config", "core.fsmonitor", "touch /nonexistent/m", cwd=new)
    git("config", "alias.st", "!touch /nonexistent/m", cwd=new)
    git("config", "user.name", "kept", cwd=new)
    (new / ".git" / "hooks" / "pre-commit").write_text("#!/bin/sh\n")
    (new / ".githooks").mkdir()
    git("config", "core.hooksPath", ".githooks", cwd=new)
    (tmp_path / "gitfile").mkdir()
    (tmp_path / "gitfile" / ".git").write_text(f"gitdir: {new / '.git'}\n")

    found = new_git_dirs(before, find_git_dirs([tmp_path]))
    assert found.directories == {str(new / ".git")}
    assert found.files == {str(tmp_path / "gitfile" / ".git")}
    quarantine = tmp_path / "q"
    done = sanitise_git_dir(new / ".git", (tmp_path,), lambda p: quarantine / p.name, lambda e: None, since)
    assert done.errors == []
    assert set(done.dropped[str(new / ".git" / "config")]) == {"core.fsmonitor", "alias.st", "core.hookspath"}
    assert git("config", "user.name", cwd=new).strip() == "kept"
    assert not (new / ".git" / "hooks" / "pre-commit").exists()
    assert (new / ".git" / "hooks" / "pre-commit.sample").exists()
    assert not (new / ".githooks").exists()
    assert "fsmonitor" in (quarantine / "config").read_text()
    again = sanitise_git_dir(new / ".git", (tmp_path,), lambda p: quarantine / p.name, lambda e: None, since)
    assert again.records == [] and again.errors == []
    git("status", cwd=new)
