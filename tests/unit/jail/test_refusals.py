"""Why a refused path is read-only, and the bounded tally (netjail/jail/refusals.py)."""

from __future__ import annotations

from pathlib import PurePosixPath as P

import pytest

from netjail.jail.refusals import Refusals, WriteRules, cause_of

RULES = WriteRules(
    deny_write=(P("/w/locked"), P("/hidden/keep/again")),
    protected=(P("/w/.git/hooks"),),
    hidden=(P("/hidden"),),
    private_state=(P("/state"),),
)


@pytest.mark.parametrize(
    ("path", "cause", "entry"),
    [
        ("/etc/passwd", "outside_allow_write", None),
        ("/w/locked", "deny_write", "/w/locked"),
        ("/w/locked/inner", "deny_write", "/w/locked"),
        ("/w/.git/hooks/pre-commit", "protected", "/w/.git/hooks"),
        ("/hidden/x", "deny_read", "/hidden"),
        ("/hidden/keep/again/x", "deny_write", "/hidden/keep/again"),  # the deepest rule explains it
        ("/state/runs/x", "netjail", "/state"),
        ("/w/lockedness", "outside_allow_write", None),  # a prefix of the name is not the entry
    ],
)
def test_cause_of(path: str, cause: str, entry: str | None) -> None:
    assert cause_of(P(path), RULES) == (cause, entry)


def test_tally_per_path_and_the_rest_counted_in_one_record() -> None:
    refusals = Refusals(RULES, limit=2)
    for op, path, program in [
        ("mkdir", "/a", "mkdir"), ("open", "/a", "bash"), ("open", "/b", "x"), ("open", "/c", "x"),
        ("open", "/d", "x"), ("open", "/d", "x"),
    ]:  # fmt: skip
        refusals.add(op, path, program)
    records = refusals.records()
    assert [(r["path"], r["count"], r["ops"]) for r in records] == [
        ("/a", 2, {"mkdir": 1, "open": 1}),
        ("/b", 1, {"open": 1}),
        (None, 3, {"paths": 2}),
    ]
    assert records[0]["programs"] == ["mkdir", "bash"]
