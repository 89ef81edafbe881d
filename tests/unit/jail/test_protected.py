"""The inventory of protected names and the scan that finds them (netjail/jail/protected.py)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from netjail.jail import protected
from netjail.jail.protected import INVENTORY, Placeholder, ScanRefused, scan

REPO = Path(__file__).resolve().parents[3]

# What DANGEROUS_FILES / DANGEROUS_DIRECTORIES held before the inventory, and what issue 10 names.
EARLIER = [
    ".gitconfig", ".gitmodules", ".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".zshrc", ".zprofile",
    ".zshenv", ".zlogin", ".profile", ".ripgreprc", ".mcp.json", ".npmrc", ".pypirc",
    ".vscode/", ".idea/", ".claude/commands/", ".claude/agents/", ".devcontainer/",
]  # fmt: skip
ISSUE_10 = [
    ".claude/settings.json", ".claude/settings.local.json", ".claude/hooks/", ".github/workflows/", ".gitlab-ci.yml",
    ".circleci/", ".buildkite/", ".envrc", ".githooks/", ".husky/", ".pre-commit-config.yaml", "lefthook.yml",
    ".lefthook.yml", "mise.toml", ".mise.toml", ".gemini/settings.json", ".codex/config.toml", ".aider.conf.yml",
    ".cursor/mcp.json", ".exrc", ".nvim.lua",
]  # fmt: skip


def scan_of(*roots: Path, **kw) -> protected.Protection:
    kw.setdefault("home", Path("/nonexistent-home"))
    kw.setdefault("installation", [])
    return scan(list(roots), **kw)


def git_init(path: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


# -- the inventory ------------------------------------------------------------------------------------------------


def test_every_name_is_listed_once_with_a_reason() -> None:
    keys = [(p.scope, p.name) for p in INVENTORY]
    assert len(keys) == len(set(keys))
    assert all(len(p.why) > 10 for p in INVENTORY)


@pytest.mark.parametrize("name", EARLIER + ISSUE_10)
def test_the_earlier_names_and_the_issues_are_in_the_tree_inventory(name: str) -> None:
    assert name in protected.tree_names()


def test_the_security_doc_lists_exactly_the_inventory() -> None:
    doc = (REPO / "docs" / "security.md").read_text(encoding="utf-8")
    section = doc.split("## Protected names", 1)[1].split("\n## ", 1)[0]
    assert protected.render_inventory() in section, "regenerate with protected.render_inventory()"
    listed = re.findall(r"^\| `([^`]+)` \|", section, flags=re.M)
    expected = [{"home": "~/", "git": ".git/", "tree": ""}[p.scope] + p.name for p in INVENTORY]
    assert sorted(set(listed) - {n for n, _ in protected.NOT_PROTECTED}) == sorted(expected)


# -- names in the tree --------------------------------------------------------------------------------------------


def test_names_are_found_at_any_depth(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b" / "c" / "d" / "e" / "f" / "g"
    (deep / ".vscode").mkdir(parents=True)
    (deep / ".claude").mkdir()
    (deep / ".claude" / "settings.json").write_text("{}")
    (deep / ".claude" / "notes.md").write_text("")
    (deep / "settings.json").write_text("{}")  # not under .claude: ordinary
    found = scan_of(tmp_path).read_only
    assert deep / ".vscode" in found and deep / ".claude" / "settings.json" in found
    assert deep / "settings.json" not in found and deep / ".claude" / "notes.md" not in found


def test_names_match_against_the_root_itself(tmp_path: Path) -> None:
    claude = tmp_path / ".claude"
    (claude / "hooks").mkdir(parents=True)
    result = scan_of(claude)
    assert claude / "hooks" in result.read_only
    assert claude / "settings.json" in result.missing
    assert claude not in result.read_only


def test_a_root_inside_a_protected_directory_is_read_only(tmp_path: Path) -> None:
    root = tmp_path / ".vscode" / "sub"
    root.mkdir(parents=True)
    assert root in scan_of(root).read_only


def test_missing_names_at_the_root_are_watched(tmp_path: Path) -> None:
    result = scan_of(tmp_path)
    assert {tmp_path / ".envrc", tmp_path / ".github" / "workflows", tmp_path / ".bashrc"} <= set(
        result.missing
    )
    assert not result.placeholders


# -- git directories ----------------------------------------------------------------------------------------------


def test_every_git_dir_at_any_depth_gets_its_redirection_files_protected(tmp_path: Path) -> None:
    repo = git_init(tmp_path / "1" / "2" / "3" / "4" / "5" / "6" / "repo")
    result = scan_of(tmp_path)
    git = repo / ".git"
    assert {git / "config", git / "hooks", git / "info"} <= set(result.read_only)
    placeholders = {p.path: (p.kind, p.content) for p in result.placeholders}
    assert placeholders == {git / "commondir": ("file", b".\n"), git / "config.worktree": ("file", b"")}
    assert git / "commondir" in result.read_only  # bound read-only once created


def test_allow_git_config_leaves_only_the_config_writable(tmp_path: Path) -> None:
    git = git_init(tmp_path / "repo") / ".git"
    found = scan_of(tmp_path, allow_git_config=True).read_only
    assert git / "config" not in found and git / "hooks" in found


def test_worktrees_submodules_and_git_files(tmp_path: Path) -> None:
    main = git_init(tmp_path / "main")
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    subprocess.run(["git", "-C", str(main), "commit", "-q", "--allow-empty", "-m", "x"], check=True, env=env)
    subprocess.run(
        ["git", "-C", str(main), "worktree", "add", "-q", str(tmp_path / "wt")], check=True, env=env
    )
    module = main / ".git" / "modules" / "libs" / "x"  # submodule names may hold '/'
    module.mkdir(parents=True)
    (module / "HEAD").write_text("ref: refs/heads/main\n")
    (module / "config").write_text("")
    found = set(scan_of(tmp_path).read_only)
    assert tmp_path / "wt" / ".git" in found  # the pointer file itself
    assert {
        main / ".git" / "worktrees" / "wt" / "gitdir",
        main / ".git" / "worktrees" / "wt" / "commondir",
    } <= found
    assert {module / "config", module / "hooks"} <= found  # hooks: a placeholder, bound read-only
    assert module / "hooks" in {p.path for p in scan_of(tmp_path).placeholders}


def test_a_git_file_pointing_into_a_skipped_directory_is_followed(tmp_path: Path) -> None:
    hidden = git_init(tmp_path / "node_modules" / "store" / "r") / ".git"
    (tmp_path / "checkout").mkdir()
    (tmp_path / "checkout" / ".git").write_text(f"gitdir: {hidden}\n")
    assert hidden / "config" in scan_of(tmp_path).read_only


def test_hooks_path_and_include_targets_inside_the_tree(tmp_path: Path) -> None:
    repo = git_init(tmp_path / "repo")
    (repo / "tools" / "hooks").mkdir(parents=True)
    with (repo / ".git" / "config").open("a") as f:
        f.write("[core]\n\thooksPath = tools/hooks\n[include]\n\tpath = ../extra.inc\n")
    result = scan_of(tmp_path)
    assert repo / "tools" / "hooks" in result.read_only
    assert repo / "extra.inc" in result.missing


# -- the skip list and the budget ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "marker", "skipped"),
    [
        ("node_modules/pkg", None, True),
        ("__pycache__/x", None, True),
        (".venv/lib/site-packages/pkg", ".venv/pyvenv.cfg", True),
        ("venv/src/pkg", "venv/pyvenv.cfg", False),  # pip clones editable VCS installs there
        ("target/debug/dep", "target/CACHEDIR.TAG", True),
        ("target/debug/dep", None, False),  # a directory named target is not skipped by its name alone
    ],
)
def test_the_skip_list(tmp_path: Path, where: str, marker: str | None, skipped: bool) -> None:
    repo = git_init(tmp_path / where)
    if marker:
        (tmp_path / marker).write_text("Signature: 8a477f597d28d172789f06886806bc55\n")
    assert (repo / ".git" / "hooks" in scan_of(tmp_path).read_only) is not skipped


def test_a_scan_past_its_budget_refuses_the_run(tmp_path: Path) -> None:
    for i in range(30):
        (tmp_path / f"f{i}").touch()
    with pytest.raises(
        ScanRefused,
        match=rf"under {re.escape(str(tmp_path))} passed 10 entries.*allowWrite.*NETJAIL_SCAN_LIMIT",
    ):
        scan_of(tmp_path, limit=10)
    assert scan_of(tmp_path, limit=100).entries == 30


def test_the_budget_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(30):
        (tmp_path / f"f{i}").touch()
    monkeypatch.setenv(protected.SCAN_LIMIT_VARIABLE, "5")
    with pytest.raises(ScanRefused):
        scan_of(tmp_path)


def test_path_rules_turns_a_refusal_into_a_jail_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from netjail.jail.paths import path_rules
    from netjail.jail.spec import JailError
    from netjail.settings import Settings

    for i in range(30):
        (tmp_path / f"f{i}").touch()
    monkeypatch.setenv(protected.SCAN_LIMIT_VARIABLE, "5")
    settings = Settings.model_validate(
        {"network": {"allowedDomains": [], "deniedDomains": []},
         "filesystem": {"denyRead": [], "allowWrite": ["."], "denyWrite": []}}
    )  # fmt: skip
    with pytest.raises(JailError, match="NETJAIL_SCAN_LIMIT"):
        path_rules(settings, tmp_path)


# -- home level and netjail's installation ------------------------------------------------------------------------


def test_home_autoexec_when_the_home_is_writable(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".local" / "bin").mkdir(parents=True)
    (home / ".ssh").mkdir()
    (home / ".ssh" / "config").write_text("")
    site = home / ".local" / "lib" / "python3.9" / "site-packages"
    site.mkdir(parents=True)
    result = scan_of(home, home=home)
    assert {home / ".local" / "bin", home / ".ssh" / "config", site} <= set(result.read_only)
    assert {home / ".config" / "git", home / ".ssh" / "authorized_keys", home / ".vimrc"} <= set(
        result.missing
    )
    assert home / ".ssh" not in result.read_only  # known_hosts and keys stay writable


def test_home_names_do_not_apply_outside_the_home(tmp_path: Path) -> None:
    (tmp_path / "proj" / ".local" / "bin").mkdir(parents=True)
    result = scan_of(tmp_path / "proj", home=tmp_path / "home")
    assert tmp_path / "proj" / ".local" / "bin" not in result.read_only


def test_netjails_installation_is_read_only_under_a_writable_root(tmp_path: Path) -> None:
    venv = tmp_path / "proj" / ".venv"
    venv.mkdir(parents=True)
    assert venv in scan_of(tmp_path / "proj", installation=[venv]).read_only
    assert venv in scan_of(venv, installation=[venv]).read_only  # allowWrite naming the venv itself
    inner = venv / "lib"
    inner.mkdir()
    assert inner in scan_of(inner, installation=[venv]).read_only


def test_the_real_installation_includes_the_running_environment() -> None:
    import sys

    paths = protected.installation_paths()
    assert Path(sys.prefix).resolve() in paths
    assert REPO in paths  # tests run from a source checkout


# -- placeholders -------------------------------------------------------------------------------------------------


def test_placeholders_are_created_once_and_removed_only_when_unchanged(tmp_path: Path) -> None:
    file, directory = (
        Placeholder(tmp_path / "commondir", "file", b".\n"),
        Placeholder(tmp_path / "hooks", "dir"),
    )
    assert protected.create_placeholders([file, directory]) == [file, directory]
    assert (tmp_path / "commondir").read_bytes() == b".\n" and (tmp_path / "hooks").is_dir()
    assert protected.create_placeholders([file, directory]) == []  # there already: not ours to remove
    protected.remove_placeholders([file, directory])
    assert list(tmp_path.iterdir()) == []
    file.create()
    (tmp_path / "commondir").write_text("changed\n")
    file.remove()
    assert (tmp_path / "commondir").read_text() == "changed\n"


def test_a_protected_name_that_is_a_link_protects_its_target_and_keeps_the_link(tmp_path: Path) -> None:
    shared, proj = tmp_path / "shared", tmp_path / "proj"
    (shared / "vscode").mkdir(parents=True)
    proj.mkdir()
    os.symlink("../shared/vscode", proj / ".vscode")
    os.symlink(str(tmp_path / "nowhere" / "envrc"), proj / ".envrc")  # dangling, into the tree
    found = protected.scan([tmp_path], installation=[])
    assert shared / "vscode" in found.read_only and proj / ".vscode" not in found.read_only
    assert tmp_path / "nowhere" / "envrc" in found.missing and proj / ".envrc" not in found.read_only
    assert set(found.links) == {
        (proj / ".vscode", "../shared/vscode"),
        (proj / ".envrc", str(tmp_path / "nowhere" / "envrc")),
    }


def test_a_link_pointing_out_of_the_writable_roots_is_kept_and_its_target_left_to_the_base(
    tmp_path: Path,
) -> None:
    outside, proj = tmp_path / "outside", tmp_path / "proj"
    (outside / "claude").mkdir(parents=True)
    proj.mkdir()
    os.symlink(str(outside / "claude"), proj / ".claude")
    found = protected.scan([proj], installation=[])
    assert (proj / ".claude", str(outside / "claude")) in found.links
    assert all(proj / ".claude" not in (p, *p.parents) for p in (*found.read_only, *found.missing))


def test_a_dot_git_link_to_a_git_directory_protects_that_directory_and_keeps_the_link(tmp_path: Path) -> None:
    git_dir, proj = tmp_path / "gitdirs" / "proj.git", tmp_path / "proj"
    (git_dir / "hooks").mkdir(parents=True)
    (git_dir / "config").write_text("[core]\n")
    (git_dir / "HEAD").write_text("ref: refs/heads/main\n")
    proj.mkdir()
    os.symlink("../gitdirs/proj.git", proj / ".git")
    found = protected.scan([tmp_path], installation=[])
    assert {git_dir / "hooks", git_dir / "config"} <= set(found.read_only)
    assert proj / ".git" not in found.read_only and git_dir not in found.read_only  # git still writes in it
    assert (proj / ".git", "../gitdirs/proj.git") in found.links
