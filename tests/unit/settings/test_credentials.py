"""settings/credentials.py: srt's credential entries, what is refused and why (one message per problem)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netjail.settings.credentials import compile_extract
from netjail.settings.errors import Problem

from .settings_files import load, minimal, refused


def with_credentials(credentials: dict[str, Any], allowed: list[str] | None = None, **network: Any) -> dict:
    data = minimal()
    data["network"]["allowedDomains"] = allowed if allowed is not None else ["*.example.com", "api.other.com"]
    data["network"].update(network)
    data["credentials"] = credentials
    return data


def env(**entry: Any) -> dict[str, Any]:
    return {"envVars": [{"name": "API_TOKEN", "mode": "mask", **entry}]}


@pytest.mark.parametrize(
    ("pattern", "groups"),
    [
        (r"token:\s*(\S+)", 1),
        (r"(?<secret>[A-Za-z0-9]+)@", 1),  # JavaScript's named group, rewritten
        (r"(?<name>a)\k<name>(b)", 2),
        (r"(?:x)(y)", 1),
        (r"(?<=user=)(\w+)", 1),  # a lookbehind is not a named group
    ],
)
def test_extract_accepts_patterns_srt_and_python_read_alike(pattern: str, groups: int) -> None:
    assert compile_extract(pattern).groups == groups


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        (r"token:\s*\S+", "no capturing group"),
        (r"(?:token)", "no capturing group"),
        (r"(\p{L}+)", "Unicode property escapes"),
        (r"(\u{1F600})", "code point escapes"),
        (r"([^])", "empty class"),
        (r"(?P<x>a)", "(?P"),
        (r"(unclosed", "not a valid regular expression"),
    ],
)
def test_extract_refuses_what_cannot_be_honoured(pattern: str, words: str) -> None:
    with pytest.raises(Problem) as info:
        compile_extract(pattern)
    assert words in info.value.problem


def test_an_srt_mask_entry_loads_with_its_inject_hosts(tmp_path: Path) -> None:
    loaded = load(tmp_path, with_credentials(env(injectHosts=["api.example.com"], extract=r"^(\S+)$")))
    entry = loaded.settings.credentials.env_vars[0]
    assert [p.source for p in entry.inject_hosts or []] == ["api.example.com"] and loaded.warnings == ()


@pytest.mark.parametrize(
    ("credentials", "network", "field", "words"),
    [
        (env(injectHosts=["evil.test"]), {}, "credentials.envVars[0].injectHosts[0]", "not reachable"),
        (env(injectHosts=["*.other.com"]), {}, "credentials.envVars[0].injectHosts[0]", "not reachable"),
        (env(injectHosts=[]), {}, "credentials.envVars[0].injectHosts", "never injected"),
        (env(maskClaims=["sub"]), {}, "credentials.envVars[0].maskClaims", "decode is not set"),
        (env(decode="jwt", maskClaims=[]), {}, "credentials.envVars[0].maskClaims", "empty"),
        (env(extract="no group"), {}, "credentials.envVars[0].extract", "no capturing group"),
        (
            env(injectHosts=["api.example.com"]),
            {"tlsTerminate": {"excludeDomains": ["*.example.com"]}},
            "credentials.envVars[0].injectHosts[0]",
            "excludeDomains",
        ),
        (
            env(),
            {"tlsTerminate": {"excludeDomains": ["*.example.com", "api.other.com"]}},
            "credentials.envVars[0]",
            "could never be injected",
        ),
        (
            {"awsPairs": [{"accessKeyIdVar": "K", "secretAccessKeyVar": "S"}]},
            {},
            "credentials.awsPairs[0].accessKeyIdVar",
            "not a credentials.envVars entry",
        ),
        (
            {
                "envVars": [{"name": "K", "mode": "mask", "extract": "(.+)"}, {"name": "S", "mode": "mask"}],
                "awsPairs": [{"accessKeyIdVar": "K", "secretAccessKeyVar": "S"}],
            },
            {},
            "credentials.awsPairs[0].accessKeyIdVar",
            "masked whole",
        ),
        (
            {
                "envVars": [{"name": "K", "mode": "mask"}],
                "awsPairs": [{"accessKeyIdVar": "K", "secretAccessKeyVar": "K"}],
            },
            {},
            "credentials.awsPairs[0].secretAccessKeyVar",
            "more than one",
        ),
        ({"files": [{"path": "~/.tokens/*", "mode": "mask"}]}, {}, "credentials.files[0].path", "glob"),
    ],
)
def test_refusals_name_the_field_and_the_fix(
    tmp_path: Path, credentials: dict, network: dict, field: str, words: str
) -> None:
    error = refused(tmp_path, with_credentials(credentials, **network))
    assert error.field == field and words in error.problem and error.fix


def test_an_inject_host_covered_by_a_wildcard_or_apex_is_accepted(tmp_path: Path) -> None:
    data = with_credentials(env(injectHosts=["a.b.example.com", "*.x.example.com", "api.other.com"]))
    assert load(tmp_path, data).settings.credentials.env_vars[0].inject_hosts


def test_a_partial_overlap_with_excluded_hosts_is_accepted_by_default(tmp_path: Path) -> None:
    # the default (every allowed domain) keeps the hosts that are terminated; excluded ones get no injection
    data = with_credentials(env(), tlsTerminate={"excludeDomains": ["mtls.example.com"]})
    assert load(tmp_path, data).settings.credentials.env_vars[0].no_match == "error"


def test_the_conventional_aws_trio_is_paired_automatically(tmp_path: Path) -> None:
    names = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]
    data = with_credentials({"envVars": [{"name": n, "mode": "mask"} for n in names]})
    (pair,) = load(tmp_path, data).settings.credentials.pairs
    assert (pair.access_key_id_var, pair.secret_access_key_var, pair.session_token_var) == tuple(names)
