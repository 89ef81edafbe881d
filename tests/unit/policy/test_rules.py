"""netjail/policy/rules.py: path readings, globs and the first-match decision, with no proxy. The normalisation
table is read from docs/policy.md, so the documented table is the tested one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from netjail.net.domains import Host
from netjail.policy.decision import Policy
from netjail.policy.rules import AmbiguousPath, compile_path_glob, read_target
from netjail.settings import NetworkSettings

REPO = Path(__file__).resolve().parents[3]


def documented_table() -> list[tuple[str, str | None, str, str]]:
    """(path as sent, resolved reading or None, verdict, why) for each row of docs/policy.md's table."""
    doc = (REPO / "docs" / "policy.md").read_text()
    block = doc.split("<!-- normalisation-table -->")[1].split("<!-- /normalisation-table -->")[0]
    rows = []
    for line in block.strip().splitlines()[2:]:
        sent, reading, verdict, why = (cell.strip() for cell in line.strip("|").split(" | "))
        rows.append((sent.strip("`"), None if reading == "—" else reading.strip("`"), verdict, why))
    return rows


TABLE = documented_table()
TABLE_RULES = [
    {"hosts": ["allowed.test"], "default": "deny", "requests": [{"allow": "GET", "path": "/allowed/**"}]}
]


def policy(rules: list[dict], **network: object) -> Policy:
    data = {"allowedDomains": ["allowed.test", "other.test"], "deniedDomains": [], "rules": rules, **network}
    return Policy.of(NetworkSettings.model_validate(data))


ALLOWED = Host("allowed.test", None)


def test_the_documented_table_has_rows_of_every_kind() -> None:
    verdicts = {verdict for _, _, verdict, _ in TABLE}
    assert verdicts == {"allow", "deny"} and len(TABLE) >= 20


@pytest.mark.parametrize(("sent", "reading", "verdict", "why"), TABLE, ids=[row[0] for row in TABLE])
def test_documented_row(sent: str, reading: str | None, verdict: str, why: str) -> None:
    if reading is None:
        with pytest.raises(AmbiguousPath):
            read_target(sent)
    else:
        assert read_target(sent).resolved == reading
    judged = policy(TABLE_RULES).judge_request(ALLOWED, 80, "GET", sent)
    assert judged is not None and judged.verdict == verdict, judged
    if verdict == "deny":
        expected = "ambiguous_path" if reading is None or "ambiguous" in why else "denied_by_request_rule"
        assert judged.reason == expected


@pytest.mark.parametrize(
    ("target", "literal", "resolved", "query"),
    [
        ("/", "/", "/", None),
        ("", "/", "/", None),
        ("/a/b/..", "/a/b/..", "/a/", None),
        ("/..", "/..", "/", None),
        ("//", "//", "/", None),
        ("/a/./b/../c?x=1&y", "/a/./b/../c", "/a/c", "x=1&y"),
        ("/a?", "/a", "/a", ""),
        ("/%7e%41", "/~A", "/~A", None),
        ("/a%2fb", None, None, None),
    ],
)
def test_readings(target: str, literal: str | None, resolved: str | None, query: str | None) -> None:
    if literal is None:
        with pytest.raises(AmbiguousPath):
            read_target(target)
        return
    reading = read_target(target)
    assert (reading.literal, reading.resolved, reading.query) == (literal, resolved, query)


def test_encoded_slash_is_data_only_where_the_rule_set_says_so() -> None:
    assert read_target("/@scope%2fname", encoded_slash=True).literal == "/@scope%2Fname"
    npm = policy(
        [
            {
                "hosts": ["allowed.test"],
                "default": "deny",
                "allowEncodedSlash": True,
                "requests": [{"allow": "GET", "path": "/@scope*"}],
            }
        ]
    )
    assert npm.judge_request(ALLOWED, 443, "GET", "/@scope%2fname").allowed  # type: ignore[union-attr]
    assert npm.judge_request(ALLOWED, 443, "GET", "/@scope/name").reason == "denied_by_request_rule"  # type: ignore[union-attr]
    assert npm.judge_request(ALLOWED, 443, "GET", "/@scope%5cname").reason == "ambiguous_path"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("glob", "matching", "not_matching"),
    [
        ("/org/**", ["/org", "/org/", "/org/a/b", "/ORG/a"], ["/organisation", "/other/org"]),
        (
            "/*/*/git-upload-pack",
            ["/o/r.git/git-upload-pack"],
            ["/o/git-upload-pack", "/o/r/x/git-upload-pack"],
        ),
        ("/**/info/refs", ["/info/refs", "/o/r.git/info/refs"], ["/o/r.git/info/refs/x"]),
        ("/v1/messages", ["/v1/messages", "/V1/Messages"], ["/v1/messages/", "/v1/messages/x"]),
        ("/a*b", ["/ab", "/axxb"], ["/a/b"]),
        ("/", ["/"], ["/a"]),
        ("/caf%c3%a9", ["/caf%C3%A9"], ["/cafe"]),
        ("/a%2Ab", ["/a*b"], ["/axb"]),  # an encoded '*' in a glob is a literal '*'
    ],
)
def test_path_globs(glob: str, matching: list[str], not_matching: list[str]) -> None:
    regex = compile_path_glob(glob, case_sensitive=False)
    for path in matching:
        assert regex.fullmatch(read_target(path).literal), path
    for path in not_matching:
        assert not regex.fullmatch(read_target(path).literal), path


def test_case_sensitive_paths() -> None:
    regex = compile_path_glob("/org/**", case_sensitive=True)
    assert regex.fullmatch("/org/x") and not regex.fullmatch("/ORG/x")


GITHUB = [
    {
        "hosts": ["allowed.test"],
        "default": "deny",
        "requests": [
            {
                "deny": "*",
                "path": "/**/info/refs",
                "query": "*service=git-receive-pack*",
                "reason": "no pushing",
            },
            {"deny": "*", "path": "/**/git-receive-pack", "reason": "no pushing"},
            {"allow": ["GET", "HEAD"], "path": "/**"},
            {"allow": "POST", "path": "/*/*/git-upload-pack"},
        ],
    },
    {"hosts": ["*.allowed.test"], "default": "allow", "requests": [{"deny": "DELETE"}]},
]


@pytest.mark.parametrize(
    ("host", "method", "target", "verdict", "rule"),
    [
        (
            "allowed.test",
            "GET",
            "/o/r.git/info/refs?service=git-upload-pack",
            "allow",
            "allowed.test: allow GET,HEAD /**",
        ),
        (
            "allowed.test",
            "POST",
            "/o/r.git/git-upload-pack",
            "allow",
            "allowed.test: allow POST /*/*/git-upload-pack",
        ),
        ("allowed.test", "get", "/o/r", "allow", "allowed.test: allow GET,HEAD /**"),
        (
            "allowed.test",
            "GET",
            "/o/r.git/info/refs?service=git-receive-pack",
            "deny",
            "allowed.test: deny * /**/info/refs?*service=git-receive-pack*",
        ),
        (
            "allowed.test",
            "POST",
            "/o/r.git/git-receive-pack",
            "deny",
            "allowed.test: deny * /**/git-receive-pack",
        ),
        ("allowed.test", "PUT", "/o/r", "deny", "allowed.test: default deny"),
        ("a.allowed.test", "PUT", "/o/r", "allow", "*.allowed.test: default allow"),
        ("a.allowed.test", "DELETE", "/o/r", "deny", "*.allowed.test: deny DELETE /**"),
    ],
)
def test_first_match_wins_then_the_default(
    host: str, method: str, target: str, verdict: str, rule: str
) -> None:
    judged = policy(GITHUB, allowedDomains=["allowed.test", "*.allowed.test"]).judge_request(
        Host(host, None), 443, method, target
    )
    assert judged is not None and (judged.verdict, judged.rule) == (verdict, rule)


def test_a_host_without_rules_keeps_its_domain_verdict() -> None:
    assert policy(GITHUB).judge_request(Host("other.test", None), 443, "DELETE", "/") is None
    ported = policy([{"hosts": ["allowed.test:8443"], "default": "deny", "requests": []}])
    assert ported.judge_request(ALLOWED, 443, "GET", "/") is None
    assert ported.judge_request(ALLOWED, 8443, "GET", "/").verdict == "deny"  # type: ignore[union-attr]
    assert ported.has_request_rules(ALLOWED, 8443) and not ported.has_request_rules(ALLOWED, 443)


def test_the_denial_says_what_to_add_in_words_an_agent_can_act_on() -> None:
    judged = policy(GITHUB).judge_request(ALLOWED, 443, "POST", "/o/r.git/git-receive-pack")
    assert judged is not None
    assert judged.detail.startswith(
        "POST /o/r.git/git-receive-pack to allowed.test is denied by network.rules[0].requests[1] (deny * /**/git-receive-pack): no pushing."
    )
    assert (
        '{"allow": "POST", "path": "/o/r.git/git-receive-pack"} before that entry in network.rules[0].requests'
        in judged.detail
    )
    default = policy(GITHUB).judge_request(ALLOWED, 443, "PUT", "/x")
    assert (
        default is not None
        and "matches no entry of network.rules[0] (allowed.test), whose default is deny" in default.detail
    )
    ambiguous = policy(GITHUB).judge_request(ALLOWED, 443, "GET", "/a%2fb")
    assert (
        ambiguous is not None
        and "contains an encoded '/' (%2F)" in ambiguous.detail
        and ambiguous.rule == "path-guard"
    )


def test_query_globs() -> None:
    api = policy(
        [
            {
                "hosts": ["allowed.test"],
                "default": "deny",
                "requests": [{"allow": "POST", "path": "/v1/messages", "query": ""}],
            }
        ]
    )
    assert api.judge_request(ALLOWED, 443, "POST", "/v1/messages").allowed  # type: ignore[union-attr]
    assert api.judge_request(ALLOWED, 443, "POST", "/v1/messages?").allowed  # type: ignore[union-attr]
    assert not api.judge_request(ALLOWED, 443, "POST", "/v1/messages?beta=1").allowed  # type: ignore[union-attr]
    assert not api.judge_request(ALLOWED, 443, "GET", "/v1/messages").allowed  # type: ignore[union-attr]


def test_audit_mode_lets_a_rule_denial_through_as_would_deny() -> None:
    judged = policy(GITHUB, mode="audit").judge_request(ALLOWED, 443, "PUT", "/x")
    assert judged is not None and judged.verdict == "allow" and judged.reason == "would_deny"
    assert judged.rule == "allowed.test: default deny"


def test_glob_regexes_are_anchored_and_escape_literals() -> None:
    regex = compile_path_glob("/a.b/(c)+", case_sensitive=True)
    assert regex.fullmatch("/a.b/(c)+") and not regex.fullmatch("/axb/(c)+")
    assert re.compile(regex.pattern).fullmatch("/a.b/(c)+")
