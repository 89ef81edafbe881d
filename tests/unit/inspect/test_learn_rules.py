"""`netjail learn --rules` (netjail/inspect/learn_rules.py): the rules proposed from a learning run's flows, and
that each proposal loads as settings and allows exactly the methods and paths used (netjail check's decision)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from netjail.inspect.learn_rules import path_glob, propose_rules, with_learned_rules


def _flow(
    host: str, method: str | None, path: str | None, scheme: str = "https", verdict: str = "allow"
) -> Any:
    return {
        "event": "flow",
        "host": host,
        "method": method,
        "path": path,
        "scheme": scheme,
        "verdict": verdict,
    }


@pytest.mark.parametrize(
    ("paths", "glob"),
    [
        (["/simple/requests/"], "/simple/requests"),
        (["/simple/requests/", "/simple/six/"], "/simple/**"),
        (["/a", "/b"], "/**"),
        (["/"], "/"),
        (["/org/repo.git/info/refs", "/org/repo.git/git-upload-pack"], "/org/repo.git/**"),
        (["/x/a%2Fb/c", "/x/a%2Fb/d"], "/x/**"),  # an encoded slash never goes into a rule
        (["/x/*/y"], "/x/**"),
    ],
)
def test_path_globs(paths: list[str], glob: str) -> None:
    assert path_glob(paths) == glob


def test_rules_per_host_methods_merged_the_rest_denied() -> None:
    records = [
        _flow("index.test", "GET", "/simple/requests/?x=1"),
        _flow("index.test", "GET", "/simple/six/"),
        _flow("index.test", "HEAD", "/simple/six/"),
        _flow("api.test", "POST", "/v1/messages"),
        _flow("api.test", "GET", "/v1/models", verdict="deny"),  # denied: not what the command may do
        _flow("raw.test", None, None, scheme="tcp"),  # raw TCP: rules would refuse it
        _flow("covered.test", "GET", "/x"),  # the base has rules for it
    ]
    assert propose_rules(records, {"covered.test"}) == [
        {"hosts": ["index.test"], "requests": [{"allow": ["GET"], "path": "/simple/**"},
                                             {"allow": ["HEAD"], "path": "/simple/six"}], "default": "deny"},
        {"hosts": ["api.test"], "requests": [{"allow": ["POST"], "path": "/v1/messages"}], "default": "deny"},
    ]  # fmt: skip


def test_the_proposal_loads_and_allows_what_was_used_only(tmp_path: Path) -> None:
    from netjail.inspect.check import check
    from netjail.settings import load_settings

    data = {"network": {"allowedDomains": ["index.test"], "deniedDomains": []},
            "filesystem": {"denyRead": [], "allowWrite": [], "denyWrite": []}}  # fmt: skip
    learned = with_learned_rules(
        data, [_flow("index.test", "GET", "/simple/a/"), _flow("index.test", "GET", "/simple/b/")]
    )
    path = tmp_path / "learned.json"
    path.write_text(json.dumps(learned))
    loaded = load_settings(path)
    assert check(loaded, "https://index.test/simple/c/", "GET")["verdict"] == "allow"
    assert check(loaded, "https://index.test/simple/c/", "POST")["verdict"] == "deny"
    assert check(loaded, "https://index.test/other", "GET")["verdict"] == "deny"
