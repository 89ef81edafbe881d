"""What the command inherits: the default list, envPassthrough, and the one sentence that says so everywhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from netjail.jail.environment import (
    ENVIRONMENT_RULE,
    PASSED_BY_DEFAULT,
    inherited_environment,
    withheld_names,
)

REPO = Path(__file__).resolve().parents[3]
CREDENTIAL_WORDS = re.compile(
    r"TOKEN|SECRET|PASSW|CREDENTIAL|AUTH(?!OR)|_KEY|CERT$|COOKIE|SESSION", re.IGNORECASE
)


def test_no_default_name_looks_like_a_credential() -> None:
    assert [n for n in PASSED_BY_DEFAULT if CREDENTIAL_WORDS.search(n)] == []


@pytest.mark.parametrize(
    ("name", "passed"),
    [
        ("PIP_DISABLE_PIP_VERSION_CHECK", True),
        ("PIP_DEFAULT_TIMEOUT", True),
        ("npm_config_update_notifier", True),
        ("GIT_TERMINAL_PROMPT", True),
        ("LC_ALL", True),
        ("NPM_TOKEN", False),
        ("npm_config__authToken", False),  # no npm_config_* prefix
        ("GIT_CONFIG_VALUE_0", False),  # http.extraHeader tokens travel there
        ("PIP_CLIENT_CERT", False),
        ("BUNDLE_GEMS__EXAMPLE__COM", False),
        ("AWS_SECRET_ACCESS_KEY", False),
    ],
)
def test_defaults(name: str, passed: bool) -> None:
    assert (name in inherited_environment({name: "v"})) is passed
    assert (name in withheld_names({name: "v"})) is not passed


def test_envpassthrough_passes_any_name() -> None:
    assert inherited_environment({"NPM_TOKEN": "v"}, ["NPM_TOKEN"]) == {"NPM_TOKEN": "v"}
    assert withheld_names({"NPM_TOKEN": "v"}, ["NPM_TOKEN"]) == []


@pytest.mark.parametrize("doc", ["docs/security.md", "docs/srt-compat.md"])
def test_the_rule_is_said_the_same_way_in_the_docs(doc: str) -> None:
    text = " ".join((REPO / doc).read_text().split())
    assert ENVIRONMENT_RULE in text


def test_a_declared_credential_is_withheld_even_from_the_defaults() -> None:
    """Precedence: credentials > envPassthrough > defaults."""
    environ = {"PIP_INDEX_URL": "https://index.test/simple", "PIP_DEFAULT_TIMEOUT": "60"}
    assert inherited_environment(environ, ["PIP_INDEX_URL"], ["PIP_INDEX_URL"]) == {
        "PIP_DEFAULT_TIMEOUT": "60"
    }
    assert withheld_names(environ, (), ["PIP_INDEX_URL"]) == ["PIP_INDEX_URL"]
