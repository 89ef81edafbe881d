"""Which settings paths go through a link a run could have planted (netjail/jail/symlinks.py), as a table over
real trees in a temporary directory; and opening a path without following any link."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from netjail.jail.symlinks import LinkedPath, first_planted_link, open_no_follow, planted_link


def tree(base: Path, layout: dict[str, str | None]) -> None:
    """name -> None for a directory, or a link target (relative to base when it does not start with /)."""
    for name, target in layout.items():
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if target is None:
            path.mkdir(exist_ok=True)
        else:
            path.symlink_to(target if target.startswith("/") else base / target)


# (layout, writable roots relative to base, entry relative to base, the link reported or None)
CASES = [
    pytest.param({"R/sub/build": None}, ["R"], "R/sub/build", None, id="plain-nested-entry"),
    pytest.param({"R/sub": None, "outside": None, "R/sub/build": "outside"}, ["R"], "R/sub/build", "R/sub/build",
                 id="swapped-entry-is-a-link-inside-a-writable-root"),
    pytest.param({"R": None, "outside/build": None, "R/sub": "outside"}, ["R"], "R/sub/build", "R/sub",
                 id="swapped-parent-is-a-link-inside-a-writable-root"),
    pytest.param({"data": None, "home": None, "home/.cache": "data"}, [], "home/.cache", None,
                 id="users-top-level-link-outside-every-writable-root"),
    pytest.param({"data": None, "home": None, "home/.cache": "data"}, ["data"], "home/.cache", None,
                 id="top-level-link-whose-target-is-writable-itself"),
    pytest.param({"data/x": None, "home": None, "home/.cache": "data", "data/pip": "data/x"}, ["data"],
                 "home/.cache/pip", "home/.cache/pip", id="link-below-a-writable-root-reached-through-a-user-link"),
    pytest.param({"home/.cache": None}, ["home"], "home/.cache", None, id="no-link-at-all"),
    pytest.param({"home": None, "data": None, "home/.cache": "data"}, ["home"], "home/.cache", "home/.cache",
                 id="link-directly-in-a-writable-root"),
    pytest.param({"R": None, "R/a/b": None}, ["R/a"], "R/a/b", None, id="writable-root-deeper-than-the-link-check"),
]  # fmt: skip


@pytest.mark.parametrize(("layout", "roots", "entry", "reported"), CASES)
def test_planted_links(
    tmp_path: Path, layout: dict, roots: list[str], entry: str, reported: str | None
) -> None:
    tree(tmp_path, layout)
    writable = [Path(os.path.realpath(tmp_path / r)) for r in roots]
    found = planted_link("allowWrite", entry, tmp_path / entry, writable)
    assert (found.link if found else None) == (tmp_path / reported if reported else None)


def test_the_message_names_the_file_the_entry_where_it_resolves_and_the_fix(tmp_path: Path) -> None:
    tree(tmp_path, {"R/sub": None, "outside": None, "R/sub/build": "outside"})
    found = planted_link("allowWrite", "R/sub/build", tmp_path / "R/sub/build", [tmp_path / "R"])
    assert found is not None
    message = found.message(Path("/etc/cfg.json"))
    for part in ("/etc/cfg.json", "allowWrite", "'R/sub/build'", str(tmp_path / "outside"), "Fix:"):
        assert part in message


def test_first_planted_link_checks_every_entry(tmp_path: Path) -> None:
    tree(tmp_path, {"R/ok": None, "outside": None, "R/bad": "outside"})
    entries = [("allowWrite", "R/ok", tmp_path / "R/ok"), ("allowRead", "R/bad", tmp_path / "R/bad")]
    found = first_planted_link(entries, [tmp_path / "R"])
    assert found is not None and found.key == "allowRead" and found.entry == "R/bad"
    assert first_planted_link(entries[:1], [tmp_path / "R"]) is None


def test_open_no_follow_reaches_the_path_itself(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    fd = open_no_follow(tmp_path / "a" / "b")
    try:
        assert os.readlink(f"/proc/self/fd/{fd}") == str(tmp_path / "a" / "b")
    finally:
        os.close(fd)


@pytest.mark.parametrize("link_at", ["a", "a/b"])
def test_open_no_follow_refuses_a_link_anywhere_on_the_way(tmp_path: Path, link_at: str) -> None:
    (tmp_path / "real" / "b").mkdir(parents=True)
    if link_at == "a":
        (tmp_path / "a").symlink_to(tmp_path / "real")
    else:
        (tmp_path / "a").mkdir()
        (tmp_path / "a" / "b").symlink_to(tmp_path / "real" / "b")
    with pytest.raises(LinkedPath):
        os.close(open_no_follow(tmp_path / "a" / "b"))


# -- denyRead / denyWrite entries: refused in path_rules, before any backend (Linux bwrap and macOS seatbelt) ----


def _rules(tmp_path: Path, **filesystem):
    from netjail.jail.paths import path_rules
    from netjail.settings import Settings

    fs = {"denyRead": [], "allowWrite": ["."], "denyWrite": [], **filesystem}
    settings = Settings.model_validate(
        {"network": {"allowedDomains": [], "deniedDomains": []}, "filesystem": fs}
    )
    return path_rules(settings, tmp_path, settings_file=tmp_path / "cfg.json")


@pytest.mark.parametrize("key", ["denyRead", "denyWrite"])
@pytest.mark.parametrize(
    ("layout", "entry"),
    [
        pytest.param({"decoy": None, "conf": "decoy"}, "conf/secret", id="parent-is-a-link"),
        pytest.param({"decoy": None, "secret": "decoy"}, "secret", id="entry-is-a-link"),
        pytest.param({"secret": "/nonexistent-target"}, "secret", id="entry-is-a-dangling-link"),
    ],
)
def test_a_deny_entry_through_a_link_in_a_writable_root_is_refused(
    tmp_path: Path, key: str, layout: dict, entry: str
) -> None:
    from netjail.jail.spec import JailError

    tree(tmp_path, layout)
    with pytest.raises(JailError) as refused:
        _rules(tmp_path, **{key: [entry]})
    for part in (str(tmp_path / "cfg.json"), key, repr(entry), "Fix:"):
        assert part in str(refused.value)


@pytest.mark.parametrize("key", ["denyRead", "denyWrite"])
def test_a_deny_entry_through_a_users_link_outside_writable_roots_applies(tmp_path: Path, key: str) -> None:
    tree(tmp_path, {"w": None, "data": None, "link": "data"})
    (tmp_path / "data" / "secret").write_text("x")
    rules = _rules(tmp_path, allowWrite=["w"], **{key: ["link/secret"]})
    assert tmp_path / "data" / "secret" in (rules.hidden if key == "denyRead" else rules.read_only)


@pytest.mark.parametrize("key", ["denyRead", "denyWrite"])
def test_a_deny_entry_with_a_second_name_is_refused_and_with_one_name_applies(
    tmp_path: Path, key: str
) -> None:
    from netjail.jail.spec import JailError

    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "secret").write_text("x")
    os.link(tmp_path / "dir" / "secret", tmp_path / "alias")
    for entry in ("dir/secret", "dir"):  # the file itself, and a file inside a denied directory
        with pytest.raises(JailError, match="2 names"):
            _rules(tmp_path, **{key: [entry]})
    (tmp_path / "alias").unlink()
    rules = _rules(tmp_path, **{key: ["dir"]})
    assert tmp_path / "dir" in (rules.hidden if key == "denyRead" else rules.read_only)
