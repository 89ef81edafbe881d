"""ATTACKS.md F7: a bare repository under a writable root (`git init --bare x.git`, a local remote) is a git
directory like any other: its hooks run on the user's next local push to it, its config on any git command there.
The attack writes a post-receive hook; the host's own `git push` after the run must run nothing. Beside it a
baseline (the same hook, written without netjail, fires) and a control (pushing into it from inside works)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.netjail import Netjail

pytestmark = pytest.mark.nonroot

GIT = ["git", "-c", "user.email=t@example.test", "-c", "user.name=t"]


def _hook(marker: Path) -> str:
    return f"printf '#!/bin/sh\\ntouch {marker}\\n' > x.git/hooks/post-receive; chmod +x x.git/hooks/post-receive"


def _host_push(work: Path) -> None:
    clone = work / "host-clone"
    subprocess.run([*GIT, "init", "-q", str(clone)], check=True)
    subprocess.run([*GIT, "-C", str(clone), "commit", "-q", "--allow-empty", "-m", "host"], check=True)
    subprocess.run([*GIT, "-C", str(clone), "push", "-q", str(work / "x.git"), "HEAD:host"], check=True)


def test_f7_a_hook_written_into_a_bare_repository_never_runs_on_a_host_push(netjail: Netjail) -> None:
    subprocess.run(["git", "init", "-q", "--bare", str(netjail.work / "x.git")], check=True)
    marker = netjail.work / "MARKER"
    cfg = netjail.settings(filesystem={"allowWrite": ["."]})
    control = (
        f"git init -q inner && cd inner && {' '.join(GIT)} commit -q --allow-empty -m inner && "
        "git push -q ../x.git HEAD:inner; echo push=$?"
    )
    result = netjail.run("-s", str(cfg), "-c", f"{_hook(marker)}; echo hook=$?; {control}")
    assert "hook=0" not in result.stdout and "push=0" in result.stdout, result.explain()
    _host_push(netjail.work)
    assert not marker.exists(), result.explain()
    heads = subprocess.run(
        ["git", "-C", str(netjail.work / "x.git"), "branch"], capture_output=True, text=True
    )
    assert "inner" in heads.stdout and "host" in heads.stdout


def test_f7_baseline_a_hook_written_into_a_bare_repository_without_netjail_runs(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "x.git")], check=True)
    marker = tmp_path / "MARKER"
    subprocess.run(["sh", "-c", _hook(marker)], cwd=tmp_path, check=True)
    _host_push(tmp_path)
    assert marker.exists()
