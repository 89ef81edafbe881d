"""The whole file: defaults, netjail's additions, credentials, and srt's other top-level keys."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from netjail.settings import FilesystemSettings, NetworkSettings, Settings

from .settings_files import case, load, minimal, refused

REFUSALS: list[tuple[str, dict[str, Any], str, str]] = [
    # (id, data, field, words in the message)
    ("body cap", case("record.bodyCap", -1), "record.bodyCap", "greater than or equal to 0"),
    ("port range", case("windows", {"proxyPortRange": [1000, 2000]}), "windows.proxyPortRange", "64 ports"),
    (
        "credential mode",
        case("credentials", {"files": [{"path": "/x", "mode": "hide"}]}),
        "credentials.files[0].mode",
        "use 'deny' or 'mask'",
    ),
    (
        "mask dir",
        case("credentials", {"files": [{"path": "/etc/app/", "mode": "mask"}]}),
        "credentials.files[0].path",
        "not a directory",
    ),
    (
        "passthrough withheld",
        {
            **case("credentials", {"envVars": [{"name": "TOKEN", "mode": "deny"}]}),
            "envPassthrough": ["HOME", "TOKEN"],
        },
        "envPassthrough[1]",
        "withholds it",
    ),
    # refused srt keys
    (
        "nested",
        case("enableWeakerNestedSandbox", True),
        "enableWeakerNestedSandbox",
        "no weaker nested-sandbox",
    ),
    (
        "weaker net",
        case("enableWeakerNetworkIsolation", True),
        "enableWeakerNetworkIsolation",
        "no weaker network isolation",
    ),
    ("apple events", case("allowAppleEvents", True), "allowAppleEvents", "launch programs outside the jail"),
]


@pytest.mark.parametrize(("data", "field", "words"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_refusals(tmp_path: Path, data: dict[str, Any], field: str, words: str) -> None:
    error = refused(tmp_path, data)
    assert error.field == field, str(error)
    assert words in str(error), str(error)


def test_minimal_srt_file(tmp_path: Path) -> None:
    loaded = load(tmp_path, minimal(), origin="env")
    s = loaded.settings
    assert (loaded.origin, loaded.path, loaded.warnings) == ("env", tmp_path / "settings.json", ())
    assert s.network.mode == "enforce" and s.network.resolver_address is None and s.network.hosts == {}
    assert s.record.body_cap == 1_048_576
    assert s.record.redact_headers == ["authorization", "cookie", "proxy-authorization"]
    assert (s.allow_pty, s.mandatory_deny_search_depth, s.env_passthrough) == (False, 3, [])


def test_netjail_additions(tmp_path: Path) -> None:
    data = minimal()
    data["network"] |= {
        "hosts": {"Registry.Internal.TEST.": "10.1.2.3", "v6.internal.test": "::ffff:192.0.2.1"},
        "resolver": "[2001:db8::53]:5353",
        "mode": "audit",
    }
    data |= {
        "envPassthrough": ["HOME", "LANG"],
        "audit": {"secretEnv": ["API_TOKEN"], "secretFiles": ["~/.config/app/token"]},
        "record": {"bodyCap": 0, "redactHeaders": ["X-Api-Key"]},
    }
    s = load(tmp_path, data).settings
    assert s.network.hosts == {
        "registry.internal.test": ipaddress.IPv4Address("10.1.2.3"),
        "v6.internal.test": ipaddress.IPv4Address("192.0.2.1"),
    }
    assert s.network.resolver_address == ("2001:db8::53", 5353)
    assert s.network.mode == "audit"
    assert s.audit.secret_files == [Path.home() / ".config/app/token"]
    assert s.record.redact_headers == ["x-api-key"] and s.record.body_cap == 0


def test_credential_files_are_denied_reads_whatever_their_mode(tmp_path: Path) -> None:
    data = minimal()
    data["filesystem"]["denyRead"] = ["/etc/app/secret"]
    data["credentials"] = {
        "files": [{"path": "~/.token", "mode": "mask"}, {"path": "/etc/app/secret", "mode": "deny"}],
        "envVars": [{"name": "API_TOKEN", "mode": "mask"}, {"name": "DB_PASSWORD", "mode": "deny"}],
    }
    loaded = load(tmp_path, data)
    # a masked file is denied too: a backend that masks binds its copy over the denial (docs/credentials.md)
    assert loaded.settings.filesystem.deny_read == ["/etc/app/secret", "~/.token"]
    assert loaded.warnings == ()  # a denied file also in denyRead says the same twice: no contradiction


def test_python_construction_by_field_name() -> None:
    settings = Settings(
        network=NetworkSettings.model_validate({"allowed_domains": ["example.com"], "denied_domains": ["*"]}),
        filesystem=FilesystemSettings(deny_read=[], allow_write=["."], deny_write=[]),
    )
    assert settings.network.allowed_domains[0].host == "example.com"
    assert settings.network.denied_domains[0].kind == "any"
