"""The git-config allow list: every executing key of git-config(1) is dropped, the parser reads what git reads."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from netjail.jail.gitconfig import Entry, Unreadable, is_safe, parse, render, sanitize

GIT = shutil.which("git")
needs_git = pytest.mark.skipif(GIT is None, reason="the comparison with git needs git")

# Every key git-config(1) documents as naming a program, a script, a hook directory or a file to include, as it
# would appear in a config the run wrote.
EXECUTING = [
    ("core", None, "fsmonitor", "/tmp/x"),
    ("core", None, "hooksPath", ".githooks"),
    ("core", None, "sshCommand", "sh -c x"),
    ("core", None, "pager", "sh -c x"),
    ("core", None, "editor", "sh -c x"),
    ("core", None, "askPass", "/tmp/x"),
    ("core", None, "alternateRefsCommand", "x"),
    ("core", None, "gitProxy", "x"),
    ("core", None, "worktree", "/elsewhere"),
    ("core", None, "excludesFile", "/x"),
    ("core", None, "attributesFile", "/x"),
    ("diff", None, "external", "x"),
    ("diff", "x", "textconv", "x"),
    ("diff", "x", "command", "x"),
    ("merge", "x", "driver", "x"),
    ("filter", "x", "clean", "x"),
    ("filter", "x", "smudge", "x"),
    ("filter", "x", "process", "x"),
    ("credential", None, "helper", "!x"),
    ("credential", "https://h", "helper", "x"),
    ("gpg", None, "program", "x"),
    ("gpg", "ssh", "program", "x"),
    ("gpg", "ssh", "defaultKeyCommand", "x"),
    ("sequence", None, "editor", "x"),
    ("pager", None, "log", "x"),
    ("interactive", None, "diffFilter", "x"),
    ("alias", None, "st", "!sh -c x"),
    ("alias", None, "co", "checkout"),
    ("include", None, "path", "/tmp/evil"),
    ("includeIf", "gitdir:/", "path", "/tmp/evil"),
    ("difftool", "x", "cmd", "x"),
    ("mergetool", "x", "cmd", "x"),
    ("web", None, "browser", "x"),
    ("browser", "x", "cmd", "x"),
    ("man", "x", "cmd", "x"),
    ("remote", "origin", "uploadpack", "x"),
    ("remote", "origin", "receivepack", "x"),
    ("remote", "origin", "vcs", "x"),
    ("submodule", "m", "update", "!x"),
    ("uploadpack", None, "packObjectsHook", "x"),
    ("receive", None, "procReceiveRefs", "x"),
    ("http", None, "proxy", "x"),
    ("protocol", "ext", "allow", "always"),
    ("hook", "pre-commit", "command", "x"),
    ("fsmonitor", None, "socketDir", "x"),
    ("ssh", None, "variant", "x"),
    ("notes", "rewrite", "amend", "x"),
    ("sendemail", None, "sendmailCmd", "x"),
    ("instaweb", None, "httpd", "x"),
    ("guitool", "x", "cmd", "x"),
]
SAFE = [
    ("core", None, "repositoryformatversion", "0"),
    ("core", None, "filemode", "true"),
    ("core", None, "bare", "false"),
    ("core", None, "logallrefupdates", "true"),
    ("remote", "origin", "url", "https://example.test/r.git"),
    ("remote", "origin", "fetch", "+refs/heads/*:refs/remotes/origin/*"),
    ("branch", "main", "remote", "origin"),
    ("branch", "main", "merge", "refs/heads/main"),
    ("user", None, "name", "A Person"),
    ("user", None, "email", "a@example.test"),
    ("init", None, "defaultBranch", "main"),
    ("submodule", "lib", "url", "../lib.git"),
]


def _text(section: str, sub: str | None, key: str, value: str) -> str:
    header = f'[{section} "{sub}"]' if sub is not None else f"[{section}]"
    return f"{header}\n\t{key} = {value}\n"


@pytest.mark.parametrize(("section", "sub", "key", "value"), EXECUTING, ids=lambda v: str(v))
def test_every_executing_key_is_dropped(section: str, sub: str | None, key: str, value: str) -> None:
    kept, dropped = sanitize(_text(section, sub, key, value) + _text("user", None, "name", "control"))
    assert dropped and key.lower() in dropped[0].lower()
    assert [(e.name, e.value) for e in parse(kept)] == [("user.name", "control")]  # the harmless key stays


@pytest.mark.parametrize(("section", "sub", "key", "value"), SAFE, ids=lambda v: str(v))
def test_safe_keys_are_kept_with_their_value(section: str, sub: str | None, key: str, value: str) -> None:
    kept, dropped = sanitize(_text(section, sub, key, value))
    assert dropped == []
    assert parse(kept) == [Entry(section.lower(), sub, key.lower(), value)]


@pytest.mark.parametrize("url", ["ext::sh -c touch% /tmp/pwned", "fake::anything", "testgit::/x"])
def test_remote_urls_that_name_a_transport_program_are_dropped(url: str) -> None:
    assert not is_safe(Entry("remote", "origin", "url", url))
    assert is_safe(Entry("remote", "origin", "url", "git@host.test:r.git"))


@pytest.mark.parametrize(
    "text",
    [
        '[core]\n\tpager = "unterminated\n',
        "[core\n\tbare = true\n",
        "key = value\n",
        '[remote "a\n',
        "[core]\n\tbare = tr\\ue\n",
        "[core]\n\tbare\0 = true\n",
        "[co re]\n\tbare = true\n",
        "[core]\n\t1bare = true\n",
    ],
)
def test_text_git_would_read_differently_keeps_nothing(text: str) -> None:
    assert sanitize(text)[0] == ""
    with pytest.raises(Unreadable):
        parse(text)


SYNTAX = [
    "[core]\n\tbare = false\n",
    "[core] bare = false\n",
    "[Core]\n\tBaRe = false\n",
    '[remote "Or igin"]\n\turl = x\n',
    '[remote "a\\"b\\\\c"]\n\turl = x\n',
    "[remote.Origin]\n\turl = x\n",
    "[user]\n\tname = A  B  \n",
    '[user]\n\tname = "  A " B # not a comment" ; comment\n',
    "[user]\n\tname = a\\\n continued\n",
    '[user]\n\tname = "tab\\there" \\n\n',
    "[core]\n\tbare\n",
    "; comment\n# comment\n[core]\n\n\tbare = true ; trailing\n",
    "\ufeff[core]\n\tbare = true\n",
    "[core]\r\n\tbare = true\r\n",
    "[alias]\n\tst = !sh -c 'echo x'\n[user]\n\temail = a@b\n",
    "[a]\nb=1\nb=2\n[a]\nb=3\n",
]


def _git_list(path: Path) -> list[tuple[str, str | None]]:
    out = subprocess.run(
        [GIT, "config", "--file", str(path), "--no-includes", "--list", "--null"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    pairs = []
    for item in filter(None, out.split("\0")):
        name, sep, value = item.partition("\n")
        pairs.append((name, value if sep else None))
    return pairs


def _ours(entries: list[Entry]) -> list[tuple[str, str | None]]:
    return [
        (e.name.lower() if e.subsection is None else f"{e.section}.{e.subsection}.{e.key}", e.value)
        for e in entries
    ]


@needs_git
@pytest.mark.parametrize("text", SYNTAX)
def test_the_parser_reads_what_git_reads(text: str, tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(text, encoding="utf-8")
    assert _ours(parse(text)) == _git_list(path)
    rendered = tmp_path / "rendered"
    rendered.write_text(render(parse(text)), encoding="utf-8")
    assert _git_list(rendered) == _git_list(path)


@needs_git
def test_random_configs_never_keep_what_git_would_read_as_executing(tmp_path: Path) -> None:
    """Random mixes of tricky syntax: whatever git reads from the sanitized text is on the allow list and has
    the value git read from the original."""
    rng = random.Random(20261202)
    pieces = [
        *SYNTAX,
        *(_text(*row) for row in EXECUTING),
        *(_text(*row) for row in SAFE),
        "\\\n",
        '"',
        "[",
        "]\n",
    ]
    for i in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 6)))
        original = tmp_path / f"c{i}"
        original.write_text(text, encoding="utf-8")
        kept, _ = sanitize(text)
        cleaned = tmp_path / f"s{i}"
        cleaned.write_text(kept, encoding="utf-8")
        after = _git_list(cleaned)
        for name, _value in after:
            section, _, key = name.rpartition(".")
            top, _, sub = section.partition(".")
            assert is_safe(Entry(top, sub or None, key, _value)), (text, name)
        git_read = subprocess.run([GIT, "config", "--file", str(original), "--list"], capture_output=True)
        if git_read.returncode == 0:
            assert set(after) <= set(_git_list(original)), text


def test_against_what_was_there_only_the_runs_executing_additions_go() -> None:
    from netjail.jail.gitconfig import executing_pairs, sanitize_against

    users = "[alias]\n\tmine = !echo mine\n[core]\n\tbare = false\n"
    before = set(executing_pairs(users))
    assert sanitize_against(users, before) == (users, [])  # untouched: nothing rewritten
    changed = users + "[core]\n\tfsmonitor = /tmp/x\n[user]\n\tname = n\n[alias]\n\tmine = !echo changed\n"
    kept, dropped = sanitize_against(changed, before)
    assert dropped == ["core.fsmonitor", "alias.mine"]  # a changed value is an addition too
    assert [(e.name, e.value) for e in parse(kept)] == [
        ("alias.mine", "!echo mine"),
        ("core.bare", "false"),
        ("user.name", "n"),
    ]
    assert sanitize_against('[core]\n\tpager = "x\n', before)[0] == ""  # unreadable: only safe keys
