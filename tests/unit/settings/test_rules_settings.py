"""network.rules as a settings file states them: what loads, what is refused and the message that says why."""

from __future__ import annotations

from pathlib import Path

import pytest

from netjail.net.domains import parse_pattern
from netjail.settings.rules import patterns_overlap

from .settings_files import case, load, refused, with_


def rules(*blocks: dict) -> dict:
    return case("network.rules", list(blocks))


def block(*requests: dict, **extra: object) -> dict:
    return {"hosts": ["github.com"], "default": "deny", "requests": list(requests), **extra}


def test_a_rule_set_loads_with_its_defaults(tmp_path: Path) -> None:
    loaded = load(
        tmp_path, rules(block({"allow": ["get", "HEAD"]}, {"deny": "*", "path": "/org/**", "query": "a=*"}))
    )
    (rule_set,) = loaded.settings.network.rules
    first, second = rule_set.requests
    assert first.allow == ("GET", "HEAD") and first.path == "/**" and first.describe() == "allow GET,HEAD /**"
    assert second.action == "deny" and second.describe() == "deny * /org/**?a=*"
    assert rule_set.case_sensitive_paths is False and rule_set.allow_encoded_slash is False
    assert loaded.warnings == ()


@pytest.mark.parametrize(
    ("entry", "field", "problem"),
    [
        ({"path": "/x"}, "network.rules[0].requests[0]", "exactly one of allow or deny"),
        ({"allow": "GET", "deny": "POST"}, "network.rules[0].requests[0]", "exactly one of allow or deny"),
        ({"allow": []}, "network.rules[0].requests[0].allow", "the method list is empty"),
        ({"allow": "GE T"}, "network.rules[0].requests[0].allow", "is not an HTTP method"),
        ({"allow": ["*", "GET"]}, "network.rules[0].requests[0].allow", '"*" already means every method'),
        ({"allow": "GET", "path": "org/**"}, "network.rules[0].requests[0].path", "does not start with '/'"),
        ({"allow": "GET", "path": "/a?b=1"}, "network.rules[0].requests[0].path", "contains a query"),
        ({"allow": "GET", "path": "/a;b"}, "network.rules[0].requests[0].path", "path parameters"),
        ({"allow": "GET", "path": "/a\\b"}, "network.rules[0].requests[0].path", "backslash"),
        ({"allow": "GET", "path": "/a%2Fb"}, "network.rules[0].requests[0].path", "contains %2F"),
        (
            {"allow": "GET", "path": "/a%zz"},
            "network.rules[0].requests[0].path",
            "not followed by two hex digits",
        ),
        ({"allow": "GET", "path": "/a%252F"}, "network.rules[0].requests[0].path", "percent-encoded twice"),
        ({"allow": "GET", "path": "/a/../b"}, "network.rules[0].requests[0].path", "dot segment"),
        ({"allow": "GET", "path": "/a/%2e/b"}, "network.rules[0].requests[0].path", "dot segment"),
        ({"allow": "GET", "path": "/a**/b"}, "network.rules[0].requests[0].path", "'**' inside the segment"),
        ({"allow": "GET", "path": "/café"}, "network.rules[0].requests[0].path", "non-ASCII"),
        ({"allow": "GET", "query": "a#b"}, "network.rules[0].requests[0]", "'#'"),
    ],
)
def test_bad_entries_are_refused_with_the_reason(
    tmp_path: Path, entry: dict, field: str, problem: str
) -> None:
    error = refused(tmp_path, rules(block(entry)))
    assert error.field == field and problem in error.problem, error


def test_a_rule_set_needs_hosts_and_a_default(tmp_path: Path) -> None:
    assert (
        refused(tmp_path, rules({"hosts": ["github.com"], "requests": []})).field
        == "network.rules[0].default"
    )
    assert (
        refused(tmp_path, rules({"hosts": [], "default": "deny", "requests": []})).field
        == "network.rules[0].hosts"
    )
    assert refused(tmp_path, rules(block(hosts=["*"]))).field == "network.rules[0].hosts[0]"


def test_hosts_excluded_from_tls_termination_cannot_have_rules(tmp_path: Path) -> None:
    data = with_(
        rules(block(), {"hosts": ["api.github.com"], "default": "deny", "requests": []}),
        "network.tlsTerminate",
        {"excludeDomains": ["*.github.com"]},
    )
    error = refused(tmp_path, data)
    assert error.field == "network.rules[1].hosts[0]"
    assert (
        "netjail does not decrypt those connections, so it never sees a method or path to judge"
        in error.problem
    )
    assert "remove '*.github.com' from tlsTerminate.excludeDomains" in error.fix
    # the control: an excluded host without rules, and rules on a host that is not excluded
    load(tmp_path, with_(rules(block()), "network.tlsTerminate", {"excludeDomains": ["*.github.com"]}))


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ("github.com", "github.com", True),
        ("github.com", "*.github.com", False),
        ("api.github.com", "*.github.com", True),
        ("*.a.github.com", "*.github.com", True),
        ("*.gitlab.com", "*.github.com", False),
        ("github.com:443", "github.com", True),
        ("github.com:443", "github.com:22", False),
        ("10.0.0.1", "10.0.0.0/8", True),
        ("10.0.0.1", "github.com", False),
        ("[::1]", "::/0", True),
    ],
)
def test_patterns_overlap(a: str, b: str, overlap: bool) -> None:
    pa, pb = parse_pattern(a, allow_any=True), parse_pattern(b, allow_any=True)
    assert patterns_overlap(pa, pb) is overlap and patterns_overlap(pb, pa) is overlap
