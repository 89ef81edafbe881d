"""Refused writes from the sandbox's violation log on macOS (netjail/jail/macos/violations.py), tested here without a
Mac: the parser against ndjson lines in the shape `log stream --style ndjson` prints (Apple's fields; the kernel's
`Sandbox: <process>(<pid>) deny(<n>) <operation> <target>` with the profile's `(with message …)` tag on a line of its
own, as srt and others read it), the predicate and argv, and the backend's wiring with a stand-in `log` executable
(a real subprocess) that prints canned lines once the command has run. Real `log stream` is tests/macos (on a Mac).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import textwrap
from pathlib import Path

import pytest

from netjail.jail.macos import violations
from netjail.jail.macos.sandbox_exec import SeatbeltJail
from netjail.jail.macos.violations import (
    Denial,
    ViolationLog,
    parse_line,
    predicate,
    refused_write,
    stream_argv,
    write_rules,
)
from netjail.jail.refusals import Refusals, WriteRules
from netjail.run import runner
from netjail.settings import load_settings
from tests.unit.jail.macos.test_sandbox_exec import FAKE_SANDBOX_EXEC, make_spec, run, settings

TAG = "netjail-0123456789abcdef"
BANNER = (
    'Filtering the log data using "processID == 0 AND eventMessage CONTAINS \\"netjail-0123456789abcdef\\""'
)
KEXT = "/System/Library/Extensions/Sandbox.kext/Contents/MacOS/Sandbox"


def ndjson(message: str, **fields: object) -> str:
    """One line of `log stream --style ndjson`, with the fields Apple's log prints for a kernel message."""
    record: dict[str, object] = {
        "traceID": 1371543621025796,
        "eventMessage": message,
        "eventType": "logEvent",
        "source": None,
        "formatString": "%s",
        "activityIdentifier": 0,
        "subsystem": "",
        "category": "",
        "threadID": 8410391,
        "senderImageUUID": "4F4E6C0A-2E3B-3F55-9E3B-6E2B1F0A9C11",
        "backtrace": {
            "frames": [{"imageOffset": 70220, "imageUUID": "4F4E6C0A-2E3B-3F55-9E3B-6E2B1F0A9C11"}]
        },
        "bootUUID": "",
        "processImagePath": "/kernel",
        "senderImagePath": KEXT,
        "timestamp": "2026-12-02 15:04:05.123456+0000",
        "machTimestamp": 2094851236547,
        "messageType": "Error",
        "processImageUUID": "9B1A3C2D-0E4F-3A5B-8C7D-6E5F4A3B2C1D",
        "processID": 0,
        "senderProgramCounter": 70220,
        "parentActivityIdentifier": 0,
        "timezoneName": "",
        "userID": 0,
    }
    record.update(fields)
    return json.dumps(record)


def report(process: str, pid: int, operation: str, target: str, tag: str = TAG) -> str:
    return f"Sandbox: {process}({pid}) deny(1) {operation} {target}\n{tag}"


# -- the parser ----------------------------------------------------------------------------------------------------


def test_a_refused_write_of_this_run_is_parsed() -> None:
    line = ndjson(report("npm", 81103, "file-write-create", "/Users/u/.npm/_cacache/tmp/x"))
    denial = parse_line(line, TAG)
    assert denial == Denial("file-write-create", "/Users/u/.npm/_cacache/tmp/x", "npm", 1)
    assert refused_write(denial) == ("create", "/Users/u/.npm/_cacache/tmp/x", "npm")
    assert parse_line(line.encode(), TAG) == denial  # as read from the pipe


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (BANNER, "the banner log stream prints first"),
        ('{"eventMessage": "Sandbox: sh(1) deny(1) file-write-create /x\\nnetjail-0123', "a truncated line"),
        ("[1, 2]", "JSON that is not a record"),
        ("", "an empty line"),
        (ndjson(report("sh", 7, "file-write-create", "/x", tag="netjail-fedcba9876543210")), "another run's tag"),
        (ndjson(report("sh", 7, "file-write-create", "/x", tag=TAG + "ff")), "a tag that only starts like ours"),
        (ndjson(report("sh", 7, "file-write-create", "/x"), processID=84421, processImagePath="/usr/bin/python3",
                senderImagePath="/tmp/sandbox-helper", userID=501), "a user process writing sandbox-shaped text"),
        (ndjson(report("sh", 7, "file-write-create", "/x"), processID=False), "processID false is not 0"),
        (ndjson(report("sh", 7, "file-write-create", "/x"), processID="0"), "processID as text"),
        (json.dumps({"eventMessage": report("sh", 7, "file-write-create", "/x")}), "no provenance at all"),
        (ndjson(f"Sandbox: sh(7) deny(1) file-write-create /x {TAG}"), "the tag not on its own line"),
        (ndjson(f"{TAG}\nSandbox: sh(7) deny(1) file-write-create /x"), "the tag not last"),
        (ndjson(f"Sandbox: sh(7) allow file-write-create /x\n{TAG}"), "not a denial"),
        (ndjson(f"hello\n{TAG}"), "not a sandbox report"),
    ],
)  # fmt: skip
def test_what_is_not_this_runs_denial_is_ignored(line: str, why: str) -> None:
    assert parse_line(line, TAG) is None, why


def test_the_kernels_duplicate_reports_count_as_attempts() -> None:
    line = ndjson(
        f"3 duplicate reports for Sandbox: git(512) deny(1) file-write-data /w/.git/hooks/pre-commit\n{TAG}"
    )
    assert parse_line(line, TAG) == Denial("file-write-data", "/w/.git/hooks/pre-commit", "git", 3)


def test_a_path_is_the_programs_text_kept_as_the_linux_records_keep_it() -> None:
    # a newline, a fake second report and an escape sequence in the name: one path, whatever it says
    name = "/w/a\nSandbox: x(1) deny(1) file-write-create /etc/passwd\x1b[2J"
    denial = parse_line(ndjson(report("sh", 9, "file-write-create", name)), TAG)
    assert denial is not None and denial.target == name
    assert refused_write(denial) == ("create", name, "sh")
    lone = parse_line(
        ndjson(report("sh", 9, "file-write-create", "/w/\ud800x")), TAG
    )  # a lone surrogate escape
    assert lone is not None and refused_write(lone) == ("create", "/w/\\ud800x", "sh")
    odd = parse_line(ndjson(report("we(ir)d 1", 9, "file-write-unlink", "//w//b/../c")), TAG)
    assert refused_write(odd) == ("unlink", "/w/c", "we(ir)d 1")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("operation", "target", "expected"),
    [
        ("file-write-create", "/w/new", ("create", "/w/new", "p")),
        ("file-write-data", "/w/f", ("write", "/w/f", "p")),
        ("file-write-unlink", "/w/f", ("unlink", "/w/f", "p")),
        ("file-write-mode", "/w/f", ("chmod", "/w/f", "p")),
        ("file-write-times", "/w/f", ("utimes", "/w/f", "p")),
        ("file-write-somethingnew", "/w/f", ("somethingnew", "/w/f", "p")),
        ("file-read-data", "/w/secret", None),  # a read of a hidden path: not reported, as on Linux
        ("file-read-metadata", "/w/secret", None),
        ("network-outbound", "/private/var/run/mDNSResponder", None),
        ("mach-lookup", "com.apple.trustd", None),
        ("file-write-data", "/dev/ttys001", None),  # a device: never a settings change
        ("file-write-create", "relative/name", None),
    ],
)
def test_only_writes_to_paths_are_refused_writes(
    operation: str, target: str, expected: tuple[str, str, str] | None
) -> None:
    denial = parse_line(ndjson(report("p", 1, operation, target)), TAG)
    assert denial is not None
    assert refused_write(denial) == expected


def test_the_predicate_and_argv() -> None:
    assert predicate(TAG) == 'processID == 0 AND eventMessage CONTAINS "netjail-0123456789abcdef"'
    assert stream_argv(TAG) == ["/usr/bin/log", "stream", "--style", "ndjson", "--predicate", predicate(TAG)]
    for bad in ('x" OR processID != 0 OR eventMessage CONTAINS "', "", "a b"):
        with pytest.raises(ValueError):
            predicate(bad)


# -- classified with the Linux rules --------------------------------------------------------------------------------


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    path = tmp_path / "sandbox-exec"
    path.write_text(FAKE_SANDBOX_EXEC)
    path.chmod(0o755)
    return path


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = (tmp_path / "work").resolve()
    (path / ".git" / "hooks").mkdir(parents=True)
    (path / "locked").mkdir()
    (path / "secret").mkdir()
    return path


S = settings(denyWrite=["locked"], denyRead=["secret"])


def test_refused_writes_are_classified_by_the_same_rules_as_on_linux(fake: Path, work: Path) -> None:
    jail = SeatbeltJail(S, sandbox_exec=str(fake))
    spec = make_spec(jail, work, ("true",), S)
    refusals = Refusals(write_rules(spec, ("/private/tmp",)))
    state = work.parent / "state"
    for target in [
        f"{work}/.git/hooks/pre-commit",  # a name netjail protects, found on disk
        f"{work}/.vscode/settings.json",  # one that does not exist yet: denied by the profile, protected
        f"{work}/locked/f",
        f"{work}/secret/f",
        f"{state}/runs/x",
        "/private/tmp/scratch",  # the host's temporary directory, hidden: netjail's doing
        "/Users/u/.npm/_cacache/index",
    ]:
        refused = refused_write(Denial("file-write-create", target, "node"))
        assert refused is not None
        refusals.add(*refused)
    assert [(r["path"], r["cause"], r["entry"]) for r in refusals.records()] == [
        (f"{work}/.git/hooks/pre-commit", "protected", f"{work}/.git/hooks"),
        (f"{work}/.vscode/settings.json", "protected", f"{work}/.vscode"),
        (f"{work}/locked/f", "deny_write", f"{work}/locked"),
        (f"{work}/secret/f", "deny_read", f"{work}/secret"),
        (f"{state}/runs/x", "netjail", str(state)),
        ("/private/tmp/scratch", "netjail", "/private/tmp"),
        ("/Users/u/.npm/_cacache/index", "outside_allow_write", None),
    ]


def test_every_deny_rule_of_the_profile_carries_the_runs_tag(fake: Path, work: Path) -> None:
    s = settings(denyWrite=["locked"], denyRead=["secret"], allowRead=["secret/open"])
    (work / "secret" / "open").mkdir()
    jail = SeatbeltJail(s, sandbox_exec=str(fake), log_tag=TAG)
    text = jail.profile(make_spec(jail, work, ("true",), s))
    denies = re.findall(r"^\(deny [^\n]*(?:\n  [^\n]*)*", text, re.M)
    assert len(denies) > 5
    for rule in denies:
        assert rule.endswith(f'(with message "{TAG}"))'), rule


# -- the stream, with a stand-in for /usr/bin/log ---------------------------------------------------------------------

FAKE_LOG = """#!/bin/sh
# stands in for /usr/bin/log stream --style ndjson --predicate P: keeps its arguments, says it listens, and once
# the command is done prints the canned lines (the log delivers after the fact) with the run's tag from P
dir={dir}
printf '%s\\n' "$@" > "$dir/argv"
trap 'echo stopped > "$dir/stopped"; exit 0' TERM
if [ -e "$dir/refuse" ]; then echo "log: Must be admin to run 'stream' command" >&2; exit 64; fi
tag=$(printf '%s' "$5" | sed 's/.*CONTAINS "\\(.*\\)"$/\\1/')
touch "$dir/listening"
echo 'Filtering the log data using "'"$5"'"'
while [ ! -e "$dir/command-done" ]; do sleep 0.05; done
sleep 0.1
sed "s/@TAG@/$tag/g" "$dir/lines"
while :; do sleep 0.05; done
"""


@pytest.fixture
def fake_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # the lines come a moment after the command: on two busy cores that moment can be longer than a Mac's
    monkeypatch.setattr(violations, "QUIET_SECONDS", 1.0)
    monkeypatch.setattr(violations, "DRAIN_SECONDS", 5.0)
    folder = tmp_path / "log"
    folder.mkdir()
    path = folder / "log"
    path.write_text(FAKE_LOG.format(dir=folder))
    path.chmod(0o755)
    return path


def canned(path: Path, *lines: str) -> None:
    path.with_name("lines").write_text("".join(line + "\n" for line in lines))


def held_command(fake_log: Path) -> tuple[str, ...]:
    """The command: it fails (3) if it ran before the stream listened, and says when it is done."""
    folder = fake_log.parent
    return ("/bin/sh", "-c", f'[ -e "{folder}/listening" ] || exit 3; touch "{folder}/command-done"; exit 0')


def test_the_backend_reads_the_log_from_before_the_command_until_after_it(
    fake: Path, fake_log: Path, work: Path
) -> None:
    canned(
        fake_log,
        ndjson(report("npm", 4242, "file-write-create", "/Users/u/.npm/_cacache/tmp/a", tag="@TAG@")),
        ndjson(report("npm", 4242, "file-write-create", "/Users/u/.npm/_cacache/tmp/a", tag="@TAG@")),
        ndjson(report("git", 4243, "file-write-data", f"{work}/.git/hooks/pre-commit", tag="@TAG@")),
        ndjson(
            report("cat", 4244, "file-read-data", f"{work}/secret/key", tag="@TAG@")
        ),  # a read: not reported
        ndjson(
            report("npm", 4245, "file-write-create", "/elsewhere", tag="netjail-ffffffffffffffff")
        ),  # not ours
        ndjson(report("evil", 4246, "file-write-create", f"{work}/x", tag="@TAG@"), processID=4246),  # forged
        '{"eventMessage": TRUNCATED',
    )
    jail = SeatbeltJail(S, sandbox_exec=str(fake), log_command=str(fake_log))
    spec = dataclasses.replace(make_spec(jail, work, held_command(fake_log), S), observe_writes=True)
    launched, status = run(jail, spec)
    assert status == 0  # the stream listened before the command ran
    assert (fake_log.parent / "argv").read_text().splitlines() == stream_argv(jail.log_tag, str(fake_log))[1:]
    assert (fake_log.parent / "stopped").read_text() == "stopped\n"  # stopped once the lines were in
    assert launched.observer_note is None
    assert [(r["path"], r["cause"], r["ops"], r["count"], r["programs"]) for r in launched.refused] == [
        ("/Users/u/.npm/_cacache/tmp/a", "outside_allow_write", {"create": 2}, 2, ["npm"]),
        (f"{work}/.git/hooks/pre-commit", "protected", {"write": 1}, 1, ["git"]),
    ]
    assert all(r["event"] == "refused_write" for r in launched.refused)


def test_a_log_that_cannot_stream_does_not_stop_the_run(fake: Path, fake_log: Path, work: Path) -> None:
    (fake_log.parent / "refuse").touch()
    jail = SeatbeltJail(S, sandbox_exec=str(fake), log_command=str(fake_log))
    spec = dataclasses.replace(make_spec(jail, work, ("/bin/sh", "-c", "exit 7"), S), observe_writes=True)
    launched, status = run(jail, spec)
    assert status == 7
    assert launched.observer_note == (
        "writes are not observed: `log stream` ended at once (log: Must be admin to run 'stream' command)"
    )
    assert launched.refused == []


def test_a_missing_log_command_does_not_stop_the_run(fake: Path, work: Path) -> None:
    jail = SeatbeltJail(S, sandbox_exec=str(fake), log_command=str(work / "no-such-log"))
    spec = dataclasses.replace(make_spec(jail, work, ("/bin/sh", "-c", "exit 7"), S), observe_writes=True)
    launched, status = run(jail, spec)
    assert status == 7
    assert launched.observer_note is not None
    assert launched.observer_note.startswith(f"writes are not observed: cannot start {work}/no-such-log")
    assert launched.refused == []


def test_a_stream_that_cannot_be_set_up_does_not_stop_the_run(fake: Path, fake_log: Path, work: Path) -> None:
    jail = SeatbeltJail(S, sandbox_exec=str(fake), log_command=str(fake_log), log_tag='a"b')  # not a tag
    spec = dataclasses.replace(make_spec(jail, work, ("/bin/sh", "-c", "exit 7"), S), observe_writes=True)
    launched, status = run(jail, spec)
    assert status == 7
    assert (launched.observer_note or "").startswith("writes are not observed: a log tag is")
    assert not (fake_log.parent / "argv").exists()


def test_no_stream_when_writes_are_not_observed(fake: Path, fake_log: Path, work: Path) -> None:
    jail = SeatbeltJail(S, sandbox_exec=str(fake), log_command=str(fake_log))
    launched, status = run(jail, make_spec(jail, work, ("/bin/sh", "-c", "exit 0"), S))  # refusedWrites false
    assert status == 0
    assert not (fake_log.parent / "argv").exists()
    assert (launched.observer_note, launched.refused) == (None, [])


def test_a_stream_that_is_only_slow_lets_the_command_run(fake_log: Path) -> None:
    fake_log.write_text("#!/bin/sh\nexec sleep 30\n")  # never says anything
    stream = ViolationLog(TAG, Refusals(WriteRules()), command=str(fake_log))
    assert stream.start() is None
    assert stream.wait_ready(timeout=0.2) is None
    refusals = stream.stop(drain=False)
    assert refusals is not None and refusals.records() == []


# -- through the real runner: what a user finds in the run's records ------------------------------------------------


def test_refused_writes_reach_the_runs_records(
    tmp_path: Path, fake: Path, fake_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = (tmp_path / "proj").resolve()
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("NETJAIL_STATE_DIR", str(tmp_path / "state"))
    home = Path(os.path.realpath(Path.home()))
    canned(
        fake_log,
        ndjson(report("npm", 4242, "file-write-create", f"{home}/.npm/_cacache/tmp/a", tag="@TAG@")),
    )
    monkeypatch.setattr(
        runner,
        "current_jail",
        lambda s: SeatbeltJail(s, sandbox_exec=str(fake), log_command=str(fake_log)),
    )
    cfg = tmp_path / "settings.json"
    cfg.write_text(
        json.dumps(
            {
                "network": {"allowedDomains": [], "deniedDomains": []},
                "filesystem": {"denyRead": [], "allowWrite": ["."], "denyWrite": []},
            }
        )
    )
    script = textwrap.dedent(f"""\
        [ -e "{fake_log.parent}/listening" ] || exit 3
        touch "{fake_log.parent}/command-done"
    """)
    outcome = runner.run(load_settings(cfg), ("/bin/sh", "-c", script), display_command="npm install")
    assert (outcome.exit_status, outcome.reason) == (0, "exited"), outcome
    records = [json.loads(line) for line in (outcome.run_dir / "flows.jsonl").read_text().splitlines()]
    refused = [r for r in records if r["event"] == "refused_write"]
    assert [(r["path"], r["cause"], r["ops"], r["programs"]) for r in refused] == [
        (f"{home}/.npm/_cacache/tmp/a", "outside_allow_write", {"create": 1}, ["npm"])
    ]
    assert records[-1]["event"] == "run_end"
