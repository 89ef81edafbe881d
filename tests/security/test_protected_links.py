"""F12: protected names that are symlinks inside a writable root (`.vscode -> ../shared/vscode`, a dotfiles
`.envrc`, `.git/hooks -> ../githooks`), with the real netjail binary and the host's own git.

Such a link cannot be a mount point (a bind would follow it), and the command could replace it. netjail protects
what it points to in its place (read-only, or watched where it does not exist) and puts the link back when the
run removes or replaces it. Each attack beside its harmless control."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.support.netjail import Netjail


def quarantine_records(netjail: Netjail) -> list[dict]:
    run = netjail.latest_run()
    assert run is not None
    records = [json.loads(line) for line in (run / "flows.jsonl").read_text().splitlines()]
    return [r for r in records if r["event"] == "quarantine"]


def linked_vscode(netjail: Netjail) -> Path:
    shared = netjail.work / "shared" / "vscode"
    shared.mkdir(parents=True)
    (shared / "settings.json").write_text("{}\n")
    (netjail.work / "proj").mkdir()
    os.symlink("../shared/vscode", netjail.work / "proj" / ".vscode")
    return shared


def test_a_run_in_a_tree_with_a_linked_editor_folder_starts_and_writes_beside_it(netjail: Netjail) -> None:
    linked_vscode(netjail)
    result = netjail.run(
        "-s", str(netjail.settings()), "-c", "cd proj && echo kept > control.txt && cat .vscode/settings.json"
    )
    assert result.returncode == 0, result.explain()  # was: bwrap could not bind onto the link, exit 125
    assert result.stdout == "{}\n"
    assert (netjail.work / "proj" / "control.txt").read_text() == "kept\n"


def test_what_a_linked_editor_folder_points_to_is_read_only(netjail: Netjail) -> None:
    shared = linked_vscode(netjail)
    script = "cd proj; echo '{\"tasks\": 1}' > .vscode/tasks.json; echo tasks=$?; echo ok > ../shared/other; echo other=$?"
    result = netjail.run("-s", str(netjail.settings()), "-c", script)
    assert result.returncode == 0, result.explain()
    assert "tasks=1" in result.stdout and "Read-only file system" in result.stderr
    assert not (shared / "tasks.json").exists()
    assert (
        netjail.work / "shared" / "other"
    ).read_text() == "ok\n"  # control: the folder beside it is writable


def test_a_linked_editor_folder_replaced_by_the_run_is_put_back(netjail: Netjail) -> None:
    shared = linked_vscode(netjail)
    script = (
        "cd proj; rm .vscode && mkdir .vscode && echo '{\"tasks\": 1}' > .vscode/tasks.json; "
        "sleep 0.3; echo kept > control.txt; ls -ld .vscode"
    )
    result = netjail.run("-s", str(netjail.settings()), "-c", script)
    assert result.returncode == 0, result.explain()
    link = netjail.work / "proj" / ".vscode"
    assert link.is_symlink() and os.readlink(link) == "../shared/vscode"
    assert sorted(p.name for p in shared.iterdir()) == ["settings.json"]
    assert (netjail.work / "proj" / "control.txt").read_text() == "kept\n"
    restored = [r for r in quarantine_records(netjail) if r["action"] == "restored"]
    assert (
        restored and restored[0]["path"] == str(link) and restored[0]["restored_link"] == "../shared/vscode"
    )
    assert Path(restored[0]["moved_to"], "tasks.json").exists()  # what the run wrote, kept in the quarantine
    assert "netjail restored the link" in result.stderr


def test_a_dangling_linked_name_filled_in_by_the_run_is_quarantined(netjail: Netjail) -> None:
    (netjail.work / "proj").mkdir()
    (netjail.work / "dotfiles").mkdir()
    os.symlink("../dotfiles/envrc", netjail.work / "proj" / ".envrc")  # direnv sources it on `cd`
    script = "cd proj; echo 'touch /tmp/pwned' > .envrc; echo kept > control.txt"
    result = netjail.run("-s", str(netjail.settings()), "-c", script)
    assert result.returncode == 0, result.explain()
    assert not (netjail.work / "dotfiles" / "envrc").exists()
    assert os.readlink(netjail.work / "proj" / ".envrc") == "../dotfiles/envrc"
    assert (netjail.work / "proj" / "control.txt").read_text() == "kept\n"
    assert any(r["path"] == str(netjail.work / "dotfiles" / "envrc") for r in quarantine_records(netjail))


def git(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@t"
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=30)


def repository_with_linked_hooks(netjail: Netjail) -> Path:
    """A repository whose `.git/hooks` links to a tracked `githooks/` folder (a common way to share hooks)."""
    repo = netjail.work / "repo"
    git("init", "-q", str(repo), cwd=netjail.work)
    (repo / "githooks").mkdir()
    subprocess.run(["rm", "-rf", str(repo / ".git" / "hooks")], check=True)
    os.symlink("../githooks", repo / ".git" / "hooks")
    (repo / "tracked").write_text("x\n")
    git("add", "tracked", cwd=repo)
    return repo


def plant_hook(markers: Path) -> str:
    return f"printf '#!/bin/sh\\ntouch {markers}/hook\\n' > .git/hooks/pre-commit; chmod +x .git/hooks/pre-commit"


def test_baseline_a_hook_planted_through_linked_hooks_without_netjail_fires_on_the_host(
    netjail: Netjail,
) -> None:
    repo, markers = repository_with_linked_hooks(netjail), netjail.tmp_path / "markers"
    markers.mkdir()
    subprocess.run(["bash", "-c", plant_hook(markers)], cwd=repo, check=True)
    git("commit", "-qm", "host", cwd=repo)
    assert (markers / "hook").exists()


def test_a_hook_planted_through_linked_hooks_or_a_replaced_link_never_fires_on_the_host(
    netjail: Netjail,
) -> None:
    repo, markers = repository_with_linked_hooks(netjail), netjail.tmp_path / "markers"
    markers.mkdir()
    script = (
        f"cd repo; {plant_hook(markers)}; echo through=$?; "
        f"rm .git/hooks && mkdir .git/hooks && {plant_hook(markers)}; echo kept > control.txt"
    )
    result = netjail.run("-s", str(netjail.settings()), "-c", script)
    assert result.returncode == 0, result.explain()
    assert "through=1" in result.stdout
    assert os.readlink(repo / ".git" / "hooks") == "../githooks"
    assert list((repo / "githooks").iterdir()) == []
    assert (repo / "control.txt").read_text() == "kept\n"
    assert git("commit", "-qm", "host", cwd=repo).returncode == 0  # the host's git works, and runs nothing
    assert not (markers / "hook").exists()


def repository_behind_a_link(netjail: Netjail) -> Path:
    """`proj/.git` a symlink to the git directory (a separate-git-dir or dotfiles layout)."""
    proj = netjail.work / "proj"
    (netjail.work / "gitdirs").mkdir()
    git(
        "init",
        "-q",
        f"--separate-git-dir={netjail.work / 'gitdirs' / 'proj.git'}",
        str(proj),
        cwd=netjail.work,
    )
    (proj / ".git").unlink()
    os.symlink("../gitdirs/proj.git", proj / ".git")
    return proj


def test_baseline_a_repository_behind_a_link_runs_what_is_planted_in_it(netjail: Netjail) -> None:
    proj, markers = repository_behind_a_link(netjail), netjail.tmp_path / "markers"
    markers.mkdir()
    subprocess.run(["bash", "-c", plant_hook(markers)], cwd=proj, check=True)
    git("commit", "-q", "--allow-empty", "-m", "host", cwd=proj)
    assert (markers / "hook").exists()


def test_a_repository_behind_a_link_works_inside_and_runs_nothing_on_the_host(netjail: Netjail) -> None:
    proj, markers = repository_behind_a_link(netjail), netjail.tmp_path / "markers"
    markers.mkdir()
    script = (
        "cd proj; git -c user.name=j -c user.email=j@j commit -q --allow-empty -m inside; echo commit=$?; "
        f"{plant_hook(markers)}; echo hook=$?; git config core.fsmonitor 'touch {markers}/fsmonitor'; "
        f"echo config=$?; rm .git && mkdir -p .git/hooks && {plant_hook(markers)}; echo replaced"
    )
    result = netjail.run("-s", str(netjail.settings()), "-c", script)
    assert result.returncode == 0, result.explain()
    assert "commit=0" in result.stdout  # the control: git works in it
    assert "hook=1" in result.stdout and "config=0" not in result.stdout
    assert os.readlink(proj / ".git") == "../gitdirs/proj.git"
    log = git("log", "--format=%s", cwd=proj)
    assert log.stdout.split() == ["inside"]
    git("status", cwd=proj)
    git("commit", "-q", "--allow-empty", "-m", "host", cwd=proj)
    assert list(markers.iterdir()) == []
