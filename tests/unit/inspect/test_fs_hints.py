"""The allowWrite entries proposed for refused writes, and what is never proposed (netjail/inspect/fs_hints.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from netjail.inspect.fs_hints import write_hints
from netjail.records.schema import RefusedWrite


def _record(path: str, cause: str = "outside_allow_write", entry: str | None = None) -> RefusedWrite:
    return {
        "event": "refused_write", "ts": "t", "path": path, "cause": cause, "entry": entry,  # type: ignore[typeddict-item]
        "ops": {"open": 1}, "count": 1, "programs": ["x"],
    }  # fmt: skip


@pytest.fixture
def home(tmp_path: Path) -> Path:
    for d in (".npm", ".cache", "project/src", ".config/git", ".local/share"):
        (tmp_path / "home" / d).mkdir(parents=True)
    (tmp_path / "home" / "project" / "notes.txt").write_text("")
    (tmp_path / "home" / ".bashrc").write_text("")
    return tmp_path / "home"


@pytest.mark.parametrize(
    ("relative", "proposal", "create_first"),
    [
        (".npm/_cacache/index", "~/.npm", False),  # a tool's cache: its cache directory
        (".cache/pip/http/x", "~/.cache/pip", True),
        (".cache", "~/.cache", False),
        ("project/notes.txt", "~/project/notes.txt", False),  # an existing file: itself
        ("project/src/new/deeper.o", "~/project/src", False),  # a new name: its nearest directory
        ("project/.vscode/settings.json", None, False),  # protected names, wherever they are
        (".bashrc", None, False),
        ("notes.txt", None, False),  # would need the home directory
        (".config/git/config", None, False),  # a home-level autoexec path
        (".config/new", None, False),  # an ancestor of one
        (".local/share/x", None, False),  # holds ~/.local/share/nvim
    ],
)
def test_proposals(home: Path, relative: str, proposal: str | None, create_first: bool) -> None:
    [hint] = write_hints([_record(str(home / relative))], home=home).hints
    assert (hint.proposal, hint.create_first) == (proposal, create_first), hint.because


@pytest.mark.parametrize("path", ["/etc/hosts", "/usr/local/lib/x", "/opt/tool/bin/x", "/"])
def test_system_paths_and_the_root_are_never_proposed(home: Path, path: str) -> None:
    [hint] = write_hints([_record(path)], home=home).hints
    assert hint.proposal is None


@pytest.mark.parametrize("cause", ["deny_write", "protected", "deny_read", "netjail"])
def test_a_rule_of_the_settings_or_netjail_is_never_overruled(home: Path, cause: str) -> None:
    [hint] = write_hints([_record(str(home / ".npm/x"), cause, str(home / ".npm"))], home=home).hints
    assert hint.proposal is None and hint.because


def test_the_rest_past_the_recorded_paths_is_counted(home: Path) -> None:
    rest: RefusedWrite = {
        "event": "refused_write", "ts": "t", "path": None, "cause": None, "entry": None,
        "ops": {"paths": 7}, "count": 9, "programs": [],
    }  # fmt: skip
    hints = write_hints([_record(str(home / ".npm/x")), rest], home=home)
    assert (hints.total, hints.more_paths, hints.proposals) == (10, 7, ["~/.npm"])
