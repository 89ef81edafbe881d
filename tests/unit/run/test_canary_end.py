"""How a tripped canary is said at the end of a run (netjail/run/supervise.py) and in the audit report
(netjail/inspect/audit.py): the canary's name, the host and the place, terminal-safe, never more."""

from __future__ import annotations

import json

from netjail.inspect.audit import canary_lines
from netjail.run.supervise import canary_message


def test_the_proxys_line_becomes_the_runs_message() -> None:
    line = "canary " + json.dumps({"canary": "LEGACY_GH_TOKEN", "host": "x.test", "where": "query"})
    assert canary_message(line) == (
        "canary LEGACY_GH_TOKEN went to host x.test in the query string: refused, and the sandbox was stopped "
        "(audit.canaries)"
    )
    assert canary_message("canary not json").startswith("a canary credential was sent out")
    hostile = "canary " + json.dumps({"canary": "A", "host": "x\x1b[2Jy", "where": "header x-a"})
    assert "\x1b" not in canary_message(hostile) and "in the x-a header" in canary_message(hostile)


def test_the_audit_says_which_canary_went_where() -> None:
    report = {
        "canaries": [
            {"canary": "DEPLOY_AWS_KEY_ID", "host": "a.test", "where": ["query"], "encoding": "plain", "verdict": "deny"},
            {"canary": "BACKUP_NPM_TOKEN", "host": "canary-BACKUP-NPM-TOKEN.a.test", "where": ["dns"], "encoding": "hex", "verdict": "deny"},
        ]
    }  # fmt: skip
    assert canary_lines(report) == [
        "canary DEPLOY_AWS_KEY_ID went to host a.test in the query string (refused)",
        "canary BACKUP_NPM_TOKEN went to host canary-BACKUP-NPM-TOKEN.a.test in a DNS lookup (refused, hex)",
    ]
    assert canary_lines({"canaries": []}) == []
