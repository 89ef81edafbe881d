"""Credentials taken out of inherited values (netjail/jail/scrub.py), as tables."""

from __future__ import annotations

import pytest

from netjail.jail.scrub import Unparseable, scrub_environment, scrub_url, scrub_value

URLS = [
    ("https://user:s3cret@index.test/simple", "https://index.test/simple"),
    ("https://token@index.test/simple/", "https://index.test/simple/"),
    ("http://u:p@[::1]:8080/x", "http://[::1]:8080/x"),
    ("https://u:p@Index.Test:443/", "https://index.test:443/"),
    ("https://index.test/simple", "https://index.test/simple"),
    ("https://index.test/simple?a=b%20c", "https://index.test/simple?a=b%20c"),  # untouched: not re-encoded
    ("https://h.test/x?token=abc&page=2", "https://h.test/x?page=2"),
    ("https://h.test/x?ACCESS_TOKEN=abc", "https://h.test/x"),
    ("https://h.test/x?api_key=abc&private_token=def", "https://h.test/x"),
    ("https://h.test/x?X-Amz-Signature=abc&X-Amz-Credential=k", "https://h.test/x"),
    # a query value that looks like a token to the audit's URL detector goes with its query
    ("https://h.test/x?q=aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7", "https://h.test/x"),
    ("https://registry.test/@scope/pkg", "https://registry.test/@scope/pkg"),  # npm scopes are not userinfo
    ("https://u:p@h.test/x?token=t#frag", "https://h.test/x#frag"),
]


@pytest.mark.parametrize(("url", "expected"), URLS)
def test_scrub_url(url: str, expected: str) -> None:
    assert scrub_url(url) == expected


VALUES = [
    # GOPROXY: a comma / pipe list
    ("https://u:p@proxy.test,https://other.test|direct", "https://proxy.test,https://other.test|direct"),
    # PIP_EXTRA_INDEX_URL / PIP_FIND_LINKS: space separated
    (
        "https://a:b@one.test/simple https://two.test/simple",
        "https://one.test/simple https://two.test/simple",
    ),
    ("/usr/local/bin:/usr/bin", "/usr/local/bin:/usr/bin"),  # no URL: unchanged
    ("-mod=mod -modcacherw", "-mod=mod -modcacherw"),
]


@pytest.mark.parametrize(("value", "expected"), VALUES)
def test_scrub_value(value: str, expected: str) -> None:
    assert scrub_value(value) == expected


@pytest.mark.parametrize("value", ["https://u:p@/x", "https://u:pa/ss@host/", "https://u:p@[::1/"])
def test_a_url_whose_credentials_cannot_be_separated_is_unparseable(value: str) -> None:
    with pytest.raises(Unparseable):
        scrub_value(value)


def test_environment_precedence_and_names_only() -> None:
    env = {
        "PIP_INDEX_URL": "https://user:s3cret@index.test/simple",
        "npm_config_registry": "https://u:tok@registry.test/",
        "NPM_CONFIG_REGISTRY": "https://u:tok@registry.test/",
        "GOPROXY": "https://u:p@[bad/",
        "PIP_EXTRA_INDEX_URL": "https://k:v@extra.test/simple",
        "PATH": "/usr/bin",
    }
    done = scrub_environment(env, passthrough=["PIP_EXTRA_INDEX_URL"])
    assert done.env == {
        "PIP_INDEX_URL": "https://index.test/simple",
        "npm_config_registry": "https://registry.test/",
        "NPM_CONFIG_REGISTRY": "https://registry.test/",
        "PIP_EXTRA_INDEX_URL": "https://k:v@extra.test/simple",  # envPassthrough names it: passed whole
        "PATH": "/usr/bin",
    }
    assert done.cleaned == ("PIP_INDEX_URL", "npm_config_registry", "NPM_CONFIG_REGISTRY")
    assert done.dropped == ("GOPROXY",)  # cannot be parsed: not passed at all
    assert "s3cret" not in repr((done.cleaned, done.dropped))
