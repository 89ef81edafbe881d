"""Writes the jail refuses explain themselves: the summary after the run, `why`, `learn`, and the records.

The home directory of these runs lies under /var/tmp, which the jail shows read-only, as it shows a real home.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.netjail import Netjail, Result

pytestmark = pytest.mark.nonroot


@pytest.fixture
def home() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="netjail-home-", dir="/var/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _run(netjail: Netjail, home: Path, cfg: Path, command: str) -> Result:
    return netjail.run("-s", str(cfg), "-c", command, env={**netjail.env, "HOME": str(home)})


def _refused(result: Result) -> list[dict]:
    return [r for r in result.records if r["event"] == "refused_write"]


def test_a_refused_cache_write_names_the_entry_and_the_next_run_passes(netjail: Netjail, home: Path) -> None:
    (home / ".npm").mkdir()
    cfg = netjail.settings()
    result = _run(netjail, home, cfg, "mkdir -p ~/.npm/_cacache/index-v5 && echo cached")
    assert result.returncode == 1, result.explain()
    assert "Read-only file system" in result.stderr
    assert "netjail: refused 1 write to 1 path(s): ~/.npm/_cacache (mkdir 1)" in result.stderr
    assert '{"filesystem": {"allowWrite": ["~/.npm"]}}' in result.stderr
    [record] = _refused(result)
    assert record["path"] == f"{home}/.npm/_cacache"
    assert (record["cause"], record["ops"], record["programs"]) == (
        "outside_allow_write",
        {"mkdir": 1},
        ["mkdir"],
    )

    why = netjail.command("why", env={**netjail.env, "HOME": str(home)})
    assert "Writes refused by the jail" in why.stdout and "fix: allowWrite ~/.npm" in why.stdout, why.stdout
    data = json.loads(netjail.command("why", "--json", env={**netjail.env, "HOME": str(home)}).stdout)
    assert data["refused_writes"]["allow_write"] == ["~/.npm"]
    assert data["fix"]["snippet"]["filesystem"]["allowWrite"][-1] == "~/.npm"

    # control: with the proposed entry the same command works, and a clean run prints no summary (mkdir -p met
    # the read-only /var and home on its way: EEXIST is no refusal)
    fixed = netjail.settings(filesystem={"allowWrite": [".", str(home / ".npm")]})
    passed = _run(netjail, home, fixed, "mkdir -p ~/.npm/_cacache/index-v5 && echo cached")
    assert passed.returncode == 0 and "cached" in passed.stdout, passed.explain()
    assert "netjail: refused" not in passed.stderr
    assert _refused(passed) == []


def test_printed_erofs_lines_get_no_hint(netjail: Netjail, home: Path) -> None:
    fake = "mkdir: cannot create directory '/home/x/.npm': Read-only file system"
    result = _run(netjail, home, netjail.settings(), f'echo "{fake}" >&2; exit 1')
    assert result.returncode == 1 and fake in result.stderr
    assert "netjail: refused" not in result.stderr and "allowWrite" not in result.stderr
    assert _refused(result) == []


def test_what_is_never_proposed(netjail: Netjail, home: Path) -> None:
    subprocess.run(["git", "init", "-q", str(netjail.work)], check=True)
    (netjail.work / "locked").write_text("keep\n")
    (home / ".bashrc").write_text("# the user's\n")
    cfg = netjail.settings(filesystem={"allowWrite": ["."], "denyWrite": ["locked"]})
    command = (
        "echo x > .git/hooks/pre-commit; echo x > locked; echo x > /etc/netjail-test; echo x >> ~/.bashrc; "
        "echo x > ~/notes.txt; echo done"
    )
    result = _run(netjail, home, cfg, command)
    assert "done" in result.stdout, result.explain()
    causes = {Path(r["path"]).name: r["cause"] for r in _refused(result)}
    assert causes == {
        "pre-commit": "protected",
        "locked": "deny_write",
        "netjail-test": "outside_allow_write",
        ".bashrc": "outside_allow_write",
        "notes.txt": "outside_allow_write",
    }
    assert "to allow them" not in result.stderr  # nothing here may be proposed
    assert "is protected by netjail" in result.stderr
    assert "under your denyWrite entry" in result.stderr
    assert "a system path: not proposed" in result.stderr
    assert "it would need the home directory writable" in result.stderr
    assert (home / ".bashrc").read_text() == "# the user's\n"


def test_the_observer_can_be_turned_off(netjail: Netjail, home: Path) -> None:
    cfg = netjail.settings(record={"refusedWrites": False})
    result = _run(netjail, home, cfg, "mkdir ~/.cache; echo rc=$?")
    assert "rc=1" in result.stdout and "Read-only file system" in result.stderr, result.explain()
    assert "netjail: refused" not in result.stderr
    assert _refused(result) == []


def test_many_refused_paths_are_recorded_bounded_and_names_are_made_safe(
    netjail: Netjail, home: Path
) -> None:
    command = (
        "for i in $(seq 300); do mkdir ~/d$i 2>/dev/null; done; mkdir ~/$'\\e[31mred' 2>/dev/null; exit 0"
    )
    result = _run(netjail, home, netjail.settings(), command)
    assert result.returncode == 0, result.explain()
    refused = _refused(result)
    assert len(refused) == 201  # 200 paths, then one record counting the rest
    assert refused[-1]["path"] is None and refused[-1]["count"] == 101
    assert "refused 301 writes to 301 path(s)" in result.stderr
    assert "\x1b" not in result.stderr


def test_a_relative_path_is_resolved_in_the_commands_directory(netjail: Netjail, home: Path) -> None:
    (home / "project").mkdir()
    result = _run(netjail, home, netjail.settings(), "cd ~/project && touch built.o; exit 0")
    assert [r["path"] for r in _refused(result)] == [f"{home}/project/built.o"]
    assert '"allowWrite": ["~/project"]' in result.stderr


def test_learn_proposes_the_refused_write(netjail: Netjail, home: Path) -> None:
    (home / ".cache").mkdir()
    cfg = netjail.settings()
    out = netjail.tmp_path / "learned.json"
    result = netjail.command(
        "learn", "-s", str(cfg), "-o", str(out), "-c", "mkdir -p ~/.cache/pip/http",
        env={**netjail.env, "HOME": str(home)},
    )  # fmt: skip
    assert "allowWrite ~/.cache/pip" in result.stdout, result.stdout + result.stderr
    assert json.loads(out.read_text())["filesystem"]["allowWrite"][-1] == "~/.cache/pip"
