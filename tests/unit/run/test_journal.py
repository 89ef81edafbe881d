"""The end-of-run journal: replaying it brings the tree to what it promises, and replaying again does nothing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from netjail.jail.newrepos import find_git_dirs
from netjail.jail.persistence import create_stub
from netjail.jail.quarantine import quarantine_entry
from netjail.run.journal import COMPLETED_JOURNAL_FILE, JOURNAL_FILE, Journal, complete_abandoned, replay


def _run_dir(tmp_path: Path) -> tuple[Path, Path]:
    tree, run = tmp_path / "tree", tmp_path / "run"
    tree.mkdir()
    run.mkdir()
    return tree, run


def test_replay_quarantines_removes_stubs_and_is_idempotent(tmp_path: Path) -> None:
    tree, run = _run_dir(tmp_path)
    journal = Journal(run)
    journal.begin([tree], find_git_dirs([tree]))
    journal.protect([tree / ".bashrc", tree / ".vscode"])
    create_stub(tree / "conf" / ".env", journal.write)
    assert (tree / "conf" / ".env").is_file()
    (tree / ".bashrc").write_text("evil\n")
    (tree / "notes.txt").write_text("kept\n")

    first = replay(journal)
    assert first.errors == []
    assert [r["path"] for r in first.records] == [str(tree / ".bashrc")]
    assert Path(first.records[0]["moved_to"]).read_text() == "evil\n"
    assert sorted(p.name for p in tree.iterdir()) == ["notes.txt"]  # the stub and its folder are gone
    assert (run / COMPLETED_JOURNAL_FILE).exists() and not (run / JOURNAL_FILE).exists()
    second = replay(journal)
    assert second.records == [] and second.errors == []
    journal.close()


def test_an_abandoned_journal_is_completed_once_and_a_live_one_is_left_alone(tmp_path: Path) -> None:
    tree, run = _run_dir(tmp_path)
    live = Journal(run)
    live.begin([tree], find_git_dirs([tree]))
    live.protect([tree / ".envrc"])
    (tree / ".envrc").write_text("evil\n")
    assert complete_abandoned(run) is None  # locked: its netjail is still running
    assert (tree / ".envrc").exists()
    live.close()  # netjail killed: the lock goes with it
    done = complete_abandoned(run)
    assert done is not None and [r["path"] for r in done.records] == [str(tree / ".envrc")]
    assert not (tree / ".envrc").exists()
    assert complete_abandoned(run) is None


def test_a_stub_replaced_by_someone_else_is_not_removed(tmp_path: Path) -> None:
    tree, run = _run_dir(tmp_path)
    journal = Journal(run)
    create_stub(tree / ".env", journal.write)
    (tree / ".env").rename(tmp_path / "old-stub")  # kept, so that its inode number is not reused
    (tree / ".env").write_text("")  # the user's own file, another inode
    assert replay(journal).errors == []
    assert (tree / ".env").exists()
    journal.close()


def test_a_fifo_moved_across_filesystems_is_never_opened(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        import pytest

        pytest.skip("needs /dev/shm on another filesystem than the temporary directory")
    tree = tmp_path / "tree"
    (tree / ".vscode").mkdir(parents=True)
    os.mkfifo(tree / ".vscode" / "pipe")  # opening it for reading would block forever
    (tree / ".vscode" / "tasks.json").write_text("{}\n")
    destination = Path(
        subprocess.run(["mktemp", "-d", "-p", "/dev/shm"], capture_output=True, text=True).stdout.strip()
    )
    try:
        notes: list[dict] = []
        record = quarantine_entry(tree / ".vscode", destination / "q" / ".vscode", notes.append)
        assert record["action"] == "moved", record
        assert not (tree / ".vscode").exists()
        assert (destination / "q" / ".vscode" / "tasks.json").read_text() == "{}\n"
        assert (destination / "q" / ".vscode" / "pipe.netjail-fifo").exists()
        assert notes[0]["op"] == "move"
    finally:
        subprocess.run(["rm", "-rf", str(destination)])


def test_a_name_swapped_for_a_symlink_moves_the_link_not_its_target(tmp_path: Path) -> None:
    tree, run = _run_dir(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("mine\n")
    (tree / ".vscode").symlink_to(outside)
    record = quarantine_entry(tree / ".vscode", run / "q" / ".vscode", lambda entry: None)
    assert record["action"] == "moved" and record["file_type"] == "symlink"
    assert (outside / "precious").read_text() == "mine\n"
    assert (run / "q" / ".vscode").is_symlink()


def test_replay_puts_back_a_link_the_run_replaced_or_removed(tmp_path: Path) -> None:
    tree, run = _run_dir(tmp_path)
    (tree / "shared").mkdir()
    for name in ("replaced", "removed", "kept"):
        os.symlink("shared", tree / name)
    journal = Journal(run)
    journal.begin([tree], find_git_dirs([tree]))
    journal.keep_links([(tree / n, "shared") for n in ("replaced", "removed", "kept")])
    (tree / "replaced").unlink()
    (tree / "replaced").mkdir()
    (tree / "replaced" / "tasks.json").write_text("evil\n")
    (tree / "removed").unlink()

    first = replay(journal)
    assert first.errors == []
    assert {r["path"]: r["action"] for r in first.records} == {
        str(tree / "replaced"): "restored",
        str(tree / "removed"): "restored",
    }
    for name in ("replaced", "removed", "kept"):
        assert os.readlink(tree / name) == "shared"
    moved = next(r for r in first.records if r["path"] == str(tree / "replaced"))["moved_to"]
    assert Path(moved, "tasks.json").read_text() == "evil\n"
    assert replay(journal).records == []
    journal.close()


def test_a_journal_not_yet_begun_is_left_to_its_run(tmp_path: Path) -> None:
    """A run creates its journal, then locks it: a sweep in between must not replay and rename it (a concurrent
    run's start then found no `begin` in its own journal)."""
    _, run = _run_dir(tmp_path)
    (run / JOURNAL_FILE).touch()
    assert complete_abandoned(run) is None
    assert (run / JOURNAL_FILE).exists() and not (run / COMPLETED_JOURNAL_FILE).exists()
    journal = Journal(run)  # the owner locks and begins as usual
    journal.begin([tmp_path], find_git_dirs([tmp_path]))
    assert [e["op"] for e in journal.entries()] == ["begin"]
    journal.close()
