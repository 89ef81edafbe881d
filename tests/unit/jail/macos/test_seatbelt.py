"""The macOS seatbelt profile, tested by what it says: golden rules per settings feature, hostile paths, the
precedence rules, the proxy port rule, a parser-level check of every profile generated here, the Linux backend's
argument list for the same settings, and a comparison with the profile srt 0.0.78 generates (every difference
is one of the deliberate ones in docs/macos.md, found by asking both profiles the same questions).

Nothing here runs sandbox-exec (tests/macos does, on a Mac). `decide()` answers "allow or deny?" the way SBPL
documents it (last match wins); every netjail profile must give the same answers under the other reading some
reports describe (a rule naming the exact operation beats a wildcard), so the profile is right under both.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from netjail.jail.linux.bwrap import bwrap_args
from netjail.jail.macos.policy import SeatbeltPolicy, ancestors_of, read_visible, seatbelt_policy
from netjail.jail.macos.sbpl import (
    MAX_STRING_BYTES,
    SbplError,
    deny_filters,
    regex_any_case,
    sbpl_comment,
    sbpl_string,
)
from netjail.jail.macos.seatbelt import (
    EGRESS_SERVICES,
    KEYCHAIN_SERVICES,
    MACH_SERVICES,
    MDNS_SOCKETS,
    dangerous_name_regexes,
    dangerous_names,
    profile,
)
from netjail.jail.paths import path_rules
from netjail.jail.spec import JailSpec
from netjail.proxy.ca import RunCA
from netjail.settings import Settings
from tests.support.sbpl import Query, String, check, decide, parse

REPO = Path(__file__).resolve().parents[4]
PORT = 49152
HOME = "/Users/me"
PROJ = "/Users/me/proj"


def make(**changes: Any) -> SeatbeltPolicy:
    base = SeatbeltPolicy(proxy_port=PORT, writable=(PROJ,), dangerous_roots=(PROJ,), log_tag="t")
    return replace(base, **changes)


def rules_of(policy: SeatbeltPolicy) -> list:
    return check(profile(policy))


def ask(rules: list, q: Query) -> str:
    """The decision, required to be the same under both readings of SBPL's precedence."""
    plain, specific = decide(rules, q), decide(rules, q, specific_wins=True)
    assert plain == specific, f"the two readings of SBPL disagree on {q}"
    return plain


def reads(rules: list, path: str) -> bool:
    return ask(rules, Query("file-read-data", path=path)) == "allow"


def writes(rules: list, path: str) -> bool:
    return all(
        ask(rules, Query(op, path=path)) == "allow"
        for op in ("file-write-data", "file-write-create", "file-write-unlink")
    )


def block(text: str, start: str) -> str:
    """The rule that starts with the line `start`, up to its closing parenthesis."""
    lines = text.splitlines()
    i = lines.index(start)
    out = []
    depth = 0
    for line in lines[i:]:
        out.append(line)
        code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', line).split(";")[0]
        depth += code.count("(") - code.count(")")
        if depth <= 0:
            break
    return "\n".join(out)


# -- strings ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ("/a/plain", '"/a/plain"'),
        ('/a/"quoted"', r'"/a/\"quoted\""'),
        ("/a/back\\slash", r'"/a/back\\slash"'),
        ("/a/[brackets]*?", '"/a/[brackets]*?"'),  # no pattern syntax in a literal
        ("/a/(paren) ;semi", '"/a/(paren) ;semi"'),
        ("/a/café", '"/a/café"'),  # UTF-8, as is
        ("/a/日本", '"/a/日本"'),
    ],
)
def test_strings_are_escaped_and_read_back(text: str, literal: str) -> None:
    assert sbpl_string(text) == literal
    assert parse(f"(subpath {literal})") == [[parse("subpath")[0], String(text)]]


@pytest.mark.parametrize("bad", ["\n", "\r", "\x00", "\t", "\x1b", "\x7f", "\x85"])
def test_control_characters_are_refused(bad: str) -> None:
    with pytest.raises(SbplError, match="control character"):
        sbpl_string(f"/a/x{bad}y")


def test_too_long_strings_are_refused() -> None:
    sbpl_string("/" + "a" * (MAX_STRING_BYTES - 1))
    with pytest.raises(SbplError, match="longer than"):
        sbpl_string("/" + "é" * MAX_STRING_BYTES)


def test_comments_cannot_be_broken_out_of() -> None:
    assert sbpl_comment("a\nb\x1bc") == "a\\nb\\x1bc"


# -- hostile paths --------------------------------------------------------------------------------------------------

HOSTILE = [
    'with "quotes"',
    "back\\slash",
    "a[bc]d",
    "star*and?question",
    "(parens) ;semicolon",
    "trailing\\",
    "café",
    "спрятано",
    "  spaces  ",
    '#"not-a-regex"',
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_literal_in_every_rule(name: str) -> None:
    hidden = f"{PROJ}/{name}"
    ro = f"{PROJ}/ro {name}"
    policy = make(hidden=(hidden,), read_only=(ro,))
    rules = rules_of(policy)
    for path in (hidden, f"{hidden}/child"):
        assert not reads(rules, path) and not writes(rules, path), path
    assert not writes(rules, ro) and reads(rules, ro)
    # a name the pattern reading would have matched instead is untouched
    for lookalike in (f"{PROJ}/abd", f"{PROJ}/acd", f"{PROJ}/with x", f"{PROJ}/stXrandXquestion"):
        assert reads(rules, lookalike) and writes(rules, lookalike)


def test_non_ascii_names_are_ruled_in_both_normal_forms() -> None:
    nfc = unicodedata.normalize("NFC", f"{PROJ}/café")
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfc != nfd
    text = profile(make(hidden=(nfc,)))
    assert f"(subpath {sbpl_string(nfc)})" in text and f"(subpath {sbpl_string(nfd)})" in text
    rules = check(text)
    assert not reads(rules, nfc) and not reads(rules, nfd + "/x")


def test_a_deny_on_an_unwritable_name_widens_an_allow_is_refused() -> None:
    odd = f"{PROJ}/new\nline"
    rules = rules_of(make(hidden=(odd,), read_only=(f"{PROJ}/tab\there",)))
    assert not reads(rules, odd) and not reads(rules, odd + "/x")
    assert not writes(rules, f"{PROJ}/tab\there")
    assert reads(rules, f"{PROJ}/newline")  # `.` stands for one character, not for none
    assert deny_filters("literal", odd) == ['(regex "^/Users/me/proj/new.line$")']
    for field_name in ("writable", "reallowed"):
        with pytest.raises(SbplError, match="control character"):
            profile(make(**{field_name: (odd,)}))
    with pytest.raises(SbplError):
        profile(make(unix_sockets=(odd,)))


def test_a_deny_on_a_path_too_long_for_one_string_is_widened_to_its_prefix() -> None:
    deep = PROJ + "/d" * (MAX_STRING_BYTES // 2 + 10)
    rules = rules_of(make(hidden=(deep,)))
    assert not reads(rules, deep) and not reads(rules, deep + "/x")
    assert reads(rules, PROJ + "/other")
    with pytest.raises(SbplError, match="longer than"):
        profile(make(writable=(deep,)))


# -- the proxy port and the rest of the network -------------------------------------------------------------------


def test_network_is_only_the_proxy_port_by_remote_address() -> None:
    text = profile(make())
    network = [line for line in text.splitlines() if "network" in line and not line.startswith(";")]
    assert network == [
        f'(allow network-outbound (remote ip "localhost:{PORT}"))',
        "(deny network-outbound",
    ]
    assert "(local ip" not in text
    rules = check(text)
    assert ask(rules, Query("network-outbound", remote=("127.0.0.1", PORT))) == "allow"
    assert ask(rules, Query("network-outbound", remote=("::1", PORT))) == "allow"
    for remote in [("127.0.0.1", PORT + 1), ("127.0.0.1", 53), ("93.184.216.34", 443), ("10.0.0.1", PORT)]:
        assert ask(rules, Query("network-outbound", remote=remote)) == "deny", remote
    for op in ("network-bind", "network-inbound"):
        assert (
            ask(rules, Query(op, local=("127.0.0.1", PORT))) == "deny"
        )  # the command cannot take the port over
    # a Unix socket may be created (socketpair), not bound or connected
    assert ask(rules, Query("system-socket", socket_domain="AF_UNIX")) == "allow"
    assert ask(rules, Query("network-outbound", socket_path="/private/tmp/agent.sock")) == "deny"
    assert ask(rules, Query("network-bind", socket_path=f"{PROJ}/app.sock")) == "deny"


def test_dns_through_the_system_resolver_is_denied() -> None:
    text = profile(make())
    assert block(text, "(deny network-outbound") == "\n".join(
        [
            "(deny network-outbound",
            '  (remote unix-socket (path-literal "/private/var/run/mDNSResponder"))',
            '  (remote unix-socket (path-literal "/var/run/mDNSResponder"))',
            '  (with message "t"))',
        ]
    )
    assert block(text, "(deny mach-lookup") == "\n".join(
        ["(deny mach-lookup", *[f'  (global-name "{s}")' for s in EGRESS_SERVICES], '  (with message "t"))']
    )


def test_allow_local_binding() -> None:
    text = profile(make(local_binding=True))
    assert (
        '(allow network-bind (local ip "*:*"))\n'
        '(allow network-inbound (local ip "*:*"))\n'
        '(allow network-outbound (remote ip "localhost:*"))'
    ) in text
    rules = check(text)
    assert ask(rules, Query("network-bind", local=("127.0.0.1", 8080))) == "allow"
    assert ask(rules, Query("network-outbound", remote=("127.0.0.1", 8080))) == "allow"
    assert ask(rules, Query("network-outbound", remote=("93.184.216.34", 443))) == "deny"


def test_allow_unix_sockets() -> None:
    text = profile(make(unix_sockets=("/var/run/docker.sock", "/private/var/run/docker.sock")))
    assert block(text, "(allow network-outbound") == "\n".join(
        [
            "(allow network-outbound",
            '  (remote unix-socket (subpath "/var/run/docker.sock"))',
            '  (remote unix-socket (subpath "/private/var/run/docker.sock")))',
        ]
    )
    rules = check(text)
    assert ask(rules, Query("system-socket", socket_domain="AF_UNIX")) == "allow"
    assert ask(rules, Query("network-outbound", socket_path="/var/run/docker.sock")) == "allow"
    assert ask(rules, Query("network-outbound", socket_path="/private/tmp/agent.sock")) == "deny"
    for mdns in MDNS_SOCKETS:
        assert ask(rules, Query("network-outbound", socket_path=mdns)) == "deny"


def test_allow_all_unix_sockets_still_keeps_the_resolver_closed() -> None:
    rules = rules_of(make(all_unix_sockets=True))
    assert ask(rules, Query("network-outbound", socket_path="/private/tmp/agent.sock")) == "allow"
    assert ask(rules, Query("network-bind", socket_path="/Users/me/proj/app.sock")) == "allow"
    for mdns in MDNS_SOCKETS:
        assert ask(rules, Query("network-outbound", socket_path=mdns)) == "deny"


def test_naming_the_resolver_socket_opens_it() -> None:
    text = profile(make(unix_sockets=MDNS_SOCKETS))
    assert "path-literal" not in text
    rules = check(text)
    assert ask(rules, Query("network-outbound", socket_path=MDNS_SOCKETS[0])) == "allow"


def test_allow_mach_lookup() -> None:
    text = profile(
        make(mach_services=("com.example.exact", "com.example.prefix.*", "com.apple.trustd.agent"))
    )
    assert block(text, "(allow mach-lookup").startswith('(allow mach-lookup\n  (global-name "com.apple.audio')
    assert (
        "(allow mach-lookup\n"
        '  (global-name "com.example.exact")\n'
        '  (global-name-prefix "com.example.prefix.")\n'
        '  (global-name "com.apple.trustd.agent"))'
    ) in text
    rules = check(text)
    for name, verdict in [
        ("com.example.exact", "allow"),
        ("com.example.exactly", "deny"),
        ("com.example.prefix.anything", "allow"),
        ("com.apple.trustd.agent", "allow"),  # named exactly
        ("com.apple.dnssd.service", "deny"),
        ("com.apple.SecurityServer", "deny"),
        *((s, "allow") for s in MACH_SERVICES),
    ]:
        assert ask(rules, Query("mach-lookup", name=name)) == verdict, name


def test_a_wildcard_mach_lookup_does_not_open_egress_services() -> None:
    rules = rules_of(make(mach_services=("*",)))
    assert ask(rules, Query("mach-lookup", name="com.example.anything")) == "allow"
    assert ask(rules, Query("mach-lookup", name=KEYCHAIN_SERVICES[0])) == "allow"  # asked for everything
    for service in EGRESS_SERVICES:
        assert ask(rules, Query("mach-lookup", name=service)) == "deny"


def test_allow_pty() -> None:
    assert "pseudo-tty" not in profile(make())
    text = profile(make(allow_pty=True))
    assert (
        "(allow pseudo-tty)\n"
        '(allow file-ioctl (literal "/dev/ptmx") (regex "^/dev/ttys"))\n'
        '(allow file-read* file-write* (literal "/dev/ptmx") (regex "^/dev/ttys"))'
    ) in text
    assert writes(check(text), "/dev/ttys003") and not writes(rules_of(make()), "/dev/ttys003")


# -- files: reads -----------------------------------------------------------------------------------------------


def test_reads_golden() -> None:
    text = profile(
        make(
            hidden=(f"{HOME}/.ssh", HOME, f"{HOME}/proj/.env"),
            reallowed=(PROJ,),
            labels={HOME: "denyRead ~"},
        )
    )
    start = text.index("(allow file-read*)")
    end = text.index("\n\n", start)
    assert text[start:end] == "\n".join(
        [
            "(allow file-read*)",
            "(deny file-read*",
            "  ; denyRead ~",
            '  (subpath "/Users/me")',
            "  ; denyRead",
            '  (subpath "/Users/me/.ssh")',
            '  (with message "t"))',
            "(allow file-read*",
            "  ; allowRead",
            '  (subpath "/Users/me/proj"))',
            "(deny file-read*",
            "  ; denyRead",
            '  (subpath "/Users/me/proj/.env")',
            '  (with message "t"))',
            "(allow file-read-metadata",
            "  ; stat() on the directories above an allowRead path, so realpath() can reach it",
            '  (literal "/Users/me"))',
        ]
    )


# (hidden, reallowed, path, readable): the deepest entry over a path decides; allowRead wins a tie.
PRECEDENCE = [
    (["/a"], [], "/a/x", False),
    (["/a"], [], "/b/x", True),
    (["/a"], ["/a/b"], "/a/b/x", True),
    (["/a"], ["/a/b"], "/a/c", False),
    (["/a", "/a/b/c"], ["/a/b"], "/a/b/c/x", False),  # denyRead inside allowRead wins again
    (["/a", "/a/b/c"], ["/a/b"], "/a/b/d", True),
    (["/a", "/a/b/c"], ["/a/b", "/a/b/c/d"], "/a/b/c/d/x", True),  # and so on, at any depth
    (["/a", "/a/b/c"], ["/a/b", "/a/b/c/d"], "/a/b/c/e", False),
    (["/a"], ["/a"], "/a/x", True),  # the same path in both: allowRead wins, as in srt
    (["/"], ["/usr"], "/usr/bin/env", True),
    (["/"], ["/usr"], "/etc/hosts", False),
    (["/a/b"], ["/a"], "/a/b/x", False),  # an allowRead above a denyRead does not undo it
]


@pytest.mark.parametrize(("hidden", "reallowed", "path", "readable"), PRECEDENCE)
def test_read_precedence(hidden: list[str], reallowed: list[str], path: str, readable: bool) -> None:
    policy = make(writable=(), dangerous_roots=(), hidden=tuple(hidden), reallowed=tuple(reallowed))
    assert read_visible(policy, path) is readable
    assert reads(rules_of(policy), path) is readable


def test_root_denied_still_lets_programs_start() -> None:
    rules = rules_of(make(writable=(), dangerous_roots=(), hidden=("/",), reallowed=("/usr",)))
    assert reads(rules, "/")
    assert not reads(rules, "/etc")


def test_stat_is_allowed_only_on_the_way_to_an_allow_read_path() -> None:
    rules = rules_of(make(hidden=(HOME,), reallowed=(f"{HOME}/src/proj",)))
    for path in (HOME, f"{HOME}/src"):
        assert ask(rules, Query("file-read-metadata", path=path, is_dir=True)) == "allow"
        assert ask(rules, Query("file-read-data", path=path, is_dir=True)) == "deny"  # no listing
    assert ask(rules, Query("file-read-metadata", path=f"{HOME}/.ssh", is_dir=True)) == "deny"


# -- files: writes --------------------------------------------------------------------------------------------------


def test_writes_golden() -> None:
    text = profile(
        make(
            writable=(PROJ, "/private/tmp/netjail-r/tmp"),
            read_only=(f"{PROJ}/locked", f"{PROJ}/.git/hooks"),
            hidden=(f"{PROJ}/secrets",),
            never_writable=(f"{HOME}/.local/state/netjail",),
            dangerous_roots=(PROJ,),
        )
    )
    start = text.index("(allow file-write*\n  ; allowWrite")
    assert text[start:] == "\n".join(
        [
            "(allow file-write*",
            "  ; allowWrite",
            '  (subpath "/Users/me/proj")',
            '  (subpath "/private/tmp/netjail-r/tmp"))',
            "(deny file-write*",
            "  ; denyRead",
            '  (subpath "/Users/me/proj/secrets")',
            '  (with message "t"))',
            "",
            "; == netjail's write protections: after every allow, so they always win",
            "(deny file-write*",
            "  ; denyWrite",
            '  (subpath "/Users/me/proj/locked")',
            '  (subpath "/Users/me/proj/.git/hooks")',
            "  ; netjail's own state",
            '  (subpath "/Users/me/.local/state/netjail")',
            f"  (regex {sbpl_string('^' + regex_any_case('/Users/me/.local/state/netjail') + '(/.*)?$')})",
            "  ; files that run code or redirect tools later (mandatory denies), at any depth below /Users/me/proj",
            *[f"  (regex {sbpl_string(rx)})" for rx in dangerous_name_regexes(PROJ, False)],
            '  (with message "t"))',
            "(deny file-write-unlink file-write-create",
            "  ; the directories holding a protected path cannot be renamed, removed or replaced",
            '  (literal "/Users/me/proj")',
            '  (literal "/Users/me/proj/.git")',
            '  (with message "t"))',
            "",
        ]
    )


def test_writes_only_to_allow_write_and_devices() -> None:
    rules = rules_of(make())
    assert writes(rules, f"{PROJ}/src/main.c")
    for path in (f"{HOME}/other", "/private/tmp/x", "/etc/hosts", "/Users/me"):
        assert not writes(rules, path), path
    for device in ("/dev/null", "/dev/stdout", "/dev/tty"):
        assert ask(rules, Query("file-write-data", path=device)) == "allow"
    assert ask(rules, Query("file-write-data", path="/dev/disk0")) == "deny"


# (writable, hidden, reallowed, read_only, path, writable?)
WRITE_CASES = [
    ([PROJ], [], [], [], f"{PROJ}/x", True),
    ([PROJ], [f"{PROJ}/secret"], [], [], f"{PROJ}/secret/x", False),  # no blind writes into denyRead
    ([PROJ], [HOME], [], [], f"{PROJ}/x", False),  # allowWrite under denyRead, not re-allowed: hidden wins
    ([PROJ], [HOME], [PROJ], [], f"{PROJ}/x", True),  # re-allowed for reading: writable again
    ([HOME], [HOME], [PROJ], [], f"{PROJ}/x", True),
    ([HOME], [HOME], [PROJ], [], f"{HOME}/x", False),
    ([f"{PROJ}/build"], [HOME], [PROJ], [], f"{PROJ}/build/x", True),
    ([f"{PROJ}/build"], [HOME], [PROJ], [], f"{PROJ}/x", False),  # readable, but not allowWrite
    ([PROJ], [HOME, f"{PROJ}/.env"], [PROJ], [], f"{PROJ}/.env", False),
    ([PROJ], [], [], [PROJ], f"{PROJ}/x", False),  # denyWrite above allowWrite wins
    ([f"{PROJ}/out"], [], [], [PROJ], f"{PROJ}/out/x", False),
]


@pytest.mark.parametrize(("writable", "hidden", "reallowed", "read_only", "path", "expected"), WRITE_CASES)
def test_write_precedence(
    writable: list[str],
    hidden: list[str],
    reallowed: list[str],
    read_only: list[str],
    path: str,
    expected: bool,
) -> None:
    policy = make(
        writable=tuple(writable),
        hidden=tuple(hidden),
        reallowed=tuple(reallowed),
        read_only=tuple(read_only),
        dangerous_roots=tuple(writable),
    )
    assert writes(rules_of(policy), path) is expected


@pytest.mark.parametrize("name", dangerous_names(False))
@pytest.mark.parametrize("where", ["", "a/", "a/b/c/d/e/f/"])
def test_mandatory_denies_hold_at_any_depth_existing_or_not(name: str, where: str) -> None:
    rules = rules_of(make())
    assert not writes(rules, f"{PROJ}/{where}{name}")
    assert not writes(rules, f"{PROJ}/{where}{name}/inside")
    assert writes(rules, f"{PROJ}/{where}{name}.bak") and writes(rules, f"{PROJ}/{where}x{name}")


@pytest.mark.parametrize(
    "spelling", [".BASHRC", ".BashRC", ".Git/Hooks/post-checkout", ".GIT", "sub/.VSCODE"]
)
def test_mandatory_denies_hold_in_any_case(spelling: str) -> None:
    """A new `.BASHRC` on a case-insensitive volume is the `.bashrc` bash reads."""
    rules = rules_of(make())
    assert ask(rules, Query("file-write-create", path=f"{PROJ}/{spelling}")) == "deny"


def test_netjails_state_cannot_be_created_under_another_case() -> None:
    state = f"{PROJ}/.local/state/netjail"
    rules = rules_of(make(never_writable=(state,)))
    for spelling in (state, f"{PROJ}/.LOCAL/State/NETJAIL/runs", f"{PROJ}/.Local"):
        assert ask(rules, Query("file-write-create", path=spelling)) == "deny", spelling
    assert writes(rules, f"{PROJ}/.localx") and writes(rules, f"{PROJ}/.local/share/x")


def test_mandatory_denies_cover_the_parents_of_two_part_names() -> None:
    rules = rules_of(make())
    for parent in (".git", ".claude", "sub/.git"):
        path = f"{PROJ}/{parent}"
        for op in (
            "file-write-create",
            "file-write-unlink",
        ):  # cannot become a link to an unprotected hooks dir
            assert ask(rules, Query(op, path=path)) == "deny", (op, path)
    assert writes(rules, f"{PROJ}/.git/objects/ab/cdef")  # an existing repository still works
    assert writes(rules, f"{PROJ}/.claude/notes.md")  # settings.json is protected since issue 10
    assert not writes(rules, f"{PROJ}/.claude/settings.json")


def test_allow_git_config() -> None:
    closed, opened = rules_of(make()), rules_of(make(allow_git_config=True))
    assert not writes(closed, f"{PROJ}/.git/config") and writes(opened, f"{PROJ}/.git/config")
    assert not writes(opened, f"{PROJ}/.git/hooks/pre-commit")


def test_protections_win_over_every_allow() -> None:
    policy = make(
        writable=(PROJ, f"{HOME}/.local"),
        hidden=(HOME,),
        reallowed=(PROJ, f"{HOME}/.local"),
        never_writable=(f"{HOME}/.local/state/netjail",),
        read_only=(f"{PROJ}/netjail.json",),
    )
    rules = rules_of(policy)
    assert writes(rules, f"{HOME}/.local/share/x")
    assert not writes(rules, f"{HOME}/.local/state/netjail/runs/x")
    assert not writes(rules, f"{PROJ}/netjail.json") and reads(rules, f"{PROJ}/netjail.json")


def test_directories_holding_a_protected_path_cannot_be_moved() -> None:
    policy = make(
        writable=(PROJ, "/private/tmp/netjail-r/tmp"),
        hidden=(f"{PROJ}/a/secret",),
        read_only=(f"{PROJ}/b/c/locked",),
        never_writable=(f"{HOME}/.config/netjail",),
    )
    rules = rules_of(policy)
    for directory in (PROJ, f"{PROJ}/a", f"{PROJ}/b", f"{PROJ}/b/c"):
        for op in ("file-write-unlink", "file-write-create"):
            assert ask(rules, Query(op, path=directory)) == "deny", (op, directory)
    assert writes(rules, f"{PROJ}/a/other") and writes(rules, f"{PROJ}/b/c/other")


# -- every profile passes the checker; the checker refuses what is not a profile -----------------------------------

FEATURES: dict[str, SeatbeltPolicy] = {
    "minimal": make(writable=(), dangerous_roots=()),
    "files": make(
        writable=(PROJ, "/private/tmp/r/tmp"),
        hidden=(HOME, f"{PROJ}/.env", "/private/tmp"),
        reallowed=(PROJ, "/private/tmp/r"),
        read_only=(f"{PROJ}/locked",),
        never_writable=(f"{HOME}/.local/state/netjail",),
    ),
    "network": make(local_binding=True, all_unix_sockets=True, mach_services=("*",)),
    "sockets": make(unix_sockets=("/var/run/docker.sock",), mach_services=("com.example.x",)),
    "pty": make(allow_pty=True, allow_git_config=True),
    "hostile": make(hidden=tuple(f"{PROJ}/{n}" for n in HOSTILE), writable=(f'{HOME}/we[ir]d "dir"',)),
}


@pytest.mark.parametrize("name", FEATURES)
def test_every_profile_is_balanced_and_uses_only_known_operations(name: str) -> None:
    text = profile(FEATURES[name])
    rules = check(text)
    assert text.startswith("(version 1)\n(deny default")
    assert all(r[0].name in ("allow", "deny") for r in rules)
    assert text.count("(") - text.count("\\(") >= 1  # sanity: the checker saw lists


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("(version 1)\n(allow file-read*", "unbalanced '('"),
        ("(version 1)\n(allow file-read*))", "unbalanced ')'"),
        ("(allow file-read*)", "start with (version 1)"),
        ("(version 1)\n(allow file-read-everything)", "unknown operation"),
        ('(version 1)\n(allow file-read* (subpaths "/x"))', "unknown filter"),
        ('(version 1)\n(allow file-read* (subpath "relative"))', "absolute path"),
        ('(version 1)\n(allow network-outbound (remote ip "127.0.0.1:80"))', "localhost:PORT"),
        ('(version 1)\n(allow file-read* (subpath "/a\nb"))', "control character"),
        ('(version 1)\n(allow file-read* (regex "^/a["))', "bad regex"),
        ("(version 1)\n(frobnicate)", "not a rule"),
        ('(version 1)\n(allow (subpath "/x"))', "operations first"),
    ],
)
def test_the_checker_refuses(text: str, problem: str) -> None:
    with pytest.raises(SbplError, match=re.escape(problem)):
        check(text)


# -- from a JailSpec: the same path rules as the bwrap backend -----------------------------------------------------


@dataclass
class Tree:
    root: Path
    home: Path
    work: Path
    state: Path
    config: Path
    temp: Path
    run_dir: Path
    spec: JailSpec
    settings: Settings
    policy: SeatbeltPolicy
    extra: dict[str, Any] = field(default_factory=dict)


def ca_at(directory: Path) -> RunCA:
    return RunCA(
        directory / "confdir", directory / "netjail-ca.pem", directory / "up.pem", directory / "jail.pem"
    )


def build_tree(
    tmp_path: Path, filesystem: dict[str, Any], network: dict[str, Any] | None = None, **top: Any
) -> Tree:
    root = tmp_path.resolve()
    home, work, temp = root / "home", root / "work", root / "hosttmp"
    state, config = root / "state", root / "config" / "netjail"
    for d in (home / ".ssh", work / ".git" / "hooks", work / "sub" / ".vscode", state / "runs", config, temp):
        d.mkdir(parents=True, exist_ok=True)
    (work / ".git" / "config").write_text("[core]\n")
    (work / ".bashrc").write_text("x\n")
    (home / ".ssh" / "id_ed25519").write_text("key\n")
    settings = Settings.model_validate(
        {
            "network": {"allowedDomains": [], "deniedDomains": [], **(network or {})},
            "filesystem": {"denyRead": [], "allowWrite": ["."], "denyWrite": [], **filesystem},
            **top,
        }
    )
    cfg = root / "settings.json"
    cfg.write_text("{}")
    rules = path_rules(settings, work, extra_read_only=(cfg,))
    spec = JailSpec(
        argv=("/bin/sh", "-c", "true"),
        cwd=work,
        env={},
        rules=rules,
        ca=ca_at(state / "runs" / "r" / "proxy"),
        allow_pty=settings.allow_pty,
        private_state=(state, config),
        files_dir=state / "runs" / "r" / "proxy",
    )
    run_dir = temp / "netjail-r"
    policy = seatbelt_policy(
        spec,
        settings.network,
        allow_git_config=settings.filesystem.allow_git_config,
        proxy_port=PORT,
        run_dir=str(run_dir),
        run_tmp=str(run_dir / "tmp"),
        host_temp_dirs=(str(temp),),
        log_tag="t",
    )
    return Tree(root, home, work, state, config, temp, run_dir, spec, settings, policy)


def test_protected_names_that_do_not_exist_yet_are_denied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10: Linux watches missing protected names; the profile denies them (home-level ones included)."""
    monkeypatch.setenv("HOME", str(tmp_path.resolve() / "home"))
    tree = build_tree(tmp_path, {"allowWrite": [".", "../home"]})
    missing = [tree.home / ".local" / "bin", tree.home / ".config" / "git", tree.work / ".git" / "commondir"]
    assert all(not p.exists() for p in missing)
    assert {str(p) for p in missing} <= set(tree.policy.read_only)
    rules = rules_of(tree.policy)
    for path in (*missing, tree.home / ".local" / "bin" / "git"):
        assert not writes(rules, str(path)), path
    assert writes(rules, str(tree.home / ".local" / "share" / "x")) and writes(
        rules, str(tree.work / "x.txt")
    )


def test_policy_from_a_spec(tmp_path: Path) -> None:
    (tmp_path / "work" / "secrets" / "public").mkdir(parents=True)
    tree = build_tree(
        tmp_path,
        {"denyRead": ["secrets", "../home/.ssh"], "allowRead": ["secrets/public"], "denyWrite": ["sub"]},
        {"allowUnixSockets": ["../sock/agent.sock"], "allowMachLookup": ["com.example.*"]},
    )
    p, w = tree.policy, tree.work
    assert p.writable == (str(w), str(tree.run_dir / "tmp"))
    assert set(p.hidden) == {
        str(w / "secrets"),
        str(tree.home / ".ssh"),
        str(tree.state),
        str(tree.config),
        str(tree.temp),
    }
    assert p.reallowed == (str(w / "secrets" / "public"), str(tree.run_dir))
    assert p.never_writable == (str(tree.state), str(tree.config))
    assert str(w / "sub") in p.read_only and str(w / ".bashrc") in p.read_only
    assert str(w / ".git" / "hooks") in p.read_only and str(tree.root / "settings.json") in p.read_only
    assert p.dangerous_roots == (
        str(w),
    )  # not the run's TMPDIR: it is deleted, and nothing runs from it later
    assert p.unix_sockets == (str(tree.root / "sock" / "agent.sock"),)
    assert p.mach_services == ("com.example.*",)
    assert p.labels[str(w / ".bashrc")] == "mandatory deny (found on disk)"
    rules = check(profile(p))
    assert reads(rules, str(tree.run_dir / "trust" / "ca.pem")) and not writes(
        rules, str(tree.run_dir / "trust" / "x")
    )
    assert writes(rules, str(tree.run_dir / "tmp" / "pip-build"))
    assert not reads(rules, str(tree.temp / "someone-elses-file")) and not reads(
        rules, str(tree.state / "runs")
    )


def test_the_host_temp_directory_stays_visible_where_the_run_uses_it(tmp_path: Path) -> None:
    work = tmp_path.resolve() / "hosttmp" / "proj"
    work.mkdir(parents=True)
    tree = build_tree(tmp_path, {"allowWrite": [str(work)]})
    rules = check(profile(tree.policy))
    assert reads(rules, str(work / "x")) and writes(rules, str(work / "x"))
    assert not reads(rules, str(tree.temp / "other"))
    # allowWrite naming the temp directory itself: it is not hidden at all
    tree = build_tree(tmp_path, {"allowWrite": [str(tree.temp)]})
    assert str(tree.temp) not in tree.policy.hidden


def test_a_working_directory_with_pattern_characters_keeps_its_denies(tmp_path: Path) -> None:
    """The working directory is a name, never a pattern (srt once lost every relative deny under `a[b]`)."""
    work = tmp_path / "proj[1]"
    (work / "secrets").mkdir(parents=True)
    (work / "lit[x]").mkdir()
    (work / "litx").mkdir()
    settings = Settings.model_validate(
        {
            "network": {"allowedDomains": [], "deniedDomains": []},
            "filesystem": {
                "denyRead": ["secrets", "lit[x]"],
                "allowWrite": ["."],
                "denyWrite": [],
                "allowRead": [],
            },
        }
    )
    rules = path_rules(settings, work.resolve())
    assert rules.writable == (work.resolve(),)
    # a deny spelt like a pattern names both readings: the pattern's match and the literal name
    assert set(rules.hidden) == {
        work.resolve() / "secrets",
        work.resolve() / "litx",
        work.resolve() / "lit[x]",
    }


def test_a_deny_write_entry_that_does_not_exist_yet_is_denied_by_its_literal_path(tmp_path: Path) -> None:
    """F9 on macOS: the profile denies the path itself; nothing is created for it (Linux needs a stub)."""
    tree = build_tree(tmp_path, {"denyWrite": ["./.env", "conf/.secrets"]})
    w = tree.work
    assert str(w / ".env") in tree.policy.read_only and str(w / "conf" / ".secrets") in tree.policy.read_only
    assert not os.path.lexists(w / ".env") and not os.path.lexists(w / "conf")
    rules = check(profile(tree.policy))
    assert not writes(rules, str(w / ".env")) and not writes(rules, str(w / "conf" / ".secrets"))
    assert writes(rules, str(w / ".env.example")) and writes(rules, str(w / "conf" / "other"))


# -- the same settings through the Linux backend --------------------------------------------------------------------


def test_linux_and_macos_apply_the_same_path_rules(tmp_path: Path) -> None:
    for d in ("secrets/public/deeper", "locked", "build"):
        (tmp_path / "work" / d).mkdir(parents=True)
    (tmp_path / "work" / "token").write_text("t")
    tree = build_tree(
        tmp_path,
        {"denyRead": ["secrets", "token"], "allowRead": ["secrets/public"], "denyWrite": ["locked"]},
    )
    args = bwrap_args(tree.spec, "bwrap")
    twos = list(itertools.pairwise(args))
    pairs = list(zip(args, args[1:], args[2:], strict=False))
    rules = check(profile(tree.policy))
    rules_ = tree.spec.rules
    for (
        path
    ) in rules_.writable:  # bound through the descriptor the symlink check opened ("FD" when described)
        assert ("--bind-fd", "FD", str(path)) in pairs
        assert writes(rules, str(path / "new-file"))
    for path in rules_.read_only:
        assert ("--ro-bind", str(path), str(path)) in pairs
        assert not writes(rules, str(path)) and not writes(rules, str(path / "x"))
    for path in rules_.hidden:
        masked = ("--tmpfs", str(path)) in twos or ("--ro-bind", "/dev/null", str(path)) in pairs
        assert masked, path
        assert not reads(rules, str(path / "x")) and not writes(rules, str(path / "x"))
    for path in rules_.reallowed:
        assert ("--ro-bind-fd", "FD", str(path)) in pairs
        assert reads(rules, str(path / "deeper" / "x"))
    for path in tree.spec.private_state:
        assert ("--tmpfs", str(path)) in twos
        assert not reads(rules, str(path / "x")) and not writes(rules, str(path / "x"))
    assert reads(rules, str(tree.work / "build" / "x")) and writes(rules, str(tree.work / "build" / "x"))


# -- srt 0.0.78's profile for the same settings --------------------------------------------------------------------

SRT_VERSION = "0.0.78"
SRT_SCRIPT = """
const srt = process.env.NETJAIL_SRT_DIR;
const { wrapCommandWithSandboxMacOS } = await import(`${srt}/dist/sandbox/macos-sandbox-utils.js`);
const { getDefaultWritePaths } = await import(`${srt}/dist/sandbox/sandbox-utils.js`);
const p = JSON.parse(process.argv[1]);
// what srt's sandbox manager adds to every write policy
const defaults = getDefaultWritePaths({ denyRead: p.readConfig.denyOnly, allowRead: p.readConfig.allowWithinDeny });
p.writeConfig.allowOnly = [...defaults, ...p.writeConfig.allowOnly];
const wrapped = wrapCommandWithSandboxMacOS({ command: 'true', binShell: 'sh', needsNetworkRestriction: true, ...p });
process.stdout.write(JSON.stringify({ wrapped, defaults }));
"""


@pytest.fixture(scope="session")
def srt_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """srt's npm package: installed fresh with NETJAIL_TEST_SRT=1, else NETJAIL_SRT_DIR or /tmp/srt, else skip."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the comparison with srt needs it")
    if os.environ.get("NETJAIL_TEST_SRT") == "1":
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("NETJAIL_TEST_SRT=1 but npm is not installed")
        prefix = tmp_path_factory.mktemp("srt")
        subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(prefix),
                "--no-audit",
                "--no-fund",
                f"@anthropic-ai/sandbox-runtime@{SRT_VERSION}",
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
        return prefix / "node_modules" / "@anthropic-ai" / "sandbox-runtime"
    candidate = Path(os.environ.get("NETJAIL_SRT_DIR", "/tmp/srt/node_modules/@anthropic-ai/sandbox-runtime"))
    if not (candidate / "dist" / "sandbox" / "macos-sandbox-utils.js").is_file():
        pytest.skip(
            f"srt {SRT_VERSION} is not at {candidate} (set NETJAIL_TEST_SRT=1 to install it for the test)"
        )
    version = json.loads((candidate / "package.json").read_text())["version"]
    if version != SRT_VERSION:
        pytest.skip(f"srt at {candidate} is {version}, not {SRT_VERSION}")
    return candidate


def srt_profile(srt: Path, tree: Tree, hidden_literal: list[str]) -> tuple[str, list[str]]:
    """srt's profile for the tree's settings, given the same resolved paths netjail uses (so that what is compared
    is the profile, not the path resolution), run in the same working directory srt anchors its denies at."""
    rules = tree.spec.rules
    deny_write = [str(p) for p in rules.read_only if not p.name.startswith(".") and p.name != "settings.json"]
    net = tree.settings.network
    params = {
        "httpProxyPort": PORT,
        "readConfig": {
            "denyOnly": [str(p) for p in rules.hidden] + hidden_literal,
            "allowWithinDeny": [str(p) for p in rules.reallowed],
        },
        "writeConfig": {"allowOnly": [str(p) for p in rules.writable], "denyWithinAllow": deny_write},
        "allowUnixSockets": list(net.allow_unix_sockets),
        "allowAllUnixSockets": net.allow_all_unix_sockets,
        "allowLocalBinding": net.allow_local_binding,
        "allowMachLookup": list(net.allow_mach_lookup),
        "allowPty": tree.settings.allow_pty,
        "allowGitConfig": tree.settings.filesystem.allow_git_config,
    }
    done = subprocess.run(
        [shutil.which("node") or "node", "--input-type=module", "-e", SRT_SCRIPT, json.dumps(params)],
        cwd=tree.work,
        env={**os.environ, "HOME": str(tree.home), "NETJAIL_SRT_DIR": str(srt)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    out = json.loads(done.stdout)
    argv = shlex.split(out["wrapped"])
    return argv[argv.index("-p") + 1], out["defaults"]


def probes(tree: Tree, extra: list[str]) -> list[Query]:
    policy = tree.policy
    paths = set(extra)
    for group in (policy.writable, policy.read_only, policy.hidden, policy.reallowed, policy.never_writable):
        for p in group:
            paths |= {p, p + "/child", *ancestors_of(p)}
    for w in tree.spec.rules.writable:
        for name in [*dangerous_names(False), ".git", ".claude", "plain.txt"]:
            paths |= {f"{w}/{name}", f"{w}/a/b/{name}", f"{w}/{name}/x"}
    queries = []
    for p in sorted(paths):
        queries += [Query("file-read-data", path=p), Query("file-read-metadata", path=p, is_dir=True)]
        queries += [Query(op, path=p) for op in ("file-write-data", "file-write-create", "file-write-unlink")]
    for addr in [
        ("127.0.0.1", PORT),
        ("::1", PORT),
        ("127.0.0.1", PORT + 1),
        ("93.184.216.34", 443),
        ("127.0.0.1", 53),
    ]:
        queries.append(Query("network-outbound", remote=addr))
    for addr in [("127.0.0.1", PORT), ("127.0.0.1", 8080)]:
        queries += [Query("network-bind", local=addr), Query("network-inbound", local=addr)]
    sockets = [
        *policy.unix_sockets,
        *tree.settings.network.allow_unix_sockets,
        *MDNS_SOCKETS,
        "/private/tmp/x.sock",
    ]
    for s in sockets:
        queries += [Query("network-outbound", socket_path=s), Query("network-bind", socket_path=s)]
    names = [*MACH_SERVICES, *KEYCHAIN_SERVICES, *EGRESS_SERVICES, "com.example.thing", "com.other.thing"]
    queries += [Query("mach-lookup", name=n) for n in names]
    queries.append(Query("system-socket", socket_domain="AF_UNIX"))
    return queries


@dataclass
class Difference:
    q: Query
    srt: str
    netjail: str
    tree: Tree
    srt_defaults: list[str]
    hostile: list[str]


def _under(path: str | None, roots: Any) -> bool:
    return path is not None and any(
        path == str(r) or path.startswith(str(r).rstrip("/") + "/") for r in roots
    )


def _dangerous(d: Difference) -> bool:
    regexes = [rx for root in d.tree.policy.dangerous_roots for rx in dangerous_name_regexes(root, False)]
    return d.q.path is not None and any(re.search(rx, d.q.path) for rx in regexes)


# The deliberate differences, each documented in docs/macos.md under the same id and title. A difference found by
# the comparison that none of these explains fails the test: fix it or document it.
DELIBERATE: list[tuple[str, str, Callable[[Difference], bool]]] = [
    ("D1", "the proxy port is open outbound only",
     lambda d: d.q.operation in ("network-bind", "network-inbound") and d.q.local == ("127.0.0.1", PORT)),
    ("D2", "the run's own directory replaces srt's default write paths",
     lambda d: _under(d.q.path, [d.tree.run_dir]) or _under(d.q.path, d.srt_defaults)),
    ("D5", "the host's shared temporary directories are hidden", lambda d: _under(d.q.path, [d.tree.temp])),
    ("D6", "netjail's own state and settings are hidden and never writable",
     lambda d: _under(d.q.path, [d.tree.state, d.tree.config])),
    ("D10", "a path in the settings is a literal name once globs are expanded",
     lambda d: _under(d.q.path, d.hostile)),
    ("D13", "allowRead and denyRead nest to any depth",
     lambda d: d.q.operation.startswith("file-read") and d.netjail == "allow" and bool(d.tree.extra.get("nested"))
     and _under(d.q.path, d.tree.extra["nested"])),
    ("D4", "no writes where the command cannot read",
     lambda d: d.q.operation.startswith("file-write") and d.netjail == "deny"
     and not read_visible(d.tree.policy, d.q.path or "")),
    ("D9", "stat() only on the directories above an allowRead path",
     lambda d: d.q.operation == "file-read-metadata" and d.netjail == "deny"),
    ("D3", "mandatory denies below every allowWrite path, with netjail's longer list, names included",
     lambda d: d.q.operation.startswith("file-write") and d.netjail == "deny" and _dangerous(d)),
    ("D11", "directories holding a protected path cannot be renamed or removed",
     lambda d: d.q.operation in ("file-write-unlink", "file-write-create") and d.netjail == "deny"
     and any(d.q.path in ancestors_of(p) for p in [*d.tree.policy.read_only, *d.tree.policy.hidden])),
    ("D7", "no keychain", lambda d: d.q.name in KEYCHAIN_SERVICES),
    ("D8", "DNS and other egress services stay closed under wildcards",
     lambda d: d.q.name in EGRESS_SERVICES or d.q.socket_path in MDNS_SOCKETS),
    ("D12", "Unix socket paths are allowed as written and as resolved",
     lambda d: d.q.socket_path in d.tree.policy.unix_sockets and d.netjail == "allow"),
    ("D14", "a Unix socket may always be created; binding and connecting one is what the settings rule",
     lambda d: d.q.operation == "system-socket" and d.q.socket_domain == "AF_UNIX"),
]  # fmt: skip


def compare(
    srt: Path, tree: Tree, hostile: list[str], extra: list[str]
) -> tuple[dict[str, int], list[Difference]]:
    srt_text, defaults = srt_profile(srt, tree, hostile)
    srt_rules, nj_rules = check(srt_text), check(profile(tree.policy))
    used: dict[str, int] = {}
    unexplained = []
    for q in probes(tree, [*extra, *defaults]):
        theirs, ours = decide(srt_rules, q), ask(nj_rules, q)
        if theirs == ours:
            continue
        d = Difference(q, theirs, ours, tree, defaults, hostile)
        reason = next((rid for rid, _, explains in DELIBERATE if explains(d)), None)
        if reason is None:
            unexplained.append(d)
        else:
            used[reason] = used.get(reason, 0) + 1
    return used, unexplained


def test_srt_comparison_files(srt_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    for d in ("secrets/public/inner/deepest", "locked", 'we[ir]d "q" \\ é', "weid"):
        (work / d).mkdir(parents=True, exist_ok=True)
    (tmp_path / "cache").mkdir()
    tree = build_tree(
        tmp_path,
        {
            "denyRead": ["../home/.ssh", "secrets", "secrets/public/inner", 'we[ir]d "q" \\ é'],
            "allowRead": ["secrets/public", "secrets/public/inner/deepest"],
            "allowWrite": [".", "../cache"],
            "denyWrite": ["locked"],
        },
        {"allowUnixSockets": [str(tmp_path / "docker.sock")], "allowMachLookup": ["com.example.*"]},
    )
    tree.extra["nested"] = [str(tree.work / "secrets/public/inner/deepest")]
    hostile = [str(tree.work / 'we[ir]d "q" \\ é')]
    used, unexplained = compare(
        srt_dir, tree, hostile, ["/usr/bin/env", "/etc/hosts", "/", str(tree.root / "outside")]
    )
    assert not unexplained, "\n".join(f"{d.q} srt={d.srt} netjail={d.netjail}" for d in unexplained[:40])
    assert set(used) >= {"D1", "D2", "D3", "D4", "D5", "D6", "D7", "D9", "D10", "D11", "D13"}, used


def test_srt_comparison_network_switches(srt_dir: Path, tmp_path: Path) -> None:
    tree = build_tree(
        tmp_path,
        {"denyRead": ["../home/.ssh"], "allowGitConfig": True},
        {"allowAllUnixSockets": True, "allowLocalBinding": True, "allowMachLookup": ["*"]},
        allowPty=True,
    )
    used, unexplained = compare(
        srt_dir, tree, [], ["/dev/ttys003", "/dev/ptmx", str(tree.work / ".git" / "config")]
    )
    assert not unexplained, "\n".join(f"{d.q} srt={d.srt} netjail={d.netjail}" for d in unexplained[:40])
    assert "D8" in used, used


def test_srt_comparison_socket_spellings(srt_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "sock").mkdir()
    (tmp_path / "sock-link").symlink_to(tmp_path / "sock")
    tree = build_tree(tmp_path, {}, {"allowUnixSockets": [str(tmp_path / "sock-link" / "a.sock")]})
    used, unexplained = compare(srt_dir, tree, [], [])
    assert not unexplained, "\n".join(f"{d.q} srt={d.srt} netjail={d.netjail}" for d in unexplained[:40])
    assert "D12" in used, used


def test_srt_comparison_defaults(srt_dir: Path, tmp_path: Path) -> None:
    tree = build_tree(tmp_path, {"denyRead": ["../home/.ssh"]})
    used, unexplained = compare(srt_dir, tree, [], [])
    assert not unexplained, "\n".join(f"{d.q} srt={d.srt} netjail={d.netjail}" for d in unexplained[:40])
    assert {"D1", "D2", "D3", "D5", "D6", "D7", "D14"} <= set(used), used


def test_every_deliberate_difference_is_documented() -> None:
    doc = (REPO / "docs" / "macos.md").read_text()
    for rid, title, _ in DELIBERATE:
        assert f"| {rid} | {title} |" in doc, rid
